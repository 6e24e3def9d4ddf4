# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Alertmanager's configuration (logic in module_utils/alertmanager.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

from ansible_collections.llmfleet.cluster.plugins.module_utils import alertmanager


def alertmanager_config(receivers, default_receiver, routes, group_by, group_wait, group_interval, repeat_interval,
                        inhibit_rules, global_settings):
    return alertmanager.config(receivers, default_receiver, routes, group_by, group_wait, group_interval,
                               repeat_interval, inhibit_rules, global_settings)


class FilterModule(object):
    def filters(self):
        return {"alertmanager_config": alertmanager_config}
