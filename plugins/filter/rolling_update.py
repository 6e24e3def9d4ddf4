# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Rolling-update planning and checks (logic in module_utils/rolling_update.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_plan, rolling_update


LB_ITEM = "__rolling_update_lb"


def rolling_update_lb_views(lb_results, lbs=None):
    """lb_member results registered in a loop over the LBs (loop_var __rolling_update_lb: {host, engine,
    socket}) -> [{"lb", "engine", "error", "servers", "owned", "skipped", "report", "waited_seconds"}].
    An unreachable LB (the tasks ignore unreachable hosts so that the run keeps control) is an error.
    With lbs (the LB list the calls were made from), the views follow its order, and an LB of it that
    no result names is an error: its call did not run."""
    views = []
    for r in lb_results or []:
        lb = r.get(LB_ITEM) or {}
        error = ""
        if r.get("unreachable"):
            error = "unreachable: %s" % (r.get("msg") or "no connection")
        elif r.get("failed"):
            error = r.get("msg") or "failed"
        views.append({"lb": lb.get("host", "?"), "engine": r.get("engine") or lb.get("engine", "haproxy"),
                      "error": error, "servers": r.get("servers") or {}, "owned": r.get("owned") or {},
                      "skipped": r.get("skipped") or {}, "report": r.get("report") or {},
                      "waited_seconds": float(r.get("waited_seconds") or 0)})
    if lbs is None:
        return views
    answered = set(v["lb"] for v in views)
    for lb in lbs:
        if lb["host"] not in answered:
            views.append({"lb": lb["host"], "engine": lb.get("engine", "haproxy"), "error": "no answer: its call did not run",
                          "servers": {}, "owned": {}, "skipped": {}, "report": {}, "waited_seconds": 0.0})
    order = dict((lb["host"], i) for i, lb in enumerate(lbs))
    return sorted(views, key=lambda v: order.get(v["lb"], len(order)))


def rolling_update_lb_share(lbs, hosts, host):
    """The load balancers host calls: the i-th LB goes to the (i mod len(hosts))-th host, so that every
    host of the play calls its share at once and each LB is called exactly once."""
    hosts = list(hosts)
    if host not in hosts:
        return []
    return [lb for i, lb in enumerate(lbs or []) if hosts[i % len(hosts)] == host]


def _number(value, kind):
    """Extra vars (-e name=value) arrive as text."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            return value
    return value


def rolling_update_select_models(members, wanted):
    try:
        return rolling_update.select_models(list(members), list(wanted or []))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def rolling_update_plan(members, current, planned, from_zone="", force=False, min_replicas=1, min_fraction=0.5):
    try:
        return rolling_update.plan(list(members), dict(current), dict(planned), from_zone or "",
                                   boolean(force, strict=False), _number(min_replicas, int),
                                   _number(min_fraction, float))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def rolling_update_lb_list(fleet):
    """[{host, engine, socket}] of the hosts the load_balancer role runs on, from the fleet plan
    (llmfleet_fleet: each LB's engine and runtime socket as that role resolves them), built once per
    run for every LB call."""
    try:
        lbs = fleet_plan.hosts_running(fleet, "load_balancer")
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))
    endpoints = dict((lb, fleet_plan.fleet_hosts(fleet)[lb]["load_balancer"]) for lb in lbs)
    return [{"host": lb, "engine": endpoints[lb]["engine"], "socket": endpoints[lb]["runtime_socket"]} for lb in lbs]


def rolling_update_left_alone(views):
    """{lb: {server: why}} of servers a restore left as someone else had set them (e.g. maint by hand)."""
    return rolling_update.left_alone(views)


def rolling_update_lb_problem(views):
    return rolling_update.lb_problem(views)


def rolling_update_healthy(views):
    """None when no HAProxy LB reported (nginx has no health checks: probe the replicas instead)."""
    return rolling_update.healthy(views)


def rolling_update_fleet_report(views, members):
    return rolling_update.fleet_report(views, members)


def rolling_update_leftover_zones(views, members):
    return rolling_update.leftover_zones(views, members)


def _counts(required):
    """A count, or {model: count} (the plan's required_by_model), as whole numbers."""
    return dict((k, int(v)) for k, v in required.items()) if isinstance(required, dict) else int(required)


def rolling_update_rollback_drain_problem(zone_servers, all_servers, views, healthy, required):
    return rolling_update.rollback_drain_problem(zone_servers, all_servers, views, healthy, _counts(required))


def rolling_update_completion_seconds(registered):
    """Completion times (seconds) of the passing checks in health_gate results: a list of registered
    results, one per host: a gate of several replicas (their reports in "replicas"), a loop over
    replicas ("results") or a single one."""
    results = []
    for r in registered or []:
        if isinstance(r, dict) and "replicas" in r:
            results.extend(r["replicas"])
        else:
            results.extend(r.get("results") if isinstance(r, dict) and "results" in r else [r])
    return [a["completion_ms"] / 1000.0 for r in results if isinstance(r, dict) and not r.get("skipped")
            for a in r.get("attempts") or [] if a.get("state") == "ok" and "completion_ms" in a]


def rolling_update_latency_budget(seconds, ratio, absolute=0, floor=0):
    return rolling_update.latency_budget(seconds, _number(ratio, float), _number(absolute, float),
                                         _number(floor, float))


def rolling_update_zone_step(result, zone, step, at):
    return rolling_update.zone_step(result, zone, step, at)


def rolling_update_record_repair(result, leftover, outcome, error=""):
    return rolling_update.record_repair(result, leftover, outcome, error)


def rolling_update_capacity_problem(zone_servers, all_servers, healthy, required):
    return rolling_update.capacity_problem(zone_servers, all_servers, healthy, _counts(required))


def rolling_update_soak_problem(before_results, after_results, servers, max_error_rate):
    # Matched by LB: an LB that did not answer one of the two looks is left out.
    before = dict((v["lb"], v["servers"]) for v in before_results if v["engine"] == "haproxy" and not v["error"])
    after = dict((v["lb"], v["servers"]) for v in after_results if v["engine"] == "haproxy" and not v["error"])
    common = [lb for lb in before if lb in after]
    return rolling_update.soak_problem([before[lb] for lb in common], [after[lb] for lb in common], servers,
                                       float(max_error_rate))


def rolling_update_task_hosts(zones, lb_count, hosts):
    return rolling_update.task_hosts(list(zones or []), _number(lb_count, int), list(hosts))


def rolling_update_unrun_problem(result, zone):
    return rolling_update.unrun_problem(result, zone)


def rolling_update_finish(result, stopped, check_mode, at):
    return rolling_update.finish(result, boolean(stopped, strict=False), boolean(check_mode, strict=False), at)


def rolling_update_new_result(plan, started_at):
    return rolling_update.new_result(plan, started_at)


def rolling_update_record_zone(result, zone, fields):
    return rolling_update.record_zone(result, zone, fields)


def rolling_update_zone_fields(times, error, rollback_error="", refused=False):
    return rolling_update.zone_fields(times, error, rollback_error, boolean(refused, strict=False))


def rolling_update_failure(result):
    return rolling_update.failure(result)


def rolling_update_summary(result):
    return rolling_update.summary(result)


class FilterModule(object):
    def filters(self):
        return {
            "rolling_update_plan": rolling_update_plan,
            "rolling_update_select_models": rolling_update_select_models,
            "rolling_update_lb_views": rolling_update_lb_views,
            "rolling_update_lb_share": rolling_update_lb_share,
            "rolling_update_lb_list": rolling_update_lb_list,
            "rolling_update_left_alone": rolling_update_left_alone,
            "rolling_update_lb_problem": rolling_update_lb_problem,
            "rolling_update_healthy": rolling_update_healthy,
            "rolling_update_fleet_report": rolling_update_fleet_report,
            "rolling_update_leftover_zones": rolling_update_leftover_zones,
            "rolling_update_rollback_drain_problem": rolling_update_rollback_drain_problem,
            "rolling_update_completion_seconds": rolling_update_completion_seconds,
            "rolling_update_latency_budget": rolling_update_latency_budget,
            "rolling_update_zone_step": rolling_update_zone_step,
            "rolling_update_record_repair": rolling_update_record_repair,
            "rolling_update_capacity_problem": rolling_update_capacity_problem,
            "rolling_update_soak_problem": rolling_update_soak_problem,
            "rolling_update_new_result": rolling_update_new_result,
            "rolling_update_task_hosts": rolling_update_task_hosts,
            "rolling_update_unrun_problem": rolling_update_unrun_problem,
            "rolling_update_finish": rolling_update_finish,
            "rolling_update_record_zone": rolling_update_record_zone,
            "rolling_update_summary": rolling_update_summary,
            "rolling_update_zone_fields": rolling_update_zone_fields,
            "rolling_update_failure": rolling_update_failure,
        }
