# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filters for the NVIDIA driver role (logic in module_utils/nvidia.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.module_utils import nvidia


def nvidia_driver_plan(facts, source, branch, version="", flavor="proprietary", ubuntu_signed_modules=True):
    try:
        return nvidia.driver_plan(facts.get("distribution", ""), facts.get("distribution_version", ""),
                                  facts.get("kernel", ""), source, branch, version or "", flavor, ubuntu_signed_modules)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def nvidia_driver_input_problem(source, branch, version="", flavor="proprietary"):
    return nvidia.driver_input_problem(source, branch, version or "", flavor)


def nvidia_reboot_reason(gpu_info):
    """Why a host must reboot, from an llmfleet.cluster.nvidia_gpu_info result ('' if it need not)."""
    return nvidia.needs_reboot(gpu_info.get("gpu_present", False), gpu_info.get("kernel_module", {}).get("version", ""),
                               gpu_info.get("library", {}).get("version", ""), gpu_info.get("nouveau_loaded", False))


class FilterModule(object):
    def filters(self):
        return {
            "nvidia_driver_plan": nvidia_driver_plan,
            "nvidia_driver_input_problem": nvidia_driver_input_problem,
            "nvidia_reboot_reason": nvidia_reboot_reason,
        }
