import json

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_config as dc

ROLE_SETTINGS = {"log-driver": "json-file", "log-opts": {"max-size": "100m", "max-file": "5"}, "live-restore": True}


def test_existing_keys_survive_and_objects_merge_key_by_key():
    site = json.dumps({"registry-mirrors": ["https://mirror.example"], "log-opts": {"labels": "site", "max-size": "10m"},
                       "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}})
    before, after, changed = dc.plan(site, ROLE_SETTINGS)
    assert changed
    assert after["registry-mirrors"] == ["https://mirror.example"]
    assert after["runtimes"] == before["runtimes"]
    assert after["log-opts"] == {"labels": "site", "max-size": "100m", "max-file": "5"}
    assert before["log-opts"]["max-size"] == "10m"  # the input is not modified


def test_lists_and_scalars_are_replaced_not_appended():
    _before, after, _changed = dc.plan('{"dns": ["1.1.1.1"], "debug": true}', {"dns": ["10.0.0.53"], "debug": False})
    assert after == {"dns": ["10.0.0.53"], "debug": False}


def test_same_content_in_another_layout_is_no_change():
    hand_written = '{\n "live-restore": true, "log-opts": {"max-file": "5", "max-size": "100m"},\n "log-driver": "json-file"}'
    _before, _after, changed = dc.plan(hand_written, ROLE_SETTINGS)
    assert not changed


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_missing_or_empty_file_is_an_empty_object(text):
    assert dc.plan(text, ROLE_SETTINGS)[1] == ROLE_SETTINGS


@pytest.mark.parametrize("text,message", [('{"debug": true,', "is not valid JSON"), ('["a"]', "JSON list, not an object")])
def test_broken_file_is_refused(text, message):
    with pytest.raises(dc.DaemonConfigError, match=message):
        dc.plan(text, ROLE_SETTINGS)


def test_remove_nested_and_missing_keys():
    config = {"runtimes": {"nvidia": {"path": "x"}, "crun": {"path": "y"}}, "debug": True}
    assert dc.remove(config, ["runtimes/nvidia", "absent", "nothing/here"]) == {"runtimes": {"crun": {"path": "y"}}, "debug": True}


def test_render_is_stable():
    assert dc.render({"b": 1, "a": {"d": 2, "c": 3}}) == '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n'
