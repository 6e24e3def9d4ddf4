"""A no-op site.yml against fact gathering on the same hosts, from one run. Prints figures; asserts nothing.

A converged fleet re-run with site.yml should cost little more than reading the hosts' facts: this
prints the time of `ansible all -m setup` and of `ansible-playbook site.yml` (which must report
changed=0 on every host: a run that changed something is not a no-op and is flagged), their
ratio, and the tasks site.yml ran per host (ok + skipped from the recap).

Usage (lab up and site.yml applied once): .venv/bin/python bench/converge_bench.py [INVENTORY]
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - started, proc


def main():
    inventory = sys.argv[1] if len(sys.argv) > 1 else "inventories/lab"
    setup_s, setup = timed([str(BIN / "ansible"), "-i", inventory, "all", "-m", "ansible.builtin.setup"])
    if setup.returncode != 0:
        sys.exit("ansible -m setup failed:\n" + setup.stdout[-2000:])
    site_s, site = timed([str(BIN / "ansible-playbook"), "-i", inventory, "site.yml"])
    recap = re.findall(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                       site.stdout, re.M)
    changed = {host: int(c) for host, _ok, c, _u, _f, _s in recap if int(c)}
    tasks = [int(ok) + int(skipped) for _h, ok, _c, _u, _f, skipped in recap]
    print(f"hosts {len(recap)}: setup {setup_s:.1f} s, no-op site.yml {site_s:.1f} s, ratio {site_s / setup_s:.1f}x; "
          f"tasks per host {min(tasks, default=0)}-{max(tasks, default=0)}; rc {site.returncode}")
    if changed or site.returncode != 0:
        print(f"NOT A NO-OP: changed {changed or 'none'}, rc {site.returncode}")


if __name__ == "__main__":
    main()
