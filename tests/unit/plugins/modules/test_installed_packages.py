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
    # This machine's apt lists, as the apt module would read them (None where apt never ran).
    assert result["apt_lists_age"] is None or result["apt_lists_age"] >= 0
    assert result["apt_sources_newer"] in (True, False)
    assert result["apt_sources_newer"] or result["apt_lists_age"] is not None


def test_a_host_without_dpkg_fails_with_a_clear_message(module_runner, monkeypatch):
    monkeypatch.setattr(installed_packages.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    code, result = module_runner(installed_packages.main, {"_ansible_check_mode": True})
    assert code == 1 and result["failed"] and "dpkg-query not found" in result["msg"]


def test_a_failing_dpkg_query_fails_with_its_message(module_runner, monkeypatch):
    monkeypatch.setattr(installed_packages.AnsibleModule, "run_command",
                        lambda self, args, **k: (2, "", "dpkg-query: error: parsing file '/var/lib/dpkg/status'"))
    code, result = module_runner(installed_packages.main, {"_ansible_check_mode": True})
    assert code == 1 and "dpkg-query failed (rc 2)" in result["msg"] and "parsing file" in result["msg"]
