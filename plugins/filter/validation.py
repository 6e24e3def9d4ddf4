# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filters that say what is wrong with an inventory value ('' when nothing is)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: url_problem
short_description: Say what is wrong with a URL
version_added: 0.1.0
description:
  - Returns an empty string for an absolute URL with an allowed scheme, a valid host and port,
    otherwise one sentence describing the problem. The other filters of this file work alike
    (C(ssh_public_key_problem), C(zone_problem), C(ip_address_problem), C(host_problem),
    C(unix_name_problem), C(cidr_problem), C(port_problem)). C(address_in_networks) returns
    whether an address lies in one of a list of networks.
options:
  _input:
    description: The value to check.
    type: raw
    required: true
  schemes:
    description: Allowed URL schemes.
    type: list
    elements: str
    default: [http, https]
author: llmfleet maintainers
"""

EXAMPLES = r"""
- name: Refuse a malformed proxy URL
  ansible.builtin.assert:
    that: base_apt_proxy | llmfleet.cluster.url_problem == ''
    fail_msg: "base_apt_proxy: {{ base_apt_proxy | llmfleet.cluster.url_problem }}"
"""

RETURN = r"""
_value:
  description: An empty string, or what is wrong with the input.
  type: str
"""

from ansible_collections.llmfleet.cluster.plugins.module_utils import validation


class FilterModule(object):
    def filters(self):
        return {
            "url_problem": validation.url_problem,
            "ssh_public_key_problem": validation.ssh_public_key_problem,
            "zone_problem": validation.zone_problem,
            "ip_address_problem": validation.ip_address_problem,
            "host_problem": validation.host_problem,
            "unix_name_problem": validation.unix_name_problem,
            "cidr_problem": validation.cidr_problem,
            "port_problem": validation.port_problem,
            "address_in_networks": validation.address_in_networks,
        }
