"""Independent audit: ssh-audit (Debian's package, written by nobody here) against a lab host
hardened by playbooks/hardening.yml and an untouched one from the same image. Prints both
results and a summary; asserts nothing.

    sudo .venv/bin/python bench/ssh_audit_compare.py [--keep]

Runs a lab named "audit" (two hosts) beside any other lab and removes it afterwards.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB = [sys.executable, str(REPO / "lab" / "llmfleet_lab.py")]
HOSTS = [{"name": "audit-stock", "groups": ["infra"]}, {"name": "audit-hardened", "groups": ["infra"]}]
LINE = re.compile(r"^\((kex|key|enc|mac|gen)\) (\S+).*?-- \[(fail|warn|info)\] (.*)$")
CONTINUATION = re.compile(r"^\s+`- \[(fail|warn|info)\] (.*)$")


def audit(address):
    proc = subprocess.run(["ssh-audit", "-n", address], capture_output=True, text=True, check=False)
    findings, current = [], None
    for line in proc.stdout.splitlines():
        match = LINE.match(line)
        if match:
            current = (match.group(1), match.group(2))
            findings.append((*current, match.group(3), match.group(4)))
            continue
        cont = CONTINUATION.match(line)
        if cont and current:
            findings.append((*current, cont.group(1), cont.group(2)))
    recommendations = [line for line in proc.stdout.splitlines() if line.startswith("(rec)")]
    return proc.returncode, proc.stdout, findings, recommendations


def summary(findings):
    counts = collections.Counter(level for _s, _a, level, _t in findings if level in ("fail", "warn"))
    bad = sorted({f"{section}:{alg} [{level}] {text}" for section, alg, level, text in findings if level in ("fail", "warn")})
    return counts, bad


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the audit lab running")
    args = parser.parse_args()
    info = json.loads(subprocess.run([*LAB, "--json", "up", "--name", "audit", "--hosts-json", json.dumps(HOSTS)],
                                     capture_output=True, text=True, check=True).stdout)
    inventory = Path(info["inventory"])
    group_vars = inventory.parent / "group_vars"
    if not group_vars.exists():
        group_vars.symlink_to(REPO / "inventories" / "lab" / "group_vars")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    try:
        subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "--limit", "audit-hardened",
                        str(REPO / "playbooks/validate.yml"), str(REPO / "playbooks/base.yml"),
                        str(REPO / "playbooks/hardening.yml")], cwd=REPO, env=env, check=True, capture_output=True)
        results = {}
        for name in ("audit-stock", "audit-hardened"):
            results[name] = audit(info["hosts"][name])
            rc, text, _findings, _rec = results[name]
            print(f"===== ssh-audit {name} ({info['hosts'][name]}), exit status {rc}\n{text}")
        print("===== summary (ssh-audit 2.5 exit status: 0 good, 1 connection error, 2 warnings, 3 failures)")
        for name, (rc, _text, findings, recommendations) in results.items():
            counts, bad = summary(findings)
            print(f"{name}: exit {rc}, {counts['fail']} fail, {counts['warn']} warn, {len(recommendations)} recommendations")
            for item in bad:
                print(f"    {item}")
    finally:
        if not args.keep:
            subprocess.run([*LAB, "down", "--name", "audit"], capture_output=True, check=False)


if __name__ == "__main__":
    main()
