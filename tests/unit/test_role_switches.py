"""Each role honours its own ROLE_enabled switch when called directly (not only through the playbooks,
which also check it), and the internal _common role refuses to run on its own. On localhost: a
disabled role reaches nothing, so nothing on this machine is touched."""

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
    playbook.write_text(yaml.safe_dump([{"name": "Roles called directly", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", str(playbook)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, json.loads(proc.stdout) if proc.stdout.startswith("{") else None


def test_every_role_with_a_switch_is_a_noop_when_it_is_off(tmp_path):
    assert len(SWITCHED) >= 14, SWITCHED
    tasks = [{"name": f"Call {role}", "ansible.builtin.include_role": {"name": f"llmfleet.cluster.{role}"},
              "vars": {f"{role}_enabled": False}} for role in SWITCHED]
    proc, report = run(tmp_path, tasks)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    ran = [task["task"]["name"] for play in report["plays"] for task in play["tasks"]
           if not task["hosts"]["localhost"].get("skipped")]
    # What runs: each include, the role's argument check, and the switch that ends it - nothing else.
    allowed = ({f"Call {role}" for role in SWITCHED} | {f"End the role when {role}_enabled is false" for role in SWITCHED})
    assert [name for name in ran if name not in allowed and not name.startswith("Validating arguments against")] == []
    assert sum(name.startswith("End the role when") for name in ran) == len(SWITCHED)
    assert report["stats"]["localhost"]["changed"] == 0


def test_the_internal_role_refuses_to_run_on_its_own(tmp_path):
    proc, _report = run(tmp_path, [{"name": "Call _common", "ansible.builtin.include_role": {"name": "llmfleet.cluster._common"}}])
    assert proc.returncode != 0
    assert "llmfleet.cluster._common is internal" in proc.stdout
