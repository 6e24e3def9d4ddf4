#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: docker_replicas
short_description: Bring a model server's containerised replicas (or several servers') to their plan in one call
version_added: 0.1.0
description:
  - Reconciles the containers C(llmfleet-NAME-INDEX) of one model server with the containers given.
    Each existing container is compared with its plan as the Docker engine reports it (image, command,
    environment, labels, published ports, volumes, restart policy, stop timeout, health check, GPU
    device requests, IPC mode, shm size, memory and CPU limits); one that differs is recreated, one that
    matches but does not run is started, one the list no longer has is removed.
  - The changed and the retired containers are stopped at once (each within its own stop timeout, the
    engine's drain) and removed; then the new ones are created and started at once. A rolling update
    runs this while the zone is out of the pool, where C(community.docker.docker_container) in a loop
    recreated a node's replicas one after the other.
  - Containers created earlier by C(community.docker.docker_container) with the same arguments are
    kept as they are (the comparison reads the engine, not a label of this module's).
  - With O(servers), several servers of the node in the same call - every server's changed and retired
    containers stopped at once, then every new one started at once. A node serving several models
    restarts them together; one call per server restarted them one after the other, each with its round
    trip, in the zone's window of a rolling update.
  - Talks to the engine's API on its unix socket; needs no Docker SDK for Python on the node.
options:
  name:
    description:
      - The model server's name (C(model_server_name)); containers are C(llmfleet-NAME-INDEX).
      - One of O(name) (with O(containers)) and O(servers) is required.
    type: str
  containers:
    description:
      - The planned containers, as the filter C(llmfleet.cluster.model_server_containers) gives them
        (C(community.docker.docker_container) arguments). An empty list retires every container of the
        server; a node without a Docker engine then has nothing to do (and, in check mode, would have
        every planned container created).
      - Required with O(name).
    type: list
    elements: dict
  servers:
    description:
      - Several servers at once, each as O(name) and O(containers) would give it. A server the list does
        not name is left alone; a name given twice is refused before anything changes.
    type: list
    elements: dict
    suboptions:
      name:
        description: The server's name.
        type: str
        required: true
      containers:
        description: Its planned containers (an empty list retires them all).
        type: list
        elements: dict
        required: true
  docker_socket:
    description: The engine's unix socket.
    type: path
    default: /var/run/docker.sock
  remove_units:
    description:
      - First stop, disable and remove the server's (with O(servers), each server's) native replicas, the units
        C(llmfleet-NAME-INDEX.service) and their environment files (as C(llmfleet.cluster.systemd_replicas)
        with an empty list would). They are an earlier runtime's, and they hold the ports the containers
        are planned on.
      - In the same call, because a rolling update runs it while the zone is out of the pool (a task of its
        own cost a round trip there and on every run). A node without systemd has none.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would be created, recreated (and why), started and removed.
  diff_mode:
    support: none
    description: Not supported.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Run the planned containers
  llmfleet.cluster.docker_replicas:
    name: llm
    containers: >-
      {{ replicas | llmfleet.cluster.model_server_containers('llm', 'llamacpp', 'registry.example.com/engines/llamacpp@sha256:...',
      '/srv/models/smollm2/model.gguf', 'smollm2') }}

- name: Retire every container of the server llm (it moved to native units)
  llmfleet.cluster.docker_replicas:
    name: llm
    containers: []

- name: Run the planned containers, the native replicas of an earlier runtime removed first
  llmfleet.cluster.docker_replicas:
    name: llm
    containers: "{{ planned }}"
    remove_units: true

- name: Run the node's two servers at once
  llmfleet.cluster.docker_replicas:
    servers:
      - name: llm
        containers: "{{ planned_llm }}"
      - name: gemma
        containers: "{{ planned_gemma }}"
    remove_units: true
"""

RETURN = r"""
created:
  description: Containers created and started (none existed).
  returned: always
  type: list
  elements: str
recreated:
  description:
    - Containers stopped, removed, created and started because they differed from their plan.
    - With O(servers), every server's (container names carry their server's).
  returned: always
  type: list
  elements: str
differences:
  description: For each recreated container, what differed (option names of docker_container).
  returned: always
  type: dict
  sample: {"llmfleet-llm-0": ["image", "env"]}
started:
  description: Containers that matched their plan but did not run, started.
  returned: always
  type: list
  elements: str
removed:
  description: Containers the plan no longer has, stopped and removed.
  returned: always
  type: list
  elements: str
unchanged:
  description: Containers that matched their plan and ran.
  returned: always
  type: list
  elements: str
units_retired:
  description: Native replicas' units stopped and removed first (I(remove_units)).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_replicas, replica_units


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            containers=dict(type="list", elements="dict"),
            servers=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                containers=dict(type="list", elements="dict", required=True))),
            docker_socket=dict(type="path", default="/var/run/docker.sock"),
            remove_units=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("name", "servers"), ("containers", "servers")],
        required_one_of=[("name", "servers")],
        required_together=[("name", "containers")],
        supports_check_mode=True,
    )
    p = module.params
    servers = ([(s["name"], s["containers"]) for s in p["servers"]] if p["servers"] is not None
               else [(p["name"], p["containers"])])
    label, path = ", ".join(name for name, _c in servers), p["docker_socket"]
    planned = [c for _name, containers in servers for c in containers]
    empty = dict(changed=False, created=[], recreated=[], started=[], removed=[], unchanged=[], differences={},
                 units_retired=[])
    try:
        # Before anything changes, the native units retired first included.
        docker_replicas.planned_containers(servers)
    except ValueError as exc:
        module.fail_json(msg="%s: %s" % (label, to_native(exc)), **empty)
    engine = os.path.exists(path)
    if not engine and planned and not module.check_mode:
        # Before anything changes: the native replicas keep serving.
        module.fail_json(msg="%s: no Docker engine on the node (no socket %s): the docker role runs first" % (label, path),
                         **empty)
    retired = []
    if p["remove_units"]:
        # First: an earlier runtime's native replicas hold the ports the containers are planned on. A node
        # without systemd has none.
        systemctl = module.get_bin_path("systemctl")
        if systemctl:
            node = replica_units.Node(lambda args: module.run_command([systemctl] + args))
            for name, _containers in servers:
                try:
                    retired += replica_units.reconcile(node, name, [], check_mode=module.check_mode)["retired"]
                except (RuntimeError, OSError) as exc:
                    empty["units_retired"] = retired
                    module.fail_json(msg="%s: %s" % (name, to_native(exc)), **empty)
    empty["units_retired"] = retired
    if not engine:
        # A node that never ran containers (a native one) has none to retire; in check mode, one the
        # docker role has not run on yet would have every replica created.
        empty.update(changed=bool(planned or retired), created=[c.get("name") for c in planned])
        module.exit_json(**empty)
    try:
        result = docker_replicas.reconcile_servers(docker_replicas.Engine(docker_replicas.unix_transport(path)), servers,
                                                   check_mode=module.check_mode)
    except (docker_replicas.EngineError, ValueError) as exc:
        module.fail_json(msg="%s: %s" % (label, to_native(exc)), **empty)
    result.update(units_retired=retired, changed=result["changed"] or bool(retired))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
