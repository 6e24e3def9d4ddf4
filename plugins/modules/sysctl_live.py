#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sysctl_live
short_description: Apply kernel parameters to the running kernel where the host allows it
version_added: 0.1.0
description:
  - Writes each parameter to C(/proc/sys) when its value differs and the file is writable, and
    reports every parameter it could not apply, with the reason (read-only C(/proc/sys) in a
    container, a value the kernel rejects, a key this kernel does not have), instead of failing.
  - Persisting the values is the caller's job (a file in C(/etc/sysctl.d)).
    C(ansible.posix.sysctl) fails on a read-only C(/proc/sys) and sets one key per task, which is why
    this module exists.
options:
  settings:
    description: Parameters (dotted names) and their values.
    type: dict
    required: true
  fail_on_rejected:
    description: Fail when the kernel rejects a value (as opposed to a key that cannot be written here).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would be applied without writing.
  diff_mode:
    support: none
    description: Not supported.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Apply what this host lets us apply
  llmfleet.cluster.sysctl_live:
    settings:
      net.core.somaxconn: 4096
      kernel.kptr_restrict: 2
  register: live
"""

RETURN = r"""
applied:
  description: Parameters written (or that would be, in check mode).
  returned: always
  type: list
  elements: str
unchanged:
  description: Parameters that already had the value.
  returned: always
  type: list
  elements: str
not_applied:
  description: Parameters left as they are, with the reason.
  returned: always
  type: dict
absent:
  description: Parameters this kernel does not have.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.cluster.plugins.module_utils import sysctl


def main():
    module = AnsibleModule(
        argument_spec=dict(settings=dict(type="dict", required=True), fail_on_rejected=dict(type="bool", default=False)),
        supports_check_mode=True,
    )
    result = sysctl.plan_and_apply(module.params["settings"], check_mode=module.check_mode)
    rejected = dict((k, v) for k, v in result["not_applied"].items() if v.startswith("the kernel rejects"))
    if rejected and module.params["fail_on_rejected"]:
        module.fail_json(msg="the kernel rejected: %s" % ", ".join("%s (%s)" % kv for kv in sorted(rejected.items())), **result)
    module.exit_json(changed=bool(result["applied"]), **result)


if __name__ == "__main__":
    main()
