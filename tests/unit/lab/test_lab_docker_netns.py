"""Stale network namespaces of docker-engine hosts (lab/llmfleet_lab.py sweep_stale_netns).

Seen in CI: a dockerd killed with its CI job left a host's namespace mounted, its veth on the lab
bridge with the address and MAC the next host got again; that host then answered its first SSH
connection and refused the next. The sweep removes every namespace no container owns. Engine and
mount calls are replaced by recorders; the files are real."""

import pytest


@pytest.fixture(name="lab")
def fixture_lab(lab_module, monkeypatch, tmp_path):
    netns = tmp_path / "netns"
    netns.mkdir()
    for name in ("0a1b2c3d4e5f", "f6e5d4c3b2a1"):
        (netns / name).touch()
    monkeypatch.setattr(lab_module, "DOCKER_EXEC_ROOT", tmp_path)
    lab_module.umounted = []
    lab_module.logged = []
    monkeypatch.setattr(lab_module, "run", lambda cmd, check=True: lab_module.umounted.append(cmd))
    monkeypatch.setattr(lab_module, "log", lab_module.logged.append)
    lab_module.netns = netns
    return lab_module


def answer(stdout):
    return type("Completed", (), {"stdout": stdout, "returncode": 0})()


def test_namespace_of_a_running_host_is_kept_and_an_orphan_removed(lab, monkeypatch):
    calls = []

    def docker(*args, check=True):
        calls.append(args)
        if args[0] == "ps":
            return answer("c0ffee\n")
        return answer(f"{lab.netns}/f6e5d4c3b2a1\n")
    monkeypatch.setattr(lab, "_alive", lambda name: 4242)
    monkeypatch.setattr(lab, "docker", docker)
    lab.sweep_stale_netns()
    assert sorted(p.name for p in lab.netns.iterdir()) == ["f6e5d4c3b2a1"]
    assert lab.umounted == [["umount", "-l", str(lab.netns / "0a1b2c3d4e5f")]]
    assert calls[1] == ("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "c0ffee")
    assert "0a1b2c3d4e5f" in lab.logged[0]


def test_without_a_dockerd_every_namespace_is_stale(lab, monkeypatch):
    monkeypatch.setattr(lab, "_alive", lambda name: None)
    monkeypatch.setattr(lab, "docker", lambda *a, **k: pytest.fail("no dockerd to ask"))
    lab.sweep_stale_netns()
    assert list(lab.netns.iterdir()) == []
    assert len(lab.umounted) == 2


def test_no_containers_at_all_removes_every_namespace(lab, monkeypatch):
    monkeypatch.setattr(lab, "_alive", lambda name: 4242)
    monkeypatch.setattr(lab, "docker", lambda *args, check=True: answer(""))
    lab.sweep_stale_netns()
    assert list(lab.netns.iterdir()) == []
