# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filters that say what is wrong with an inventory value ('' when nothing is)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

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
