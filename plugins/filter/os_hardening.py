# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filters for the os_hardening role (logic in module_utils/os_hardening.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.module_utils import os_hardening


def os_hardening_config_keys(text, settings, style="space"):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("os_hardening_config_keys: give the settings as a mapping")
    try:
        return os_hardening.config_keys(str(text), dict((str(k), str(v)) for k, v in settings.items()), style)
    except ValueError as exc:
        raise AnsibleFilterError("os_hardening_config_keys: %s" % exc)


def os_hardening_blocked(blocked, allowed):
    return os_hardening.blocked_modules(blocked, allowed)


def os_hardening_audit_watch(fleet, host, extra=()):
    if fleet is not None and not isinstance(fleet, dict):
        raise AnsibleFilterError("os_hardening_audit_watch: give the fleet plan (llmfleet_fleet) or none")
    return os_hardening.audit_watch(fleet, host, extra)


class FilterModule(object):
    def filters(self):
        return {
            "os_hardening_blocked": os_hardening_blocked,
            "os_hardening_audit_watch": os_hardening_audit_watch,
            "os_hardening_config_keys": os_hardening_config_keys,
        }
