"""The module's own checks, before it touches anything (the reconcile itself: module_utils/test_replica_units.py)."""

import grp
import os
import sys
from pathlib import Path

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_replicas, serving
from ansible_collections.llmfleet.cluster.plugins.modules import systemd_replicas

GROUP = grp.getgrgid(os.getgid()).gr_name


def test_an_unknown_group_is_refused_by_name(module_runner):
    code, result = module_runner(systemd_replicas.main, {"name": "llm", "replicas": [], "group": "no-such-group-x",
                                                         "_ansible_check_mode": True})
    assert code == 1 and "group no-such-group-x does not exist" in result["msg"]


def test_prune_never_runs_in_the_root_directory(module_runner):
    code, result = module_runner(systemd_replicas.main, {"name": "llm", "group": GROUP, "_ansible_check_mode": True,
                                                         "prune": [{"dir": "/", "pattern": ".*"}]})
    assert code == 1 and "prune: dir must be an absolute directory other than /" in result["msg"]


def test_a_replica_without_its_unit_is_refused(module_runner):
    code, result = module_runner(systemd_replicas.main, {"name": "llm", "group": GROUP, "_ansible_check_mode": True,
                                                         "replicas": [{"index": 0, "environment": ""}]})
    assert code == 1 and "unit" in result["msg"]


def test_remove_containers_stops_and_removes_only_this_servers_containers(module_runner, tmp_path):
    """Over a real unix socket (the in-memory engine of module_utils/docker_engine.py). The units are left
    alone here (replicas omitted): the reconcile of units is module_utils/test_replica_units.py's."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "module_utils"))
    from docker_engine import FakeDocker, serve_unix  # noqa: E402  pylint: disable=import-outside-toplevel
    image = "registry.lab:5000/llama.cpp@sha256:" + "a" * 64
    docker = FakeDocker()
    docker.add_image(image, "sha256:" + "1" * 64)
    path = str(tmp_path / "docker.sock")
    server = serve_unix(docker, path)
    try:
        for name, port in (("llm", 8000), ("other", 9000)):
            planned = [serving.docker_container("llamacpp", image, "llmfleet-%s-0" % name, {"index": 0, "port": port, "gpus": []},
                                                "/srv/models/m.gguf", "m")]
            docker_replicas.reconcile(docker_replicas.Engine(docker_replicas.unix_transport(path)), name, planned)
        args = {"name": "llm", "group": GROUP, "remove_containers": True, "docker_socket": path}
        code, result = module_runner(systemd_replicas.main, dict(args, _ansible_check_mode=True))
        assert code == 0 and result["changed"] and result["containers_removed"] == ["llmfleet-llm-0"]
        assert len(docker.containers) == 2
        code, result = module_runner(systemd_replicas.main, args)
        assert code == 0 and result["changed"] and result["containers_removed"] == ["llmfleet-llm-0"]
        assert [c["Name"] for c in docker.containers.values()] == ["/llmfleet-other-0"]
        code, result = module_runner(systemd_replicas.main, args)
        assert code == 0 and not result["changed"] and result["containers_removed"] == []
    finally:
        server.shutdown()
        server.server_close()
    # A node without the engine's socket never ran containers: nothing to remove.
    code, result = module_runner(systemd_replicas.main, dict(args, docker_socket=str(tmp_path / "none.sock")))
    assert code == 0 and not result["changed"] and result["containers_removed"] == []
