# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Whole-host hardening (role os_hardening): what its rules refuse and the lists its tasks act on.

Kept out of the role's YAML so the rules are unit-tested and the tasks stay one call each.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import stat

# Kernel modules a role of this collection needs, with the role and what for: blocking one breaks
# that role on the hosts it runs on (module names compare with - and _ as one, as modprobe does).
NEEDED_MODULES = (
    ("overlay", "docker", "container storage (overlay2)"),
    ("br_netfilter", "docker", "filtering of container traffic (bridge netfilter)"),
    ("bridge", "docker", "container networks"),
    ("veth", "docker", "container network interfaces"),
    ("nf_conntrack", "firewall", "ufw's connection tracking"),
    ("nf_nat", "docker", "published container ports"),
    ("ip_tables", "firewall", "ufw's iptables"),
    ("ip6_tables", "firewall", "ufw's ip6tables"),
    ("iptable_filter", "firewall", "ufw's filter table"),
    ("iptable_nat", "docker", "published container ports"),
    ("x_tables", "firewall", "ufw's iptables"),
    ("nfs", "model_weights", "weights on NFS"),
    ("nfsv4", "model_weights", "weights on NFS"),
    ("sunrpc", "model_weights", "weights on NFS"),
    ("nvidia", "nvidia_driver", "the GPU driver"),
    ("nvidia_uvm", "nvidia_driver", "CUDA's unified memory"),
    ("nvidia_modeset", "nvidia_driver", "the GPU driver"),
    ("nvidia_drm", "nvidia_driver", "the GPU driver"),
    ("vfat", "base", "the EFI system partition, which a UEFI host mounts to boot"),
)
# Prefixes of module families that are needed as a whole (iptables matches and targets).
NEEDED_PREFIXES = (("xt_", "firewall", "ufw's iptables matches"), ("nf_", "firewall", "netfilter"),
                   ("nvidia", "nvidia_driver", "the GPU driver"))
# What auditd watches for writes and attribute changes on every host (CIS 4.1.3: identity, logins,
# privileges, sshd, PAM, cron, modules, kernel settings) and the collection's own configuration.
AUDIT_WATCH = (
    "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/security/opasswd", "/etc/sudoers",
    "/etc/sudoers.d", "/etc/ssh/sshd_config", "/etc/pam.d", "/etc/login.defs", "/etc/crontab", "/etc/cron.d",
    "/etc/modprobe.d", "/etc/sysctl.d", "/etc/hosts", "/etc/llmfleet", "/etc/haproxy", "/etc/nginx",
    "/etc/docker", "/etc/systemd/system", "/var/log/lastlog",
)
# Roles of the fleet plan whose "path" holds the weights (module_utils/fleet_plan.py ENDPOINTS).
DATA_ROLES = ("model_store", "model_weights")
MODULE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UMASK_PATTERN = re.compile(r"^0?[0-7]{3}$")
SETID_BITS = stat.S_ISUID | stat.S_ISGID
# Configuration lines by style: an active setting and a commented-out one - login.defs' "KEY value" and
# "#KEY value", a shell variables file's (/etc/default/*) KEY=value and #KEY=value.
KEY_STYLES = {
    "space": (re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s"), re.compile(r"^#([A-Z][A-Z0-9_]*)\s"), "%s\t%s"),
    "shell": (re.compile(r"^\s*([A-Z][A-Z0-9_]*)="), re.compile(r"^#([A-Z][A-Z0-9_]*)="), "%s=%s"),
}


def module_key(name):
    return str(name).replace("-", "_")


def blocked_modules(blocked, allowed):
    """The blocked modules that are not allowed, sorted, as given; module names compare as modprobe
    compares them ("-" and "_" are the same), as the validation does."""
    allowed_keys = set(module_key(m) for m in allowed or [])
    return sorted(set(str(m) for m in blocked or [] if module_key(m) not in allowed_keys))


def needed_module(name):
    """(role, why) when a role of the collection needs module `name`, else None."""
    key = module_key(name)
    for module, role, why in NEEDED_MODULES:
        if key == module:
            return role, why
    for prefix, role, why in NEEDED_PREFIXES:
        if key.startswith(prefix):
            return role, why
    return None


def blocked_modules_problems(blocked, allowed):
    """One "what is wrong" per blocked module that is not a module name or that a role needs."""
    allowed_keys = set(module_key(m) for m in allowed or [])
    problems = []
    for name in blocked or []:
        if not isinstance(name, str) or not MODULE_PATTERN.match(name):
            problems.append("%r is not a kernel module name" % (name,))
            continue
        if module_key(name) in allowed_keys:
            continue
        need = needed_module(name)
        if need:
            problems.append("%s is needed by the %s role (%s): blocking it breaks that role on every host it runs on; "
                            "take it off the list" % (name, need[0], need[1]))
    return problems


def umask_problem(value):
    """'' or why `value` (text such as "027") cannot be the login umask.

    The owner's digit must be 0: a umask that takes the owner's own access away leaves accounts
    and the services they start unable to use the files they create. Others' write bit must be
    set: a umask that lets every account write new files is weaker than Debian's own 022."""
    text = str(value)
    if not UMASK_PATTERN.match(text):
        return "%r is not an octal umask such as 027 (quote it: YAML reads 027 as the number 27)" % (value,)
    mask = int(text, 8)
    if mask & 0o700:
        return ("%s takes the owner's own access to new files away (the owner digit must be 0): accounts and the "
                "services they start could not use what they create" % text)
    if not mask & 0o002:
        return "%s lets every account write new files: weaker than Debian's own 022" % text
    return ""


def login_homes(passwd, mode):
    """Home directories to close, with their mode: [{"path", "mode"}] sorted by account name.

    passwd: getent's {name: [password, uid, gid, gecos, home, shell]}. Root's home (0700), and those of
    accounts with a login shell whose home is directly under /home (`mode`); service accounts' homes
    (/var/lib/x) are their packages' to set."""
    homes = []
    for name, fields in sorted((passwd or {}).items()):
        if len(fields) < 6:
            continue
        home, shell = fields[4], fields[5]
        if not shell or shell.endswith(("/nologin", "/false")):
            continue
        if name == "root":
            homes.append({"path": home, "mode": "0700"})
        elif home.startswith("/home/") and home.count("/") == 2:
            homes.append({"path": home, "mode": str(mode)})
    return homes


def setid_files(lines):
    """Programs that still carry a set-user/group-ID bit, with the mode they get without it:
    [{"path", "owner", "group", "mode"}] from `stat -c '%n %U %G %a'` lines."""
    found = []
    for line in lines or []:
        parts = str(line).split()
        if len(parts) != 4 or not re.match(r"^[0-7]{3,4}$", parts[3]):
            raise ValueError("%r is not a line of stat -c '%%n %%U %%G %%a'" % (line,))
        mode = int(parts[3], 8)
        if mode & SETID_BITS:
            found.append({"path": parts[0], "owner": parts[1], "group": parts[2],
                          "mode": "%04o" % (mode & ~SETID_BITS & 0o7777)})
    return found


def mode_changes(wanted, lines):
    """The entries of wanted ([{"path", "mode"}]) whose path exists with another mode, from
    `stat -c '%n %a'` lines of the paths that exist. The last entry for a path wins."""
    current = {}
    for line in lines or []:
        path, _sep, mode = str(line).rpartition(" ")
        current[path] = int(mode, 8)
    changes = {}
    for entry in wanted or []:
        if entry["path"] in current and current[entry["path"]] != int(str(entry["mode"]), 8):
            changes[entry["path"]] = entry
    return list(changes.values())


def config_keys(text, settings, style="space"):
    """`text` (a KEY VALUE file such as login.defs; with style "shell", a KEY=value file such as
    /etc/default/sysstat) with each key of `settings` set: its first active line replaced and any
    later active line of it dropped; a key with no active line replaces its first commented-out
    setting ("#KEY value", as Debian ships them; prose such as "# KEY is ..." is left alone), or is
    added at the end."""
    if style not in KEY_STYLES:
        raise ValueError("style %r is not one of %s" % (style, ", ".join(sorted(KEY_STYLES))))
    active_key, commented_key, setting = KEY_STYLES[style]
    lines = text.splitlines()
    active = set(m.group(1) for m in (active_key.match(line) for line in lines) if m)
    done, out = set(), []
    for line in lines:
        match = active_key.match(line)
        commented = commented_key.match(line) if not match else None
        key = (match or commented).group(1) if (match or commented) else None
        if key in settings and key not in done and (match or key not in active):
            out.append(setting % (key, settings[key]))
            done.add(key)
            continue
        if match and key in settings:
            continue
        out.append(line)
    out.extend(setting % (key, value) for key, value in settings.items() if key not in done)
    return "\n".join(out) + "\n"


def audit_watch(fleet, host, extra=()):
    """Paths auditd watches on `host`: AUDIT_WATCH, the weights the fleet plan says the host keeps
    (model store, staged weights), then `extra`; without repeats, in that order. fleet: llmfleet_fleet,
    or None when the run made no plan (the role run alone)."""
    entry = ((fleet or {}).get("hosts") or {}).get(host) or {}
    paths = list(AUDIT_WATCH)
    for role in DATA_ROLES:
        path = (entry.get(role) or {}).get("path")
        if path:
            paths.append(str(path))
    paths.extend(str(p) for p in extra or ())
    seen = set()
    return [p for p in paths if not (p in seen or seen.add(p))]


def parse_getent(text):
    """getent's lines (`name:field:...`) as {name: [the fields after the name]}, as ansible.builtin.getent
    gives them (login_homes reads passwd in this shape)."""
    found = {}
    for line in (text or "").splitlines():
        if line.strip():
            fields = line.split(":")
            found[fields[0]] = fields[1:]
    return found


def password_accounts(shadow):
    """The accounts other than root that have a password (a crypt hash, "$..."; not a locked "!" or "*"),
    sorted: login.defs' aging reaches only accounts created after it, these get it by hand. Not root: an
    expired root password would lock the console, the last way in when SSH is gone."""
    return sorted(name for name, fields in (shadow or {}).items()
                  if name != "root" and fields and fields[0].startswith("$"))


PAM_PASSWORD = "/etc/pam.d/common-password"
PAM_SESSIONS = ("/etc/pam.d/common-session", "/etc/pam.d/common-session-noninteractive")


def host_state(asked, read_text, stat_path, getent, owner_names):
    """What the role's tasks act on, read in one pass (one module call per host instead of one task per
    look: each look is a round trip, 1.4-2.3 s of a no-op run of the 10-host lab).

    asked: the module's parameters - login_defs (bool), read ([path]: {path: text or None} as texts),
    password_accounts (bool), modes ([{path, mode}]),
    home_mode (str or None: login homes from getent passwd join modes), setid_paths ([path]),
    loaded_modules (bool), pam (bool). Injected: read_text(path) -> str or None (missing),
    stat_path(path) -> os.stat_result or None (missing), getent(database) -> its text, owner_names(st) ->
    (user, group). Each part is in the result only when asked."""
    state = {}
    if asked.get("login_defs"):
        text = read_text("/etc/login.defs")
        if text is None:
            raise ValueError("/etc/login.defs is missing: the role sets its keys in Debian's file")
        state["login_defs"] = text
    if asked.get("read"):
        state["texts"] = dict((path, read_text(path)) for path in asked["read"])
    if asked.get("password_accounts"):
        state["password_accounts"] = password_accounts(parse_getent(getent("shadow")))
    modes = list(asked.get("modes") or [])
    if asked.get("home_mode"):
        modes += login_homes(parse_getent(getent("passwd")), asked["home_mode"])
    if modes:
        lines = []
        for path in dict.fromkeys(entry["path"] for entry in modes):
            found = stat_path(path)
            if found is not None:
                lines.append("%s %o" % (path, stat.S_IMODE(found.st_mode)))
        state["mode_changes"] = mode_changes(modes, lines)
    if asked.get("setid_paths"):
        lines = []
        for path in asked["setid_paths"]:
            found = stat_path(path)
            if found is not None and stat.S_ISREG(found.st_mode) and found.st_mode & SETID_BITS:
                user, group = owner_names(found)
                lines.append("%s %s %s %o" % (path, user, group, stat.S_IMODE(found.st_mode)))
        state["setid"] = setid_files(lines)
    if asked.get("loaded_modules"):
        state["loaded_modules"] = sorted(line.split()[0] for line in (read_text("/proc/modules") or "").splitlines()
                                         if line.strip())
    if asked.get("pam"):
        def uses(path, module):
            return module in (read_text(path) or "")
        state["pam"] = {"pwquality": uses(PAM_PASSWORD, "pam_pwquality.so"),
                        "umask": all(uses(path, "pam_umask.so") for path in PAM_SESSIONS)}
    return state
