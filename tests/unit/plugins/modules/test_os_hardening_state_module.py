"""The module against this machine, read-only (check mode): what it reports is what os.stat and the
files say."""

import os
import shutil
import stat

import pytest
from ansible_collections.llmfleet.cluster.plugins.modules import os_hardening_state

pytestmark = pytest.mark.skipif(not (shutil.which("getent") and os.path.exists("/etc/login.defs")),
                                reason="no getent or login.defs on this machine")


def test_reads_this_machine_in_one_call_and_changes_nothing(module_runner, tmp_path):
    setid = [p for p in ("/usr/bin/su", "/usr/bin/passwd", "/bin/su") if os.path.exists(p)]
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)
    code, result = module_runner(os_hardening_state.main, {
        "_ansible_check_mode": True, "login_defs": True, "password_accounts": True, "loaded_modules": True,
        "pam": True, "setid_paths": setid + [str(tmp_path / "gone")],
        "modes": [{"path": str(closed), "mode": "0700"}, {"path": str(tmp_path / "gone"), "mode": "0700"}]})
    assert code == 0 and not result["changed"], result
    with open("/etc/login.defs") as handle:
        assert result["login_defs"] == handle.read()
    assert isinstance(result["password_accounts"], list) and "root" not in result["password_accounts"]
    assert result["mode_changes"] == [{"path": str(closed), "mode": "0700"}]
    expected = [p for p in setid if os.stat(p).st_mode & (stat.S_ISUID | stat.S_ISGID)]
    assert [entry["path"] for entry in result["setid"]] == expected
    assert all(not int(entry["mode"], 8) & (stat.S_ISUID | stat.S_ISGID) for entry in result["setid"])
    assert set(result["pam"]) == {"pwquality", "umask"}
    assert os.stat(closed).st_mode & 0o777 == 0o755


def test_a_failing_getent_fails_with_its_message(module_runner, monkeypatch):
    monkeypatch.setattr(os_hardening_state.AnsibleModule, "run_command",
                        lambda self, args, **k: (1, "", "getent: Unknown database: shadow"))
    code, result = module_runner(os_hardening_state.main, {"_ansible_check_mode": True, "password_accounts": True})
    assert code == 1 and "getent shadow failed (rc 1)" in result["msg"] and "Unknown database" in result["msg"]
