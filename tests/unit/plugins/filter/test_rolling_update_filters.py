"""The rolling update's filters over registered results: LB views (an unreachable LB is an error, not an
abort) and the gate's completion times."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.filter import rolling_update as f


def test_lb_views_turn_unreachable_and_failed_items_into_errors():
    results = [
        {"__rolling_update_lb": {"host": "lb1", "engine": "haproxy"}, "engine": "haproxy", "changed": False,
         "servers": {"a": {"status": "UP", "previous": "ready"}}, "owned": {}, "waited_seconds": 1.5},
        {"__rolling_update_lb": {"host": "lb2", "engine": "nginx"}, "unreachable": True,
         "msg": "Failed to connect to the host via ssh: Connection refused"},
        {"__rolling_update_lb": {"host": "lb3", "engine": "haproxy"}, "failed": True, "msg": "backend llm has no server x"},
    ]
    views = f.rolling_update_lb_views(results)
    assert [(v["lb"], v["engine"], v["error"]) for v in views] == [
        ("lb1", "haproxy", ""), ("lb2", "nginx", "unreachable: Failed to connect to the host via ssh: Connection refused"),
        ("lb3", "haproxy", "backend llm has no server x")]
    assert views[0]["waited_seconds"] == 1.5
    assert f.rolling_update_lb_problem(views).startswith("lb2: unreachable")
    assert f.rolling_update_healthy(views) == ["a"]


def test_lb_views_from_several_hosts_follow_the_lb_list_and_name_an_lb_nobody_called():
    lbs = [{"host": "lb1", "engine": "haproxy"}, {"host": "lb2", "engine": "nginx"}, {"host": "lb3", "engine": "haproxy"}]
    # Joined from two nodes' registered loops, in the nodes' order (lb3's share came first).
    results = [{"__rolling_update_lb": lbs[2], "servers": {}}, {"__rolling_update_lb": lbs[0], "servers": {}}]
    views = f.rolling_update_lb_views(results, lbs)
    assert [(v["lb"], v["engine"], v["error"]) for v in views] == [
        ("lb1", "haproxy", ""), ("lb2", "nginx", "no answer: its call did not run"), ("lb3", "haproxy", "")]
    assert f.rolling_update_lb_problem(views).startswith("lb2: no answer")


def test_lb_share_calls_every_lb_exactly_once_across_the_play():
    lbs = [{"host": "lb%d" % i} for i in range(5)]
    for hosts in (["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d", "e", "f", "g"]):
        shares = [f.rolling_update_lb_share(lbs, hosts, h) for h in hosts]
        assert sorted(lb["host"] for share in shares for lb in share) == [lb["host"] for lb in lbs]
        # As even as it gets: no host calls two LBs while another calls none.
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert f.rolling_update_lb_share(lbs, ["a", "b"], "b") == [lbs[1], lbs[3]]
    assert f.rolling_update_lb_share(lbs, ["a", "b"], "gone") == []
    assert f.rolling_update_lb_share([], ["a"], "a") == []


def test_soak_is_judged_per_lb_that_answered_both_looks():
    def view(lb, total, r5=0, error=""):
        return {"lb": lb, "engine": "haproxy", "error": error,
                "servers": {"a": {"total": total, "responses_5xx": r5, "failed_responses": 0, "failed_connections": 0}}}
    before = [view("lb1", 0), view("lb2", 0)]
    after = [view("lb1", 100, r5=5), view("lb2", 0, error="unreachable")]
    assert f.rolling_update_soak_problem(before, after, ["a"], 0.01).startswith("5 errors in 100 requests")
    assert f.rolling_update_soak_problem(before[1:], after, ["a"], 0.01) == ""


def test_completion_seconds_from_every_hosts_gate():
    registered = [
        {"results": [{"attempts": [{"state": "ok", "completion_ms": 120.0}, {"state": "failed", "completion_ms": 9000},
                                   {"state": "ok", "completion_ms": 80.0}]}, {"skipped": True}]},
        {"skipped": True, "results": []},
        {"attempts": [{"state": "loading"}, {"state": "ok", "completion_ms": 100.0}]},
        # A node's replicas gated at once, one of them failing (it gives no passing sample).
        {"failed": True, "replicas": [{"attempts": [{"state": "ok", "completion_ms": 90.0}]},
                                      {"attempts": [{"state": "failed", "reason": "refused"}]}]},
    ]
    assert f.rolling_update_completion_seconds(registered) == [0.12, 0.08, 0.1, 0.09]
    assert f.rolling_update_latency_budget([0.12, 0.08, 0.1], "3", 0, 0.25) == {"budget": 0.3, "baseline": 0.1}


def test_lb_list_is_where_the_load_balancer_role_runs_with_its_engine_and_socket():
    def lb(zone, engine, socket, roles=("load_balancer",)):
        entry = {"address": "10.0.0.1", "zone": zone, "zone_label": zone or "none", "roles": list(roles)}
        if "load_balancer" in roles:
            entry["load_balancer"] = {"engine": engine, "runtime_socket": socket}
        return entry
    fleet = {"hosts": {"lb2": lb("zone-b", "nginx", "/run/x.sock"), "lb1": lb("zone-a", "haproxy", "/run/haproxy/admin.sock"),
                       # In the load_balancers group with load_balancer_enabled: false: not an LB of this run.
                       "lb3": lb("zone-a", None, None, roles=("base",))}}
    assert f.rolling_update_lb_list(fleet) == [
        {"host": "lb1", "engine": "haproxy", "socket": "/run/haproxy/admin.sock"},
        {"host": "lb2", "engine": "nginx", "socket": "/run/x.sock"}]
    with pytest.raises(AnsibleFilterError, match="llmfleet_fleet is not set"):
        f.rolling_update_lb_list(None)


def test_a_nodes_replicas_as_urls_on_the_node_itself():
    from ansible_collections.llmfleet.cluster.plugins.filter import serving
    plan = {"replicas": [{"index": 0, "port": 8000, "gpus": [0]}, {"index": 1, "port": "8001", "gpus": [1]}]}
    assert serving.model_server_local_urls(plan) == ["http://127.0.0.1:8000", "http://127.0.0.1:8001"]


def test_a_nodes_replicas_processes_for_the_gates_watch_in_the_order_of_their_urls():
    from ansible_collections.llmfleet.cluster.plugins.filter import serving
    replicas = [{"index": 0, "port": 8000, "gpus": []}, {"index": 1, "port": 8001, "gpus": []}]
    assert serving.model_server_local_watch({"runtime": "systemd", "name": "llm", "replicas": replicas}) == [
        "systemd:llmfleet-llm-0.service", "systemd:llmfleet-llm-1.service"]
    assert serving.model_server_local_watch({"runtime": "docker", "name": "qwen", "replicas": replicas}) == [
        "docker:llmfleet-qwen-0", "docker:llmfleet-qwen-1"]
