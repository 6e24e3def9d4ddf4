"""docs/collection is what scripts/docs generates from the sources (argument_specs, DOCUMENTATION):
a source that does not validate, or pages left behind by a change, fail here."""

import filecmp
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "collection"


def differences(left, right):
    cmp = filecmp.dircmp(left, right)
    found = [f"{cmp.left}/{name}" for name in cmp.left_only + cmp.diff_files + cmp.funny_files] + \
        [f"{cmp.right}/{name}" for name in cmp.right_only]
    for sub in cmp.common_dirs:
        found += differences(Path(left) / sub, Path(right) / sub)
    return found


def test_the_committed_reference_is_what_the_sources_generate(tmp_path):
    proc = subprocess.run([str(REPO / "scripts" / "docs"), str(tmp_path / "docs")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    stale = differences(COMMITTED, tmp_path / "docs")
    assert not stale, f"run scripts/docs: {stale[:10]}"
    # Every role, module and filter has its page.
    pages = {p.name for p in COMMITTED.iterdir()}
    roles = {p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()}
    assert {f"{role}_role.rst" for role in roles} <= pages
    modules = {p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}
    assert {f"{module}_module.rst" for module in modules} <= pages


def test_every_filter_has_its_own_documentation():
    """ansible-doc reads one DOCUMENTATION per Python file: a filter file with several filters documents
    each one in a YAML file of the filter's name beside it; a file of one filter may keep it inline."""
    import importlib

    missing = []
    for path in sorted((REPO / "plugins" / "filter").glob("*.py")):
        module = importlib.import_module("ansible_collections.llmfleet.cluster.plugins.filter." + path.stem)
        names = sorted(module.FilterModule().filters())
        inline = "DOCUMENTATION = " in path.read_text()
        for name in names:
            if not (path.parent / f"{name}.yml").exists() and not (inline and len(names) == 1):
                missing.append(f"{path.name}: {name}")
    assert not missing, missing
