"""Zone planning (order, resume, capacity), live capacity and soak judgement, result bookkeeping."""

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import rolling_update


def members(layout, backend="llm"):
    """layout: {zone: {host: replicas}} -> LB members like serving.lb_members (one model: backend)."""
    out = []
    for zone, hosts in layout.items():
        for host, count in hosts.items():
            out += [{"name": "%s-r%d" % (host, i), "host": host, "zone": zone, "backend": backend} for i in range(count)]
    return out


FLEET = members({"zone-10": {"m-j1": 2}, "zone-2": {"m-b1": 2, "m-b2": 2}, "zone-1": {"m-a1": 2}})
OLD = {"v": 1}
NEW = {"v": 2}


def hosts_of(plan):
    return [(z["zone"], z["hosts"], z["pending"]) for z in plan["zones"]]


def test_zones_in_natural_order_with_their_servers():
    plan = rolling_update.plan(FLEET, dict.fromkeys(["m-a1", "m-b1", "m-b2", "m-j1"], OLD),
                               dict.fromkeys(["m-a1", "m-b1", "m-b2", "m-j1"], NEW), min_fraction=0.5)
    assert hosts_of(plan) == [("zone-1", ["m-a1"], True), ("zone-2", ["m-b1", "m-b2"], True), ("zone-10", ["m-j1"], True)]
    assert plan["zones"][1]["servers"] == ["m-b1-r0", "m-b1-r1", "m-b2-r0", "m-b2-r1"]
    assert plan["total"] == 8 and plan["required_healthy"] == 4


def test_zones_already_on_the_release_are_skipped_unless_forced():
    current = {"m-a1": NEW, "m-b1": NEW, "m-b2": OLD, "m-j1": OLD}
    planned = dict.fromkeys(current, NEW)
    assert [z["pending"] for z in rolling_update.plan(FLEET, current, planned)["zones"]] == [False, True, True]
    assert [z["pending"] for z in rolling_update.plan(FLEET, current, planned, force=True)["zones"]] == [True] * 3


def test_from_zone_starts_there():
    same = dict.fromkeys(["m-a1", "m-b1", "m-b2", "m-j1"], OLD)
    assert [z["zone"] for z in rolling_update.plan(FLEET, same, same, from_zone="zone-2")["zones"]] == ["zone-2", "zone-10"]
    with pytest.raises(ValueError, match=r"rolling_update_from_zone: 'zone-3' is not a zone of the model nodes "
                                         r"\(zone-1, zone-2, zone-10\)"):
        rolling_update.plan(FLEET, same, same, from_zone="zone-3")


def test_a_zone_too_big_to_take_out_refuses_the_plan():
    # zone-2 holds 4 of 8 replicas: with 60 % required (5), it cannot go out alone.
    with pytest.raises(ValueError, match=r"taking zone zone-2 \(4 of 8 replicas of llm, 5 must stay\) out would leave a model"):
        rolling_update.plan(FLEET, {}, {}, min_fraction=0.6)
    with pytest.raises(ValueError, match=r"8 replicas of llm, 7 must stay"):
        rolling_update.plan(FLEET, {}, {}, min_replicas=7, min_fraction=0)
    # One zone holding every replica can never be updated without an outage.
    with pytest.raises(ValueError, match=r"zone-1 \(2 of 2 replicas of llm, 1 must stay\)"):
        rolling_update.plan(members({"zone-1": {"m-a1": 2}}), {}, {})


def test_each_model_keeps_its_own_replicas_through_a_zone():
    # Two models: "small" lives in zone-1 and zone-2, "chat" only in zone-2. The fleet has 8 replicas
    # and could lose zone-2's 3, but chat would have none left: the models do not stand in for each other.
    fleet = members({"zone-1": {"m-a1": 2, "m-a2": 3}, "zone-2": {"m-b1": 2}}, "small") + \
        members({"zone-2": {"m-b2": 1}}, "chat")
    with pytest.raises(ValueError, match=r"zone-2 \(1 of 1 replicas of chat, 1 must stay\)"):
        rolling_update.plan(fleet, {}, {})
    fleet += members({"zone-1": {"m-a3": 1}}, "chat")
    assert [z["zone"] for z in rolling_update.plan(fleet, {}, {}, min_fraction=0.2)["zones"]] == ["zone-1", "zone-2"]
    assert rolling_update.capacity_shortfalls({"chat": {"zone-1": 1, "zone-2": 1}, "small": {"zone-1": 5, "zone-2": 2}},
                                              1, 0.5) == ["zone-1 (5 of 7 replicas of small, 4 must stay)"]


@pytest.mark.parametrize("total,count,fraction,required", [
    (8, 1, 0.5, 4), (8, 5, 0.5, 5), (6, 1, 2 / 3.0, 4), (6, 0, 0, 0), (3, 1, 0.34, 2), (12, 1, 0.75, 9)])
def test_required_healthy(total, count, fraction, required):
    assert rolling_update.required_healthy(total, count, fraction) == required


@pytest.mark.parametrize("count,fraction,message", [
    (-1, 0.5, "min_healthy_replicas: -1"), (True, 0.5, "min_healthy_replicas: True"),
    (1, 1.0, "min_healthy_fraction: 1.0"), (1, "half", "min_healthy_fraction: 'half'")])
def test_required_healthy_bad_values(count, fraction, message):
    with pytest.raises(ValueError, match=message):
        rolling_update.required_healthy(8, count, fraction)


def test_no_members():
    with pytest.raises(ValueError, match="no load-balancer members"):
        rolling_update.plan([], {}, {})


def view(status="UP", previous="ready", total=0, r5=0, eresp=0, econ=0):
    return {"status": status, "previous": previous, "total": total, "responses_5xx": r5, "failed_responses": eresp,
            "failed_connections": econ}


def test_healthy_means_up_and_ready_on_every_haproxy():
    lb1 = {"a": view(), "b": view(), "c": view(status="DOWN"), "d": view(status="UP 1/2"), "e": view()}
    lb2 = {"a": view(), "b": view(previous="maint"), "c": view(), "d": view(), "e": view()}
    assert rolling_update.healthy_servers([lb1, lb2]) == {"a", "e"}
    assert rolling_update.healthy_servers([]) == set()


def test_capacity_problem():
    everyone = ["a1", "a2", "b1", "b2", "c1", "c2"]
    assert rolling_update.capacity_problem(["a1", "a2"], everyone, ["b1", "b2", "c1", "c2"], 4) == ""
    assert rolling_update.capacity_problem(["a1", "a2"], everyone, ["a1", "a2", "b1", "c1", "c2"], 4) == (
        "only 3 replicas outside this zone are healthy, 4 required; not healthy: b2")


def test_soak_error_rate_limit_is_inclusive():
    before = [{"a": view(total=100), "b": view(total=100)}]
    after_ok = [{"a": view(total=150, r5=1), "b": view(total=150)}]        # 1 in 100 = 1 %
    after_bad = [{"a": view(total=150, r5=1, econ=1), "b": view(total=150)}]  # 2 in 100
    assert rolling_update.soak_problem(before, after_ok, ["a", "b"], 0.01) == ""
    assert rolling_update.soak_problem(before, after_bad, ["a", "b"], 0.01) == (
        "2 errors in 100 requests (2.0%) during the soak, more than 1.0%")
    # Servers outside the zone do not count; no traffic cannot be judged.
    assert rolling_update.soak_problem(before, after_bad, ["b"], 0.01) == ""
    assert rolling_update.soak_problem(before, before, ["a", "b"], 0.0) == ""


def test_soak_adds_up_every_load_balancer():
    before = [{"a": view(total=10)}, {"a": view(total=0)}]
    after = [{"a": view(total=20)}, {"a": view(total=10, eresp=1)}]
    assert "1 errors in 20 requests (5.0%)" in rolling_update.soak_problem(before, after, ["a"], 0.0)


def test_zone_fields():
    times = {"start": 100, "checked": 100.5, "measured": 101.0, "drain_start": 100, "drained": 101.5, "updated": 104,
             "gated": 106, "enabled": 107, "soaked": 117}
    fields = rolling_update.zone_fields(times, "")
    assert fields == {"status": "updated", "step": None, "step_started_at": None,
                      "seconds": {"check": 0.5, "baseline": 0.5, "drain": 1.5, "update": 2.5, "gate": 2.0, "enable": 1.0,
                                  "soak": 10.0, "total": 17.0}}
    refused = rolling_update.zone_fields({"start": 0, "checked": 1}, "only 0 replicas outside", refused=True)
    assert refused["status"] == "refused" and "not touched" in refused["note"]
    failed = rolling_update.zone_fields({"start": 0, "drain_start": 0, "drained": 1, "updated": 5, "gated": 65, "rollback_start": 65,
                                         "rolled_back": 80}, "m-a1: gate: still loading")
    assert failed["status"] == "rolled_back" and failed["error"] == "m-a1: gate: still loading"
    assert failed["seconds"]["rollback"] == 15 and failed["seconds"]["total"] == 80
    worse = rolling_update.zone_fields({"start": "0", "gated": "3"}, "gate", "enable: not done within 60 s")
    assert worse["status"] == "rollback_failed" and worse["rollback_error"] == "enable: not done within 60 s"


def test_result_bookkeeping():
    plan = rolling_update.plan(FLEET, {"m-a1": NEW}, dict.fromkeys(["m-a1", "m-b1", "m-b2", "m-j1"], NEW))
    result = rolling_update.new_result(plan, "2026-11-23T10:00:00Z")
    assert [z["status"] for z in result["zones"]] == ["skipped", "pending", "pending"]
    result = rolling_update.record_zone(result, "zone-2", {"status": "updated", "seconds": {"total": 12.0}})
    assert result["status"] == "running"
    result = rolling_update.record_zone(result, "zone-10", {"status": "rolled_back", "error": "gate: boom"})
    assert result["status"] == "stopped" and result["zones"][1]["seconds"] == {"total": 12.0}
    lines = rolling_update.summary(result)
    assert lines[0].startswith("zone-1       skipped") and "[total 12.0s]" in lines[1]
    assert lines[2].endswith("error: gate: boom") and lines[3] == "result: stopped"


def test_failure_message_of_a_loop_names_the_failed_item():
    loop = {"failed": True, "msg": "One or more items failed", "results": [
        {"failed": False, "msg": "ok"}, {"failed": True, "msg": "http://127.0.0.1:8001: still loading after 20 s"}]}
    assert rolling_update.failure(loop) == "http://127.0.0.1:8001: still loading after 20 s"
    assert rolling_update.failure({"failed": True, "msg": "apt failed"}) == "apt failed"
    assert rolling_update.failure({}) == "failed"


def test_the_live_capacity_check_keeps_each_models_minimum():
    fleet = members({"zone-1": {"m-a1": 2}, "zone-2": {"m-b1": 2}, "zone-3": {"m-c1": 2}}, "small") + \
        members({"zone-1": {"m-a2": 1}, "zone-2": {"m-b2": 1}}, "chat")
    plan = rolling_update.plan(fleet, {}, {})
    assert plan["servers_by_model"]["chat"] == ["m-a2-r0", "m-b2-r0"]
    assert plan["required_by_model"] == {"small": 3, "chat": 1}
    zone_1 = ["m-a1-r0", "m-a1-r1", "m-a2-r0"]
    everyone = [m["name"] for m in fleet]
    assert rolling_update.capacity_problem(zone_1, plan["servers_by_model"], everyone, plan["required_by_model"]) == ""
    # Four small replicas healthy outside zone-1 would carry a one-model fleet of this size, but chat's
    # only other replica is down: chat would be gone.
    sick = [n for n in everyone if n != "m-b2-r0"]
    assert rolling_update.capacity_problem(zone_1, plan["servers_by_model"], sick, plan["required_by_model"]) == (
        "only 0 replicas of chat outside this zone are healthy, 1 required; not healthy: m-b2-r0")


def test_a_run_for_some_models_plans_only_their_replicas():
    fleet = [dict(m, model="smollm2", aliases=["small"]) for m in members({"zone-1": {"m-a1": 2}, "zone-2": {"m-b1": 2}}, "llm")] + \
        [dict(m, model="gemma3-270m", aliases=["gemma"]) for m in members({"zone-1": {"m-a2": 1}, "zone-2": {"m-b2": 1}}, "g")]
    assert rolling_update.select_models(fleet, []) == fleet
    chosen = rolling_update.select_models(fleet, ["gemma"])
    assert [m["name"] for m in chosen] == ["m-a2-r0", "m-b2-r0"]
    assert rolling_update.select_models(fleet, ["g"]) == chosen == rolling_update.select_models(fleet, ["gemma3-270m"])
    plan = rolling_update.plan(chosen, {}, {})
    assert [z["hosts"] for z in plan["zones"]] == [["m-a2"], ["m-b2"]] and list(plan["servers_by_model"]) == ["g"]
    with pytest.raises(ValueError, match=r"rolling_update_models: gpt-9 is not a model of the fleet \(models: g, gemma, "
                                         r"gemma3-270m, llm, small, smollm2\)"):
        rolling_update.select_models(fleet, ["gpt-9", "gemma"])


def test_a_zone_is_run_by_its_nodes_and_enough_others_to_call_every_lb_at_once():
    play = ["m-a1", "m-b1", "m-b2", "m-c1", "m-c2", "m-j1"]
    zones = [{"zone": "zone-1", "hosts": ["m-a1"]}, {"zone": "zone-2", "hosts": ["m-b2", "m-b1"]}]
    # Two LBs: zone-1's one node and one other; zone-2's two nodes and still one other (a zone whose
    # nodes are all lost keeps a node that notices it).
    two = rolling_update.task_hosts(zones, 2, play)
    assert [z["task_hosts"] for z in two] == [["m-a1", "m-b1"], ["m-a1", "m-b1", "m-b2"]]
    assert two[0]["zone"] == "zone-1" and two[0]["hosts"] == ["m-a1"]
    # Four LBs: others up to four nodes in all, in the play's order; a node lost before the plan (not in
    # the play) runs nothing.
    four = rolling_update.task_hosts(zones, 4, [h for h in play if h != "m-b1"])
    assert [z["task_hosts"] for z in four] == [["m-a1", "m-b2", "m-c1", "m-c2"], ["m-a1", "m-b2", "m-c1", "m-c2"]]
    # Without LBs, or in a fleet of one zone: the zone's nodes and whatever else there is.
    assert rolling_update.task_hosts(zones[:1], 0, play)[0]["task_hosts"] == ["m-a1", "m-b1"]
    assert rolling_update.task_hosts(zones[:1], 3, ["m-a1"])[0]["task_hosts"] == ["m-a1"]


def test_a_fleet_of_hundreds_runs_each_zone_on_its_own_nodes_and_a_few_others():
    play = ["m-%d" % i for i in range(900)]
    zones = [{"zone": "z%d" % z, "hosts": play[z::9]} for z in range(9)]
    for zone in rolling_update.task_hosts(zones, 3, play):
        assert len(zone["task_hosts"]) == 101
        assert set(zone["hosts"]) < set(zone["task_hosts"])


def test_a_zone_that_no_node_ran_stops_the_run():
    plan = {"zones": [{"zone": z, "hosts": [h], "pending": True} for z, h in (("a", "m-a1"), ("b", "m-b1"), ("c", "m-c1"))],
            "required_healthy": 1, "total": 3}
    result = rolling_update.new_result(plan, "2026-12-07T00:00:00Z")
    result = rolling_update.record_zone(result, "a", {"status": "updated"})
    assert rolling_update.unrun_problem(result, "b") == ""
    # b was never run (every node of its task_hosts lost): c is refused, and a run that did not stop says so.
    assert rolling_update.unrun_problem(result, "c") == "b: " + rolling_update.UNRUN
    result = rolling_update.zone_step(result, "b", "draining", "t")
    assert rolling_update.unrun_problem(result, "c").startswith("b: no node")
    finished = rolling_update.finish(result, False, False, "end")
    assert finished["status"] == "stopped" and finished["finished_at"] == "end"
    assert [(z["status"], z.get("error")) for z in finished["zones"]] == [
        ("updated", None), ("stopped", rolling_update.UNRUN), ("stopped", rolling_update.UNRUN)]


def test_finish_says_how_the_run_ended():
    plan = {"zones": [{"zone": "a", "hosts": ["m-a1"], "pending": True}, {"zone": "b", "hosts": ["m-b1"], "pending": False}],
            "required_healthy": 1, "total": 2}
    result = rolling_update.new_result(plan, "s")
    done = rolling_update.record_zone(result, "a", {"status": "updated"})
    assert rolling_update.finish(done, False, False, "e")["status"] == "updated"
    assert rolling_update.finish(rolling_update.record_zone(result, "a", {"status": "would_update"}), False, True, "e")["status"] == "checked"
    # A run that stopped at a zone leaves the later ones pending: they were not touched.
    stopped = rolling_update.finish(result, True, False, "e")
    assert stopped["status"] == "stopped" and stopped["zones"][0] == {"zone": "a", "hosts": ["m-a1"], "status": "pending"}
