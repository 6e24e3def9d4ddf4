# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filebeat configuration of one host: which logs it ships, how, and where to.

Files are read with `filestream` inputs (the old `log` input is removed in current Filebeat), each
with the unique `id` filestream needs to keep its place across restarts. Logs that only exist in
the journal (native model-server replicas, sshd/sudo) are read with the `journald` input.
Every event carries `llmfleet.host`, `llmfleet.zone` and `llmfleet.log` (what it is).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.llmfleet.cluster.plugins.module_utils import validation

OUTPUTS = ("elasticsearch", "logstash", "kafka")
INPUT_TYPES = ("filestream", "journald")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Docker's json-file driver: one file per container.
DOCKER_LOGS = "/var/lib/docker/containers/*/*-json.log"
# syslog facilities auth (4) and authpriv (10): sshd logins, sudo, su.
AUTH_FACILITIES = (4, 10)


def host_inputs(lb_access_log="", model_units=(), docker_logs=False, audit_log="", auth_journal=True):
    """The inputs of a host from what runs on it.

    lb_access_log: the load balancer's JSON access log (one object per request, request_id in it).
    model_units: systemd units of native model-server replicas (their logs are in the journal).
    docker_logs: the host runs model-server containers (Docker json-file logs).
    audit_log: auditd's log file. auth_journal: sshd/sudo/su from the journal.
    """
    inputs = []
    if lb_access_log:
        inputs.append({"type": "filestream", "id": "llmfleet-lb-access", "paths": [lb_access_log],
                       # One JSON object per line: its keys (request_id, status, server...) become fields.
                       "parsers": [{"ndjson": {"target": "", "add_error_key": True, "overwrite_keys": True}}],
                       "fields": {"llmfleet": {"log": "lb-access"}}})
    if docker_logs:
        inputs.append({"type": "filestream", "id": "llmfleet-model-server-containers", "paths": [DOCKER_LOGS],
                       "parsers": [{"container": {"stream": "all", "format": "docker"}}],
                       "fields": {"llmfleet": {"log": "model-server"}}})
    if model_units:
        inputs.append({"type": "journald", "id": "llmfleet-model-server-journal",
                       "include_matches.match": ["_SYSTEMD_UNIT=%s" % u for u in model_units],
                       "fields": {"llmfleet": {"log": "model-server"}}})
    if auth_journal:
        inputs.append({"type": "journald", "id": "llmfleet-auth-journal",
                       "include_matches.match": ["SYSLOG_FACILITY=%d" % f for f in AUTH_FACILITIES],
                       "fields": {"llmfleet": {"log": "auth"}}})
    if audit_log:
        inputs.append({"type": "filestream", "id": "llmfleet-audit", "paths": [audit_log],
                       "fields": {"llmfleet": {"log": "audit"}}})
    return inputs


def output_problem(output_type, hosts, settings):
    """'' when the output is usable, else what is wrong (names the variable)."""
    if output_type not in OUTPUTS:
        return "filebeat_output_type: %s is not one of %s" % (validation._describe(output_type), ", ".join(OUTPUTS))
    if not isinstance(hosts, list) or not hosts:
        return "filebeat_output_hosts: give at least one %s host (host:port or a URL)" % output_type
    for host in hosts:
        text = str(host)
        problem = validation.url_problem(text) if "://" in text else _host_port_problem(text)
        if problem:
            return "filebeat_output_hosts: %s: %s" % (validation._describe(host), problem)
    if not isinstance(settings, dict):
        return "filebeat_output_settings: %s is not a mapping" % validation._describe(settings)
    if "hosts" in settings:
        return "filebeat_output_settings: hosts: set filebeat_output_hosts instead"
    if output_type == "kafka" and not settings.get("topic"):
        return "filebeat_output_settings: topic: the kafka output needs a topic"
    return ""


def _host_port_problem(text):
    host, sep, port = text.rpartition(":")
    if not sep:
        return validation.host_problem(text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return validation.host_problem(host) or validation.port_problem(port)


def inputs_problem(inputs):
    """'' when every input is one Filebeat can run and ids are unique, else what is wrong."""
    if not isinstance(inputs, list):
        return "%s is not a list of inputs" % validation._describe(inputs)
    seen = set()
    for index, item in enumerate(inputs):
        where = "[%d]" % index
        if not isinstance(item, dict):
            return "%s: %s is not a mapping" % (where, validation._describe(item))
        if item.get("type") == "log":
            return "%s: type log is removed in current Filebeat: use filestream (with an id)" % where
        if item.get("type") not in INPUT_TYPES:
            return "%s: type: %s is not one of %s" % (where, validation._describe(item.get("type")), ", ".join(INPUT_TYPES))
        if not ID_PATTERN.match(str(item.get("id", ""))):
            return "%s: id: %s: every input needs its own id (lower-case letters, digits, - and _)" % (
                where, validation._describe(item.get("id")))
        if item["id"] in seen:
            return "%s: id: %s is used twice: Filebeat keeps each input's place in its registry by id" % (where, item["id"])
        seen.add(item["id"])
        if item["type"] == "filestream" and not (isinstance(item.get("paths"), list) and item["paths"]):
            return "%s: paths: a filestream input needs a list of paths" % where
    return ""


def config(inputs, output_type, output_hosts, output_settings, host, zone, extra_inputs=()):
    """filebeat.yml as a mapping. Raises ValueError naming the variable that is wrong."""
    problem = output_problem(output_type, output_hosts, output_settings)
    if problem:
        raise ValueError(problem)
    all_inputs = []
    for item in list(inputs) + list(extra_inputs or []):
        item = dict(item)
        fields = dict(item.get("fields") or {})
        fields["llmfleet"] = dict(fields.get("llmfleet") or {}, host=host, zone=zone)
        item["fields"] = fields
        # Fields at the top level of the event (llmfleet.zone), not under "fields.".
        item["fields_under_root"] = True
        all_inputs.append(item)
    problem = inputs_problem(all_inputs)
    if problem:
        raise ValueError("filebeat inputs%s" % problem)
    output = dict(output_settings)
    output["hosts"] = [str(h) for h in output_hosts]
    return {
        "filebeat.inputs": all_inputs,
        "processors": [{"add_host_metadata": {}}],
        "output.%s" % output_type: output,
        "logging.to_syslog": False,
        "logging.to_files": True,
        "logging.level": "info",
    }
