"""Each role honours its own ROLE_enabled switch when called directly (not only through the playbooks,
which also check it), refuses bad variables with its own check before touching the host, and the internal
_common role refuses to run on its own. The play's host is a
closed port on loopback, in check mode: a role that did not end would fail to connect, and could not
change this machine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SWITCHED = sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/defaults/main.yml")
                  if f"{p.parent.parent.name}_enabled" in yaml.safe_load(p.read_text()))


def run(tmp_path, tasks):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Roles called directly", "hosts": "nowhere", "gather_facts": False,
                                         "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--check", "-i", "nowhere,", "-e",
                           "ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh", str(playbook)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, json.loads(proc.stdout) if proc.stdout.startswith("{") else None


def test_every_role_with_a_switch_is_a_noop_when_it_is_off(tmp_path):
    assert len(SWITCHED) >= 14, SWITCHED
    tasks = [{"name": f"Call {role}", "ansible.builtin.include_role": {"name": f"llmfleet.cluster.{role}"},
              "vars": {f"{role}_enabled": False}} for role in SWITCHED]
    proc, report = run(tmp_path, tasks)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # Task names as "ROLE : NAME"; meta tasks (end_role) report no host.
    ran = [task["task"]["name"].split(" : ", 1)[-1] for play in report["plays"] for task in play["tasks"]
           if not any(result.get("skipped") for result in task["hosts"].values())]
    # What runs: each include, the role's argument check, and the switch that ends it - nothing else.
    expected = []
    for role in SWITCHED:
        expected += [f"Call {role}", "Validating arguments against arg spec", f"End the role when {role}_enabled is false"]
    assert [name.split(" 'main'")[0] for name in ran] == expected
    assert report["stats"]["nowhere"]["changed"] == 0


def test_the_internal_role_refuses_to_run_on_its_own(tmp_path):
    proc, _report = run(tmp_path, [{"name": "Call _common", "ansible.builtin.include_role": {"name": "llmfleet.cluster._common"}}])
    assert proc.returncode != 0
    assert "llmfleet.cluster._common is internal" in proc.stdout


def test_a_service_opening_its_ports_writes_no_rule_when_the_firewall_is_off(tmp_path):
    # Other roles open their ports through the firewall role's rules.yml and do not read its switch.
    proc, report = run(tmp_path, [{"name": "Open a port", "ansible.builtin.include_role": {
        "name": "llmfleet.cluster.firewall", "tasks_from": "rules.yml"}, "vars": {
        "firewall_enabled": False, "firewall_rules_owner": "test", "firewall_rules": [{"port": 8000, "from": ["10.0.0.0/8"]}]}}])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    ran = [task["task"]["name"].split(" : ", 1)[-1] for play in report["plays"] for task in play["tasks"]
           if not any(result.get("skipped") for result in task["hosts"].values())]
    assert ran == ["Open a port", "End when firewall_enabled is false"], ran


def test_a_role_called_directly_refuses_its_bad_variables_before_touching_the_host(tmp_path):
    # The role's own check (tasks/validate.yml: fleet_validate with roles: [ROLE]) reads the values the
    # play gives the role - here task variables - and only that role's spec; it runs on the controller,
    # so the unreachable host is never tried.
    proc, report = run(tmp_path, [{"name": "Call docker", "ansible.builtin.include_role": {"name": "llmfleet.cluster.docker"},
                                   "vars": {"docker_log_max_size": "big"}}])
    assert proc.returncode != 0
    results = [(task["task"]["name"].split(" : ", 1)[-1], task["hosts"]["nowhere"])
               for play in report["plays"] for task in play["tasks"] if "nowhere" in task["hosts"]]
    failed = [(name, result) for name, result in results if result.get("failed") or result.get("unreachable")]
    assert [name for name, _result in failed] == ["Validate the role's variables"], failed
    assert failed[0][1]["msg"] == "nowhere: docker_log_max_size: big is not a size such as 100m", failed[0][1]["msg"]
