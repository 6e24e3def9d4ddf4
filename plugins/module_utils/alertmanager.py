# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Alertmanager's configuration from the alertmanager role's variables, and what is wrong with them.

Receivers, child routes, inhibition rules and the global section are taken in Alertmanager's own form
(its documentation applies as written); this module adds the top-level route and refuses what
Alertmanager would accept but that delivers nothing: a receiver with no target, a route to a receiver
that does not exist. `amtool check-config` then checks the whole file on the host before it lands.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Alertmanager 0.25's (Debian bookworm) integrations: the receiver keys that hold targets.
TARGET_KEYS = ("discord_configs", "email_configs", "msteams_configs", "opsgenie_configs", "pagerduty_configs",
               "pushover_configs", "slack_configs", "sns_configs", "telegram_configs", "victorops_configs",
               "webex_configs", "webhook_configs", "wechat_configs")
# What each integration cannot do without (Alertmanager fills the rest from `global`).
REQUIRED = {"webhook_configs": ("url",), "email_configs": ("to",)}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The receiver alerts go to when the site names none: they are kept in Alertmanager (its UI, amtool)
# and reach nobody. Alertmanager needs a receiver on the top-level route; this one is ours.
NO_RECEIVER = "llmfleet-none"


def receivers_problems(receivers):
    """'VARIABLE[i] (name): why' for every receiver that would deliver nothing or is malformed."""
    if not isinstance(receivers, list):
        yield "alertmanager_receivers: give a list of receivers ({name, webhook_configs: [...], ...})"
        return
    seen = set()
    for index, receiver in enumerate(receivers):
        where = "alertmanager_receivers[%d]" % index
        if not isinstance(receiver, dict):
            yield "%s: give a mapping with name and the receiver's *_configs" % where
            continue
        name = receiver.get("name")
        if not NAME_PATTERN.match(str(name or "")) or name == NO_RECEIVER:
            yield "%s: name: %r is not a receiver name (letters, digits, . _ -; not %s)" % (where, name, NO_RECEIVER)
            continue
        where = "%s (%s)" % (where, name)
        if name in seen:
            yield "%s: name: given to two receivers" % where
        seen.add(name)
        unknown = sorted(set(receiver) - set(TARGET_KEYS) - {"name"})
        if unknown:
            yield "%s: %s: not an Alertmanager 0.25 receiver key (%s)" % (where, ", ".join(unknown), ", ".join(TARGET_KEYS))
        targets = [key for key in TARGET_KEYS if receiver.get(key)]
        if not targets:
            yield "%s: no target: give at least one of %s with an entry (it would deliver nothing)" % (
                where, ", ".join(TARGET_KEYS))
        for key in targets:
            if not isinstance(receiver[key], list):
                yield "%s: %s: give a list" % (where, key)
                continue
            for position, target in enumerate(receiver[key]):
                missing = [field for field in REQUIRED.get(key, ()) if not (isinstance(target, dict) and target.get(field))]
                if not isinstance(target, dict) or missing:
                    yield "%s: %s[%d]: %s not set" % (where, key, position, ", ".join(missing) or "a mapping is")


def routes_problems(routes, default_receiver, receivers):
    """Child routes and the default receiver must name receivers that exist."""
    names = set(r.get("name") for r in receivers if isinstance(r, dict)) if isinstance(receivers, list) else set()
    if default_receiver and default_receiver not in names:
        yield "alertmanager_default_receiver: %s is not a receiver of alertmanager_receivers (%s)" % (
            default_receiver, ", ".join(sorted(names)) or "none")
    if not isinstance(routes, list):
        yield "alertmanager_routes: give a list of routes ({receiver, matchers: [...]})"
        return
    for index, route in enumerate(routes):
        if not isinstance(route, dict) or route.get("receiver") not in names:
            yield "alertmanager_routes[%d]: receiver: %s is not a receiver of alertmanager_receivers (%s)" % (
                index, route.get("receiver") if isinstance(route, dict) else route, ", ".join(sorted(names)) or "none")


def config(receivers, default_receiver, routes, group_by, group_wait, group_interval, repeat_interval,
           inhibit_rules, global_settings):
    """The alertmanager.yml mapping."""
    receivers = list(receivers or [])
    default = default_receiver or (receivers[0]["name"] if receivers else NO_RECEIVER)
    if not receivers or default == NO_RECEIVER:
        receivers.append({"name": NO_RECEIVER})
    result = {
        "route": {"receiver": default, "group_by": list(group_by), "group_wait": group_wait,
                  "group_interval": group_interval, "repeat_interval": repeat_interval, "routes": list(routes or [])},
        "receivers": receivers,
        "inhibit_rules": list(inhibit_rules or []),
    }
    if global_settings:
        result["global"] = dict(global_settings)
    return result
