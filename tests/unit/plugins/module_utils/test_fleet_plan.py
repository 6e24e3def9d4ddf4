"""The fleet plan (module_utils/fleet_plan.py) from hosts as fleet_validate resolves them: each role's
values as the role will use them. End to end through the action and Prometheus' targets:
tests/unit/test_inventory_validation.py."""

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_plan


def resolved(name, zone=None, address=None, **roles):
    values = {"ansible_host": "%s.example.com" % name}
    if zone:
        values["llmfleet_zone"] = zone
    if address:
        values["llmfleet_address"] = address
    return {"name": name, "groups": [], "values": values, "validated": roles}


LB_VALUES = {"load_balancer_engine": "haproxy", "load_balancer_stats_port": 8405,
             "load_balancer_runtime_socket": "/run/haproxy/admin.sock", "load_balancer_access_log": "/var/log/lb.json",
             "load_balancer_https_port": 443, "load_balancer_local_port": 8406}
HOSTS = [
    resolved("lb10", "zone-b", "10.0.2.5", base={}, load_balancer=LB_VALUES, node_exporter={"node_exporter_port": 9100},
             firewall={"firewall_ssh_allowed_networks": ["10.9.0.0/16"]}),
    resolved("lb2", "zone-b", "10.0.2.6", load_balancer=dict(LB_VALUES, load_balancer_engine="nginx")),
    resolved("gpu-a1", "zone-a", None, model_server={"model_server_name": "llm"}, node_exporter={"node_exporter_port": 9200}),
    resolved("infra1", None, "fd00::5", node_exporter={"node_exporter_port": 9100}),
]


def test_each_host_carries_its_address_zone_roles_and_the_endpoints_of_the_roles_that_run_there():
    plan = fleet_plan.fleet_plan(HOSTS)["hosts"]
    assert plan["lb10"] == {
        "address": "10.0.2.5", "zone": "zone-b", "zone_label": "zone-b",
        "roles": ["base", "firewall", "load_balancer", "node_exporter"],
        "load_balancer": {"engine": "haproxy", "stats_port": 8405, "runtime_socket": "/run/haproxy/admin.sock",
                          "access_log": "/var/log/lb.json", "https_port": 443, "local_port": 8406},
        "node_exporter": {"port": 9100},
        "firewall": {"ssh_allowed_networks": ["10.9.0.0/16"]}}
    # ansible_host when there is no llmfleet_address; no endpoint for a role that does not run.
    assert plan["gpu-a1"] == {"address": "gpu-a1.example.com", "zone": "zone-a", "zone_label": "zone-a",
                              "roles": ["model_server", "node_exporter"], "node_exporter": {"port": 9200}}
    # A host without a zone: "" to sort by (last), "none" as a label (an empty label is no label).
    assert (plan["infra1"]["zone"], plan["infra1"]["zone_label"]) == ("", "none")


def test_hosts_running_a_role_come_zone_by_zone_then_in_natural_name_order():
    plan = fleet_plan.fleet_plan(HOSTS)
    assert fleet_plan.hosts_running(plan, "load_balancer") == ["lb2", "lb10"]
    assert fleet_plan.hosts_running(plan, "node_exporter") == ["gpu-a1", "lb10", "infra1"]
    assert fleet_plan.hosts_running(plan, "prometheus") == []


@pytest.mark.parametrize("fleet", [None, {}, {"hosts": []}, "llmfleet_fleet"])
def test_a_missing_plan_says_what_to_run(fleet):
    with pytest.raises(ValueError, match=r"llmfleet_fleet is not set: run playbooks/validate.yml earlier in the same run"):
        fleet_plan.hosts_running(fleet, "load_balancer")


def test_a_host_the_plan_does_not_have_is_named():
    with pytest.raises(ValueError, match="^lb9 is not in llmfleet_fleet"):
        fleet_plan.fleet_host(fleet_plan.fleet_plan(HOSTS), "lb9")
    assert fleet_plan.fleet_host(fleet_plan.fleet_plan(HOSTS), "lb2")["load_balancer"]["engine"] == "nginx"


def _vip(name, address, **values):
    return resolved(name, "zone-a", address, load_balancer=LB_VALUES,
                    virtual_ip=dict({"virtual_ip_address": "10.0.2.250/24", "virtual_ip_auth_pass": "s3cret",
                                     "virtual_ip_router_id": 0, "virtual_ip_priority": 0}, **values))


def test_load_balancers_sharing_a_vip_know_their_peers_their_priority_and_the_router_id():
    hosts = [_vip("lb3", "10.0.2.7"), _vip("lb1", "10.0.2.5"), _vip("lb2", "10.0.2.6", virtual_ip_address=""),
             _vip("lb9", "10.0.3.9", virtual_ip_address="10.0.3.250/24", virtual_ip_router_id=7, virtual_ip_priority=120)]
    plan = fleet_plan.fleet_plan(hosts)["hosts"]
    # Automatic priorities by name: 250 for the first, 10 less for each next; the router id is the VIP's last byte.
    assert plan["lb1"]["virtual_ip"] == {"address": "10.0.2.250", "prefix": 24, "router_id": 250, "priority": 250,
                                         "peers": ["10.0.2.7"], "holders": ["lb1", "lb3"]}
    assert plan["lb3"]["virtual_ip"]["priority"] == 240
    assert plan["lb3"]["virtual_ip"]["peers"] == ["10.0.2.5"]
    assert "virtual_ip" not in plan["lb2"]
    # Alone in its group: no peers; its own router id and priority.
    assert plan["lb9"]["virtual_ip"] == {"address": "10.0.3.250", "prefix": 24, "router_id": 7, "priority": 120,
                                         "peers": [], "holders": ["lb9"]}


def test_a_vip_with_a_problem_gets_no_place_in_the_plan():
    plan = fleet_plan.fleet_plan([_vip("lb1", "10.0.2.5", virtual_ip_auth_pass="far-too-long")])["hosts"]
    assert "virtual_ip" not in plan["lb1"]
