"""The serving filters a node with several models needs: its servers chosen and given a release, its
replicas gated each with its own model, its replicas listed for the fault agent, DCGM and Filebeat."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.filter import fault_agent, serving as f
from ansible_collections.llmfleet.cluster.plugins.module_utils import serving

NODE = {"model_server_" + option: value for option, value in {
    "name": "llm", "model_name": "smollm2", "model_aliases": [], "model_path": "/srv/models/s/s.gguf",
    "replica_count": 2, "base_port": 8000, "gpu_ids": [], "gpus_per_replica": 0, "replicas": [], "extra_args": [],
    "engine": "llamacpp", "runtime": "systemd", "image": "", "environment": {}, "pip_packages": [],
    "venv": "/opt/llmfleet/llamacpp", "llamacpp_parallel": 2, "llamacpp_ctx_size": 2048, "llamacpp_threads": 1,
    "memory_limit": "", "cpus": 0, "stop_timeout": 0, "restart_sec": 5, "ready_timeout": 600, "ready_prompt": "ready?"}.items()}
GEMMA = {"name": "gemma", "model_name": "gemma3-270m", "model_path": "/srv/models/g/g.gguf", "base_port": 8100,
         "runtime": "docker", "engine": "ollama"}
SERVERS = f.model_server_node_servers(dict(NODE, model_server_servers=[GEMMA]))
PLAN = f.model_server_node_plan(SERVERS, "10.0.3.12")


def test_the_role_runs_the_servers_named_with_the_release_given_for_each():
    assert [s["model_server_name"] for s in f.model_server_select_servers(SERVERS)] == ["llm", "gemma"]
    recorded = {"gemma": {"model_server_llamacpp_ctx_size": 1024, "model_server_image": "ollama/ollama:old"}}
    chosen = f.model_server_select_servers(SERVERS, ["gemma"], recorded)
    assert [(s["model_server_name"], s["model_server_llamacpp_ctx_size"], s["model_server_image"], s["model_server_base_port"])
            for s in chosen] == [("gemma", 1024, "ollama/ollama:old", 8100)]
    assert f.model_server_select_servers(SERVERS, [], recorded)[0]["model_server_llamacpp_ctx_size"] == 2048


def test_the_gate_asks_each_replica_for_its_own_model_on_its_engines_readiness_path():
    assert f.model_server_local_gate(PLAN) == {
        "urls": ["http://127.0.0.1:8000", "http://127.0.0.1:8001", "http://127.0.0.1:8100"],
        "watch": ["systemd:llmfleet-llm-0.service", "systemd:llmfleet-llm-1.service", "docker:llmfleet-gemma-0"],
        "models": ["smollm2", "smollm2", "gemma3-270m"],
        "health_paths": ["/health", "/health", "/api/version"]}
    assert f.model_server_local_gate(PLAN, ["gemma"])["urls"] == ["http://127.0.0.1:8100"]
    # a node's local URLs and watch cover every server
    assert f.model_server_local_urls(PLAN) == f.model_server_local_gate(PLAN)["urls"]


def test_every_replica_of_every_server_for_dcgm_and_filebeat():
    assert [(r["unit"], r["runtime"], r["port"]) for r in f.model_server_plan_replicas(PLAN)] == [
        ("llmfleet-llm-0", "systemd", 8000), ("llmfleet-llm-1", "systemd", 8001), ("llmfleet-gemma-0", "docker", 8100)]
    assert f.model_server_plan_replicas(None) == []


def test_the_fault_agent_answers_for_every_server_under_the_load_balancers_names():
    replicas = fault_agent.FilterModule().filters()["fault_agent_replicas"](PLAN, "model-c2")
    assert [(r["name"], r["watch"], r["metrics_url"]) for r in replicas] == [
        ("model-c2-r0", "systemd:llmfleet-llm-0.service", "http://10.0.3.12:8000/metrics"),
        ("model-c2-r1", "systemd:llmfleet-llm-1.service", "http://10.0.3.12:8001/metrics"),
        # Ollama has no metrics endpoint
        ("model-c2-gemma-r0", "docker:llmfleet-gemma-0", "")]
    names = [m["name"] for m in serving.lb_members(["model-c2"], {"model-c2": {"model_server_plan": PLAN}})]
    assert names == [r["name"] for r in replicas]


def test_the_nodes_containers_share_one_routed_port_per_engine():
    nets = ["10.0.1.5/32"]
    # The Ollama container's port, owned by the node; llm runs natively: none of its own.
    assert [(r["port"], r.get("route"), r.get("owner")) for r in f.model_server_firewall(PLAN, [], nets)["rules"]] == [
        (11434, True, None)]
    servers = f.model_server_node_servers(
        dict(NODE, model_server_runtime="docker", model_server_servers=[dict(GEMMA, engine="llamacpp")]))
    both = f.model_server_node_plan(servers, "10.0.3.12")
    assert [r["port"] for r in f.model_server_firewall(both, [], nets)["rules"]] == [8080]
    assert [r["port"] for r in f.model_server_firewall(both, servers, nets)["rules"]] == [8080, 8000, 8001, 8100]


def test_one_firewall_call_opens_every_named_server_under_its_own_owner():
    nets = ["10.0.1.5/32", "10.0.9.9/32"]
    call = f.model_server_firewall(PLAN, f.model_server_select_servers(SERVERS), nets)
    assert call["owner"] == "model servers"
    assert call["owners"] == ["model server llm", "model server gemma"]
    assert [(r["port"], r.get("route", False), r.get("owner"), r["from"]) for r in call["rules"]] == [
        (11434, True, None, nets), (8000, False, "model server llm", nets), (8001, False, "model server llm", nets),
        (8100, False, "model server gemma", nets)]
    # One server only (a rolling update of one model): the node's routed rules still, the other server's not.
    only = f.model_server_firewall(PLAN, f.model_server_select_servers(SERVERS, ["gemma"]), nets)
    assert only["owners"] == ["model server gemma"] and [r["port"] for r in only["rules"]] == [11434, 8100]
    with pytest.raises(AnsibleFilterError, match="no server nope"):
        f.model_server_firewall(PLAN, [dict(SERVERS[0], model_server_name="nope")], nets)


def test_a_rollback_keeps_the_routed_rule_of_the_runtime_it_goes_back_to():
    # The inventory moved gemma from an Ollama container to a native service, the zone failed, and the
    # rollback runs gemma's recorded release: the container again. Its routed rule stays open although
    # the plan no longer names a container; llm (not rolled back here) counts as the plan has it.
    nets = ["10.0.1.5/32"]
    native = f.model_server_node_servers(dict(NODE, model_server_servers=[dict(GEMMA, runtime="systemd")]))
    plan = f.model_server_node_plan(native, "10.0.3.12")
    assert f.model_server_firewall(plan, f.model_server_select_servers(native), nets)["rules"][0].get("route") is None
    recorded = {"gemma": {"model_server_runtime": "docker", "model_server_engine": "ollama"}}
    back = f.model_server_select_servers(native, ["gemma"], recorded)
    rules = f.model_server_firewall(plan, back, nets)["rules"]
    assert [(r["port"], r.get("route", False)) for r in rules] == [(11434, True), (8100, False)]


def test_retiring_a_server_closes_the_rules_under_the_owner_firewall_yml_gave_them():
    tasks = yaml.safe_load((Path(__file__).resolve().parents[4] / "roles/model_server/tasks/retire_server.yml").read_text())
    owner = next(t["vars"]["firewall_rules_owner"] for t in tasks if "firewall_rules_owner" in t.get("vars", {}))
    assert owner == serving.firewall_owner("{{ __model_server_retired.name }}")
