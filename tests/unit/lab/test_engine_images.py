"""The lab's engine image builds (lab/fleetlab/engine_images.py): built once per recipe, in order (b2 and
broken on top of b1), without network, saved as docker archives; kept while the recipe holds.
podman and apt-get are recorded; the files are real."""

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[3] / "lab" / "fleetlab" / "engine_images.py"


@pytest.fixture(name="images")
def fixture_images(monkeypatch):
    spec = importlib.util.spec_from_file_location("engine_images", PATH)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "engine_images", module)
    spec.loader.exec_module(module)
    module.downloads = []
    monkeypatch.setattr(module.subprocess, "run", lambda cmd, cwd, **kw: module.downloads.append((cmd, Path(cwd).name)))
    return module


def test_builds_once_in_order_without_network_then_keeps_them(images, tmp_path):
    wheel = tmp_path / "xllamacpp-1-cp310-abi3-manylinux.whl"
    wheel.write_bytes(b"wheel")
    calls = []

    def podman(*args):
        calls.append(args)
        if args[0] == "build":
            containerfile = Path(args[args.index("-f") + 1]).read_text()
            calls.append(("containerfile", containerfile))
        if args[0] == "save":
            Path(args[args.index("-o") + 1]).write_text("archive")

    out = tmp_path / "images"
    paths = images.ensure(podman, "localhost/base:1", wheel, out, lambda msg: None)
    builds = [c for c in calls if c[0] == "build"]
    assert [b[b.index("-t") + 1] for b in builds] == [f"{images.NAME}:b1", f"{images.NAME}:b2", f"{images.NAME}:broken"]
    assert all(b[1:3] == ("--network", "none") for b in builds)
    files = [c[1] for c in calls if c[0] == "containerfile"]
    assert files[0].startswith("FROM localhost/base:1\n") and "ENTRYPOINT " + images.ENTRYPOINT in files[0]
    assert files[1].startswith(f"FROM {images.NAME}:b1\n") and files[2].startswith(f"FROM {images.NAME}:b1\n")
    assert "exit 3" in files[2]
    assert images.downloads == [(["apt-get", "download", "-q", "libgomp1"], "build")]
    assert {b: p.read_text() for b, p in paths.items()} == {"b1": "archive", "b2": "archive", "broken": "archive"}
    assert not list(out.glob("*.partial"))
    calls.clear()
    assert images.ensure(podman, "localhost/base:1", wheel, out, lambda msg: None) == paths
    assert calls == []
    # A new base image is a new recipe: built again.
    images.ensure(podman, "localhost/base:2", wheel, out, lambda msg: None)
    assert [c[0] for c in calls].count("build") == 3


def test_the_recipe_follows_the_launcher_the_wheel_and_the_base(images, tmp_path, monkeypatch):
    wheel = tmp_path / "xllamacpp-1.whl"
    first = images.recipe("base:1", wheel)
    assert images.recipe("base:2", wheel) != first
    assert images.recipe("base:1", tmp_path / "xllamacpp-2.whl") != first
    launcher = tmp_path / "launcher.py"
    launcher.write_text("changed")
    monkeypatch.setattr(images, "LAUNCHER", launcher)
    assert images.recipe("base:1", wheel) != first
