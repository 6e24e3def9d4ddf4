"""Stale network namespaces of docker-engine hosts (lab/fleetlab/engines.py DockerEngine.sweep_stale_netns).

Seen in CI: a dockerd killed with its CI job left a host's namespace mounted, its veth on the lab
bridge with the address and MAC the next host got again; that host then answered its first SSH
connection and refused the next. The sweep removes every namespace no container owns. Engine and
mount calls are replaced by recorders; the files are real."""

import pytest
from fleetlab import engines
from fleetlab.system import Machine


@pytest.fixture(name="docker")
def fixture_docker(settings, monkeypatch):
    netns = settings.docker_exec_root / "netns"
    netns.mkdir(parents=True)
    for name in ("0a1b2c3d4e5f", "f6e5d4c3b2a1"):
        (netns / name).touch()
    engine = engines.engines(Machine(settings))["docker"]
    engine.umounted, engine.logged, engine.netns = [], [], netns
    monkeypatch.setattr(engines, "run", lambda cmd, check=True: engine.umounted.append(cmd))
    monkeypatch.setattr(engines, "log", engine.logged.append)
    return engine


def test_namespace_of_a_running_host_is_kept_and_an_orphan_removed(docker, monkeypatch, answer):
    calls = []

    def cli(*args, check=True, input_text=None):
        calls.append(args)
        if args[0] == "ps":
            return answer("c0ffee\n")
        return answer(f"{docker.netns}/f6e5d4c3b2a1\n")
    monkeypatch.setattr(docker.machine, "alive", lambda name: 4242)
    monkeypatch.setattr(docker.machine, "docker", cli)
    docker.sweep_stale_netns()
    assert sorted(p.name for p in docker.netns.iterdir()) == ["f6e5d4c3b2a1"]
    assert docker.umounted == [["umount", "-l", str(docker.netns / "0a1b2c3d4e5f")]]
    assert calls[1] == ("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "c0ffee")
    assert "0a1b2c3d4e5f" in docker.logged[0]


def test_without_a_dockerd_every_namespace_is_stale(docker, monkeypatch):
    monkeypatch.setattr(docker.machine, "alive", lambda name: None)
    monkeypatch.setattr(docker.machine, "docker", lambda *a, **k: pytest.fail("no dockerd to ask"))
    docker.sweep_stale_netns()
    assert list(docker.netns.iterdir()) == []
    assert len(docker.umounted) == 2


def test_no_containers_at_all_removes_every_namespace(docker, monkeypatch, answer):
    monkeypatch.setattr(docker.machine, "alive", lambda name: 4242)
    monkeypatch.setattr(docker.machine, "docker", lambda *args, check=True, input_text=None: answer(""))
    docker.sweep_stale_netns()
    assert list(docker.netns.iterdir()) == []
