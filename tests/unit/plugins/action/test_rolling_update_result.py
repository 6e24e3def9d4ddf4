"""The rolling update's result file, written on the controller by an action plugin (real files)."""

import json
import os
import stat
from types import SimpleNamespace

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext

from ansible_collections.llmfleet.cluster.plugins.action import rolling_update_result as action


def test_written_whole_sorted_and_readable_by_all(tmp_path):
    path = tmp_path / "result.json"
    assert action.write_json(str(path), {"zones": [{"zone": "zone-a", "step": "draining"}], "status": "in_progress"})
    text = path.read_text()
    assert text.endswith("}\n") and text.index('"status"') < text.index('"zones"')
    assert json.loads(text)["zones"][0]["step"] == "draining"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left


def test_same_content_is_not_a_change_new_content_replaces_the_file(tmp_path):
    path = tmp_path / "result.json"
    action.write_json(str(path), {"a": 1})
    inode = path.stat().st_ino
    assert action.write_json(str(path), {"a": 1}) is False
    assert action.write_json(str(path), {"a": 2}) is True
    assert json.loads(path.read_text()) == {"a": 2}
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place


def test_a_directory_that_cannot_be_written_leaves_nothing_behind(tmp_path):
    missing = tmp_path / "no-such-dir" / "result.json"
    with pytest.raises(OSError):
        action.write_json(str(missing), {"a": 1})
    assert not missing.parent.exists()


def run_action(args, check_mode=False):
    task = SimpleNamespace(args=args, async_val=0, check_mode=check_mode, diff=False, environment=None,
                           no_log=False, action="llmfleet.cluster.rolling_update_result")
    context = PlayContext()
    context.check_mode = check_mode
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/unused"))  # the action connects to nothing
    plugin = action.ActionModule(task, connection, context, None, None, None)
    return plugin.run(task_vars={})


def test_the_action_writes_and_check_mode_does_not(tmp_path):
    path = tmp_path / "result.json"
    assert run_action({"path": str(path), "result": {"status": "checked"}}, check_mode=True)["changed"] is False
    assert not path.exists()
    result = run_action({"path": str(path), "result": {"status": "updated"}})
    assert result["changed"] is True and json.loads(path.read_text()) == {"status": "updated"}


@pytest.mark.parametrize("args,message", [
    ({"result": {}}, "path: the result file's path is required"),
    ({"path": "/tmp/x.json", "result": "updated"}, "result: a dict is required, got str"),
])
def test_bad_arguments_fail_naming_the_argument(args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        run_action(args)


def test_an_unwritable_path_fails_naming_it(tmp_path):
    target = tmp_path / "ro" / "result.json"
    with pytest.raises(AnsibleActionFail, match="cannot write the result file .*ro/result.json"):
        run_action({"path": str(target), "result": {}})
    assert not os.path.exists(target)
