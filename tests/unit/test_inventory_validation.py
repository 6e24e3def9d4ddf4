"""Bad inventory is refused by site.yml before any host is touched, every problem named with its host
and variable, in one run (the validation pass reports all it finds, not the first).

Controller only: the example inventory's addresses do not exist, so a play that tried to reach a host
would report it unreachable, and the test checks that only the validation play ran, with no host
contacted. The same check ran against the lab before; it needs no lab (issue 16)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----"
SHARED_KEY = "shared-key-of-thirty-two-characters!"

# host -> variables set on it, and the problems they must produce (host: variable: ... reason).
BAD = {
    "gpu-a1": ({"model_server_replicas": [{"port": 8000}, {"port": 8000}], "base_operator_ssh_public_keys": [PRIVATE_KEY]},
               [("model_server_replicas[1]", "port 8000 is already used by replica 0"),
                ("base_operator_ssh_public_keys[0]", "this is a PRIVATE key")]),
    "gpu-a2": ({"llmfleet_address": "10.20.1.300", "docker_log_max_size": "big",
                "model_server_image": "10.20.3.5:5000/Engines/llama.cpp:b1"},
               [("llmfleet_address", "is not an IP address"), ("docker_log_max_size", "big is not a size such as 100m"),
                ("model_server_image", "is not an image reference")]),
    # Issue 15: a digest pin that is no digest; a private registry without its password.
    "gpu-b2": ({"llmfleet_zone": None, "model_server_image": "10.20.3.5:5000/engines/llama.cpp@sha256:1234",
                "docker_registries": [{"address": "10.20.3.5:5000", "username": "fleet", "password": ""}]},
               [("llmfleet_zone", "not set"), ("model_server_image", "is not sha256:<64 hex digits>"),
                ("docker_registries[0] (10.20.3.5:5000)", "password: not set")]),
    "gpu-b1": ({"model_server_gpu_ids": [0], "model_server_gpus_per_replica": 1, "nvidia_driver_source": "mirror"},
               [("model_server_gpu_ids", "2 replicas x 1 GPUs need 2 GPU ids, 1 given"),
                ("nvidia_driver_repository_url", "must be set with nvidia_driver_source mirror")]),
    # Issue 18 (the fault agent): on a port the node exporter has, a stall no two looks can see, a bad Xid.
    "gpu-c1": ({"model_server_engine": "tensorrt", "nvidia_driver_branch": "latest", "fault_agent_port": 9100,
                "fault_agent_stall_seconds": 1, "fault_agent_xid_fatal": [79, 0]},
               [("model_server_engine", "'tensorrt' is not a known engine"), ("nvidia_driver_branch", "is not a driver branch such as 550"),
                ("fault_agent_port", "port 9100 is also node_exporter_port's"),
                ("fault_agent_stall_seconds", "1 is less than two looks of fault_agent_interval 1"),
                ("fault_agent_xid_fatal", "0 is not an Xid")]),
    # Fleet-wide: the same address as gpu-c1, a service on the node exporter's port.
    "gpu-c2": ({"ansible_host": "10.20.3.11", "model_server_base_port": 9100},
               [("ansible_host", "10.20.3.11 is also gpu-c1's address"),
                ("model_server_base_port (replica 0)", "port 9100 is also node_exporter_port's")]),
    # Issue 18 (the virtual IP): a VRRP password longer than VRRP carries; a VIP outside the host's network.
    "lb1": ({"base_apt_proxy": "htp:/10.213.9.1:3142",
             "load_balancer_api_keys": [{"client": "team-a", "key": "secret"}, {"client": "team-b", "key": SHARED_KEY},
                                        {"client": "team-c", "key": SHARED_KEY}],
             "virtual_ip_address": "10.20.1.250/24", "virtual_ip_auth_pass": "longer-than-8"},
            [("virtual_ip_auth_pass", "13 bytes long: VRRP carries 8"),
             ("base_apt_proxy", "scheme must be one of http, https"),
             ("load_balancer_api_keys[0] (team-a)", "24 or more printable characters"),
             ("load_balancer_api_keys[2] (team-c)", "key: the same key is given to team-b")]),
    # Issue 18: an Alertmanager receiver that would deliver nothing, a route to a receiver that does not exist.
    "infra1": ({"rolling_update_min_healthy_fraction": 1.5, "prometheus_port": 22,
                "alertmanager_receivers": [{"name": "oncall"}], "alertmanager_routes": [{"receiver": "pager"}]},
               [("prometheus_port", "port 22 is also ssh_hardening_port's"),
                ("alertmanager_receivers[0] (oncall)", "no target: give at least one of"),
                ("alertmanager_routes[0]", "receiver: pager is not a receiver of alertmanager_receivers (oncall)")]),
    # Issue 19: hardening that would break what the fleet runs.
    "lb2": ({"os_hardening_blocked_modules": ["dccp", "overlay", "br_netfilter"], "os_hardening_umask": "0277",
             "virtual_ip_address": "10.20.1.250/24", "virtual_ip_auth_pass": "fleet-01"},
            [("virtual_ip_address", "10.20.1.250/24 is outside the host's network: its address 10.20.2.5 is not in 10.20.1.0/24"),
             ("os_hardening_blocked_modules", "overlay is needed by the docker role"),
             ("os_hardening_blocked_modules", "br_netfilter is needed by the docker role"),
             ("os_hardening_umask", "takes the owner's own access to new files away")]),
}


def inventory_with(tmp_path, changes):
    target = tmp_path / "inventory"
    shutil.copytree(REPO / "inventories" / "example" / "group_vars", target / "group_vars")
    inv = yaml.safe_load((REPO / "inventories" / "example" / "hosts.yml").read_text())
    for group in inv["all"]["children"].values():
        for host in group["hosts"]:
            # A host listed in a second group without variables there (infra1 in registry) has None.
            host_vars = group["hosts"][host] = group["hosts"][host] or {}
            for name, value in changes.get(host, {}).items():
                if value is None:
                    host_vars.pop(name, None)
                else:
                    host_vars[name] = value
    (target / "hosts.yml").write_text(json.dumps(inv))
    return target


def site(inventory):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{BIN}:{os.environ['PATH']}")
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "site.yml"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def only_validation_ran(report):
    assert [p["play"]["name"] for p in report["plays"]] == ["Validate the inventory"]
    for stats in report["stats"].values():
        assert stats["changed"] == 0 and stats["unreachable"] == 0


def test_every_bad_input_is_named_in_one_run_before_any_host_is_touched(tmp_path):
    proc = site(inventory_with(tmp_path, {host: changes for host, (changes, expected) in BAD.items()}))
    assert proc.returncode != 0
    report = json.loads(proc.stdout)
    only_validation_ran(report)
    [result] = [r for play in report["plays"] for task in play["tasks"] for r in task["hosts"].values()]
    problems = result["problems"]
    for host, (changes, expected) in BAD.items():
        for variable, reason in expected:
            assert any(p.startswith(f"{host}: {variable}: ") and reason in p for p in problems), (host, variable, problems)
    assert not any(p.startswith("infra1: rolling_update_") for p in problems)  # infra runs no update: not its variable
    assert not any(SHARED_KEY in p or "longer-than-8" in p for p in problems)  # the keys and passwords are secrets
    assert "Gathering Facts" not in proc.stdout


def test_a_typo_in_a_role_variable_is_named_with_the_known_one(tmp_path):
    proc = site(inventory_with(tmp_path, {"gpu-a1": {"model_server_replica_cuont": 2}, "lb1": {"load_balancer_api_keys": []}}))
    report = json.loads(proc.stdout)
    only_validation_ran(report)
    assert "model_server_replica_cuont is not a variable of any llmfleet role, so it changes nothing; " \
           "did you mean model_server_replica_count?" in proc.stderr + proc.stdout
    [result] = [r for play in report["plays"] for task in play["tasks"] for r in task["hosts"].values()]
    assert result["problems"] == ["lb1: load_balancer_api_keys: empty - no client could call the API (every request needs a key)"]


def test_a_rolling_update_after_another_validation_in_the_same_run_is_still_checked_as_one(tmp_path):
    """The plan is made once per run, but a rolling update's stricter check (the capacity rule as an
    error) is not skipped because an earlier play of the same run (site.yml's) validated already."""
    inventory = inventory_with(tmp_path, {h: {"llmfleet_zone": "zone-a"} for h in
                                          ("gpu-a1", "gpu-a2", "gpu-b1", "gpu-b2", "gpu-c1", "gpu-c2")})
    playbook = tmp_path / "both.yml"
    playbook.write_text(f"""---
- name: As site.yml does
  ansible.builtin.import_playbook: {REPO / "playbooks" / "validate.yml"}

- name: As rolling_update.yml does
  ansible.builtin.import_playbook: {REPO / "playbooks" / "validate.yml"}
  vars:
    llmfleet_validate_rolling_update: true
""")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "model_nodes: taking zone zone-a (12 of 12 replicas of llm, 6 must stay) out" in proc.stdout


@pytest.mark.parametrize("zones,refused", [(["zone-a"] * 6, True), (["zone-a", "zone-a", "zone-b", "zone-b", "zone-c", "zone-c"], False)])
def test_a_fleet_the_rolling_update_cannot_take_apart_is_refused_for_the_update(tmp_path, zones, refused):
    hosts = ["gpu-a1", "gpu-a2", "gpu-b1", "gpu-b2", "gpu-c1", "gpu-c2"]
    inventory = inventory_with(tmp_path, {h: {"llmfleet_zone": z} for h, z in zip(hosts, zones)})
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/validate.yml",
                           "-e", "llmfleet_validate_rolling_update=true"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert (proc.returncode != 0) == refused, proc.stdout[-2000:]
    assert ("model_nodes: taking zone zone-a (12 of 12 replicas of llm, 6 must stay) out" in proc.stdout) == refused


def test_play_variables_switch_checks_off_as_molecule_scenarios_do(tmp_path):
    """import_playbook vars are play variables, not inventory: the validation must see them."""
    inventory = inventory_with(tmp_path, {"lb1": {"load_balancer_api_keys": []}})
    playbook = tmp_path / "converge.yml"
    playbook.write_text(f"""---
- name: Validate without the serving roles
  ansible.builtin.import_playbook: {REPO / "playbooks" / "validate.yml"}
  vars:
    llmfleet_validate_serving: false
""")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    run = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    proc = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    # Without the switch the same inventory is refused (the test can fail).
    playbook.write_text(playbook.read_text().replace("false", "true"))
    proc = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0 and "lb1: load_balancer_api_keys: empty" in proc.stdout


def test_the_fleet_plan_gives_prometheus_each_roles_own_endpoints_and_no_restated_default(tmp_path):
    """The validation pass publishes llmfleet_fleet (each host's roles and service endpoints as those
    roles resolve them, defaults included); Prometheus' targets are rendered from it, contacting no host."""
    inventory = inventory_with(tmp_path, {"infra1": {"node_exporter_port": 9200},
                                          "lb2": {"load_balancer_stats_port": 9404, "load_balancer_engine": "haproxy"},
                                          "lb1": {"load_balancer_engine": "nginx"},
                                          "gpu-c2": {"node_exporter_enabled": False}})
    playbook = tmp_path / "render.yml"
    playbook.write_text(f"""---
- name: Validate and plan the fleet
  ansible.builtin.import_playbook: {REPO / "playbooks" / "validate.yml"}

- name: Plan the model-server replicas
  ansible.builtin.import_playbook: {REPO / "playbooks" / "serving_plan.yml"}

- name: Render Prometheus' scrape jobs
  hosts: infra
  gather_facts: false
  tasks:
    - name: Check the role's variables, keeping its variables for the next task
      ansible.builtin.include_role:
        name: llmfleet.cluster.prometheus
        tasks_from: validate.yml
        public: true

    - name: Show them
      ansible.builtin.debug:
        msg: "{{{{ __prometheus_config.scrape_configs }}}}"
""")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    for stats in report["stats"].values():
        assert stats["changed"] == 0 and stats["unreachable"] == 0
    [shown] = [r["msg"] for play in report["plays"] for task in play["tasks"] if task["task"]["name"] == "Show them"
               for r in task["hosts"].values()]
    jobs = {job["job_name"]: job for job in shown}
    node = {c["labels"]["instance"]: c["targets"][0] for c in jobs["node"]["static_configs"]}
    # node_exporter's own default where the inventory sets nothing, the inventory's port where it does.
    assert node == {"gpu-a1": "10.20.1.11:9100", "gpu-a2": "10.20.1.12:9100", "gpu-b1": "10.20.2.11:9100",
                    "gpu-b2": "10.20.2.12:9100", "gpu-c1": "10.20.3.11:9100", "lb1": "10.20.1.5:9100",
                    "lb2": "10.20.2.5:9100", "infra1": "10.20.3.5:9200"}
    # One job per engine, each on the load balancer's own stats port: lb1 runs nginx (its exporter).
    assert [c["targets"] for c in jobs["haproxy"]["static_configs"]] == [["10.20.2.5:9404"]]
    assert [c["targets"] for c in jobs["nginx"]["static_configs"]] == [["10.20.1.5:8404"]]
    assert jobs["prometheus"]["static_configs"][0]["labels"] == {"instance": "infra1", "zone": "zone-c"}
    assert {c["labels"]["host"] for c in jobs["model_replicas"]["static_configs"]} == {
        "gpu-a1", "gpu-a2", "gpu-b1", "gpu-b2", "gpu-c1", "gpu-c2"}


@pytest.mark.parametrize("callbacks,warned", [(None, False), ("ansible.posix.profile_roles", True)])
def test_a_rolling_update_without_the_interrupt_callback_is_warned(tmp_path, callbacks, warned):
    """Without llmfleet.cluster.interrupt a Ctrl-C that ansible-core loses lets the update run on
    (tests/unit/plugins/callback/test_interrupt.py): the update's validation says so and goes on; the
    repository's ansible.cfg enables the callback. site.yml's validation does not warn."""
    inventory = inventory_with(tmp_path, {})
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    if callbacks:
        env["ANSIBLE_CALLBACKS_ENABLED"] = callbacks
    for rolling_update in (True, False):
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/validate.yml",
                               "-e", json.dumps({"llmfleet_validate_rolling_update": rolling_update})], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:]
        said = "callback llmfleet.cluster.interrupt is not enabled" in proc.stdout + proc.stderr
        assert said == (warned and rolling_update), (proc.stdout + proc.stderr)[-2000:]
