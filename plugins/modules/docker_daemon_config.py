#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: docker_daemon_config
short_description: Merge settings into Docker's daemon.json, keeping every key already there
version_added: 0.1.0
description:
  - Reads the daemon configuration file, merges the given settings into it (JSON objects key by
    key, any other value replaced) and writes it back only when the content changes.
  - Keys set by the site or by other tools (registry mirrors, C(runtimes) added by
    C(nvidia-ctk)) are kept. Neither community.docker nor ansible.builtin has a module for this;
    templating or copying the file would overwrite them.
  - A file that is not a JSON object is refused and left as it is.
  - The new content can be checked by a command (I(validate)) before it replaces the file.
options:
  path:
    description: The daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description: Settings to merge in.
    type: dict
    required: true
  remove:
    description:
      - Keys to remove after merging; nested keys joined by C(/), such as C(runtimes/nvidia).
    type: list
    elements: str
    default: []
  validate:
    description:
      - Command run on the new content before it is installed; C(%s) is the temporary file's path.
        Docker 23 and later can check a file with C(dockerd --validate --config-file=%s).
    type: str
  backup:
    description: Keep a time-stamped copy of the previous file beside it.
    type: bool
    default: false
  mode:
    description: Permissions of the file.
    type: str
    default: "0644"
attributes:
  check_mode:
    support: full
    description: Reports what would change without writing.
  diff_mode:
    support: full
    description: Shows the file before and after the merge.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Rotate container logs and keep containers running across daemon restarts
  llmfleet.cluster.docker_daemon_config:
    settings:
      log-driver: json-file
      log-opts: {max-size: 100m, max-file: "5"}
      live-restore: true
    validate: dockerd --validate --config-file=%s

- name: Wire in the NVIDIA runtime without touching the rest of the file
  llmfleet.cluster.docker_daemon_config:
    settings:
      runtimes:
        nvidia: {path: nvidia-container-runtime, args: []}
"""

RETURN = r"""
config:
  description: The configuration after the merge (what the file holds, or would hold in check mode).
  returned: success
  type: dict
previous:
  description: The configuration before the merge.
  returned: success
  type: dict
backup_file:
  description: Path of the backup, when one was made.
  returned: changed and backup
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_config


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/docker/daemon.json"),
            settings=dict(type="dict", required=True),
            remove=dict(type="list", elements="str", default=[]),
            validate=dict(type="str"),
            backup=dict(type="bool", default=False),
            mode=dict(type="str", default="0644"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    current = None
    if os.path.exists(path):
        with open(path, "rb") as handle:
            current = handle.read().decode("utf-8")
    try:
        before, after, changed = docker_config.plan(current, module.params["settings"], module.params["remove"], path)
    except docker_config.DaemonConfigError as exc:
        module.fail_json(msg=to_native(exc))

    result = dict(changed=changed, config=after, previous=before)
    if module._diff:
        result["diff"] = dict(before=docker_config.render(before), after=docker_config.render(after),
                              before_header=path, after_header=path)
    if not changed or module.check_mode:
        module.exit_json(**result)

    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".daemon.json.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(to_bytes(docker_config.render(after)))
        if module.params["validate"]:
            if "%s" not in module.params["validate"]:
                module.fail_json(msg="validate must contain %%s: %s" % module.params["validate"])
            rc, out, err = module.run_command(module.params["validate"] % tmp)
            if rc != 0:
                module.fail_json(msg="the merged configuration failed validation; %s is unchanged" % path,
                                 rc=rc, stdout=out, stderr=err, config=after)
        if module.params["backup"] and current is not None:
            result["backup_file"] = module.backup_local(path)
        module.set_mode_if_different(tmp, module.params["mode"], False)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
