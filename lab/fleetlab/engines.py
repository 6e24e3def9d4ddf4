"""The three kinds of lab host behind one interface (HostEngine): what starts them, lists them,
gives their address, runs a script inside them and removes them.

podman: systemd containers on one internal podman network (no route out; the gateway address is on
this machine's bridge). No --privileged, /proc/sys stays read-only.

docker: hosts that must run a real Docker engine. Docker cannot run containers inside a podman host
(its cgroup mounts fail), so a dockerd on this machine starts them (own data root and socket under
the lab's state, --iptables=false, --bridge=none: it changes nothing of this machine's network).
They boot the same image with SYS_ADMIN and NET_ADMIN/NET_RAW, seccomp unconfined, the host cgroup
namespace and a writable /sys/fs/cgroup (what nested runc needs), never --privileged. Started
without a network and joined to the lab network by the lab tool (a veth on the lab bridge, an
address from the upper half of the subnet, which podman never hands out), so that they and podman
hosts are one site.

nspawn: systemd-nspawn containers with a private network namespace, the one kind whose
/proc/sys/net is writable (per host), so that namespaced net.* settings really apply, while vm.*,
kernel.* and fs.* stay read-only (lab-facts.md). Their rootfs is the same image, unpacked under the
lab's state; they boot without CAP_SYS_ADMIN, CAP_SYS_RESOURCE and CAP_SYS_BOOT, on their own bridge
with no default route, forwarding off, and their own package gateway on its address. Never
--privileged, never a user namespace (systemd fails to boot in one here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from . import gateway
from .settings import ADDRESS_LABEL, LABEL, NSPAWN_DROPPED_CAPABILITIES
from .system import LabError, Machine, log, pid_alive, run
from .topology import HostSpec

# Commands run inside a host to tell why its sshd is not up (best effort: every probe may fail).
DIAGNOSTICS = ("echo system: $(systemctl is-system-running 2>&1); "
               "echo failed: $(systemctl --failed --no-legend --plain 2>&1 | cut -d' ' -f1); "
               "journalctl -u ssh.service -n 5 --no-pager -o cat 2>&1 | sed 's/^/ssh: /'")


def container_name(lab: str, host: str) -> str:
    return f"llmfleet-{lab}-{host}"


class HostEngine:
    """One kind of lab host. Hosts are named container_name(lab, host) on every engine."""

    name = ""

    def __init__(self, machine: Machine):
        self.machine = machine
        self.settings = machine.settings

    def prepare(self, image: str) -> None:
        """What must run before this engine's hosts start (networks, daemons, the image)."""

    def hosts(self, lab: str | None = None) -> list[dict]:
        """The hosts of a lab (or of every lab): [{"name", "lab", "state", "engine"}]."""
        raise NotImplementedError

    def start(self, lab: str, spec: HostSpec, image: str) -> None:
        """Start the host (idempotent: a running host is left as it is)."""
        raise NotImplementedError

    def remove(self, cname: str) -> None:
        raise NotImplementedError

    def address(self, cname: str) -> str:
        raise NotImplementedError

    def exec(self, cname: str, script: str, input_text: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
        """sh -c script inside the host, as its root, within the host's own capabilities."""
        raise NotImplementedError

    def state(self, cname: str) -> str:
        """The engine's word on the host (for diagnostics); '' when it has none."""
        return ""

    def before_admin_account(self, cname: str) -> None:
        """Anything the host needs before the admin account is installed."""

    def teardown(self, purge: bool) -> None:
        """After this engine's last host is gone (of every lab)."""

    def gateway_address(self) -> str:
        """Where this engine's hosts reach the lab's services."""
        return self.settings.gateway

    def diagnostics(self, cname: str) -> str:
        """What a host that did not bring sshd up looks like from inside: the engine's state,
        systemd's, failed units, the ssh unit's last lines."""
        parts = []
        try:
            state = self.state(cname)
            if state:
                parts.append(f"engine: {state}")
            out = self.exec(cname, DIAGNOSTICS, check=False)
            parts.append((out.stdout + out.stderr).strip().replace("\n", "; "))
        except LabError as exc:
            parts.append(f"probe failed: {exc}")
        return " | ".join(parts)


class LabNetwork:
    """The podman network all podman and docker hosts share: internal (no NAT, no default route
    inside the hosts), the gateway address on this machine's bridge, podman leasing the lower half."""

    def __init__(self, machine: Machine):
        self.machine = machine
        self.settings = machine.settings

    def exists(self) -> bool:
        return self.machine.podman("network", "exists", self.settings.network, check=False).returncode == 0

    def _info(self) -> dict:
        return json.loads(self.machine.podman("network", "inspect", self.settings.network).stdout)[0]

    def ensure(self) -> None:
        s = self.settings
        if self.exists():
            info = self._info()
            subnets = [sub["subnet"] for sub in info.get("subnets", [])]
            ranges = [sub.get("lease_range", {}).get("end_ip") for sub in info.get("subnets", [])]
            if str(s.subnet) not in subnets or not info.get("internal") or str(s.podman_range.broadcast_address) not in ranges:
                raise LabError(f"network {s.network} exists with subnets {subnets} internal={info.get('internal')} "
                               f"leases ending at {ranges}; expected internal {s.subnet} leasing {s.podman_range}: "
                               f"take the labs down (lab/llmfleet_lab.py down --all) or set LLMFLEET_LAB_NETWORK")
            return
        self.machine.podman("network", "create", "--internal", "--disable-dns", "--subnet", str(s.subnet),
                            "--gateway", s.gateway, "--ip-range", str(s.podman_range), s.network)

    def bridge(self) -> str:
        """The network's bridge with the gateway address. Podman creates it with its first host on
        the network; a lab whose docker-engine hosts come first (or alone) creates it as podman would
        (podman then uses it as it is, and never removes a bridge that still has ports)."""
        bridge = self._info()["network_interface"]
        if run(["ip", "link", "show", bridge], check=False).returncode != 0:
            run(["ip", "link", "add", bridge, "type", "bridge"])
            run(["ip", "addr", "add", f"{self.settings.gateway}/{self.settings.subnet.prefixlen}", "dev", bridge])
            run(["ip", "link", "set", bridge, "up"])
        return bridge

    def remove(self) -> None:
        if self.exists():
            bridge = self._info()["network_interface"]
            self.machine.podman("network", "rm", self.settings.network)
            # Podman removes the bridge it made; not one the lab tool made (bridge()).
            run(["ip", "link", "del", bridge], check=False)


class _ContainerEngine(HostEngine):
    """podman and docker: the same CLI verbs, and hosts on the lab network."""

    def __init__(self, machine: Machine, network: LabNetwork):
        super().__init__(machine)
        self.network = network

    def cli(self, *args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def _inspect(self, cname: str) -> dict | None:
        existing = self.cli("inspect", cname, check=False)
        return json.loads(existing.stdout)[0] if existing.returncode == 0 else None

    def remove(self, cname: str) -> None:
        self.cli("rm", "-f", "-v", cname)

    def exec(self, cname, script, input_text=None, check=True):
        return self.cli("exec", *(["-i"] if input_text is not None else []), cname, "sh", "-c", script,
                        input_text=input_text, check=check)

    def state(self, cname: str) -> str:
        out = self.cli("inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}}", cname, check=False)
        return (out.stdout or out.stderr).strip()

    def _run_args(self, lab: str, spec: HostSpec, cname: str) -> list[str]:
        return [
            "run", "-d", "--name", cname, "--hostname", spec.name,
            "--label", f"{LABEL}={lab}", "--label", f"llmfleet.groups={','.join(spec.groups)}",
            "--label", f"llmfleet.zone={spec.zone or ''}",
            # The resolver is the host's own loopback, where nothing listens: a lookup fails at once
            # inside the host, and nothing is sent anywhere (podman 4.3 ignores --dns none).
            "--dns", "127.0.0.1",
            *[arg for volume in spec.volumes for arg in ("-v", volume)],
        ]


class PodmanEngine(_ContainerEngine):
    name = "podman"

    def cli(self, *args, check=True, input_text=None):
        return self.machine.podman(*args, check=check, input_text=input_text)

    def prepare(self, image: str) -> None:
        self.network.ensure()

    def hosts(self, lab=None):
        flt = f"label={LABEL}={lab}" if lab else f"label={LABEL}"
        return [{"name": h["Names"][0], "lab": h["Labels"][LABEL], "state": h["State"], "engine": self.name}
                for h in json.loads(self.cli("ps", "-a", "--filter", flt, "--format", "json").stdout or "[]")]

    def start(self, lab, spec, image):
        cname = container_name(lab, spec.name)
        existing = self._inspect(cname)
        if existing is not None:
            if existing["State"].get("Running"):
                return
            self.remove(cname)
        self.cli(*self._run_args(lab, spec, cname),
                 "--network", self.settings.network, "--systemd=always",
                 # The host owns /etc/hosts, as a real server does (the base role writes the fleet into it).
                 "--no-hosts",
                 "--cap-add", ",".join(spec.capabilities),
                 *(["--ip", spec.address] if spec.address else []),
                 image, "/sbin/init")

    def address(self, cname):
        return json.loads(self.cli("inspect", cname).stdout)[0]["NetworkSettings"]["Networks"][self.settings.network]["IPAddress"]

    def teardown(self, purge):
        self.network.remove()


class DockerEngine(_ContainerEngine):
    name = "docker"
    DAEMON = "dockerd"

    def cli(self, *args, check=True, input_text=None):
        return self.machine.docker(*args, check=check, input_text=input_text)

    def running(self) -> bool:
        return bool(self.machine.alive(self.DAEMON))

    def prepare(self, image: str) -> None:
        """This machine's dockerd for docker-engine hosts, and the image loaded into it."""
        self.network.ensure()
        if not self.running():
            if shutil.which("dockerd") is None:
                raise LabError("docker-engine hosts need dockerd on this machine (apt-get install docker.io; "
                               "scripts/bootstrap installs it)")
            s = self.settings
            s.docker_socket.parent.mkdir(parents=True, exist_ok=True)
            self.machine.start_daemon(self.DAEMON, [
                "dockerd", "--data-root", str(s.state / "docker" / "data"), "--exec-root", str(s.docker_exec_root),
                "--pidfile", str(s.docker_exec_root / "dockerd.pid"), "--host", f"unix://{s.docker_socket}",
                # Leave this machine's network alone: no iptables rules, no NAT, no docker0 bridge.
                "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
            ], 0, "")
            deadline = time.monotonic() + 30
            while self.cli("version", check=False).returncode != 0:
                if time.monotonic() > deadline or not self.running():
                    raise LabError(f"dockerd did not come up; see {self.machine.log_path(self.DAEMON)}")
                time.sleep(0.2)
        self.sweep_stale_netns()
        if self.cli("image", "inspect", image, check=False).returncode != 0:
            self.machine.pipe(["podman", "save", image], self.machine.podman_env(), ["docker", "load"],
                              self.machine.docker_env(), what=f"loading {image} into the lab's dockerd")

    def sweep_stale_netns(self) -> None:
        """Remove network namespaces of docker-engine hosts that no container owns any more.

        A host whose dockerd was killed rather than stopped (a CI job ended mid-run) can leave its
        namespace mounted under the exec root, its veth still on the lab bridge with the address and
        MAC a new host gets again: the bridge then sends that host's traffic to the dead namespace
        half the time (seen in CI: the first task reached the new host, the next got "Connection
        refused" from the old namespace). Docker does not clean these up when it starts again."""
        netns_dir = self.settings.docker_exec_root / "netns"
        if not netns_dir.is_dir():
            return
        owned = set()
        if self.running():
            ids = self.cli("ps", "-aq", "--no-trunc").stdout.split()
            if ids:
                for key in self.cli("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", *ids).stdout.split():
                    owned.add(Path(key).name)
        for ns in netns_dir.iterdir():
            if ns.name in owned:
                continue
            log(f"removing a stale network namespace of a docker-engine host: {ns}")
            run(["umount", "-l", str(ns)], check=False)
            ns.unlink(missing_ok=True)

    def hosts(self, lab=None):
        if not self.running():
            return []
        flt = f"label={LABEL}={lab}" if lab else f"label={LABEL}"
        hosts = []
        for line in self.cli("ps", "-a", "--filter", flt, "--format", "{{json .}}").stdout.splitlines():
            h = json.loads(line)
            labels = dict(item.split("=", 1) for item in h["Labels"].split(",") if "=" in item)
            hosts.append({"name": h["Names"], "lab": labels[LABEL], "state": h["State"], "engine": self.name})
        return hosts

    def start(self, lab, spec, image):
        cname = container_name(lab, spec.name)
        existing = self._inspect(cname)
        if existing is not None:
            if existing["State"].get("Running"):
                self.attach(cname, self.address(cname))
                return
            self.remove(cname)
        address = spec.address or self.free_address()
        self.cli(*self._run_args(lab, spec, cname),
                 "--network", "none", "--label", f"{ADDRESS_LABEL}={address}",
                 # What a systemd host running its own dockerd needs (lab-facts.md); not --privileged,
                 # so /proc/sys stays read-only and no sysctl reaches this machine's kernel.
                 "--cap-add", "SYS_ADMIN", *[arg for cap in spec.capabilities for arg in ("--cap-add", cap)],
                 "--security-opt", "seccomp=unconfined", "--cgroupns=host",
                 "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
                 # The nested engine's storage on an anonymous volume (ext4, not overlay: overlay2 works),
                 # removed with the host (rm -v).
                 "-v", "/var/lib/docker",
                 image, "/sbin/init")
        self.attach(cname, address)

    def address(self, cname):
        return json.loads(self.cli("inspect", cname).stdout)[0]["Config"]["Labels"][ADDRESS_LABEL]

    def free_address(self) -> str:
        s = self.settings
        used = set(self.cli("ps", "-a", "--format", f'{{{{.Label "{ADDRESS_LABEL}"}}}}').stdout.split())
        for address in s.attached_range.hosts():
            if str(address) not in used and address not in (s.attached_range.broadcast_address, s.virtual_ip):
                return str(address)
        raise LabError(f"no free address left for docker-engine hosts in {s.attached_range}")

    def attach(self, cname: str, address: str) -> None:
        """Join a docker-engine host (started with --network none) to the lab network, as podman joins
        its own hosts: a veth pair, one end on the lab bridge, the other the host's eth0 with its
        address and no route beyond the subnet. Idempotent: a host that has its address is left alone.
        The pair goes away with the host's network namespace."""
        pid = self.cli("inspect", "-f", "{{.State.Pid}}", cname).stdout.strip()
        inside = ["nsenter", "-t", pid, "-n", "--", "ip"]
        outer = "lfd" + hashlib.sha256(cname.encode()).hexdigest()[:11]  # interface names: 15 chars at most
        bridge = self.network.bridge()
        if (f" {address}/" in run([*inside, "-o", "-4", "addr", "show", "dev", "eth0"], check=False).stdout
                and f" master {bridge} " in run(["ip", "-o", "link", "show", outer], check=False).stdout):
            return
        run(["ip", "link", "del", outer], check=False)
        run([*inside, "link", "del", "eth0"], check=False)
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", pid])
        run(["ip", "link", "set", outer, "master", bridge, "up"])
        run([*inside, "addr", "add", f"{address}/{self.settings.subnet.prefixlen}", "dev", "eth0"])
        run([*inside, "link", "set", "eth0", "up"])

    def before_admin_account(self, cname):
        # The host owns /etc/hosts, as a real server does: docker bind-mounts its own file there,
        # which Ansible cannot replace atomically. Unmount it (the image's file is underneath).
        self.exec(cname, "! mountpoint -q /etc/hosts || umount /etc/hosts")

    def teardown(self, purge):
        self.machine.stop_daemon(self.DAEMON)
        self.sweep_stale_netns()
        if purge:
            shutil.rmtree(self.settings.state / "docker", ignore_errors=True)


class NspawnEngine(HostEngine):
    name = "nspawn"
    GATEWAY = "gateway-nspawn"
    HOST_MACHINE_ID = Path("/etc/machine-id")

    def _dir(self, cname: str) -> Path:
        return self.settings.state / "nspawn" / cname

    def _record(self, cname: str) -> dict:
        return json.loads((self._dir(cname) / "host.json").read_text())

    def records(self) -> list[dict]:
        """Every nspawn host this machine has: its record (host.json) and whether it runs."""
        records = []
        for record in sorted((self.settings.state / "nspawn").glob("*/host.json")):
            info = json.loads(record.read_text())
            info["running"] = pid_alive(info["pid"])
            records.append(info)
        return records

    def hosts(self, lab=None):
        return [{"name": h["cname"], "lab": h["lab"], "state": "running" if h["running"] else "exited",
                 "engine": self.name} for h in self.records() if lab is None or h["lab"] == lab]

    def _init_pid(self, cname: str) -> int:
        """PID (on this machine) of the host's systemd: nspawn's child."""
        pid = self._record(cname)["pid"]
        for _attempt in range(100):
            children = run(["pgrep", "-P", str(pid)], check=False).stdout.split()
            if children:
                return int(children[0])
            time.sleep(0.1)
        raise LabError(f"{cname}: systemd-nspawn (pid {pid}) has no init process; see {self.machine.log_path(cname)}")

    def exec(self, cname, script, input_text=None, check=True):
        """In the host's namespaces with the host's own capability bounding set (nsenter alone would
        keep this machine's full set, CAP_SYS_ADMIN included)."""
        return run(["nsenter", "-t", str(self._init_pid(cname)), "-m", "-u", "-i", "-n", "-p", "--",
                    "setpriv", "--bounding-set",
                    ",".join("-" + c.lower()[4:] for c in NSPAWN_DROPPED_CAPABILITIES.split(",")),
                    "sh", "-c", script], input_text=input_text, check=check)

    def gateway_address(self):
        return self.settings.nspawn_gateway

    def prepare(self, image):
        """The nspawn hosts' bridge, holding the gateway address; packets received on it are never
        forwarded (no way out through this machine), and the hosts get no default route."""
        s = self.settings
        if run(["ip", "link", "show", s.nspawn_bridge], check=False).returncode != 0:
            run(["ip", "link", "add", s.nspawn_bridge, "type", "bridge"])
            run(["ip", "addr", "add", f"{s.nspawn_gateway}/{s.nspawn_subnet.prefixlen}", "dev", s.nspawn_bridge])
            run(["ip", "link", "set", s.nspawn_bridge, "up"])
        Path(f"/proc/sys/net/ipv4/conf/{s.nspawn_bridge}/forwarding").write_text("0\n")
        gateway.ensure_services(self.machine, self.GATEWAY, s.nspawn_gateway)

    def teardown(self, purge):
        self.machine.stop_daemon(self.GATEWAY)
        if run(["ip", "link", "show", self.settings.nspawn_bridge], check=False).returncode == 0:
            run(["ip", "link", "del", self.settings.nspawn_bridge])

    def _free_address(self) -> str:
        used = {h["address"] for h in self.records()}
        for address in list(self.settings.nspawn_subnet.hosts())[9:]:
            if str(address) not in used:
                return str(address)
        raise LabError(f"no free address left in {self.settings.nspawn_subnet}")

    def address(self, cname):
        return self._record(cname)["address"]

    def start(self, lab, spec, image):
        s = self.settings
        cname = container_name(lab, spec.name)
        directory = self._dir(cname)
        if (directory / "host.json").exists():
            if pid_alive(self._record(cname)["pid"]):
                return
            self.remove(cname)
        address = spec.address or self._free_address()
        rootfs = directory / "rootfs"
        rootfs.mkdir(parents=True)
        # The lab image's files, unpacked (podman export of a container that never runs).
        created = self.machine.podman("create", image, "/sbin/init").stdout.strip()
        try:
            self.machine.pipe(["podman", "export", created], self.machine.podman_env(),
                              ["tar", "-x", "--numeric-owner", "-C", str(rootfs)], what=f"{cname}: unpacking {image}")
        finally:
            self.machine.podman("rm", created, check=False)
        # Its address on the nspawn bridge (systemd-networkd, before the image's DHCP default), no route out.
        network = rootfs / "etc" / "systemd" / "network"
        network.mkdir(parents=True, exist_ok=True)
        (network / "10-lab-host0.network").write_text(
            f"[Match]\nName=host0\n\n[Network]\nAddress={address}/{s.nspawn_subnet.prefixlen}\nLinkLocalAddressing=no\n")
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
        self.machine.log_path(cname).parent.mkdir(parents=True, exist_ok=True)
        command = [
            # --link-journal=no: the lab reads the hosts' logs over SSH, nothing of them on this machine.
            "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--boot", "--directory", str(rootfs),
            "--link-journal=no",
            "--machine", cname, "--hostname", spec.name, "--network-bridge", s.nspawn_bridge, "--resolv-conf=off",
            "--drop-capability", NSPAWN_DROPPED_CAPABILITIES,
            # systemd mounts it itself when it has CAP_SYS_ADMIN; here nspawn provides it.
            "--tmpfs", "/run/lock", "--console", "read-only",
        ]
        with open(self.machine.log_path(cname), "ab") as logfile:
            proc = subprocess.Popen(self._with_machine_id(command), stdout=logfile, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        (directory / "host.json").write_text(json.dumps({
            "cname": cname, "lab": lab, "name": spec.name, "groups": spec.groups, "zone": spec.zone,
            "address": address, "pid": proc.pid}))
        self._init_pid(cname)

    def _with_machine_id(self, command: list[str]) -> list[str]:
        """systemd-nspawn derives the container side's MAC address (--network-bridge) from this machine's
        machine ID and refuses to start without one ("Failed to generate predictable MAC address for container
        side: No medium found"). A machine (a CI runner, a container) may have an empty /etc/machine-id: nspawn
        then runs in a mount namespace of its own where a lab machine ID, kept with the nspawn hosts' state,
        is bound over it. This machine's own file is left as it is."""
        try:
            if self.HOST_MACHINE_ID.read_text().strip():
                return command
        except OSError:
            pass
        machine_id = self.settings.state / "nspawn" / "machine-id"
        if not machine_id.exists():
            machine_id.parent.mkdir(parents=True, exist_ok=True)
            machine_id.write_text(uuid.uuid4().hex + "\n")
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount --bind "$0" /etc/machine-id && exec "$@"', str(machine_id), *command]

    def remove(self, cname):
        """Power the host off through its init (SIGRTMIN+4), wait for nspawn to exit, remove its files."""
        directory = self._dir(cname)
        if (directory / "host.json").exists():
            pid = self._record(cname)["pid"]
            if pid_alive(pid):
                try:
                    os.kill(self._init_pid(cname), signal.SIGRTMIN + 4)
                except (LabError, OSError):
                    pass
                for _attempt in range(300):
                    if not pid_alive(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.killpg(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)


def engines(machine: Machine) -> dict[str, HostEngine]:
    """Every engine, by name, in the order hosts are listed and engines torn down."""
    network = LabNetwork(machine)
    found = [PodmanEngine(machine, network), DockerEngine(machine, network), NspawnEngine(machine)]
    return {engine.name: engine for engine in found}
