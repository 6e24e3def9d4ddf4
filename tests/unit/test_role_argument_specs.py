"""Every role's meta/argument_specs.yml documents exactly its defaults/main.yml, with the same values.
Not compared: defaults that hold a Jinja expression (documented in words), and long tables the spec
points to with "see defaults/main.yml"."""

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = spec.get("main", {}).get("options") or {}
    defaults_file = role / "defaults" / "main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
    assert set(options) == set(defaults), "documented but no default: %s; default but undocumented: %s" % (
        sorted(set(options) - set(defaults)), sorted(set(defaults) - set(options)))
    for name, value in defaults.items():
        assert name.startswith(role.name.lstrip("_") + "_"), f"{name} lacks the role prefix"
        assert options[name].get("description"), f"{name} has no description"
        if "{{" in repr(value) or ("default" not in options[name]
                                   and "defaults/main.yml" in options[name]["description"]):
            continue
        assert options[name].get("default") == value, f"{name}: spec default {options[name].get('default')!r} != {value!r}"


def test_what_a_further_model_server_may_give_is_one_list_everywhere():
    """model_server_servers entries: module_utils/serving.py SERVER_OPTIONS is what the plan takes, the role's
    servers.yml gives each of them to the server's turn, and the argument spec documents each as a suboption."""
    from ansible_collections.llmfleet.cluster.plugins.module_utils import serving
    role = next(r for r in ROLES if r.name == "model_server")
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert list(spec["model_server_servers"]["options"]) == list(serving.SERVER_OPTIONS)
    loop = next(t for t in yaml.safe_load((role / "tasks" / "servers.yml").read_text()) if "loop" in t)
    # By position, with a label that names no server: hosts whose loop item or label differ run the included
    # tasks one group after the other (ansible-core compares them), so values here would serialize the nodes.
    assert loop["loop"] == "{{ range(__model_server_selected | length) | list }}"
    assert loop["loop_control"]["label"] == "server {{ __model_server_index }}"
    given = dict(loop["vars"])
    assert given.pop("__model_server_server") == "{{ __model_server_selected[__model_server_index] }}"
    assert given == {"model_server_" + o: "{{ __model_server_server.model_server_%s }}" % o for o in serving.SERVER_OPTIONS}
    # each is a role option; only the entry's own ones fall back to the role's defaults
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    assert all("model_server_" + o in defaults for o in serving.SERVER_OPTIONS)
    assert all(defaults["model_server_" + o] == v for o, v in serving.SERVER_OWN.items() if v is not None)
