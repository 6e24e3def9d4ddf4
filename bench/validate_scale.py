"""Inventory validation and planning time against fleet size, on the controller only. Prints figures; asserts nothing.

For each size N it writes an inventory shaped like inventories/example (its group_vars, three zones,
N model nodes spread over them, two load balancers, one infra host; addresses in 10.40.0.0/16 that
do not exist) and times `ansible-playbook playbooks/validate.yml` on it. No host is contacted: the
validation play gathers no facts and runs only on the controller (an attempt to connect would fail
on those addresses). Then it fits time = a * N^k over the sizes (least squares on logs) and prints k.

With LLMFLEET_BENCH_MODELS=K (default 1) the fleet serves K models behind its load balancers: node i
serves model i mod K (its own model_server_name, model name and alias), so every model is in every zone
and the cross-host model rules (names, aliases, per-model capacity) run on every node. With
LLMFLEET_BENCH_NODE_SERVERS=S (default 0) every node also serves S further models of its own
(model_server_servers: their replicas on ports 8100, 8200..., weights outside the model store), so the
per-node server rules (ports and GPUs across a node's servers, each entry's own checks) run on every node.

Usage: [LLMFLEET_BENCH_MODELS=K] [LLMFLEET_BENCH_NODE_SERVERS=S] .venv/bin/python bench/validate_scale.py [N ...]     (default: 9 90 900 1800)
"""

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ZONES = ("zone-a", "zone-b", "zone-c")


def write_inventory(root: Path, nodes: int, models: int = 1, node_servers: int = 0) -> Path:
    inv = root / f"fleet-{nodes}"
    shutil.copytree(REPO / "inventories" / "example" / "group_vars", inv / "group_vars")
    model_nodes = {}
    for i in range(nodes):
        zone = ZONES[i % len(ZONES)]
        node = model_nodes[f"gpu-{zone[-1]}{i // len(ZONES) + 1}"] = {
            "ansible_host": f"10.40.{i // 250}.{i % 250 + 2}", "llmfleet_zone": zone}
        model = (i // len(ZONES)) % models
        if model:
            node.update(model_server_name=f"m{model}", model_server_model_name=f"model-{model}",
                        model_server_model_aliases=[f"alias-{model}"])
        if node_servers:
            node["model_server_servers"] = [
                {"name": f"extra{j}", "model_name": f"extra-model-{j}", "model_path": f"/opt/weights/extra{j}",
                 "base_port": 8000 + 100 * j} for j in range(1, node_servers + 1)]
    hosts = {"all": {"children": {
        "model_nodes": {"hosts": model_nodes},
        "load_balancers": {"hosts": {
            "lb1": {"ansible_host": "10.41.0.5", "llmfleet_zone": "zone-a"},
            "lb2": {"ansible_host": "10.41.0.6", "llmfleet_zone": "zone-b"}}},
        "infra": {"hosts": {"infra1": {"ansible_host": "10.41.0.7", "llmfleet_zone": "zone-c"}}},
    }}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inv


def time_validation(inv: Path) -> tuple[float, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), "playbooks/validate.yml"],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        return elapsed, "FAILED: " + (proc.stdout[-1500:] + proc.stderr[-500:])
    return elapsed, "ok"


def fitted_exponent(points: list[tuple[int, float]]) -> float:
    xs = [math.log(hosts) for hosts, seconds in points]
    ys = [math.log(seconds) for hosts, seconds in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [9, 90, 900, 1800]
    models = int(os.environ.get("LLMFLEET_BENCH_MODELS", "1"))
    node_servers = int(os.environ.get("LLMFLEET_BENCH_NODE_SERVERS", "0"))
    print(f"models served: {models}, further servers per node: {node_servers}")
    points = []
    with tempfile.TemporaryDirectory(prefix="llmfleet-validate-scale-") as tmp:
        for nodes in sizes:
            inv = write_inventory(Path(tmp), nodes, models, node_servers)
            elapsed, outcome = time_validation(inv)
            hosts = nodes + 3
            print(f"model nodes {nodes:5d} (hosts {hosts:5d}): validation {elapsed:7.1f} s  "
                  f"{1000 * elapsed / hosts:6.1f} ms/host  {outcome}", flush=True)
            if outcome == "ok":
                points.append((hosts, elapsed))
    if len(points) >= 2:
        # A fixed cost (Ansible's start, ~3 s) flattens the curve at small N: the exponent over the
        # two largest sizes is the one that says how it grows.
        print(f"fitted exponent (time ~ hosts^k), all sizes: k = {fitted_exponent(points):.2f}; "
              f"two largest: k = {fitted_exponent(points[-2:]):.2f}")


if __name__ == "__main__":
    main()
