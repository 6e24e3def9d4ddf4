"""The module over a real unix socket (an HTTP server answering as the Docker engine does: the
in-memory engine of module_utils/docker_engine.py), and its own checks (the reconcile itself:
module_utils/test_docker_replicas.py)."""

import sys
from pathlib import Path

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import serving
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
