"""module_utils/python_requirements.py with packaging's own Requirement and marker environment."""

from packaging.markers import default_environment
from packaging.requirements import Requirement

from ansible_collections.llmfleet.cluster.plugins.module_utils import python_requirements as logic

ENV = dict(default_environment(), python_version="3.11", python_full_version="3.11.2", sys_platform="linux")


def unmet(requirements, installed):
    return logic.unmet(requirements, installed, ENV, Requirement)


def test_a_pinned_engine_without_dependencies():
    installed = {"xllamacpp": ("2026.10.11549", [])}
    assert unmet(["xllamacpp==2026.10.11549"], installed) == []
    assert unmet(["xllamacpp==2026.10.11600"], installed) == [
        "xllamacpp==2026.10.11600 is installed at 2026.10.11549"]
    assert unmet(["vllm==0.11.0"], installed) == ["vllm==0.11.0 is not installed"]


def test_names_compare_as_pep_503_says():
    assert unmet(["Foo_Bar.baz>=1"], {"foo-bar-baz": ("1.2", [])}) == []
    assert logic.canonical("Foo__Bar.baz") == "foo-bar-baz"


def test_a_dependency_missing_or_at_another_version_is_found_with_who_wants_it():
    installed = {"vllm": ("0.11.0", ["torch==2.8.0", "numpy<2.3"]), "torch": ("2.7.1", []),
                 "numpy": ("2.1.0", [])}
    assert unmet(["vllm==0.11.0"], installed) == ["torch==2.8.0 is installed at 2.7.1 (wanted by vllm 0.11.0)"]
    del installed["numpy"]
    installed["torch"] = ("2.8.0", ["filelock"])
    assert unmet(["vllm==0.11.0"], installed) == [
        "numpy<2.3 is not installed (wanted by vllm 0.11.0)", "filelock is not installed (wanted by torch 2.8.0)"]


def test_markers_for_another_platform_or_an_extra_not_asked_for_are_left_out():
    installed = {"engine": ("1.0", ['pywin32; sys_platform == "win32"', 'ray; extra == "distributed"',
                                    'tomli; python_version < "3.11"'])}
    assert unmet(["engine==1.0"], installed) == []
    assert unmet(["engine[distributed]==1.0"], installed) == [
        "ray; extra == \"distributed\" is not installed (wanted by engine 1.0)"]
    assert unmet(['other; python_version < "3"'], installed) == []


def test_a_path_or_url_is_left_to_pip():
    installed = {"vllm": ("0.11.0", [])}
    assert unmet(["/srv/wheels/vllm-0.11.0-cp38-abi3-manylinux1_x86_64.whl", "vllm @ https://mirror.example/vllm.whl",
                  "vllm==0.11.0"], installed) == [
        "/srv/wheels/vllm-0.11.0-cp38-abi3-manylinux1_x86_64.whl: not a name and version to compare (a path, a URL): pip decides",
        "vllm @ https://mirror.example/vllm.whl: not a name and version to compare (a path, a URL): pip decides"]


def test_an_installed_pre_release_satisfies_as_pip_finds_it():
    assert unmet(["engine>=1.0"], {"engine": ("1.1rc1", [])}) == []


def test_a_dependency_cycle_ends():
    installed = {"a": ("1", ["b"]), "b": ("1", ["a"])}
    assert unmet(["a"], installed) == []


def test_the_first_distribution_of_a_name_wins():
    class Dist:
        def __init__(self, name, version, requires=None):
            self.metadata, self.version, self.requires = {"Name": name}, version, requires

    assert logic.read_installed([Dist("Engine", "2", ["x"]), Dist("engine", "1"), Dist(None, "3")]) == {
        "engine": ("2", ["x"])}


def test_the_virtualenvs_python_version():
    assert logic.venv_python_version("home = /usr/bin\nversion = 3.11.2\n") == "3.11"
    assert logic.venv_python_version("version_info = 3.12.1.final.0\n") == "3.12"
    assert logic.venv_python_version("home = /usr/bin\n") is None
