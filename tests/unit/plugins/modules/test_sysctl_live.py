"""The module against this machine's real /proc/sys, in check mode only: a unit test must never
change the machine's kernel (the logic that writes is tested on a fake /proc/sys in
module_utils/test_sysctl.py)."""

from ansible_collections.llmfleet.cluster.plugins.modules import sysctl_live


def current(key):
    with open("/proc/sys/" + key.replace(".", "/")) as handle:
        return " ".join(handle.read().split())


def test_check_mode_reports_without_writing(module_runner):
    before = current("net.core.somaxconn")
    other = str(int(before) + 1)
    code, result = module_runner(sysctl_live.main, {"settings": {"net.core.somaxconn": before}, "_ansible_check_mode": True})
    assert code == 0 and not result["changed"] and result["unchanged"] == ["net.core.somaxconn"]
    code, result = module_runner(sysctl_live.main, {"settings": {"net.core.somaxconn": other, "no.such.key": 1},
                                                    "_ansible_check_mode": True})
    assert code == 0 and result["changed"]
    assert result["applied"] == ["net.core.somaxconn"] or "net.core.somaxconn" in result["not_applied"]
    assert result["absent"] == ["no.such.key"]
    assert current("net.core.somaxconn") == before


def test_settings_must_be_a_dict(module_runner):
    code, result = module_runner(sysctl_live.main, {"settings": ["net.core.somaxconn", 1], "_ansible_check_mode": True})
    assert code == 1 and "settings" in result["msg"]
