# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""The fleet's endpoints, worked out once per run on the controller from the validated inventory.

fleet_validate (plugins/action) resolves every host's role variables with the roles' own defaults
and checks them; this module turns what it resolved into what other roles need to know about hosts
they do not configure: each host's address and zone, the roles that run there, and the endpoints of
the services those roles run (node exporter's port; a load balancer's engine, stats port, runtime
socket and access log; the operators' networks the firewall lets in; where the weights are).
playbooks/validate.yml publishes it to every host as `llmfleet_fleet`.

Why: a role that needs another role's endpoint used to restate that role's default (9100, 8404,
"haproxy", the access log path) in its own code; a site that changed the port then got a Prometheus
scraping the old one. Read from here, the value is the one the owning role uses, default included.
Linear in hosts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmfleet.cluster.plugins.module_utils import serving, virtual_ip, zones

# What each service publishes: {role: {key in the plan: the role's variable}}.
ENDPOINTS = {
    "firewall": {"ssh_allowed_networks": "firewall_ssh_allowed_networks"},
    "node_exporter": {"port": "node_exporter_port"},
    "load_balancer": {"engine": "load_balancer_engine", "stats_port": "load_balancer_stats_port",
                      "https_port": "load_balancer_https_port", "local_port": "load_balancer_local_port",
                      "runtime_socket": "load_balancer_runtime_socket", "access_log": "load_balancer_access_log"},
    # Where the weights are (os_hardening's audit rules watch them).
    "model_weights": {"path": "model_weights_path"},
    "model_store": {"path": "model_store_path"},
    # NVIDIA's DCGM exporter on GPU nodes (Prometheus scrapes it; the fault agent reads its Xids).
    "dcgm_exporter": {"port": "dcgm_exporter_port"},
    # Prometheus sends its alerts to every Alertmanager of the fleet.
    "alertmanager": {"port": "alertmanager_port"},
    # The agent HAProxy's agent-check asks about the node's replicas (load_balancer's servers).
    "fault_agent": {"port": "fault_agent_port", "check_interval_ms": "fault_agent_check_interval_ms"},
}
# The zone label of a host without a zone in metrics and logs. Not zones.NO_ZONE (""), the grouping
# key every play sorts by: in Prometheus an empty label value is no label at all, and alerts group by zone.
NO_ZONE_LABEL = "none"


def host_entry(host):
    """One host's entry. host: a resolved host of fleet_validate ("name", "values", "validated")."""
    values, roles = host["values"], host.get("validated") or {}
    zone = str(values.get("llmfleet_zone") or zones.NO_ZONE)
    entry = {"address": serving.host_addresses([host["name"]], {host["name"]: values})[0], "zone": zone,
             "zone_label": zone or NO_ZONE_LABEL, "roles": sorted(roles)}
    for role, keys in ENDPOINTS.items():
        if role in roles:
            entry[role] = dict((key, roles[role].get(variable)) for key, variable in keys.items())
    return entry


def fleet_plan(hosts):
    """{"hosts": {name: entry}} for the resolved hosts (see host_entry). A load balancer with a shared
    front address also has "virtual_ip": its VRRP group's address, router id, its priority and its peers'
    addresses (module_utils/virtual_ip.py); the load balancer role puts the address in its certificate."""
    entries = dict((host["name"], host_entry(host)) for host in hosts)
    peers = virtual_ip.valid_peers(hosts, lambda host: entries[host["name"]]["address"])
    for name, entry in virtual_ip.plan(peers).items():
        entries[name]["virtual_ip"] = entry
    return {"hosts": entries}


def hosts_running(fleet, role):
    """Names of the hosts `role` runs on, zone by zone in the order every play uses, then by name."""
    entries = fleet_hosts(fleet)
    found = [name for name, entry in entries.items() if role in entry.get("roles", ())]
    return zones.in_zone_order(found, dict((name, entries[name]["zone"]) for name in found))


def fleet_hosts(fleet):
    """The plan's hosts; a clear error when the plan is missing (playbooks/validate.yml did not run)."""
    if not isinstance(fleet, dict) or not isinstance(fleet.get("hosts"), dict):
        raise ValueError("llmfleet_fleet is not set: run playbooks/validate.yml earlier in the same run "
                         "(site.yml, playbooks/monitoring.yml and playbooks/rolling_update.yml do)")
    return fleet["hosts"]


def fleet_host(fleet, name):
    """One host's entry of the plan; an error naming the host when the plan does not have it."""
    hosts = fleet_hosts(fleet)
    if name not in hosts:
        raise ValueError("%s is not in llmfleet_fleet: the plan covers the inventory it was made from "
                         "(playbooks/validate.yml, run in the same run)" % name)
    return hosts[name]
