"""The python_requirements module on a real virtualenv made here (its logic: module_utils tests)."""

import subprocess
import sys

import pytest
from ansible_collections.llmfleet.cluster.plugins.modules import python_requirements


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A virtualenv of this interpreter, without pip, holding three distributions' metadata (one with a
    malformed Requires-Dist)."""
    path = tmp_path_factory.mktemp("venv") / "engine"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = path / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    for name, version, requires in (("Engine_Core", "1.2.0", ["helper>=2"]), ("helper", "2.1", []),
                                    ("broken", "1.0", ["helper ==="])):
        info = site / ("%s-%s.dist-info" % (name, version))
        info.mkdir(parents=True)
        lines = ["Metadata-Version: 2.1", "Name: " + name, "Version: " + version]
        info.joinpath("METADATA").write_text("\n".join(lines + ["Requires-Dist: " + r for r in requires]) + "\n")
    return path


def test_satisfied_when_the_engine_and_its_dependency_are_there(module_runner, venv):
    code, result = module_runner(python_requirements.main, {"virtualenv": str(venv),
                                                            "requirements": ["engine-core==1.2.0"]})
    assert code == 0 and result == dict(result, changed=False, satisfied=True, unmet=[])


def test_another_version_is_not_satisfied(module_runner, venv):
    code, result = module_runner(python_requirements.main, {"virtualenv": str(venv),
                                                            "requirements": ["engine-core==1.3.0", "helper>=3"]})
    assert code == 0 and not result["satisfied"]
    assert result["unmet"] == ["engine-core==1.3.0 is installed at 1.2.0", "helper>=3 is installed at 2.1"]


def test_a_missing_or_foreign_virtualenv_is_not_satisfied(module_runner, venv, tmp_path):
    code, result = module_runner(python_requirements.main, {"virtualenv": str(tmp_path / "none"),
                                                            "requirements": ["engine-core"]})
    assert code == 0 and not result["satisfied"] and "no pyvenv.cfg" in result["unmet"][0]
    other = tmp_path / "other"
    other.mkdir()
    other.joinpath("pyvenv.cfg").write_text("home = /usr/bin\nversion = 2.7.18\n")
    code, result = module_runner(python_requirements.main, {"virtualenv": str(other), "requirements": ["x"]})
    assert code == 0 and not result["satisfied"] and "made with Python 2.7" in result["unmet"][0]


def test_what_cannot_be_compared_is_not_satisfied_and_left_to_pip(module_runner, venv):
    code, result = module_runner(python_requirements.main, {"virtualenv": str(venv), "requirements": ["engine ==="]})
    assert code == 0 and not result["satisfied"] and result["unmet"][0].endswith("pip decides")
    code, result = module_runner(python_requirements.main, {"virtualenv": str(venv), "requirements": ["broken"]})
    assert code == 0 and not result["satisfied"] and result["unmet"][0].startswith("cannot compare: ")
