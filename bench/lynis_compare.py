"""Lynis (Debian's package, written by nobody here) on three lab hosts from one image, in one run: one
left as the image made it, one hardened by devsec.hardening (os_hardening + ssh_hardening), one by this
collection's host plays (playbooks/base.yml + playbooks/hardening.yml, as site.yml runs them). Prints
each host's hardening index, its suggestions and warnings, and which suggestions devsec's host has and
ours has not (and back); asserts nothing.

    .venv/bin/python bench/lynis_compare.py --devsec PATH [--keep]

PATH: a checkout of dev-sec/ansible-collection-hardening (Galaxy is not reachable from an air-gapped
site; the bench does not fetch it). devsec's roles run with the overrides an unprivileged container
needs (their sysctl task would fail on the read-only /proc/sys, /proc cannot be remounted with hidepid,
auditd cannot run): DEVSEC_CONTAINER_OVERRIDES below. Runs a lab named "lynis" (three hosts) beside any
other lab and removes it afterwards. Lynis is installed on each host the same way (apt through the
lab's gateway), after the hardening, so the package manager's state is alike.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAB = [sys.executable, str(REPO / "lab" / "llmfleet_lab.py")]
HOSTS = [{"name": name, "groups": ["infra"]} for name in ("lynis-stock", "lynis-devsec", "lynis-ours")]
DEVSEC_CONTAINER_OVERRIDES = {
    "os_sysctl_enabled": False,          # /proc/sys is read-only in an unprivileged container
    "os_minimize_access_enabled": False,  # remounts /proc with hidepid: not allowed in a container
    "os_auditd_enabled": False,          # the kernel's audit interface belongs to the machine
}
# What an air-gapped site gives every host before any role: apt through its proxy (here the lab's
# gateway), and python3-apt, which devsec's package facts need (our base role installs it).
DEVSEC_PLAYBOOK = """---
- name: devsec.hardening on the lab host
  hosts: lynis-devsec
  become: true
  pre_tasks:
    - name: Point apt at the site's proxy and install python3-apt
      ansible.builtin.shell:
        cmd: >-
          echo 'Acquire::http::Proxy "{{ proxy }}";' > /etc/apt/apt.conf.d/01proxy &&
          DEBIAN_FRONTEND=noninteractive apt-get -q update && apt-get -q install -y python3-apt
  roles:
    - role: devsec.hardening.os_hardening
    - role: devsec.hardening.ssh_hardening
"""


def run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        sys.exit("failed (%d): %s\n%s\n%s" % (proc.returncode, " ".join(map(str, argv)), proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def lynis(inventory, host, proxy, env):
    """Install Lynis through the lab's gateway, audit, and read its report."""
    script = ("set -e; export DEBIAN_FRONTEND=noninteractive; "
              f"apt-get -o Acquire::http::Proxy={proxy} -q update >/dev/null; "
              f"apt-get -o Acquire::http::Proxy={proxy} -q install -y lynis >/dev/null; "
              "lynis audit system --quick --no-colors >/dev/null 2>&1; cat /var/log/lynis-report.dat")
    out = run([str(BIN / "ansible"), "-i", str(inventory), host, "-b", "-m", "ansible.builtin.shell", "-a", script, "-o"],
              cwd=REPO, env=env).stdout
    text = out.split("(stdout)", 1)[1] if "(stdout)" in out else out
    report = {"index": None, "suggestion": [], "warning": []}
    for line in text.replace("\\n", "\n").splitlines():
        line = line.strip()
        if line.startswith("hardening_index="):
            report["index"] = int(line.split("=", 1)[1])
        for kind in ("suggestion", "warning"):
            if line.startswith(kind + "[]="):
                test, _sep, rest = line.split("=", 1)[1].partition("|")
                report[kind].append((test, rest.split("|", 1)[0]))
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devsec", required=True, help="checkout of dev-sec/ansible-collection-hardening")
    parser.add_argument("--keep", action="store_true", help="leave the lynis lab running")
    args = parser.parse_args()
    info = json.loads(run([*LAB, "--json", "up", "--name", "lynis", "--hosts-json", json.dumps(HOSTS)]).stdout)
    inventory = Path(info["inventory"])
    group_vars = inventory.parent / "group_vars"
    if not group_vars.exists():
        group_vars.symlink_to(REPO / "inventories" / "lab" / "group_vars")
    proxy = info.get("services", {}).get("apt_proxy") or json.loads(run([*LAB, "--json", "status"]).stdout)["services"]["apt_proxy"]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    try:
        run([str(BIN / "ansible-playbook"), "-i", str(inventory), "--limit", "lynis-ours",
             str(REPO / "playbooks/validate.yml"), str(REPO / "playbooks/base.yml"), str(REPO / "playbooks/hardening.yml")],
            cwd=REPO, env=env)
        with tempfile.TemporaryDirectory() as tmp:
            collections = Path(tmp) / "ansible_collections" / "devsec"
            collections.mkdir(parents=True)
            (collections / "hardening").symlink_to(Path(args.devsec).resolve())
            playbook = Path(tmp) / "devsec.yml"
            playbook.write_text(DEVSEC_PLAYBOOK)
            run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook),
                 "-e", json.dumps(dict(DEVSEC_CONTAINER_OVERRIDES, proxy=proxy))],
                cwd=REPO, env=dict(env, ANSIBLE_COLLECTIONS_PATH=f"{tmp}:{REPO / '.collections'}"))
        reports = {}
        for host in ("lynis-stock", "lynis-devsec", "lynis-ours"):
            reports[host] = report = lynis(inventory, host, proxy, env)
            print(f"===== {host}: hardening index {report['index']}, {len(report['suggestion'])} suggestions, "
                  f"{len(report['warning'])} warnings")
            for kind in ("warning", "suggestion"):
                for test, text in report[kind]:
                    print(f"  {kind:10} {test:10} {text}")
        devsec = set(reports["lynis-devsec"]["suggestion"])
        ours = set(reports["lynis-ours"]["suggestion"])
        print("===== suggestions on devsec's host that ours has not:")
        for test, text in sorted(devsec - ours):
            print(f"  {test:10} {text}")
        print("===== suggestions on our host that devsec's has not:")
        for test, text in sorted(ours - devsec):
            print(f"  {test:10} {text}")
        print("===== hardening index: " + ", ".join(f"{h} {r['index']}" for h, r in reports.items()))
    finally:
        if not args.keep:
            subprocess.run([*LAB, "down", "--name", "lynis"], capture_output=True, check=False)


if __name__ == "__main__":
    main()
