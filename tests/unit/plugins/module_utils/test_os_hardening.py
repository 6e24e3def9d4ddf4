# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""The os_hardening role's rules and lists (module_utils/os_hardening.py)."""

import os
import stat

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_rules, os_hardening


@pytest.mark.parametrize("name, role", [
    ("overlay", "docker"), ("br-netfilter", "docker"), ("nvidia-uvm", "nvidia_driver"), ("nvidia_peermem", "nvidia_driver"),
    ("xt_conntrack", "firewall"), ("nf_tables", "firewall"), ("nfsv4", "model_weights"), ("vfat", "base"),
])
def test_a_module_a_role_needs_is_refused_with_the_role_named(name, role):
    problems = os_hardening.blocked_modules_problems(["dccp", name], [])
    assert len(problems) == 1
    assert problems[0].startswith("%s is needed by the %s role" % (name, role))


def test_the_default_list_blocks_nothing_a_role_needs():
    import yaml
    from pathlib import Path
    defaults = yaml.safe_load((Path(__file__).resolve().parents[4] / "roles/os_hardening/defaults/main.yml").read_text())
    assert os_hardening.blocked_modules_problems(defaults["os_hardening_blocked_modules"], []) == []
    assert list(fleet_rules.os_hardening_rules(defaults)) == []


def test_an_allowed_module_is_not_checked_and_a_bad_name_is_named():
    assert os_hardening.blocked_modules_problems(["overlay"], ["overlay"]) == []
    assert os_hardening.blocked_modules_problems(["usb storage"], []) == ["'usb storage' is not a kernel module name"]


@pytest.mark.parametrize("umask, problem", [
    ("027", ""), ("0027", ""), ("077", ""), ("022", ""),
    ("0277", "takes the owner's own access"), ("700", "takes the owner's own access"),
    ("020", "lets every account write new files"), ("000", "lets every account write new files"),
    (27, "is not an octal umask"), ("0o27", "is not an octal umask"), ("028", "is not an octal umask"),
])
def test_umask_rule(umask, problem):
    found = os_hardening.umask_problem(umask)
    assert (problem in found) if problem else found == ""


def test_role_rules_name_each_variable():
    values = {"os_hardening_umask": "0277", "os_hardening_home_mode": "0640", "os_hardening_blocked_modules": ["overlay"],
              "os_hardening_allowed_modules": [], "os_hardening_suid_remove": ["usr/bin/chfn"],
              "os_hardening_audit_watch_extra": ["/srv/models"], "os_hardening_password_min_days": 30,
              "os_hardening_password_max_days": 7, "os_hardening_password_warn_days": 7}
    problems = list(fleet_rules.os_hardening_rules(values))
    assert [p.split(":")[0] for p in problems] == [
        "os_hardening_umask", "os_hardening_home_mode", "os_hardening_blocked_modules", "os_hardening_suid_remove[0]",
        "os_hardening_password_min_days"]


def test_login_homes_are_root_and_accounts_with_a_shell_under_home():
    passwd = {
        "root": ["x", "0", "0", "root", "/root", "/bin/bash"],
        "admin": ["x", "1000", "1000", "", "/home/admin", "/bin/bash"],
        "llmfleet-model": ["x", "998", "998", "", "/var/lib/llmfleet-model", "/bin/bash"],
        "daemon": ["x", "1", "1", "", "/usr/sbin", "/usr/sbin/nologin"],
        "nobody-home": ["x", "1001", "1001", "", "/home/a/b", "/bin/sh"],
        "locked": ["x", "1002", "1002", "", "/home/locked", "/bin/false"],
    }
    assert os_hardening.login_homes(passwd, "0750") == [
        {"path": "/home/admin", "mode": "0750"}, {"path": "/root", "mode": "0700"}]


def test_setid_files_keep_the_rest_of_the_mode():
    found = os_hardening.setid_files(["/usr/bin/wall root tty 2755", "/usr/bin/chfn root root 4755",
                                      "/usr/bin/done root root 755"])
    assert found == [{"path": "/usr/bin/wall", "owner": "root", "group": "tty", "mode": "0755"},
                     {"path": "/usr/bin/chfn", "owner": "root", "group": "root", "mode": "0755"}]
    with pytest.raises(ValueError):
        os_hardening.setid_files(["/usr/bin/x root 4755"])


def test_mode_changes_are_only_the_existing_paths_with_another_mode():
    wanted = [{"path": "/etc/crontab", "mode": "0600"}, {"path": "/etc/cron.d", "mode": "0700"},
              {"path": "/home/admin", "mode": "0750"}, {"path": "/root", "mode": "0700"}]
    lines = ["/etc/crontab 644", "/etc/cron.d 700", "/home/admin 755"]
    assert os_hardening.mode_changes(wanted, lines) == [
        {"path": "/etc/crontab", "mode": "0600"}, {"path": "/home/admin", "mode": "0750"}]
    assert os_hardening.mode_changes(wanted, ["/etc/crontab 600", "/home/admin 750"]) == []


LOGIN_DEFS = """# UMASK is the default umask value for pam_umask and is used by
UMASK\t\t022
# HOME_MODE is used by useradd(8)
#HOME_MODE\t0700
PASS_MAX_DAYS\t99999
ENCRYPT_METHOD SHA512
#SHA_CRYPT_MIN_ROUNDS 5000
PASS_MAX_DAYS\t30
"""


def test_config_keys_replace_in_place_keep_prose_and_add_the_rest():
    settings = {"UMASK": "027", "HOME_MODE": "0750", "PASS_MAX_DAYS": "365", "SHA_CRYPT_MIN_ROUNDS": "65536",
                "PASS_MIN_DAYS": "1"}
    text = os_hardening.config_keys(LOGIN_DEFS, settings)
    assert text == """# UMASK is the default umask value for pam_umask and is used by
UMASK\t027
# HOME_MODE is used by useradd(8)
HOME_MODE\t0750
PASS_MAX_DAYS\t365
ENCRYPT_METHOD SHA512
SHA_CRYPT_MIN_ROUNDS\t65536
PASS_MIN_DAYS\t1
"""
    # A second pass changes nothing: the file is written once.
    assert os_hardening.config_keys(text, settings) == text


def test_audit_watch_adds_the_hosts_weights_from_the_plan_and_the_extra_paths():
    fleet = {"hosts": {"infra1": {"model_store": {"path": "/srv/models"}},
                       "model-a1": {"model_weights": {"path": "/data/weights"}}, "lb1": {}}}
    watched = os_hardening.audit_watch(fleet, "model-a1", ["/opt/extra", "/etc/passwd"])
    assert watched[:len(os_hardening.AUDIT_WATCH)] == list(os_hardening.AUDIT_WATCH)
    assert watched[len(os_hardening.AUDIT_WATCH):] == ["/data/weights", "/opt/extra"]
    assert os_hardening.audit_watch(fleet, "infra1")[-1] == "/srv/models"
    assert os_hardening.audit_watch(fleet, "lb1") == list(os_hardening.AUDIT_WATCH)
    assert os_hardening.audit_watch(None, "lb1") == list(os_hardening.AUDIT_WATCH)


def test_an_allowed_module_unblocks_it_in_either_spelling():
    blocked = ["usb-storage", "dccp", "sctp", "dccp"]
    assert os_hardening.blocked_modules(blocked, ["usb_storage"]) == ["dccp", "sctp"]
    assert os_hardening.blocked_modules(["usb_storage"], ["usb-storage"]) == []
    assert os_hardening.blocked_modules(blocked, []) == ["dccp", "sctp", "usb-storage"]


class FakeHost:
    """A host's files, modes and databases for host_state: {path: text}, {path: (mode, uid, gid)}."""
    PASSWD = ("root:x:0:0:root:/root:/bin/bash\nllmops:x:1000:1000::/home/llmops:/bin/bash\n"
              "svc:x:999:999::/var/lib/svc:/usr/sbin/nologin\nadmin:x:1001:1001::/home/admin:/bin/bash\n")
    SHADOW = "root:$y$j9T$abc:19000::::::\nllmops:!:19000::::::\nadmin:$6$salt$hash:19000::::::\nsvc:*:19000::::::\n"

    def __init__(self, files, modes):
        self.files, self.modes, self.asked = files, modes, []

    def read_text(self, path):
        self.asked.append(path)
        return self.files.get(path)

    def stat_path(self, path):
        if path not in self.modes:
            return None
        mode, uid, gid = self.modes[path]
        return os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))

    def getent(self, database):
        self.asked.append("getent " + database)
        return {"passwd": self.PASSWD, "shadow": self.SHADOW}[database]

    def state(self, **asked):
        return os_hardening.host_state(asked, self.read_text, self.stat_path, self.getent,
                                       lambda st: ({0: "root"}[st.st_uid], {0: "root", 42: "shadow"}[st.st_gid]))


def test_the_hosts_state_is_read_in_one_pass_and_only_what_is_asked():
    host = FakeHost(
        {"/etc/login.defs": "UMASK 022\n", "/proc/modules": "dccp 1 0 - Live 0x0\nveth 2 0 - Live 0x0\n",
         "/etc/pam.d/common-password": "password requisite pam_pwquality.so retry=3\n",
         "/etc/pam.d/common-session": "session optional pam_umask.so\n"},
        {"/etc/crontab": (stat.S_IFREG | 0o644, 0, 0), "/etc/cron.d": (stat.S_IFDIR | 0o700, 0, 0),
         "/root": (stat.S_IFDIR | 0o700, 0, 0), "/home/llmops": (stat.S_IFDIR | 0o755, 0, 0),
         "/usr/bin/chfn": (stat.S_IFREG | 0o4755, 0, 0), "/usr/bin/chage": (stat.S_IFREG | 0o2755, 0, 42),
         "/usr/bin/newgrp": (stat.S_IFREG | 0o755, 0, 0)})
    state = host.state(login_defs=True, password_accounts=True, home_mode="0750", loaded_modules=True, pam=True,
                       modes=[{"path": "/etc/crontab", "mode": "0600"}, {"path": "/etc/cron.d", "mode": "0700"},
                              {"path": "/etc/cron.daily", "mode": "0700"}],
                       setid_paths=["/usr/bin/chfn", "/usr/bin/chage", "/usr/bin/newgrp", "/usr/bin/gone"])
    assert state["login_defs"] == "UMASK 022\n"
    # A hash, not root, not a locked account.
    assert state["password_accounts"] == ["admin"]
    # Existing paths with another mode only; admin's home does not exist.
    assert state["mode_changes"] == [{"path": "/etc/crontab", "mode": "0600"}, {"path": "/home/llmops", "mode": "0750"}]
    assert state["setid"] == [{"path": "/usr/bin/chfn", "owner": "root", "group": "root", "mode": "0755"},
                              {"path": "/usr/bin/chage", "owner": "root", "group": "shadow", "mode": "0755"}]
    assert state["loaded_modules"] == ["dccp", "veth"]
    # The non-interactive session stack lacks pam_umask (missing here): not both.
    assert state["pam"] == {"pwquality": True, "umask": False}

    nothing = FakeHost({}, {})
    assert nothing.state() == {} and nothing.asked == []


def test_a_host_without_login_defs_is_named():
    with pytest.raises(ValueError, match="/etc/login.defs is missing"):
        FakeHost({}, {}).state(login_defs=True)


# /etc/default/sysstat as Debian 12's sysstat 12.6.1 installs it (read on a lab host).
SYSSTAT_DEFAULT = """#
# Default settings for /etc/init.d/sysstat, /etc/cron.d/sysstat
# and /etc/cron.daily/sysstat files
#

# Should sadc collect system activity informations? Valid values
# are "true" and "false". Please do not put other values, they
# will be overwritten by debconf!
ENABLED="false"

"""


def test_shell_style_keys_are_set_in_place_and_the_rest_kept():
    text = os_hardening.config_keys(SYSSTAT_DEFAULT, {"ENABLED": '"true"'}, "shell")
    assert text == SYSSTAT_DEFAULT.replace('ENABLED="false"', 'ENABLED="true"')
    assert os_hardening.config_keys(text, {"ENABLED": '"true"'}, "shell") == text
    # A later active line of the key goes, a commented one is used where none is active, a missing one is added.
    assert os_hardening.config_keys('ENABLED=x\nA=1\nENABLED=y\n', {"ENABLED": '"true"'}, "shell") == 'ENABLED="true"\nA=1\n'
    assert os_hardening.config_keys('#ENABLED="false"\n', {"ENABLED": '"true"'}, "shell") == 'ENABLED="true"\n'
    assert os_hardening.config_keys("", {"ENABLED": '"true"'}, "shell") == 'ENABLED="true"\n'
    # login.defs' style does not take KEY=value lines for its keys.
    assert os_hardening.config_keys("ENABLED=x\n", {"ENABLED": "1"}) == "ENABLED=x\nENABLED\t1\n"
    with pytest.raises(ValueError, match="style 'ini' is not one of shell, space"):
        os_hardening.config_keys("", {}, "ini")


def test_files_asked_for_are_returned_as_they_are_or_none():
    host = FakeHost({"/etc/default/sysstat": SYSSTAT_DEFAULT}, {})
    assert host.state(read=["/etc/default/sysstat", "/etc/default/gone"]) == {
        "texts": {"/etc/default/sysstat": SYSSTAT_DEFAULT, "/etc/default/gone": None}}
