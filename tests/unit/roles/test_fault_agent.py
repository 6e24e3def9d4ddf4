"""The fault agent (roles/fault_agent/files/llmfleet_fault_agent.py): its verdicts from scripted node
observations on an injected clock, its parsers against real outputs, its configuration check, and
its TCP protocol on a real socket. On a real node: tests/integration (SIGSTOP under load) and, on a
GPU machine, scripts/gpu-verify (nvidia-smi and the kernel log for real)."""

import http.server
import importlib.util
import json
import socket
import socketserver
import threading
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location("llmfleet_fault_agent", REPO / "roles/fault_agent/files/llmfleet_fault_agent.py")
agent_mod = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(agent_mod)

METRICS = """# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing {running}
# TYPE llamacpp:n_decode_total counter
llamacpp:n_decode_total {decoded}
llamacpp:tokens_predicted_total 7
"""


class FakeNode:
    """Answers as scripted: metrics per URL, unit info per name, process states, nvidia-smi."""

    def __init__(self):
        self.metrics_answer = {}
        self.units = {}
        self.states = {}
        self.commands = {}
        self.free = {}
        self.kernel = []
        self.kmsg_error = ""

    def metrics(self, url):
        return self.metrics_answer.get(url, ("error", "refused"))

    def unit(self, kind, name):
        return self.units.get((kind, name), {"pids": [], "restarts": None, "active": False})

    def process_state(self, pid):
        return self.states.get(pid, "S")

    def run(self, args):
        for prefix, answer in self.commands.items():
            if " ".join(args).startswith(prefix):
                return answer
        return 127, "", "not found"

    def free_percent(self, path):
        if path not in self.free:
            raise OSError(2, "missing")
        return self.free[path]

    def kernel_messages(self):
        messages, self.kernel = self.kernel, []
        return messages


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(replicas=None, **settings):
    config = dict(agent_mod.SETTINGS)
    config["replicas"] = replicas or [{"name": "n1-r0", "watch": "systemd:llmfleet-llm-0.service",
                                       "metrics_url": "http://10.0.0.5:8000/metrics", "engine": "llamacpp", "gpus": []}]
    config.update(settings)
    assert agent_mod.config_problems(config) == []
    node, clock = FakeNode(), Clock()
    return agent_mod.Agent(config, node, clock), node, clock


def word(agent, name="n1-r0"):
    return agent.probe()[name][0]


def test_a_healthy_replica_is_up_at_full_weight():
    agent, node, _clock = make()
    node.metrics_answer["http://10.0.0.5:8000/metrics"] = ("ok", METRICS.format(running=1, decoded=5))
    node.units[("systemd", "llmfleet-llm-0.service")] = {"pids": [42], "restarts": 0, "active": True}
    assert word(agent) == "up 100%"
    assert agent.answer("n1-r0\n") == "up 100%\n"


def test_a_stopped_process_is_down_at_once_and_back_when_continued():
    agent, node, _clock = make()
    node.units[("systemd", "llmfleet-llm-0.service")] = {"pids": [42, 43], "restarts": 0, "active": True}
    node.states[43] = "T"
    assert word(agent) == "down"
    assert agent.answer("n1-r0").startswith("down #stopped: process 43 is stopped")
    node.states[43] = "S"
    assert word(agent) == "up 100%"


def test_requests_running_without_progress_are_a_stall_after_stall_seconds():
    agent, node, clock = make(stall_seconds=10)
    url = "http://10.0.0.5:8000/metrics"
    node.metrics_answer[url] = ("ok", METRICS.format(running=2, decoded=50))
    assert word(agent) == "up 100%"
    clock.now += 9.5
    assert word(agent) == "up 100%"
    clock.now += 0.5
    assert word(agent) == "down"
    assert "stall: 2 requests running, no progress for 10 s" in agent.answer("n1-r0")
    # One decoding step is progress: back up.
    node.metrics_answer[url] = ("ok", METRICS.format(running=2, decoded=51))
    clock.now += 1
    assert word(agent) == "up 100%"


def test_an_idle_replica_is_never_a_stall():
    agent, node, clock = make(stall_seconds=10)
    node.metrics_answer["http://10.0.0.5:8000/metrics"] = ("ok", METRICS.format(running=0, decoded=50))
    for _look in range(5):
        clock.now += 30
        assert word(agent) == "up 100%"


def test_metrics_unanswered_for_stall_seconds_is_a_stall_but_refused_is_not():
    agent, node, clock = make(stall_seconds=10)
    url = "http://10.0.0.5:8000/metrics"
    node.metrics_answer[url] = ("timeout", "timed out")
    assert word(agent) == "up 100%"
    clock.now += 10
    assert word(agent) == "down"
    assert "metrics unanswered for 10 s" in agent.answer("n1-r0")
    # Not listening (restarting): the health check's business; the stall clock starts again.
    node.metrics_answer[url] = ("error", "connection refused")
    clock.now += 60
    assert word(agent) == "up 100%"


def test_restarts_in_a_loop_are_down_until_the_replica_stays_up_for_restart_quiet():
    agent, node, clock = make(restart_limit=3, restart_window=300, restart_quiet=30)
    unit = ("systemd", "llmfleet-llm-0.service")
    for restarts in (0, 1, 2):
        node.units[unit] = {"pids": [42], "restarts": restarts, "active": True}
        assert word(agent) == "up 100%"
        clock.now += 20
    node.units[unit] = {"pids": [42], "restarts": 3, "active": True}
    assert word(agent) == "down"
    assert "restart loop: 3 restarts in 300 s" in agent.answer("n1-r0")
    clock.now += 29
    assert word(agent) == "down"
    # Still looping: each restart keeps it out.
    node.units[unit] = {"pids": [42], "restarts": 4, "active": True}
    clock.now += 1
    assert word(agent) == "down"
    clock.now += 30
    assert word(agent) == "up 100%"
    # Out of the window entirely: one more restart is no loop.
    clock.now += 300
    node.units[unit] = {"pids": [42], "restarts": 5, "active": True}
    assert word(agent) == "up 100%"


def test_a_deliberate_restart_ends_a_loop_at_once():
    """systemd resets NRestarts when a unit is (re)started on purpose, Docker's count starts at 0 in a new
    container: a rollback of a release that crashed in a loop puts the replica back at once."""
    agent, node, clock = make(restart_limit=3, restart_window=300)
    unit = ("systemd", "llmfleet-llm-0.service")
    for restarts in (0, 2, 4):
        node.units[unit] = {"pids": [42], "restarts": restarts, "active": True}
        agent.probe()
        clock.now += 5
    assert word(agent) == "down"
    node.units[unit] = {"pids": [43], "restarts": 0, "active": True}
    clock.now += 5
    assert word(agent) == "up 100%"
    node.units[unit] = {"pids": [44], "restarts": 1, "active": True}
    assert word(agent) == "up 100%"


def test_a_deliberate_restart_while_systemd_waits_to_restart_ends_a_loop():
    """systemd 252 keeps NRestarts when a unit is restarted while it waits to restart on its own
    (auto-restart): the rollback of a crashing release then shows only as a new run (InvocationID)."""
    agent, node, clock = make(restart_limit=3, restart_window=300, restart_quiet=30)
    unit = ("systemd", "llmfleet-llm-0.service")
    for restarts, run in ((0, "a"), (1, "b"), (2, "c"), (3, "d")):
        node.units[unit] = {"pids": [42], "restarts": restarts, "active": True, "run": run}
        agent.probe()
        clock.now += 1
    assert word(agent) == "down"
    node.units[unit] = {"pids": [43], "restarts": 3, "active": True, "run": "rollback"}
    clock.now += 1
    assert word(agent) == "up 100%"


def test_a_restart_seen_before_its_new_run_is_still_counted():
    """The service manager counts a restart before the new run starts: a look in between (count grown,
    old run) and the next (new run) are one automatic restart, not a deliberate start."""
    agent, node, clock = make(restart_limit=3, restart_window=300, restart_quiet=30)
    unit = ("systemd", "llmfleet-llm-0.service")
    for restarts, run in ((0, "a"), (1, "a"), (1, "b"), (2, "b"), (2, "c"), (3, "c"), (3, "d")):
        node.units[unit] = {"pids": [42], "restarts": restarts, "active": True, "run": run}
        agent.probe()
        clock.now += 1
    assert "restart loop: 3 restarts" in agent.answer("n1-r0")
    # Without a run (an agent reading an older systemd, or a container without a start time) only the count decides.
    agent, node, clock = make(restart_limit=3, restart_window=300)
    for restarts in (0, 1, 2, 3, 3):
        node.units[unit] = {"pids": [42], "restarts": restarts, "active": True, "run": ""}
        agent.probe()
        clock.now += 1
    assert word(agent) == "down"


def test_a_first_look_at_old_restarts_is_no_loop():
    agent, node, _clock = make(restart_limit=3)
    node.units[("systemd", "llmfleet-llm-0.service")] = {"pids": [42], "restarts": 17, "active": True}
    assert word(agent) == "up 100%"


def test_a_nearly_full_disk_drains_every_replica_and_a_missing_path_is_ignored():
    agent, node, _clock = make(disk_paths=["/srv/models", "/not/mounted"], disk_min_free_percent=5)
    node.free["/srv/models"] = 3.2
    assert word(agent) == "up 0%"
    assert agent.answer("n1-r0") == "up 0% #disk: /srv/models has 3.2 % free\n"
    node.free["/srv/models"] = 40.0
    assert word(agent) == "up 100%"


GPU_REPLICAS = [
    {"name": "g-r0", "watch": "docker:llmfleet-llm-0", "metrics_url": "", "engine": "vllm", "gpus": ["0"]},
    {"name": "g-r1", "watch": "docker:llmfleet-llm-1", "metrics_url": "", "engine": "vllm",
     "gpus": ["GPU-bbbb0000-0000-0000-0000-000000000001"]},
    {"name": "g-cpu", "watch": "docker:llmfleet-llm-2", "metrics_url": "", "engine": "vllm", "gpus": []},
]
# nvidia-smi --query-gpu=index,uuid,pci.bus_id,ecc.errors.uncorrected.volatile.total --format=csv,noheader,nounits
SMI = ("0, GPU-aaaa0000-0000-0000-0000-000000000000, 00000000:3B:00.0, 0\n"
       "1, GPU-bbbb0000-0000-0000-0000-000000000001, 00000000:86:00.0, {ecc}\n")
QUERY = "nvidia-smi --query-gpu"
REMAP = "nvidia-smi --query-remapped-rows"


def gpu_agent(ecc=0, remap="No, No"):
    agent, node, clock = make(GPU_REPLICAS, gpu_interval=10)
    node.commands[QUERY] = (0, SMI.format(ecc=ecc), "")
    node.commands[REMAP] = (0, "GPU-aaaa0000-0000-0000-0000-000000000000, No, No\n"
                               "GPU-bbbb0000-0000-0000-0000-000000000001, %s\n" % remap, "")
    return agent, node, clock


def test_a_fatal_xid_takes_down_only_the_replicas_of_that_gpu():
    agent, node, _clock = gpu_agent()
    node.kernel = ["NVRM: Xid (PCI:0000:86:00): 79, pid=1234, GPU has fallen off the bus.",
                   "NVRM: Xid (PCI:0000:3b:00): 13, pid=99, Graphics SM Warp Exception"]
    answers = agent.probe()
    assert answers["g-r1"] == ("down", "GPU GPU-bbbb0000-0000-0000-0000-000000000001: Xid 79 in the kernel log "
                                       "(reset the GPU or reboot)")
    # Xid 13 is an application error, not a GPU fault.
    assert answers["g-r0"] == ("up 100%", "")
    assert answers["g-cpu"] == ("up 100%", "")


def test_uncorrected_ecc_or_pending_remaps_drain_and_a_failed_remap_is_down():
    agent, _node, _clock = gpu_agent(ecc=2)
    assert agent.probe()["g-r1"] == ("up 0%", "GPU GPU-bbbb0000-0000-0000-0000-000000000001: 2 uncorrected ECC errors")
    agent, _node, _clock = gpu_agent(remap="Yes, No")
    assert agent.probe()["g-r1"][0] == "up 0%"
    agent, _node, _clock = gpu_agent(remap="No, Yes")
    assert agent.probe()["g-r1"][0] == "down"


def test_nvidia_smi_failing_takes_every_gpu_replica_down_and_is_asked_every_gpu_interval():
    agent, node, clock = gpu_agent()
    node.commands[QUERY] = (15, "", "Unable to determine the device handle for GPU0000:86:00.0: Unknown Error")
    answers = agent.probe()
    assert answers["g-r0"][0] == answers["g-r1"][0] == "down"
    assert answers["g-cpu"][0] == "up 100%"
    node.commands[QUERY] = (0, SMI.format(ecc=0), "")
    clock.now += 5
    assert agent.probe()["g-r0"][0] == "down"  # not asked again yet
    clock.now += 5
    assert agent.probe()["g-r0"][0] == "up 100%"


def test_a_gpu_nvidia_smi_does_not_list_is_down():
    agent, node, _clock = gpu_agent()
    node.commands[QUERY] = (0, SMI.format(ecc=0).splitlines()[1] + "\n", "")
    assert agent.probe()["g-r0"] == ("down", "GPU 0: not seen by nvidia-smi")


def test_without_nvidia_smi_auto_turns_gpu_checks_off_and_on_takes_gpu_replicas_down():
    agent, node, _clock = gpu_agent()
    node.commands = {}
    assert agent.probe()["g-r0"][0] == "up 100%"
    assert "not installed" in agent.status()["gpu"]["error"]
    agent, node, _clock = make(GPU_REPLICAS, gpu="on")
    assert agent.probe()["g-r0"][0] == "down"


def test_parsers_read_real_outputs():
    assert agent_mod.parse_metrics('a{x="1"} 2\na{x="2"} 3.5\n# c\nb 1e3\nbad x\n') == {"a": 5.5, "b": 1000.0}
    assert agent_mod.parse_kmsg("4,1102,3421553,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=0\n") == \
        (1102, "NVRM: Xid (PCI:0000:3b:00): 79, pid=0")
    assert agent_mod.parse_xid("NVRM: Xid (PCI:0000:3b:00): 79, pid=0") == ("0000:3b:00", 79)
    assert agent_mod.parse_xid("eth0: link up") is None
    assert agent_mod.pci_key("00000000:3B:00.0") == agent_mod.pci_key("0000:3b:00") == "0000:3b:00"
    gpus = agent_mod.parse_gpus("0, GPU-x, 00000000:00:06.0, [N/A]\n")
    assert gpus == [{"index": "0", "uuid": "GPU-x", "pci": "0000:00:06", "ecc_uncorrected": None}]
    assert agent_mod.parse_properties("MainPID=42\nNRestarts=0\n") == {"MainPID": "42", "NRestarts": "0"}


@pytest.mark.parametrize("change, problem", [
    ({"port": 0}, "port: 0"),
    ({"stall_seconds": 0}, "stall_seconds: 0"),
    ({"gpu": "maybe"}, "gpu: 'maybe'"),
    ({"disk_min_free_percent": 100}, "disk_min_free_percent: 100"),
    ({"colour": "red"}, "colour: not a setting"),
    ({"replicas": [{"name": "a"}]}, "replicas[0]: give exactly"),
    ({"replicas": [dict(GPU_REPLICAS[0], watch="lxc:x")]}, "replicas[0]: watch 'lxc:x'"),
    ({"replicas": [GPU_REPLICAS[0], GPU_REPLICAS[0]]}, "replicas[1]: name g-r0 is given twice"),
])
def test_bad_configuration_is_named(change, problem):
    config = dict(change)
    found = agent_mod.config_problems(config)
    assert any(p.startswith(problem) for p in found), found


def test_check_config_refuses_a_bad_file_and_accepts_a_good_one(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"port": 9107, "replicas": GPU_REPLICAS}))
    bad.write_text(json.dumps({"port": "x"}))
    assert agent_mod.main(["--check-config", str(good)]) == 0
    assert agent_mod.main(["--check-config", str(bad)]) == 2


def test_haproxy_asks_over_tcp_and_gets_one_line():
    agent, node, _clock = make()
    node.units[("systemd", "llmfleet-llm-0.service")] = {"pids": [42], "restarts": 0, "active": True}
    node.states[42] = "T"
    agent.probe()
    server = agent_mod.Server(("127.0.0.1", 0), agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        for ask, expect in ((b"n1-r0\n", "down #stopped"), (b"somebody-else\n", "up 100% #not a replica"),
                            (b"status\n", "{")):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(ask)
                reply = conn.makefile().read()
            assert reply.startswith(expect), reply
            assert reply.endswith("\n") and reply.count("\n") == 1
        status = json.loads(reply)
        assert status["replicas"]["n1-r0"]["answer"] == "down"
    finally:
        server.shutdown()
        server.server_close()


# The DCGM exporter's output since 3.3.7 (pci_bus_id: NVIDIA/dcgm-exporter#326; err_code, err_msg: #309).
_XID = ('DCGM_FI_DEV_XID_ERRORS{{gpu="{gpu}",UUID="{uuid}",pci_bus_id="{pci}",device="nvidia{gpu}",'
        'modelName="NVIDIA H200",Hostname="g1",err_code="{xid}",err_msg="{msg}"}} {xid}')
DCGM = "\n".join([
    "# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.",
    "# TYPE DCGM_FI_DEV_XID_ERRORS gauge",
    _XID.format(gpu=0, uuid="GPU-aaaa0000-0000-0000-0000-000000000000", pci="00000000:3B:00.0", xid=0, msg="No Error"),
    _XID.format(gpu=1, uuid="GPU-bbbb0000-0000-0000-0000-000000000001", pci="00000000:86:00.0", xid=79,
                msg="GPU has fallen off the bus"),
    'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-aaaa0000-0000-0000-0000-000000000000"} 35', ""])


def test_the_dcgm_exporters_last_xid_is_a_second_source():
    assert agent_mod.parse_dcgm_xids(DCGM) == {"0000:86:00": 79}
    agent, node, _clock = make(GPU_REPLICAS, gpu_interval=10, dcgm_url="http://127.0.0.1:9400/metrics")
    node.commands[QUERY] = (0, SMI.format(ecc=0), "")
    node.commands[REMAP] = (0, "", "")
    node.metrics_answer["http://127.0.0.1:9400/metrics"] = ("ok", DCGM)
    node.kmsg_error = "/dev/kmsg: No such file or directory"
    answers = agent.probe()
    assert answers["g-r1"][0] == "down" and "Xid 79" in answers["g-r1"][1]
    assert answers["g-r0"] == ("up 100%", "")
    assert agent.status()["gpu"]["kernel_log"] == "/dev/kmsg: No such file or directory"


def test_labels_with_escaped_quotes_parse():
    text = 'm{a="x\\"y",b="2"} 3\nmore{a="1"} 4\n'
    assert agent_mod.parse_samples(text, "m") == [({"a": 'x\\"y', "b": "2"}, 3.0)]


class DockerAPIHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        name = urllib.parse.unquote(self.path[len("/containers/"):-len("/json")])
        found = self.server.containers.get(name)
        body = json.dumps(found if found else {"message": "No such container: %s" % name}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "docker.sock"

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


class DockerAPI(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """dockerd's socket as the agent sees it: GET /containers/NAME/json answers what `containers` holds
    for NAME (trimmed from a real answer of Docker 20.10 on a lab node), 404 for any other name."""
    daemon_threads = True

    def __init__(self, path, containers):
        self.containers, self.paths = containers, []
        socketserver.UnixStreamServer.__init__(self, str(path), DockerAPIHandler)


def test_a_units_run_is_read_from_systemd_and_docker(tmp_path):
    """The real Node's reading of a unit (systemctl's answer given here) and of a container (from a
    real HTTP server on a unix socket, as dockerd answers): the run that tells a deliberate start from
    an automatic restart is systemd's InvocationID, a container's id and start time."""
    class Canned(agent_mod.Node):
        def run(self, args):
            assert args[0] == "systemctl", args
            return 0, "MainPID=42\nNRestarts=3\nActiveState=active\nControlGroup=\nInvocationID=5f0c\n", ""

    container = {"Id": "9abc", "RestartCount": 2, "Name": "/llmfleet-llm-0",
                 "State": {"Status": "running", "Running": True, "Pid": 77, "StartedAt": "2026-12-05T21:42:08.1Z"}}
    api = DockerAPI(tmp_path / "docker.sock", {"llmfleet-llm-0": container})
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        node = Canned(timeout=1, docker_socket=str(tmp_path / "docker.sock"))
        assert node.unit("systemd", "llmfleet-llm-0.service") == {"pids": [42], "restarts": 3, "active": True,
                                                                  "run": "5f0c"}
        assert node.unit("docker", "llmfleet-llm-0") == {"pids": [77], "restarts": 2, "active": True,
                                                         "run": "9abc 2026-12-05T21:42:08.1Z"}
        # A container that is not there (404), and a name that needs quoting in the path.
        assert node.unit("docker", "llmfleet-gone") == {"pids": [], "restarts": None, "active": False}
        assert node.unit("docker", "a b/c") == {"pids": [], "restarts": None, "active": False}
        assert api.paths == ["/containers/llmfleet-llm-0/json", "/containers/llmfleet-gone/json",
                             "/containers/a%20b%2Fc/json"]
        # A stopped container: known, not running, its last run kept.
        container["State"].update(Running=False, Pid=0, Status="exited")
        assert node.unit("docker", "llmfleet-llm-0") == {"pids": [], "restarts": 2, "active": False,
                                                         "run": "9abc 2026-12-05T21:42:08.1Z"}
    finally:
        api.shutdown()
        api.server_close()


def test_a_container_is_not_active_when_dockerd_does_not_answer(tmp_path):
    """No socket (dockerd stopped or not installed), or a peer that answers no HTTP: the replica is not
    active, and the agent goes on (no exception out of its probe)."""
    node = agent_mod.Node(timeout=0.5, docker_socket=str(tmp_path / "absent.sock"))
    assert node.unit("docker", "llmfleet-llm-0") == {"pids": [], "restarts": None, "active": False}

    path = tmp_path / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def garbage():
        peer, _address = server.accept()
        peer.recv(4096)
        peer.sendall(b"not http at all\r\n\r\n")
        peer.close()

    threading.Thread(target=garbage, daemon=True).start()
    try:
        node = agent_mod.Node(timeout=0.5, docker_socket=str(path))
        assert node.unit("docker", "llmfleet-llm-0") == {"pids": [], "restarts": None, "active": False}
    finally:
        server.close()
