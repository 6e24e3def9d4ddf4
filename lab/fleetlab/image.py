"""The lab hosts' image: Debian minbase with systemd, sshd and python3, debootstrapped here once per
recipe and imported into podman (the docker and nspawn engines take it from there)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from .settings import IMAGE_PACKAGES, SUITE
from .system import Machine, log, run

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


def image_tag(debian_mirror: str) -> str:
    recipe = json.dumps([SUITE, debian_mirror, IMAGE_PACKAGES, IMAGE_CUSTOMIZE]).encode()
    return f"localhost/llmfleet-lab:{SUITE}-{hashlib.sha256(recipe).hexdigest()[:12]}"


def unmount_under(root: Path, mounts: Path = Path("/proc/mounts")) -> list[str]:
    """Lazily unmount every mount at or below root, deepest first; returns what was unmounted."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    points = []
    for line in mounts.read_text().splitlines():
        # /proc/mounts escapes blanks in paths as octal (\040).
        point = line.split()[1].encode().decode("unicode_escape")
        if (point + "/").startswith(prefix):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        run(["umount", "-l", point], check=False)
    return sorted(points, key=len, reverse=True)


def image_cached(machine: Machine) -> bool:
    return machine.podman("image", "exists", image_tag(machine.settings.debian_mirror), check=False).returncode == 0


def ensure_image(machine: Machine) -> str:
    settings = machine.settings
    tag = image_tag(settings.debian_mirror)
    if image_cached(machine):
        log(f"image {tag}: cached")
        return tag
    log(f"image {tag}: building with debootstrap from {settings.debian_mirror}")
    settings.state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.state, prefix="rootfs-") as rootfs:
        try:
            run(["debootstrap", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}",
                SUITE, rootfs, settings.debian_mirror], capture=True)
        finally:
            # debootstrap can leave the tree's /proc mounted (seen on a fresh machine: tar then read
            # this machine's /proc into the image and the temporary tree could not be removed).
            unmount_under(Path(rootfs))
        run(["sh", "-c", IMAGE_CUSTOMIZE, "customize", rootfs])
        machine.pipe(["tar", "-C", rootfs, "--numeric-owner", "--one-file-system", "-c", "."], None,
                     ["podman", "import", "--change", 'CMD ["/sbin/init"]', "-", tag], machine.podman_env(),
                     what="podman import")
    # Older images of this recipe family are stale caches.
    for line in _images(machine):
        if line != tag:
            machine.podman("rmi", line, check=False)
    return tag


def remove_images(machine: Machine) -> None:
    for line in _images(machine):
        machine.podman("rmi", "-f", line, check=False)


def _images(machine: Machine) -> list[str]:
    return machine.podman("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/llmfleet-lab").stdout.split()
