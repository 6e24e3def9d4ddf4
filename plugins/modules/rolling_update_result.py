#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
# Documentation only: the work is done on the controller by plugins/action/rolling_update_result.py.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rolling_update_result
short_description: Write the rolling update's result file on the controller
version_added: 0.2.0
description:
  - Writes O(result) as JSON (sorted keys, 4 spaces) to O(path) on the controller, atomically (a reader
    sees the previous file or the new one, never a part), mode 0644. Connects to no host.
  - The rolling update writes its result before every step of every zone, so that a run interrupted
    anywhere leaves a true record; in the controller's own process that costs milliseconds, not a
    module run.
  - In check mode nothing is written.
options:
  path:
    description: The result file on the controller.
    type: path
    required: true
  result:
    description: What to write.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Writes nothing in check mode.
  diff_mode:
    support: none
    description: Not supported.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Write the result file
  llmfleet.cluster.rolling_update_result:
    path: "{{ rolling_update_result_file }}"
    result: "{{ __rolling_update_result }}"
  run_once: true
"""

RETURN = r"""
path:
  description: The file written.
  returned: always
  type: str
"""
