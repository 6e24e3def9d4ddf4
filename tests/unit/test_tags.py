"""--tags narrows site.yml: every role of the site has a tag of its name, each play a tag of its phase
(base, hardening, registry, containers, serving, monitoring); the inventory check and the replica plan
are tagged always (a narrowed run still refuses bad input and knows the fleet). Listed here without any
host; on the lab a narrowed run touches only its role (tests/integration/test_site.py)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_validation

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PHASES = ("base", "hardening", "registry", "containers", "serving", "monitoring")


def listed(*args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventories/example", "site.yml", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def tasks_by_play(text):
    """[(play name, [(task, tags)])] from --list-tasks."""
    plays, play = [], None
    for line in text.splitlines():
        found = re.match(r"\s+play #\d+ \(.*?\): (.*?)\tTAGS: \[(.*)\]$", line)
        if found:
            play = []
            plays.append((found.group(1), play))
        elif play is not None and "\tTAGS: [" in line and line.startswith("      "):
            name, tags = line.strip().rsplit("\tTAGS: [", 1)
            play.append((name, set(filter(None, tags.rstrip("]").split(", ")))))
    return plays


def test_every_role_of_the_site_has_its_tag_and_every_play_its_phase():
    tags = set()
    for found in re.finditer(r"TASK TAGS: \[(.*)\]", listed("--list-tags")):
        tags.update(found.group(1).split(", "))
    assert set(fleet_validation.ROLE_NAMES) - {"rolling_update"} <= tags, sorted(set(fleet_validation.ROLE_NAMES) - tags)
    assert set(PHASES) <= tags


@pytest.mark.parametrize("tag, roles", [
    ("firewall", {"firewall"}),
    ("virtual_ip", {"virtual_ip"}),
    ("monitoring", {"node_exporter", "filebeat", "dcgm_exporter", "alertmanager", "prometheus"}),
])
def test_a_tag_keeps_its_roles_the_inventory_check_and_the_plan(tag, roles):
    plays = tasks_by_play(listed("--list-tasks", "--tags", tag))
    checks = [[name for name, _tags in tasks] for play, tasks in plays if play == "Validate the inventory"]
    plans = [[name for name, _tags in tasks] for play, tasks in plays if play == "Plan the model-server replicas"]
    assert checks and all(c == ["Check every host's variables and the fleet as a whole", "Publish the fleet plan to every host"]
                          for c in checks)
    assert plans and all(p == ["Plan this node's replicas"] for p in plans)
    ran = set()
    for play, tasks in plays:
        for name, tags in tasks:
            role = re.match(r"llmfleet\.cluster\.(\w+) : ", name)
            if role and "Validating arguments against arg spec" not in name:
                ran.add(role.group(1))
                assert tag in tags, (play, name, tags)
    assert ran == roles
