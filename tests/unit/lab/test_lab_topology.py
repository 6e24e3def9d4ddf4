"""The lab's site layout (lab/llmfleet_lab.py default_topology, inventory) and how a docker-engine host
joins the lab network (attach_to_lab_network): plain data and recorded commands, no host started."""

import pytest


def test_the_last_zone_runs_containers_from_the_registry_on_infra1(lab_module):
    specs = {s.name: s for s in lab_module.default_topology(3, 2, 2, 1, container_zones=1)}
    containers = sorted(n for n, s in specs.items() if "container_nodes" in s.groups)
    assert containers == ["model-c1", "model-c2"]
    assert {specs[n].engine for n in containers} == {"docker"}
    assert {s.engine for n, s in specs.items() if n not in containers} == {"podman"}
    assert all("model_nodes" in specs[n].groups for n in containers)
    assert specs["infra1"].groups == ["infra", "registry"]


def test_without_a_container_zone_there_is_no_registry(lab_module):
    specs = lab_module.default_topology(2, 1, 1, 1)
    assert {s.engine for s in specs} == {"podman"}
    assert not any("registry" in s.groups or "container_nodes" in s.groups for s in specs)


def test_podman_and_the_lab_tool_lease_disjoint_halves_of_the_subnet(lab_module):
    assert lab_module.PODMAN_RANGE.supernet() == lab_module.SUBNET == lab_module.ATTACHED_RANGE.supernet()
    assert not lab_module.PODMAN_RANGE.overlaps(lab_module.ATTACHED_RANGE)
    assert lab_module.ipaddress.ip_address(lab_module.GATEWAY) in lab_module.PODMAN_RANGE


def test_a_docker_engine_host_gets_the_first_free_upper_address(lab_module, monkeypatch):
    taken = "10.213.9.129\n10.213.9.130\n\n"
    monkeypatch.setattr(lab_module, "docker", lambda *args, **kw: type("P", (), {"stdout": taken})())
    assert lab_module._free_attached_address() == "10.213.9.131"


def test_joining_the_lab_network_is_a_veth_on_the_bridge_and_is_idempotent(lab_module, monkeypatch):
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

    monkeypatch.setattr(lab_module, "run", run)
    monkeypatch.setattr(lab_module, "docker", lambda *args, **kw: type("P", (), {"stdout": "4242\n"})())
    monkeypatch.setattr(lab_module, "ensure_lab_bridge", lambda: "podman1")
    lab_module.attach_to_lab_network("llmfleet-main-model-c1", "10.213.9.129")
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
    lab_module.attach_to_lab_network("llmfleet-main-model-c1", "10.213.9.129")
    assert not [c for c in calls if "add" in c or "del" in c]


def test_the_inventory_carries_the_engine_builds_the_site_ca_and_a_registry_password(lab_module, monkeypatch, tmp_path):
    monkeypatch.setattr(lab_module, "STATE", tmp_path)
    monkeypatch.setattr(lab_module, "ssh_key", lambda: tmp_path / "key")
    monkeypatch.setattr(lab_module, "operator_key", lambda: tmp_path / "op")
    (tmp_path / "op.pub").write_text("ssh-ed25519 AAAA op\n")
    specs = lab_module.default_topology(1, 1, 1, 1, container_zones=1)
    addresses = {s.name: f"10.213.9.{10 + i}" for i, s in enumerate(specs)}
    images = {"b1": tmp_path / "b1.tar"}
    inv = lab_module.inventory("main", specs, addresses, images)
    fleet = inv["all"]["vars"]
    assert fleet["llmfleet_lab_engine_images"] == [{"source": f"docker-archive:{tmp_path / 'b1.tar'}",
                                                    "name": "engines/llamacpp:b1"}]
    assert fleet["llmfleet_lab_pki_dir"] == str(tmp_path / "labs" / "main" / "pki")
    password = fleet["llmfleet_lab_registry_password"]
    assert len(password) == 32 and lab_module.inventory("main", specs, addresses, images)["all"]["vars"][
        "llmfleet_lab_registry_password"] == password
    assert oct((tmp_path / "labs" / "main" / "registry-password").stat().st_mode & 0o777) == "0o600"
    # A child of model_nodes: its group_vars win over model_nodes' (a sibling's would lose, by name order).
    model_nodes = inv["all"]["children"]["model_nodes"]
    assert model_nodes["children"]["container_nodes"]["hosts"]["model-a1"]["llmfleet_lab_engine"] == "docker"
    assert "container_nodes" not in inv["all"]["children"] and "model-a1" in model_nodes["hosts"]


def test_with_three_load_balancers_the_haproxy_pair_shares_the_reserved_vip(lab_module, monkeypatch, tmp_path):
    monkeypatch.setattr(lab_module, "STATE", tmp_path)
    monkeypatch.setattr(lab_module, "ssh_key", lambda: tmp_path / "key")
    monkeypatch.setattr(lab_module, "operator_key", lambda: tmp_path / "op")
    (tmp_path / "op.pub").write_text("ssh-ed25519 AAAA op\n")
    specs = lab_module.default_topology(3, 1, 3, 1)
    addresses = {s.name: f"10.213.9.{10 + i}" for i, s in enumerate(specs)}
    lbs = lab_module.inventory("main", specs, addresses)["all"]["children"]["load_balancers"]["hosts"]
    vip = f"{lab_module.VIRTUAL_IP}/{lab_module.SUBNET.prefixlen}"
    assert [lbs[lb].get("virtual_ip_address") for lb in ("lb1", "lb2", "lb3")] == [vip, None, vip]
    password = lbs["lb1"]["virtual_ip_auth_pass"]
    assert len(password) == 8 and lbs["lb3"]["virtual_ip_auth_pass"] == password and "virtual_ip_auth_pass" not in lbs["lb2"]
    # The lab tool never gives the VIP to a docker-engine host, and podman leases only the lower half.
    assert lab_module.VIRTUAL_IP in lab_module.ATTACHED_RANGE and lab_module.VIRTUAL_IP not in lab_module.PODMAN_RANGE
    # With two load balancers (lb2 being nginx) there is no pair: no VIP.
    assert not any(s.extra_vars for s in lab_module.default_topology(3, 1, 2, 1) if s.name.startswith("lb"))


def test_the_vip_is_skipped_when_docker_engine_hosts_take_addresses(lab_module, monkeypatch):
    upper = [str(a) for a in lab_module.ATTACHED_RANGE.hosts() if a != lab_module.VIRTUAL_IP]
    monkeypatch.setattr(lab_module, "docker", lambda *args, **kw: type("P", (), {"stdout": "\n".join(upper[:-1])})())
    assert lab_module._free_attached_address() == upper[-1]
    monkeypatch.setattr(lab_module, "docker", lambda *args, **kw: type("P", (), {"stdout": "\n".join(upper)})())
    with pytest.raises(lab_module.LabError, match="no free address left"):
        lab_module._free_attached_address()
