# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Action plugin: the whole inventory checked once, on the controller (see the module's docs).

Why an action and not per-host tasks: the checks used to run as include_role + assert on every
host (~2 s of controller time per host, 36 minutes for 600 hosts) and could not see across hosts.
Here each host's variables are resolved once (role defaults under the inventory, as the roles see
them) and the rules run in Python (module_utils/fleet_validation.py): linear in hosts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import os
from collections.abc import Mapping

import jinja2
import jinja2.nodes

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.llmfleet.cluster.plugins.callback.interrupt import CallbackModule as InterruptCallback
from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_plan, fleet_validation

display = Display()

ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")


# Variables that are the same for every host of one run: a template that reads only these (and
# plain values) has one result for the whole fleet.
# (Not inventory_dir: hosts from two inventory sources have two.)
FLEET_WIDE = frozenset(("groups", "hostvars", "lookup", "query", "q", "omit", "playbook_dir"))
MISSING = object()
INTERRUPT_CALLBACK = InterruptCallback.CALLBACK_NAME


def interrupt_warning(callbacks_enabled):
    """A rolling update run without the callback that honours a Ctrl-C ansible-core lost
    (plugins/callback/interrupt.py): said before anything is drained, the run goes on."""
    if INTERRUPT_CALLBACK in (callbacks_enabled or []):
        return None
    return ("callback %s is not enabled: ansible-core can lose a Ctrl-C (Python drops its KeyboardInterrupt when "
            "the signal lands while a worker is forked), and an update interrupted then runs on through every zone. "
            "Add callbacks_enabled = %s to the [defaults] section of ansible.cfg, or set ANSIBLE_CALLBACKS_ENABLED"
            % (INTERRUPT_CALLBACK, INTERRUPT_CALLBACK))


class _Evaluator(object):
    """Templates variables host by host, and evaluates each distinct template once per distinct input.

    Compiling a template is most of Ansible's templating time (~3 ms; ansible-core 2.19 keeps no
    compiled-template cache), and most hosts share their templated defaults and group_vars: a
    result is reused for every host whose referenced variables hold the same values (compared
    through their own templates, recursively; the fleet-wide ones are the same by definition).
    """

    def __init__(self, templar):
        self._templar = templar
        self._parser = jinja2.Environment()
        self._refs = {}
        self._results = {}

    def _template_texts(self, value):
        if isinstance(value, str):
            if "{{" in value or "{%" in value:
                yield value
        elif isinstance(value, Mapping):
            for key, item in value.items():
                yield from self._template_texts(key)
                yield from self._template_texts(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from self._template_texts(item)

    def _names(self, text):
        if text not in self._refs:
            try:
                # Every name the template loads (a loop variable too: a key only gets more specific).
                # Not jinja2.meta.find_undeclared_variables: it compiles, and fails on the
                # collections' filters, which a plain Environment does not know.
                self._refs[text] = frozenset(node.name for node in self._parser.parse(text).find_all(jinja2.nodes.Name))
            except jinja2.TemplateError:
                self._refs[text] = None  # not plain Jinja: evaluated for every host, never shared
        return self._refs[text]

    def _fingerprint(self, env, name, seen):
        if name in FLEET_WIDE:
            return name
        raw = env.get(name, MISSING)
        if raw is MISSING:
            return MISSING
        texts = list(self._template_texts(raw))
        if not texts:
            return repr(raw)
        names = set()
        for text in texts:
            refs = self._names(text)
            if refs is None:
                raise KeyError(name)  # uncacheable
            names |= refs
        return (repr(raw), tuple((ref, self._fingerprint(env, ref, seen | {name}))
                                 for ref in sorted(names - seen)))

    def value(self, env, name):
        """("ok", value) or ("error", first line of the message)."""
        raw = env[name]
        if next(self._template_texts(raw), None) is None:
            return "ok", raw
        try:
            key = (name, self._fingerprint(env, name, frozenset()))
        except KeyError:
            key = None
        if key is not None and key in self._results:
            return self._results[key]
        try:
            outcome = "ok", self._templar.copy_with_new_env(available_variables=env).template(raw)
        except AnsibleError as exc:
            outcome = "error", str(exc).splitlines()[0]
        if key is not None:
            self._results[key] = outcome
        return outcome


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("rolling_update", "roles"))
    _requires_connection = False

    def _role_file(self, role, *parts):
        path = os.path.join(ROLES_DIR, role, *parts)
        if not os.path.exists(path):
            return {}
        # Role files are trusted templates (Ansible 2.19 data tagging never evaluates untrusted text):
        # defaults such as "{{ llmfleet_models | default([]) }}" are then evaluated, not taken as text.
        return self._loader.load_from_file(path, trusted_as_template=True) or {}

    def _load_specs(self, roles):
        specs = {}
        for role in roles:
            spec = self._role_file(role, "meta", "argument_specs.yml")
            specs[role] = dict(spec["argument_specs"]["main"].get("options") or {})
        return specs

    def _load_role_variables(self):
        defaults, role_vars = {}, {}
        for role in fleet_validation.ROLE_NAMES:
            defaults.update(self._role_file(role, "defaults", "main.yml"))
            role_vars.update(self._role_file(role, "vars", "main.yml"))
        return defaults, role_vars

    def _resolve(self, name, env, evaluator, specs, roles_wanted):
        """One host's checks input: its fleet variables and the variables of each role it runs."""
        errors = []

        def value(variable):
            outcome, result = evaluator.value(env, variable)
            if outcome == "error":
                errors.append("%s: cannot be evaluated: %s" % (variable, result))
                return None
            return result

        host_groups = list(env.get("group_names", []))
        fleet_values = dict((v, value(v)) for v in fleet_validation.FLEET_VARS if v in env)
        roles = {}
        for role in roles_wanted or fleet_validation.ROLE_NAMES:
            if not roles_wanted:
                switches = dict(fleet_values)
                if role + "_enabled" in env:
                    switches[role + "_enabled"] = value(role + "_enabled")
                if not fleet_validation.role_applies(role, host_groups, switches):
                    continue
            wanted = list(specs[role]) + list(fleet_validation.DERIVED.get(role, ()))
            roles[role] = dict((v, value(v)) for v in wanted if v in env)
        return {"name": name, "groups": host_groups, "values": fleet_values, "roles": roles, "errors": errors}

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        roles_wanted = list(args.get("roles") or [])
        unknown = sorted(set(roles_wanted) - set(fleet_validation.ROLE_NAMES))
        if unknown:
            return dict(result, failed=True, msg="roles: %s not validated by fleet_validate (%s)"
                        % (", ".join(unknown), ", ".join(fleet_validation.ROLE_NAMES)))
        # Inside a role (its tasks/validate.yml), only that role's spec: this check runs once per host
        # and role in a worker process of its own, and reading every role's files there was most of its
        # cost (~80-130 ms a call: 14 roles per site run, on every host).
        specs = self._load_specs(roles_wanted or fleet_validation.ROLE_NAMES)
        validators = dict((role, ArgumentSpecValidator(options)) for role, options in specs.items())
        evaluator, checked = _Evaluator(self._templar), {}

        if roles_wanted:
            # This host only, with what the play really gives the role (play vars, role parameters and
            # the role's defaults included): task_vars.
            host = self._resolve(task_vars["inventory_hostname"], task_vars, evaluator, specs, roles_wanted)
            problems = fleet_validation.host_problems(host, specs, validators, checked)[0]
            return self._report(result, problems, [], 1)

        defaults, role_vars = self._load_role_variables()
        hostvars, groups = task_vars["hostvars"], task_vars["groups"]
        # Play variables (import_playbook vars: Molecule's llmfleet_validate_serving: false) are not in
        # the inventory's hostvars; they are the same for every host, with task_vars' precedence
        # (extra vars above them).
        play = self._task.get_play()
        play_vars = dict((k, task_vars[k]) for k in (play.get_vars() if play else {}) if k in task_vars)
        problems, resolved, names_by_host = [], [], {}
        for name in groups.get("all", []):
            raw = hostvars.raw_get(name)
            names_by_host[name] = [k for k in raw if not k.startswith("_")]
            # What a role sees on this host: its vars/main.yml, the play's variables, the inventory (and
            # extra vars), then every role's defaults (a default may name another role's variable).
            env = collections.ChainMap(role_vars, play_vars, raw, defaults, {"hostvars": hostvars})
            host = self._resolve(name, env, evaluator, specs, [])
            found, host["validated"] = fleet_validation.host_problems(host, specs, validators, checked)
            problems += found
            resolved.append(host)

        problems += fleet_validation.fleet_problems(resolved, groups)
        warnings = fleet_validation.unknown_variable_warnings(names_by_host, specs)
        capacity = fleet_validation.capacity_problem(resolved)
        if capacity and args.get("rolling_update", False):
            problems.append(capacity)
        elif capacity:
            warnings.append(capacity)
        interrupt = interrupt_warning(C.CALLBACKS_ENABLED) if args.get("rolling_update", False) else None
        if interrupt:
            warnings.append(interrupt)
        # The same resolved values, as what other roles need to know of each host (playbooks/validate.yml
        # publishes it as llmfleet_fleet).
        result["fleet"] = fleet_plan.fleet_plan(resolved)
        return self._report(result, problems, warnings, len(resolved))

    @staticmethod
    def _report(result, problems, warnings, hosts):
        for warning in warnings:
            display.warning(warning)
        result.update(changed=False, hosts=hosts, problems=problems, warnings_found=warnings)
        if problems:
            result["failed"] = True
            result["msg"] = "\n".join(problems)
        else:
            result["msg"] = "%d hosts checked" % hosts
        return result
