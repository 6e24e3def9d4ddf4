#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: systemd_replicas
short_description: Bring a model server's native replicas (systemd units) to their planned files in one call
version_added: 0.1.0
description:
  - Reconciles the units C(llmfleet-NAME-INDEX.service) of one model server and their environment
    files C(/etc/default/llmfleet-NAME-INDEX) with the files given. Units the list no longer has are
    stopped (within their C(TimeoutStopSec)), disabled and removed with their environment files;
    files whose content or mode differs are written atomically; systemd is reloaded once when a
    unit changed; replicas whose files changed are restarted, those that do not run are started,
    and every planned unit is enabled.
  - All of it in one module call, because a rolling update runs it while the zone is out of the pool
    (C(ansible.builtin.template) per file and C(ansible.builtin.systemd_service) per replica cost a
    round trip each). The contents are rendered on the controller by the filter
    C(llmfleet.cluster.model_server_unit_files).
options:
  name:
    description: The model server's name (C(model_server_name)); units are C(llmfleet-NAME-INDEX.service).
    type: str
    required: true
  replicas:
    description:
      - The planned replicas' files. An empty list retires every native replica of this server.
      - Omitted, the units are left as they are (only I(prune) runs).
    type: list
    elements: dict
    suboptions:
      index:
        description: The replica's index.
        type: int
        required: true
      unit:
        description: The unit file's content.
        type: str
        required: true
      environment:
        description: The environment file's content.
        type: str
        required: true
  group:
    description: The group that may read the environment files (the replicas' account); they are mode 0640.
    type: str
    default: root
  prune:
    description:
      - What earlier releases left, removed after the reconcile. In each I(dir), the entries whose
        name matches I(pattern) (a regular expression, anchored at the start) and that no
        C(llmfleet-*.service) unit on the node names (any server's). The model_server role prunes
        its virtualenvs and launchers this way once a release is recorded.
    type: list
    elements: dict
    default: []
    suboptions:
      dir:
        description: An absolute directory.
        type: path
        required: true
      pattern:
        description: Which entries of I(dir) are candidates.
        type: str
        required: true
  remove_containers:
    description:
      - First stop (each within its own stop timeout) and remove the server's containers
        C(llmfleet-NAME-INDEX), as C(llmfleet.cluster.docker_replicas) with an empty list would. They are
        an earlier runtime's, and they hold the ports the units are planned on.
      - In the same call, because a rolling update runs it while the zone is out of the pool (a task of its
        own cost a round trip there and on every run). A node without the engine's socket has none.
    type: bool
    default: false
  docker_socket:
    description: The Docker engine's unix socket (I(remove_containers)).
    type: path
    default: /var/run/docker.sock
attributes:
  check_mode:
    support: full
    description: Reports what would be retired, written, restarted, started and enabled.
  diff_mode:
    support: none
    description: Not supported.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Run the planned replicas
  llmfleet.cluster.systemd_replicas:
    name: llm
    replicas: "{{ model_server_plan | llmfleet.cluster.model_server_unit_files(release) }}"
    group: llmfleet-model
    # Containers of an earlier runtime hold the ports: removed first, in the same call.
    remove_containers: true

- name: Retire every native replica of the server llm (it moved to containers)
  llmfleet.cluster.systemd_replicas:
    name: llm
    replicas: []

- name: Remove the virtualenvs no unit runs any more
  llmfleet.cluster.systemd_replicas:
    name: llm
    prune:
      - dir: /opt/llmfleet
        pattern: '^llamacpp-llm-[0-9a-f]{12}$'
"""

RETURN = r"""
retired:
  description: Units stopped, disabled and removed (with their environment files).
  returned: always
  type: list
  elements: str
written:
  description: Unit and environment files written.
  returned: always
  type: list
  elements: str
restarted:
  description: Units restarted because their files changed.
  returned: always
  type: list
  elements: str
started:
  description: Units started because they did not run.
  returned: always
  type: list
  elements: str
enabled:
  description: Units enabled.
  returned: always
  type: list
  elements: str
pruned:
  description: Paths removed by I(prune).
  returned: always
  type: list
  elements: str
containers_removed:
  description: Containers stopped and removed first (I(remove_containers)).
  returned: always
  type: list
  elements: str
"""

import grp

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_replicas, replica_units


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            replicas=dict(type="list", elements="dict", options=dict(
                index=dict(type="int", required=True),
                unit=dict(type="str", required=True),
                environment=dict(type="str", required=True))),
            group=dict(type="str", default="root"),
            prune=dict(type="list", elements="dict", default=[], options=dict(
                dir=dict(type="path", required=True),
                pattern=dict(type="str", required=True))),
            remove_containers=dict(type="bool", default=False),
            docker_socket=dict(type="path", default="/var/run/docker.sock"),
        ),
        supports_check_mode=True,
    )
    systemctl = module.get_bin_path("systemctl", required=True)
    try:
        gid = grp.getgrnam(module.params["group"]).gr_gid
    except KeyError:
        module.fail_json(msg="group %s does not exist (the replicas' account is created first)" % module.params["group"])

    def run(args):
        return module.run_command([systemctl] + args)

    for candidate in module.params["prune"]:
        if not candidate["dir"].startswith("/") or candidate["dir"].rstrip("/") == "":
            module.fail_json(msg="prune: dir must be an absolute directory other than /, not %s" % candidate["dir"])
    node = replica_units.Node(run, gid=gid)
    try:
        # First: an earlier runtime's containers hold the ports the units are planned on.
        removed = (docker_replicas.retire(module.params["docker_socket"], module.params["name"], module.check_mode)
                   if module.params["remove_containers"] else [])
    except (docker_replicas.EngineError, ValueError) as exc:
        module.fail_json(msg="%s: %s" % (module.params["name"], exc))
    try:
        result = dict(changed=False, retired=[], written=[], restarted=[], started=[], enabled=[])
        if module.params["replicas"] is not None:
            result = replica_units.reconcile(node, module.params["name"], module.params["replicas"],
                                             check_mode=module.check_mode)
        result["pruned"] = replica_units.prune(node, module.params["prune"], check_mode=module.check_mode)
    except (RuntimeError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    result["containers_removed"] = removed
    result["changed"] = result["changed"] or bool(result["pruned"]) or bool(removed)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
