import json
import os

from ansible_collections.llmfleet.cluster.plugins.modules import docker_daemon_config

SETTINGS = {"live-restore": True, "log-opts": {"max-size": "100m"}}


def test_merges_keeps_site_keys_and_is_idempotent(tmp_path, module_runner):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true, "log-opts": {"labels": "site"}}')
    code, result = module_runner(docker_daemon_config.main, {"path": str(path), "settings": SETTINGS, "backup": True})
    assert code == 0 and result["changed"]
    assert json.loads(path.read_text()) == {"debug": True, "live-restore": True, "log-opts": {"labels": "site", "max-size": "100m"}}
    assert os.path.exists(result["backup_file"])
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    code, result = module_runner(docker_daemon_config.main, {"path": str(path), "settings": SETTINGS})
    assert code == 0 and not result["changed"]


def test_check_mode_reports_without_writing(tmp_path, module_runner):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    code, result = module_runner(docker_daemon_config.main,
                                 {"path": str(path), "settings": SETTINGS, "_ansible_check_mode": True, "_ansible_diff": True})
    assert code == 0 and result["changed"]
    assert '"live-restore": true' in result["diff"]["after"]
    assert path.read_text() == '{"debug": true}'


def test_creates_the_file_and_directory(tmp_path, module_runner):
    path = tmp_path / "etc" / "docker" / "daemon.json"
    code, result = module_runner(docker_daemon_config.main, {"path": str(path), "settings": SETTINGS})
    assert code == 0 and result["changed"] and json.loads(path.read_text()) == SETTINGS


def test_broken_file_is_left_alone(tmp_path, module_runner):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": tru')
    code, result = module_runner(docker_daemon_config.main, {"path": str(path), "settings": SETTINGS})
    assert code == 1 and "is not valid JSON" in result["msg"]
    assert path.read_text() == '{"debug": tru'


def test_failed_validation_leaves_the_file_unchanged(tmp_path, module_runner):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    code, result = module_runner(docker_daemon_config.main, {"path": str(path), "settings": SETTINGS, "validate": "false %s"})
    assert code == 1 and "failed validation" in result["msg"]
    assert path.read_text() == '{"debug": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]  # no temporary file left behind


def test_validation_sees_the_merged_content(tmp_path, module_runner):
    path = tmp_path / "daemon.json"
    code, result = module_runner(docker_daemon_config.main,
                                 {"path": str(path), "settings": SETTINGS, "validate": "grep -q live-restore %s"})
    assert code == 0 and result["changed"]


def test_remove_a_runtime(tmp_path, module_runner):
    path = tmp_path / "daemon.json"
    path.write_text('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}')
    code, result = module_runner(docker_daemon_config.main, {"path": str(path), "settings": {}, "remove": ["runtimes/nvidia"]})
    assert code == 0 and result["changed"] and json.loads(path.read_text()) == {"runtimes": {}}


def test_argument_spec_refuses_bad_types(tmp_path, module_runner):
    code, result = module_runner(docker_daemon_config.main, {"path": str(tmp_path / "d.json"), "settings": "live-restore"})
    assert code == 1 and "settings" in result["msg"]
