"""llmfleet fault agent: tells HAProxy which replicas of this node to take out of the pool.

HAProxy's agent-check connects to this agent for every replica (server) of the node, sends the
server's name and a newline (agent-send) and applies the one-line answer. What only the node can
see decides the answer:
- a replica whose processes are stopped (SIGSTOP, a debugger)           -> "down #stopped ..."
- a replica with requests running but no progress for stall_seconds
  (its engine's own counters), or whose metrics go unanswered that long -> "down #stall ..."
- a replica restarted restart_limit times within restart_window, the
  last one less than restart_quiet ago                                  -> "down #restart loop ..."
- a GPU of the replica with a fatal Xid in the kernel log, gone from
  nvidia-smi, or nvidia-smi failing                                     -> "down #GPU ..."
- a GPU with uncorrected ECC errors or remapped rows pending             -> "up 0% #GPU ..." (drain)
- a watched file system (the weights) with too little space left        -> "up 0% #disk ..." (drain)
- otherwise                                                             -> "up 100%"
Weight 0 rather than the agent's "drain" word: "drain" and "ready" set the server's administrative
state, which the rolling update sets through the runtime API; an agent answering "ready" would undo
an operator's drain. A weight and the operational state are the agent's own. HAProxy treats an agent
that cannot be reached as no news (the health check still runs), so the agent failing takes nothing
out of the pool.

"status" instead of a name answers every replica's verdict and the checks' state as JSON.
Stdlib only: it runs with the node's python3. Installed by llmfleet.cluster.fault_agent.
"""

import argparse
import collections
import http.client
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# Per engine: the gauges of requests being generated now, and the counters that grow while they
# make progress (any of them growing is progress). llama.cpp's tokens_predicted_total grows only when
# a request ends, n_decode_total at every decoding step. Ollama has no metrics: only the process checks.
ENGINE_METRICS = {
    "llamacpp": (("llamacpp:requests_processing",),
                 ("llamacpp:n_decode_total", "llamacpp:tokens_predicted_total", "llamacpp:prompt_tokens_total")),
    "vllm": (("vllm:num_requests_running",), ("vllm:generation_tokens_total", "vllm:prompt_tokens_total")),
    "tgi": (("tgi_batch_current_size",), ("tgi_batch_forward_duration_count",)),
}
# Xids after which a GPU cannot be trusted until it is reset (NVIDIA's XID catalogue: "reset GPU" or
# "reboot" as the action): 48 double-bit ECC, 61/62 internal micro-controller, 63/64 row remapping,
# 74 NVLink, 79 fallen off the bus, 92 high single-bit ECC rate, 94/95 contained/uncontained ECC,
# 109 context switch timeout, 119/120 GSP, 140 unrecovered ECC.
DEFAULT_XID_FATAL = (48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 109, 119, 120, 140)
XID_PATTERN = re.compile(r"NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+)")
SETTINGS = {
    "listen": "0.0.0.0", "port": 9107, "interval": 1.0, "probe_timeout": 2.0, "stall_seconds": 10.0,
    "restart_limit": 3, "restart_window": 300.0, "restart_quiet": 30.0, "disk_paths": [], "disk_min_free_percent": 5.0,
    "gpu": "auto", "gpu_interval": 10.0, "xid_fatal": list(DEFAULT_XID_FATAL), "dcgm_url": "", "replicas": [],
}
REPLICA_KEYS = ("name", "watch", "metrics_url", "engine", "gpus")


def config_problems(config):
    """What is wrong with a configuration (a dict), as 'key: why' lines."""
    problems = ["%s: not a setting of the agent" % key for key in sorted(set(config) - set(SETTINGS))]
    for key, high in (("port", 65535), ("restart_limit", None)):
        value = config.get(key, SETTINGS[key])
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high and value > high):
            problems.append("%s: %r is not a whole number from 1%s" % (key, value, " to %d" % high if high else ""))
    for key in ("interval", "probe_timeout", "stall_seconds", "restart_window", "restart_quiet", "gpu_interval"):
        value = config.get(key, SETTINGS[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            problems.append("%s: %r is not a number of seconds above 0" % (key, value))
    value = config.get("disk_min_free_percent", SETTINGS["disk_min_free_percent"])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 100:
        problems.append("disk_min_free_percent: %r is not a percentage from 0 to 99" % (value,))
    if config.get("gpu", "auto") not in ("auto", "on", "off"):
        problems.append("gpu: %r is not auto, on or off" % (config.get("gpu"),))
    names = set()
    for index, replica in enumerate(config.get("replicas") or []):
        if not isinstance(replica, dict) or sorted(replica) != sorted(REPLICA_KEYS):
            problems.append("replicas[%d]: give exactly %s" % (index, ", ".join(REPLICA_KEYS)))
            continue
        if replica["name"] in names:
            problems.append("replicas[%d]: name %s is given twice" % (index, replica["name"]))
        names.add(replica["name"])
        if not re.match(r"^(systemd|docker):\S+$", str(replica["watch"])):
            problems.append("replicas[%d]: watch %r is not systemd:UNIT or docker:CONTAINER" % (index, replica["watch"]))
        if replica["engine"] not in ENGINE_METRICS and replica["engine"] != "ollama":
            problems.append("replicas[%d]: engine %r is not known" % (index, replica["engine"]))
    return problems


def load_config(path):
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    if not isinstance(config, dict):
        raise ValueError("%s: not a JSON object" % path)
    problems = config_problems(config)
    if problems:
        raise ValueError("%s: %s" % (path, "; ".join(problems)))
    merged = dict(SETTINGS)
    merged.update(config)
    return merged


# ------------------------------------------------------------------ parsing what the node says

def parse_metrics(text):
    """{metric name: sum of its samples} from Prometheus text exposition."""
    sums = collections.defaultdict(float)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_end = len(line)
        for stop in ("{", " "):
            found = line.find(stop)
            if 0 <= found < name_end:
                name_end = found
        rest = line[name_end:]
        if rest.startswith("{"):
            close = rest.rfind("}")
            rest = rest[close + 1:] if close >= 0 else ""
        fields = rest.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        sums[line[:name_end]] += value
    return dict(sums)


LABEL_PATTERN = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text, name):
    """[(labels, value)] of one metric's samples in Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in ("{", " "):
            continue
        labels, rest = {}, line[len(name):]
        if rest.startswith("{"):
            close = rest.rfind("}")
            labels = dict(LABEL_PATTERN.findall(rest[1:close]))
            rest = rest[close + 1:]
        try:
            samples.append((labels, float(rest.split()[0])))
        except (IndexError, ValueError):
            continue
    return samples


def parse_dcgm_xids(text):
    """{pci key or uuid: last Xid} from the DCGM exporter's DCGM_FI_DEV_XID_ERRORS (the value of the
    last Xid each GPU had; 0 for none). The value stays until the exporter restarts
    (NVIDIA/dcgm-exporter#500), as the kernel log's line stays until a reboot. Exporters before 3.3.7
    have no pci_bus_id label: the GPU's UUID then names it."""
    xids = {}
    for labels, value in parse_samples(text, "DCGM_FI_DEV_XID_ERRORS"):
        if value > 0:
            key = pci_key(labels["pci_bus_id"]) if labels.get("pci_bus_id") else labels.get("UUID", "").lower()
            xids[key] = int(value)
    return xids


def parse_properties(text):
    """KEY=VALUE lines (systemctl show) as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def parse_kmsg(record):
    """(sequence, message) of one /dev/kmsg record ("prio,seq,usec,flags;message")."""
    head, _sep, message = record.partition(";")
    fields = head.split(",")
    try:
        return int(fields[1]), message.strip()
    except (IndexError, ValueError):
        return None, record.strip()


def parse_xid(message):
    """(pci bus id as 'DDDD:BB:DD', xid) of an NVRM Xid kernel message, else None."""
    match = XID_PATTERN.search(message)
    if not match:
        return None
    return pci_key(match.group(1)), int(match.group(2))


def pci_key(address):
    """Domain, bus and device of a PCI address in any of the forms the driver and nvidia-smi write
    ("0000:3b:00", "00000000:3B:00.0"): lower case, the domain cut to 4 digits, no function."""
    parts = address.lower().split(":")
    if len(parts) < 3:
        return address.lower()
    return "%s:%s:%s" % (parts[-3][-4:].rjust(4, "0"), parts[-2], parts[-1].split(".")[0])


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def parse_gpus(text):
    """nvidia-smi --query-gpu=index,uuid,pci.bus_id,ecc.errors.uncorrected.volatile.total
    --format=csv,noheader,nounits -> [{"index", "uuid", "pci", "ecc_uncorrected"}]."""
    gpus = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 4:
            continue
        gpus.append({"index": fields[0], "uuid": fields[1], "pci": pci_key(fields[2]),
                     "ecc_uncorrected": _number(fields[3])})
    return gpus


def parse_remapped_rows(text):
    """nvidia-smi --query-remapped-rows=gpu_uuid,remapped_rows.pending,remapped_rows.failure
    --format=csv,noheader -> {uuid: {"pending": bool, "failure": bool}}."""
    rows = {}
    for line in text.splitlines():
        fields = [f.strip().lower() for f in line.split(",")]
        if len(fields) >= 3 and fields[0].startswith("gpu-"):
            rows[fields[0]] = {"pending": fields[1] in ("yes", "1", "true"), "failure": fields[2] in ("yes", "1", "true")}
    return rows


# ------------------------------------------------------------------ the node, behind one object

class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: the Docker Engine API on dockerd's socket."""

    def __init__(self, socket_path, timeout):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Node:
    """What the agent reads from the node. Tests pass their own object with the same methods."""

    def __init__(self, timeout, docker_socket="/var/run/docker.sock"):
        self.timeout = timeout
        self.docker_socket = docker_socket
        self.kmsg = None
        self.kmsg_error = ""

    def run(self, args):
        """(rc, stdout, stderr); rc 127 when the program is not there."""
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=self.timeout, check=False)
        except FileNotFoundError:
            return 127, "", "%s: not found" % args[0]
        except subprocess.TimeoutExpired:
            return 124, "", "%s: no answer in %s s" % (args[0], self.timeout)
        return proc.returncode, proc.stdout, proc.stderr

    def metrics(self, url):
        """("ok", text), ("timeout", why) when connected but unanswered, ("error", why) otherwise."""
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                return "ok", resp.read().decode("utf-8", "replace")
        except (socket.timeout, TimeoutError) as exc:
            return "timeout", str(exc) or "timed out"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                return "timeout", str(exc.reason)
            return "error", str(exc.reason)
        except (OSError, ValueError) as exc:
            return "error", str(exc)

    def unit(self, kind, name):
        """{"pids": [...], "restarts": int or None, "active": bool, "run": str} of a replica's unit or
        container; "run" names its current run (systemd's InvocationID; the container's start time), ""
        when unknown."""
        if kind == "systemd":
            rc, out, _err = self.run(["systemctl", "show", "--property=MainPID,NRestarts,ActiveState,ControlGroup,InvocationID",
                                      name])
            props = parse_properties(out) if rc == 0 else {}
            group = props.get("ControlGroup", "")
            pids = self.cgroup_pids([group]) if group else []
            main = props.get("MainPID", "0")
            if not pids and main.isdigit() and int(main) > 0:
                pids = [int(main)]
            restarts = props.get("NRestarts", "")
            return {"pids": pids, "restarts": int(restarts) if restarts.isdigit() else None,
                    "active": props.get("ActiveState") == "active", "run": props.get("InvocationID", "")}
        found = self.container(name)
        state = found.get("State") or {}
        cid = found.get("Id") or ""
        if not cid:
            return {"pids": [], "restarts": None, "active": False}
        pids = self.cgroup_pids(["/system.slice/docker-%s.scope" % cid, "/docker/%s" % cid])
        main = state.get("Pid")
        if not pids and isinstance(main, int) and main > 0:
            pids = [main]
        restarts = found.get("RestartCount")
        return {"pids": pids, "restarts": restarts if isinstance(restarts, int) else None,
                "active": state.get("Running") is True, "run": "%s %s" % (cid, state.get("StartedAt") or "")}

    def container(self, name):
        """What dockerd holds about a container (GET /containers/NAME/json), {} when it is not there or
        dockerd does not answer. Asked over dockerd's socket: `docker inspect`, a Go program started for
        every container every second, took ~37 ms of CPU each time (measured on a lab node), more than
        the rest of the agent; a request on the socket takes ~1 ms."""
        connection = UnixHTTPConnection(self.docker_socket, self.timeout)
        try:
            connection.request("GET", "/containers/%s/json" % urllib.parse.quote(name, safe=""))
            answer = connection.getresponse()
            body = answer.read()
            if answer.status != 200:
                return {}
            found = json.loads(body.decode("utf-8"))
            return found if isinstance(found, dict) else {}
        except (OSError, http.client.HTTPException, ValueError):
            return {}
        finally:
            connection.close()

    @staticmethod
    def cgroup_pids(groups):
        for group in groups:
            try:
                with open("/sys/fs/cgroup%s/cgroup.procs" % group, encoding="ascii") as handle:
                    return [int(line) for line in handle if line.strip().isdigit()]
            except OSError:
                continue
        return []

    @staticmethod
    def process_state(pid):
        """The state letter of /proc/PID/stat (R, S, D, T, t, Z...), '' when the process is gone."""
        try:
            with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return ""

    @staticmethod
    def free_percent(path):
        stats = os.statvfs(path)
        return 100.0 * stats.f_bavail / stats.f_blocks if stats.f_blocks else 100.0

    def kernel_messages(self):
        """New kernel log messages since the last call (all since boot on the first): /dev/kmsg,
        which needs CAP_SYSLOG where kernel.dmesg_restrict is 1 (the unit grants it alone)."""
        if self.kmsg is None and not self.kmsg_error:
            try:
                self.kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                self.kmsg_error = "/dev/kmsg: %s" % exc.strerror
        if self.kmsg is None:
            return []
        messages = []
        while True:
            try:
                record = os.read(self.kmsg, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue  # records overwritten before we read them; the next read goes on
            except OSError as exc:
                self.kmsg_error = "/dev/kmsg: %s" % exc.strerror
                os.close(self.kmsg)
                self.kmsg = None
                break
            if not record:
                break
            messages.append(parse_kmsg(record.decode("utf-8", "replace"))[1])
        return messages


# ------------------------------------------------------------------ deciding

class Agent:
    """Probes the node every interval and keeps each replica's answer; clock is injected."""

    def __init__(self, config, node, clock=time.monotonic):
        self.config, self.node, self.clock = config, node, clock
        self.replicas = {r["name"]: r for r in config["replicas"]}
        self.state = dict((name, {"progress_at": None, "counter": None, "unanswered_since": None,
                                  "restarts": None, "run": "", "run_due": False,
                                  "restart_times": collections.deque()})
                          for name in self.replicas)
        self.answers = dict((name, ("up 100%", "")) for name in self.replicas)
        self.gpu = {"enabled": config["gpu"] != "off" and any(r["gpus"] for r in config["replicas"]),
                    "checked_at": None, "gpus": [], "error": "", "remapped": {}, "remapped_supported": True,
                    "xids": {}, "kernel_log": ""}
        self.disk = {}
        self.lock = threading.Lock()

    # --- checks of one replica
    def _progress(self, name, replica, now):
        """'' or why the replica is stalled."""
        state = self.state[name]
        gauges, counters = ENGINE_METRICS.get(replica["engine"], ((), ()))
        if not replica["metrics_url"] or not counters:
            return ""
        kind, payload = self.node.metrics(replica["metrics_url"])
        stall = self.config["stall_seconds"]
        if kind == "timeout":
            state["unanswered_since"] = state["unanswered_since"] or now
            if now - state["unanswered_since"] >= stall:
                return "stall: metrics unanswered for %d s" % (now - state["unanswered_since"])
            return ""
        state["unanswered_since"] = None
        if kind != "ok":
            # Not listening (starting, or gone): the health check's business, and no stall.
            state["progress_at"], state["counter"] = now, None
            return ""
        values = parse_metrics(payload)
        running = sum(values.get(g, 0.0) for g in gauges)
        counter = sum(values.get(c, 0.0) for c in counters)
        if running <= 0 or counter != state["counter"] or state["progress_at"] is None:
            state["progress_at"] = now
        state["counter"] = counter
        if now - state["progress_at"] >= stall:
            return "stall: %d requests running, no progress for %d s" % (running, now - state["progress_at"])
        return ""

    def _process(self, name, replica, now):
        """('' or why down, seen restarts) from the unit or container and its processes."""
        kind, unit = replica["watch"].split(":", 1)
        info = self.node.unit(kind, unit)
        state = self.state[name]
        window = self.config["restart_window"]
        run = info.get("run", "")
        if info["restarts"] is not None:
            new_run = bool(run and state["run"] and run != state["run"])
            if state["restarts"] is not None and info["restarts"] > state["restarts"]:
                state["restart_times"].extend([now] * (info["restarts"] - state["restarts"]))
                # The service manager counts a restart before its new run starts: a look in between sees
                # the count grown on the old run, and the next look the new run that belongs to it.
                state["run_due"] = not new_run
            elif state["restarts"] is not None and (info["restarts"] < state["restarts"]
                                                    or (new_run and not state["run_due"])):
                # Started on purpose (systemctl restart, a new container: a rollback, an update): the
                # agent counts afresh. Otherwise a release rolled back after it crashed in a loop stays out
                # of the pool until restart_quiet has passed (seen in CI). systemd resets NRestarts only when
                # the unit was running: restarted while it waited to restart on its own (auto-restart) it
                # keeps the count (systemd 252, measured), so a new run that no counted restart explains
                # is a deliberate start too.
                state["restart_times"].clear()
                state["run_due"] = False
            elif new_run:
                state["run_due"] = False
            state["restarts"] = info["restarts"]
            state["run"] = run
        while state["restart_times"] and now - state["restart_times"][0] > window:
            state["restart_times"].popleft()
        # A loop goes on restarting; one that has stayed up for restart_quiet since its last restart is
        # over (a release rolled back after it crashed: systemd does not always count afresh when the
        # rollback restarts a unit that was between two automatic restarts - seen in CI).
        if len(state["restart_times"]) >= self.config["restart_limit"] \
                and now - state["restart_times"][-1] < self.config["restart_quiet"]:
            return "restart loop: %d restarts in %d s" % (len(state["restart_times"]), window)
        stopped = [pid for pid in info["pids"] if self.node.process_state(pid) in ("T", "t")]
        if stopped:
            return "stopped: process %s is stopped (SIGSTOP or a debugger)" % ", ".join(str(p) for p in stopped)
        return ""

    # --- node-wide checks
    def _check_gpus(self, now):
        gpu = self.gpu
        if not gpu["enabled"] or (gpu["checked_at"] is not None and now - gpu["checked_at"] < self.config["gpu_interval"]):
            return
        gpu["checked_at"] = now
        rc, out, err = self.node.run(["nvidia-smi", "--query-gpu=index,uuid,pci.bus_id,ecc.errors.uncorrected.volatile.total",
                                      "--format=csv,noheader,nounits"])
        if rc == 127 and self.config["gpu"] == "auto":
            gpu["enabled"], gpu["error"] = False, "nvidia-smi is not installed: GPU checks off"
            return
        gpu["error"] = "" if rc == 0 else "nvidia-smi failed (rc %d): %s" % (rc, (err or out).strip()[:200])
        gpu["gpus"] = parse_gpus(out) if rc == 0 else []
        if rc == 0 and gpu["remapped_supported"]:
            rc2, out2, _err2 = self.node.run(["nvidia-smi", "--query-remapped-rows=gpu_uuid,remapped_rows.pending,remapped_rows.failure",
                                              "--format=csv,noheader"])
            # GPUs before Ampere have no row remapping: the query fails, and is not asked again.
            gpu["remapped_supported"] = rc2 == 0
            gpu["remapped"] = parse_remapped_rows(out2) if rc2 == 0 else {}
        for message in self.node.kernel_messages():
            found = parse_xid(message)
            if found:
                gpu["xids"].setdefault(found[0], []).append(found[1])
        gpu["kernel_log"] = getattr(self.node, "kmsg_error", "")
        # The node's DCGM exporter, where it runs, reports each GPU's last Xid too: a second source where
        # the kernel log cannot be read (a sandbox, a VM without /dev/kmsg).
        if self.config["dcgm_url"]:
            kind, payload = self.node.metrics(self.config["dcgm_url"])
            gpu["dcgm"] = "" if kind == "ok" else "%s: %s" % (self.config["dcgm_url"], payload)
            for key, xid in (parse_dcgm_xids(payload).items() if kind == "ok" else ()):
                if xid not in gpu["xids"].get(key, []):
                    gpu["xids"].setdefault(key, []).append(xid)

    def _gpu_verdict(self, replica):
        """('down' or 'drain' or '', why) for the replica's GPUs."""
        gpu = self.gpu
        if not gpu["enabled"] or not replica["gpus"]:
            return "", ""
        if gpu["error"]:
            return "down", "GPU: " + gpu["error"]
        fatal = set(self.config["xid_fatal"])
        drain = ""
        for wanted in replica["gpus"]:
            match = [g for g in gpu["gpus"] if str(wanted) in (g["index"], g["uuid"])]
            if not match:
                return "down", "GPU %s: not seen by nvidia-smi" % wanted
            card = match[0]
            seen = list(gpu["xids"].get(card["pci"], ())) + list(gpu["xids"].get(card["uuid"].lower(), ()))
            xids = sorted(set(x for x in seen if x in fatal))
            if xids:
                return "down", "GPU %s: Xid %s in the kernel log (reset the GPU or reboot)" % (wanted, ", ".join(map(str, xids)))
            rows = gpu["remapped"].get(card["uuid"].lower(), {})
            if rows.get("failure"):
                return "down", "GPU %s: row remapping failed" % wanted
            if rows.get("pending"):
                drain = drain or "GPU %s: remapped rows pending (reset the GPU)" % wanted
            if card["ecc_uncorrected"]:
                drain = drain or "GPU %s: %d uncorrected ECC errors" % (wanted, card["ecc_uncorrected"])
        return ("drain", drain) if drain else ("", "")

    def _check_disks(self):
        low = ""
        for path in self.config["disk_paths"]:
            try:
                free = self.node.free_percent(path)
            except OSError:
                continue  # not mounted yet: nothing to judge
            self.disk[path] = round(free, 1)
            if free < self.config["disk_min_free_percent"] and not low:
                low = "disk: %s has %.1f %% free" % (path, free)
        return low

    def probe(self):
        """One round over every replica; returns the answers."""
        now = self.clock()
        self._check_gpus(now)
        disk = self._check_disks()
        answers = {}
        for name, replica in self.replicas.items():
            down = self._process(name, replica, now) or self._progress(name, replica, now)
            gpu_word, gpu_why = self._gpu_verdict(replica)
            if down or gpu_word == "down":
                answers[name] = ("down", down or gpu_why)
            elif gpu_word == "drain" or disk:
                answers[name] = ("up 0%", gpu_why or disk)
            else:
                answers[name] = ("up 100%", "")
        with self.lock:
            self.answers = answers
        return answers

    def answer(self, request):
        """The line HAProxy gets for a server name, or the status document."""
        request = request.strip()
        if request == "status":
            return json.dumps(self.status(), sort_keys=True) + "\n"
        with self.lock:
            word, why = self.answers.get(request, ("up 100%", "not a replica of this node"))
        # '#' starts the free text HAProxy shows on its stats page; keep it one short line.
        return "%s%s\n" % (word, (" #" + why.replace("\n", " ")[:120]) if why else "")

    def status(self):
        with self.lock:
            answers = dict((name, {"answer": word, "why": why}) for name, (word, why) in self.answers.items())
        gpu = dict((k, v) for k, v in self.gpu.items() if k not in ("checked_at",))
        return {"replicas": answers, "gpu": gpu, "disk": dict(self.disk)}


# ------------------------------------------------------------------ serving HAProxy

class Handler(socketserver.StreamRequestHandler):
    timeout = 2  # HAProxy sends the name at once (agent-send); a silent peer gets the default answer

    def handle(self):
        try:
            line = self.rfile.readline(256).decode("ascii", "replace")
        except (socket.timeout, TimeoutError, OSError):
            line = ""
        self.wfile.write(self.server.agent.answer(line).encode("utf-8"))


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, agent):
        self.agent = agent
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        socketserver.TCPServer.__init__(self, address, Handler)


def run(config):
    agent = Agent(config, Node(config["probe_timeout"]))
    server = Server((config["listen"], config["port"]), agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("llmfleet-fault-agent: %d replicas, listening on %s:%d" % (len(agent.replicas), config["listen"], config["port"]),
          flush=True)
    last = {}
    while True:
        started = time.monotonic()
        answers = agent.probe()
        for name, answer in answers.items():
            if last.get(name) != answer:
                print("llmfleet-fault-agent: %s: %s%s" % (name, answer[0], (" (" + answer[1] + ")") if answer[1] else ""),
                      flush=True)
        last = answers
        time.sleep(max(0.05, config["interval"] - (time.monotonic() - started)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="/etc/llmfleet/fault-agent.json")
    parser.add_argument("--check-config", metavar="PATH", help="check a configuration file and exit")
    parser.add_argument("--once", action="store_true", help="probe once (twice for progress) and print the status")
    parser.add_argument("--ask", metavar="WORDS", help="send WORDS to the agent listening on --port and print its answer")
    parser.add_argument("--port", type=int, default=SETTINGS["port"])
    args = parser.parse_args(argv)
    if args.ask is not None:
        with socket.create_connection(("127.0.0.1", args.port), timeout=5) as conn:
            conn.sendall(args.ask.encode() + b"\n")
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        sys.stdout.write(data.decode("utf-8", "replace"))
        return 0
    try:
        config = load_config(args.check_config or args.config)
    except (OSError, ValueError) as exc:
        print("llmfleet-fault-agent: %s" % exc, file=sys.stderr)
        return 2
    if args.check_config:
        return 0
    if args.once:
        agent = Agent(config, Node(config["probe_timeout"]))
        agent.probe()
        print(json.dumps(agent.status(), indent=2, sort_keys=True))
        return 0
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
