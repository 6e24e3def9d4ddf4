"""Requests/s and p50/p99 latency of chat completions through each load balancer and directly to one
replica, measured in one run from one client host inside the lab (infra1: the firewall lets it reach
both the LBs and the replica ports). Prints figures and ratios; asserts nothing.

Usage (lab up and site.yml applied): .venv/bin/python bench/serving_bench.py [--requests 40] [--concurrency 4]

The client runs on infra1 (sent over SSH as a script): the LB path is HTTPS with an API key through
lb1 (HAProxy) and lb2 (nginx); the direct path is plain HTTP to model-a1's first replica. Sequential
requests show the LB's latency overhead; concurrent requests show throughput (the LBs spread them over
all 12 replicas, the direct path has one). Bounded: requests x targets x 2 phases in all.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CLIENT = r'''
import concurrent.futures, json, ssl, statistics, sys, time, urllib.request
cfg = json.loads(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
body = json.dumps({"model": cfg["model"], "max_tokens": 8,
                   "messages": [{"role": "user", "content": "Name a colour."}]}).encode()

def one(target):
    req = urllib.request.Request(target["url"], data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    if target.get("key"):
        req.add_header("Authorization", "Bearer " + target["key"])
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
        resp.read()
        ok = resp.status == 200
    return time.perf_counter() - t0, ok

def phase(target, n, concurrency):
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        runs = list(pool.map(lambda _: one(target), range(n)))
    wall = time.perf_counter() - t0
    lat = sorted(r[0] for r in runs)
    q = statistics.quantiles(lat, n=100)
    return {"requests": n, "ok": sum(r[1] for r in runs), "rps": n / wall,
            "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * q[98]}

out = {}
for target in cfg["targets"]:
    one(target)  # warm: TLS session, keep-alive pools, prompt cache
    out[target["name"]] = {"sequential": phase(target, cfg["requests"], 1),
                           "concurrent": phase(target, cfg["requests"], cfg["concurrency"])}
print(json.dumps(out))
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    import yaml

    text = (REPO / "inventories/lab/hosts.yml").read_text()
    inv = json.loads(text[text.index("{"):])
    hosts = {name: hv["ansible_host"] for group in inv["all"]["children"].values() for name, hv in group["hosts"].items()}
    key = yaml.safe_load((REPO / "inventories/lab/group_vars/load_balancers/main.yml").read_text())["load_balancer_api_keys"][0]["key"]
    cfg = {
        "model": "smollm2", "requests": args.requests, "concurrency": args.concurrency,
        "targets": [
            {"name": "direct model-a1-r0", "url": f"http://{hosts['model-a1']}:8000/v1/chat/completions"},
            {"name": "lb1 haproxy", "url": f"https://{hosts['lb1']}/v1/chat/completions", "key": key},
            {"name": "lb2 nginx", "url": f"https://{hosts['lb2']}/v1/chat/completions", "key": key},
        ],
    }
    state = REPO / ".lab" / "ssh"
    proc = subprocess.run(
        ["ssh", "-i", str(state / "id_ed25519"), "-o", f"UserKnownHostsFile={state / 'known_hosts'}", "-o", "BatchMode=yes",
         f"admin@{hosts['infra1']}", "python3 - " + subprocess.list2cmdline([json.dumps(cfg)])],
        input=CLIENT, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench client failed: {proc.stderr}")
    results = json.loads(proc.stdout)
    print(f"chat completions (8 tokens), {args.requests} requests per phase, from infra1")
    print(f"{'target':22} {'phase':11} {'ok':>5} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name, phases in results.items():
        for phase, r in phases.items():
            print(f"{name:22} {phase:11} {r['ok']:>5} {r['rps']:7.2f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}")
    direct = results["direct model-a1-r0"]
    for name in ("lb1 haproxy", "lb2 nginx"):
        seq = results[name]["sequential"]
        con = results[name]["concurrent"]
        print(f"{name}: p50 latency ratio LB/direct {seq['p50_ms'] / direct['sequential']['p50_ms']:.2f}, "
              f"p99 {seq['p99_ms'] / direct['sequential']['p99_ms']:.2f}; "
              f"throughput ratio LB/direct at concurrency {args.concurrency}: "
              f"{con['rps'] / direct['concurrent']['rps']:.2f}")


if __name__ == "__main__":
    main()
