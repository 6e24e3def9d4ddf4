# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""The whole inventory checked in one pass on the controller, before any host is touched.

The action plugin llmfleet.cluster.fleet_validate resolves, for every host, the variables of every
role that will run on it (role defaults under the inventory, templated) and hands them here as
plain data. This module then checks:
  - every role input against the role's meta/argument_specs.yml (types, choices, nested options),
  - each role's own rules (URLs, networks, keys, ports, layouts...): module_utils/fleet_rules.py,
  - numeric ranges of every count, fraction, rate and timeout: RANGES,
  - what no per-host check can see: addresses and names shared by two hosts, an API key given to two
    clients, two services on one port of a host, the fleet's shape (groups, zones).
and warns about inventory variables with a role's prefix that no role knows (a typo is otherwise
silently ignored), naming the closest known one.

Every problem is one line "HOST: VARIABLE: what is wrong" (the fleet-wide ones name a group).
Time is linear in hosts: per-host work, then one pass over dictionaries for the cross-host rules.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_rules, serving, validation, virtual_ip
from ansible_collections.llmfleet.cluster.plugins.module_utils import rolling_update as rolling_update_utils

# Which role runs where, as site.yml runs it: (role, group or None for every host, switch that
# turns the whole family of checks off, default of the role's <role>_enabled).
ROLE_SCOPES = (
    ("base", None, None, True),
    ("sysctl_hardening", None, None, True),
    ("os_hardening", None, None, True),
    ("firewall", None, None, True),
    ("ssh_hardening", None, None, True),
    ("nvidia_driver", "model_nodes", None, True),
    ("nvidia_container_toolkit", "model_nodes", None, True),
    ("registry", "registry", None, True),
    ("docker", "model_nodes", None, True),
    ("model_store", "infra", "llmfleet_validate_serving", True),
    ("model_weights", "model_nodes", "llmfleet_validate_serving", True),
    ("model_server", "model_nodes", "llmfleet_validate_serving", True),
    ("fault_agent", "model_nodes", "llmfleet_validate_serving", True),
    ("load_balancer", "load_balancers", "llmfleet_validate_serving", True),
    ("virtual_ip", "load_balancers", "llmfleet_validate_serving", True),
    ("rolling_update", "model_nodes", "llmfleet_validate_serving", True),
    ("node_exporter", None, "llmfleet_validate_monitoring", True),
    ("dcgm_exporter", "model_nodes", "llmfleet_validate_monitoring", True),
    ("filebeat", None, "llmfleet_validate_monitoring", False),
    ("alertmanager", "infra", "llmfleet_validate_monitoring", True),
    ("prometheus", "infra", "llmfleet_validate_monitoring", True),
)
ROLE_NAMES = tuple(scope[0] for scope in ROLE_SCOPES)

# Role variables (vars/main.yml) a rule needs besides the role's options: derived in the role
# itself, so the check evaluates exactly what the role will use.
DERIVED = {
    "docker": ("__docker_owned_keys",),
    "prometheus": ("__prometheus_thresholds",),
}
# Inventory-level variables every host's rules may read.
FLEET_VARS = ("llmfleet_zone", "llmfleet_address", "ansible_host", "llmfleet_validate_serving",
              "llmfleet_validate_monitoring")

# Inclusive bounds of every number a role takes (ports are checked as ports). (low, high, low_open):
# low_open means the value must be above low, not equal to it. tests/unit checks that every int
# and float option of every role is here or is a port.
RANGES = {
    "base_apt_cache_valid_time": (0, None, False),
    "docker_log_max_file": (1, None, False),
    "fault_agent_check_interval_ms": (100, None, False),
    "fault_agent_interval": (0, None, True),
    "fault_agent_probe_timeout": (0, None, True),
    "fault_agent_stall_seconds": (0, None, True),
    "fault_agent_restart_limit": (1, None, False),
    "fault_agent_restart_window": (0, None, True),
    "fault_agent_restart_quiet": (0, None, True),
    "fault_agent_disk_min_free_percent": (0, 99, False),
    "fault_agent_gpu_interval": (0, None, True),
    "load_balancer_rate_limit": (1, None, False),
    "load_balancer_rate_limit_period": (1, None, False),
    "load_balancer_token_budget_default_max_tokens": (1, None, False),
    "load_balancer_replica_maxconn": (1, None, False),
    # HAProxy: a factor of 100 or less would bound nothing (every server at the average or less is full).
    "load_balancer_affinity_balance_factor": (100, None, True),
    # HAProxy refuses a tune.bufsize of 2 GB or more; below 16 kB (its default) a chat request rarely fits.
    "load_balancer_request_buffer_kb": (16, 1048576, False),
    "load_balancer_replica_maxqueue": (0, None, False),
    "load_balancer_queue_timeout": (1, None, False),
    "load_balancer_timeout_server": (1, None, False),
    "load_balancer_timeout_client": (1, None, False),
    "load_balancer_check_interval_ms": (100, None, False),
    "load_balancer_check_fall": (1, None, False),
    "load_balancer_check_rise": (1, None, False),
    "virtual_ip_preempt_delay": (0, 1000, False),
    "virtual_ip_advert_interval": (1, 255, False),
    "virtual_ip_down_adverts": (1, 100, False),
    "virtual_ip_check_interval": (1, None, False),
    "virtual_ip_check_fall": (1, None, False),
    "virtual_ip_check_rise": (1, None, False),
    "virtual_ip_router_id": (0, 255, False),
    "virtual_ip_priority": (0, 254, False),
    "model_server_replica_count": (1, None, False),
    "model_server_gpus_per_replica": (0, None, False),
    "model_server_llamacpp_parallel": (1, None, False),
    "model_server_llamacpp_ctx_size": (1, None, False),
    "model_server_llamacpp_threads": (0, None, False),
    "model_server_cpus": (0, None, False),
    "model_server_stop_timeout": (0, None, False),
    "model_server_restart_sec": (0, None, False),
    "model_server_ready_timeout": (1, None, False),
    "nvidia_driver_reboot_max_hosts": (0, None, False),
    "nvidia_driver_reboot_timeout": (1, None, False),
    "os_hardening_password_max_days": (1, 99999, False),
    "os_hardening_password_min_days": (0, 99999, False),
    "os_hardening_password_warn_days": (0, 99999, False),
    # login.defs' own bounds for SHA_CRYPT_*_ROUNDS (shadow's crypt_make_salt clamps outside them).
    "os_hardening_sha_crypt_rounds": (1000, 999999999, False),
    "prometheus_alert_latency_p99_seconds": (0, None, True),
    "prometheus_alert_success_rate_min": (0, 1, False),
    "prometheus_alert_cpu_percent": (0, 100, True),
    "prometheus_alert_gpu_utilisation_percent": (0, 100, True),
    "rolling_update_min_healthy_replicas": (0, None, False),
    "rolling_update_min_healthy_fraction": (0, 0.99, False),
    "rolling_update_drain_timeout": (0, None, True),
    "rolling_update_up_timeout": (0, None, True),
    "rolling_update_gate_consecutive": (1, None, False),
    "rolling_update_gate_loading_timeout": (0, None, True),
    "rolling_update_gate_timeout": (0, None, True),
    "rolling_update_gate_latency_ratio": (1, None, False),
    "rolling_update_gate_latency_floor": (0, None, False),
    "rolling_update_gate_latency_budget": (0, None, False),
    "rolling_update_soak_seconds": (0, None, False),
    "rolling_update_max_error_rate": (0, 1, False),
    "ssh_hardening_max_auth_tries": (1, None, False),
    "ssh_hardening_max_sessions": (1, None, False),
    "ssh_hardening_client_alive_interval": (0, None, False),
    "ssh_hardening_client_alive_count_max": (0, None, False),
    "ssh_hardening_moduli_min_bits": (2048, None, False),
    "ssh_hardening_rollback_seconds": (30, None, False),
    "sysctl_hardening_ptrace_scope": (0, 3, False),
}


def _d(value):
    return validation._describe(value)


def role_applies(role, groups, values):
    """Whether site.yml runs `role` on a host in `groups`, given the host's resolved `values`."""
    for name, group, switch, enabled_default in ROLE_SCOPES:
        if name != role:
            continue
        if group is not None and group not in groups:
            return False
        if switch and not fleet_rules.truthy(values.get(switch, True)):
            return False
        return fleet_rules.truthy(values.get(role + "_enabled", enabled_default))
    raise KeyError(role)


# ------------------------------------------------------------------ argument specs and ranges

def spec_problems(spec_options, values, validator):
    """Problems of `values` against a role's argument_spec options, checked by `validator` (an
    ArgumentSpecValidator of those options, made once per role: making one deep-copies the spec).

    Returns (problems, validated): problems as "VARIABLE: message" where the message names one,
    validated the coerced values (ints from "8000"...). Values listed as no_log never appear.
    """
    params = dict((name, values[name]) for name in spec_options if name in values)
    result = validator.validate(params)
    problems = []
    no_log = [str(v) for v in getattr(result, "_no_log_values", ()) if str(v)]
    for message in result.error_messages:
        for secret in no_log:
            message = message.replace(secret, "********")
        unsupported = fleet_rules.UNSUPPORTED_PATTERN.match(message)
        if unsupported:
            # ansible-core's wording for an unknown key of a nested option names it only as a path.
            message = "unknown key %s (supported: %s)" % (unsupported.group(1), unsupported.group(2))
        name = _named_option(message, spec_options)
        problems.append("%s: %s" % (name, message) if name else message)
    return problems, result.validated_parameters


def _named_option(message, spec_options):
    for name in sorted(spec_options, key=len, reverse=True):
        if re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(name), message):
            return name
    return ""


def range_problems(values):
    for name, (low, high, low_open) in sorted(RANGES.items()):
        if name not in values:
            continue
        value = fleet_rules.number(values[name])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # argument_specs reports the type
        if (value < low or (low_open and value == low)) or (high is not None and value > high):
            bound = ("above %s" % low if low_open else "at least %s" % low) + ("" if high is None else " and at most %s" % high)
            yield "%s: %s is out of range: must be %s" % (name, value, bound)


# ------------------------------------------------------------------ one host

def fleet_address(name, values):
    """The address other hosts use for this one (/etc/hosts, LB backends, scrape targets)."""
    return values.get("llmfleet_address") or values.get("ansible_host") or name


def zone_rules(name, groups, values):
    if "model_nodes" in groups and values.get("llmfleet_zone") in (None, ""):
        yield "llmfleet_zone: not set: every host in model_nodes needs the zone it stands in"
    elif values.get("llmfleet_zone") not in (None, ""):
        problem = validation.zone_problem(values["llmfleet_zone"])
        if problem:
            yield "llmfleet_zone: " + problem


def host_ports(groups, roles):
    """(port, variable) of every service the collection runs on the host; roles: role -> values."""
    ports = []
    if "ssh_hardening" in roles:
        ports.append((roles["ssh_hardening"].get("ssh_hardening_port"), "ssh_hardening_port"))
    if "node_exporter" in roles:
        ports.append((roles["node_exporter"].get("node_exporter_port"), "node_exporter_port"))
    if "prometheus" in roles:
        ports.append((roles["prometheus"].get("prometheus_port"), "prometheus_port"))
    if "dcgm_exporter" in roles:
        ports.append((roles["dcgm_exporter"].get("dcgm_exporter_port"), "dcgm_exporter_port"))
    if "alertmanager" in roles:
        ports.append((roles["alertmanager"].get("alertmanager_port"), "alertmanager_port"))
    if "registry" in roles:
        ports.append((roles["registry"].get("registry_port"), "registry_port"))
    if "model_store" in roles:
        ports += [(2049, "model_store (NFS)"), (111, "model_store (rpcbind)"),
                  (roles["model_store"].get("model_store_mountd_port"), "model_store_mountd_port")]
    if "load_balancer" in roles:
        lb = roles["load_balancer"]
        ports += [(lb.get("load_balancer_https_port"), "load_balancer_https_port"),
                  (lb.get("load_balancer_stats_port"), "load_balancer_stats_port"),
                  (lb.get("load_balancer_local_port"), "load_balancer_local_port")]
        if lb.get("load_balancer_http_port"):
            ports.append((lb["load_balancer_http_port"], "load_balancer_http_port"))
    if "model_server" in roles:
        servers = node_servers(roles["model_server"])
        try:
            serving.node_plan("", servers)
        except ValueError:
            servers = servers[:1]  # two servers of the node on one port: server_problems says so, once
        for position, server in enumerate(servers):
            entry = "" if position == 0 else "model_server_servers[%d] (%s) " % (position - 1, server["model_server_name"])
            source = entry + ("replicas[%d]" if position else "model_server_replicas[%d]") if server.get(
                "model_server_replicas") else entry + ("base_port" if position else "model_server_base_port") + " (replica %d)"
            ports += [(replica["port"], source % replica["index"]) for replica in fleet_rules.replica_plan(server)]
    if "fault_agent" in roles:
        ports.append((roles["fault_agent"].get("fault_agent_port"), "fault_agent_port"))
    return [(int(port), name) for port, name in ports
            if not isinstance(port, bool) and str(port).isdigit()]


def weights_source_problems(roles):
    """A model server whose weights should come from the model store (its path is under
    model_weights_path) but that no model of the node's model_weights_models puts there: the replicas
    would start on a path nothing fills."""
    if "model_server" not in roles or "model_weights" not in roles:
        return
    base = str(roles["model_weights"].get("model_weights_path") or "").rstrip("/")
    models = roles["model_weights"].get("model_weights_models") or []
    if not base or not isinstance(models, list):
        return
    homes = ["%s/%s" % (base, m.get("name")) for m in models if isinstance(m, dict)]
    for position, server in enumerate(node_servers(roles["model_server"])):
        path = str(server.get("model_server_model_path") or "")
        if not path.startswith(base + "/") or any(path == home or path.startswith(home + "/") for home in homes):
            continue
        variable = "model_server_model_path" if position == 0 else "model_server_servers[%d] (%s): model_path" % (
            position - 1, server["model_server_name"])
        yield ("%s: %s is under model_weights_path, but no model of model_weights_models (%s) is put there: the node "
               "has no source for its weights" % (variable, path, ", ".join(h.rsplit("/", 1)[1] for h in homes) or "none"))


def node_servers(values):
    """The servers of a node's validated model_server values (serving.node_servers); the node's own alone when
    the entries are wrong (server_problems says how)."""
    try:
        return serving.node_servers(values)
    except ValueError:
        return [dict((serving.PREFIX + o, values.get(serving.PREFIX + o)) for o in serving.SERVER_OPTIONS)]


def server_problems(values):
    """Problems of a node's further servers (model_server_servers): each entry's own, checked as the node's are
    (ranges, the role's rules) and named by the entry, then ports or GPUs two servers of the node share."""
    try:
        servers = serving.node_servers(values)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for position, server in enumerate(servers[1:]):
        merged = dict(values, model_server_servers=[])
        merged.update(server)
        found = list(range_problems(server)) + list(fleet_rules.model_server_rules(merged))
        problems += ["model_server_servers[%d] (%s): %s" % (position, server["model_server_name"], p) for p in found]
    if not problems:
        try:
            serving.node_plan("", servers)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def port_collisions(ports):
    seen = {}
    for port, name in ports:
        if port in seen and seen[port] != name:
            yield "%s: port %d is also %s's" % (name, port, seen[port])
        seen.setdefault(port, name)


def role_problems(role, values, spec_options, validator):
    """(problems, validated values) of one role's variables on one host."""
    problems, coerced = spec_problems(spec_options, values, validator)
    merged = dict(values)
    merged.update(coerced or {})
    problems += list(range_problems(merged))
    if not problems:
        problems += list(fleet_rules.ROLE_RULES[role](merged))
    if not problems and role == "model_server":
        problems += server_problems(merged)
    return problems, merged


def host_problems(host, specs, validators, cache=None):
    """Problems of one host. host: {"name", "groups", "values": fleet vars, "roles": {role: values},
    "errors": ["VARIABLE: cannot be evaluated: ..."]}; specs: role -> argument_spec options;
    validators: role -> ArgumentSpecValidator of those; cache: a dict kept across hosts - hosts
    whose role variables are equal (most of a fleet: group_vars) share one check.
    Returns (problems, validated roles)."""
    name, groups = host["name"], host["groups"]
    problems = list(host.get("errors", ()))
    problems += list(zone_rules(name, groups, host["values"]))
    validated = {}
    cache = {} if cache is None else cache
    for role, values in host["roles"].items():
        key = (role, repr(sorted(values.items())))
        if key not in cache:
            cache[key] = role_problems(role, values, specs[role], validators[role])
        found, validated[role] = cache[key]
        problems += found
    problems += list(port_collisions(host_ports(groups, validated)))
    problems += list(weights_source_problems(validated))
    return ["%s: %s" % (name, p) for p in problems], validated


# ------------------------------------------------------------------ the fleet

def fleet_problems(hosts, groups):
    """What no single host shows. hosts: list of {"name", "groups", "values", "validated"}."""
    problems = []
    by_address = {}
    for host in hosts:
        values = host["values"]
        address = fleet_address(host["name"], values)
        variable = "llmfleet_address" if values.get("llmfleet_address") else "ansible_host"
        base = host["validated"].get("base", {})
        if base and fleet_rules.truthy(base.get("base_fleet_hosts_enabled", True)):
            if validation.ip_address_problem(address):
                problems.append("%s: %s: %s (set llmfleet_address to the host's fleet IP address, or "
                                "base_fleet_hosts_enabled: false)" % (host["name"], variable, validation.ip_address_problem(address)))
            if not validation.HOSTNAME_PATTERN.match(host["name"]) or host["name"].endswith("."):
                problems.append("%s: inventory_hostname: %s is not a host name: /etc/hosts and the load balancers' "
                                "server names need letters, digits, '-' and '.'" % (host["name"], _d(host["name"])))
        elif "model_nodes" in host["groups"] and "model_server" in host["validated"]:
            if validation.ip_address_problem(address):
                problems.append("%s: %s: %s (the load balancers need this node's IP address; set llmfleet_address "
                                "where ansible_host is a name)" % (host["name"], variable, validation.ip_address_problem(address)))
            if not fleet_rules.HAPROXY_NAME_PATTERN.match(host["name"]):
                problems.append("%s: inventory_hostname: %s cannot name a load-balancer server (letters, digits, "
                                "- _ . :)" % (host["name"], _d(host["name"])))
        if not validation.ip_address_problem(address):
            if address in by_address:
                problems.append("%s: %s: %s is also %s's address" % (host["name"], variable, address, by_address[address]))
            by_address.setdefault(address, host["name"])
    models = [(h["name"], server.get("model_server_name") or serving.DEFAULT_BACKEND, server.get("model_server_model_name"),
               tuple(server.get("model_server_model_aliases") or ())) for h in hosts
              for ms in [h["validated"].get("model_server")] if ms for server in node_servers(ms)]
    problems += virtual_ip.fleet_problems(
        vip_peers(hosts), dict((h["name"], h["validated"].get("load_balancer", {}).get("load_balancer_engine")) for h in hosts),
        dict((fleet_address(h["name"], h["values"]), h["name"]) for h in reversed(hosts)))
    problems += serving.model_conflicts(models)
    problems += key_scope_problems(hosts, models)
    problems += shape_problems(hosts, groups)
    return problems


def vip_peers(hosts):
    """(name, fleet address, virtual_ip values) of the load balancers with a valid VIP of their own."""
    return virtual_ip.valid_peers(hosts, lambda h: fleet_address(h["name"], h["values"]))


def key_scope_problems(hosts, models):
    """API keys limited to a model the fleet does not serve, and a rolling update of a model it does not
    serve (models: model_conflicts' entries)."""
    backends = [{"name": backend, "ids": [model] + list(aliases)} for _host, backend, model, aliases in models]
    problems = []
    wanted_seen = set()
    for host in hosts if models else ():
        lb = host["validated"].get("load_balancer")
        if lb:
            try:
                serving.key_scopes([k for k in lb.get("load_balancer_api_keys") or [] if isinstance(k, dict)], backends)
            except ValueError as exc:
                problems.append("%s: %s" % (host["name"], exc))
        wanted = (host["validated"].get("rolling_update") or {}).get("rolling_update_models")
        # Usually given once for the run (-e): said once, for the first host, not for every node.
        if wanted and isinstance(wanted, list) and repr(wanted) not in wanted_seen:
            wanted_seen.add(repr(wanted))
            try:
                serving.model_backends(backends, wanted, "rolling_update_models", by_backend_name=True, listing="models")
            except ValueError as exc:
                problems.append("%s: %s" % (host["name"], exc))
    return problems


def shape_problems(hosts, groups):
    """The groups the roles need, and a zone layout the rolling update can take apart."""
    serving_hosts = [h for h in hosts if "model_server" in h["validated"]]
    problems = []
    if any("load_balancer" in h["validated"] for h in hosts) and not serving_hosts:
        problems.append("model_nodes: no model node runs model_server: the load balancers would have no backend")
    if serving_hosts and not groups.get("load_balancers"):
        problems.append("load_balancers: the group is empty or missing: no client could reach the model nodes")
    if any("model_weights" in h["validated"] for h in hosts) and not groups.get("infra"):
        problems.append("infra: the group is empty or missing: model_weights needs the model store (NFS) on an infra host")
    return problems


def capacity_problem(hosts):
    """'' when every zone of model nodes can be taken out under the rolling update's capacity rule."""
    replicas = {}  # {model (backend): {zone: replicas}}
    settings = None
    for host in hosts:
        ms = host["validated"].get("model_server")
        if not ms:
            continue
        settings = settings or host["validated"].get("rolling_update", {})
        zone = host["values"].get("llmfleet_zone") or ""
        for server in node_servers(ms):
            by_zone = replicas.setdefault(server.get("model_server_name") or serving.DEFAULT_BACKEND, {})
            by_zone[zone] = by_zone.get(zone, 0) + len(fleet_rules.replica_plan(server))
    if not replicas or settings is None:
        return ""
    try:
        too_big = rolling_update_utils.capacity_shortfalls(
            replicas, int(fleet_rules.number(settings.get("rolling_update_min_healthy_replicas", 1))),
            float(fleet_rules.number(settings.get("rolling_update_min_healthy_fraction", 0.5))))
    except (ValueError, TypeError):
        return ""  # reported as the variable's own problem
    if not too_big:
        return ""
    return ("model_nodes: taking zone %s out would leave a model with fewer replicas in service than "
            "rolling_update_min_healthy_replicas / _fraction require: the rolling update would refuse those zones; "
            "serve each model in more zones, add zones or lower the minimum" % "; ".join(too_big))


# ------------------------------------------------------------------ unknown variables

def known_prefixes(specs):
    """Role prefix -> set of its option names, longest prefix first (nvidia_container_toolkit_ before nvidia_)."""
    prefixes = dict((role + "_", set(options)) for role, options in specs.items())
    return sorted(prefixes.items(), key=lambda item: -len(item[0]))


def unknown_variable_warnings(names_by_host, specs):
    """Warnings for inventory variables with a role's prefix that the role does not know.
    names_by_host: host -> names set in the inventory. One warning per name (with its hosts)."""
    prefixes = known_prefixes(specs)
    every_option = sorted(set(o for options in specs.values() for o in options))
    hosts_by_name = {}
    for host, names in names_by_host.items():
        for name in names:
            for prefix, options in prefixes:
                if name.startswith(prefix):
                    if name not in options:
                        hosts_by_name.setdefault(name, []).append(host)
                    break
    warnings = []
    for name in sorted(hosts_by_name):
        hosts = hosts_by_name[name]
        close = difflib.get_close_matches(name, every_option, n=1, cutoff=0.75)
        shown = ", ".join(hosts[:3]) + (" and %d more" % (len(hosts) - 3) if len(hosts) > 3 else "")
        warnings.append("%s: %s is not a variable of any llmfleet role, so it changes nothing%s"
                        % (shown, name, ("; did you mean %s?" % close[0]) if close else ""))
    return warnings
