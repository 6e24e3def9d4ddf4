"""The module with skopeo's runs answered here: the temporary directory with the account is removed, also
when a copy fails, and the password is in no result."""

import json
import os

from ansible_collections.llmfleet.cluster.plugins.modules import registry_push

CONFIG = json.dumps({"rootfs": {"diff_ids": ["sha256:aaa"]}})
ARGS = {"endpoint": "10.0.0.5:5000", "images": [{"name": "engines/llamacpp:b1", "source": "oci-archive:/srv/b1.tar"}],
        "username": "pusher", "password": "s3cret-pw"}


def answering(monkeypatch, seen, copy_rc=0):
    def run_command(self, argv, **kwargs):
        auth = [arg.split("=", 1)[1] for arg in argv if arg.startswith(("--authfile=", "--dest-authfile="))]
        seen.append((argv, [open(path).read() for path in auth]))
        if argv[1] == "copy":
            return copy_rc, "", "denied" if copy_rc else ""
        if argv[-1].startswith("docker://"):
            copied = any(call[0][1] == "copy" for call in seen)
            if argv[2].startswith("--format"):
                return 0, "sha256:" + "1" * 64 + "\n", ""
            return (0, CONFIG, "") if copied else (1, "", "manifest unknown")
        return 0, CONFIG, ""
    monkeypatch.setattr(registry_push.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(registry_push.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/skopeo")


def test_copies_reports_and_leaves_no_account_behind(module_runner, monkeypatch):
    seen = []
    answering(monkeypatch, seen)
    code, result = module_runner(registry_push.main, dict(ARGS))
    assert code == 0 and result["changed"] and result["copied"] == ["engines/llamacpp:b1"]
    assert result["pushed"] == {"engines/llamacpp:b1": "sha256:" + "1" * 64}
    # The account reached skopeo in its auth file (base64 of user:password), and the file is gone now.
    assert any("cHVzaGVyOnMzY3JldC1wdw==" in text for unused, texts in seen for text in texts)
    auth_file = [arg.split("=", 1)[1] for argv, unused in seen for arg in argv if arg.startswith("--authfile=")][0]
    assert not os.path.exists(os.path.dirname(auth_file))
    assert "s3cret-pw" not in json.dumps(result) and not any("s3cret-pw" in " ".join(argv) for argv, unused in seen)


def test_a_failed_copy_fails_with_skopeos_message_and_removes_the_account(module_runner, monkeypatch):
    seen = []
    answering(monkeypatch, seen, copy_rc=1)
    code, result = module_runner(registry_push.main, dict(ARGS))
    assert code == 1 and "engines/llamacpp:b1: skopeo copy to 10.0.0.5:5000 failed (rc 1): denied" in result["msg"]
    auth_file = [arg.split("=", 1)[1] for argv, unused in seen for arg in argv if arg.startswith("--dest-authfile=")][0]
    assert not os.path.exists(os.path.dirname(auth_file))


def test_check_mode_copies_nothing(module_runner, monkeypatch):
    seen = []
    answering(monkeypatch, seen)
    code, result = module_runner(registry_push.main, dict(ARGS, _ansible_check_mode=True))
    assert code == 0 and result["changed"] and result["pushed"] == {"engines/llamacpp:b1": None}
    assert not [argv for argv, unused in seen if argv[1] == "copy"]


def test_without_skopeo_it_fails_before_anything(module_runner, monkeypatch):
    monkeypatch.setattr(registry_push.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    code, result = module_runner(registry_push.main, dict(ARGS))
    assert code == 1 and "skopeo not found" in result["msg"]
