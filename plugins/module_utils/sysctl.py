# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Applying kernel parameters live, only where the host lets us.

Inside a container /proc/sys is read-only (or only net.* is writable, in its own network
namespace); writing vm.* or kernel.* from a privileged container would change the whole
machine's kernel. So every key is probed first: applied when writable and different, else
reported with the reason. The persistent file in /etc/sysctl.d is written by the role either way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

PROC_SYS = "/proc/sys"


def key_path(key, root=PROC_SYS):
    return os.path.join(root, *key.split("."))


def normalize(value):
    """Kernel values as sysctl prints them: fields separated by single spaces."""
    return " ".join(str(value).split())


def read_value(path):
    with open(path) as handle:
        return normalize(handle.read())


def write_order(key):
    """Forwarding keys first. Writing IPv4 forwarding makes the kernel reset other keys
    (net/ipv4/devinet.c, inet_forward_change(): conf.all.accept_redirects becomes !forwarding,
    every device's forwarding follows): written after it, those keys keep the values asked for.
    Seen on a host whose network namespace started with ip_forward=1: the run that turned it off
    left accept_redirects at 1 and the next run had to apply it again."""
    return (0 if key == "net.ipv4.ip_forward" or key.endswith(".forwarding") else 1, key)


def plan_and_apply(settings, root=PROC_SYS, check_mode=False):
    """Returns dict(applied, unchanged, not_applied {key: reason}, absent), keys sorted."""
    result = {"applied": [], "unchanged": [], "not_applied": {}, "absent": []}
    for key in sorted(settings, key=write_order):
        wanted = normalize(settings[key])
        path = key_path(key, root)
        if not os.path.exists(path):
            result["absent"].append(key)
            continue
        try:
            current = read_value(path)
        except (IOError, OSError) as exc:
            result["not_applied"][key] = "cannot be read (%s)" % (exc.strerror or exc)
            continue
        if current == wanted:
            result["unchanged"].append(key)
            continue
        if not os.access(path, os.W_OK):
            result["not_applied"][key] = "not writable here (read-only /proc/sys, as in a container); is %s" % current
            continue
        if check_mode:
            result["applied"].append(key)
            continue
        try:
            with open(path, "w") as handle:
                handle.write(wanted)
        except (IOError, OSError) as exc:
            if exc.errno == errno.EINVAL:
                reason = "the kernel rejects %s (keeps %s)" % (wanted, current)
            else:
                reason = "%s (keeps %s)" % (exc.strerror or exc, current)
            result["not_applied"][key] = reason
            continue
        result["applied"].append(key)
    if not check_mode:
        # What the kernel holds now: a key another write changed back is not applied.
        for key in list(result["applied"]) + list(result["unchanged"]):
            now = read_value(key_path(key, root))
            if now != normalize(settings[key]):
                result["not_applied"][key] = "the kernel changed it back to %s after it was written" % now
                result["applied" if key in result["applied"] else "unchanged"].remove(key)
    for name in ("applied", "unchanged", "absent"):
        result[name].sort()
    return result
