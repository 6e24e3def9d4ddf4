"""The lab's site layout (lab/fleetlab topology.default_topology, inventory.inventory), its settings, and
how a docker-engine host joins the lab network (engines.DockerEngine.attach): plain data and recorded
commands, no host started."""

import ipaddress

import pytest
from fleetlab import engines, inventory, topology
from fleetlab.settings import Settings
from fleetlab.system import LabError, Machine


@pytest.fixture(name="keys")
def fixture_keys(settings):
    """The admin and operator keys as files (inventory() reads the operator's public key)."""
    ssh = settings.state / "ssh"
    ssh.mkdir(parents=True)
    for name in ("id_ed25519", "operator_ed25519"):
        (ssh / name).write_text("private\n")
        (ssh / f"{name}.pub").write_text(f"ssh-ed25519 AAAA {name}\n")
    return ssh


def docker_engine(settings, monkeypatch, stdout):
    engine = engines.engines(Machine(settings))["docker"]
    monkeypatch.setattr(engine.machine, "docker", lambda *args, **kw: type("P", (), {"stdout": stdout})())
    return engine


def test_the_last_zone_runs_containers_from_the_registry_on_infra1(settings):
    specs = {s.name: s for s in topology.default_topology(settings, 3, 2, 2, 1, container_zones=1)}
    containers = sorted(n for n, s in specs.items() if "container_nodes" in s.groups)
    assert containers == ["model-c1", "model-c2"]
    assert {specs[n].engine for n in containers} == {"docker"}
    assert {s.engine for n, s in specs.items() if n not in containers} == {"podman"}
    assert all("model_nodes" in specs[n].groups for n in containers)
    assert specs["infra1"].groups == ["infra", "registry"]


def test_without_a_container_zone_there_is_no_registry(settings):
    specs = topology.default_topology(settings, 2, 1, 1, 1)
    assert {s.engine for s in specs} == {"podman"}
    assert not any("registry" in s.groups or "container_nodes" in s.groups for s in specs)


def test_an_unknown_engine_is_refused_naming_the_host():
    with pytest.raises(LabError, match="host h1: engine 'lxc' is not one of podman, docker, nspawn"):
        topology.parse_host_specs('[{"name": "h1", "groups": ["infra"], "engine": "lxc"}]')


def test_podman_and_the_lab_tool_lease_disjoint_halves_of_the_subnet(settings):
    assert settings.podman_range.supernet() == settings.subnet == settings.attached_range.supernet()
    assert not settings.podman_range.overlaps(settings.attached_range)
    assert ipaddress.ip_address(settings.gateway) in settings.podman_range


def test_settings_come_from_the_environment_and_the_addresses_follow_the_subnet(tmp_path):
    settings = Settings.from_env({"LLMFLEET_LAB_SUBNET": "10.99.0.0/25", "LLMFLEET_LAB_STATE": str(tmp_path),
                                  "LLMFLEET_LAB_GATEWAY_PORT": "3200", "LLMFLEET_LAB_NETWORK": "other"})
    assert (settings.state, settings.network, settings.gateway_port) == (tmp_path, "other", 3200)
    assert (settings.gateway, str(settings.virtual_ip)) == ("10.99.0.1", "10.99.0.126")
    assert str(settings.attached_range) == "10.99.0.64/26"
    assert Settings.from_env({}).state == Settings().state  # the clone's .lab


def test_a_docker_engine_host_gets_the_first_free_upper_address(settings, monkeypatch):
    engine = docker_engine(settings, monkeypatch, "10.213.9.129\n10.213.9.130\n\n")
    assert engine.free_address() == "10.213.9.131"


def test_joining_the_lab_network_is_a_veth_on_the_bridge_and_is_idempotent(settings, monkeypatch):
    calls = []
    state = {"addr": "", "link": ""}

    def run(cmd, check=True, **kw):
        calls.append(cmd)
        out = ""
        if cmd[-4:] == ["addr", "show", "dev", "eth0"]:
            out = state["addr"]
        elif cmd[:4] == ["ip", "-o", "link", "show"]:
            out = state["link"]
        return type("P", (), {"stdout": out, "returncode": 0})()

    monkeypatch.setattr(engines, "run", run)
    engine = docker_engine(settings, monkeypatch, "4242\n")
    monkeypatch.setattr(engine.network, "bridge", lambda: "podman1")
    engine.attach("llmfleet-main-model-c1", "10.213.9.129")
    made = [c for c in calls if "add" in c or "master" in c or ("set" in c and "up" in c)]
    outer = made[0][3]
    assert outer.startswith("lfd") and len(outer) <= 15
    assert made == [
        ["ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", "4242"],
        ["ip", "link", "set", outer, "master", "podman1", "up"],
        ["nsenter", "-t", "4242", "-n", "--", "ip", "addr", "add", "10.213.9.129/24", "dev", "eth0"],
        ["nsenter", "-t", "4242", "-n", "--", "ip", "link", "set", "eth0", "up"],
    ]
    # Joined already (its address inside, its veth on the bridge): nothing is done again.
    calls.clear()
    state.update(addr="2: eth0    inet 10.213.9.129/24 scope global eth0", link=f"7: {outer}@if2: <UP> master podman1 state UP")
    engine.attach("llmfleet-main-model-c1", "10.213.9.129")
    assert not [c for c in calls if "add" in c or "del" in c]


def test_the_inventory_carries_the_engine_builds_the_site_ca_and_a_registry_password(settings, keys, tmp_path):
    specs = topology.default_topology(settings, 1, 1, 1, 1, container_zones=1)
    addresses = {s.name: f"10.213.9.{10 + i}" for i, s in enumerate(specs)}
    images = {"b1": tmp_path / "b1.tar"}
    inv = inventory.inventory(settings, "main", specs, addresses, images)
    fleet = inv["all"]["vars"]
    assert fleet["llmfleet_lab_engine_images"] == [{"source": f"docker-archive:{tmp_path / 'b1.tar'}",
                                                    "name": "engines/llamacpp:b1"}]
    assert fleet["llmfleet_lab_pki_dir"] == str(settings.state / "labs" / "main" / "pki")
    assert fleet["base_operator_ssh_public_keys"] == ["ssh-ed25519 AAAA operator_ed25519"]
    password = fleet["llmfleet_lab_registry_password"]
    assert len(password) == 32 and inventory.inventory(settings, "main", specs, addresses, images)["all"]["vars"][
        "llmfleet_lab_registry_password"] == password
    assert oct((settings.state / "labs" / "main" / "registry-password").stat().st_mode & 0o777) == "0o600"
    # A child of model_nodes: its group_vars win over model_nodes' (a sibling's would lose, by name order).
    model_nodes = inv["all"]["children"]["model_nodes"]
    assert model_nodes["children"]["container_nodes"]["hosts"]["model-a1"]["llmfleet_lab_engine"] == "docker"
    assert "container_nodes" not in inv["all"]["children"] and "model-a1" in model_nodes["hosts"]


def test_nspawn_hosts_are_told_their_own_gateway(settings, keys):
    specs = topology.parse_host_specs('[{"name": "n1", "groups": ["infra"], "engine": "nspawn"}, '
                                      '{"name": "p1", "groups": ["infra"]}]')
    inv = inventory.inventory(settings, "t", specs, {"n1": "10.213.11.10", "p1": "10.213.9.10"},
                              gateways={"nspawn": settings.nspawn_gateway})
    hosts = inv["all"]["children"]["infra"]["hosts"]
    assert hosts["n1"]["base_apt_proxy"] == f"http://{settings.nspawn_gateway}:3142"
    assert hosts["n1"]["llmfleet_lab_engine"] == "nspawn"
    assert "base_apt_proxy" not in hosts["p1"] and inv["all"]["vars"]["base_apt_proxy"] == "http://10.213.9.1:3142"


def test_with_three_load_balancers_the_haproxy_pair_shares_the_reserved_vip(settings, keys):
    specs = topology.default_topology(settings, 3, 1, 3, 1)
    addresses = {s.name: f"10.213.9.{10 + i}" for i, s in enumerate(specs)}
    lbs = inventory.inventory(settings, "main", specs, addresses)["all"]["children"]["load_balancers"]["hosts"]
    vip = f"{settings.virtual_ip}/{settings.subnet.prefixlen}"
    assert [lbs[lb].get("virtual_ip_address") for lb in ("lb1", "lb2", "lb3")] == [vip, None, vip]
    password = lbs["lb1"]["virtual_ip_auth_pass"]
    assert len(password) == 8 and lbs["lb3"]["virtual_ip_auth_pass"] == password and "virtual_ip_auth_pass" not in lbs["lb2"]
    # The lab tool never gives the VIP to a docker-engine host, and podman leases only the lower half.
    assert settings.virtual_ip in settings.attached_range and settings.virtual_ip not in settings.podman_range
    # With two load balancers (lb2 being nginx) there is no pair: no VIP.
    assert not any(s.extra_vars for s in topology.default_topology(settings, 3, 1, 2, 1) if s.name.startswith("lb"))


def test_the_vip_is_skipped_when_docker_engine_hosts_take_addresses(settings, monkeypatch):
    upper = [str(a) for a in settings.attached_range.hosts() if a != settings.virtual_ip]
    assert docker_engine(settings, monkeypatch, "\n".join(upper[:-1])).free_address() == upper[-1]
    with pytest.raises(LabError, match="no free address left"):
        docker_engine(settings, monkeypatch, "\n".join(upper)).free_address()
