import os

from ansible_collections.llmfleet.cluster.plugins.modules import config_files


def _files(tmp_path, **extra):
    return [{"path": str(tmp_path / "d"), "state": "directory", "owner": None, "group": None},
            dict({"path": str(tmp_path / "d" / "f.conf"), "content": "k = v\n", "mode": "0640"}, **extra)]


def owned(items):
    # The test runs as whoever runs it: owner and group are that user's, not root.
    import grp
    import pwd
    for item in items:
        item["owner"] = pwd.getpwuid(os.geteuid()).pw_name
        item["group"] = grp.getgrgid(os.getegid()).gr_name
    return items


def test_writes_then_changes_nothing(tmp_path, module_runner):
    files = owned(_files(tmp_path))
    code, result = module_runner(config_files.main, {"files": files})
    assert code == 0 and result["changed"] and "diff" not in result
    assert (tmp_path / "d" / "f.conf").read_text() == "k = v\n"
    code, result = module_runner(config_files.main, {"files": files})
    assert code == 0 and not result["changed"] and result["files"] == []


def test_check_and_diff_mode(tmp_path, module_runner):
    files = owned(_files(tmp_path))
    code, result = module_runner(config_files.main, {"files": files, "_ansible_check_mode": True, "_ansible_diff": True})
    assert code == 0 and result["changed"] and result["diff"][0]["after"] == "k = v\n"
    assert not (tmp_path / "d").exists()


def test_refused_content_fails_naming_the_file(tmp_path, module_runner):
    files = owned(_files(tmp_path, validate="grep -q never %s"))
    code, result = module_runner(config_files.main, {"files": files})
    assert code == 1 and "f.conf: the new content failed its check" in result["msg"]
    assert os.listdir(tmp_path / "d") == []


def test_unknown_owner_fails_before_anything_changes(tmp_path, module_runner):
    files = owned(_files(tmp_path))
    files[1]["owner"] = "no-such-user-llmfleet"
    code, result = module_runner(config_files.main, {"files": files})
    assert code == 1 and "no such user on this host: no-such-user-llmfleet" in result["msg"]
    assert not (tmp_path / "d").exists()
