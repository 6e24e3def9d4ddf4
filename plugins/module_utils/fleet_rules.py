# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Each llmfleet role's own input rules, beyond what its meta/argument_specs.yml can say.

One function per role (ROLE_RULES): it takes the role's variables on one host (already checked
against the argument spec and coerced) and yields "VARIABLE: what is wrong" for each problem.
module_utils/fleet_validation.py runs them for every host and adds what no single host shows.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.llmfleet.cluster.plugins.module_utils import filebeat as filebeat_utils
from ansible_collections.llmfleet.cluster.plugins.module_utils import alertmanager, monitoring, nvidia, os_hardening, serving, validation, virtual_ip
from ansible_collections.llmfleet.cluster.plugins.module_utils.docker_replicas import size_bytes

SIZE_PATTERN = re.compile(r"^[0-9]+[kmg]$")
PACKAGE_VERSION_PATTERN = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.~+]+)?$")
SYSCTL_NAME_PATTERN = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
COLLECTOR_PATTERN = re.compile(r"^[a-z][a-z0-9_.]*$")
DURATION_PATTERN = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
HOST_PORT_PATTERN = re.compile(r"^[^\s:/]+:[0-9]+$")
CLIENT_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A header the load balancers hash for session affinity (HAProxy req.hdr(), an njs variable's value).
HEADER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
API_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{24,}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
# HAProxy server names are HOST-rINDEX; HAProxy accepts letters, digits and - _ . : in names.
HAPROXY_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]+$")
API_KEY_FIELDS = ("client", "key", "rate_limit")
UNSUPPORTED_PATTERN = re.compile(r"^(\S+)\. Supported parameters include: (.*)\.$")
FIREWALL_RULE_KEYS = ("port", "proto", "from", "comment")


def _d(value):
    return validation._describe(value)


def truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(value)


def number(value):
    """Extra vars (-e name=value) arrive as text; argument_specs coerce them, rules compare numbers."""
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return value
    return value


def _url_rules(values, names):
    for name in names:
        value = values.get(name, "")
        if value:
            problem = validation.url_problem(value)
            if problem:
                yield "%s: %s" % (name, problem)


def _list_rules(values, name, check):
    items = values.get(name) or []
    if isinstance(items, str) or not isinstance(items, (list, tuple)):
        yield "%s: %s is not a list" % (name, _d(items))
        return
    for index, item in enumerate(items):
        problem = check(item)
        if problem:
            yield "%s[%d]: %s" % (name, index, problem)


def base_rules(v):
    yield from _url_rules(v, ("base_apt_proxy", "base_apt_https_proxy", "base_apt_mirror_url",
                              "base_apt_security_mirror_url", "base_pip_index_url", "base_pip_find_links"))
    yield from _list_rules(v, "base_ntp_servers", validation.host_problem)
    if truthy(v.get("base_operator_enabled", True)):
        name_problem = validation.unix_name_problem(v.get("base_operator_name"))
        if name_problem:
            yield "base_operator_name: " + name_problem
        if not v.get("base_operator_ssh_public_keys"):
            yield "base_operator_ssh_public_keys: give at least one public key (or set base_operator_enabled: false)"
        yield from _list_rules(v, "base_operator_ssh_public_keys", validation.ssh_public_key_problem)


def sysctl_hardening_rules(v):
    for key in sorted(v.get("sysctl_hardening_extra") or {}):
        if not SYSCTL_NAME_PATTERN.match(str(key)):
            yield "sysctl_hardening_extra: %s is not a kernel parameter name such as net.core.somaxconn" % key


def os_hardening_rules(v):
    problem = os_hardening.umask_problem(v.get("os_hardening_umask"))
    if problem:
        yield "os_hardening_umask: " + problem
    mode = str(v.get("os_hardening_home_mode"))
    if not re.match(r"^0?[0-7]{3}$", mode) or int(mode, 8) & 0o700 != 0o700:
        yield "os_hardening_home_mode: %s is not an octal mode that leaves the owner rwx (such as 0750)" % _d(mode)
    for problem in os_hardening.blocked_modules_problems(v.get("os_hardening_blocked_modules"),
                                                         v.get("os_hardening_allowed_modules")):
        yield "os_hardening_blocked_modules: " + problem
    for name in ("os_hardening_suid_remove", "os_hardening_audit_watch_extra"):
        yield from _list_rules(v, name, lambda path: "" if str(path).startswith("/") and " " not in str(path)
                               else "%s is not an absolute path without spaces" % _d(path))
    low, high = number(v.get("os_hardening_password_min_days")), number(v.get("os_hardening_password_max_days"))
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield ("os_hardening_password_min_days: %d is more than os_hardening_password_max_days %d: a password could "
               "never be changed before it expires" % (low, high))


def _firewall_rule_problem(rule):
    if not isinstance(rule, dict):
        return "%s is not a mapping with port, proto, from" % _d(rule)
    if "port" not in rule:
        return "port: not set"
    problem = validation.port_problem(rule["port"])
    if problem:
        return "port: " + problem
    if rule.get("proto", "tcp") not in ("tcp", "udp"):
        return "proto: %s is not tcp or udp" % rule["proto"]
    sources = rule.get("from", ["any"])
    if isinstance(sources, str):
        return "from: give a list of networks, not a string"
    for source in sources:
        if validation.cidr_problem(source):
            return "from: " + validation.cidr_problem(source)
    unknown = sorted(set(rule) - set(FIREWALL_RULE_KEYS))
    if unknown:
        return "unknown keys %s (%s)" % (", ".join(unknown), ", ".join(FIREWALL_RULE_KEYS))
    return ""


def firewall_rules(v):
    yield from _list_rules(v, "firewall_ssh_allowed_networks", validation.cidr_problem)
    yield from _list_rules(v, "firewall_rules", _firewall_rule_problem)


def ssh_hardening_rules(v):
    port = v.get("ssh_hardening_port")
    if validation.port_problem(port) or ":" in str(port):
        yield "ssh_hardening_port: %s is not a port (1-65535)" % _d(port)
    for name in ("ssh_hardening_allow_users", "ssh_hardening_allow_groups"):
        yield from _list_rules(v, name, validation.unix_name_problem)
    yield from _list_rules(v, "ssh_hardening_listen_addresses", validation.ip_address_problem)


def nvidia_driver_rules(v):
    problem = nvidia.driver_input_problem(v.get("nvidia_driver_source"), v.get("nvidia_driver_branch"),
                                          v.get("nvidia_driver_version", ""), v.get("nvidia_driver_flavor", "proprietary"))
    if problem:
        yield problem
    yield from _url_rules(v, ("nvidia_driver_repository_url", "nvidia_driver_repository_key_url"))
    if v.get("nvidia_driver_source") == "mirror":
        for name in ("nvidia_driver_repository_url", "nvidia_driver_repository_key_url"):
            if not v.get(name):
                yield ("%s: must be set with nvidia_driver_source mirror (the site's mirror of NVIDIA's "
                       "repository and its signing key)" % name)


def nvidia_container_toolkit_rules(v):
    version = str(v.get("nvidia_container_toolkit_version", ""))
    if not PACKAGE_VERSION_PATTERN.match(version):
        yield "nvidia_container_toolkit_version: %s is not a package version such as 1.17.8-1" % _d(version)
    for name in ("nvidia_container_toolkit_repository_url", "nvidia_container_toolkit_repository_key_url"):
        problem = validation.url_problem(v.get(name))
        if problem:
            yield "%s: %s" % (name, problem)


def docker_rules(v):
    yield from _url_rules(v, ("docker_repository_url", "docker_repository_key_url"))
    if not SIZE_PATTERN.match(str(v.get("docker_log_max_size", ""))):
        yield "docker_log_max_size: %s is not a size such as 100m" % v.get("docker_log_max_size")
    root = v.get("docker_data_root", "")
    if root and not str(root).startswith("/"):
        yield "docker_data_root: %s is not an absolute path" % root
    if v.get("docker_default_runtime") == "nvidia" and v.get("docker_nvidia_runtime") == "disabled":
        yield "docker_default_runtime: nvidia, but docker_nvidia_runtime is disabled"
    seen = {}
    for index, entry in enumerate(v.get("docker_registries") or []):
        yield from _registry_entry_problems(index, entry, seen)
    owned = sorted(set(v.get("docker_daemon_options") or {}) & set(v.get("__docker_owned_keys") or ()))
    if owned:
        yield ("docker_daemon_options: sets %s, which the role sets from its own variables (docker_log_max_size, "
               "docker_log_max_file, docker_live_restore, docker_data_root, docker_default_runtime): set those instead"
               % ", ".join(owned))


def _registry_entry_problems(index, entry, seen):
    where = "docker_registries[%d]" % index
    address = str(entry.get("address", ""))
    if not HOST_PORT_PATTERN.match(address):
        yield "%s: address: %s is not HOST:PORT as image names give it" % (where, _d(entry.get("address")))
    elif address in seen:
        yield "%s: address: %s is also docker_registries[%d]" % (where, address, seen[address])
    seen.setdefault(address, index)
    for field in ("username", "password"):
        if not entry.get(field):
            yield "%s (%s): %s: not set (a private registry needs an account; the engine logs in with it)" % (
                where, address, field)
    ca = entry.get("ca_certificate") or ""
    if ca and not str(ca).strip().startswith(PEM_CERTIFICATE):
        yield "%s (%s): ca_certificate: not a PEM certificate (%s...)" % (where, address, PEM_CERTIFICATE)


def registry_rules(v):
    users = v.get("registry_users") or []
    if not users:
        yield "registry_users: empty: the registry serves listed accounts only; list at least one"
    names = {}
    for index, user in enumerate(users):
        name = str(user.get("name", ""))
        if not CLIENT_PATTERN.match(name):
            yield "registry_users[%d]: name: %s needs letters, digits, ._- (up to 64)" % (index, _d(user.get("name")))
        elif name in names:
            yield "registry_users[%d]: name: %s is also registry_users[%d]" % (index, name, names[name])
        names.setdefault(name, index)
        if len(str(user.get("password") or "")) < 12:
            yield "registry_users[%d] (%s): password: 12 or more characters needed" % (index, name)
    yield from _list_rules(v, "registry_allowed_networks", validation.cidr_problem)
    cert, key = v.get("registry_tls_certificate") or "", v.get("registry_tls_private_key") or ""
    if bool(cert) != bool(key):
        yield "registry_tls_certificate: give both the certificate and registry_tls_private_key, or neither"
    elif cert and not cert.strip().startswith(PEM_CERTIFICATE):
        yield "registry_tls_certificate: not a PEM certificate (%s...)" % PEM_CERTIFICATE
    elif not cert and not str(v.get("registry_ca_dir") or "").startswith("/"):
        yield ("registry_ca_dir: %s is not an absolute path on the controller (where the site CA that signs the "
               "registry's certificate is kept), and no registry_tls_certificate is given" % _d(v.get("registry_ca_dir")))


def model_store_rules(v):
    problem = serving.models_problem(v.get("model_store_models"))
    if problem:
        yield "model_store_models" + problem
    yield from _list_rules(v, "model_store_client_networks", validation.cidr_problem)


def model_weights_rules(v):
    problem = serving.models_problem(v.get("model_weights_models"))
    if problem:
        yield "model_weights_models" + problem
    server = v.get("model_weights_nfs_server", "")
    if not server:
        yield "model_weights_nfs_server: not set and no infra host"
    elif validation.host_problem(server):
        yield "model_weights_nfs_server: " + validation.host_problem(server)


def replica_plan(v, errors=None):
    """The host's replicas as model_server plans them; [] (and the reason in errors) when it cannot."""
    try:
        return serving.plan_replicas(v.get("model_server_replica_count"), v.get("model_server_base_port"),
                                     v.get("model_server_gpu_ids") or [], v.get("model_server_gpus_per_replica"),
                                     v.get("model_server_replicas") or [])
    except (ValueError, TypeError) as exc:
        if errors is not None:
            errors.append(str(exc))
        return []


def _model_alias_rules(v):
    aliases = v.get("model_server_model_aliases") or []
    yield from _list_rules(v, "model_server_model_aliases", serving.model_id_problem)
    if not isinstance(aliases, (list, tuple)):
        return
    seen = set([v.get("model_server_model_name")])
    for index, alias in enumerate(aliases):
        if alias in seen:
            yield "model_server_model_aliases[%d]: %s is already this model's name or an earlier alias" % (index, _d(alias))
        seen.add(alias)
    if aliases and v.get("model_server_engine") == "ollama":
        # Ollama answers only the names of its model store: an alias routed to it would get 404.
        yield ("model_server_model_aliases: Ollama answers only the model names in its store; create the alias "
               "there (ollama cp) and serve it as its own model_server_name, or leave the aliases empty")


def model_server_rules(v):
    problem = serving.engine_problem(v.get("model_server_engine"))
    if problem:
        yield "model_server_engine: " + problem
    else:
        errors = []
        replica_plan(v, errors)
        yield from errors
    if not v.get("model_server_model_name"):
        yield 'model_server_model_name: not set (the name clients send as "model")'
    else:
        problem = serving.model_id_problem(v["model_server_model_name"])
        if problem:
            yield "model_server_model_name: " + problem
    yield from _model_alias_rules(v)
    if not str(v.get("model_server_model_path", "")).startswith("/"):
        yield "model_server_model_path: %s is not an absolute path on the node" % v.get("model_server_model_path")
    yield from _list_rules(v, "model_server_allowed_networks", validation.cidr_problem)
    if v.get("model_server_image"):
        problem = validation.image_problem(v["model_server_image"])
        if problem:
            yield "model_server_image: " + problem
    problem = memory_limit_problem(v.get("model_server_memory_limit"), v.get("model_server_runtime"))
    if problem:
        yield "model_server_memory_limit: " + problem


# systemd's MemoryMax= (systemd.resource-control): bytes with K, M, G, T, P or E (upper case only), a
# percentage of the host's memory, or infinity.
SYSTEMD_MEMORY_PATTERN = re.compile(r"^(\d+(\.\d+)?[KMGTPE]?|\d+(\.\d+)?%|infinity)$")


def memory_limit_problem(value, runtime):
    """'' or why a replica's memory limit is not one its runtime reads. systemd ignores a MemoryMax= it
    cannot parse (a warning in the journal) and the replica runs with no limit at all; Docker refuses the
    container (docker_replicas reads the size as the Docker CLI does)."""
    value = "" if value is None else str(value).strip()
    if not value:
        return ""
    if runtime == "systemd":
        if SYSTEMD_MEMORY_PATTERN.match(value):
            return ""
        return "%r is not a size systemd's MemoryMax= reads (such as 8G or 512M: K, M, G, T in upper case; or 50%%)" % value
    try:
        size_bytes(value, "")
    except ValueError:
        return "%r is not a size such as 8g or 512m" % value
    return ""


def _api_key_problem(index, entry):
    where = "load_balancer_api_keys[%d]" % index
    if not isinstance(entry, dict):
        return "%s: give a mapping with client, key and optional rate_limit, models and tokens_per_minute" % where
    if not CLIENT_PATTERN.match(str(entry.get("client", ""))):
        return "%s: client: letters, digits, ._- (up to 64) needed" % where
    where = "%s (%s)" % (where, entry["client"])
    key = entry.get("key")
    if not isinstance(key, str) or not API_KEY_PATTERN.match(key):
        return "%s: key: 24 or more printable characters without spaces needed" % where
    rate = number(1 if entry.get("rate_limit") is None else entry["rate_limit"])
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 1:
        return "%s: rate_limit: a number >= 1 needed" % where
    tokens = number(1 if entry.get("tokens_per_minute") is None else entry["tokens_per_minute"])
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        return "%s: tokens_per_minute: a whole number >= 1 needed (or leave it out: no token budget)" % where
    models = entry.get("models") or []
    if not isinstance(models, list):
        return "%s: models: a list of model names needed" % where
    problems = [serving.model_id_problem(model) for model in models]
    return next(("%s: models: %s" % (where, p) for p in problems if p), "")


def load_balancer_rules(v):
    ports = [("load_balancer_https_port", v.get("load_balancer_https_port")),
             ("load_balancer_stats_port", v.get("load_balancer_stats_port"))]
    if v.get("load_balancer_http_port"):
        ports.append(("load_balancer_http_port", v.get("load_balancer_http_port")))
    for name, port in ports:
        if validation.port_problem(port) or ":" in str(port):
            yield "%s: %s is not a port (1-65535)" % (name, _d(port))
    for name in ("load_balancer_client_networks", "load_balancer_stats_networks"):
        yield from _list_rules(v, name, validation.cidr_problem)
    if not HEADER_NAME_PATTERN.match(str(v.get("load_balancer_affinity_header", ""))):
        yield ("load_balancer_affinity_header: %s is not an HTTP header name (letters, digits and -, up to 64)"
               % _d(v.get("load_balancer_affinity_header")))
    keys = v.get("load_balancer_api_keys") or []
    if not keys:
        yield "load_balancer_api_keys: empty - no client could call the API (every request needs a key)"
    clients, secrets = {}, {}
    for index, entry in enumerate(keys):
        problem = _api_key_problem(index, entry)
        if problem:
            yield problem
            continue
        if entry["client"] in clients:
            yield "load_balancer_api_keys[%d] (%s): client: listed twice (also [%d])" % (index, entry["client"], clients[entry["client"]])
        if entry["key"] in secrets:
            # The key itself is never printed: it is a secret.
            yield ("load_balancer_api_keys[%d] (%s): key: the same key is given to %s: a key names one client"
                   % (index, entry["client"], keys[secrets[entry["key"]]]["client"]))
        clients.setdefault(entry["client"], index)
        secrets.setdefault(entry["key"], index)
    cert, key = v.get("load_balancer_tls_certificate", ""), v.get("load_balancer_tls_private_key", "")
    if bool(cert) != bool(key):
        yield "load_balancer_tls_certificate: load_balancer_tls_certificate and load_balancer_tls_private_key go together"
    elif cert and "BEGIN CERTIFICATE" not in cert:
        yield "load_balancer_tls_certificate: not a PEM certificate"
    elif key and "PRIVATE KEY" not in key:
        yield "load_balancer_tls_private_key: not a PEM private key"


def fault_agent_rules(v):
    interval, stall = number(v.get("fault_agent_interval")), number(v.get("fault_agent_stall_seconds"))
    if isinstance(interval, (int, float)) and isinstance(stall, (int, float)) and stall < 2 * interval:
        yield ("fault_agent_stall_seconds: %g is less than two looks of fault_agent_interval %g: the agent must see a "
               "replica twice without progress to call it a stall" % (stall, interval))
    for xid in v.get("fault_agent_xid_fatal") or []:
        if isinstance(xid, bool) or not isinstance(xid, int) or xid < 1:
            yield "fault_agent_xid_fatal: %s is not an Xid (a whole number from 1)" % _d(xid)
    yield from _list_rules(v, "fault_agent_disk_paths", _absolute_path_problem)


def _listener_rules(v, role):
    """A service's listen address and the networks allowed to reach it (ROLE_listen_address,
    ROLE_allowed_networks)."""
    problem = validation.ip_address_problem(v.get(role + "_listen_address"))
    if problem:
        yield "%s_listen_address: %s" % (role, problem)
    yield from _list_rules(v, role + "_allowed_networks", validation.cidr_problem)


def _absolute_path_problem(value):
    return "" if str(value).startswith("/") else "%s is not an absolute path" % _d(value)


def node_exporter_rules(v):
    yield from _listener_rules(v, "node_exporter")
    for collector in v.get("node_exporter_extra_collectors") or []:
        if not COLLECTOR_PATTERN.match(str(collector)):
            yield "node_exporter_extra_collectors: %s is not a collector name" % _d(collector)


def filebeat_rules(v):
    problem = filebeat_utils.output_problem(v.get("filebeat_output_type"), v.get("filebeat_output_hosts"),
                                            v.get("filebeat_output_settings"))
    if problem:
        yield problem
    if v.get("filebeat_package_url"):
        problem = validation.url_problem(v["filebeat_package_url"])
        if problem:
            yield "filebeat_package_url: " + problem
        if not SHA256_PATTERN.match(str(v.get("filebeat_package_sha256", ""))):
            yield "filebeat_package_sha256: give the package's SHA-256 (64 hex digits) with filebeat_package_url"
    yield from _url_rules(v, ("filebeat_repository_url", "filebeat_repository_key_url"))
    # The host's own inputs are built by the collection (filebeat.host_inputs); the site's extra
    # inputs and the output are what can be wrong: the configuration is built with those.
    if not problem:
        try:
            filebeat_utils.config([], v.get("filebeat_output_type"), v.get("filebeat_output_hosts"),
                                  v.get("filebeat_output_settings"), "validation", "none", v.get("filebeat_extra_inputs") or [])
        except ValueError as exc:
            yield re.sub(r"^filebeat inputs", "filebeat_extra_inputs", str(exc))


def dcgm_exporter_rules(v):
    problem = validation.image_problem(v.get("dcgm_exporter_image"))
    if problem:
        yield "dcgm_exporter_image: " + problem
    yield from _listener_rules(v, "dcgm_exporter")
    counters = v.get("dcgm_exporter_counters")
    if counters and _absolute_path_problem(counters):
        yield "dcgm_exporter_counters: %s (a counters file inside the image)" % _absolute_path_problem(counters)


def alertmanager_rules(v):
    yield from _listener_rules(v, "alertmanager")
    yield from alertmanager.receivers_problems(v.get("alertmanager_receivers"))
    yield from alertmanager.routes_problems(v.get("alertmanager_routes"), v.get("alertmanager_default_receiver"),
                                            v.get("alertmanager_receivers"))
    for name in ("alertmanager_group_wait", "alertmanager_group_interval", "alertmanager_repeat_interval"):
        if not DURATION_PATTERN.match(str(v.get(name, ""))):
            yield "%s: %s is not a duration like 30s, 5m or 4h" % (name, _d(v.get(name)))


def prometheus_rules(v):
    problem = monitoring.thresholds_problem(dict((k, number(x) if k not in ("for", "replica_down_for") else x)
                                                 for k, x in dict(v.get("__prometheus_thresholds") or {}).items()))
    if problem:
        yield "prometheus_alert_" + problem
    yield from _listener_rules(v, "prometheus")
    durations = ("prometheus_scrape_interval", "prometheus_scrape_timeout", "prometheus_evaluation_interval",
                 "prometheus_retention_time")
    for name in durations:
        if not DURATION_PATTERN.match(str(v.get(name, ""))):
            yield "%s: %s is not a duration like 15s, 5m or 15d" % (name, _d(v.get(name)))
    dcgm_port = v.get("prometheus_dcgm_exporter_port")
    if dcgm_port not in (None, 0) and validation.port_problem(dcgm_port):
        yield "prometheus_dcgm_exporter_port: %s is not a port (1-65535), nor 0 to scrape none" % _d(dcgm_port)
    for target in v.get("prometheus_alertmanagers") or []:
        if not HOST_PORT_PATTERN.match(str(target)):
            yield "prometheus_alertmanagers: %s is not host:port" % _d(target)
    try:
        timeout = monitoring.duration_seconds(v.get("prometheus_scrape_timeout"))
        interval = monitoring.duration_seconds(v.get("prometheus_scrape_interval"))
    except ValueError:
        return
    if timeout > interval:
        yield ("prometheus_scrape_timeout: %s is longer than prometheus_scrape_interval %s (Prometheus refuses that "
               "configuration)" % (v.get("prometheus_scrape_timeout"), v.get("prometheus_scrape_interval")))


def rolling_update_rules(v):
    zone = v.get("rolling_update_from_zone")
    if zone and validation.zone_problem(zone):
        yield "rolling_update_from_zone: " + validation.zone_problem(zone)


ROLE_RULES = {
    "base": base_rules,
    "sysctl_hardening": sysctl_hardening_rules,
    "os_hardening": os_hardening_rules,
    "firewall": firewall_rules,
    "ssh_hardening": ssh_hardening_rules,
    "nvidia_driver": nvidia_driver_rules,
    "nvidia_container_toolkit": nvidia_container_toolkit_rules,
    "docker": docker_rules,
    "registry": registry_rules,
    "model_store": model_store_rules,
    "model_weights": model_weights_rules,
    "model_server": model_server_rules,
    "fault_agent": fault_agent_rules,
    "load_balancer": load_balancer_rules,
    "virtual_ip": virtual_ip.host_problems,
    "rolling_update": rolling_update_rules,
    "node_exporter": node_exporter_rules,
    "filebeat": filebeat_rules,
    "alertmanager": alertmanager_rules,
    "dcgm_exporter": dcgm_exporter_rules,
    "prometheus": prometheus_rules,
}
