"""Rolling-update time against its physical limit, from one run on the lab. Prints figures; asserts nothing.

Physical limit of a zone-by-zone update: for each zone, the time its in-flight requests take to
finish (the drain wait the LB module measured) plus the time a replica takes from restart to its
first real completion (measured here by restarting one drained-free replica on its node and polling
a chat completion on 127.0.0.1; a native replica's unit in zone-a, a container in the lab's container
zone: `docker restart`). The zones' replicas restart in parallel, so one restart-to-ready per zone, of
the zone's runtime. The container zone's image pulls happen before any zone is drained (the result's
`image_pulls`): they are printed apart, outside the limit and the zones' times. Overhead = everything
else: Ansible's task round trips, the model_server role's checks, the gate's consecutive checks, the
wait for HAProxy's rise checks. No soak (rolling_update_soak_seconds=0), no client load (drain waits
are then ~0).

Usage (lab up and site.yml applied): .venv/bin/python bench/rolling_update_bench.py
It updates the lab to another llama.cpp context size and back (every zone), then the container zone
to the engine's second image build (b2) and back (real pulls on that zone's nodes; every zone is still
updated: the bench forces each run, rolling_update_force), and leaves the lab on
the release the inventory describes (--context-only: the two context-size runs alone).
Per zone it also counts the host results of the zone's tasks (the JSON callback), on the zone's own nodes
and on the others: each is a worker process forked by the controller (~13 ms on 2 cores, docs/testing.md),
and the others' share is what would grow with the fleet.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".lab" / "ssh"

PROBE = r'''
import json, subprocess, sys, time, urllib.request
body = json.dumps({"model": "smollm2", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}).encode()
subprocess.run(["sudo", "-n"] + sys.argv[1:], check=True, stdout=subprocess.DEVNULL)  # docker restart prints the name
t0 = time.monotonic()
while time.monotonic() - t0 < 120:
    try:
        req = urllib.request.Request("http://127.0.0.1:8001/v1/chat/completions", data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status == 200 and json.loads(resp.read())["choices"][0]["message"]["content"]:
                break
    except OSError:
        pass
    time.sleep(0.05)
print(round(time.monotonic() - t0, 3))
'''


def hosts():
    text = (REPO / "inventories/lab/hosts.yml").read_text()
    inv = json.loads(text[text.index("{"):])
    return inv, {name: hv["ansible_host"] for group in inv["all"]["children"].values()
                 for name, hv in group["hosts"].items()}


def ssh(address, command, stdin=None):
    return subprocess.run(["ssh", "-i", str(STATE / "id_ed25519"), "-o", f"UserKnownHostsFile={STATE / 'known_hosts'}",
                           "-o", "BatchMode=yes", f"admin@{address}", command], input=stdin, capture_output=True,
                          text=True, timeout=300, check=False)


RESTART = {"native": "systemctl restart llmfleet-llm-1.service", "container": "docker restart llmfleet-llm-1"}


def restart_to_ready(address, runtime):
    proc = ssh(address, f"python3 - {RESTART[runtime]}", PROBE)
    if proc.returncode != 0:
        sys.exit(f"restart probe failed: {proc.stderr}")
    return float(proc.stdout.strip())


def run_update(inventory, workdir, label):
    result_file = workdir / f"{label}.json"
    started = time.monotonic()
    # The JSON callback: every task's result per host, to count what each zone costs the controller.
    proc = subprocess.run([str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), "playbooks/rolling_update.yml",
                           "-e", f"rolling_update_result_file={result_file}", "-e", "rolling_update_soak_seconds=0",
                           "-e", "rolling_update_force=true"],
                          cwd=REPO, capture_output=True, text=True, timeout=1800, check=False,
                          env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"rolling update {label} failed:\n{proc.stdout[-4000:]}")
    return wall, json.loads(result_file.read_text()), json.loads(proc.stdout)


def zone_host_results(report, zones):
    """Per zone (in order), how many host results its tasks gave on the zone's own nodes and on other
    nodes. Each is a worker process the controller forked (a skipped task too; a run_once task gives one):
    the other nodes' count is what grows with the fleet when a zone's tasks run on every model node."""
    counts, current = [], None
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"].split(" : ")[-1]
            if name == "Start the zone":
                current = {"own": 0, "others": 0, "other_nodes": set()}
                counts.append(current)
            elif name == "Finish the result":
                current = None
            if current is None:
                continue
            own = set(zones[len(counts) - 1]["hosts"])
            for host in task["hosts"]:
                if host in own:
                    current["own"] += 1
                else:
                    current["others"] += 1
                    current["other_nodes"].add(host)
    return counts


def main():
    inv, addresses = hosts()
    # The lab key is not needed: the probe talks to the replica on its node.
    container_nodes = sorted(inv["all"]["children"]["model_nodes"].get("children", {}).get("container_nodes", {})
                             .get("hosts", {}))
    zone_of = {name: hv["llmfleet_zone"] for name, hv in inv["all"]["children"]["model_nodes"]["hosts"].items()}
    probes = {"native": "model-a1", "container": container_nodes[0] if container_nodes else None}
    r2r_of = {}
    for runtime, node in probes.items():
        if node is None:
            continue
        samples = [restart_to_ready(addresses[node], runtime) for _sample in range(3)]
        r2r_of[runtime] = statistics.median(samples)
        print(f"restart-to-first-completion of one {runtime} replica ({node}): "
              f"{', '.join('%.2f' % s for s in samples)} s (median {r2r_of[runtime]:.2f} s)")
    container_zones = {zone_of[n] for n in container_nodes}
    workdir = Path(tempfile.mkdtemp(prefix="llmfleet-bench-"))
    try:
        other = workdir / "inventory"
        shutil.copytree(REPO / "inventories/lab/group_vars", other / "group_vars")
        shutil.copytree(REPO / "inventories/lab/host_vars", other / "host_vars")
        inv["all"]["children"]["model_nodes"].setdefault("vars", {})["model_server_llamacpp_ctx_size"] = 4096
        (other / "hosts.yml").write_text(json.dumps(inv))
        record = ssh(addresses["model-a1"], "cat /etc/llmfleet/model_server-llm.json")
        running = json.loads(record.stdout)["release"]["model_server_llamacpp_ctx_size"]
        runs = [("ctx 2048 -> 4096", other), ("ctx 4096 -> 2048", REPO / "inventories/lab")]
        if running == 4096:  # left there by the lab tests: go back first, and end on the lab's release
            runs = runs[1:] + runs[:1] + runs[1:]
        if container_nodes and "--context-only" not in sys.argv[1:]:
            # The container zone to the engine's second build and back: real pulls (the result's
            # image_pulls); the image is only that zone's, but every run here is forced, so every zone is
            # updated. group_vars of container_nodes win over model_nodes'.
            image = workdir / "image-b2"
            shutil.copytree(REPO / "inventories/lab", image)
            (image / "group_vars" / "container_nodes" / "zz-bench.yml").write_text(json.dumps(
                {"model_server_image": "{{ llmfleet_lab_registry }}/engines/llamacpp:b2"}))
            runs += [("image b1 -> b2", image), ("image b2 -> b1", REPO / "inventories/lab")]
        for label, inventory in runs:
            wall, result, report = run_update(inventory, workdir, label.replace(" ", "_").replace(">", ""))
            zones = [z for z in result["zones"] if z["status"] == "updated"]
            host_results = zone_host_results(report, zones)
            physical = sum(z.get("drain_wait_seconds", 0)
                           + r2r_of["container" if z["zone"] in container_zones else "native"] for z in zones)
            zone_time = sum(z["seconds"]["total"] for z in zones)
            print(f"\n{label}: {len(zones)} zones updated")
            for node, pulls in sorted(result.get("image_pulls", {}).items()):
                for pull in pulls:
                    print(f"  image pull on {node} before any drain: {float(pull['seconds']):.2f} s "
                          f"({'pulled' if pull['changed'] else 'already there'}: {pull['image']})")
            out_of_pool = 0.0
            for z in zones:
                s = z["seconds"]
                out_of_pool += s["drain"] + s["update"] + s["gate"] + s["enable"]
                print(f"  {z['zone']}: total {s['total']:.1f} s = check {s.get('check', 0):.1f} + baseline "
                      f"{s.get('baseline', 0):.1f} + drain {s['drain']:.1f} (requests {z.get('drain_wait_seconds', 0):.2f})"
                      f" + update {s['update']:.1f} + gate {s['gate']:.1f} + enable {s['enable']:.1f}")
            for z, c in zip(zones, host_results):
                print(f"  {z['zone']}: host results of its tasks: {c['own']} on its {len(z['hosts'])} nodes, {c['others']}"
                      f" on {len(c['other_nodes'])} other nodes ({', '.join(sorted(c['other_nodes']))})")
            # Every pending zone's nodes are prepared at once before the first zone (packages, the
            # release's virtualenv or image, firewall openings): counted with the zones' time.
            prepare = float(result.get("prepare_seconds", 0))
            zone_time += prepare
            print(f"  prepare (every pending zone's nodes at once, while they serve): {prepare:.1f} s")
            print(f"  physical limit (sum of drain waits + one restart-to-ready per zone): {physical:.1f} s")
            print(f"  prepare + zone phases: {zone_time:.1f} s = {zone_time / physical:.1f} x the limit; out of the pool "
                  f"(drain to enabled): {out_of_pool:.1f} s = {out_of_pool / physical:.1f} x the limit")
            print(f"  whole playbook (validation, planning, weights check included): {wall:.1f} s = "
                  f"{wall / physical:.1f} x the limit")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
