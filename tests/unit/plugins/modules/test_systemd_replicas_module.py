"""The module's own checks, before it touches anything (the reconcile itself: module_utils/test_replica_units.py)."""

import grp
import os

from ansible_collections.llmfleet.cluster.plugins.modules import systemd_replicas

GROUP = grp.getgrgid(os.getgid()).gr_name


def test_an_unknown_group_is_refused_by_name(module_runner):
    code, result = module_runner(systemd_replicas.main, {"name": "llm", "replicas": [], "group": "no-such-group-x",
                                                         "_ansible_check_mode": True})
    assert code == 1 and "group no-such-group-x does not exist" in result["msg"]


def test_prune_never_runs_in_the_root_directory(module_runner):
    code, result = module_runner(systemd_replicas.main, {"name": "llm", "group": GROUP, "_ansible_check_mode": True,
                                                         "prune": [{"dir": "/", "pattern": ".*"}]})
    assert code == 1 and "prune: dir must be an absolute directory other than /" in result["msg"]


def test_a_replica_without_its_unit_is_refused(module_runner):
    code, result = module_runner(systemd_replicas.main, {"name": "llm", "group": GROUP, "_ansible_check_mode": True,
                                                         "replicas": [{"index": 0, "environment": ""}]})
    assert code == 1 and "unit" in result["msg"]
