"""Ownership and repair logic of the rolling update under faults: drains recorded as ours on each LB,
what a rerun repairs, what a refusal and a rollback may drain, the gate's latency budget, the result
file's steps. Fake LB views (what lb_member returns) stand in for the load balancers.

The three faults of issue 14, each as the data the next run sees:
1. Ctrl-C right after zone-a was drained: the LBs' ledgers hold zone-a's claims, so the next run
   restores zone-a to *ready* (the state before the first run), not to its leftover drain.
2. One LB lost mid-update: its error is reported (not a silent abort), and its claims are found by the
   next run.
3. Two zones left out: the update of zone-a is refused before any change, and a rollback may not drain
   the last serving zone.
"""

from ansible_collections.llmfleet.cluster.plugins.module_utils import lb_member, rolling_update

MEMBERS = [{"name": "%s-r%d" % (host, i), "host": host, "zone": zone}
           for zone, hosts in (("zone-a", ("m-a1", "m-a2")), ("zone-b", ("m-b1",)), ("zone-c", ("m-c1",)))
           for host in hosts for i in (0, 1)]
ALL = [m["name"] for m in MEMBERS]
ZONE_A = ["m-a1-r0", "m-a1-r1", "m-a2-r0", "m-a2-r1"]


def haproxy_view(lb, states=None, owned=None, error=""):
    """states: {server: HAProxy status}; every other server UP and ready."""
    servers = {}
    for name in ALL:
        status = (states or {}).get(name, "UP")
        servers[name] = {"status": status, "previous": lb_member.admin_state(status)}
    return {"lb": lb, "engine": "haproxy", "error": error, "servers": {} if error else servers,
            "owned": owned or {}, "skipped": {}, "report": {}, "waited_seconds": 0.0}


def claims(names, owner="rolling_update run-1"):
    return dict((n, {"previous": "ready", "state": "drain", "owner": owner, "since": "2026-12-02T10:00:00Z"})
                for n in names)


# --- the ledger ---------------------------------------------------------------------------------


def test_claim_takes_ready_servers_and_skips_what_someone_else_took_out():
    current = {"a": "ready", "b": "maint", "c": "drain"}
    ledger, targets, skipped = lb_member.ledger_claim({}, "llm", current, "drain", ["a", "b", "c"], "run-1", "T1")
    assert targets == {"a": "drain"}
    assert sorted(skipped) == ["b", "c"] and skipped["b"].startswith("maint, not set by run-1")
    assert ledger == {"version": 1, "backends": {"llm": {"a": {"previous": "ready", "state": "drain",
                                                               "owner": "run-1", "since": "T1"}}}}


def test_fault_1_interrupted_after_the_drain_the_rerun_restores_the_state_before_the_first_run():
    # Run 1 drained zone-a and was interrupted: the LB shows DRAIN, the ledger says it was ready.
    ledger, _t, _s = lb_member.ledger_claim({}, "llm", dict.fromkeys(ZONE_A, "ready"), "drain", ZONE_A, "run-1", "T1")
    leftover_state = dict.fromkeys(ZONE_A, "drain")
    # Run 2 drains again (its own zone flow): the leftover's recorded state is kept.
    ledger, targets, skipped = lb_member.ledger_claim(ledger, "llm", leftover_state, "drain", ZONE_A, "run-2", "T2")
    assert targets == dict.fromkeys(ZONE_A, "drain") and skipped == {}
    assert {e["previous"] for e in lb_member.ledger_entries(ledger, "llm").values()} == {"ready"}
    ledger, targets, report = lb_member.ledger_release(ledger, "llm", leftover_state, ZONE_A)
    assert targets == dict.fromkeys(ZONE_A, "ready")
    assert all(r.startswith("restored to ready") for r in report.values())
    assert lb_member.ledger_entries(ledger, "llm") == {}


def test_release_leaves_an_operators_later_change_and_forgets_what_is_back_already():
    ledger, _t, _s = lb_member.ledger_claim({}, "llm", {"a": "ready", "b": "ready", "c": "ready"}, "drain",
                                            ["a", "b", "c"], "run-1", "T1")
    # b was put in maint by hand while drained; c came back by itself (HAProxy restarted: state lost).
    ledger, targets, report = lb_member.ledger_release(ledger, "llm", {"a": "drain", "b": "maint", "c": "ready", "d": "maint"},
                                                       ["a", "b", "c", "d"])
    assert targets == {"a": "ready"}
    assert report["b"] == "changed by someone else since run-1 took it out: left maint"
    assert report["c"] == "already ready" and report["d"] == "not drained by us: left maint"
    assert lb_member.ledger_entries(ledger, "llm") == {}


def test_nginx_knows_down_only():
    assert lb_member.nginx_state("maint") == lb_member.nginx_state("drain") == "drain"
    ledger, targets, _s = lb_member.ledger_claim({}, "llm", {"a": "ready"}, "drain", ["a"], "r", "T")
    ledger, targets, report = lb_member.ledger_release(ledger, "llm", {"a": "drain"}, ["a"])
    assert targets == {"a": "ready"}


def test_ledgers_of_two_backends_are_kept_apart():
    ledger, _t, _s = lb_member.ledger_claim({}, "llm", {"a": "ready"}, "drain", ["a"], "r", "T")
    ledger, _t, _s = lb_member.ledger_claim(ledger, "embed", {"a": "ready"}, "maint", ["a"], "r", "T")
    ledger, _t, _s = lb_member.ledger_release(ledger, "llm", {"a": "drain"}, ["a"])
    assert list(ledger["backends"]) == ["embed"]


# --- what the next run sees -------------------------------------------------------------------


def test_leftover_zones_come_from_every_lbs_claims():
    views = [haproxy_view("lb1", dict.fromkeys(ZONE_A, "DRAIN"), claims(ZONE_A)),
             haproxy_view("lb2", {"m-b1-r0": "DRAIN"}, claims(["m-b1-r0"], "rolling_update run-0"))]
    found = rolling_update.leftover_zones(views, MEMBERS)
    assert [(z["zone"], z["owned"], z["owners"]) for z in found] == [
        ("zone-a", ZONE_A, ["rolling_update run-1"]), ("zone-b", ["m-b1-r0"], ["rolling_update run-0"])]
    assert found[0]["hosts"] == ["m-a1", "m-a2"] and found[1]["servers"] == ["m-b1-r0", "m-b1-r1"]
    assert rolling_update.leftover_zones([haproxy_view("lb1", {"m-b1-r0": "MAINT"})], MEMBERS) == []


def test_fault_2_a_lost_load_balancer_is_named_and_its_claims_found_later():
    lost = "unreachable: ssh: connect to host lb2 port 22: Connection refused"
    views = [haproxy_view("lb1"), haproxy_view("lb2", error=lost)]
    assert rolling_update.lb_problem(views) == "lb2: unreachable: ssh: connect to host lb2 port 22: Connection refused"
    # Its healthy view is left out (lb1 alone decides), and the report names it.
    assert rolling_update.healthy(views) == sorted(ALL)
    assert rolling_update.fleet_report(views, MEMBERS) == [
        "lb2: not reachable or refused: unreachable: ssh: connect to host lb2 port 22: Connection refused"]
    later = [haproxy_view("lb1"), haproxy_view("lb2", dict.fromkeys(ZONE_A, "DRAIN"), claims(ZONE_A))]
    assert [z["zone"] for z in rolling_update.leftover_zones(later, MEMBERS)] == ["zone-a"]


def test_fault_3_with_two_zones_out_the_update_is_refused_and_a_rollback_may_not_drain():
    out = dict.fromkeys(["m-b1-r0", "m-b1-r1", "m-c1-r0", "m-c1-r1"], "DRAIN")
    views = [haproxy_view("lb1", out, claims(out)), haproxy_view("lb2", out, claims(out))]
    healthy = rolling_update.healthy(views)
    assert healthy == ZONE_A
    problem = rolling_update.capacity_problem(ZONE_A, ALL, healthy, 4)
    assert problem == "only 0 replicas outside this zone are healthy, 4 required; not healthy: " \
                      "m-b1-r0, m-b1-r1, m-c1-r0, m-c1-r1"
    # zone-a serves: draining it for a rollback would take the last serving zone out.
    refusal = rolling_update.rollback_drain_problem(ZONE_A, ALL, views, healthy, 4)
    assert refusal.startswith("draining the zone for its rollback would leave too few replicas (only 0")
    # The repair of zone-b (out of every pool already) drains nothing, so it is allowed.
    assert rolling_update.rollback_drain_problem(["m-b1-r0", "m-b1-r1"], ALL, views, healthy, 4) == ""


def test_a_rollback_drains_a_serving_zone_when_the_others_carry_the_load():
    views = [haproxy_view("lb1"), haproxy_view("lb2")]
    assert rolling_update.rollback_drain_problem(ZONE_A, ALL, views, rolling_update.healthy(views), 4) == ""


def test_fleet_report_names_who_took_each_server_out():
    owned = claims(["m-a1-r0"])
    views = [haproxy_view("lb1", {"m-a1-r0": "DRAIN", "m-b1-r1": "MAINT", "m-c1-r0": "DOWN"}, owned)]
    assert rolling_update.fleet_report(views, MEMBERS) == [
        "lb1: m-a1-r0 (zone-a) DRAIN, taken out by rolling_update run-1 at 2026-12-02T10:00:00Z",
        "lb1: m-b1-r1 (zone-b) MAINT, taken out by someone else: left as it is",
        "lb1: m-c1-r0 (zone-c) DOWN, failing its health checks"]


def test_left_alone_lists_what_a_restore_did_not_put_back():
    view = haproxy_view("lb1")
    view["report"] = {"m-b1-r0": "restored to ready (taken out by r at T)", "m-b1-r1": "not drained by us: left maint",
                      "m-a1-r0": "already ready"}
    assert rolling_update.left_alone([view, haproxy_view("lb2")]) == {"lb1": {"m-b1-r1": "not drained by us: left maint"}}


# --- the gate's latency budget -------------------------------------------------------------------


def test_latency_budget_is_a_ratio_of_the_old_releases_median():
    assert rolling_update.latency_budget([0.2, 0.3, 0.25, 0.9], 3.0) == {"budget": 0.825, "baseline": 0.275}
    assert rolling_update.latency_budget([0.05, 0.04, 0.06], 3.0, floor=0.25) == {"budget": 0.25, "baseline": 0.05}
    # An absolute budget caps it; no baseline or no ratio: the absolute budget alone (0 = none).
    assert rolling_update.latency_budget([1.0], 3.0, absolute=2.0)["budget"] == 2.0
    assert rolling_update.latency_budget([], 3.0, absolute=2.0) == {"budget": 2.0, "baseline": None}
    assert rolling_update.latency_budget([0.1], 0) == {"budget": 0.0, "baseline": None}


# --- the result file -------------------------------------------------------------------------------


def test_result_names_the_step_an_interrupted_zone_was_in_and_what_the_next_run_repaired():
    plan = {"zones": [{"zone": "zone-a", "hosts": ["m-a1"], "servers": [], "pending": True}],
            "required_healthy": 1, "total": 2}
    result = rolling_update.new_result(plan, "T0")
    result = rolling_update.zone_step(result, "zone-a", "draining", "T1")
    result = rolling_update.zone_step(result, "zone-a", "updating", "T2")
    assert result["zones"][0]["status"] == "in_progress" and result["zones"][0]["step"] == "updating"
    assert result["status"] == "running"
    assert "in_progress (updating)" in rolling_update.summary(result)[0]
    leftover = {"zone": "zone-a", "owned": ["m-a1-r0"], "owners": ["rolling_update run-1"]}
    result = rolling_update.record_repair(result, leftover, "passed the gate, put back")
    result = rolling_update.record_zone(result, "zone-a", rolling_update.zone_fields({"start": 0}, ""))
    assert "step" not in result["zones"][0] and result["zones"][0]["status"] == "updated"
    lines = rolling_update.summary(result)
    assert lines[0] == "repaired zone-a: passed the gate, put back (m-a1-r0), left by rolling_update run-1"
    failed = rolling_update.record_repair(result, leftover, "not repaired", "lb2: unreachable")
    assert failed["status"] == "stopped" and rolling_update.summary(failed)[1].endswith("error: lb2: unreachable")
