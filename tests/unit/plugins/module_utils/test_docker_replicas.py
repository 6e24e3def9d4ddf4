"""docker_replicas against an in-memory Docker engine (docker_engine.FakeDocker): what one call creates,
recreates, starts and removes, that the stops and the starts run at once, and that containers made by
community.docker.docker_container for the same plan are kept (an inspection taken from a real engine)."""

import json
import threading
from pathlib import Path

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_replicas, serving
from docker_engine import FakeDocker

IMAGE = "registry.lab:5000/llama.cpp@sha256:" + "a" * 64
NEW_IMAGE = "registry.lab:5000/llama.cpp@sha256:" + "b" * 64
FIXTURES = Path(__file__).parent / "fixtures"


def plan(server="llm", count=2, image=IMAGE, base_port=8000, **kwargs):
    return [serving.docker_container("llamacpp", image, "llmfleet-%s-%d" % (server, i),
                                     {"index": i, "port": base_port + i, "gpus": []}, "/srv/models/m.gguf", "m",
                                     **kwargs) for i in range(count)]


@pytest.fixture
def docker():
    engine = FakeDocker()
    engine.add_image(IMAGE, "sha256:" + "1" * 64)
    engine.add_image(NEW_IMAGE, "sha256:" + "2" * 64)
    return engine


def reconcile(docker, containers, server="llm", **kwargs):
    return docker_replicas.reconcile(docker_replicas.Engine(docker.request), server, containers, **kwargs)


def running(docker):
    return sorted(c["Name"][1:] for c in docker.containers.values() if c["State"]["Running"])


def test_sizes_and_durations_read_as_docker_reads_them():
    assert docker_replicas.size_bytes("8g", "x") == 8 * 1024 ** 3
    assert docker_replicas.size_bytes("512M", "x") == 512 * 1024 ** 2
    assert docker_replicas.size_bytes("1.5GiB", "x") == int(1.5 * 1024 ** 3)
    assert docker_replicas.size_bytes("4096", "x") == 4096
    assert docker_replicas.duration_ns("10s", "x") == 10 * 10 ** 9
    assert docker_replicas.duration_ns("500ms", "x") == 5 * 10 ** 8
    assert docker_replicas.duration_ns("2m", "x") == 120 * 10 ** 9
    assert docker_replicas.duration_ns("30", "x") == 30 * 10 ** 9
    with pytest.raises(ValueError, match="llmfleet-llm-0: memory: 'lots' is not a size"):
        docker_replicas.size_bytes("lots", "llmfleet-llm-0: memory")
    with pytest.raises(ValueError, match="'ten seconds' is not a duration"):
        docker_replicas.duration_ns("ten seconds", "x")


def test_the_create_call_carries_every_option_of_the_plan():
    container = serving.docker_container("tgi", "img@sha256:" + "c" * 64, "llmfleet-t-0",
                                         {"index": 0, "port": 9000, "gpus": ["0", "1"]}, "/m/llama", "llama",
                                         bind_address="10.0.0.5", memory="16g", cpus=3.5, stop_timeout=120)
    body = docker_replicas.create_body(container)
    host = body["HostConfig"]
    assert body["Image"] == "img@sha256:" + "c" * 64 and body["Cmd"] == container["command"]
    assert body["ExposedPorts"] == {"80/tcp": {}}
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "10.0.0.5", "HostPort": "9000"}]}
    assert host["Binds"] == ["/m/llama:/m/llama:ro"]
    assert host["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0", "1"],
                                       "Capabilities": [["gpu"]], "Options": {}}]
    assert host["ShmSize"] == 1024 ** 3 and host["Memory"] == 16 * 1024 ** 3 and host["NanoCpus"] == 3500000000
    assert body["StopTimeout"] == 120
    assert body["Healthcheck"]["StartPeriod"] == 600 * 10 ** 9 and body["Healthcheck"]["Retries"] == 3
    assert "IpcMode" not in host
    assert docker_replicas.create_body(serving.docker_container(
        "vllm", "v", "n", {"index": 0, "port": 8000, "gpus": ["0"]}, "/m", "m"))["HostConfig"]["IpcMode"] == "host"


def test_first_call_creates_and_starts_every_replica_and_the_second_changes_nothing(docker):
    first = reconcile(docker, plan())
    assert first["changed"] and first["created"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    assert running(docker) == ["llmfleet-llm-0", "llmfleet-llm-1"]
    before = len(docker.mutations())
    second = reconcile(docker, plan())
    assert not second["changed"] and second["unchanged"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    assert len(docker.mutations()) == before


def test_a_container_docker_container_made_for_the_same_plan_is_kept():
    # Inspected on a lab node (Docker 20.10, Debian 12): llmfleet-llm-0 as community.docker.docker_container
    # created it from serving.docker_container's arguments, and the image it ran (tests/unit/.../fixtures).
    seen = json.loads((FIXTURES / "docker_container_inspect.json").read_text())
    docker = FakeDocker(images={seen["plan"]["image"]: seen["image"]})
    docker.containers[seen["container"]["Id"]] = seen["container"]
    result = reconcile(docker, [seen["plan"]], server=seen["server"])
    assert result["unchanged"] == [seen["plan"]["name"]] and not result["changed"], result["differences"]


@pytest.mark.parametrize("change, differs", [
    (dict(image=NEW_IMAGE), ["image"]),
    (dict(environment={"LLAMA_LOG_COLORS": "0"}), ["env"]),
    (dict(memory="8g", cpus=2), ["memory", "cpus"]),
    (dict(stop_timeout=90), ["stop_timeout"]),
    (dict(bind_address="127.0.0.1"), ["published_ports"]),
    (dict(extra_args=["--no-webui"]), ["command"]),
])
def test_a_replica_that_differs_is_recreated_and_says_why(docker, change, differs):
    reconcile(docker, plan())
    result = reconcile(docker, plan(**change))
    assert result["recreated"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    assert result["differences"] == {"llmfleet-llm-0": differs, "llmfleet-llm-1": differs}
    assert not reconcile(docker, plan(**change))["changed"]


def test_a_variable_taken_out_of_the_plan_recreates_but_the_images_own_do_not(docker):
    reconcile(docker, plan(environment={"EXTRA": "1", "LLAMA_ARG_HOST": "0.0.0.0"}))
    assert not reconcile(docker, plan(environment={"EXTRA": "1", "LLAMA_ARG_HOST": "0.0.0.0"}))["changed"]
    # LLAMA_ARG_HOST=0.0.0.0 is the image's too: without it in the plan the container still has it.
    result = reconcile(docker, plan(environment={"LLAMA_ARG_HOST": "0.0.0.0"}))
    assert result["differences"]["llmfleet-llm-0"] == ["env"]
    assert not reconcile(docker, plan())["changed"]


def test_stops_and_starts_run_at_once_and_every_old_container_goes_before_a_new_one_starts(docker):
    reconcile(docker, plan(count=3))
    before = len(docker.mutations())
    # Each stop waits until the three are stopping: one after the other, the first would time out.
    stopping = threading.Barrier(3, timeout=5)
    docker.hooks[("POST", "stop")] = lambda _ref: stopping.wait()
    starting = threading.Barrier(3, timeout=5)
    docker.hooks[("POST", "start")] = lambda _ref: starting.wait()
    result = reconcile(docker, plan(count=3, image=NEW_IMAGE))
    assert len(result["recreated"]) == 3
    assert not stopping.broken and not starting.broken
    calls = docker.mutations()[before:]
    last_delete = max(i for i, (m, _p) in enumerate(calls) if m == "DELETE")
    first_create = min(i for i, (m, p) in enumerate(calls) if p == "/containers/create")
    assert last_delete < first_create
    assert {c["Config"]["Image"] for c in docker.containers.values()} == {NEW_IMAGE}


def test_a_retired_replica_frees_its_port_for_a_new_one(docker):
    # The base port moved up by one: the new replica 1 wants 8002, which the retired replica 2 holds.
    # Every old container goes before a new one starts, so it is free.
    reconcile(docker, plan(count=3, base_port=8000))
    result = reconcile(docker, plan(count=2, base_port=8001))
    assert result["removed"] == ["llmfleet-llm-2"] and result["recreated"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    assert running(docker) == ["llmfleet-llm-0", "llmfleet-llm-1"]


def test_only_the_servers_own_containers_are_touched(docker):
    reconcile(docker, plan(server="llm-2", count=1, base_port=9000), server="llm-2")
    reconcile(docker, plan(server="llm", count=2))
    result = reconcile(docker, [], server="llm")
    assert result["removed"] == ["llmfleet-llm-0", "llmfleet-llm-1"]
    assert running(docker) == ["llmfleet-llm-2-0"]


def test_several_servers_stop_at_once_then_start_at_once_in_one_call(docker):
    # A node serving two models: both servers' changed containers stop together, then start together
    # (one server after the other, a zone was out of the pool for each in turn).
    servers = [("llm", plan(count=2)), ("gemma", plan(server="gemma", count=1, base_port=8100))]
    docker_replicas.reconcile_servers(docker_replicas.Engine(docker.request), servers)
    before = len(docker.mutations())
    stopping = threading.Barrier(3, timeout=5)
    docker.hooks[("POST", "stop")] = lambda _ref: stopping.wait()
    starting = threading.Barrier(3, timeout=5)
    docker.hooks[("POST", "start")] = lambda _ref: starting.wait()
    result = docker_replicas.reconcile_servers(
        docker_replicas.Engine(docker.request),
        [("llm", plan(count=2, image=NEW_IMAGE)), ("gemma", plan(server="gemma", count=1, base_port=8100, image=NEW_IMAGE))])
    assert result["recreated"] == ["llmfleet-llm-0", "llmfleet-llm-1", "llmfleet-gemma-0"]
    assert not stopping.broken and not starting.broken
    calls = docker.mutations()[before:]
    last_delete = max(i for i, (m, _p) in enumerate(calls) if m == "DELETE")
    first_create = min(i for i, (m, p) in enumerate(calls) if p == "/containers/create")
    assert last_delete < first_create
    assert running(docker) == ["llmfleet-gemma-0", "llmfleet-llm-0", "llmfleet-llm-1"]


def test_a_server_left_alone_in_a_call_for_several_keeps_its_containers(docker):
    engine = docker_replicas.Engine(docker.request)
    docker_replicas.reconcile_servers(engine, [("llm", plan()), ("gemma", plan(server="gemma", count=1, base_port=8100))])
    result = docker_replicas.reconcile_servers(engine, [("llm", plan(image=NEW_IMAGE)),
                                                        ("gemma", plan(server="gemma", count=1, base_port=8100))])
    assert result["recreated"] == ["llmfleet-llm-0", "llmfleet-llm-1"] and result["unchanged"] == ["llmfleet-gemma-0"]


def test_a_bad_plan_of_one_server_changes_no_server(docker):
    engine = docker_replicas.Engine(docker.request)
    docker_replicas.reconcile_servers(engine, [("llm", plan())])
    before = len(docker.mutations())
    with pytest.raises(ValueError, match="gemma"):
        docker_replicas.reconcile_servers(engine, [("llm", plan(image=NEW_IMAGE)), ("gemma", plan(count=1))])
    with pytest.raises(ValueError, match="given twice: llm"):
        docker_replicas.reconcile_servers(engine, [("llm", plan(image=NEW_IMAGE)), ("llm", plan())])
    assert len(docker.mutations()) == before


def test_a_stopped_replica_that_matches_is_only_started(docker):
    reconcile(docker, plan())
    next(iter(docker.containers.values()))["State"] = {"Running": False, "Status": "exited"}
    result = reconcile(docker, plan())
    assert result["started"] == ["llmfleet-llm-0"] and result["unchanged"] == ["llmfleet-llm-1"]
    assert docker.mutations()[-1][1].endswith("/start")
    assert running(docker) == ["llmfleet-llm-0", "llmfleet-llm-1"]


def test_check_mode_reports_and_changes_nothing(docker):
    reconcile(docker, plan(count=3))
    before = len(docker.mutations())
    result = reconcile(docker, plan(count=2, image=NEW_IMAGE), check_mode=True)
    assert result["changed"] and result["removed"] == ["llmfleet-llm-2"]
    assert len(result["recreated"]) == 2 and len(docker.mutations()) == before
    # An image not pulled yet (check mode pulls nothing) is a difference, not an error.
    result = reconcile(docker, plan(image="registry.lab:5000/other@sha256:" + "d" * 64), check_mode=True)
    assert result["differences"]["llmfleet-llm-0"] == ["image"]


def test_a_missing_image_is_refused_before_any_replica_stops(docker):
    reconcile(docker, plan())
    before = len(docker.mutations())
    with pytest.raises(docker_replicas.EngineError, match="the node lacks the image registry.lab:5000/other@"):
        reconcile(docker, plan(image="registry.lab:5000/other@sha256:" + "d" * 64))
    assert len(docker.mutations()) == before and len(running(docker)) == 2


def test_one_replica_failing_to_start_leaves_the_others_up_and_names_it(docker):
    reconcile(docker, plan())
    original = docker.request

    def refuse_one(method, url, body=None, timeout=None):
        if method == "POST" and url.startswith("/containers/create") and url.endswith("llmfleet-llm-1"):
            return 500, {"message": "OCI runtime create failed"}
        return original(method, url, body=body, timeout=timeout)

    with pytest.raises(docker_replicas.EngineError, match=r"llmfleet-llm-1: POST /containers/create: 500 OCI runtime"):
        docker_replicas.reconcile(docker_replicas.Engine(refuse_one), "llm", plan(image=NEW_IMAGE))
    assert running(docker) == ["llmfleet-llm-0"]


def test_a_container_outside_the_naming_is_refused(docker):
    with pytest.raises(ValueError, match="'web-0': a replica of llm is named llmfleet-llm-INDEX"):
        reconcile(docker, [dict(plan()[0], name="web-0")])


def test_a_stop_may_take_the_containers_own_stop_timeout(docker):
    reconcile(docker, plan(stop_timeout=300))
    seen = []
    original = docker.request

    def record(method, url, body=None, timeout=None):
        if url.endswith("/stop"):
            seen.append(timeout)
        return original(method, url, body=body, timeout=timeout)

    docker_replicas.reconcile(docker_replicas.Engine(record), "llm", [])
    assert seen == [300 + docker_replicas.MARGIN] * 2


def test_an_unexpected_error_in_one_replicas_call_fails_the_reconcile(docker):
    # Not an EngineError (a broken connection mid-answer raises http.client's own exceptions): the
    # thread's error must still reach the caller, not vanish with the thread.
    reconcile(docker, plan())
    original = docker.request

    def broken(method, url, body=None, timeout=None):
        if method == "POST" and url.endswith("/stop"):
            raise RuntimeError("connection broke mid-answer")
        return original(method, url, body=body, timeout=timeout)

    with pytest.raises(docker_replicas.EngineError, match="llmfleet-llm-0: connection broke mid-answer"):
        docker_replicas.reconcile(docker_replicas.Engine(broken), "llm", plan(image=NEW_IMAGE))


def test_a_replica_that_cannot_be_removed_does_not_leave_the_others_down(docker):
    reconcile(docker, plan())
    original = docker.request
    first = next(c["Id"] for c in docker.containers.values() if c["Name"] == "/llmfleet-llm-0")

    def stuck(method, url, body=None, timeout=None):
        if method == "POST" and url == "/containers/%s/stop" % first:
            return 500, {"message": "cannot stop container: permission denied"}
        return original(method, url, body=body, timeout=timeout)

    with pytest.raises(docker_replicas.EngineError, match="llmfleet-llm-0: POST /containers/[0-9a-f]+/stop: 500"):
        docker_replicas.reconcile(docker_replicas.Engine(stuck), "llm", plan(image=NEW_IMAGE))
    # The stuck one still runs its old image; the other was recreated on the new one and runs.
    images = {c["Name"][1:]: c["Config"]["Image"] for c in docker.containers.values() if c["State"]["Running"]}
    assert images == {"llmfleet-llm-0": IMAGE, "llmfleet-llm-1": NEW_IMAGE}
