"""llmfleet lab: a private, air-gapped "datacenter" of real systemd hosts on this machine.

Hosts are podman containers booting systemd (no --privileged, /proc/sys stays read-only, so
nothing inside a host can change this machine's kernel settings). They sit on one internal
podman network with no route out. The machine holds the network's gateway address and serves
the only ways in, exactly as an air-gapped site's mirror host would:

the package gateway (lab/package_gateway.py) on GATEWAY:3142: an apt proxy and cache for the
Debian mirror this machine uses, the same as a mirror (http://GATEWAY:3142/debian), and an
artifact source (http://GATEWAY:3142/artifacts/, the directory .lab/artifacts).

The collection's own variables (base_apt_proxy, base_pip_find_links, ...) point hosts at them.

Commands (all idempotent):
  up      build/reuse the base image, start the network, the proxy and the hosts, write an inventory
  down    remove a lab's hosts; with the last lab gone also the network and the proxy processes
  status  list labs and hosts
  image   build the base image only

Several labs may exist at once (the main lab, molecule scenarios): each is a set of hosts
labelled llmfleet.lab=NAME on the shared lab network.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("LLMFLEET_LAB_STATE", REPO / ".lab"))
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers.conf"

NETWORK = os.environ.get("LLMFLEET_LAB_NETWORK", "llmfleet-lab")
SUBNET = ipaddress.ip_network(os.environ.get("LLMFLEET_LAB_SUBNET", "10.213.9.0/24"))
GATEWAY = str(next(SUBNET.hosts()))
GATEWAY_PORT = int(os.environ.get("LLMFLEET_LAB_GATEWAY_PORT", "3142"))
DEBIAN_MIRROR = os.environ.get("LLMFLEET_LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("LLMFLEET_LAB_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
SUITE = "bookworm"
LABEL = "llmfleet.lab"

# What the base image holds: the least a freshly installed server has (systemd, sshd, python3
# for Ansible). Everything else must come through the collection's roles and the lab's proxy.
IMAGE_PACKAGES = ["python3", "systemd", "systemd-sysv", "openssh-server", "iproute2", "dbus"]

# Run inside the debootstrapped tree before import. Part of the image's cache key.
IMAGE_CUSTOMIZE = r"""
set -eu
root="$1"
# Every host must get its own SSH host keys: generate them on first boot, not in the image.
rm -f "$root"/etc/ssh/ssh_host_*
dropin="$root/etc/systemd/system/ssh.service.d"
mkdir -p "$dropin"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  >"$dropin/llmfleet-lab-hostkeys.conf"
# A fresh Debian install's sources: main, updates and security.
cat >"$root/etc/apt/sources.list" <<EOF
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
"""

# Capabilities beyond podman's defaults, per inventory group. NET_ADMIN/NET_RAW: the host's own
# firewall (ufw/iptables, per network namespace). DAC_READ_SEARCH: userspace NFS (nfs-ganesha).
# Never --privileged: with it, vm.*/kernel.* sysctls inside a host write the real kernel.
GROUP_CAPABILITIES = {
    "all": ["NET_ADMIN", "NET_RAW"],
    "infra": ["DAC_READ_SEARCH"],
}


class LabError(RuntimeError):
    """A lab operation failed in a way the user must see."""


@dataclass
class HostSpec:
    name: str
    groups: list[str]
    zone: str | None = None
    address: str | None = None
    extra_vars: dict = field(default_factory=dict)

    @property
    def capabilities(self) -> list[str]:
        caps: list[str] = []
        for group in ["all", *self.groups]:
            for cap in GROUP_CAPABILITIES.get(group, []):
                if cap not in caps:
                    caps.append(cap)
        return caps


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], *, check: bool = True, capture: bool = True, input_text: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, input=input_text, text=True, env=env, check=False,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise LabError(f"{shlex.join(cmd)} failed ({proc.returncode}): {detail}")
    return proc


def podman(*args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    return run(["podman", *args], check=check, input_text=input_text, env=env)


# ---------------------------------------------------------------- image

def image_tag() -> str:
    recipe = json.dumps([SUITE, DEBIAN_MIRROR, IMAGE_PACKAGES, IMAGE_CUSTOMIZE]).encode()
    return f"localhost/llmfleet-lab:{SUITE}-{hashlib.sha256(recipe).hexdigest()[:12]}"


def ensure_image() -> str:
    tag = image_tag()
    if podman("image", "exists", tag, check=False).returncode == 0:
        log(f"image {tag}: cached")
        return tag
    log(f"image {tag}: building with debootstrap from {DEBIAN_MIRROR}")
    STATE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=STATE, prefix="rootfs-") as rootfs:
        run(["debootstrap", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}",
            SUITE, rootfs, DEBIAN_MIRROR], capture=True)
        run(["sh", "-c", IMAGE_CUSTOMIZE, "customize", rootfs])
        tar = subprocess.Popen(["tar", "-C", rootfs, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
        imp = subprocess.run(["podman", "import", "--change", 'CMD ["/sbin/init"]', "-", tag],
                             stdin=tar.stdout, env=env, capture_output=True, text=True, check=False)
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise LabError(f"podman import failed: {imp.stderr.strip()}")
    # Older images of this recipe family are stale caches.
    for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/llmfleet-lab").stdout.split():
        if line != tag:
            podman("rmi", line, check=False)
    return tag


# ---------------------------------------------------------------- network and services

def ensure_network() -> None:
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        info = json.loads(podman("network", "inspect", NETWORK).stdout)[0]
        subnets = [s["subnet"] for s in info.get("subnets", [])]
        if str(SUBNET) not in subnets or not info.get("internal"):
            raise LabError(f"network {NETWORK} exists with subnets {subnets} internal={info.get('internal')}; "
                           f"expected internal {SUBNET}: remove it or set LLMFLEET_LAB_NETWORK")
        return
    # --internal: no NAT, no default route inside the hosts; the gateway address lives on
    # this machine's bridge, where the proxy listens.
    podman("network", "create", "--internal", "--disable-dns", "--subnet", str(SUBNET),
           "--gateway", GATEWAY, NETWORK)


def _pidfile(name: str) -> Path:
    return STATE / "run" / f"{name}.pid"


def _alive(name: str) -> int | None:
    pidfile = _pidfile(name)
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _start_daemon(name: str, cmd: list[str], port: int) -> None:
    if _alive(name):
        return
    (STATE / "run").mkdir(parents=True, exist_ok=True)
    (STATE / "log").mkdir(parents=True, exist_ok=True)
    logfile = open(STATE / "log" / f"{name}.log", "ab")
    proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=STATE)
    _pidfile(name).write_text(str(proc.pid))
    if not _wait_port(GATEWAY, port, 15):
        raise LabError(f"{name} did not listen on {GATEWAY}:{port}; see {STATE / 'log' / (name + '.log')}")
    log(f"{name}: listening on {GATEWAY}:{port} (pid {proc.pid})")


def ensure_services() -> None:
    """The lab's only way in. It binds the bridge address, which exists once a host is attached."""
    (STATE / "artifacts").mkdir(parents=True, exist_ok=True)
    upstreams = {urllib.parse.urlsplit(u).hostname for u in (DEBIAN_MIRROR, SECURITY_MIRROR)}
    _start_daemon("gateway", [
        sys.executable, str(Path(__file__).resolve().parent / "package_gateway.py"),
        "--bind", GATEWAY, "--port", str(GATEWAY_PORT),
        "--cache", str(STATE / "cache" / "packages"), "--artifacts", str(STATE / "artifacts"),
        "--mirror", f"debian={DEBIAN_MIRROR}", "--mirror", f"debian-security={SECURITY_MIRROR}",
        *[arg for host in sorted(upstreams) for arg in ("--allow", host)],
    ], GATEWAY_PORT)


def stop_services(name: str = "gateway") -> None:
    pid = _alive(name)
    if pid:
        os.killpg(pid, signal.SIGTERM)
        for _attempt in range(50):
            if not _alive(name):
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    _pidfile(name).unlink(missing_ok=True)


# ---------------------------------------------------------------- hosts

def container_name(lab: str, host: str) -> str:
    return f"llmfleet-{lab}-{host}"


def ssh_key() -> Path:
    key = STATE / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmfleet-lab-admin", "-f", str(key)])
    return key


def operator_key() -> Path:
    """The key a lab operator account is given by the base role (a second identity, not the admin's)."""
    key = STATE / "ssh" / "operator_ed25519"
    if not key.exists():
        ssh_key()
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmfleet-lab-operator", "-f", str(key)])
    return key


def lab_hosts(lab: str | None = None) -> list[dict]:
    flt = f"label={LABEL}={lab}" if lab else f"label={LABEL}"
    out = podman("ps", "-a", "--filter", flt, "--format", "json").stdout
    return json.loads(out or "[]")


def host_address(cname: str) -> str:
    info = json.loads(podman("inspect", cname).stdout)[0]
    nets = info["NetworkSettings"]["Networks"]
    return nets[NETWORK]["IPAddress"]


def start_host(lab: str, spec: HostSpec, image: str) -> None:
    cname = container_name(lab, spec.name)
    if podman("container", "exists", cname, check=False).returncode == 0:
        state = json.loads(podman("inspect", cname).stdout)[0]["State"]
        if state.get("Running"):
            return
        podman("rm", "-f", cname)
    cmd = [
        "run", "-d", "--name", cname, "--hostname", spec.name,
        "--label", f"{LABEL}={lab}", "--label", f"llmfleet.groups={','.join(spec.groups)}",
        "--label", f"llmfleet.zone={spec.zone or ''}",
        "--network", NETWORK, "--systemd=always",
        # The host owns /etc/hosts, as a real server does (the base role writes the fleet into it).
        "--no-hosts",
        # The resolver is the host's own loopback, where nothing listens: a lookup fails at once
        # inside the host, and nothing is sent anywhere (podman 4.3 ignores --dns none).
        "--dns", "127.0.0.1",
        "--cap-add", ",".join(spec.capabilities),
    ]
    if spec.address:
        cmd += ["--ip", spec.address]
    podman(*cmd, image, "/sbin/init")


def wait_ssh(address: str, timeout: float = 60) -> None:
    if not _wait_port(address, 22, timeout):
        raise LabError(f"sshd on {address} did not come up within {timeout:.0f}s")


def install_admin_key(cname: str) -> None:
    pub = ssh_key().with_suffix(".pub").read_text()
    podman("exec", "-i", cname, "sh", "-c",
           "install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
           input_text=pub)


def scan_host_keys(addresses: list[str]) -> None:
    """Pin the hosts' real host keys: Ansible connects with strict host key checking."""
    known = STATE / "ssh" / "known_hosts"
    lines = []
    if known.exists():
        lines = [ln for ln in known.read_text().splitlines() if ln.split(" ", 1)[0] not in addresses]
    for _attempt in range(50):
        scan = run(["ssh-keyscan", "-T", "2", "-t", "ed25519", *addresses], check=False)
        found = {ln.split(" ", 1)[0] for ln in scan.stdout.splitlines() if ln and not ln.startswith("#")}
        if found >= set(addresses):
            lines += [ln for ln in scan.stdout.splitlines() if ln and not ln.startswith("#")]
            known.write_text("\n".join(lines) + "\n")
            return
        time.sleep(0.2)
    raise LabError(f"could not read SSH host keys of {sorted(set(addresses) - found)}")


def forget_host_keys(addresses: list[str]) -> None:
    known = STATE / "ssh" / "known_hosts"
    if known.exists():
        keep = [ln for ln in known.read_text().splitlines() if ln.split(" ", 1)[0] not in addresses]
        known.write_text("\n".join(keep) + ("\n" if keep else ""))


# ---------------------------------------------------------------- topology and inventory

def default_topology(zones: int, model_nodes: int, lbs: int, infra: int) -> list[HostSpec]:
    specs: list[HostSpec] = []
    zone_names = [f"zone-{chr(ord('a') + i)}" for i in range(zones)]
    for zone in zone_names:
        for i in range(1, model_nodes + 1):
            specs.append(HostSpec(f"model-{zone[-1]}{i}", ["model_nodes"], zone))
    for i in range(1, lbs + 1):
        # Load balancers are spread over zones too, so that one zone's loss leaves one standing.
        specs.append(HostSpec(f"lb{i}", ["load_balancers"], zone_names[(i - 1) % zones] if zones else None))
    for i in range(1, infra + 1):
        specs.append(HostSpec(f"infra{i}", ["infra"], zone_names[(i - 1) % zones] if zones else None))
    return specs


def parse_host_specs(text: str) -> list[HostSpec]:
    """Hosts as JSON: [{"name": "h1", "groups": ["model_nodes"], "zone": "zone-a"}, ...]."""
    specs = []
    for item in json.loads(text):
        specs.append(HostSpec(item["name"], list(item.get("groups", [])), item.get("zone"),
                              extra_vars=dict(item.get("vars", {}))))
    return specs


def service_urls() -> dict:
    gateway = f"http://{GATEWAY}:{GATEWAY_PORT}"
    return {
        "apt_proxy": gateway,
        "apt_mirror": f"{gateway}/debian",
        "apt_security_mirror": f"{gateway}/debian-security",
        "artifacts": f"{gateway}/artifacts",
    }


def inventory(lab: str, specs: list[HostSpec], addresses: dict[str, str]) -> dict:
    key = ssh_key()
    known = STATE / "ssh" / "known_hosts"
    urls = service_urls()
    groups: dict[str, dict] = {}
    for spec in specs:
        hostvars = {"ansible_host": addresses[spec.name], **spec.extra_vars}
        if spec.zone:
            hostvars["llmfleet_zone"] = spec.zone
        for group in spec.groups:
            groups.setdefault(group, {"hosts": {}})["hosts"][spec.name] = hostvars
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes",
                # How the lab's hosts reach the outside world: only through the lab's services,
                # set with the same variables a real air-gapped site sets.
                "base_apt_proxy": urls["apt_proxy"],
                "base_pip_find_links": f"{urls['artifacts']}/wheels/",
                "base_operator_ssh_public_keys": [operator_key().with_suffix(".pub").read_text().strip()],
                "llmfleet_lab_name": lab,
                "llmfleet_lab_services": urls,
            },
            "children": groups,
        }
    }


def write_yaml_inventory(path: Path, inv: dict) -> None:
    # JSON is valid YAML; Ansible's YAML inventory plugin reads it as is.
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by lab/llmfleet_lab.py up: do not edit, it is rewritten on every bring-up.\n"
    path.write_text(header + json.dumps(inv, indent=2) + "\n")


def inventory_path(lab: str) -> Path:
    return REPO / "inventories" / "lab" / "hosts.yml" if lab == "main" else STATE / "labs" / lab / "hosts.yml"


# ---------------------------------------------------------------- commands

def cmd_up(args) -> dict:
    started = time.monotonic()
    if args.hosts_json:
        specs = parse_host_specs(args.hosts_json)
    else:
        specs = default_topology(args.zones, args.model_nodes, args.lbs, args.infra)
    image = ensure_image()
    t_image = time.monotonic() - started
    ensure_network()
    wanted = {container_name(args.name, s.name) for s in specs}
    for existing in lab_hosts(args.name):
        if existing["Names"][0] not in wanted:
            podman("rm", "-f", existing["Names"][0])
    for spec in specs:
        start_host(args.name, spec, image)
    ensure_services()
    addresses = {s.name: host_address(container_name(args.name, s.name)) for s in specs}
    for spec in specs:
        wait_ssh(addresses[spec.name])
        install_admin_key(container_name(args.name, spec.name))
    scan_host_keys(list(addresses.values()))
    inv = inventory(args.name, specs, addresses)
    path = Path(args.inventory) if args.inventory else inventory_path(args.name)
    write_yaml_inventory(path, inv)
    elapsed = time.monotonic() - started
    log(f"lab {args.name}: {len(specs)} hosts up in {elapsed:.1f}s (image {t_image:.1f}s); inventory {path}")
    return {"lab": args.name, "inventory": str(path), "hosts": addresses, "image": image,
            "seconds": round(elapsed, 2), "image_seconds": round(t_image, 2),
            "ssh_key": str(ssh_key()), "known_hosts": str(STATE / "ssh" / "known_hosts"),
            "services": service_urls()}


def cmd_down(args) -> dict:
    labs = sorted({h["Labels"][LABEL] for h in lab_hosts()}) if args.all else [args.name]
    removed = []
    for lab in labs:
        hosts = lab_hosts(lab)
        addresses = []
        for h in hosts:
            try:
                addresses.append(host_address(h["Names"][0]))
            except (LabError, KeyError):
                pass
        if hosts:
            podman("rm", "-f", "-t", "2", *[h["Names"][0] for h in hosts])
            removed += [h["Names"][0] for h in hosts]
        forget_host_keys(addresses)
        path = inventory_path(lab)
        if path.exists():
            path.unlink()
    if not lab_hosts():
        stop_services()
        if podman("network", "exists", NETWORK, check=False).returncode == 0:
            podman("network", "rm", NETWORK)
        if args.purge:
            for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/llmfleet-lab").stdout.split():
                podman("rmi", "-f", line, check=False)
            shutil.rmtree(STATE, ignore_errors=True)
    log(f"removed {len(removed)} hosts")
    return {"removed": removed}


def cmd_status(_args) -> dict:
    labs: dict[str, list] = {}
    for h in lab_hosts():
        labs.setdefault(h["Labels"][LABEL], []).append({"name": h["Names"][0], "state": h["State"]})
    return {"labs": labs, "gateway": bool(_alive("gateway")), "services": service_urls(),
            "image": image_tag(), "image_cached": podman("image", "exists", image_tag(), check=False).returncode == 0}


def cmd_image(_args) -> dict:
    return {"image": ensure_image()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring a lab up (idempotent)")
    up.add_argument("--name", default="main", help="lab name (default: main, inventory inventories/lab/hosts.yml)")
    up.add_argument("--zones", type=int, default=3)
    up.add_argument("--model-nodes", type=int, default=2, help="model nodes per zone")
    up.add_argument("--lbs", type=int, default=2)
    up.add_argument("--infra", type=int, default=1)
    up.add_argument("--hosts-json", help='explicit hosts: [{"name":..,"groups":[..],"zone":..,"vars":{..}}]')
    up.add_argument("--inventory", help="where to write the inventory")
    down = sub.add_parser("down", help="remove a lab")
    down.add_argument("--name", default="main")
    down.add_argument("--all", action="store_true", help="every lab")
    down.add_argument("--purge", action="store_true",
                      help="with the last lab gone, also remove the cached image, apt cache, keys and state")
    sub.add_parser("status")
    sub.add_parser("image")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab needs root (podman networks, the package gateway on the bridge address)")
    handler = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "image": cmd_image}[args.command]
    try:
        result = handler(args)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    if args.json or args.command == "status":
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
