"""Configurations that would cut the operator's access: refused before any change, or rolled back
automatically. Runs the hardening play on one host of the converged lab with a bad variable and
compares the host's firewall and sshd state before and after."""

import json

import pytest

pytestmark = pytest.mark.lab

HOST = "model-c2"
STATE = ("sudo -n sha256sum /etc/ssh/sshd_config /etc/ufw/user.rules /etc/ufw/user6.rules /etc/sysctl.d/60-llmfleet.conf"
         " && sudo -n ufw status verbose")


def set_var(name, value):
    def mutate(inv):
        for group in inv["all"]["children"].values():
            if HOST in group["hosts"]:
                group["hosts"][HOST][name] = value
    return mutate


def json_report(stdout):
    """One report from the json callback's output, which holds one document per playbook."""
    decoder, position, merged = json.JSONDecoder(), 0, {"plays": [], "stats": {}}
    while stdout[position:].strip():
        document, end = decoder.raw_decode(stdout, position + len(stdout[position:]) - len(stdout[position:].lstrip()))
        merged["plays"] += document["plays"]
        for host, stats in document["stats"].items():
            total = merged["stats"].setdefault(host, {})
            for key, value in stats.items():
                total[key] = total.get(key, 0) + value
        position = end
    return merged


def failure_messages(report):
    results = [res for play in report["plays"] for task in play["tasks"] for res in task["hosts"].values()]
    results += [item for res in results for item in res.get("results", [])]
    return [res.get("msg", "") for res in results if res.get("failed")]


def harden(lab, tmp_path, mutate):
    before = lab.ssh(HOST, STATE)
    assert before.returncode == 0, before.stderr
    proc = lab.playbook("playbooks/validate.yml", "playbooks/hardening.yml", "--limit", HOST,
                        inventory=lab.inventory_copy(tmp_path, mutate), callback="json")
    after = lab.ssh(HOST, STATE)
    assert after.returncode == 0, f"{HOST} unreachable after the run: {after.stderr}"
    return proc, json_report(proc.stdout), before.stdout, after.stdout


def test_operator_network_not_allowed_is_refused_before_any_change(converged_lab, tmp_path):
    proc, report, before, after = harden(converged_lab, tmp_path, set_var("firewall_ssh_allowed_networks", ["192.0.2.0/24"]))
    assert proc.returncode != 0
    messages = failure_messages(report)
    assert any(m.startswith(f"{HOST}: firewall_ssh_allowed_networks: 192.0.2.0/24 does not contain 10.213.9.1") for m in messages), messages
    assert report["stats"][HOST]["changed"] == 0
    assert after == before


def test_removing_the_only_key_is_rolled_back(converged_lab, tmp_path):
    # sshd would look for keys in a directory that holds none: every key login would fail.
    proc, report, before, after = harden(converged_lab, tmp_path,
                                         set_var("ssh_hardening_authorized_keys_file", "/etc/ssh/authorized_keys/%u"))
    assert proc.returncode != 0
    messages = failure_messages(report)
    assert any(m.startswith(f"{HOST}: the new sshd configuration was rolled back: a fresh key login as admin") for m in messages), messages
    # The configuration was written, then restored: same bytes, and logins work (the ssh above).
    assert report["stats"][HOST]["changed"] > 0
    assert after == before
    timer = converged_lab.ssh(HOST, "systemctl is-active llmfleet-sshd-rollback.timer")
    assert timer.stdout.strip() != "active"
