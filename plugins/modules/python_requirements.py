#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: python_requirements
short_description: Say whether a virtualenv satisfies requirements, from its installed metadata, without pip
version_added: 0.1.0
description:
  - Reads the distributions installed in a virtualenv (the name, version and C(Requires-Dist) lines of their C(METADATA))
    and says whether they satisfy the requirements, their dependencies included, as pip would find them
    already satisfied (an installed pre-release counts).
  - Why not C(ansible.builtin.pip) alone - it starts pip on every run, which reads its configuration and the
    site's package index or links page and resolves every dependency again, also when nothing is missing
    (~1.3 s on a lab node for an engine without dependencies; seconds more for one with a hundred). Run
    this first and C(ansible.builtin.pip) only where RV(satisfied) is false.
  - A requirement given as a wheel's path or a URL is never satisfied here (only pip knows what it installs), and neither is
    anything that cannot be compared (a malformed marker or C(Requires-Dist)); the install runs and decides.
  - A virtualenv that does not exist, has no interpreter, or was made from another Python version than the
    one running this module (whose marker environment it evaluates) is not satisfied - the install runs and
    settles it.
  - Needs C(packaging) on the node's Python (python3-packaging on Debian), as C(ansible.builtin.pip) does;
    without it nothing is satisfied.
  - Changes nothing.
options:
  virtualenv:
    description: The virtualenv's directory.
    type: path
    required: true
  requirements:
    description: Requirements as pip takes them (PEP 508, e.g. C(vllm==0.11.0), C(foo[bar]>=2)), or a wheel's path or a URL.
    type: list
    elements: str
    required: true
extends_documentation_fragment: [llmfleet.cluster.read_only]
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Look at the engine's virtualenv
  llmfleet.cluster.python_requirements:
    virtualenv: /opt/llmfleet/vllm-llm-0123456789ab
    requirements: [vllm==0.11.0]
  register: venv

- name: Install the engine where something is missing
  ansible.builtin.pip:
    name: [vllm==0.11.0]
    virtualenv: /opt/llmfleet/vllm-llm-0123456789ab
  when: not venv.satisfied
"""

RETURN = r"""
satisfied:
  description: Whether every requirement and every dependency of theirs is installed at an accepted version.
  returned: success
  type: bool
  sample: true
unmet:
  description: What is missing or at another version (or why the virtualenv cannot be read), one line each.
  returned: success
  type: list
  elements: str
  sample: ["xllamacpp==2026.10.11549 is installed at 2026.9.1"]
"""

import os
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmfleet.cluster.plugins.module_utils import python_requirements as logic


def look(venv, requirements):
    """[] when satisfied, else what is not (module_utils for the comparison)."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg")) as handle:
            version = logic.venv_python_version(handle.read())
    except (IOError, OSError):
        return ["%s is not a virtualenv (no pyvenv.cfg)" % venv]
    here = "%d.%d" % sys.version_info[:2]
    if version != here:
        return ["%s was made with Python %s, not this node's %s" % (venv, version, here)]
    if not os.access(os.path.join(venv, "bin", "python"), os.X_OK):
        return ["%s has no interpreter (bin/python)" % venv]
    try:
        from importlib import metadata
        from packaging.markers import default_environment
        from packaging.requirements import Requirement
    except ImportError as error:
        return ["cannot compare requirements on this node: %s" % error]
    site = os.path.join(venv, "lib", "python" + here, "site-packages")
    installed = logic.read_installed(metadata.distributions(path=[site]))
    return logic.unmet(requirements, installed, default_environment(), Requirement)


def main():
    module = AnsibleModule(argument_spec={
        "virtualenv": {"type": "path", "required": True},
        "requirements": {"type": "list", "elements": "str", "required": True},
    }, supports_check_mode=True)
    try:
        problems = look(module.params["virtualenv"], module.params["requirements"])
    except ValueError as error:   # packaging's InvalidMarker, or a distribution's malformed Requires-Dist
        problems = ["cannot compare: %s" % error]
    module.exit_json(changed=False, satisfied=not problems, unmet=problems)


if __name__ == "__main__":
    main()
