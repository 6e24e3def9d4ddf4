# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Prometheus targets, alert rules and their unit tests (logic in module_utils/monitoring.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: prometheus_scrape_jobs
short_description: Prometheus scrape jobs from the fleet plan, with zone labels
version_added: 0.1.0
description:
  - Returns scrape_configs entries for node exporter on every host that runs it, HAProxy's Prometheus
    endpoint on every HAProxy load balancer, every model-server replica (named as the load balancers
    name it; engines without metrics, Ollama, are left out) and the site's DCGM exporter on model nodes
    whose replicas have GPUs.
  - Ports and engines are the ones the owning roles use (their defaults included), read from the fleet
    plan C(llmfleet_fleet) that playbooks/validate.yml publishes; nothing here restates a default.
  - Every target carries C(instance) (the host, or the replica's name) and C(zone) labels (C(none) for a
    host without a zone); replicas also C(host), C(replica), C(engine) and C(model).
  - Model nodes need their replica plan (C(model_server_plan), from playbooks/serving_plan.yml).
  - The same file holds C(prometheus_alert_rules) (the LLM SLO alert rules for the given thresholds),
    C(prometheus_alert_rule_tests) (promtool unit tests of those rules) and
    C(prometheus_thresholds_problem) (an empty string or what is wrong with the thresholds).
options:
  _input:
    description: The fleet plan, C(llmfleet_fleet).
    type: dict
    required: true
  hostvars:
    description: Ansible's hostvars (the model nodes' C(model_server_plan)).
    type: dict
    required: true
  dcgm_port:
    description: Port of the DCGM exporter on GPU model nodes; C(null) or C(0) scrapes none.
    type: int
    required: false
author: llmfleet maintainers
"""

EXAMPLES = r"""
- name: Scrape jobs
  ansible.builtin.set_fact:
    jobs: "{{ llmfleet_fleet | llmfleet.cluster.prometheus_scrape_jobs(hostvars, 9400) }}"
"""

RETURN = r"""
_value:
  description: Scrape jobs (job_name, metrics_path, static_configs with targets and labels).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.cluster.plugins.module_utils import monitoring


def _number(value):
    """Extra vars (-e name=value) arrive as text."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _thresholds(thresholds):
    return {k: (_number(v) if k not in ("for", "replica_down_for") else v) for k, v in dict(thresholds).items()}


def prometheus_scrape_jobs(fleet, hostvars, dcgm_port=None):
    try:
        return monitoring.scrape_jobs(fleet, hostvars, int(dcgm_port) if dcgm_port else None)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def prometheus_thresholds_problem(thresholds):
    return monitoring.thresholds_problem(_thresholds(thresholds) if isinstance(thresholds, dict) else thresholds)


def prometheus_alert_rules(thresholds):
    try:
        return monitoring.alert_rules(_thresholds(thresholds))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def prometheus_alert_rule_tests(thresholds, rule_file):
    try:
        return monitoring.alert_rule_tests(_thresholds(thresholds), rule_file)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "prometheus_scrape_jobs": prometheus_scrape_jobs,
            "prometheus_thresholds_problem": prometheus_thresholds_problem,
            "prometheus_alert_rules": prometheus_alert_rules,
            "prometheus_alert_rule_tests": prometheus_alert_rule_tests,
        }
