"""The example site inventory passes the validation play, which connects to no host: its
addresses do not exist, so any attempt to reach a host would fail this test."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_example_inventory_is_valid_and_validation_touches_no_host():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/example", "playbooks/validate.yml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
    for host in ("gpu-a1", "gpu-c2", "lb1", "infra1"):
        assert f"{host}" in recap
    assert "unreachable=1" not in recap and "changed=1" not in recap
