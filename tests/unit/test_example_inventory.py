"""The example site inventory passes the validation play, which connects to no host: its
addresses do not exist, so any attempt to reach a host would fail this test."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_example_inventory_is_valid_and_validation_touches_no_host():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/example", "playbooks/validate.yml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    [check, publish] = [list(task["hosts"].values()) for play in report["plays"] for task in play["tasks"]]
    [result] = check
    # Every host of the example (6 model nodes, 2 LBs, 1 infra) checked, no problem, no warning.
    assert (result["hosts"], result["problems"], result["warnings_found"]) == (9, [], [])
    # The fleet plan made from the same values, published as llmfleet_fleet (once: run_once).
    [published] = publish
    assert published["ansible_facts"]["llmfleet_fleet"] == result["fleet"]
    assert len(result["fleet"]["hosts"]) == 9
    for stats in report["stats"].values():
        assert stats["changed"] == 0 and stats["unreachable"] == 0
