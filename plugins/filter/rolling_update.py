# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Rolling-update planning and checks (logic in module_utils/rolling_update.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rolling_update_plan
short_description: Zones a rolling update goes through, in order, after a capacity check
version_added: 0.1.0
description:
  - Groups load-balancer members (from C(llmfleet_lb_members)) by zone, in the stable zone order,
    starting at I(from_zone) when given. A zone whose hosts all run the planned release already is
    marked C(pending=false), so an aborted update resumes where it stopped.
  - Fails when taking any one zone out would leave fewer replicas in service than the larger of
    I(min_replicas) and I(min_fraction) of all replicas.
  - The same file holds C(rolling_update_healthy) (servers every HAProxy LB sees UP and ready, from
    lb_member query results), C(rolling_update_capacity_problem) and C(rolling_update_soak_problem)
    (each returns an empty string or what is wrong), C(rolling_update_new_result),
    C(rolling_update_record_zone), C(rolling_update_zone_fields) (the result file's content),
    C(rolling_update_summary) (one line per zone) and C(rolling_update_failure) (a failed task's message).
options:
  _input:
    description: Load-balancer members.
    type: list
    elements: dict
    required: true
  current:
    description: Per host, the release it runs now (its record).
    type: dict
    required: true
  planned:
    description: Per host, the release the inventory asks for.
    type: dict
    required: true
  from_zone:
    description: Zone to start at.
    type: str
    default: ""
  force:
    description: Update zones that already run the planned release too.
    type: bool
    default: false
  min_replicas:
    description: Replicas that must stay in service.
    type: int
    default: 1
  min_fraction:
    description: Fraction of all replicas that must stay in service.
    type: float
    default: 0.5
author: llmfleet maintainers
"""

EXAMPLES = r"""
- name: Plan the zones
  ansible.builtin.set_fact:
    zones_to_update: >-
      {{ (groups['model_nodes'] | llmfleet.cluster.llmfleet_lb_members(hostvars))
         | llmfleet.cluster.rolling_update_plan(current, planned, min_fraction=0.6) }}
"""

RETURN = r"""
_value:
  description: C(zones) (list of zone, hosts, servers, pending), C(required_healthy) and C(total).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.llmfleet.cluster.plugins.module_utils import rolling_update


def _views(lb_results):
    """lb_member query results registered in a loop -> [{server: view}] of the HAProxy LBs."""
    return [r["servers"] for r in lb_results if r.get("servers") and r.get("engine", "haproxy") == "haproxy"]


def _number(value, kind):
    """Extra vars (-e name=value) arrive as text."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            return value
    return value


def rolling_update_plan(members, current, planned, from_zone="", force=False, min_replicas=1, min_fraction=0.5):
    try:
        return rolling_update.plan(list(members), dict(current), dict(planned), from_zone or "",
                                   boolean(force, strict=False), _number(min_replicas, int),
                                   _number(min_fraction, float))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def rolling_update_healthy(lb_results):
    """None when no HAProxy LB reported (nginx has no health checks: probe the replicas instead)."""
    views = _views(lb_results)
    return sorted(rolling_update.healthy_servers(views)) if views else None


def rolling_update_capacity_problem(zone_servers, all_servers, healthy, required):
    return rolling_update.capacity_problem(zone_servers, all_servers, healthy, int(required))


def rolling_update_soak_problem(before_results, after_results, servers, max_error_rate):
    return rolling_update.soak_problem(_views(before_results), _views(after_results), servers, float(max_error_rate))


def rolling_update_new_result(plan, started_at):
    return rolling_update.new_result(plan, started_at)


def rolling_update_record_zone(result, zone, fields):
    return rolling_update.record_zone(result, zone, fields)


def rolling_update_zone_fields(times, error, rollback_error=""):
    return rolling_update.zone_fields(times, error, rollback_error)


def rolling_update_failure(result):
    return rolling_update.failure(result)


def rolling_update_summary(result):
    return rolling_update.summary(result)


class FilterModule(object):
    def filters(self):
        return {
            "rolling_update_plan": rolling_update_plan,
            "rolling_update_healthy": rolling_update_healthy,
            "rolling_update_capacity_problem": rolling_update_capacity_problem,
            "rolling_update_soak_problem": rolling_update_soak_problem,
            "rolling_update_new_result": rolling_update_new_result,
            "rolling_update_record_zone": rolling_update_record_zone,
            "rolling_update_summary": rolling_update_summary,
            "rolling_update_zone_fields": rolling_update_zone_fields,
            "rolling_update_failure": rolling_update_failure,
        }
