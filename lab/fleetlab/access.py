"""How Ansible reaches the lab's hosts: the admin and operator keys, the admin account on each host,
and the hosts' real SSH host keys (Ansible connects with strict host key checking)."""

from __future__ import annotations

import time
from pathlib import Path

from .settings import ADMIN_USER, Settings
from .system import LabError, run


def ssh_key(settings: Settings) -> Path:
    key = settings.state / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmfleet-lab-admin", "-f", str(key)])
    return key


def operator_key(settings: Settings) -> Path:
    """The key a lab operator account is given by the base role (a second identity, not the admin's)."""
    key = settings.state / "ssh" / "operator_ed25519"
    if not key.exists():
        ssh_key(settings)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmfleet-lab-operator", "-f", str(key)])
    return key


def known_hosts(settings: Settings) -> Path:
    return settings.state / "ssh" / "known_hosts"


def admin_account_script() -> str:
    """Creates the admin account (key-only, passwordless sudo) with the public key on stdin."""
    user = ADMIN_USER
    return (
        f"id -u {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --password '*' {user}; "
        f"echo '{user} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-lab-admin; chmod 440 /etc/sudoers.d/90-lab-admin; "
        f"install -d -m 700 -o {user} -g {user} /home/{user}/.ssh; "
        f"cat > /home/{user}/.ssh/authorized_keys; chown {user}: /home/{user}/.ssh/authorized_keys; "
        f"chmod 600 /home/{user}/.ssh/authorized_keys"
    )


def scan_host_keys(settings: Settings, addresses: list[str]) -> None:
    """Pin the hosts' real host keys."""
    known = known_hosts(settings)
    lines = []
    if known.exists():
        lines = [ln for ln in known.read_text().splitlines() if ln.split(" ", 1)[0] not in addresses]
    found: set = set()
    for _attempt in range(50):
        scan = run(["ssh-keyscan", "-T", "2", "-t", "ed25519", *addresses], check=False)
        found = {ln.split(" ", 1)[0] for ln in scan.stdout.splitlines() if ln and not ln.startswith("#")}
        if found >= set(addresses):
            lines += [ln for ln in scan.stdout.splitlines() if ln and not ln.startswith("#")]
            known.write_text("\n".join(lines) + "\n")
            return
        time.sleep(0.2)
    raise LabError(f"could not read SSH host keys of {sorted(set(addresses) - found)}")


def forget_host_keys(settings: Settings, addresses: list[str]) -> None:
    known = known_hosts(settings)
    if known.exists():
        keep = [ln for ln in known.read_text().splitlines() if ln.split(" ", 1)[0] not in addresses]
        known.write_text("\n".join(keep) + ("\n" if keep else ""))
