#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: os_hardening_state
short_description: Read in one call what the os_hardening role acts on
version_added: 0.1.0
description:
  - Reads, for the parts asked, C(/etc/login.defs), the accounts that have a password, the modes of files and
    of the login accounts' homes that differ from the ones wanted, the listed programs that still carry a
    set-user/group-ID bit, the kernel modules loaded now, and whether PAM's stacks use pam_pwquality and
    pam_umask.
  - Why a module - each of these was a task of its own (C(slurp), C(getent), C(stat) or C(grep) through
    C(command)), and each task is a round trip to every host, 1.4-2.3 s of a no-op run of the 10-host lab;
    one call reads them all (logic in C(module_utils/os_hardening.py)).
  - Changes nothing.
options:
  login_defs:
    description: Return C(/etc/login.defs) (the role sets its keys in Debian's file).
    type: bool
    default: false
  read:
    description:
      - Files to return as they are, in RV(texts) (null for a file that does not exist), such as
        C(/etc/default/sysstat), whose keys the role sets in the distribution's file.
    type: list
    elements: str
    default: []
  password_accounts:
    description: Return the accounts other than root that have a password (C(getent shadow)).
    type: bool
    default: false
  modes:
    description: Files and directories with the mode each should have (those that do not exist are left out).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: str
        required: true
      mode:
        description: Octal mode, such as C(0700).
        type: str
        required: true
  home_mode:
    description:
      - Also the homes of the accounts with a login shell (C(getent passwd)) - root's with 0700, those directly
        under C(/home) with this mode.
    type: str
  setid_paths:
    description: Programs to look at for a set-user-ID or set-group-ID bit.
    type: list
    elements: str
    default: []
  loaded_modules:
    description: Return the kernel modules loaded now (C(/proc/modules)).
    type: bool
    default: false
  pam:
    description: Return whether C(common-password) uses pam_pwquality and both session stacks use pam_umask.
    type: bool
    default: false
extends_documentation_fragment: [llmfleet.cluster.read_only]
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Look at the host
  llmfleet.cluster.os_hardening_state:
    login_defs: true
    password_accounts: true
    modes: [{path: /etc/crontab, mode: "0600"}]
    home_mode: "0750"
    setid_paths: [/usr/bin/chfn, /usr/bin/chsh]
    loaded_modules: true
    pam: true
  register: state
"""

RETURN = r"""
login_defs:
  description: The text of C(/etc/login.defs).
  returned: when O(login_defs) is true
  type: str
texts:
  description: Each file of O(read) by its path, its text or null where it does not exist.
  returned: when O(read) is given
  type: dict
  sample: {/etc/default/sysstat: "ENABLED=\"false\"\n"}
password_accounts:
  description: Accounts other than root whose password is a crypt hash, sorted.
  returned: when O(password_accounts) is true
  type: list
  elements: str
mode_changes:
  description: The entries of O(modes) and the login homes whose path exists with another mode (C(path), C(mode)).
  returned: when O(modes) or O(home_mode) is given
  type: list
  elements: dict
setid:
  description: The programs of O(setid_paths) that carry a set-ID bit, with the mode they get without it.
  returned: when O(setid_paths) is given
  type: list
  elements: dict
  sample: [{path: /usr/bin/chfn, owner: root, group: root, mode: "0755"}]
loaded_modules:
  description: The names of the kernel modules loaded now, sorted.
  returned: when O(loaded_modules) is true
  type: list
  elements: str
pam:
  description: C(pwquality) - common-password uses pam_pwquality.so; C(umask) - both session stacks use pam_umask.so.
  returned: when O(pam) is true
  type: dict
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.cluster.plugins.module_utils import os_hardening


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def stat_path(path):
    try:
        return os.stat(path)
    except OSError:
        return None


def owner_names(found):
    def name(lookup, number):
        try:
            return lookup(number)[0]
        except KeyError:
            return str(number)
    return name(pwd.getpwuid, found.st_uid), name(grp.getgrgid, found.st_gid)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            login_defs=dict(type="bool", default=False),
            read=dict(type="list", elements="str", default=[]),
            password_accounts=dict(type="bool", default=False),
            modes=dict(type="list", elements="dict", default=[],
                       options=dict(path=dict(type="str", required=True), mode=dict(type="str", required=True))),
            home_mode=dict(type="str"),
            setid_paths=dict(type="list", elements="str", default=[]),
            loaded_modules=dict(type="bool", default=False),
            pam=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )

    # getent, not /etc/passwd and /etc/shadow: accounts from NSS (LDAP, sssd) count as they did with
    # ansible.builtin.getent.
    def getent(database):
        rc, out, err = module.run_command([module.get_bin_path("getent", required=True), database])
        if rc not in (0, 2):   # 2: the database is empty
            module.fail_json(msg="getent %s failed (rc %d): %s" % (database, rc, (err or out).strip()))
        return out

    try:
        state = os_hardening.host_state(module.params, read_text, stat_path, getent, owner_names)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **state)


if __name__ == "__main__":
    main()
