# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Model-server replica plans and load-balancer members (logic in module_utils/serving.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Each filter's documentation is in the YAML file of its name beside this one (ansible-doc reads a
# Python file's DOCUMENTATION for every filter of the file, so one block could document only one).

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.cluster.plugins.module_utils import replica_units, serving, verified_files


def model_server_replicas(count, base_port, gpu_ids=None, gpus_per_replica=0, explicit=None):
    try:
        return serving.plan_replicas(count, base_port, gpu_ids or [], gpus_per_replica, explicit or [])
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def model_server_problem(count, base_port, gpu_ids=None, gpus_per_replica=0, explicit=None, engine="vllm"):
    problem = serving.engine_problem(engine)
    if problem:
        return "model_server_engine: " + problem
    try:
        serving.plan_replicas(count, base_port, gpu_ids or [], gpus_per_replica, explicit or [])
    except ValueError as exc:
        return str(exc)
    return ""


def llmfleet_lb_members(model_hosts, hostvars):
    try:
        return serving.lb_members(list(model_hosts), hostvars)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def llmfleet_lb_backends(members):
    try:
        return serving.lb_backends(list(members))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def llmfleet_key_scopes(api_keys, backends):
    try:
        return serving.key_scopes(list(api_keys or []), list(backends))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def llmfleet_models_document(backends):
    return serving.models_document(list(backends))


def llmfleet_model_files(models, root, source_suffix="", mode=None):
    return verified_files.model_files(list(models), root, source_suffix, mode)


def model_server_command(engine, model_path, model_name, port, gpus=None, extra_args=None, runtime="systemd",
                         python="python3", host="0.0.0.0", llamacpp=None):
    return serving.engine_command(engine, model_path, model_name, port, host=host, gpus=gpus or [],
                                  extra_args=extra_args or [], runtime=runtime, python=python, llamacpp=llamacpp)


def model_server_environment(engine, port, model_path, gpus=None, runtime="systemd", extra=None):
    return serving.engine_environment(engine, port, model_path, gpus or [], runtime, extra or {})


def model_server_engine(engine):
    if serving.engine_problem(engine):
        raise AnsibleFilterError("model_server_engine: " + serving.engine_problem(engine))
    return dict(serving.ENGINES[engine])


def model_server_containers(replicas, server, engine, image, model_path, model_name, **kwargs):
    """A server's replicas as containers (docker_container arguments, which the docker_replicas module
    takes), each named llmfleet-SERVER-INDEX."""
    return [serving.docker_container(engine, image, serving.replica_unit(server, replica["index"]), replica,
                                     model_path, model_name, **kwargs) for replica in replicas]


def llmfleet_host_addresses(hosts, hostvars):
    return serving.host_addresses(list(hosts), hostvars)


def llmfleet_host_networks(hosts, hostvars):
    return serving.host_networks(list(hosts), hostvars)


def llmfleet_models_problem(models):
    return serving.models_problem(models)


def model_server_local_urls(plan):
    """A node's replicas (every server's; or one server's plan) as URLs on the node itself (health gates
    run there, past the firewall)."""
    return ["http://127.0.0.1:%d" % int(replica["port"])
            for server in serving.plan_servers(plan) for replica in server["replicas"]]


def model_server_local_watch(plan):
    """A node's replicas' processes for health_gate's watch, in the order of model_server_local_urls:
    systemd:UNIT for native replicas, docker:CONTAINER for containers (the same names the role gives them)."""
    return [serving.replica_watch(server["runtime"], server["name"], replica["index"])
            for server in serving.plan_servers(plan) for replica in server["replicas"]]


def model_server_local_gate(plan, names=None):
    """What health_gate needs to gate the replicas of the servers named (model_server_names; empty or
    None: every server of the node) at once: {"urls", "watch", "models", "health_paths"}, one per replica
    in the same order (each replica is asked for its own server's model)."""
    chosen = [s for s in serving.plan_servers(plan) if not names or s["name"] in names]
    return {
        "urls": model_server_local_urls({"servers": chosen}),
        "watch": model_server_local_watch({"servers": chosen}),
        "models": [s["model_name"] for s in chosen for _replica in s["replicas"]],
        "health_paths": [s["health_path"] for s in chosen for _replica in s["replicas"]],
    }


def model_server_node_servers(values):
    """Every server of a node ([{model_server_<option>: value}], its own first; module_utils/serving.node_servers)."""
    try:
        return serving.node_servers(dict(values))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def model_server_node_plan(servers, address):
    """A node's model_server_plan from its servers (module_utils/serving.node_plan)."""
    try:
        return serving.node_plan(address, list(servers))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def model_server_plan_replicas(plan):
    """Every replica of a node's plan, of all its servers: [{"index", "port", "gpus", "server", "runtime",
    "unit"}] (unit: llmfleet-SERVER-INDEX, the unit's or container's name)."""
    return [dict(replica, server=server["name"], runtime=server["runtime"],
                 unit=serving.replica_unit(server["name"], replica["index"]))
            for server in serving.plan_servers(plan or {"servers": []}) for replica in server["replicas"]]


def model_server_firewall(plan, selected, networks):
    """One firewall call's owner, owners and rules for a node's model servers: module_utils/serving.firewall_rules."""
    try:
        return serving.firewall_rules(plan, list(selected), list(networks))
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError("model_server_firewall: %s" % (exc,))


def model_server_retired_servers(found, servers):
    """The servers a node has replicas or a record of but no longer serves ([{name, containers}]):
    module_utils/serving.retired_servers. servers: the node's servers (model_server_node_servers)."""
    return serving.retired_servers(list(found), [s["model_server_name"] for s in servers])


def model_server_select_servers(servers, names=None, releases=None):
    """The servers (model_server_node_servers) the role runs now: those named (empty: all), each with the
    release given for it in releases ({name: {model_server_<option>: value}}, a rollback's recorded one)."""
    releases = releases or {}
    return [dict(s, **releases.get(s["model_server_name"], {})) for s in servers
            if not names or s["model_server_name"] in names]


def model_server_unit_files(plan, release):
    """A node's native replicas' files ([{index, unit, environment}]) from its plan and the release (see
    module_utils/replica_units.render), rendered on the controller for one systemd_replicas call."""
    try:
        return replica_units.render(plan, release)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("model_server_unit_files: %s" % exc)


def model_server_pinned_image(reference, repo_digests):
    try:
        return serving.pinned_image(reference, repo_digests)
    except ValueError as exc:
        raise AnsibleFilterError("model_server_image: " + str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "model_server_replicas": model_server_replicas,
            "model_server_problem": model_server_problem,
            "llmfleet_lb_members": llmfleet_lb_members,
            "llmfleet_lb_backends": llmfleet_lb_backends,
            "llmfleet_models_document": llmfleet_models_document,
            "llmfleet_model_files": llmfleet_model_files,
            "llmfleet_key_scopes": llmfleet_key_scopes,
            "model_server_command": model_server_command,
            "model_server_environment": model_server_environment,
            "model_server_containers": model_server_containers,
            "model_server_engine": model_server_engine,
            "llmfleet_host_addresses": llmfleet_host_addresses,
            "llmfleet_host_networks": llmfleet_host_networks,
            "llmfleet_models_problem": llmfleet_models_problem,
            "model_server_local_urls": model_server_local_urls,
            "model_server_local_watch": model_server_local_watch,
            "model_server_local_gate": model_server_local_gate,
            "model_server_node_servers": model_server_node_servers,
            "model_server_node_plan": model_server_node_plan,
            "model_server_select_servers": model_server_select_servers,
            "model_server_plan_replicas": model_server_plan_replicas,
            "model_server_retired_servers": model_server_retired_servers,
            "model_server_firewall": model_server_firewall,
            "model_server_pinned_image": model_server_pinned_image,
            "model_server_unit_files": model_server_unit_files,
        }
