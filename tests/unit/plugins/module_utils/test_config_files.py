import os

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import config_files as cf

UID, GID = os.geteuid(), os.getegid()


def ids(kind, name):
    return {"user": {"root": UID, "svc": UID}, "group": {"root": GID}}[kind].get(name)


def specs(*items):
    out = cf.normalise(list(items), ids)
    for spec in out:
        if spec["content"] is not None:
            spec["content"] = spec["content"].encode()
    return out


class Runs(object):
    def __init__(self, rc=0):
        self.rc, self.calls = rc, []

    def __call__(self, argv):
        self.calls.append(argv)
        # What a real check sees: the staged file exists, with the new content.
        assert os.path.exists(argv[-1])
        return self.rc, "", "refused" if self.rc else ""


def test_writes_creates_directories_in_order_and_is_idempotent(tmp_path):
    d = tmp_path / "conf.d"
    wanted = specs({"path": str(tmp_path / "issue"), "content": "hi\n"},
                   {"path": str(d), "state": "directory", "mode": "0750"},
                   {"path": str(d / "60.conf"), "content": "[x]\n", "mode": "0600"})
    result = cf.apply(wanted, cf.Node(), Runs())
    assert result["changed"]
    assert [f["changes"] for f in result["files"]] == [["created"], ["created"], ["created"]]
    assert (tmp_path / "issue").read_text() == "hi\n"
    assert oct(d.stat().st_mode & 0o7777) == "0o750"
    assert oct((d / "60.conf").stat().st_mode & 0o7777) == "0o600"
    again = cf.apply(wanted, cf.Node(), Runs())
    assert again == {"changed": False, "files": [], "backups": [], "diff": []}


def test_check_mode_reports_content_and_mode_changes_and_writes_nothing(tmp_path):
    path = tmp_path / "login.defs"
    path.write_text("old\n")
    os.chmod(path, 0o600)
    result = cf.apply(specs({"path": str(path), "content": "new\n"},
                            {"path": str(tmp_path / "new.d"), "state": "directory"},
                            {"path": str(tmp_path / "new.d" / "f"), "content": "x"}), cf.Node(), Runs(), check_mode=True)
    assert result["files"] == [{"path": str(path), "changes": ["content", "mode"]},
                               {"path": str(tmp_path / "new.d"), "changes": ["created"]},
                               {"path": str(tmp_path / "new.d" / "f"), "changes": ["created"]}]
    assert result["diff"][0]["before"] == "old\n" and result["diff"][0]["after"] == "new\n"
    assert path.read_text() == "old\n" and not (tmp_path / "new.d").exists()


def test_mode_only_change_keeps_the_content_and_inode(tmp_path):
    path = tmp_path / "sudoers"
    path.write_text("x\n")
    inode = path.stat().st_ino
    result = cf.apply(specs({"path": str(path), "content": "x\n", "mode": "0440"}), cf.Node(), Runs())
    assert result["files"] == [{"path": str(path), "changes": ["mode"]}] and result["diff"] == []
    assert path.stat().st_ino == inode and oct(path.stat().st_mode & 0o777) == "0o440"


def test_a_refused_file_leaves_every_file_of_the_call_unchanged(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("a0")
    second.write_text("b0")
    runs = Runs(rc=1)
    wanted = specs({"path": str(first), "content": "a1"}, {"path": str(second), "content": "b1", "validate": "check -f %s"})
    with pytest.raises(cf.ConfigFilesError, match=r"b: the new content failed its check \(check -f %s, rc 1\): refused"):
        cf.apply(wanted, cf.Node(), runs)
    assert first.read_text() == "a0" and second.read_text() == "b0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary file left
    assert runs.calls[0][:2] == ["check", "-f"] and runs.calls[0][2].startswith(str(tmp_path / ".b."))
    assert runs.calls[0][2].endswith("~")  # what apt.conf.d and sudoers.d skip, should a killed run leave it


def test_validate_sees_the_new_content(tmp_path):
    path = tmp_path / "apt.conf"
    seen = []

    def run(argv):
        with open(argv[2]) as handle:
            seen.append(handle.read())
        return 0, "", ""
    cf.apply(specs({"path": str(path), "content": "new", "validate": "apt-config -c %s dump"}), cf.Node(), run)
    assert seen == ["new"] and path.read_text() == "new"


@pytest.mark.parametrize("item, message", [
    ({"path": "etc/issue", "content": ""}, "path must be absolute"),
    ({"path": "/etc/issue"}, "a file needs content"),
    ({"path": "/etc/x.d", "state": "directory", "content": "x"}, "a directory has no content"),
    ({"path": "/etc/issue", "content": "", "mode": "644x"}, "mode must be an octal string"),
    ({"path": "/etc/issue", "content": "", "mode": "17777"}, "mode must be an octal string"),
    ({"path": "/etc/issue", "content": "", "validate": "visudo -c"}, "validate must contain %s"),
    ({"path": "/etc/issue", "content": "", "owner": "nobody-here"}, "no such user on this host: nobody-here"),
    ({"path": "/etc/issue", "content": "", "group": "nogroup-here"}, "no such group on this host: nogroup-here"),
    ({"path": "/etc/issue", "content": "", "state": "link"}, "state must be one of file, directory"),
    ({"path": "/etc/issue", "content": "", "backup": "issue.old"}, "backup must be an absolute path"),
    ({"path": "/etc/issue", "content": "", "backup": "/etc/issue"}, "backup must be an absolute path other than"),
    ({"path": "/etc/x.d", "state": "directory", "backup": "/etc/x.old"}, "and only for a file"),
])
def test_bad_entries_are_refused_naming_the_path(item, message):
    with pytest.raises(cf.ConfigFilesError, match=message):
        cf.normalise([item], ids)


def test_a_path_listed_twice_is_refused():
    with pytest.raises(cf.ConfigFilesError, match="/etc/issue is listed twice"):
        cf.normalise([{"path": "/etc/issue", "content": "a"}, {"path": "/etc/issue", "content": "b"}], ids)


def test_missing_directory_not_listed_is_an_error_and_nothing_is_written(tmp_path):
    ok = tmp_path / "ok"
    with pytest.raises(cf.ConfigFilesError, match="its directory .*/missing does not exist"):
        cf.apply(specs({"path": str(ok), "content": "x"}, {"path": str(tmp_path / "missing" / "f"), "content": "x"}),
                 cf.Node(), Runs())
    assert not ok.exists()


def test_a_directory_where_a_file_belongs_is_left_alone(tmp_path):
    (tmp_path / "issue").mkdir()
    with pytest.raises(cf.ConfigFilesError, match="issue is a directory on this host, not a file"):
        cf.apply(specs({"path": str(tmp_path / "issue"), "content": "x"}), cf.Node(), Runs())


def test_owner_difference_is_reported():
    spec = specs({"path": "/etc/issue", "content": "x"})[0]
    current = {"kind": "file", "mode": 0o644, "uid": UID + 1, "gid": GID, "content": b"x"}
    assert cf.differences(spec, current) == ["owner"]


def test_a_backup_listed_as_an_entry_is_refused():
    with pytest.raises(cf.ConfigFilesError, match="/etc/a: its backup /etc/b is also listed"):
        cf.normalise([{"path": "/etc/a", "content": "a", "backup": "/etc/b"}, {"path": "/etc/b", "content": "b"}], ids)


def test_backup_holds_the_content_before_the_call_and_is_not_a_change(tmp_path):
    path, backup = tmp_path / "sshd_config", tmp_path / "sshd_config.previous"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    wanted = specs({"path": str(path), "content": "new\n", "mode": "0600", "backup": str(backup)})
    result = cf.apply(wanted, cf.Node(), Runs())
    assert result["files"] == [{"path": str(path), "changes": ["content", "mode"]}]
    assert result["backups"] == [str(backup)]
    assert backup.read_text() == "old\n" and oct(backup.stat().st_mode & 0o7777) == "0o600"
    assert path.read_text() == "new\n"
    # Converged: the backup is brought to the content before the call (the same as the file) and the
    # call reports no change; then nothing more is written.
    again = cf.apply(wanted, cf.Node(), Runs())
    assert again == {"changed": False, "files": [], "backups": [str(backup)], "diff": []}
    assert backup.read_text() == "new\n"
    assert cf.apply(wanted, cf.Node(), Runs())["backups"] == []


def test_backup_follows_a_hand_edit_even_when_the_call_changes_nothing_else(tmp_path):
    path, backup = tmp_path / "f", tmp_path / "f.previous"
    path.write_text("mine\n")
    wanted = specs({"path": str(path), "content": "mine\n", "backup": str(backup)})
    backup.write_text("stale\n")
    assert cf.apply(wanted, cf.Node(), Runs())["changed"] is False
    assert backup.read_text() == "mine\n"


def test_no_file_before_the_call_removes_a_stale_backup(tmp_path):
    path, backup = tmp_path / "f", tmp_path / "f.previous"
    backup.write_text("from an older run\n")
    result = cf.apply(specs({"path": str(path), "content": "x", "backup": str(backup)}), cf.Node(), Runs())
    assert result["backups"] == [str(backup)] and not backup.exists() and path.read_text() == "x"


def test_a_refused_file_keeps_the_old_backup_and_check_mode_writes_none(tmp_path):
    path, backup = tmp_path / "f", tmp_path / "f.previous"
    path.write_text("old\n")
    backup.write_text("older\n")
    wanted = specs({"path": str(path), "content": "new\n", "backup": str(backup), "validate": "check %s"})
    with pytest.raises(cf.ConfigFilesError, match="failed its check"):
        cf.apply(wanted, cf.Node(), Runs(rc=1))
    assert cf.apply(wanted, cf.Node(), Runs(), check_mode=True)["backups"] == []
    assert backup.read_text() == "older\n" and path.read_text() == "old\n"


def test_a_backup_path_that_is_not_a_regular_file_is_refused_and_nothing_lands(tmp_path):
    path, backup = tmp_path / "f", tmp_path / "f.previous"
    path.write_text("old\n")
    backup.mkdir()
    with pytest.raises(cf.ConfigFilesError, match="its backup .*f.previous is not a regular file"):
        cf.apply(specs({"path": str(path), "content": "new\n", "backup": str(backup)}), cf.Node(), Runs())
    assert path.read_text() == "old\n" and backup.is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no staged file left
