"""Lab bring-up: time of a cold start (base image built) against a warm one (image cached),
and memory per idle host. Prints figures; asserts nothing.

    sudo .venv/bin/python bench/lab_bringup.py [--cold] [--zones 3 --model-nodes 2 --lbs 2 --infra 1]

Runs a lab named "bench" beside any other lab; --cold first removes the cached base image
(other labs keep their running hosts).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB = [sys.executable, str(REPO / "lab" / "llmfleet_lab.py")]
ENV = dict(os.environ, CONTAINERS_CONF=str(REPO / "lab" / "containers.conf"))
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def lab(*args):
    proc = subprocess.run([*LAB, "--json", *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def up(topology):
    start = time.monotonic()
    info = lab("up", "--name", "bench", *topology)
    return time.monotonic() - start, info


def host_memory_mib():
    out = subprocess.run(["podman", "stats", "--no-stream", "--format", "json"], env=ENV,
                         capture_output=True, text=True, check=True).stdout
    mem = {}
    for row in json.loads(out):
        if row["name"].startswith("llmfleet-bench-"):
            value, unit = re.match(r"([\d.]+)\s*([A-Za-z]+)", row["mem_usage"]).groups()
            mem[row["name"][len("llmfleet-bench-"):]] = float(value) * UNITS[unit] / 1024**2
    return mem


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cold", action="store_true", help="remove the cached base image first")
    p.add_argument("--zones", default="3")
    p.add_argument("--model-nodes", default="2")
    p.add_argument("--lbs", default="2")
    p.add_argument("--infra", default="1")
    args = p.parse_args()
    topology = ["--zones", args.zones, "--model-nodes", args.model_nodes, "--lbs", args.lbs, "--infra", args.infra]
    lab("down", "--name", "bench")
    if args.cold:
        subprocess.run(["podman", "rmi", "-f", lab("status")["image"]], env=ENV, capture_output=True, check=False)
    first, info = up(topology)
    time.sleep(5)  # let the hosts settle after boot before reading memory
    mem = host_memory_mib()
    lab("down", "--name", "bench")
    second, _info = up(topology)
    lab("down", "--name", "bench")
    hosts = len(info["hosts"])
    print(f"hosts: {hosts}")
    print(f"first bring-up:  {first:6.1f} s ({'cold: image built' if args.cold else 'image cached'}, "
          f"image step {info['image_seconds']:.1f} s)")
    print(f"second bring-up: {second:6.1f} s (image cached)")
    print(f"second/first:    {second / first:6.3f}")
    print(f"per host to sshd (second): {second / hosts:5.2f} s")
    print("memory per idle host (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(mem.items())))
    print(f"memory per host: mean {sum(mem.values()) / len(mem):.0f} MiB, max {max(mem.values()):.0f} MiB")


if __name__ == "__main__":
    main()
