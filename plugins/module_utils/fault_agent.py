# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""What the fault agent of a model node watches (roles/fault_agent/files/llmfleet_fault_agent.py).

The agent answers HAProxy's agent-check for each replica of its node; HAProxy names the replica as
every load balancer does (serving.server_name), and the agent finds the replica's unit or container
and metrics the way the model_server role made them (serving.replica_watch, the engine's metrics
path). Worked out here, on the controller, so both sides use the same names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmfleet.cluster.plugins.module_utils import serving


def agent_replicas(plan, host):
    """The agent's replicas from a node's model_server_plan, of every server of the node: [{"name", "watch",
    "metrics_url", "engine", "gpus"}]. host: the node's inventory name."""
    if not isinstance(plan, dict) or "replicas" not in plan:
        raise ValueError("%s: model_server_plan is not set: the fault agent watches the replicas that "
                         "playbooks/serving_plan.yml plans (run it, or serving.yml, in the same run)" % host)
    replicas = []
    for server in serving.plan_servers(plan):
        engine = server["engine"]
        metrics_path = serving.ENGINES[engine]["metrics_path"]
        for replica in server["replicas"]:
            url = "http://%s:%d%s" % (_url_host(plan["address"]), replica["port"], metrics_path) if metrics_path else ""
            replicas.append({
                "name": serving.replica_server_name(host, server, replica["index"]),
                "watch": serving.replica_watch(server["runtime"], server["name"], replica["index"]),
                "metrics_url": url,
                "engine": engine,
                "gpus": [str(g) for g in replica.get("gpus", [])],
            })
    return replicas


def _url_host(address):
    return "[%s]" % address if ":" in str(address) else str(address)
