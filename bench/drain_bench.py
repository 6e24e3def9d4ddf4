"""A zone's drain under long requests through every load balancer, from one forced update. Prints figures;
asserts nothing.

A drain is over when every LB's in-flight requests to the zone have finished. The LBs are drained at
once, so the drain's physical limit is the slowest LB's wait (lb_member's `waited_seconds`, measured on
the LB); drained one after the other it would be about their sum. Prints, per zone, the drain step (from
its start to its check, as the result file has it), the slowest LB's wait and the ratio of the two (the
rest is Ansible's own time per task, ~1 s on the 2-core lab).

Usage (lab up and site.yml applied): .venv/bin/python bench/drain_bench.py [--clients 6] [--max-tokens 48]
Load: N clients, round robin over the lab's LBs, ask the first model for long completions without a pause
(bounded by --seconds and the update's end). The update
restarts every replica with the release they already run (rolling_update_force) and no soak.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from conftest import LAB, Lab, ansible_env  # noqa: E402  (the lab tests' own client and lab handle)
from lbclient import MODELS, Api, Load  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seconds", type=int, default=600, help="the load's upper bound")
    args = parser.parse_args()
    up = subprocess.run([*LAB, "--json", "up"], capture_output=True, text=True, check=True)
    lab = Lab(json.loads(up.stdout))
    lbs = sorted(lab.load_inventory()["all"]["children"]["load_balancers"]["hosts"])
    apis = {lb: Api(lab, lb) for lb in lbs}
    with tempfile.TemporaryDirectory(prefix="llmfleet-drain-") as workdir:
        result_file = Path(workdir) / "result.json"
        with Load(apis, [lbs[i % len(lbs)] for i in range(args.clients)], seconds=args.seconds,
                  prompt="Write a long story about a fleet of servers.", max_tokens=args.max_tokens,
                  models=(MODELS[0],)) as load:
            time.sleep(3)
            started = time.monotonic()
            proc = subprocess.run([str(REPO / ".venv/bin/ansible-playbook"), "-i", str(lab.inventory.parent),
                                   "playbooks/rolling_update.yml", "-e", "rolling_update_force=true",
                                   "-e", "rolling_update_soak_seconds=0", "-e", f"rolling_update_result_file={result_file}"],
                                  cwd=REPO, capture_output=True, text=True, env=ansible_env(), check=False)
            wall = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"the update failed:\n{proc.stdout[-4000:]}")
        result = json.loads(result_file.read_text())
    took = [request[1] - request[0] for request in load.results]
    print(f"{len(lbs)} LBs, {args.clients} clients, {len(load.results)} requests ({len(load.failed())} failed), "
          f"{sum(took) / max(len(took), 1):.2f} s each on average; the update took {wall:.1f} s")
    for zone in result["zones"]:
        step, slowest = zone["seconds"]["drain"], float(zone.get("drain_wait_seconds") or 0)
        print(f"  {zone['zone']}: drain step {step:.2f} s, slowest LB's wait {slowest:.2f} s"
              + (f" ({step / slowest:.1f} x)" if slowest else ""))


if __name__ == "__main__":
    main()
