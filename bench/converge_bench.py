"""A no-op site.yml against fact gathering on the same hosts, from one run. Prints figures; asserts nothing.

A converged fleet re-run with site.yml should cost little more than reading the hosts' facts: this
prints the time of `ansible all -m setup` and of `ansible-playbook site.yml` (which must report
changed=0 on every host: a run that changed something is not a no-op and is flagged), their
ratio, and the tasks site.yml ran per host (ok + skipped from the recap).

Usage (lab up and site.yml applied once): .venv/bin/python bench/converge_bench.py [INVENTORY]

--floor N: what one module run on one host costs here, from the same run: a playbook of N tasks of the
lightest module (ansible.builtin.ping, through sudo as the roles' tasks) on every host, less an empty
playbook, divided by N and by the hosts; the same with ansible.builtin.raw (no Python on the host: the
connection and sudo alone). Then the no-op's floor - its module runs on hosts (from the JSON callback:
a task on each host it was not skipped on, a loop's items each, without the actions done in the
controller's process such as set_fact or assert) at that cost - and how many module runs the 5x-setup
target leaves per host. A no-op cannot get below its floor without fewer module runs: this tells slow tasks from many.

--mitogen DIR (a directory holding the PyPI package `mitogen`, e.g. pip install --target DIR mitogen):
the no-op run once more with Mitogen's linear strategy (one persistent Python per host instead of one
per task), and its ratio to the same setup figure. --tags T: both runs narrowed to site.yml's tags T
(Mitogen 0.3.54 fails the whole site on ansible-core 2.19, see docs/testing.md; `--tags base,hardening`
compares the two on the same 112 tasks per host).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd, **extra_env):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}", **extra_env)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - started, proc


# Actions done in the controller's own process: no connection, no Python on the host.
CONTROLLER_ACTIONS = {"set_fact", "assert", "debug", "fail", "meta", "include_tasks", "include_role", "import_tasks",
                      "import_role", "validate_argument_spec", "include_vars", "add_host", "group_by",
                      "fleet_validate", "rolling_update_result"}


def playbook(inventory, book, *args, **extra_env):
    """Runs a playbook with the JSON callback: (seconds, process, its JSON or None)."""
    seconds, proc = timed([str(BIN / "ansible-playbook"), "-i", inventory, str(book), *args],
                          ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", **extra_env)
    try:
        return seconds, proc, json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        return seconds, proc, None


def module_runs(run):
    """The module runs of a run on its hosts: each task's results that were not skipped (a loop's items
    each), less the actions done in the controller's process."""
    count = 0
    for play in run["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if (result.get("action") or "").rsplit(".", 1)[-1] in CONTROLLER_ACTIONS:
                    continue
                items = result.get("results")
                count += sum(1 for i in items if not i.get("skipped")) if items else int(not result.get("skipped"))
    return count


def per_run_cost(inventory, count, module):
    """Seconds one run of `module` on one host costs: a playbook of `count` tasks of it on every host,
    less an empty one, divided by the tasks and the hosts."""
    args = {"ansible.builtin.ping": "", "ansible.builtin.raw": " /bin/true"}[module]
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for n in (0, count):
            book = Path(tmp) / f"floor{n}.yml"
            tasks = "".join(f"    - name: Run {i}\n      {module}:{args}\n      changed_when: false\n" for i in range(n))
            book.write_text("- name: Floor\n  hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n"
                            + (tasks or "    []\n"))
            times[n], proc, run = playbook(inventory, book)
            if proc.returncode != 0 or run is None:
                sys.exit(f"the floor playbook failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return (times[count] - times[0]) / count / len(run["stats"])


def no_op(label, inventory, setup_s, tags, floor=None, **extra_env):
    site_s, site, run = playbook(inventory, "site.yml", *(["--tags", tags] if tags else []), **extra_env)
    if run is None:
        sys.exit(f"{label}: site.yml gave no result (rc {site.returncode}):\n{site.stdout[-2000:]}{site.stderr[-2000:]}")
    stats = run["stats"]
    changed = {host: s["changed"] for host, s in stats.items() if s["changed"]}
    failed = {host: s["failures"] + s["unreachable"] for host, s in stats.items() if s["failures"] + s["unreachable"]}
    tasks = [s["ok"] + s["skipped"] for s in stats.values()]
    print(f"{label}: hosts {len(stats)}: setup {setup_s:.1f} s, no-op site.yml {site_s:.1f} s, "
          f"ratio {site_s / setup_s:.1f}x; tasks per host {min(tasks, default=0)}-{max(tasks, default=0)}; "
          f"rc {site.returncode}")
    if floor:
        runs = module_runs(run)
        print(f"  floor: one module run on one host {floor['ping'] * 1000:.0f} ms (ping; raw, without Python: "
              f"{floor['raw'] * 1000:.0f} ms); the no-op's {runs} module runs on hosts ({runs / len(stats):.0f} per "
              f"host) {runs * floor['ping']:.1f} s at that cost, the no-op {site_s / (runs * floor['ping']):.2f}x it; "
              f"5x setup ({5 * setup_s:.1f} s) is {5 * setup_s / floor['ping'] / len(stats):.0f} module runs per host")
    if changed or failed or site.returncode != 0:
        print(f"NOT A NO-OP: changed {changed or 'none'}, failed {failed or 'none'}, rc {site.returncode}\n"
              f"{site.stderr[-3000:]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("inventory", nargs="?", default="inventories/lab")
    parser.add_argument("--mitogen", type=Path, help="a directory holding the mitogen package")
    parser.add_argument("--floor", type=int, metavar="N", help="measure one module run's cost with N tasks")
    parser.add_argument("--tags", help="site.yml's tags for both no-op runs (default: the whole site)")
    args = parser.parse_args()
    setup_s, setup = timed([str(BIN / "ansible"), "-i", args.inventory, "all", "-m", "ansible.builtin.setup"])
    if setup.returncode != 0:
        sys.exit("ansible -m setup failed:\n" + setup.stdout[-2000:])
    floor = ({name: per_run_cost(args.inventory, args.floor, "ansible.builtin." + name) for name in ("ping", "raw")}
             if args.floor else None)
    no_op("ssh (ansible-core)", args.inventory, setup_s, args.tags, floor)
    if args.mitogen:
        strategies = args.mitogen.resolve() / "ansible_mitogen" / "plugins" / "strategy"
        if not strategies.is_dir():
            sys.exit(f"--mitogen {args.mitogen}: no ansible_mitogen/plugins/strategy there")
        no_op("mitogen_linear", args.inventory, setup_s, args.tags, ANSIBLE_STRATEGY_PLUGINS=str(strategies),
              ANSIBLE_STRATEGY="mitogen_linear",
              PYTHONPATH=os.pathsep.join(filter(None, [str(args.mitogen.resolve()), os.environ.get("PYTHONPATH")])))


if __name__ == "__main__":
    main()
