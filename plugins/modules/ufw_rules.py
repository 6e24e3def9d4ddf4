#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ufw_rules
short_description: Reconcile a host's ufw rules, policies and logging in one call
version_added: 0.1.0
description:
  - Reads the host's rules once (C(ufw show added)), adds the wanted rules that are missing, and
    deletes the rules this caller owns but no longer wants; then sets the default policies and the
    logging level where they differ, and enables ufw when asked.
  - "Ownership is by comment. Every rule written here carries the comment C(llmfleet OWNER) or
    C(llmfleet OWNER: WHAT); rules of other owners and rules added by hand are never touched."
  - "One call can reconcile several owners of a host (O(owners), O(rules[].owner)): each model server of
    a node keeps its own rules, in one round trip per node instead of one per server."
  - C(community.general.ufw) applies one rule per task and cannot remove a rule that is no longer
    wanted, which is why this module exists (one round trip per host instead of one per rule).
options:
  rules:
    description: The rules this caller wants.
    type: list
    elements: dict
    default: []
    suboptions:
      port:
        description: A port (number or string) or a range such as C(8000:8009).
        type: raw
        required: true
      proto:
        description: Protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      from:
        description: Source networks (CIDR), or C(any).
        type: list
        elements: str
        default: [any]
      comment:
        description: What the rule is for; stored after the owner.
        type: str
        default: ""
      action:
        description: ufw action; C(limit) rate-limits new connections per source.
        type: str
        choices: [allow, limit, deny, reject]
        default: allow
      route:
        description: A routed (forward) rule, as Docker's DOCKER-USER chain consults for container ports.
        type: bool
        default: false
      owner:
        description:
          - The owner of this rule, when it is not O(owner) (its comment names it; O(purge) reconciles it too).
        type: str
      container_port:
        description:
          - The port inside the container that O(rules[].port) is published from. Docker rewrites the
            published port to this one before the packet is forwarded, so with O(also_routed) the routed
            copy of the rule names this port (the same as O(rules[].port) when not given).
        type: int
      also_routed:
        description:
          - This rule's own O(also_routed), when it is not the call's. SSH's rules in the same call as a
            Docker host's service rules are not copied for containers.
        type: bool
  owner:
    description: Who the rules belong to (part of their comment). Owned rules not in O(rules) are deleted when O(purge) is true.
    type: str
    required: true
  owners:
    description:
      - Further owners this call reconciles as it does O(owner) (and each O(rules[].owner)) - their rules not in
        O(rules) are deleted when O(purge) is true, also where O(rules) has none of theirs any more.
    type: list
    elements: str
    default: []
  also_routed:
    description:
      - Add each rule again as a routed rule (comment suffix C((containers))). On a Docker host the
        DOCKER-USER chain consults ufw's routed rules for published container ports.
    type: bool
    default: false
  purge:
    description: Delete owned rules that are not wanted.
    type: bool
    default: true
  default_incoming:
    description: Policy for incoming traffic no rule allows; left as it is when not given.
    type: str
    choices: [deny, reject, allow]
  default_routed:
    description: Policy for routed traffic no rule allows; left as it is when not given.
    type: str
    choices: [deny, reject, allow]
  logging:
    description: Logging level; left as it is when not given.
    type: str
    choices: ["off", "on", low, medium, high, full]
  enabled:
    description: Enable ufw (now and at boot) after the rules are in place; left as it is when not given.
    type: bool
attributes:
  check_mode:
    support: full
    description: Reports the commands it would run without running them.
  diff_mode:
    support: none
    description: Not supported.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: SSH from the operator's networks, then default deny, logging, on
  llmfleet.cluster.ufw_rules:
    owner: ssh
    rules:
      - {port: "22", from: [10.20.0.0/16]}
    default_incoming: deny
    default_routed: deny
    logging: low
    enabled: true

- name: The replicas' ports, to the load balancers only; a replica that went away loses its rule
  llmfleet.cluster.ufw_rules:
    owner: model server llm
    rules:
      - {port: "8000", from: [10.20.1.10, 10.20.1.11], comment: replica 0}
      - {port: "8001", from: [10.20.1.10, 10.20.1.11], comment: replica 1}

- name: Container replicas on a Docker host, published on 8000/8001 from the engine's port 8080
  llmfleet.cluster.ufw_rules:
    owner: model server llm
    also_routed: true
    rules:
      - {port: "8000", container_port: 8080, from: [10.20.1.10], comment: replica 0}
      - {port: "8001", container_port: 8080, from: [10.20.1.10], comment: replica 1}

- name: Two model servers of a node in one call, each keeping its own rules
  llmfleet.cluster.ufw_rules:
    owner: model servers
    owners: [model server llm, model server gemma]
    rules:
      - {port: "8000", from: [10.20.1.10], owner: model server llm}
      - {port: "8100", from: [10.20.1.10], owner: model server gemma}
"""

RETURN = r"""
added:
  description: Rules added (or re-commented), as ufw arguments.
  returned: always
  type: list
  elements: str
deleted:
  description: Owned rules deleted, as ufw arguments.
  returned: always
  type: list
  elements: str
settings:
  description: Policy, logging and enable commands run.
  returned: always
  type: list
  elements: str
unread:
  description: Lines of C(ufw show added) this module could not read (left alone).
  returned: always
  type: list
  elements: str
"""

import shlex

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.cluster.plugins.module_utils import ufw_rules

RULE_OPTIONS = {
    # raw: ports come as numbers from inventories and as ranges ("8000:8009"); checked in rule_problem.
    "port": dict(type="raw", required=True),
    "proto": dict(type="str", choices=["tcp", "udp"], default="tcp"),
    "from": dict(type="list", elements="str", default=["any"]),
    "comment": dict(type="str", default=""),
    "action": dict(type="str", choices=list(ufw_rules.ACTIONS), default="allow"),
    "route": dict(type="bool", default=False),
    "container_port": dict(type="int"),
    "owner": dict(type="str"),
    "also_routed": dict(type="bool"),
}


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except IOError:
        return ""


def main():
    policies = list(ufw_rules.POLICIES)
    module = AnsibleModule(
        argument_spec=dict(
            rules=dict(type="list", elements="dict", default=[], options=RULE_OPTIONS),
            owner=dict(type="str", required=True),
            owners=dict(type="list", elements="str", default=[]),
            also_routed=dict(type="bool", default=False),
            purge=dict(type="bool", default=True),
            default_incoming=dict(type="str", choices=policies),
            default_routed=dict(type="str", choices=policies),
            logging=dict(type="str", choices=list(ufw_rules.LOG_LEVELS)),
            enabled=dict(type="bool"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for index, spec in enumerate(params["rules"]):
        problem = ufw_rules.rule_problem(spec)
        if problem:
            module.fail_json(msg="rules[%d]: %s" % (index, problem))
    for option, names in (("owner", [params["owner"]]), ("owners", params["owners"])):
        for name in names:
            problem = ufw_rules.owner_problem(name)
            if problem:
                module.fail_json(msg="%s: %s" % (option, problem))
    ufw = module.get_bin_path("ufw", required=True)

    def run(args):
        rc, out, err = module.run_command([ufw] + args)
        if rc != 0:
            module.fail_json(msg="ufw %s failed: %s" % (" ".join(args), (err or out).strip()), rc=rc)
        return out

    current, unread = ufw_rules.parse_added(run(["show", "added"]))
    wanted = ufw_rules.wanted(params["rules"], params["owner"].strip(), params["also_routed"])
    owners = ufw_rules.owners_of(params["owner"].strip(), params["rules"], [o.strip() for o in params["owners"]])
    to_delete, to_add = ufw_rules.plan(current, wanted, owners, params["purge"])
    settings = ufw_rules.settings_commands(
        ufw_rules.read_settings(read("/etc/default/ufw"), read("/etc/ufw/ufw.conf")),
        incoming=params["default_incoming"], routed=params["default_routed"], logging=params["logging"])
    if params["enabled"] is not None:
        active = run(["status"]).splitlines()[:1] == ["Status: active"]
        if params["enabled"] and not active:
            settings.append(["--force", "enable"])
        elif params["enabled"] is False and active:
            settings.append(["disable"])

    # Adds before deletes: a rule that moves (a new network for SSH) is open on its new source
    # before the old one closes. Settings last: the default deny lands after the rules that keep
    # the operator in.
    commands = [ufw_rules.add_argv(rule) for rule in to_add] + [ufw_rules.delete_argv(rule) for rule in to_delete]
    if not module.check_mode:
        for args in commands + settings:
            run(args)
    module.exit_json(changed=bool(commands or settings),
                     added=[" ".join(shlex.quote(w) for w in ufw_rules.add_argv(r)) for r in to_add],
                     deleted=[" ".join(shlex.quote(w) for w in ufw_rules.delete_argv(r)) for r in to_delete],
                     settings=[" ".join(args) for args in settings], unread=unread)


if __name__ == "__main__":
    main()
