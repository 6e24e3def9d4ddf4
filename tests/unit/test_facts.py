"""The collection reads a host's facts only under `ansible_facts`, never as the top-level `ansible_*`
variables Ansible injects by default (`inject_facts_as_vars`, true unless configured; ansible-core 2.19
already carries the code to deprecate them). Both settings must work: the lab and CI run with injection off (ansible.cfg: it costs a
deep copy and a scan of every host's facts on the controller for each task on each host), Molecule and
most users' configurations with it on. A role that read `ansible_distribution` would pass the one and
fail the other; this finds it without a host."""

import re
from pathlib import Path

import ansible.constants as C

REPO = Path(__file__).resolve().parents[2]

# Ansible's own variables (special, magic and connection variables), which injection does not make.
SPECIAL = {
    "ansible_facts", "ansible_check_mode", "ansible_diff_mode", "ansible_managed", "ansible_play_hosts",
    "ansible_play_hosts_all", "ansible_play_batch", "ansible_play_name", "ansible_play_role_names",
    "ansible_role_names", "ansible_role_name", "ansible_parent_role_names", "ansible_limit",
    "ansible_run_tags", "ansible_skip_tags", "ansible_failed_result", "ansible_failed_task",
    "ansible_loop", "ansible_loop_var", "ansible_index_var", "ansible_verbosity", "ansible_version",
    "ansible_config_file", "ansible_playbook_python", "ansible_inventory_sources", "ansible_search_path",
    "ansible_python_interpreter", "ansible_become", "ansible_become_user", "ansible_become_method",
    # The path of an installed collection ("ansible_collections/llmfleet/cluster"), not a variable.
    "ansible_collections",
}
CONNECTION = set(C.COMMON_CONNECTION_VARS) | {name for names in C.MAGIC_VARIABLE_MAPPING.values() for name in names}
NAME = re.compile(r"\bansible_[a-z0-9_]+\b")


def sources():
    for pattern in ("roles/**/*.yml", "roles/**/*.j2", "playbooks/*.yml", "site.yml", "plugins/action/*.py",
                    "plugins/filter/*.py"):
        yield from REPO.glob(pattern)


def test_no_role_or_playbook_reads_an_injected_fact():
    found = {}
    for path in sources():
        for name in NAME.findall(path.read_text()):
            if name not in SPECIAL | CONNECTION:
                found.setdefault(name, []).append(str(path.relative_to(REPO)))
    assert found == {}, f"read these facts as ansible_facts['...'] instead: {found}"


def test_the_scan_sees_a_fact_read_the_old_way():
    assert NAME.findall("{{ ansible_distribution }} {{ ansible_facts['distribution'] }}") == [
        "ansible_distribution", "ansible_facts"]
    assert "ansible_distribution" not in SPECIAL | CONNECTION
    assert len(list(sources())) > 100


def test_the_lab_runs_with_facts_only_under_ansible_facts():
    assert re.search(r"^inject_facts_as_vars = false$", (REPO / "ansible.cfg").read_text(), re.M)
