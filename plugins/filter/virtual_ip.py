# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Where a load balancer's shared front address goes (logic in module_utils/virtual_ip.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.cluster.plugins.module_utils import virtual_ip


def virtual_ip_interface(facts, cidr):
    try:
        return virtual_ip.interface_for(facts, cidr)
    except ValueError as exc:
        raise AnsibleFilterError("virtual_ip_interface: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"virtual_ip_interface": virtual_ip_interface}
