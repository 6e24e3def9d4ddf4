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
MODEL = yaml.safe_load((REPO / "inventories/lab/group_vars/all/main.yml").read_text())["llmfleet_models"][0]


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

    def chat(self, content, max_tokens=4, timeout=30):
        return self.request("/v1/chat/completions", {"model": MODEL["name"], "max_tokens": max_tokens,
                                                     "messages": [{"role": "user", "content": content}]},
                            timeout=timeout)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def haproxy_stat(lab, lb="lb1"):
    """{server: {"status", "stot", "scur"}} from the runtime API (show stat CSV)."""
    proc = lab.ssh(lb, "echo 'show stat' | sudo -n socat stdio /run/haproxy/admin.sock")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.strip().splitlines()
    names = header.lstrip("# ").split(",")
    stats = {}
    for row in rows:
        rec = dict(zip(names, row.split(",")))
        if rec["pxname"] == "llm" and rec["svname"] not in ("BACKEND", "FRONTEND"):
            stats[rec["svname"]] = {"status": rec["status"], "stot": int(rec["stot"]), "scur": int(rec["scur"])}
    return stats


class Load:
    """Clients sending chat completions through the LBs until stopped, bounded in time and count;
    every request is kept: (started, ended, status, lb). Each client starts at most one request per
    `pace` seconds, so that the lab key's rate limit (600 per minute per LB) is not what fails."""

    def __init__(self, apis, lbs, seconds, max_requests=20000, prompt="Count to three.", max_tokens=4, pace=0.0):
        self.apis, self.lbs, self.prompt, self.max_tokens, self.pace = apis, lbs, prompt, max_tokens, pace
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.results = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(lb,), daemon=True) for lb in lbs]

    def _client(self, lb):
        api = self.apis[lb]
        while not self.stop.is_set() and time.monotonic() < self.deadline and len(self.results) < self.max_requests:
            started = time.monotonic()
            try:
                status = api.chat(self.prompt, max_tokens=self.max_tokens, timeout=20)[0]
            except OSError as exc:
                status = repr(exc)
            self.results.append((started, time.monotonic(), status, lb))
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
