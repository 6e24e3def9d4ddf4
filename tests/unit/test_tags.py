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
import yaml

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_validation

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PHASES = ("base", "hardening", "registry", "containers", "serving", "monitoring")
STEPS = {"install", "configure", "verify"}
# Role tasks tagged always: the switch, and Ansible's own argument check. A role's input check (its
# validate.yml) carries every phase instead: a run narrowed to other roles skips it, and site.yml's
# validation play (tagged always) checks every role's input anyway.
ALWAYS = re.compile(r"(End the role when|Validating arguments against arg spec)")


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
            if role and "always" in tags:
                assert ALWAYS.search(name), (play, name, tags)
            elif role:
                ran.add(role.group(1))
                assert tag in tags, (play, name, tags)
    assert ran == roles


def role_tasks(plays):
    return [(play, name, tags) for play, tasks in plays for name, tags in tasks
            if re.match(r"llmfleet\.cluster\.\w+ : ", name)]


def test_every_role_task_belongs_to_a_phase():
    """Untagged, a task would run only in a whole run: --tags configure would skip it unseen."""
    tasks = role_tasks(tasks_by_play(listed("--list-tasks")))
    assert len(tasks) > 100
    for play, name, tags in tasks:
        assert tags & STEPS or ("always" in tags and ALWAYS.search(name)), (play, name, tags)


@pytest.mark.parametrize("step, present, absent", [
    ("verify", ["node_exporter : Check that node exporter serves metrics", "docker : Verify the engine",
                "load_balancer : Check that the load balancer answers on its health port",
                "ssh_hardening : Check the settings that keep passwords and root out"],
     ["node_exporter : Install node exporter", "node_exporter : Configure node exporter",
      "load_balancer : Install the load balancer", "ssh_hardening : Write sshd_config"]),
    ("install", ["node_exporter : Install node exporter", "load_balancer : Install the load balancer",
                 "model_store : Install nfs-ganesha"],
     ["node_exporter : Configure node exporter", "node_exporter : Check that node exporter serves metrics"]),
    ("configure", ["node_exporter : Configure node exporter",
                   "firewall : Allow SSH, open the site's ports, set the policies and logging, enable ufw (and at boot)",
                   "ssh_hardening : Write sshd_config (checked by sshd -T before it lands)"],
     ["node_exporter : Install node exporter", "node_exporter : Check that node exporter serves metrics"]),
])
def test_a_phase_tag_keeps_that_phase_of_every_role(step, present, absent):
    tasks = role_tasks(tasks_by_play(listed("--list-tasks", "--tags", step)))
    names = {name.split(".", 2)[2] for _play, name, _tags in tasks}
    for play, name, tags in tasks:
        assert step in tags or ("always" in tags and ALWAYS.search(name)), (play, name, tags)
    assert not [n for n in absent if n in names], names
    missing = [n for n in present if not any(name.startswith(n) for name in names)]
    assert not missing, sorted(names)


def test_no_play_that_gathers_facts_is_tagged():
    """ansible-core tags a play's implicit fact gathering `always` only when the play has no tags; a tagged
    play's gathering takes the play's tags, so `--tags verify` (or a role's tag) would run its roles without
    facts (seen on the lab: the virtual IP's interface check found no interface). The part tags go on the
    roles instead."""
    tagged = []
    for path in sorted((REPO / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text()) or []:
            if "hosts" in play and play.get("gather_facts", True) and play.get("tags") not in (None, ["always"]):
                tagged.append((path.name, play.get("name"), play["tags"]))
    assert tagged == []
