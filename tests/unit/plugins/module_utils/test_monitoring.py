"""Scrape targets from the inventory, and the alert rules run through the real promtool
(Debian's, unpacked into .tools by scripts/bootstrap): the generated unit tests pass against the
generated rules and fail against rules whose threshold, `for` or selector is wrong."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.llmfleet.cluster.plugins.module_utils import monitoring

REPO = Path(__file__).resolve().parents[4]
CHECKER = REPO / "roles" / "prometheus" / "files" / "promtool-test-rules"
THRESHOLDS = {"replica_down_for": "1m", "for": "5m", "latency_p99_seconds": 0.5, "success_rate_min": 0.99,
              "cpu_percent": 85, "gpu_utilisation_percent": 95}


def _plan(address, engine="llamacpp", replicas=2, gpus=False, model="smollm2"):
    return {"address": address, "name": "llm", "runtime": "systemd", "engine": engine, "model_name": model,
            "health_path": "/health",
            "replicas": [{"index": i, "port": 8000 + i, "gpus": [str(i)] if gpus else []} for i in range(replicas)]}


def _entry(address, zone="", roles=("node_exporter",), **endpoints):
    entry = {"address": address, "zone": zone, "zone_label": zone or "none", "roles": sorted(roles)}
    if "node_exporter" in roles:
        entry["node_exporter"] = {"port": endpoints.pop("node_exporter_port", 9100)}
    if "load_balancer" in roles:
        entry["load_balancer"] = dict({"engine": "haproxy", "stats_port": 8404, "runtime_socket": "/run/haproxy/admin.sock",
                                       "access_log": "/var/log/llmfleet/lb-access.json"}, **endpoints)
    return entry


MODEL = ("node_exporter", "model_server")
LB = ("node_exporter", "load_balancer")
# The fleet plan as fleet_validate makes it (each role's resolved values): ports and engines are taken
# from here as they are, whatever they are.
FLEET = {"hosts": {
    "model-b1": _entry("10.0.2.11", "zone-b", MODEL),
    "model-a1": _entry("10.0.1.11", "zone-a", MODEL),
    "model-a2": _entry("10.0.1.12", "zone-a", MODEL),
    "lb1": _entry("10.0.1.5", "zone-a", LB),
    "lb2": _entry("10.0.2.5", "zone-b", LB, engine="nginx"),
    "lb3": _entry("10.0.3.5", "zone-c", LB, stats_port=9404),
    "infra1": _entry("fd00::5", node_exporter_port=9200),
    "spare": _entry("10.0.9.9", roles=()),
}}
HOSTVARS = {
    "model-b1": {"model_server_plan": _plan("10.0.2.11")},
    "model-a1": {"model_server_plan": _plan("10.0.1.11", engine="vllm", replicas=1, gpus=True, model="qwen")},
    "model-a2": {"model_server_plan": _plan("10.0.1.12", engine="ollama", replicas=1)},
}


def _jobs(fleet=None, dcgm_port=9400):
    return {j["job_name"]: j for j in monitoring.scrape_jobs(fleet or FLEET, HOSTVARS, dcgm_port)}


def test_node_exporter_where_it_runs_in_zone_order_with_zone_labels():
    node = _jobs()["node"]["static_configs"]
    assert [(c["labels"]["instance"], c["labels"]["zone"], c["targets"]) for c in node] == [
        ("lb1", "zone-a", ["10.0.1.5:9100"]),
        ("model-a1", "zone-a", ["10.0.1.11:9100"]),
        ("model-a2", "zone-a", ["10.0.1.12:9100"]),
        ("lb2", "zone-b", ["10.0.2.5:9100"]),
        ("model-b1", "zone-b", ["10.0.2.11:9100"]),
        ("lb3", "zone-c", ["10.0.3.5:9100"]),
        # No zone: labelled "none", last; IPv6 in brackets; its own port. "spare" does not run it.
        ("infra1", "none", ["[fd00::5]:9200"]),
    ]


def test_load_balancers_are_scraped_on_their_own_stats_port_one_job_per_engine():
    haproxy = _jobs()["haproxy"]
    assert haproxy["metrics_path"] == "/metrics"
    assert haproxy["static_configs"] == [{"targets": ["10.0.1.5:8404"], "labels": {"instance": "lb1", "zone": "zone-a"}},
                                         {"targets": ["10.0.3.5:9404"], "labels": {"instance": "lb3", "zone": "zone-c"}}]
    # nginx: Debian's prometheus-nginx-exporter on the same port.
    assert _jobs()["nginx"]["static_configs"] == [{"targets": ["10.0.2.5:8404"], "labels": {"instance": "lb2", "zone": "zone-b"}}]


def test_replicas_carry_the_load_balancers_names_and_ollama_is_left_out():
    replicas = _jobs()[monitoring.REPLICA_JOB]["static_configs"]
    assert replicas == [
        {"targets": ["10.0.1.11:8000"], "labels": {"instance": "model-a1-r0", "host": "model-a1", "zone": "zone-a",
                                                   "replica": "0", "engine": "vllm", "model": "qwen"}},
        {"targets": ["10.0.2.11:8000"], "labels": {"instance": "model-b1-r0", "host": "model-b1", "zone": "zone-b",
                                                   "replica": "0", "engine": "llamacpp", "model": "smollm2"}},
        {"targets": ["10.0.2.11:8001"], "labels": {"instance": "model-b1-r1", "host": "model-b1", "zone": "zone-b",
                                                   "replica": "1", "engine": "llamacpp", "model": "smollm2"}},
    ]


def test_dcgm_only_where_replicas_have_gpus_and_only_when_a_port_is_given():
    assert _jobs()["dcgm"]["static_configs"] == [
        {"targets": ["10.0.1.11:9400"], "labels": {"instance": "model-a1", "zone": "zone-a"}}]
    assert "dcgm" not in _jobs(dcgm_port=0)


def test_roles_that_do_not_run_leave_no_empty_job():
    fleet = {"hosts": {"lb1": _entry("10.0.1.5", "zone-a", ()),
                       "infra1": _entry("10.0.3.5", roles=())}}
    assert _jobs(fleet) == {}


def test_a_model_node_without_a_plan_is_named():
    fleet = {"hosts": dict(FLEET["hosts"], **{"model-c1": _entry("10.0.3.11", "zone-c", MODEL)})}
    with pytest.raises(ValueError, match="no replica plan for model-c1"):
        monitoring.scrape_jobs(fleet, HOSTVARS)


def test_without_the_fleet_plan_it_says_what_to_run():
    with pytest.raises(ValueError, match="llmfleet_fleet is not set: run playbooks/validate.yml"):
        monitoring.scrape_jobs(None, HOSTVARS)


@pytest.mark.parametrize("change,message", [
    ({"for": "5 minutes"}, "for: '5 minutes' is not a duration like 30s, 5m or 1h"),
    ({"replica_down_for": "12s"}, "replica_down_for: 12s must be a whole multiple of 5 s (the rules' unit tests step by it)"),
    ({"success_rate_min": 1.2}, "success_rate_min: 1.2 must be a number above 0 and below 1"),
    ({"cpu_percent": "85"}, "cpu_percent: '85' must be a number above 0 and below 100"),
    ({"latency_p99_seconds": 0}, "latency_p99_seconds: 0 must be a number above 0"),
])
def test_bad_thresholds_are_named(change, message):
    assert monitoring.thresholds_problem(dict(THRESHOLDS, **change)) == message
    with pytest.raises(ValueError, match=re.escape(message)):
        monitoring.alert_rules(dict(THRESHOLDS, **change))


def test_missing_thresholds_are_named():
    assert monitoring.thresholds_problem({"for": "5m"}) == (
        "replica_down_for, latency_p99_seconds, success_rate_min, cpu_percent, gpu_utilisation_percent not set")


def test_rules_carry_the_thresholds():
    rules = {r["alert"]: r for r in monitoring.alert_rules(THRESHOLDS)["groups"][0]["rules"]}
    assert rules["NodeCPUHigh"]["expr"].endswith("> 85") and rules["NodeCPUHigh"]["for"] == "5m"
    assert rules["LLMLatencyP99High"]["expr"].endswith("> 0.5")
    assert rules["LLMInferenceSuccessRateLow"]["expr"].endswith("< 0.99")
    assert rules["LLMReplicaDown"]["for"] == "1m"
    assert set(rules) == {"LLMReplicaDown", "LLMScrapeTargetDown", "LLMLatencyP99High", "LLMInferenceSuccessRateLow",
                          "NodeCPUHigh", "GPUUtilisationHigh"}


# --- through promtool ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool") or REPO / ".tools" / "bin" / "promtool"
    assert Path(path).exists(), "promtool missing: scripts/bootstrap unpacks it into .tools/bin"
    return str(path)


def _check(promtool, tmp_path, rules, thresholds=None):
    """The role's own checker (roles/prometheus/files/promtool-test-rules) on a rules file."""
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump(monitoring.alert_rule_tests(thresholds or THRESHOLDS, "rules-under-test.yml")))
    candidate = tmp_path / "candidate.yml"
    candidate.write_text(rules if isinstance(rules, str) else yaml.safe_dump(rules))
    env = {"PATH": "%s:/usr/bin:/bin" % Path(promtool).parent}
    return subprocess.run(["sh", str(CHECKER), str(tests), str(candidate)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.mark.parametrize("thresholds", [
    THRESHOLDS,
    # The lab's short durations and other thresholds: the tests follow the values.
    dict(THRESHOLDS, replica_down_for="15s", **{"for": "30s"}, latency_p99_seconds=2, success_rate_min=0.95,
         cpu_percent=99.5, gpu_utilisation_percent=1),
], ids=["defaults", "other-thresholds"])
def test_generated_tests_pass_against_the_generated_rules(promtool, tmp_path, thresholds):
    proc = _check(promtool, tmp_path, monitoring.alert_rules(thresholds), thresholds)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize("wrong", [
    ("> 85\n", "> 83\n"), ("> 85\n", "> 87\n"),            # CPU threshold
    ("> 0.5\n", "> 0.53\n"), ("> 0.5\n", "> 0.47\n"),      # P99 latency
    ("< 0.99\n", "< 0.988\n"), ("< 0.99\n", "< 0.992\n"),  # success rate
    ("> 95\n", "> 93\n"), ("> 95\n", "> 97\n"),            # GPU utilisation
    ("for: 5m", "for: 4m"), ("for: 5m", "for: 6m"), ("for: 1m", "for: 55s"),
    ('job!="model_replicas"', 'job=~".+"'),         # replica outages would page twice
    ("(0.99, sum by (le, instance", "(0.9, sum by (le, instance"),
], ids=lambda w: "%s->%s" % w)
def test_the_tests_fail_when_a_rule_is_wrong(promtool, tmp_path, wrong):
    text = yaml.safe_dump(monitoring.alert_rules(THRESHOLDS), width=1000)
    assert wrong[0] in text, wrong[0]
    proc = _check(promtool, tmp_path, text.replace(wrong[0], wrong[1], 1))
    assert proc.returncode != 0, "a wrong rule passed its tests: %s" % (wrong,)
    assert "FAILED" in proc.stdout + proc.stderr


def test_a_rules_file_promtool_rejects_never_reaches_the_tests(promtool, tmp_path):
    proc = _check(promtool, tmp_path, "groups:\n- name: x\n  rules:\n  - alert: Bad\n    expr: up ==\n")
    assert proc.returncode != 0 and "Checking" in proc.stdout
    assert "Unit Testing" not in proc.stdout


def test_the_collections_dcgm_exporter_is_scraped_on_its_own_port():
    fleet = json.loads(json.dumps(FLEET))
    gpu_nodes = [h for h in fleet["hosts"] if h in HOSTVARS and any(r["gpus"] for r in HOSTVARS[h]["model_server_plan"]["replicas"])]
    assert gpu_nodes
    for host in gpu_nodes:
        fleet["hosts"][host]["dcgm_exporter"] = {"port": 9500}
    targets = [c["targets"][0] for c in _jobs(fleet, dcgm_port=0)["dcgm"]["static_configs"]]
    assert targets and all(t.endswith(":9500") for t in targets)


def test_the_dcgm_exporter_container_gets_every_gpu_and_only_sys_admin():
    args = monitoring.dcgm_exporter_container("reg.example:5000/nvidia/dcgm-exporter:4.2.3", 9500, "10.0.0.5")
    assert args["published_ports"] == ["10.0.0.5:9500:9400"]
    assert args["capabilities"] == ["SYS_ADMIN"]
    assert args["device_requests"] == [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]
    assert args["command"] == []
    assert monitoring.dcgm_exporter_container("i", 9400, counters="/etc/dcgm-exporter/dcp-metrics-included.csv")["command"] == \
        ["-f", "/etc/dcgm-exporter/dcp-metrics-included.csv"]


def test_a_nodes_second_model_is_scraped_with_its_own_engine_and_model():
    plan = _plan("10.0.3.12", replicas=1)
    plan["servers"] = [dict(_plan("10.0.3.12", replicas=1), main=True),
                       {"name": "embed", "main": False, "runtime": "systemd", "engine": "vllm", "model_name": "bge-m3",
                        "health_path": "/health", "replicas": [{"index": 0, "port": 8100, "gpus": ["3"]}]}]
    fleet = {"hosts": {"model-c2": _entry("10.0.3.12", "zone-c", MODEL)}}
    jobs = {j["job_name"]: j for j in monitoring.scrape_jobs(fleet, {"model-c2": {"model_server_plan": plan}}, 9400)}
    assert [(c["targets"], c["labels"]["instance"], c["labels"]["engine"], c["labels"]["model"])
            for c in jobs[monitoring.REPLICA_JOB]["static_configs"]] == [
        (["10.0.3.12:8000"], "model-c2-r0", "llamacpp", "smollm2"), (["10.0.3.12:8100"], "model-c2-embed-r0", "vllm", "bge-m3")]
    # the second server's GPU makes the node a DCGM target
    assert jobs["dcgm"]["static_configs"][0]["targets"] == ["10.0.3.12:9400"]
