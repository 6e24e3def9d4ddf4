# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Action plugin: the rolling update's result file, written on the controller (see the module's docs).

Why an action and not ansible.builtin.copy delegated to localhost: the file is written before every
step of every zone (so that an interrupted run leaves a true record), ~7 times a zone. copy runs a
module through a local Python each time: ~0.75 s of the controller's time per write, 17 s of a
3-zone update on the lab. Written here, in the controller's own process, it takes milliseconds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase


def write_json(path, data, mode=0o644):
    """Write data as JSON to path atomically (a reader sees the old file or the new one, never half).
    Returns whether the content changed."""
    # As to_nice_json wrote it before (the encoder Ansible's own JSON filters use).
    text = json.dumps(data, cls=AnsibleJSONEncoder, indent=4, sort_keys=True) + "\n"
    try:
        with open(path) as current:
            if current.read() == text:
                return False
    except (IOError, OSError):
        pass
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rolling-update-result.", dir=directory)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "result"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        path, data = args.get("path"), args.get("result")
        if not isinstance(path, str) or not path:
            raise AnsibleActionFail("path: the result file's path is required")
        if not isinstance(data, dict):
            raise AnsibleActionFail("result: a dict is required, got %s" % type(data).__name__)
        result["path"] = path
        if self._play_context.check_mode:
            result["changed"] = False
            result["msg"] = "check mode: %s not written" % path
            return result
        try:
            result["changed"] = write_json(path, data)
        except (IOError, OSError) as exc:
            raise AnsibleActionFail("cannot write the result file %s: %s" % (path, to_native(exc)))
        return result
