"""The execution environment's definition (ee/execution-environment.yml), rendered by ansible-builder
itself (`create`: the build context and Containerfile, no image): it pins what requirements.txt pins,
installs the collection from its tarball without Galaxy, takes pip's index from the build and keeps
it out of the image, and reads the collection's own needs from meta/execution-environment.yml.
The image is built and run against the lab by tests/integration/test_execution_environment.py."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def pins():
    found = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


@pytest.fixture(name="containerfile", scope="module")
def fixture_containerfile(tmp_path_factory):
    root = tmp_path_factory.mktemp("ee")
    definition = root / "def"
    (definition / "build" / "collections").mkdir(parents=True)
    for name in ("execution-environment.yml", "requirements.yml"):
        shutil.copy(REPO / "ee" / name, definition / name)
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "--file", str(definition / "execution-environment.yml"),
                           "--context", str(root / "context")], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (root / "context" / "Containerfile").read_text()


def test_ansible_core_and_runner_are_pinned_as_in_requirements(containerfile):
    wanted = pins()
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert refs == [f"ansible-core=={wanted['ansible-core']}", f"ansible-runner=={wanted['ansible-runner']}"]
    python = yaml.safe_load((REPO / "ee" / "execution-environment.yml").read_text())["dependencies"]["python"]
    assert python == [f"ansible=={wanted['ansible']}"]


def test_the_collection_comes_from_its_tarball_without_galaxy(containerfile):
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--no-deps"' in containerfile
    assert "COPY _build/collections/ /tmp/llmfleet-collections/" in containerfile
    [entry] = yaml.safe_load((REPO / "ee" / "requirements.yml").read_text())["collections"]
    assert entry == {"name": "/tmp/llmfleet-collections/llmfleet-cluster.tar.gz", "type": "file"}
    assert "ansible-doc -t role llmfleet.cluster.model_server" in containerfile


def test_pips_index_comes_from_the_build_before_any_pip_step_and_is_removed(containerfile):
    lines = containerfile.splitlines()
    index = lines.index("ARG PIP_INDEX_URL=https://pypi.org/simple")
    written = next(i for i, line in enumerate(lines) if "/etc/pip.conf" in line)
    pip_steps = [i for i, line in enumerate(lines) if re.search(r"pip install|/output/scripts/(assemble|install-from-bindep)", line)]
    assert index < written < min(pip_steps)
    removed = next(i for i, line in enumerate(lines) if line.startswith("RUN rm -f /etc/pip.conf"))
    assert removed > max(pip_steps)
    # Every stage that installs starts from the base stage, where the index is written.
    assert set(re.findall(r"^FROM (\S+) AS (?:galaxy|builder|final)$", containerfile, re.M)) == {"base"}


def test_the_collection_tells_ansible_builder_what_it_needs():
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    python = (REPO / meta["dependencies"]["python"]).read_text()
    system = (REPO / meta["dependencies"]["system"]).read_text()
    wanted = pins()
    for package in ("jmespath", "netaddr"):
        assert re.search(rf"^{package}>=", python, re.M), package
        assert package in wanted  # and the controller here has it
    assert "openssh-client [platform:dpkg]" in system
    assert re.search(r"^skopeo \[!compile\]$", system, re.M)  # the registry role's pushes run on the controller


def test_the_definition_is_not_shipped_in_the_collection():
    assert "ee" in yaml.safe_load((REPO / "galaxy.yml").read_text())["build_ignore"]
