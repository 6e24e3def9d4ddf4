# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Prometheus targets, alert rules and their unit tests (logic in module_utils/monitoring.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

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


def dcgm_exporter_container(image, port, bind_address="0.0.0.0", counters=""):
    return monitoring.dcgm_exporter_container(image, port, bind_address, counters)


def prometheus_alertmanager_targets(fleet):
    try:
        return monitoring.alertmanager_targets(fleet)
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
            "prometheus_alertmanager_targets": prometheus_alertmanager_targets,
            "dcgm_exporter_container": dcgm_exporter_container,
            "prometheus_thresholds_problem": prometheus_thresholds_problem,
            "prometheus_alert_rules": prometheus_alert_rules,
            "prometheus_alert_rule_tests": prometheus_alert_rule_tests,
        }
