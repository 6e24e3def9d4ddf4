"""The module against this machine's real dpkg database (read-only), where there is one."""

import shutil

import pytest
from ansible_collections.llmfleet.cluster.plugins.modules import installed_packages
from ansible_collections.llmfleet.cluster.plugins.filter.packages import llmfleet_missing_packages

pytestmark = pytest.mark.skipif(not shutil.which("dpkg-query"), reason="no dpkg on this machine")


def test_reads_this_machines_packages_as_facts_in_check_mode(module_runner):
    code, result = module_runner(installed_packages.main, {"_ansible_check_mode": True})
    assert code == 0 and not result["changed"]
    found = result["ansible_facts"]["packages"]
    # dpkg itself is installed wherever dpkg-query is.
    assert found["dpkg"][0]["name"] == "dpkg" and found["dpkg"][0]["version"]
    # What the roles ask of the facts.
    assert llmfleet_missing_packages(["dpkg", "no-such-package-llmfleet"], {"packages": found}) == ["no-such-package-llmfleet"]
