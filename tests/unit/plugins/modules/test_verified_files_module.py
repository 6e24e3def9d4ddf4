"""The verified_files module on real files (its logic: tests/unit/plugins/module_utils/test_verified_files.py)."""

import hashlib

import pytest
from ansible_collections.llmfleet.cluster.plugins.module_utils import verified_files as logic
from ansible_collections.llmfleet.cluster.plugins.modules import verified_files


@pytest.fixture(autouse=True)
def short_racy_wait(monkeypatch):
    """A stamp waits until its file's change time is RACY_NS old: the files here were just written."""
    monkeypatch.setattr(logic, "RACY_NS", 10 ** 7)


def test_checks_then_knows_the_file_by_its_stamp(module_runner, tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    args = {"files": [{"path": str(model), "sha256": hashlib.sha256(b"weights").hexdigest()}],
            "stamps": str(tmp_path / "state" / "verified.json")}
    code, first = module_runner(verified_files.main, args)
    assert code == 0 and first["changed"] and first["files"][0]["hashed"] and first["files"][0]["state"] == "verified"
    code, second = module_runner(verified_files.main, args)
    assert code == 0 and not second["changed"] and not second["files"][0]["hashed"]


def test_a_copy_that_does_not_verify_fails_the_task(module_runner, tmp_path):
    partial = tmp_path / "model.gguf.partial"
    partial.write_bytes(b"truncated")
    code, result = module_runner(verified_files.main, {
        "files": [{"path": str(tmp_path / "model.gguf"), "source": str(partial), "sha256": "0" * 64, "mode": "0644"}],
        "stamps": str(tmp_path / "verified.json")})
    assert code == 1 and result["failed"] and "expected " + "0" * 64 in result["msg"]
    assert not (tmp_path / "model.gguf").exists()


def test_check_mode_changes_nothing(module_runner, tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    code, result = module_runner(verified_files.main, {
        "files": [{"path": str(model), "sha256": hashlib.sha256(b"other").hexdigest()}],
        "stamps": str(tmp_path / "verified.json"), "_ansible_check_mode": True})
    assert code == 0 and result["files"][0]["state"] == "different" and not (tmp_path / "verified.json").exists()
