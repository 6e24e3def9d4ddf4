"""The lab's Ansible inventory: its hosts with their addresses, and the variables a real air-gapped
site sets to reach its own mirror (apt proxy, wheels), plus the lab's secrets."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import access
from .gateway import service_urls
from .settings import ADMIN_USER, Settings
from .topology import HostSpec


def lab_secret(settings: Settings, lab: str, name: str, length: int) -> str:
    """A random secret of the lab (hex), made once per lab and kept in its state (gone with `down`)."""
    path = settings.lab_dir(lab) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(hashlib.sha256(os.urandom(32)).hexdigest()[:length] + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def registry_password(settings: Settings, lab: str) -> str:
    """The lab registry's account password."""
    return lab_secret(settings, lab, "registry-password", 32)


def vrrp_password(settings: Settings, lab: str) -> str:
    """The lab's VRRP password: 8 characters, all VRRP carries."""
    return lab_secret(settings, lab, "vrrp-password", 8)


def inventory(settings: Settings, lab: str, specs: list[HostSpec], addresses: dict[str, str],
              images: dict | None = None, gateways: dict[str, str] | None = None) -> dict:
    """gateways: the services' address per engine where it is not the lab network's (nspawn)."""
    key = access.ssh_key(settings)
    urls = service_urls(settings)
    groups: dict[str, dict] = {}
    for spec in specs:
        hostvars = {"ansible_host": addresses[spec.name]}
        if spec.engine != "podman":
            hostvars["llmfleet_lab_engine"] = spec.engine
        if spec.engine in (gateways or {}):
            # Same services, reached on the engine's own bridge address.
            engine_urls = service_urls(settings, gateways[spec.engine])
            hostvars.update({"base_apt_proxy": engine_urls["apt_proxy"],
                             "base_pip_find_links": f"{engine_urls['artifacts']}/wheels/",
                             "llmfleet_lab_services": engine_urls})
        hostvars.update(spec.extra_vars)
        if "virtual_ip_address" in hostvars:
            hostvars["virtual_ip_auth_pass"] = vrrp_password(settings, lab)
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
                "ansible_ssh_common_args": (f"-o UserKnownHostsFile={access.known_hosts(settings)} "
                                            "-o StrictHostKeyChecking=yes"),
                # How the lab's hosts reach the outside world: only through the lab's services,
                # set with the same variables a real air-gapped site sets.
                "base_apt_proxy": urls["apt_proxy"],
                "base_pip_find_links": f"{urls['artifacts']}/wheels/",
                "base_operator_ssh_public_keys": [access.operator_key(settings).with_suffix(".pub").read_text().strip()],
                "llmfleet_lab_name": lab,
                "llmfleet_lab_services": urls,
                # The site CA (made by the registry role) and the engine builds (engine_images.py).
                "llmfleet_lab_pki_dir": str(settings.lab_dir(lab) / "pki"),
                "llmfleet_lab_engine_images": [{"source": f"docker-archive:{path}", "name": f"engines/llamacpp:{build}"}
                                               for build, path in (images or {}).items()],
                "llmfleet_lab_registry_password": registry_password(settings, lab),
            },
            "children": groups,
        }
    }


def write_yaml_inventory(path: Path, inv: dict) -> None:
    # JSON is valid YAML; Ansible's YAML inventory plugin reads it as is.
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by lab/llmfleet_lab.py up: do not edit, it is rewritten on every bring-up.\n"
    path.write_text(header + json.dumps(inv, indent=2) + "\n")
