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
