"""roles/virtual_ip/files/llmfleet_keepalived_config_test.sh: keepalived --config-test around keepalived
2.2.7's self-kill (acassen/keepalived#2587, #2617) - it checks the file as rendered, minus the script
blocks, and passes keepalived's verdict on. keepalived itself is a stand-in here that records what it
was given; the real one checks the real file on the lab's load balancers (tests/integration/test_virtual_ip.py)."""

import os
import stat
import subprocess
from pathlib import Path

import jinja2

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "virtual_ip"
SCRIPT = ROLE / "files" / "llmfleet_keepalived_config_test.sh"


def rendered():
    template = jinja2.Template((ROLE / "templates" / "keepalived.conf.j2").read_text(), trim_blocks=True)
    return template.render(
        ansible_managed="managed", inventory_hostname="lb1", virtual_ip_check_user="llmfleet-vrrp",
        virtual_ip_check_interval=1, virtual_ip_check_fall=2, virtual_ip_check_rise=2, virtual_ip_advert_interval=1,
        virtual_ip_down_adverts=2, virtual_ip_preempt=False, virtual_ip_preempt_delay=0, virtual_ip_auth_pass="s3cret",
        __virtual_ip_lb={"local_port": 8405},
        __virtual_ip_interface="eth0", __virtual_ip_source="10.0.2.5",
        __virtual_ip_group={"address": "10.0.2.250", "prefix": 24, "router_id": 250, "priority": 250,
                            "peers": ["10.0.2.7"]})


def check(tmp_path, text, verdict=0):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text)
    seen = tmp_path / "seen.conf"
    fake = tmp_path / "keepalived"
    # Records the file it was asked to check and answers as keepalived would.
    fake.write_text(f"#!/bin/sh\nfor a; do case $a in --use-file=*) cp \"${{a#--use-file=}}\" {seen};; esac; done\nexit {verdict}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    proc = subprocess.run([str(SCRIPT), str(conf)], env=dict(os.environ, KEEPALIVED=str(fake)), capture_output=True,
                          text=True, timeout=30, check=False)
    return proc, seen.read_text() if seen.exists() else None


def test_the_file_is_checked_without_its_script_blocks_and_nothing_else_changed(tmp_path):
    text = rendered()
    assert "vrrp_script llmfleet_lb {" in text and "track_script {" in text
    proc, seen = check(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert "vrrp_script" not in seen and "track_script" not in seen and "/usr/bin/curl" not in seen
    # Everything else as rendered: the global section, the instance, its peers, password and VIP.
    kept = [line for line in text.splitlines() if line not in seen.splitlines()]
    assert all("script" in line or "interval" in line or "timeout" in line or "fall" in line or "rise" in line
               or "llmfleet_lb" in line or line.strip() in ("}", "") for line in kept), kept
    for line in ("    enable_script_security", "    script_user llmfleet-vrrp", "    unicast_peer {", "        10.0.2.7",
                 "        auth_pass s3cret", "        10.0.2.250/24 dev eth0", "    nopreempt", "    down_timer_adverts 2"):
        assert line in seen.splitlines(), line
    assert seen.count("{") == seen.count("}")
    # The instance's block still closes where it did: the file ends with its closing brace.
    assert seen.rstrip().endswith("}")


def test_keepalived_verdict_is_passed_on(tmp_path):
    proc, _seen = check(tmp_path, rendered(), verdict=5)
    assert proc.returncode == 5


def test_no_copy_is_left_behind(tmp_path):
    before = set(Path("/tmp").iterdir()) if Path("/tmp").exists() else set()
    check(tmp_path, rendered())
    after = set(Path("/tmp").iterdir())
    assert not [p for p in after - before if p.name.startswith("tmp.")]
