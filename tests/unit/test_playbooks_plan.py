"""Every playbook whose roles read the fleet plan (llmfleet_fleet, made by playbooks/validate.yml) makes it
first, itself or through the playbooks it imports. Run alone without it, a role read an empty plan and
wrote another configuration than site.yml does, silently: the fault agent watched no disk (serving.yml),
auditd no weights (hardening.yml); and bad input reached hosts. validate.yml makes the plan once per run,
so site.yml's own import is not repeated."""

import functools
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PLAN = re.compile(r"\bllmfleet_fleet\b")


@functools.lru_cache(maxsize=None)
def plan_readers():
    """Roles whose tasks, variables, defaults or templates name llmfleet_fleet."""
    readers = set()
    for role in (REPO / "roles").iterdir():
        if any(PLAN.search(path.read_text()) for path in role.rglob("*") if path.is_file()
               and path.suffix in (".yml", ".j2") and "molecule" not in path.parts):
            readers.add(role.name)
    return readers


def role_names(play):
    for role in play.get("roles") or []:
        yield (role if isinstance(role, str) else role.get("role") or role.get("name")).rsplit(".", 1)[-1]


def walk(path, made=False):
    """(whether the plan is made before any role reads it, whether it is made by the end): path's plays in
    order, into the playbooks it imports."""
    for play in yaml.safe_load(path.read_text()):
        imported = play.get("ansible.builtin.import_playbook")
        if imported and Path(imported).name == "validate.yml":
            made = True
        elif imported:
            ok, made = walk(path.parent / imported, made)
            if not ok:
                return False, made
        elif not made and set(role_names(play)) & plan_readers():
            return False, made
    return True, made


def test_the_walk_finds_the_readers():
    assert {"fault_agent", "load_balancer", "os_hardening", "prometheus"} <= plan_readers()


def test_every_playbook_makes_the_plan_before_a_role_reads_it():
    paths = sorted([*(REPO / "playbooks").glob("*.yml"), REPO / "site.yml"])
    assert len(paths) >= 10
    assert [path.name for path in paths if not walk(path)[0]] == []
