# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filebeat configuration of a host (logic in module_utils/filebeat.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.llmfleet.cluster.plugins.module_utils import filebeat


def filebeat_host_inputs(lb_access_log="", model_units=None, docker_logs=False, audit_log="", auth_journal=True):
    return filebeat.host_inputs(lb_access_log or "", list(model_units or []), boolean(docker_logs, strict=False),
                                audit_log or "", boolean(auth_journal, strict=False))


def filebeat_output_problem(output_type, output_hosts, output_settings):
    return filebeat.output_problem(output_type, output_hosts, output_settings)


def filebeat_config(inputs, output_type, output_hosts, output_settings, host, zone, extra_inputs=None):
    try:
        return filebeat.config(list(inputs), output_type, output_hosts, output_settings, host, zone, extra_inputs or [])
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "filebeat_host_inputs": filebeat_host_inputs,
            "filebeat_output_problem": filebeat_output_problem,
            "filebeat_config": filebeat_config,
        }
