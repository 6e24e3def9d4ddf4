"""The collection as users get it: built with ansible-galaxy, installed from the tarball into an empty
collections path, and run from there (the validation play on the example inventory, which touches no
host) - no repository, no .collections link."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What a user's tarball may hold at its top level: the collection, nothing of the lab or the tests.
SHIPPED = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "galaxy.yml", "site.yml", "changelogs", "docs",
           "inventories", "meta", "playbooks", "plugins", "roles"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [tarball] = out.glob("llmfleet-cluster-*.tar.gz")
    return tarball


def test_the_tarball_holds_the_collection_only(built):
    with tarfile.open(built) as tar:
        names = tar.getnames()
    assert {name.split("/")[0] for name in names} <= SHIPPED, sorted({name.split("/")[0] for name in names} - SHIPPED)
    assert not [n for n in names if "__pycache__" in n or n.startswith("inventories/lab")]
    assert "LICENSE" in names and "roles/load_balancer/files/llmfleet_budget.lua" in names
    # 0.25 MB today; the promtool binary of .tools alone once made it 13 MB.
    assert built.stat().st_size < 1024 * 1024


def test_the_installed_collection_runs_without_the_repository(built, tmp_path):
    collections = tmp_path / "collections"
    installed = collections / "ansible_collections" / "llmfleet" / "cluster"
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")
    # Away from the repository's ansible.cfg (its .collections link): only the installed copy, and the
    # community collections the ansible package bundles, can be found.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(collections),
                           str(built)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and (installed / "MANIFEST.json").exists(), proc.stdout + proc.stderr
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(installed / "inventories/example"),
                           str(installed / "playbooks/validate.yml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    [check] = [task["hosts"] for play in report["plays"] for task in play["tasks"]][:1]
    [result] = check.values()
    assert (result["hosts"], result["problems"]) == (9, [])
    doc = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", "llmfleet.cluster.load_balancer"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert doc.returncode == 0 and "load_balancer_token_budget_default_max_tokens" in doc.stdout, doc.stderr
    assert str(installed) in doc.stdout and str(REPO) not in doc.stdout
