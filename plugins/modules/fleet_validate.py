#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
# Documentation only: the work is done on the controller by plugins/action/fleet_validate.py.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fleet_validate
short_description: Check the whole inventory, or one role's inputs on one host, before anything changes
version_added: 0.2.0
description:
  - Runs on the controller only and connects to no host.
  - Without O(roles) it checks the whole inventory in one pass, run once. For every host, the variables
    of every llmfleet role site.yml runs on it (the role's defaults under the inventory, templated as the
    role would see them) against the role's C(meta/argument_specs.yml) (types, choices, nested options;
    C(no_log) values never shown), the role's own rules (URLs, networks, SSH keys, replica layouts, API
    keys, TLS pair...) and the numeric range of every count, fraction, rate and timeout; then what no
    single host shows (two hosts with one address, inventory names that would break C(/etc/hosts) or a
    load balancer's server names, two services on one port of a host, one API key given to two clients,
    missing groups) and warns about inventory variables with a role's prefix that no role knows, naming
    the closest known one.
  - "Every problem is one line C(HOST: VARIABLE: what is wrong); all are reported at once."
  - Hosts whose variables are equal share one check and each distinct template is evaluated once per
    distinct input, so the time grows linearly with the fleet (C(bench/validate_scale.py)).
  - Without O(roles) it also returns the fleet plan (RV(fleet)), made from the same resolved values, that is
    what other roles need to know of each host (address, zone, the roles that run there, their service
    endpoints). playbooks/validate.yml publishes it to every host as C(llmfleet_fleet).
  - With O(roles) it checks those roles' inputs on the current host with the values the play gives them
    (play variables and role parameters included), as each role's C(tasks/validate.yml) runs it.
options:
  roles:
    description:
      - Check only these roles on the current host (run per host, inside the role).
      - Empty checks the whole inventory (run it with C(run_once)).
    type: list
    elements: str
    default: []
  rolling_update:
    description:
      - The run is a rolling update. A zone layout in which taking some zone out would leave fewer
        replicas than C(rolling_update_min_healthy_replicas) / C(_fraction) require is an error.
        Otherwise it is a warning (site.yml can still deploy it; the update would refuse every zone).
      - The run is also warned when the callback C(llmfleet.cluster.interrupt) is not enabled,
        since a Ctrl-C that ansible-core loses would then let the update run on.
    type: bool
    default: false
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
# In a play on all hosts with gather_facts: false (playbooks/validate.yml):
- name: Check every host's variables and the fleet as a whole
  llmfleet.cluster.fleet_validate:
  run_once: true

# Inside a role: its inputs on this host.
- name: Validate the role's variables
  llmfleet.cluster.fleet_validate:
    roles: [docker]
"""

RETURN = r"""
problems:
  description: Every problem found, one line each (HOST - VARIABLE - what is wrong). The task fails when any.
  returned: always
  type: list
  elements: str
  sample: ["lb1: load_balancer_api_keys[0] (team-a): key: 24 or more printable characters without spaces needed"]
warnings_found:
  description: Unknown role variables (a typo changes nothing) and zone layouts the rolling update would refuse.
  returned: always
  type: list
  elements: str
hosts:
  description: How many hosts were checked.
  returned: always
  type: int
  sample: 9
fleet:
  description:
    - The fleet plan (module_utils/fleet_plan.py) - C(hosts), each host's C(address), C(zone), C(zone_label),
      C(roles) and, where those roles run, C(node_exporter), C(load_balancer) and C(firewall) endpoints.
  returned: without O(roles)
  type: dict
  sample:
    hosts:
      lb1: {address: 10.0.1.5, zone: zone-a, zone_label: zone-a, roles: [base, firewall, load_balancer],
            load_balancer: {engine: haproxy, stats_port: 8404, runtime_socket: /run/haproxy/admin.sock,
                            access_log: /var/log/llmfleet/lb-access.json}, firewall: {ssh_allowed_networks: [any]}}
"""
