#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: config_files
short_description: Several configuration files and their directories in one call, validated before any lands
version_added: 0.1.0
description:
  - Brings each listed file to its content, mode and owner, and each listed directory to its mode and
    owner (created when missing), in one call on the host.
  - Every file whose content changes is first written beside itself and checked by its own
    I(validate) command; only when every check passed are the new files moved into place, each
    atomically. A refused file leaves every file of the call as it was.
  - Why not C(ansible.builtin.copy) or C(template) in a loop - they cost two round trips per file (a
    stat, then the attributes), about 3.6 s per file task on a converged 10-host fleet with a 2-core
    controller; this module makes it one per list. Render templates on the controller with
    C(lookup('ansible.builtin.template', ...)).
options:
  files:
    description: The entries, in order (a directory before the files in it).
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description: C(file) or C(directory).
        type: str
        choices: [file, directory]
        default: file
      content:
        description: The file's whole content (required for files, not allowed for directories).
        type: str
      owner:
        description: Owner's name.
        type: str
        default: root
      group:
        description: Group's name.
        type: str
        default: root
      mode:
        description: Octal permissions as a string. Default C("0644") for files, C("0755") for directories.
        type: str
      validate:
        description:
          - Command that checks the new content before it lands; C(%s) is the temporary file's path.
            Not run through a shell.
        type: str
      backup:
        description:
          - Absolute path (files only) kept equal to the file's content as it was before this call, with
            mode C(0600) and the file's owner. Written in the same call when it differs, before the new
            content lands; removed where the file did not exist (so that a rollback never restores an older
            content). Not counted as a change. In check mode nothing is written.
          - For a caller that restores the previous content when the new one proves wrong (sshd's
            rollback in C(ssh_hardening)).
        type: path
attributes:
  check_mode:
    support: full
    description: Reports which entries would change and how, writes nothing.
  diff_mode:
    support: full
    description: The content of every file that changes, before and after.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Write the legal banners and turn core files off
  llmfleet.cluster.config_files:
    files:
      - path: /etc/issue
        content: "Authorized use only.\n"
      - path: /etc/systemd/coredump.conf.d
        state: directory
      - path: /etc/systemd/coredump.conf.d/60-site.conf
        content: "[Coredump]\nStorage=none\n"
      - path: /etc/sudoers.d/operator
        content: "{{ lookup('ansible.builtin.template', 'sudoers.j2') }}"
        mode: "0440"
        validate: /usr/sbin/visudo -cf %s
"""

RETURN = r"""
files:
  description: The entries that differed (or would, in check mode), with what differed.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The entry's path.
      type: str
    changes:
      description: Some of C(created), C(content), C(mode), C(owner).
      type: list
      elements: str
  sample: [{"path": "/etc/issue", "changes": ["content"]}]
backups:
  description: The backups this call wrote or removed (empty in check mode).
  returned: success
  type: list
  elements: str
  sample: ["/etc/ssh/sshd_config.previous"]
"""

import grp
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.llmfleet.cluster.plugins.module_utils import config_files


def _id(kind, name):
    try:
        return pwd.getpwnam(name).pw_uid if kind == "user" else grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=dict(
                path=dict(type="path", required=True),
                state=dict(type="str", choices=["file", "directory"], default="file"),
                content=dict(type="str"),
                owner=dict(type="str", default="root"),
                group=dict(type="str", default="root"),
                mode=dict(type="str"),
                validate=dict(type="str"),
                backup=dict(type="path"),
            )),
        ),
        supports_check_mode=True,
    )
    try:
        specs = config_files.normalise(module.params["files"], _id)
        for spec in specs:
            if spec["content"] is not None:
                spec["content"] = to_bytes(spec["content"], errors="surrogate_or_strict")
        result = config_files.apply(specs, config_files.Node(), module.run_command,
                                    check_mode=module.check_mode)
    except (config_files.ConfigFilesError, OSError) as exc:
        module.fail_json(msg=to_native(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
