"""The module over a real unix socket (an HTTP server answering as the Docker engine does: the
in-memory engine of module_utils/docker_engine.py), and its own checks (the reconcile itself:
module_utils/test_docker_replicas.py)."""

import sys
from pathlib import Path

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import replica_units, serving
from ansible_collections.llmfleet.cluster.plugins.modules import docker_replicas

sys.path.insert(0, str(Path(__file__).parents[1] / "module_utils"))
from docker_engine import FakeDocker, serve_unix  # noqa: E402  pylint: disable=wrong-import-position

IMAGE = "registry.lab:5000/llama.cpp@sha256:" + "a" * 64


def containers(count, image=IMAGE):
    return [serving.docker_container("llamacpp", image, "llmfleet-llm-%d" % i, {"index": i, "port": 8000 + i, "gpus": []},
                                     "/srv/models/m.gguf", "m") for i in range(count)]


@pytest.fixture
def engine(tmp_path):
    docker = FakeDocker()
    docker.add_image(IMAGE, "sha256:" + "1" * 64)
    path = str(tmp_path / "docker.sock")
    server = serve_unix(docker, path)
    yield docker, path
    server.shutdown()
    server.server_close()


def test_the_module_runs_the_plan_over_the_engines_socket_and_is_idempotent(module_runner, engine):
    docker, path = engine
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(2), "docker_socket": path})
    assert code == 0 and result["changed"] and result["created"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    assert sorted(c["Name"] for c in docker.containers.values() if c["State"]["Running"]) == [
        "/llmfleet-llm-0", "/llmfleet-llm-1"]
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(2), "docker_socket": path})
    assert code == 0 and not result["changed"] and result["unchanged"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(1), "docker_socket": path,
                                                        "_ansible_check_mode": True})
    assert code == 0 and result["changed"] and result["removed"] == ["llmfleet-llm-1"] and len(docker.containers) == 2


def test_an_engine_error_fails_the_task_with_the_servers_name(module_runner, engine):
    docker, path = engine
    code, result = module_runner(docker_replicas.main, {"name": "llm", "docker_socket": path,
                                                        "containers": containers(1, image="other@sha256:" + "d" * 64)})
    assert code == 1 and result["msg"].startswith("llm: the node lacks the image other@sha256:")
    assert not docker.containers


def test_a_node_without_an_engine_has_nothing_to_retire_and_cannot_run_containers(module_runner, tmp_path):
    missing = str(tmp_path / "none.sock")
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": [], "docker_socket": missing})
    assert code == 0 and not result["changed"]
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(1), "docker_socket": missing})
    assert code == 1 and "no Docker engine on the node (no socket %s)" % missing in result["msg"]
    # --check on a node the docker role has not run on yet: every replica would be created.
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(2), "docker_socket": missing,
                                                        "_ansible_check_mode": True})
    assert code == 0 and result["changed"] and result["created"] == ["llmfleet-llm-0", "llmfleet-llm-1"]


def test_an_engine_that_does_not_answer_is_named(module_runner, tmp_path):
    dead = tmp_path / "dead.sock"
    dead.write_text("")  # a path that is there but no socket
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": [], "docker_socket": str(dead)})
    assert code == 1 and "the Docker engine at %s did not answer GET /containers/json" % dead in result["msg"]


@pytest.fixture
def native_replicas(tmp_path, monkeypatch):
    """The node's native replicas of llm (two units and their environment files) and of another server, in a
    temporary unit directory with a fake systemctl: what remove_units acts on."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "module_utils"))
    from test_replica_units import FakeSystemctl  # noqa: E402  pylint: disable=import-outside-toplevel
    units, env = tmp_path / "units", tmp_path / "default"
    units.mkdir()
    env.mkdir()
    active = []
    for server, index in (("llm", 0), ("llm", 1), ("other", 0)):
        (units / replica_units.unit_name(server, index)).write_text("[Service]\n")
        (env / ("llmfleet-%s-%d" % (server, index))).write_text("PORT=1\n")
        active.append(replica_units.unit_name(server, index))
    systemctl, real_node = FakeSystemctl(active=active, enabled=active), replica_units.Node
    systemctl.watchers = []

    def watched(args):
        for watcher in systemctl.watchers:
            watcher(args)
        return systemctl(args)
    monkeypatch.setattr(replica_units, "Node", lambda _run: real_node(watched, unit_dir=str(units), env_dir=str(env)))
    monkeypatch.setattr(docker_replicas.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/bin/" + name)
    return units, systemctl


def test_remove_units_retires_the_servers_native_replicas_before_its_containers_start(
        module_runner, engine, native_replicas):
    docker, path = engine
    units, systemctl = native_replicas
    seen = []
    systemctl.watchers.append(lambda args: seen.append((args[0], len(docker.containers))))
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(2), "docker_socket": path,
                                                        "remove_units": True})
    assert code == 0 and result["changed"]
    # The units were stopped while no container of the server existed yet (they hold the same ports).
    assert ("disable", 0) in seen and len(docker.containers) == 2
    assert result["units_retired"] == ["llmfleet-llm-0.service", "llmfleet-llm-1.service"]
    assert result["created"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    # Only this server's units went; another server's native replica still runs.
    assert sorted(p.name for p in units.iterdir()) == ["llmfleet-other-0.service"]
    assert systemctl.active == {"llmfleet-other-0.service"}
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(2), "docker_socket": path,
                                                        "remove_units": True})
    assert code == 0 and not result["changed"] and result["units_retired"] == []


def test_remove_units_in_check_mode_and_without_an_engine(module_runner, tmp_path, native_replicas):
    units, systemctl = native_replicas
    missing = str(tmp_path / "none.sock")
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(1), "docker_socket": missing,
                                                        "remove_units": True, "_ansible_check_mode": True})
    assert code == 0 and result["changed"] and result["units_retired"] == ["llmfleet-llm-0.service", "llmfleet-llm-1.service"]
    assert len(list(units.iterdir())) == 3 and systemctl.verbs() == []
    # No engine and containers planned: refused before any unit is touched (the native replicas keep serving).
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": containers(1), "docker_socket": missing,
                                                        "remove_units": True})
    assert code == 1 and "no Docker engine on the node" in result["msg"]
    assert len(list(units.iterdir())) == 3 and systemctl.verbs() == []
    # No engine and nothing planned (a server retired on a native node): its units still go.
    code, result = module_runner(docker_replicas.main, {"name": "llm", "containers": [], "docker_socket": missing,
                                                        "remove_units": True})
    assert code == 0 and result["changed"] and result["units_retired"] == ["llmfleet-llm-0.service", "llmfleet-llm-1.service"]


def test_servers_runs_several_servers_in_one_call_and_retires_each_ones_units(module_runner, engine, native_replicas):
    docker, path = engine
    units, systemctl = native_replicas
    other = [serving.docker_container("llamacpp", IMAGE, "llmfleet-other-0", {"index": 0, "port": 8100, "gpus": []},
                                      "/srv/models/m.gguf", "m")]
    args = {"servers": [{"name": "llm", "containers": containers(2)}, {"name": "other", "containers": other}],
            "docker_socket": path, "remove_units": True}
    code, result = module_runner(docker_replicas.main, args)
    assert code == 0 and result["changed"]
    assert result["created"] == ["llmfleet-llm-0", "llmfleet-llm-1", "llmfleet-other-0"]
    assert result["units_retired"] == ["llmfleet-llm-0.service", "llmfleet-llm-1.service", "llmfleet-other-0.service"]
    assert not list(units.iterdir()) and systemctl.active == set()
    code, result = module_runner(docker_replicas.main, args)
    assert code == 0 and not result["changed"] and len(result["unchanged"]) == 3


@pytest.mark.parametrize("args, message", [
    ({"name": "llm", "servers": [{"name": "llm", "containers": []}]}, "mutually exclusive"),
    ({"docker_socket": "/none"}, "one of the following is required: name, servers"),
    ({"name": "llm"}, "parameters are required together: name, containers"),
])
def test_a_server_is_given_either_by_name_and_containers_or_in_servers(module_runner, args, message):
    code, result = module_runner(docker_replicas.main, args)
    assert code == 1 and message in result["msg"]


def test_a_server_given_twice_is_refused_before_its_units_are_retired(module_runner, engine, native_replicas):
    _docker, path = engine
    units, systemctl = native_replicas
    code, result = module_runner(docker_replicas.main, {
        "servers": [{"name": "llm", "containers": containers(1)}, {"name": "llm", "containers": []}],
        "docker_socket": path, "remove_units": True})
    assert code == 1 and "a server is given twice: llm" in result["msg"]
    assert len(list(units.iterdir())) == 3 and systemctl.verbs() == []
