# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""One ufw reconcile per call: the rules a caller wants, the ones it owns and no longer wants.

Why not community.general.ufw: it checks and applies one rule per task (each a `ufw --dry-run`,
each a module round trip), so a host's ~15 rules cost ~15 round trips on every run, and it cannot
remove a rule the collection no longer wants (a replica that went away keeps its port open). Here
the host's rules are read once (`ufw show added`, which lists them as the commands that made them,
and works while ufw is inactive), compared as parsed rules, and only the difference is applied.

Ownership is by comment: every rule the collection writes carries `llmfleet OWNER` or
`llmfleet OWNER: WHAT`. A call owns its OWNER (and the owners it names: one call can reconcile the
rules of several services of a host, e.g. each model server of a node, at the cost of one round trip);
a rule with such an owner that the call does not want is deleted. Rules of other owners and rules
someone added by hand are never touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import shlex
from collections import namedtuple

PREFIX = "llmfleet"
ACTIONS = ("allow", "limit", "deny", "reject")
# ufw's policy words as /etc/default/ufw stores them.
POLICIES = {"deny": "DROP", "reject": "REJECT", "allow": "ACCEPT"}
LOG_LEVELS = ("off", "on", "low", "medium", "high", "full")

Rule = namedtuple("Rule", "route action source port proto comment")

_PORT = re.compile(r"^\d{1,5}(:\d{1,5})?$")
# As `ufw show added` prints a rule: "allow 22/tcp comment 'x'" (from any) or
# "route allow from 10.0.0.0/8 to any port 8000 proto tcp comment 'x'".
_SHORT = re.compile(r"^(?P<route>route )?(?P<action>\w+) (?P<port>[\d:]+)/(?P<proto>tcp|udp)(?: comment (?P<comment>.+))?$")
_LONG = re.compile(r"^(?P<route>route )?(?P<action>\w+) from (?P<source>\S+) to any port (?P<port>[\d:]+) "
                   r"proto (?P<proto>tcp|udp)(?: comment (?P<comment>.+))?$")


def source_key(source):
    """A source as a comparable value: "any", or the network with its host bits cleared
    (ufw stores 10.0.0.5/24 as 10.0.0.0/24)."""
    if source in ("any", None, ""):
        return "any"
    return str(ipaddress.ip_network(source, strict=False))


def comment_text(owner, what):
    return "%s %s: %s" % (PREFIX, owner, what) if what else "%s %s" % (PREFIX, owner)


def owned_by(rule, owner):
    mine = "%s %s" % (PREFIX, owner)
    return rule.comment == mine or (rule.comment or "").startswith(mine + ": ")


def owner_problem(owner):
    """What is wrong with an owner's name, or '' (it becomes part of a comment: `llmfleet OWNER: WHAT`)."""
    if not isinstance(owner, str) or not owner.strip() or "'" in owner or ":" in owner:
        return "owner %r must be a non-empty name without quotes or colons" % (owner,)
    return ""


def owners_of(owner, specs, owners=()):
    """Every owner a call reconciles: its own, those it names, and each rule's own."""
    found = []
    for name in [owner] + list(owners) + [spec.get("owner") for spec in specs]:
        if name and name not in found:
            found.append(name)
    return found


def parse_added(text):
    """The rules of `ufw show added`, as Rules; lines it cannot read are returned apart
    (they are never deleted: the module does not own what it cannot read)."""
    rules, unread = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("ufw "):
            continue
        body = line[4:]
        match = _LONG.match(body) or _SHORT.match(body)
        if not match or match.group("action") not in ACTIONS:
            unread.append(line)
            continue
        comment = match.group("comment")
        if comment is not None:
            words = shlex.split(comment)
            comment = words[0] if len(words) == 1 else comment
        found = match.groupdict()
        rules.append(Rule(route=bool(found["route"]), action=found["action"], source=source_key(found.get("source")),
                          port=found["port"], proto=found["proto"], comment=comment))
    return rules, unread


def rule_problem(spec):
    """What is wrong with one wanted rule (as the module receives it), or ''."""
    port = str(spec.get("port", ""))
    if not _PORT.match(port) or any(not 1 <= int(p) <= 65535 for p in port.split(":")):
        return "port %r is not a port or a range such as 8000:8009" % (spec.get("port"),)
    container_port = spec.get("container_port")
    if container_port not in (None, "") and (not re.match(r"^\d{1,5}$", str(container_port))
                                             or not 1 <= int(container_port) <= 65535):
        return "container_port %r is not a port" % (container_port,)
    if spec.get("proto", "tcp") not in ("tcp", "udp"):
        return "proto %r is not tcp or udp" % (spec.get("proto"),)
    if spec.get("action", "allow") not in ACTIONS:
        return "action %r is not one of %s" % (spec.get("action"), ", ".join(ACTIONS))
    for source in sources(spec):
        try:
            source_key(source)
        except ValueError:
            return "from: %r is not a network (CIDR) or any" % (source,)
    if "'" in (spec.get("comment") or ""):
        return "comment %r contains a quote" % (spec.get("comment"),)
    if spec.get("owner") not in (None, ""):
        return owner_problem(spec["owner"])
    return ""


def sources(spec):
    """A rule's sources: any when not given; an empty list is no source, so no rule."""
    found = spec.get("from")
    return ["any"] if found is None else found


def wanted(specs, owner, also_routed=False):
    """Rules from the module's rule specs: one per source; the comment carries the owner (the spec's
    own where it names one, else the call's). With
    also_routed (a Docker host; a spec's own also_routed wins), each rule again as a routed rule, which the DOCKER-USER chain
    consults for container ports. Docker rewrites a published port to the container's own port
    (nat PREROUTING) before the packet reaches DOCKER-USER, so that routed rule names the spec's
    container_port where one is given (host port 8001 published from the engine's 8080: the routed
    rule is on 8080; found on the lab, where a routed rule on 8001 let nothing through)."""
    rules, seen = [], set()
    for spec in specs:
        what = spec.get("comment") or ""
        rule_owner = spec.get("owner") or owner
        routed_too = also_routed if spec.get("also_routed") is None else spec["also_routed"]
        for source in sources(spec):
            rule = Rule(route=bool(spec.get("route")), action=spec.get("action") or "allow", source=source_key(source),
                        port=str(spec["port"]), proto=spec.get("proto") or "tcp", comment=comment_text(rule_owner, what))
            copies = [rule]
            if routed_too and not rule.route:
                # Replicas publish different ports from one container port: one routed rule for them all.
                routed_what = "containers" if spec.get("container_port") else (what + " (containers)").strip()
                copies.append(rule._replace(route=True, port=str(spec.get("container_port") or rule.port),
                                            comment=comment_text(rule_owner, routed_what)))
            for copy in copies:
                # ufw holds one rule per (route, action, source, port, proto): the first comment wins.
                if copy._replace(comment=None) not in seen:
                    seen.add(copy._replace(comment=None))
                    rules.append(copy)
    return rules


def _printed_source(source):
    """A source as ufw prints it back: a single address without its /32 or /128."""
    network = ipaddress.ip_network(source)
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else source


def _spec_words(rule):
    words = ["route"] if rule.route else []
    if rule.source == "any":
        return words + [rule.action, "%s/%s" % (rule.port, rule.proto)]
    return words + [rule.action, "from", _printed_source(rule.source), "to", "any", "port", rule.port, "proto", rule.proto]


def add_argv(rule):
    """ufw's arguments that add (or re-comment) the rule."""
    return _spec_words(rule) + (["comment", rule.comment] if rule.comment else [])


def delete_argv(rule):
    """ufw's arguments that delete the rule (a route rule: `route delete ...`)."""
    words = _spec_words(rule)
    return ["route", "delete"] + words[1:] if rule.route else ["delete"] + words


def same_spec(a, b):
    return a._replace(comment=None) == b._replace(comment=None)


def plan(current, wants, owners, purge=True):
    """(to_delete, to_add). owners: the owner (or list of owners, owners_of) this call reconciles. A
    wanted rule present with another comment is added again: ufw then updates its comment in place. A
    rule of one of the owners no longer wanted is deleted, unless a wanted rule has the same spec (the
    add re-comments it: deleting first would open a gap in the firewall)."""
    owners = [owners] if isinstance(owners, str) else [o for o in owners if o]
    to_add = [rule for rule in wants if rule not in current]
    to_delete = []
    if purge and owners:
        to_delete = [rule for rule in current
                     if any(owned_by(rule, o) for o in owners) and rule not in wants
                     and not any(same_spec(rule, w) for w in wants)]
    return to_delete, to_add


def read_settings(default_text, conf_text):
    """Policies and logging as ufw stores them (/etc/default/ufw, /etc/ufw/ufw.conf)."""
    def values(text):
        found = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                found[key.strip()] = value.strip().strip('"')
        return found

    default, conf = values(default_text), values(conf_text)
    return {"incoming": default.get("DEFAULT_INPUT_POLICY", ""), "routed": default.get("DEFAULT_FORWARD_POLICY", ""),
            "logging": conf.get("LOGLEVEL", ""), "enabled": conf.get("ENABLED", "") == "yes"}


def settings_commands(current, incoming=None, routed=None, logging=None):
    """ufw commands that bring the policies and logging to what is asked."""
    commands = []
    for direction, policy in (("incoming", incoming), ("routed", routed)):
        if policy and current.get(direction) != POLICIES[policy]:
            commands.append(["default", policy, direction])
    if logging:
        # ufw.conf stores "on" as LOGLEVEL=low and "off" as LOGLEVEL=off.
        level = "low" if logging == "on" else logging
        if current.get("logging") != level:
            commands.append(["logging", logging])
    return commands
