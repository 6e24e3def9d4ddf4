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


def os_hardening_login_homes(passwd, mode):
    if not isinstance(passwd, dict):
        raise AnsibleFilterError("os_hardening_login_homes: give getent's passwd database (a mapping)")
    return os_hardening.login_homes(passwd, mode)


def os_hardening_setid_files(lines):
    if not isinstance(lines, list):
        raise AnsibleFilterError("os_hardening_setid_files: give the lines of stat -c '%n %U %G %a'")
    try:
        return os_hardening.setid_files(lines)
    except ValueError as exc:
        raise AnsibleFilterError("os_hardening_setid_files: %s" % exc)


def os_hardening_mode_changes(wanted, lines):
    if not isinstance(wanted, list) or not isinstance(lines, list):
        raise AnsibleFilterError("os_hardening_mode_changes: give a list of {path, mode} and the lines of stat -c '%n %a'")
    return os_hardening.mode_changes(wanted, lines)


def os_hardening_config_keys(text, settings):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("os_hardening_config_keys: give the settings as a mapping")
    return os_hardening.config_keys(str(text), dict((str(k), str(v)) for k, v in settings.items()))


def os_hardening_blocked(blocked, allowed):
    return os_hardening.blocked_modules(blocked, allowed)


def os_hardening_audit_watch(fleet, host, extra=()):
    if fleet is not None and not isinstance(fleet, dict):
        raise AnsibleFilterError("os_hardening_audit_watch: give the fleet plan (llmfleet_fleet) or none")
    return os_hardening.audit_watch(fleet, host, extra)


class FilterModule(object):
    def filters(self):
        return {
            "os_hardening_login_homes": os_hardening_login_homes,
            "os_hardening_blocked": os_hardening_blocked,
            "os_hardening_setid_files": os_hardening_setid_files,
            "os_hardening_audit_watch": os_hardening_audit_watch,
            "os_hardening_mode_changes": os_hardening_mode_changes,
            "os_hardening_config_keys": os_hardening_config_keys,
        }
