import json

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import serving

SHA = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def test_replicas_count_up_from_the_base_port_and_take_their_gpus_in_order():
    assert serving.plan_replicas(3, 8000, [0, 1, 2, 3, 4, 5], 2) == [
        {"index": 0, "port": 8000, "gpus": ["0", "1"]},
        {"index": 1, "port": 8001, "gpus": ["2", "3"]},
        {"index": 2, "port": 8002, "gpus": ["4", "5"]},
    ]


def test_cpu_replicas_get_no_gpu():
    expected = [{"index": 0, "port": 9000, "gpus": []}, {"index": 1, "port": 9001, "gpus": []}]
    assert serving.plan_replicas(2, 9000) == expected


def test_explicit_replicas_replace_the_layout_and_accept_uuids():
    replicas = serving.plan_replicas(1, 8000, explicit=[{"port": 8100, "gpus": ["GPU-3f2a-11"]}, {"port": "8101", "gpus": 2}])
    assert replicas == [{"index": 0, "port": 8100, "gpus": ["GPU-3f2a-11"]}, {"index": 1, "port": 8101, "gpus": ["2"]}]


@pytest.mark.parametrize("kwargs,message", [
    ({"explicit": [{"port": 8000}, {"port": 8000}]},
     "model_server_replicas[1]: port 8000 is already used by replica 0: every replica needs its own port"),
    ({"count": 2, "gpu_ids": [0], "gpus_per_replica": 1},
     "model_server_gpu_ids: 2 replicas x 1 GPUs need 2 GPU ids, 1 given (0)"),
    ({"count": 2, "gpus_per_replica": 1}, "model_server_gpu_ids: 2 replicas x 1 GPUs need 2 GPU ids, 0 given (none)"),
    ({"explicit": [{"port": 8000, "gpus": [0]}, {"port": 8001, "gpus": [0]}]},
     "model_server_replicas[1]: GPU 0 is already given to replica 0"),
    ({"explicit": [{"port": 8000, "gpus": ["first"]}]}, "model_server_replicas[0]: gpus: 'first' is not a GPU index or UUID"),
    ({"explicit": [{"port": 70000}]}, "model_server_replicas[0]: port:"),
    ({"explicit": [{"gpus": [0]}]}, "model_server_replicas[0]: port: not set"),
    ({"explicit": [{"port": 8000, "gpu": [0]}]}, "model_server_replicas[0]: unknown keys gpu (port, gpus)"),
    ({"count": 0}, "model_server_replica_count: 0 is not a whole number >= 1"),
    ({"count": 1, "base_port": 0}, "model_server_base_port:"),
    ({"count": 6, "base_port": 65531}, "model_server_replica_count/model_server_base_port (replica 5): port:"),
])
def test_bad_layouts_name_the_variable(kwargs, message):
    args = {"count": 1, "base_port": 8000, "gpu_ids": [], "gpus_per_replica": 0, "explicit": []}
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        serving.plan_replicas(**args)
    assert str(err.value).startswith(message), str(err.value)


def test_unknown_engine():
    assert serving.engine_problem("tensorrt") == "'tensorrt' is not a known engine (llamacpp, ollama, tgi, vllm)"
    assert serving.engine_problem("vllm") == ""


HOSTVARS = {
    "model-b1": {"llmfleet_zone": "zone-b", "model_server_plan": {
        "address": "10.0.2.11", "health_path": "/health", "replicas": [{"index": 0, "port": 8000, "gpus": []}]}},
    "model-a10": {"llmfleet_zone": "zone-a", "model_server_plan": {
        "address": "10.0.1.20", "health_path": "/health", "replicas": [{"index": 0, "port": 8000, "gpus": []}]}},
    "model-a2": {"llmfleet_zone": "zone-a", "model_server_plan": {
        "address": "10.0.1.12", "health_path": "/health",
        "replicas": [{"index": 0, "port": 8000, "gpus": ["0"]}, {"index": 1, "port": 8001, "gpus": ["1"]}]}},
}


def test_lb_members_in_zone_then_natural_order_with_stable_names():
    members = serving.lb_members(["model-b1", "model-a10", "model-a2"], HOSTVARS)
    assert [(m["name"], m["zone"], m["address"], m["port"]) for m in members] == [
        ("model-a2-r0", "zone-a", "10.0.1.12", 8000),
        ("model-a2-r1", "zone-a", "10.0.1.12", 8001),
        ("model-a10-r0", "zone-a", "10.0.1.20", 8000),
        ("model-b1-r0", "zone-b", "10.0.2.11", 8000),
    ]


def test_lb_members_refuse_nodes_without_a_plan():
    with pytest.raises(ValueError, match="no replica plan for model-c1: run the load balancers together with the model nodes"):
        serving.lb_members(["model-a2", "model-c1"], dict(HOSTVARS, **{"model-c1": {"llmfleet_zone": "zone-c"}}))


def test_vllm_in_docker_listens_on_its_container_port_with_tensor_parallelism():
    replica = {"index": 1, "port": 8001, "gpus": ["2", "3"]}
    params = serving.docker_container("vllm", "", "llmfleet-llm-1", replica, "/srv/models/qwen", "qwen")
    assert params["image"] == serving.ENGINES["vllm"]["image"]
    assert params["published_ports"] == ["0.0.0.0:8001:8000"]
    assert params["command"][:6] == ["--model", "/srv/models/qwen", "--served-model-name", "qwen", "--host", "0.0.0.0"]
    assert params["command"][6:8] == ["--port", "8000"]
    assert ["--tensor-parallel-size", "2"] == params["command"][-2:]
    assert params["device_requests"] == [{"driver": "nvidia", "device_ids": ["2", "3"], "capabilities": [["gpu"]]}]
    assert params["ipc_mode"] == "host"
    assert params["volumes"] == ["/srv/models/qwen:/srv/models/qwen:ro"]
    assert params["stop_timeout"] == 60
    assert "CUDA_VISIBLE_DEVICES" not in params["env"]  # the runtime hands the devices over


def test_tgi_gets_shared_memory_and_a_stop_timeout_past_its_drain():
    params = serving.docker_container("tgi", "", "t", {"index": 0, "port": 8000, "gpus": ["0"]}, "/m/llama", "llama")
    assert params["shm_size"] == "1g" and params["stop_timeout"] > 90
    assert "ipc_mode" not in params


def test_llamacpp_gguf_mounts_its_directory_and_offloads_to_gpu():
    params = serving.docker_container("llamacpp", "img", "l", {"index": 0, "port": 8000, "gpus": ["0"]},
                                      "/srv/models/smollm2/m.gguf", "smollm2", memory="4g", cpus=2)
    assert params["volumes"] == ["/srv/models/smollm2:/srv/models/smollm2:ro"]
    assert params["command"][-2:] == ["--n-gpu-layers", "999"] and "--metrics" in params["command"]
    assert params["memory"] == "4g" and params["cpus"] == 2 and params["image"] == "img"


def test_llamacpp_slots_context_and_threads_are_one_command_line_in_both_runtimes():
    options = {"parallel": 2, "ctx_size": 4096, "threads": 1}
    native = serving.engine_command("llamacpp", "/m.gguf", "smollm2", 8001, python="/opt/v/bin/python",
                                    extra_args=["--no-warmup"], llamacpp=options)
    container = serving.docker_container("llamacpp", "img", "l", {"index": 1, "port": 8001, "gpus": []}, "/m.gguf",
                                         "smollm2", extra_args=["--no-warmup"], llamacpp=options)["command"]
    # The image's entrypoint is the server: the container's command is the native one without the launcher,
    # listening on the container port; the site's extra arguments come last (the last flag wins).
    assert native[2:] == ["--model", "/m.gguf", "--alias", "smollm2", "--host", "0.0.0.0", "--port", "8001", "--metrics",
                          "--parallel", "2", "--ctx-size", "4096", "--threads", "1", "--no-warmup"]
    assert container == native[2:9] + ["8080"] + native[10:]


def test_native_replicas_pin_gpus_through_the_environment():
    cmd = serving.engine_command("llamacpp", "/m.gguf", "smollm2", 8003, python="/opt/v/bin/python")
    assert cmd[:2] == ["/opt/v/bin/python", "/usr/local/lib/llmfleet/llamacpp_serve.py"]
    assert cmd[cmd.index("--port") + 1] == "8003"
    env = serving.engine_environment("vllm", 8000, "/m", ["0", "1"], "systemd", {"VLLM_LOGGING_LEVEL": "INFO"})
    assert env == {"HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "0,1", "VLLM_LOGGING_LEVEL": "INFO"}
    ollama = serving.engine_environment("ollama", 8002, "/srv/models/ollama", runtime="systemd")
    assert ollama["OLLAMA_HOST"] == "0.0.0.0:8002" and ollama["OLLAMA_KEEP_ALIVE"] == "-1"


def test_host_networks_prefer_llmfleet_address():
    hostvars = {"lb1": {"ansible_host": "lb1.example.com", "llmfleet_address": "10.0.0.5"},
                "lb2": {"ansible_host": "10.0.0.6"}, "v6": {"ansible_host": "fd00::6"}}
    assert serving.host_networks(["lb1", "lb2", "v6"], hostvars) == ["10.0.0.5/32", "10.0.0.6/32", "fd00::6/128"]
    assert serving.host_addresses(["lb1", "v6"], hostvars) == ["10.0.0.5", "fd00::6"]


@pytest.mark.parametrize("models,message", [
    ([{"name": "smollm2", "file": "m.gguf", "url": "http://mirror/m.gguf", "sha256": SHA}], ""),
    ("smollm2", "'smollm2' is not a list of models"),
    ([{"name": "smollm2", "file": "m.gguf", "url": "http://mirror/m.gguf"}], "[0]: sha256 not set"),
    ([{"name": "Big Model", "file": "m", "url": "http://m/m", "sha256": SHA}], "[0]: name: 'Big Model' must be lower-case"),
    ([{"name": "a", "file": "../m", "url": "http://m/m", "sha256": SHA}], "[0]: file: '../m' must be a file name"),
    ([{"name": "a", "file": "m", "url": "ftp://m/m", "sha256": SHA}], "[0]: url: 'ftp://m/m' is not a URL"),
    ([{"name": "a", "file": "m", "url": "http://m/m", "sha256": SHA.upper()}], "[0]: sha256: "),
    ([{"name": "a", "file": "m", "url": "http://m/m", "sha256": SHA}] * 2, "[1]: name: a is listed twice"),
])
def test_models_problem(models, message):
    problem = serving.models_problem(models)
    assert problem.startswith(message) and (problem == "") == (message == ""), problem


def test_an_unquoted_all_digit_checksum_is_explained():
    model = {"name": "a", "file": "m", "url": "http://m/m", "sha256": 0}
    assert serving.models_problem([model]) == (
        "[0]: sha256: 0 is a number, not text: quote it (YAML reads an all-digit value as a number)")


def test_the_container_healthcheck_is_healthy_only_when_the_engine_says_ready():
    """The healthcheck's own command, run with bash against a real loopback server that answers the
    engine's health path 503 (loading) and then 200; its port swapped for the test server's."""
    import http.server
    import subprocess
    import threading

    state = {"code": 503}

    class Engine(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(state["code"] if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        test = serving.docker_container("llamacpp", "img", "l", {"index": 0, "port": 8000, "gpus": []}, "/m.gguf",
                                        "m")["healthcheck"]["test"]
        assert test[:3] == ["CMD", "bash", "-c"] and "/dev/tcp/127.0.0.1/8080 " in test[3]
        script = test[3].replace("/8080 ", "/%d " % server.server_address[1])
        assert subprocess.run(["bash", "-c", script], timeout=10, check=False).returncode != 0
        state["code"] = 200
        assert subprocess.run(["bash", "-c", script], timeout=10, check=False).returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    closed = subprocess.run(["bash", "-c", script], timeout=10, check=False, capture_output=True)
    assert closed.returncode != 0


@pytest.mark.parametrize("reference,digests,pinned", [
    ("10.0.3.5:5000/engines/llamacpp:b1", ["10.0.3.5:5000/engines/llamacpp@" + "sha256:" + "a" * 64],
     "10.0.3.5:5000/engines/llamacpp@sha256:" + "a" * 64),
    # A digest pin stands as it is (a tag beside it says nothing more).
    ("registry:5000/e:1@sha256:" + "b" * 64, [], "registry:5000/e@sha256:" + "b" * 64),
    # Docker Hub names, as the engine shortens them; another repository's digest is not this one's.
    ("docker.io/library/ubuntu:24.04", ["other/ubuntu@sha256:" + "c" * 64, "ubuntu@sha256:" + "d" * 64],
     "ubuntu@sha256:" + "d" * 64),
    ("vllm/vllm-openai:v0.11.0", ["vllm/vllm-openai@sha256:" + "e" * 64], "vllm/vllm-openai@sha256:" + "e" * 64),
])
def test_an_image_is_pinned_by_the_digest_the_engine_pulled(reference, digests, pinned):
    assert serving.pinned_image(reference, digests) == pinned


def test_an_image_without_a_registry_digest_cannot_be_pinned():
    with pytest.raises(ValueError, match="the engine holds no registry digest of it"):
        serving.pinned_image("local/engine:1", [])


def plan(address, name, model, aliases=(), ports=(8000,)):
    return {"address": address, "health_path": "/health", "name": name, "model_name": model, "model_aliases": list(aliases),
            "replicas": [{"index": i, "port": p, "gpus": []} for i, p in enumerate(ports)]}


TWO_MODELS = {
    "model-a1": {"llmfleet_zone": "zone-a", "model_server_plan": plan("10.0.1.11", "llm", "smollm2", ["small"], (8000, 8001))},
    "model-a2": {"llmfleet_zone": "zone-a", "model_server_plan": plan("10.0.1.12", "gemma", "gemma3-270m")},
    "model-b1": {"llmfleet_zone": "zone-b", "model_server_plan": plan("10.0.2.11", "llm", "smollm2", ["small"])},
    "model-b2": {"llmfleet_zone": "zone-b", "model_server_plan": plan("10.0.2.12", "gemma", "gemma3-270m")},
}


def test_one_backend_per_model_with_its_names_in_zone_order():
    members = serving.lb_members(list(TWO_MODELS), TWO_MODELS)
    assert [(m["name"], m["backend"], m["model"]) for m in members][:3] == [
        ("model-a1-r0", "llm", "smollm2"), ("model-a1-r1", "llm", "smollm2"), ("model-a2-r0", "gemma", "gemma3-270m")]
    backends = serving.lb_backends(members)
    assert [(b["name"], b["ids"], [m["name"] for m in b["members"]]) for b in backends] == [
        ("llm", ["smollm2", "small"], ["model-a1-r0", "model-a1-r1", "model-b1-r0"]),
        ("gemma", ["gemma3-270m"], ["model-a2-r0", "model-b2-r0"])]
    document = json.loads(serving.models_document(backends))
    assert document["object"] == "list"
    assert [m["id"] for m in document["data"]] == ["smollm2", "small", "gemma3-270m"]
    assert all(m["object"] == "model" and m["owned_by"] == "llmfleet" for m in document["data"])


def test_a_plan_of_an_earlier_version_is_the_one_backend_llm():
    members = serving.lb_members(["model-b1"], HOSTVARS)
    assert (members[0]["backend"], members[0]["aliases"]) == ("llm", [])


def test_backends_refuse_models_that_could_not_be_routed():
    clash = dict(TWO_MODELS, **{"model-b2": {"llmfleet_zone": "zone-b", "model_server_plan": plan("10.0.2.12", "gemma", "gemma3-270m", ["small"])}})
    with pytest.raises(ValueError, match=r"model-b2: model_server_model_name / model_server_model_aliases: gemma3-270m with aliases \[small\], "
                                         r"but model-a2 serves model_server_name gemma as gemma3-270m with aliases \[\]"):
        serving.lb_backends(serving.lb_members(list(clash), clash))
    clash["model-a2"] = {"llmfleet_zone": "zone-a", "model_server_plan": plan("10.0.1.12", "gemma", "gemma3-270m", ["small"])}
    clash["model-b2"] = clash["model-a2"]
    with pytest.raises(ValueError, match="model-a2: model_server_model_aliases: small is also a model name or alias of "
                                         "model_server_name llm \\(on model-a1\\)"):
        serving.lb_backends(serving.lb_members(list(clash), clash))


@pytest.mark.parametrize("value,ok", [("smollm2", True), ("Qwen/Qwen3-8B", True), ("llama3.1:8b", True), ("gpt-4o@2024", True),
                                      ("my model", False), ("-x", False), ("", False), ('a"b', False), ("x" * 129, False), (3, False)])
def test_model_names_the_routing_rules_can_hold(value, ok):
    assert (serving.model_id_problem(value) == "") == ok


def test_vllm_serves_every_alias_and_llamacpp_answers_any_name():
    vllm = serving.engine_command("vllm", "/m/q", "qwen3-8b", 8000, aliases=["chat", "qwen3"])
    assert vllm[vllm.index("--served-model-name"):][:4] == ["--served-model-name", "qwen3-8b", "chat", "qwen3"]
    llamacpp = serving.engine_command("llamacpp", "/m/s.gguf", "smollm2", 8000, aliases=["small"])
    assert "small" not in llamacpp and llamacpp[llamacpp.index("--alias") + 1] == "smollm2"


def test_api_keys_limited_to_models_get_those_models_backends():
    backends = serving.lb_backends(serving.lb_members(list(TWO_MODELS), TWO_MODELS))
    keys = [{"client": "all", "key": "k" * 32}, {"client": "small-only", "key": "s" * 32, "models": ["small"]},
            {"client": "both", "key": "b" * 32, "models": ["gemma3-270m", "smollm2", "small"]}]
    assert serving.key_scopes(keys, backends) == {"small-only": ["llm"], "both": ["gemma", "llm"]}
    with pytest.raises(ValueError, match=r"load_balancer_api_keys \(x\): models: gpt-9 is not a model of the fleet "
                                         r"\(known: gemma3-270m, small, smollm2\)"):
        serving.key_scopes([{"client": "x", "key": "x" * 32, "models": ["gpt-9", "small"]}], backends)


# --- several models on one node (model_server_servers) --------------------------------------------

NODE = {"model_server_" + option: value for option, value in {
    "name": "llm", "model_name": "smollm2", "model_aliases": ["small"], "model_path": "/srv/models/s/s.gguf",
    "replica_count": 2, "base_port": 8000, "gpu_ids": [0, 1], "gpus_per_replica": 1, "replicas": [],
    "extra_args": ["--max-model-len", "8192"], "engine": "vllm", "runtime": "docker", "image": "vllm/vllm-openai:v1",
    "environment": {"HF_HUB_OFFLINE": "1"}, "pip_packages": [], "venv": "/opt/llmfleet/vllm", "llamacpp_parallel": 2,
    "llamacpp_ctx_size": 2048, "llamacpp_threads": 0, "memory_limit": "", "cpus": 0, "stop_timeout": 0,
    "restart_sec": 5, "ready_timeout": 600, "ready_prompt": "Reply with the word ready."}.items()}
EMBED = {"name": "embed", "model_name": "bge-m3", "model_path": "/srv/models/bge", "base_port": 8100, "gpu_ids": [2],
         "gpus_per_replica": 1}


def test_a_further_server_has_its_own_model_and_layout_and_the_nodes_software():
    own, embed = serving.node_servers(dict(NODE, model_server_servers=[EMBED]))
    assert own == NODE
    # its own: name, model, layout (role defaults where not given: one replica, no aliases, no extra args)
    assert (embed["model_server_name"], embed["model_server_model_name"], embed["model_server_replica_count"],
            embed["model_server_base_port"], embed["model_server_gpu_ids"], embed["model_server_model_aliases"],
            embed["model_server_extra_args"]) == ("embed", "bge-m3", 1, 8100, [2], [], [])
    # the node's: engine, runtime, image, environment...
    assert (embed["model_server_engine"], embed["model_server_image"], embed["model_server_environment"]) == (
        "vllm", "vllm/vllm-openai:v1", {"HF_HUB_OFFLINE": "1"})
    # unless the entry gives them; a None (argument_specs' unset suboption) is not given
    _own, tei = serving.node_servers(dict(NODE, model_server_servers=[dict(EMBED, engine="tgi", image=None)]))
    assert (tei["model_server_engine"], tei["model_server_image"]) == ("tgi", "vllm/vllm-openai:v1")


def test_a_nodes_plan_has_every_server_and_its_own_first_at_the_top():
    plan = serving.node_plan("10.0.1.11", serving.node_servers(dict(NODE, model_server_servers=[EMBED])))
    assert [(s["name"], s["main"], s["model_name"], [(r["port"], r["gpus"]) for r in s["replicas"]])
            for s in plan["servers"]] == [("llm", True, "smollm2", [(8000, ["0"]), (8001, ["1"])]),
                                          ("embed", False, "bge-m3", [(8100, ["2"])])]
    # a node with one server reads as before
    assert (plan["address"], plan["name"], plan["model_name"], plan["replicas"]) == (
        "10.0.1.11", "llm", "smollm2", plan["servers"][0]["replicas"])
    assert serving.server_plan(plan, "embed")["health_path"] == "/health"
    with pytest.raises(ValueError, match="model_server_plan has no server chat .servers: llm, embed."):
        serving.server_plan(plan, "chat")


@pytest.mark.parametrize("entry,message", [
    (dict(EMBED, base_port=8001), r"model_server_servers\[0\] \(embed\): port 8001 of embed replica 0 is also llm replica 1's"),
    (dict(EMBED, gpu_ids=[1]), r"model_server_servers\[0\] \(embed\): GPU 1 of embed replica 0 is also given to llm replica 1"),
    (dict(EMBED, replica_count=2, gpu_ids=[2]), r"model_server_servers\[0\] \(embed\): model_server_gpu_ids: 2 replicas x 1 GPUs"),
])
def test_two_servers_of_a_node_never_share_a_port_or_a_gpu(entry, message):
    with pytest.raises(ValueError, match=message):
        serving.node_plan("10.0.1.11", serving.node_servers(dict(NODE, model_server_servers=[entry])))


@pytest.mark.parametrize("entries,message", [
    ("embed", r"model_server_servers: give a list"),
    (["embed"], r"model_server_servers\[0\]: give a mapping"),
    ([dict(EMBED, port=1)], r"model_server_servers\[0\]: unknown keys port \(supported: name, model_name"),
    ([dict(EMBED, name=None)], r"model_server_servers\[0\]: name: not set"),
    ([dict(EMBED, model_path="")], r"model_server_servers\[0\]: model_path: not set"),
    ([dict(EMBED, base_port=None)], r"model_server_servers\[0\]: base_port: not set \(or replicas\)"),
    ([EMBED, EMBED], r"model_server_servers\[1\]: name: embed is already model_server_servers\[0\] on this node"),
    ([dict(EMBED, name="llm")], r"model_server_servers\[0\]: name: llm is already the node's own model_server_name"),
])
def test_bad_further_servers_name_the_entry(entries, message):
    with pytest.raises(ValueError, match=message):
        serving.node_servers(dict(NODE, model_server_servers=entries))


def test_a_further_servers_replicas_are_named_after_it_in_its_own_backend():
    plan = serving.node_plan("10.0.3.12", serving.node_servers(dict(NODE, model_server_servers=[EMBED])))
    members = serving.lb_members(["model-c2"], {"model-c2": {"llmfleet_zone": "zone-c", "model_server_plan": plan}})
    assert [(m["name"], m["backend"], m["model"], m["port"], m["index"]) for m in members] == [
        ("model-c2-r0", "llm", "smollm2", 8000, 0), ("model-c2-r1", "llm", "smollm2", 8001, 1),
        ("model-c2-embed-r0", "embed", "bge-m3", 8100, 0)]
    assert [b["name"] for b in serving.lb_backends(members)] == ["llm", "embed"]


def test_servers_a_node_no_longer_serves_are_found_by_their_units_containers_and_records():
    found = ["unit llmfleet-llm-0", "unit llmfleet-llm-1", "unit llmfleet-embed-0", "container llmfleet-chat-0",
             "container llmfleet-chat-1", "record llm", "record old", "unit llmfleet-Bad Name-0", "container other-0"]
    assert serving.retired_servers(found, ["llm"]) == [
        {"name": "chat", "containers": ["llmfleet-chat-0", "llmfleet-chat-1"]},
        {"name": "embed", "containers": []}, {"name": "old", "containers": []}]
    assert serving.retired_servers(found[:2] + ["record llm"], ["llm"]) == []
