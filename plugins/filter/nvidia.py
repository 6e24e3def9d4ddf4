# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Filters for the NVIDIA driver role (logic in module_utils/nvidia.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: nvidia_driver_plan
short_description: Packages, pin and requirements of a pinned NVIDIA driver for one host
version_added: 0.1.0
description:
  - Given the host's distribution facts and the driver variables, returns the packages to install,
    the subset to hold, the apt version pin, whether the kernel module is built on the host (then
    kernel headers are needed and Secure Boot needs an enrolled key), the headers package and the
    path element of NVIDIA's CUDA repository. Fails with one sentence naming the wrong variable.
  - C(nvidia_driver_input_problem) checks the variables alone (no facts needed) and returns an
    empty string or what is wrong with them.
  - C(nvidia_reboot_reason) takes an C(llmfleet.cluster.nvidia_gpu_info) result and says why the
    host must reboot to run its installed driver (nouveau loaded, module not loaded, module and
    library versions differ), or returns an empty string.
options:
  _input:
    description: The host's C(ansible_facts).
    type: dict
    required: true
  source:
    description: C(distribution), C(cuda_repository) or C(mirror).
    type: str
    required: true
  branch:
    description: Driver branch, such as C(550).
    type: str
    required: true
  version:
    description: Full driver version to pin, such as C(550.163.01); empty for the newest of the branch.
    type: str
    default: ""
  flavor:
    description: C(proprietary) or C(open) kernel modules.
    type: str
    default: proprietary
  ubuntu_signed_modules:
    description: On Ubuntu, use Canonical's prebuilt, signed kernel modules instead of DKMS.
    type: bool
    default: true
author: llmfleet maintainers
"""

EXAMPLES = r"""
- name: Work out what to install
  ansible.builtin.set_fact:
    driver_plan: "{{ ansible_facts | llmfleet.cluster.nvidia_driver_plan('distribution', '535') }}"
"""

RETURN = r"""
_value:
  description: Keys packages, hold, pin, pin_packages, builds_module, headers_package, repository_path.
  type: dict
"""

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
