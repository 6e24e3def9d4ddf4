"""A no-op site.yml against fact gathering on the same hosts, from one run. Prints figures; asserts nothing.

A converged fleet re-run with site.yml should cost little more than reading the hosts' facts: this
prints the time of `ansible all -m setup` and of `ansible-playbook site.yml` (which must report
changed=0 on every host: a run that changed something is not a no-op and is flagged), their
ratio, and the tasks site.yml ran per host (ok + skipped from the recap).

Usage (lab up and site.yml applied once): .venv/bin/python bench/converge_bench.py [INVENTORY]

--mitogen DIR (a directory holding the PyPI package `mitogen`, e.g. pip install --target DIR mitogen):
the no-op run once more with Mitogen's linear strategy (one persistent Python per host instead of one
per task), and its ratio to the same setup figure. --tags T: both runs narrowed to site.yml's tags T
(Mitogen 0.3.54 fails the whole site on ansible-core 2.19, see docs/testing.md; `--tags base,hardening`
compares the two on the same 112 tasks per host).
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd, **extra_env):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}", **extra_env)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - started, proc


def no_op(label, inventory, setup_s, tags, **extra_env):
    site_s, site = timed([str(BIN / "ansible-playbook"), "-i", inventory, "site.yml", *(["--tags", tags] if tags else [])],
                         **extra_env)
    recap = re.findall(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                       site.stdout, re.M)
    changed = {host: int(c) for host, _ok, c, _u, _f, _s in recap if int(c)}
    tasks = [int(ok) + int(skipped) for _h, ok, _c, _u, _f, skipped in recap]
    print(f"{label}: hosts {len(recap)}: setup {setup_s:.1f} s, no-op site.yml {site_s:.1f} s, "
          f"ratio {site_s / setup_s:.1f}x; tasks per host {min(tasks, default=0)}-{max(tasks, default=0)}; "
          f"rc {site.returncode}")
    if changed or site.returncode != 0:
        print(f"NOT A NO-OP: changed {changed or 'none'}, rc {site.returncode}\n{site.stdout[-3000:]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("inventory", nargs="?", default="inventories/lab")
    parser.add_argument("--mitogen", type=Path, help="a directory holding the mitogen package")
    parser.add_argument("--tags", help="site.yml's tags for both no-op runs (default: the whole site)")
    args = parser.parse_args()
    setup_s, setup = timed([str(BIN / "ansible"), "-i", args.inventory, "all", "-m", "ansible.builtin.setup"])
    if setup.returncode != 0:
        sys.exit("ansible -m setup failed:\n" + setup.stdout[-2000:])
    no_op("ssh (ansible-core)", args.inventory, setup_s, args.tags)
    if args.mitogen:
        strategies = args.mitogen.resolve() / "ansible_mitogen" / "plugins" / "strategy"
        if not strategies.is_dir():
            sys.exit(f"--mitogen {args.mitogen}: no ansible_mitogen/plugins/strategy there")
        no_op("mitogen_linear", args.inventory, setup_s, args.tags, ANSIBLE_STRATEGY_PLUGINS=str(strategies),
              ANSIBLE_STRATEGY="mitogen_linear",
              PYTHONPATH=os.pathsep.join(filter(None, [str(args.mitogen.resolve()), os.environ.get("PYTHONPATH")])))


if __name__ == "__main__":
    main()
