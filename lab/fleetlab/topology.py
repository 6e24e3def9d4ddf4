"""The lab's site: which hosts it has, in which groups and zones, on which engine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .settings import ENGINES, GROUP_CAPABILITIES, GROUP_VOLUMES, Settings
from .system import LabError


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


def default_topology(settings: Settings, zones: int, model_nodes: int, lbs: int, infra: int,
                     container_zones: int = 0) -> list[HostSpec]:
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
        extra = ({"virtual_ip_address": f"{settings.virtual_ip}/{settings.subnet.prefixlen}"}
                 if lbs >= 3 and i in (1, 3) else {})
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
