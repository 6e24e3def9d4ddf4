"""Clients of the lab's load balancers, shared by the serving and rolling-update tests."""

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAB_VARS = yaml.safe_load((REPO / "inventories/lab/group_vars/load_balancers/main.yml").read_text())
KEYS = {entry["client"]: entry["key"] for entry in LAB_VARS["load_balancer_api_keys"]}
# The lab's two models: the files in the store, and what each model's nodes serve (name, aliases).
MODEL_FILES = {m["name"]: m for m in yaml.safe_load((REPO / "inventories/lab/group_vars/all/main.yml").read_text())["llmfleet_models"]}
SERVED = {"llm": yaml.safe_load((REPO / "inventories/lab/group_vars/model_nodes/main.yml").read_text()),
          "gemma": yaml.safe_load((REPO / "inventories/lab/host_vars/model-a2.yml").read_text())}
MODELS = [SERVED["llm"]["model_server_model_name"], SERVED["gemma"]["model_server_model_name"]]


class Api:
    """An OpenAI-style client for one LB that trusts only that LB's certificate."""

    def __init__(self, lab, lb):
        self.address = lab.hosts[lb]
        pem = lab.ssh(lb, "sudo -n cat /etc/llmfleet/tls/server.crt")
        assert pem.returncode == 0, pem.stderr
        # Hostname checking on: the certificate must name the LB's address.
        self.context = ssl.create_default_context(cadata=pem.stdout)

    def request(self, path, body=None, key=KEYS["lab-tests"], timeout=30, scheme="https"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{scheme}://{self.address}{path}", data=data, method="POST" if data else "GET")
        req.add_header("Content-Type", "application/json")
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.context), NoRedirect())
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def chat(self, content, max_tokens=4, timeout=30, model=MODELS[0], key=KEYS["lab-tests"]):
        return self.request("/v1/chat/completions", {"model": model, "max_tokens": max_tokens,
                                                     "messages": [{"role": "user", "content": content}]},
                            key=key, timeout=timeout)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def haproxy_stat(lab, lb="lb1", shared=False):
    """{server: {"status", "stot", "scur"}} from the runtime API (show stat CSV); shared: see Lab.ssh."""
    proc = lab.ssh(lb, "echo 'show stat' | sudo -n socat stdio /run/haproxy/admin.sock", shared=shared)
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.strip().splitlines()
    names = header.lstrip("# ").split(",")
    stats = {}
    for row in rows:
        rec = dict(zip(names, row.split(",")))
        # Every model's backend (one per model_server_name); the LB's own sections have no servers.
        if rec["svname"] not in ("BACKEND", "FRONTEND"):
            stats[rec["svname"]] = {"status": rec["status"], "stot": int(rec["stot"]), "scur": int(rec["scur"]),
                                    "last_agt": rec.get("last_agt", "")}
    return stats


class Load:
    """Clients sending chat completions through the LBs until stopped, bounded in time and count;
    every request is kept: (started, ended, status, lb, model). Each client starts at most one request per
    `pace` seconds, so that the lab key's rate limit (600 per minute per LB) is not what fails; the
    clients take the models in turn (the lab's two by default)."""

    def __init__(self, apis, lbs, seconds, max_requests=20000, prompt="Count to three.", max_tokens=4, pace=0.0,
                 models=tuple(MODELS)):
        self.apis, self.lbs, self.prompt, self.max_tokens, self.pace = apis, lbs, prompt, max_tokens, pace
        self.models = models
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.results = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(lb, index), daemon=True)
                        for index, lb in enumerate(lbs)]

    def _client(self, lb, index):
        api = self.apis[lb]
        turn = index
        while not self.stop.is_set() and time.monotonic() < self.deadline and len(self.results) < self.max_requests:
            model = self.models[turn % len(self.models)]
            turn += 1
            started = time.monotonic()
            try:
                status = api.chat(self.prompt, max_tokens=self.max_tokens, timeout=20, model=model)[0]
            except OSError as exc:
                status = repr(exc)
            self.results.append((started, time.monotonic(), status, lb, model))
            self.stop.wait(max(0.0, started + self.pace - time.monotonic()))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def failed(self):
        return [r for r in self.results if r[2] != 200]
