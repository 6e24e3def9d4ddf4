"""Zone-failure drill figures, from one run on the lab. Prints figures; asserts nothing itself.

Runs tests/integration/test_zone_drill.py (lab up and site.yml applied): a whole zone's replicas
stopped under load through both load balancers, once with the lab's all_active pools and once with
lb1 switched to local_preferred (the other zones its backups; switched back after), and prints what
each run measured: how long until HAProxy had the zone out, and per LB the requests during the fault,
the failures (requests in flight on the zone when it stopped) and the failures after the zone was out.

Usage: .venv/bin/python bench/zone_drill.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / ".lab" / "results"


def main():
    env = dict(os.environ, LLMFLEET_LAB_CONVERGED="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "lab or manual",
                           str(REPO / "tests/integration/test_zone_drill.py")], cwd=REPO, env=env, check=False)
    for name in ("all-active", "local-preferred"):
        path = RESULTS / f"zone-drill-{name}.json"
        if not path.exists():
            print(f"{name}: no result (the drill did not run)")
            continue
        report = json.loads(path.read_text())
        print(f"{name}: {report['zone']} ({', '.join(report['nodes'])}) out of HAProxy's pool after "
              f"{report['seconds_haproxy_zone_out']} s")
        for lb, figures in report["lbs"].items():
            print(f"  {lb}: {figures['during_fault']} requests during the fault, {figures['failed']} failed "
                  f"(last started {figures['last_failure_started_s']} s after the stop), "
                  f"{figures['failed_after_zone_out']} after the zone was out")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
