"""The lab tool's package (lab/fleetlab) imported from the repository, and settings whose state, owner
file and docker exec root are a test's own directory."""

import sys
from pathlib import Path

import pytest

LAB_DIR = Path(__file__).resolve().parents[3] / "lab"
if str(LAB_DIR) not in sys.path:
    sys.path.insert(0, str(LAB_DIR))

from fleetlab.settings import Settings  # noqa: E402  (lab/fleetlab, put on the path above)


@pytest.fixture(name="settings")
def fixture_settings(tmp_path):
    return Settings(state=tmp_path / "state", owner_file=tmp_path / "run" / "owner.json",
                    docker_exec_root=tmp_path / "exec")


def completed(stdout="", returncode=0):
    """What run() and the CLIs return: a completed process."""
    return type("Completed", (), {"stdout": stdout, "stderr": "", "returncode": returncode})()


@pytest.fixture(name="answer")
def fixture_answer():
    return completed
