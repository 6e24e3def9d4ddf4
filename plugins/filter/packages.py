# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Which of a role's packages a host still lacks, from the installed packages read once per host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: llmfleet_missing_packages
short_description: The packages of a list a host does not have installed
version_added: 0.2.0
description:
  - Returns the names in the input that are not in the host's C(ansible_facts.packages) (as
    C(llmfleet.cluster.installed_packages) or C(ansible.builtin.package_facts) reads them), in their order. When the host's packages were not
    read, returns every name (whoever asks then lets apt decide, as without this filter).
  - Each role installs its own packages. An apt call on a host that has them all still costs a
    module run (apt loads its cache), ~5 s per role on a no-op run of the 9-host lab; the base role
    reads the installed packages once per host, and a role whose packages are all there skips its apt
    call without a round trip. A name with a version (C(docker.io=20.10*)) is never taken as installed.
options:
  _input:
    description: Package names.
    type: list
    elements: str
    required: true
  facts:
    description: The host's C(ansible_facts).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Install ufw
  ansible.builtin.apt:
    name: ufw
  when: "['ufw'] | llmfleet.cluster.llmfleet_missing_packages(ansible_facts) | length > 0"
"""

RETURN = r"""
_value:
  description: The names not installed, in input order.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def llmfleet_missing_packages(names, facts):
    if isinstance(names, str):
        names = [names]
    if not isinstance(facts, dict):
        raise AnsibleFilterError("llmfleet_missing_packages: facts must be the host's ansible_facts, got %s"
                                 % type(facts).__name__)
    installed = facts.get("packages")
    if not isinstance(installed, dict):
        return list(names)
    return [name for name in names if name not in installed]


class FilterModule(object):
    def filters(self):
        return {"llmfleet_missing_packages": llmfleet_missing_packages}
