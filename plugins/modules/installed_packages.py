#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: installed_packages
short_description: Read a Debian host's installed packages into ansible_facts.packages, from dpkg
version_added: 0.1.0
description:
  - Sets C(ansible_facts.packages) in the shape C(ansible.builtin.package_facts) gives it (name to a list
    of C(name), C(version), C(arch), C(source)), read with C(dpkg-query) from dpkg's status file.
  - Why not C(ansible.builtin.package_facts) (manager C(apt)) - it opens python3-apt's whole cache, every
    package of every source list, to find the installed ones, ~0.4 s of CPU per host and read, which the
    collection pays on every run (measured on the lab's 10 hosts, ad hoc, 6.4-7.0 s against 2.6-2.7 s for
    this module and 2.2-2.5 s for C(ping)). This needs neither python3-apt nor the package lists.
  - Only fully installed packages are listed; one half-installed, half-configured, unpacked or with only
    its configuration files left is missing, so the install task that needs it runs.
  - Also returns how long ago apt's package lists were updated (RV(apt_lists_age)), read as
    C(ansible.builtin.apt)'s O(ansible.builtin.apt#module:cache_valid_time) reads it, and whether the sources
    changed since (RV(apt_sources_newer)), so that a role can skip the apt module where it would neither
    install nor update (its start alone opens apt's whole cache).
  - Changes nothing.
options: {}
extends_documentation_fragment: [llmfleet.cluster.read_only]
attributes:
  facts:
    support: full
    description: Sets C(ansible_facts.packages).
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Read the installed packages
  llmfleet.cluster.installed_packages:

- name: Install ufw only where it is missing
  ansible.builtin.apt:
    name: ufw
  when: "['ufw'] | llmfleet.cluster.llmfleet_missing_packages(ansible_facts) | length > 0"
"""

RETURN = r"""
ansible_facts:
  description: The installed packages.
  returned: success
  type: dict
  contains:
    packages:
      description: Package name to its installed instances (one per architecture).
      type: dict
      sample: {ufw: [{name: ufw, version: "0.36.2-1", arch: all, source: apt}]}
apt_lists_age:
  description:
    - Seconds since apt's package lists were last updated, by the host's clock - the modification time of
      C(/var/lib/apt/periodic/update-success-stamp) where it exists, else of C(/var/lib/apt/lists), as
      C(ansible.builtin.apt) reads it.
    - V(null) when neither exists.
  returned: success
  type: float
  sample: 1520.4
apt_sources_newer:
  description:
    - Whether apt's sources changed after that update - C(/etc/apt/sources.list*), C(/etc/apt/sources.list.d)
      and every file in it, by their change times (a rename changes them). The lists may then be those of
      other sources, as a run interrupted between a switch of the sources and the update left them.
    - V(true) also when there is no time to compare with (RV(apt_lists_age) null).
  returned: success
  type: bool
  sample: false
apt_mirror_files:
  description:
    - What a switch to a site's mirror by the C(base) role left on the host - its sources file
      C(/etc/apt/sources.list.d/llmfleet.sources) and the distribution's sources set aside as
      C(*.llmfleet-disabled) - sorted. Empty on a host that never switched.
    - The role switches such a host back when the mirror is taken off the inventory.
    - A source set aside whose original exists again (written anew by its package) is not listed - the way
      back keeps the new one.
  returned: success
  type: list
  elements: str
  sample: ["/etc/apt/sources.list.d/debian.sources.llmfleet-disabled", "/etc/apt/sources.list.d/llmfleet.sources"]
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmfleet.cluster.plugins.module_utils import packages


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    if not module.get_bin_path("dpkg-query"):
        module.fail_json(msg="dpkg-query not found: installed_packages reads Debian's package database")
    rc, out, err = module.run_command(packages.DPKG_QUERY, environ_update={"LC_ALL": "C"})
    if rc != 0:
        module.fail_json(msg="dpkg-query failed (rc %d): %s" % (rc, (err or out).strip()))
    lists_time = packages.apt_lists_time()
    module.exit_json(changed=False, ansible_facts={"packages": packages.parse(out)},
                     apt_lists_age=packages.apt_lists_age(time.time(), lists_time),
                     apt_sources_newer=packages.apt_sources_newer(lists_time),
                     apt_mirror_files=packages.apt_mirror_files())


if __name__ == "__main__":
    main()
