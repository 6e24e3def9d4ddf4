"""Prefix affinity against least connections, from one run on the lab: how much of the prompts the
engines serve from their prefix (KV) cache, and the latency. Prints figures; asserts nothing.

Usage (lab up and site.yml applied): .venv/bin/python bench/affinity_bench.py [--requests 160] [--prompts 8]

Workload: --prompts distinct system prompts (a few hundred tokens each, like an application's
instructions) with short user questions, each request naming one system prompt at random, sent through
lb1 (HAProxy) and lb2 (nginx) by 4 clients to the lab's first model (smollm2: 8 replicas). Per mode the
load balancers are reconfigured with the load_balancer role (load_balancer_affinity none, then prefix;
none again at the end), and each mode gets its own prompts, so neither inherits the other's caches.

Cache reuse is read two ways: the answers' usage.prompt_tokens_details.cached_tokens over all prompt
tokens, and the engines' own counters (llama.cpp's llamacpp:prompt_tokens_cached_total and
llamacpp:prompt_tokens_total on every replica of the model, before and after). Bounded: requests x 2 modes.
"""

import argparse
import concurrent.futures
import json
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SERVED = yaml.safe_load((REPO / "inventories/lab/group_vars/model_nodes/main.yml").read_text())
KEYS = yaml.safe_load((REPO / "inventories/lab/group_vars/load_balancers/main.yml").read_text())["load_balancer_api_keys"]
KEY = next(k["key"] for k in KEYS if k["client"] == "lab-tests")
WORDS = ("colour shape river stone market ledger harbour signal archive lantern orchard meadow ferry "
         "compass granite pottery thimble quarry saddle beacon").split()
PLAYBOOK = """---
- name: Plan the replicas
  ansible.builtin.import_playbook: {repo}/playbooks/serving_plan.yml
- name: Load balancers with the mode under test
  hosts: load_balancers
  gather_facts: true
  roles:
    - role: llmfleet.cluster.load_balancer
"""


def lab():
    text = (REPO / "inventories/lab/hosts.yml").read_text()
    inventory = json.loads(text[text.index("{"):])
    hosts = {}
    for group in inventory["all"]["children"].values():
        for name, values in group.get("hosts", {}).items():
            hosts[name] = values
        for child in group.get("children", {}).values():
            hosts.update(child.get("hosts", {}))
    return hosts


def ssh(address, command):
    return subprocess.run(["ssh", "-i", str(REPO / ".lab/ssh/id_ed25519"), "-o", f"UserKnownHostsFile={REPO / '.lab/ssh/known_hosts'}",
                           "-o", "BatchMode=yes", f"admin@{address}", command], capture_output=True, text=True, timeout=60,
                          check=True, stdin=subprocess.DEVNULL).stdout


def configure(mode):
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "lb.yml"
        playbook.write_text(PLAYBOOK.format(repo=REPO))
        started = time.monotonic()
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(REPO / "inventories/lab"),
                               str(playbook), "-e", f"load_balancer_affinity={mode}"], cwd=REPO, capture_output=True,
                              text=True, check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            sys.exit(f"configuring the load balancers for {mode} failed:\n{proc.stdout[-3000:]}")
        return time.monotonic() - started


def engine_counters(hosts):
    """{replica: (cached, processed)} prompt tokens of every replica of the first model."""
    found = {}
    for name, values in hosts.items():
        host_vars = REPO / f"inventories/lab/host_vars/{name}.yml"
        if not name.startswith("model-") or (host_vars.exists() and "model_server_name" in yaml.safe_load(host_vars.read_text())):
            continue  # the second model's nodes (host_vars name their server) are not the model under test
        for index, port in enumerate((8000, 8001)):
            text = ssh(values["ansible_host"], f"curl -s http://127.0.0.1:{port}/metrics")
            values_of = dict(line.split()[:2] for line in text.splitlines() if line.startswith("llamacpp:prompt_tokens"))
            found[f"{name}-r{index}"] = (float(values_of["llamacpp:prompt_tokens_cached_total"]),
                                         float(values_of["llamacpp:prompt_tokens_total"]))
    return found


def system_prompt(rng):
    return "You are the assistant of a team. " + " ".join(rng.choice(WORDS) for _word in range(220)) + \
        ". Answer in one short sentence."


def run(lbs, prompts, requests, seed):
    rng = random.Random(seed)
    systems = [system_prompt(rng) for _prompt in range(prompts)]
    # Each prompt once first (a cold cache everywhere), then at random; chosen here, not in the threads.
    plan = [(i if i < prompts else rng.randrange(prompts), rng.choice(WORDS)) for i in range(requests)]
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def one(i):
        system, word = plan[i]
        body = {"model": SERVED["model_server_model_name"], "max_tokens": 4,
                "messages": [{"role": "system", "content": systems[system]},
                             {"role": "user", "content": f"Question {i}: name a {word}."}]}
        req = urllib.request.Request(f"https://{lbs[i % len(lbs)]}/v1/chat/completions", data=json.dumps(body).encode(),
                                     method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {KEY}")
        started = time.perf_counter()
        with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
            answer = json.loads(resp.read())
        usage = answer.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        return time.perf_counter() - started, cached, usage.get("prompt_tokens", 0)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(requests)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--prompts", type=int, default=8)
    args = parser.parse_args()
    hosts = lab()
    lbs = [hosts[lb]["ansible_host"] for lb in ("lb1", "lb2")]
    figures = {}
    try:
        for seed, mode in enumerate(("none", "prefix")):
            seconds = configure(mode)
            before = engine_counters(hosts)
            results = run(lbs, args.prompts, args.requests, seed)
            after = engine_counters(hosts)
            latencies = sorted(r[0] for r in results)
            cached = sum(after[k][0] - before[k][0] for k in after)
            processed = sum(after[k][1] - before[k][1] for k in after)
            figures[mode] = {
                "requests": len(results),
                "reuse_from_answers": sum(r[1] for r in results) / max(1, sum(r[2] for r in results)),
                "reuse_from_engine_metrics": cached / max(1.0, cached + processed),
                "p50_s": statistics.median(latencies),
                "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                "configure_s": round(seconds, 1),
            }
            print(mode, json.dumps(figures[mode]), flush=True)
    finally:
        configure("none")
    none, prefix = figures.get("none"), figures.get("prefix")
    if none and prefix:
        print(f"prefix affinity / least connections: cache reuse {prefix['reuse_from_engine_metrics']:.2f} vs "
              f"{none['reuse_from_engine_metrics']:.2f} (engine metrics), p50 x{prefix['p50_s'] / none['p50_s']:.2f}, "
              f"p99 x{prefix['p99_s'] / none['p99_s']:.2f}")


if __name__ == "__main__":
    main()
