# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Zone filters (logic in module_utils/zones.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: zone_batches
short_description: Split hosts into batches that never span two zones
version_added: 0.1.0
description:
  - Groups the given hosts by their C(llmfleet_zone), zones in a stable natural order (hosts
    without a zone last), and cuts each zone into batches of at most I(max_hosts) hosts.
    Work that takes hosts out of service (reboots, updates) runs one batch at a time, so it never
    removes more than one zone's capacity, nor more than I(max_hosts) hosts, at once.
options:
  _input:
    description: Host names.
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars), to read each host's C(llmfleet_zone).
    type: dict
    required: true
  max_hosts:
    description: Most hosts per batch; 0 for a whole zone at a time.
    type: int
    default: 1
author: llmfleet maintainers
"""

EXAMPLES = r"""
- name: Reboot plan
  ansible.builtin.set_fact:
    reboot_batches: "{{ hosts_to_reboot | llmfleet.cluster.zone_batches(hostvars, 1) }}"
"""

RETURN = r"""
_value:
  description: List of dicts with keys zone and hosts.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.module_utils import zones


def zone_batches(hosts, hostvars, max_hosts=1):
    zone_of = dict((host, hostvars[host].get("llmfleet_zone") if host in hostvars else None) for host in hosts)
    try:
        return zones.batches_by_zone(list(hosts), zone_of, int(max_hosts))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"zone_batches": zone_batches}
