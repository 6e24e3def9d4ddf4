# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""The fleet plan's entry of one host (logic in module_utils/fleet_plan.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: llmfleet_fleet_host
short_description: One host's entry of the fleet plan (address, zone, roles, service endpoints)
version_added: 0.1.0
description:
  - The fleet plan C(llmfleet_fleet) is worked out once per run on the controller by
    playbooks/validate.yml (action C(llmfleet.cluster.fleet_validate)) from every host's role
    variables, each role's defaults included. This filter returns one host's entry, and fails with a
    message saying what to run when the plan is missing or does not have the host.
  - "An entry holds C(address), C(zone) (empty without one), C(zone_label) (C(none) without one),
    C(roles) (the roles site.yml runs there) and, where those roles run, C(node_exporter) (C(port)),
    C(load_balancer) (C(engine), C(stats_port), C(runtime_socket), C(access_log)) and C(firewall)
    (C(ssh_allowed_networks))."
options:
  _input:
    description: The fleet plan, C(llmfleet_fleet).
    type: dict
    required: true
  host:
    description: Inventory name of the host.
    type: str
    required: true
author: llmfleet maintainers
"""

EXAMPLES = r"""
- name: Where this host's node exporter listens
  ansible.builtin.debug:
    msg: "{{ (llmfleet_fleet | llmfleet.cluster.llmfleet_fleet_host(inventory_hostname)).node_exporter.port }}"
"""

RETURN = r"""
_value:
  description: The host's entry.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_plan


def llmfleet_fleet_host(fleet, host):
    try:
        return fleet_plan.fleet_host(fleet, host)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"llmfleet_fleet_host": llmfleet_fleet_host}
