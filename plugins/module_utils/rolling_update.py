# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Rolling updates, zone by zone: which zones to update, in what order, whether the rest of the
fleet can carry the load while one zone is out, and whether a zone stayed healthy after it.

A zone is the unit the fleet is sized to lose (module_utils/zones.py): exactly one zone is out of
the load balancers at a time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.llmfleet.cluster.plugins.module_utils import serving, zones


def required_healthy(total, min_replicas, min_fraction):
    """Replicas that must stay in service: the larger of a count and a fraction of all replicas."""
    if isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 0:
        raise ValueError("rolling_update_min_healthy_replicas: %r is not a whole number >= 0" % (min_replicas,))
    if isinstance(min_fraction, bool) or not isinstance(min_fraction, (int, float)) or not 0 <= min_fraction < 1:
        raise ValueError("rolling_update_min_healthy_fraction: %r is not a number from 0 to below 1" % (min_fraction,))
    return max(min_replicas, int(math.ceil(total * min_fraction - 1e-9)))


def select_models(members, wanted):
    """The members of the models named in wanted (names, aliases or model_server_names; empty: every
    model). Raises ValueError naming what no model is called."""
    if not wanted:
        return list(members)
    chosen = serving.model_backends(serving.lb_backends(members), wanted, "rolling_update_models",
                                    by_backend_name=True, listing="models")
    return [m for m in members if m["backend"] in chosen]


def capacity_shortfalls(replicas, min_replicas, min_fraction):
    """Where taking one zone out would leave a model short of replicas.

    replicas: {model (backend): {zone: replicas}}. Each model keeps the larger of min_replicas and
    min_fraction of its own replicas in service: the models do not stand in for each other.
    Returns ["ZONE (N of TOTAL replicas of MODEL, REQUIRED must stay)"], in model then zone order.
    """
    found = []
    for model in sorted(replicas):
        by_zone = replicas[model]
        total = sum(by_zone.values())
        required = required_healthy(total, min_replicas, min_fraction)
        for zone in zones.zone_order(list(by_zone)):
            if total - by_zone[zone] < required:
                found.append("%s (%d of %d replicas of %s, %d must stay)"
                             % (zone or "(no zone)", by_zone[zone], total, model, required))
    return found


def plan(members, current, planned, from_zone="", force=False, min_replicas=1, min_fraction=0.5):
    """The zones to update, in order.

    members: load-balancer members (module_utils/serving.lb_members): name, host, zone.
    current / planned: per host, the release it runs (its record) and the one the inventory asks for.
    from_zone: start at this zone (zones before it are left as they are).
    force: update zones that already run the planned release too.

    Returns {"zones": [{"zone", "hosts", "servers", "pending"}], "required_healthy", "total",
    "servers_by_model", "required_by_model"} (a model: a load-balancer backend); a zone
    whose hosts all run the planned release has pending False (skipped unless force). Raises
    ValueError when from_zone is unknown or when taking any zone out would leave fewer replicas
    than required (the fleet cannot be updated one zone at a time without losing capacity).
    """
    if not members:
        raise ValueError("there are no load-balancer members (model nodes with replicas) to update")
    by_zone = {}
    for member in members:
        entry = by_zone.setdefault(member["zone"], {"hosts": {}, "servers": []})
        entry["hosts"][member["host"]] = True  # a dict: ordered, and a lookup is not a scan of the list
        entry["servers"].append(member["name"])
    order = zones.zone_order(list(by_zone))
    if from_zone and from_zone not in by_zone:
        raise ValueError("rolling_update_from_zone: %r is not a zone of the model nodes (%s)"
                         % (from_zone, ", ".join(z or "(no zone)" for z in order)))
    total = len(members)
    required = required_healthy(total, min_replicas, min_fraction)
    by_model = {}
    servers_by_model = {}
    for member in members:
        counts = by_model.setdefault(member.get("backend", ""), {})
        counts[member["zone"]] = counts.get(member["zone"], 0) + 1
        servers_by_model.setdefault(member.get("backend", ""), []).append(member["name"])
    too_big = capacity_shortfalls(by_model, min_replicas, min_fraction)
    if too_big:
        raise ValueError("taking zone %s out would leave a model with fewer replicas in service than "
                         "rolling_update_min_healthy_replicas / _fraction require: add zones or lower the minimum"
                         % "; ".join(too_big))
    result = []
    started = not from_zone
    for zone in order:
        started = started or zone == from_zone
        if not started:
            continue
        hosts = sorted(by_zone[zone]["hosts"], key=zones.natural_key)
        pending = force or any(current.get(h) != planned.get(h) for h in hosts)
        result.append({"zone": zone, "hosts": hosts, "servers": by_zone[zone]["servers"], "pending": pending})
    return {"zones": result, "required_healthy": required, "total": total, "servers_by_model": servers_by_model,
            "required_by_model": dict((model, required_healthy(len(servers), min_replicas, min_fraction))
                                      for model, servers in servers_by_model.items())}


def task_hosts(zones_, lb_count, hosts):
    """Each zone (or leftover zone) with "task_hosts": the nodes of the play that run its tasks, in the
    play's order. Every other node skips the zone's include, and so costs the controller nothing in
    it: a task costs a worker process per host it is evaluated on, skipped or not (~13 ms on 2 cores),
    so a zone run by every node of a fleet of hundreds cost minutes of controller time per zone.
    They are the zone's nodes (they are updated, gated, rolled back) and the nodes that share the
    load-balancer calls with them, one LB each at most, so that every LB is called at once
    (rolling_update_lb_share): other nodes up to lb_count in all, and at least one, so that a zone
    whose own nodes are all lost still has a node to notice it and roll back what it can.
    hosts: the play's hosts (ansible_play_hosts), in its order."""
    hosts = list(hosts)
    result = []
    for zone in zones_:
        inside = set(zone["hosts"])
        own = [h for h in hosts if h in inside]
        helpers = set([h for h in hosts if h not in inside][:max(1, int(lb_count) - len(own))])
        result.append(dict(zone, task_hosts=[h for h in hosts if h in inside or h in helpers]))
    return result


UNRUN = "no node was left to run the zone's tasks (its nodes and the others that run them were all lost)"
# A zone's statuses before it ends (new_result, zone_step).
UNFINISHED = ("pending", "in_progress")


def unrun_problem(result, zone):
    """'' unless a zone before zone (in the run's order) is still pending or in progress: every node
    that was to run its tasks was lost, so nothing ran them, and the run must not go on past it."""
    for z in result["zones"]:
        if z["zone"] == zone:
            break
        if z["status"] in UNFINISHED:
            return "%s: %s" % (z["zone"] or "(no zone)", UNRUN)
    return ""


def finish(result, stopped, check_mode, at):
    """The result at the end of the run. A zone still pending or in progress in a run that did not
    stop was run by no node (unrun_problem): the run stopped there."""
    if not stopped:
        zones_ = [dict(z, status="stopped", error=UNRUN) if z["status"] in UNFINISHED else z
                  for z in result["zones"]]
        stopped = zones_ != result["zones"]
        result = dict(result, zones=zones_)
    return dict(result, finished_at=at, status="stopped" if stopped else ("checked" if check_mode else "updated"))


def lb_problem(views):
    """'' or what went wrong on which load balancer (views: see filter rolling_update_lb_views)."""
    return "; ".join("%s: %s" % (v["lb"], v["error"]) for v in views if v.get("error"))


def healthy(views):
    """Servers every HAProxy LB sees UP and ready; None without a HAProxy LB (nginx has no health
    checks: the replicas are probed instead)."""
    haproxy = [v["servers"] for v in views if v.get("engine") == "haproxy" and not v.get("error")]
    return sorted(healthy_servers(haproxy)) if haproxy else None


def out_of_pool(view, name):
    """Whether an LB sends a server no new requests (drained, in maint, or DOWN by its checks)."""
    server = view["servers"].get(name) or {}
    return server.get("previous", "ready") != "ready" or server.get("status") not in ("UP", "up", None)


def left_alone(views):
    """{lb: {server: why}} of the servers a restore did not put back because it had not taken them
    out or someone else changed them since (an operator's maint stays, and is reported)."""
    found = {}
    for view in views:
        kept = dict((name, why) for name, why in (view.get("report") or {}).items()
                    if not why.startswith(("restored", "already")))
        if kept:
            found[view["lb"]] = kept
    return found


def fleet_report(views, members):
    """For people, before the first zone: every replica that some load balancer does not use, its
    zone, and who took it out. One line per LB and server."""
    zone_of = dict((m["name"], m["zone"]) for m in members)
    lines = []
    for view in views:
        if view.get("error"):
            lines.append("%s: not reachable or refused: %s" % (view["lb"], view["error"]))
            continue
        owned = view.get("owned") or {}
        for name in sorted(view["servers"], key=zones.natural_key):
            if not out_of_pool(view, name):
                continue
            server = view["servers"][name]
            state = server.get("status") or server.get("previous")
            if name in owned:
                who = "taken out by %s at %s" % (owned[name].get("owner", "?"), owned[name].get("since", "?"))
            elif server.get("previous", "ready") != "ready":
                who = "taken out by someone else: left as it is"
            else:
                who = "failing its health checks"
            lines.append("%s: %s (%s) %s, %s" % (view["lb"], name, zone_of.get(name) or "(no zone)", state, who))
    return lines


def leftover_zones(views, members):
    """Zones with servers that an earlier rolling update took out and did not put back (its claims in
    the LBs' ledgers), in zone order: [{"zone", "hosts", "servers" (all the zone's), "owned"
    (the claimed ones), "owners"}]."""
    by_zone = {}
    for member in members:
        entry = by_zone.setdefault(member["zone"], {"zone": member["zone"], "hosts": [], "servers": [],
                                                    "owned": set(), "owners": set()})
        if member["host"] not in entry["hosts"]:
            entry["hosts"].append(member["host"])
        entry["servers"].append(member["name"])
    zone_of = dict((m["name"], m["zone"]) for m in members)
    for view in views:
        for name, claim in (view.get("owned") or {}).items():
            if name in zone_of:
                by_zone[zone_of[name]]["owned"].add(name)
                by_zone[zone_of[name]]["owners"].add(claim.get("owner", "?"))
    found = []
    for zone in zones.zone_order(list(by_zone)):
        entry = by_zone[zone]
        if entry["owned"]:
            found.append(dict(entry, hosts=sorted(entry["hosts"], key=zones.natural_key),
                              owned=sorted(entry["owned"], key=zones.natural_key), owners=sorted(entry["owners"])))
    return found


def rollback_drain_problem(zone_servers, all_servers, views, healthy_servers_, required):
    """Before a rollback drains its zone: '' when the zone is out of every LB's pool already or the
    other zones keep `required` healthy replicas; else why draining would take too much out."""
    reachable = [v for v in views if not v.get("error")]
    if reachable and all(out_of_pool(v, name) for v in reachable for name in zone_servers if name in v["servers"]):
        return ""
    problem = capacity_problem(zone_servers, all_servers, healthy_servers_, required)
    return ("draining the zone for its rollback would leave too few replicas (%s): left as it is" % problem
            if problem else "")


def latency_budget(seconds, ratio, absolute=0.0, floor=0.0):
    """Latency budget of the gate's completions: the old release's median completion time (seconds,
    measured on the same prompt before the zone was drained) times ratio, never below floor; an
    absolute budget (> 0) caps it. No baseline or ratio 0: the absolute budget (0: none)."""
    samples = sorted(float(x) for x in seconds or [])
    if not samples or not ratio:
        return {"budget": float(absolute or 0), "baseline": None}
    middle = len(samples) // 2
    median = samples[middle] if len(samples) % 2 else (samples[middle - 1] + samples[middle]) / 2.0
    budget = max(median * float(ratio), float(floor or 0))
    if absolute:
        budget = min(budget, float(absolute))
    return {"budget": round(budget, 3), "baseline": round(median, 3)}


def healthy_servers(views_per_lb):
    """Servers every HAProxy load balancer sees UP and ready. views_per_lb: [{server: view}]
    (lb_member's query result, one per HAProxy LB)."""
    healthy = None
    for views in views_per_lb:
        up = set(n for n, v in views.items() if v.get("status") == "UP" and v.get("previous", "ready") == "ready")
        healthy = up if healthy is None else healthy & up
    return healthy or set()


def capacity_problem(zone_servers, all_servers, healthy, required):
    """'' when, with zone_servers out, at least `required` healthy replicas remain; else why not.

    Per model: all_servers {model: [servers]} and required {model: count} (the plan's
    servers_by_model and required_by_model): each model keeps its own minimum. A list and a count
    are one model."""
    if not isinstance(all_servers, dict):
        all_servers, required = {"": all_servers}, {"": required}
    problems = []
    for model in sorted(all_servers):
        servers = set(all_servers[model])
        remaining = (set(healthy) & servers) - set(zone_servers)
        if len(remaining) >= required[model]:
            continue
        unhealthy = sorted(servers - set(zone_servers) - set(healthy), key=zones.natural_key)
        problems.append("only %d replicas%s outside this zone are healthy, %d required; not healthy: %s"
                        % (len(remaining), " of " + model if model else "", required[model], ", ".join(unhealthy) or "none"))
    return "; ".join(problems)


def soak_problem(before, after, servers, max_error_rate):
    """Compare LB counters of servers before and after the soak: '' or why the zone failed.

    before/after: [{server: view}], one per HAProxy LB, in the same order. An error is a 5xx answer,
    a failed response or a failed connection.
    """
    requests = 0
    errors = 0
    for b, a in zip(before, after):
        for name in servers:
            if name not in b or name not in a:
                continue
            requests += max(0, a[name]["total"] - b[name]["total"])
            errors += sum(max(0, a[name][k] - b[name][k])
                          for k in ("responses_5xx", "failed_responses", "failed_connections"))
    if requests == 0:
        return ""
    rate = float(errors) / requests
    if rate > max_error_rate:
        return "%d errors in %d requests (%.1f%%) during the soak, more than %.1f%%" % (
            errors, requests, rate * 100, max_error_rate * 100)
    return ""


def new_result(plan_, started_at):
    """The result file's content at the start: every planned zone pending or skipped."""
    return {
        "started_at": started_at,
        "status": "running",
        "required_healthy": plan_["required_healthy"],
        "replicas": plan_["total"],
        "zones": [dict({"zone": z["zone"], "hosts": z["hosts"]},
                       **({"status": "pending"} if z["pending"] else
                          {"status": "skipped", "note": "already runs the planned release"}))
                  for z in plan_["zones"]],
    }


STEPS = ("checking", "draining", "updating", "gating", "enabling", "soaking", "rolling_back", "repairing")


def zone_step(result, zone, step, at):
    """A copy of result saying the zone is in step (written before the step starts, so that an
    interrupted run leaves a true record)."""
    if step not in STEPS:
        raise ValueError("unknown step %r" % (step,))
    return record_zone(result, zone, {"status": "in_progress", "step": step, "step_started_at": at})


def record_repair(result, leftover, outcome, error=""):
    """A copy of result with what the run repaired before its first zone (or failed to)."""
    entry = {"zone": leftover["zone"], "servers": leftover["owned"], "left_by": leftover["owners"], "outcome": outcome}
    if error:
        entry["error"] = error
    result = dict(result, repaired=list(result.get("repaired") or []) + [entry])
    if error:
        result["status"] = "stopped"
    return result


def record_zone(result, zone, fields):
    """A copy of result with the zone's entry updated by fields; the run stops with the first zone
    that did not end "updated"."""
    def merged(z):
        # A field set to None is dropped (the step of a zone that ended).
        return dict((k, v) for k, v in dict(z, **fields).items() if v is not None)
    result = dict(result, zones=[merged(z) if z["zone"] == zone else z for z in result["zones"]])
    if fields.get("status") not in (None, "updated", "would_update", "in_progress"):
        result["status"] = "stopped"
    return result


def summary(result):
    """One line per zone, for people; first what the run repaired."""
    lines = []
    for r in result.get("repaired") or []:
        line = "repaired %s: %s (%s), left by %s" % (
            r["zone"] or "(no zone)", r["outcome"], " ".join(r["servers"]), ", ".join(r["left_by"]))
        if r.get("error"):
            line += "  error: " + r["error"]
        lines.append(line)
    for z in result["zones"]:
        status = z["status"] + (" (%s)" % z["step"] if z["status"] == "in_progress" else "")
        line = "%-12s %-15s %s" % (z["zone"] or "(no zone)", status, " ".join(z["hosts"]))
        seconds = z.get("seconds")
        if seconds:
            line += "  [" + ", ".join("%s %.1fs" % (k, seconds[k]) for k in
                                      ("check", "baseline", "drain", "update", "gate", "enable", "soak",
                                       "rollback", "total")
                                      if k in seconds) + "]"
        if z.get("error"):
            line += "  error: " + z["error"]
        lines.append(line)
    lines.append("result: %s" % result["status"])
    return lines


PHASES = (("check", "start", "checked"), ("baseline", "checked", "measured"), ("drain", "drain_start", "drained"),
          ("update", "drained", "updated"), ("gate", "updated", "gated"),
          ("enable", "gated", "enabled"), ("soak", "enabled", "soaked"), ("rollback", "rollback_start", "rolled_back"))


def zone_fields(times, error, rollback_error="", refused=False):
    """What the result file says about a zone: status, error, and seconds per phase from the
    timestamps (epoch seconds) the playbook noted: start, checked, measured, drain_start,
    drained, updated, gated, enabled, soaked,
    rollback_start, rolled_back (missing ones: the phase did not run)."""
    times = dict((k, float(v)) for k, v in (times or {}).items())
    seconds = {}
    for phase, begin, end in PHASES:
        if begin in times and end in times and times[end] >= times[begin]:
            seconds[phase] = round(times[end] - times[begin], 3)
    if times:
        seconds["total"] = round(max(times.values()) - times.get("start", min(times.values())), 3)
    fields = {"seconds": seconds, "step": None, "step_started_at": None}
    if not error:
        fields["status"] = "updated"
    elif refused:
        fields.update(status="refused", error=error, note="refused before any change: the zone was not touched")
    elif rollback_error:
        fields.update(status="rollback_failed", error=error, rollback_error=rollback_error)
    else:
        fields.update(status="rolled_back", error=error)
    return fields


def failure(result):
    """The message of a failed task result; for a loop, the first failed item's (Ansible's own
    message is then only "One or more items failed")."""
    result = result or {}
    for item in result.get("results") or []:
        if isinstance(item, dict) and item.get("failed") and item.get("msg"):
            return item["msg"]
    return result.get("msg") or "failed"
