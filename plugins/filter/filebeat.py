# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filebeat configuration of a host (logic in module_utils/filebeat.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: filebeat_config
short_description: filebeat.yml of one host, as a mapping
version_added: 0.1.0
description:
  - Returns the configuration of Filebeat for the given inputs and output; every event carries
    C(llmfleet.host), C(llmfleet.zone) and C(llmfleet.log).
  - Fails, naming the variable, on an unknown output type, no output hosts, a kafka output without
    a topic, an input of the removed C(log) type, or two inputs with one id.
  - The same file holds C(filebeat_host_inputs) (the inputs of a host from what runs on it, that is the load
    balancer access log, model-server containers or units, the auth journal and the audit log) and
    C(filebeat_output_problem) (an empty string or what is wrong with the output).
options:
  _input:
    description: Inputs (from C(filebeat_host_inputs)).
    type: list
    elements: dict
    required: true
  output_type:
    description: elasticsearch, logstash or kafka.
    type: str
    required: true
  output_hosts:
    description: Hosts of the output (host:port or URLs).
    type: list
    elements: str
    required: true
  output_settings:
    description: Other settings of the output (credentials, TLS, kafka topic).
    type: dict
    required: true
  host:
    description: The host's inventory name.
    type: str
    required: true
  zone:
    description: The host's zone.
    type: str
    required: true
  extra_inputs:
    description: The site's own inputs.
    type: list
    elements: dict
    default: []
author: llmfleet maintainers
"""

EXAMPLES = r"""
- name: Filebeat configuration
  ansible.builtin.set_fact:
    config: >-
      {{ ('/var/log/llmfleet/lb-access.json' | llmfleet.cluster.filebeat_host_inputs)
         | llmfleet.cluster.filebeat_config('logstash', ['logs1:5044'], {}, inventory_hostname, 'zone-a') }}
"""

RETURN = r"""
_value:
  description: filebeat.yml content.
  type: dict
"""

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
