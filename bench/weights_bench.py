"""Checking a model file's SHA-256 on a node, read in full (what the roles did) against known by its stamp
(llmfleet.cluster.verified_files), from one run on the lab. Prints figures; asserts nothing.

On one lab model node it writes a file of SIZE MiB (default 2048) under /var/tmp, then times, three times
each, one Ansible task on that node:
  - ansible.builtin.ping: what any module call costs here (the floor);
  - ansible.builtin.stat with checksum_algorithm=sha256: the whole file read (model_weights' and
    model_store's check before verified_files, in every run);
  - verified_files with no stamp: the file read once and stamped;
  - verified_files with the stamp: only stat (what a no-op run and a rolling update's staging cost now).
The file is in the node's page cache (it was just written), so the read runs at the speed of SHA-256 on
this CPU: a lower bound. A 70B model in 16 bits (~140 GB) does not fit in memory and is read from disk at
its speed, 0.5-1 GB/s for one SSD: 140-280 s per node, per run, before this. Removes what it wrote.

Usage (lab up): .venv/bin/python bench/weights_bench.py [--node model-a1] [--size-mib 2048]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DIR = "/var/tmp/llmfleet-weights-bench"
FILE = DIR + "/model.bin"
STAMPS = DIR + "/stamps.json"


def ansible(node, module, args, check=True):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", PATH=str(REPO / ".venv/bin") + ":" + os.environ["PATH"])
    started = time.monotonic()
    proc = subprocess.run([str(REPO / ".venv/bin/ansible"), "-i", str(REPO / "inventories/lab"), node, "--become",
                           "-m", module] + (["-a", json.dumps(args)] if args else []), capture_output=True, text=True, env=env, timeout=900,
                          check=False)
    seconds = time.monotonic() - started
    if check and proc.returncode != 0:
        sys.exit(f"{module} failed on {node}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][node] if proc.stdout.strip() else {}
    return seconds, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", default="model-a1")
    parser.add_argument("--size-mib", type=int, default=2048)
    args = parser.parse_args()
    node = args.node
    try:
        ansible(node, "ansible.builtin.shell", {"cmd": f"mkdir -p {DIR} && head -c {args.size_mib}M /dev/urandom > {FILE}"})
        _seconds, result = ansible(node, "ansible.builtin.command", {"argv": ["sha256sum", FILE]})
        digest = result["stdout"].split()[0]
        time.sleep(2.5)  # verified_files stamps a file once its change time is 2 s old (racy-clean)
        entry = {"files": [{"path": FILE, "sha256": digest}], "stamps": STAMPS}
        runs = {"ping (any module call)": [], "stat, checksum sha256 (before)": [],
                "verified_files, no stamp (read, stamped)": [], "verified_files, stamped (now)": []}
        for _round in range(3):
            runs["ping (any module call)"].append(ansible(node, "ansible.builtin.ping", {})[0])
            runs["stat, checksum sha256 (before)"].append(
                ansible(node, "ansible.builtin.stat", {"path": FILE, "checksum_algorithm": "sha256"})[0])
            ansible(node, "ansible.builtin.file", {"path": STAMPS, "state": "absent"})
            seconds, result = ansible(node, "llmfleet.cluster.verified_files", entry)
            assert result["files"][0]["hashed"] and result["files"][0]["state"] == "verified", result
            runs["verified_files, no stamp (read, stamped)"].append(seconds)
            seconds, result = ansible(node, "llmfleet.cluster.verified_files", entry)
            assert not result["files"][0]["hashed"] and result["files"][0]["state"] == "verified", result
            runs["verified_files, stamped (now)"].append(seconds)
    finally:
        ansible(node, "ansible.builtin.file", {"path": DIR, "state": "absent"}, check=False)
    medians = {name: statistics.median(times) for name, times in runs.items()}
    floor = medians["ping (any module call)"]
    print(f"{node}: one file of {args.size_mib} MiB, from the page cache; seconds per task (median of 3: runs)")
    for name, times in runs.items():
        print(f"  {name:44s} {medians[name]:6.2f}  ({', '.join(f'{t:.2f}' for t in times)})")
    read = medians["stat, checksum sha256 (before)"] - floor
    print(f"the read itself: {read:.2f} s ({args.size_mib / 1024 / max(read, 1e-3):.2f} GiB/s over the module call)")
    print(f"stamped / read in full: {medians['verified_files, stamped (now)'] / medians['stat, checksum sha256 (before)']:.2f}; "
          f"stamped / ping: {medians['verified_files, stamped (now)'] / floor:.2f}")
    print(f"at this speed, a 140 GB model read per node and run: {140 / (args.size_mib / 1024 / max(read, 1e-3)):.0f} s "
          "(from disk: slower)")


if __name__ == "__main__":
    main()
