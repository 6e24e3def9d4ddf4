"""The lab is air-gapped: packages arrive through the lab's gateway, and only that way."""

import json

import pytest

pytestmark = pytest.mark.lab

HOST = "model-a1"


def test_hosts_have_no_route_out(lab):
    for name in lab.hosts:
        routes = lab.ssh(name, "ip -4 route show; ip -6 route show default")
        assert routes.returncode == 0
        assert "default" not in routes.stdout, f"{name} has a default route: {routes.stdout}"


def test_direct_download_fails_while_the_gateway_delivers(lab):
    gateway = lab.info["services"]["apt_proxy"]
    # Without the proxy, apt cannot resolve or reach the Debian mirror (nothing is sent:
    # the host has no resolver and no route out).
    direct = lab.ssh(HOST, "rm -rf /tmp/direct-lists; mkdir -p /tmp/direct-lists/partial; "
                           "timeout 60 sudo -n apt-get -o Acquire::http::Proxy=DIRECT -o Acquire::Retries=0 "
                           "-o Dir::State::Lists=/tmp/direct-lists -o Debug::NoLocking=1 update; "
                           "ls /tmp/direct-lists/*Packages* 2>/dev/null | wc -l")
    assert "Temporary failure resolving 'deb.debian.org'" in direct.stdout + direct.stderr
    assert direct.stdout.strip().splitlines()[-1] == "0"
    # Through the gateway, the same host installs and runs a package it did not have.
    # The proxy is given on the command line: this test does not depend on the base role.
    via = f"-o Acquire::http::Proxy={gateway}"
    install = lab.ssh(HOST, f"sudo -n apt-get {via} update -q && "
                            f"sudo -n DEBIAN_FRONTEND=noninteractive apt-get {via} install -y -q hello && hello && "
                            "sudo -n apt-get purge -y -q hello", timeout=300)
    assert install.returncode == 0, install.stderr
    assert "Hello, world!" in install.stdout


def test_gateway_refuses_hosts_it_does_not_mirror(lab):
    gateway = lab.info["services"]["apt_proxy"]
    # The gateway answers itself (403) without fetching anything: only the Debian mirror is proxied.
    # python3 is on every host from the start (curl only arrives with the base role).
    fetch = ("python3 -c \"import sys, urllib.request, urllib.error; "
             f"o = urllib.request.build_opener(urllib.request.ProxyHandler({{'http': '{gateway}'}}))\n"
             "try: o.open('http://pypi.org/simple/', timeout=10)\n"
             "except urllib.error.HTTPError as e: print(e.code)\"")
    out = lab.ssh(HOST, fetch)
    assert out.stdout.strip() == "403", out.stderr


APT_TASK = "Update the apt cache and install the base packages"


def test_a_host_switched_to_the_mirror_and_back_follows_the_inventory(converged_lab):
    """base_apt_mirror_url set, then taken off again (the lab's gateway mirrors Debian): each switch updates the
    package lists, also where the run that switched stopped before the update, each second run changes nothing,
    an update that finds nothing new stamps the lists as updated, and going back leaves the distribution's own
    sources as they were. Each of these once failed: a switch left the mirror's sources in place and the
    distribution's disabled; a run after a stopped switch kept the old sources' lists; an update that found
    nothing new left the lists' age as it was, so once older than the valid time they were updated on every run
    (the rule that then skips it: test_packages.py in tests/unit)."""
    lab, services = converged_lab, converged_lab.info["services"]
    look = ("ls /etc/apt/sources.list* /etc/apt/sources.list.d | sort; echo --; "
            "apt-get indextargets --format '$(SITE)' | sort -u; echo --; sha256sum /etc/apt/sources.list* | cut -c1-16")
    lists = "ls /var/lib/apt/lists | grep -c _dists_ | tr '\\n' ' '; ls /var/lib/apt/lists | grep -c '^deb.debian.org_'"
    stamp = "/var/lib/apt/periodic/update-success-stamp"
    before = lab.ssh(HOST, look)
    assert before.returncode == 0, before.stderr
    mirror = ["-e", "base_apt_proxy=", "-e", f"base_apt_mirror_url={services['apt_mirror']}",
              "-e", f"base_apt_security_mirror_url={services['apt_security_mirror']}"]
    seen = {}
    for label, extra in (("mirror", mirror), ("mirror again, lists aged", mirror),
                         ("back, stopped before the update", ["--tags", "configure"]), ("back", [])):
        if label == "mirror again, lists aged":
            assert lab.ssh(HOST, f"sudo -n touch -d '-2 hours' {stamp}").returncode == 0
        proc = lab.playbook("playbooks/base.yml", "--limit", HOST, *extra, callback="json")
        assert proc.returncode == 0, proc.stdout[-3000:]
        run = json.loads(proc.stdout[proc.stdout.index("{"):])
        apt = [task["hosts"][HOST] for play in run["plays"] for task in play["tasks"]
               if task["task"]["name"].endswith(APT_TASK) and HOST in task["hosts"]]
        state = lab.ssh(HOST, f"{look}; echo --; {lists}; echo --; echo $(( $(date +%s) - $(stat -c %Y {stamp}) ))")
        assert state.returncode == 0, state.stderr
        files, sites, _sums, (all_lists, debian_lists), (stamp_age,) = (part.split() for part in state.stdout.split("--"))
        seen[label] = {"changed": run["stats"][HOST]["changed"], "files": files, "sites": sites,
                       "apt": "skipped" if not apt or apt[0].get("skipped") else "ran",
                       "lists": int(all_lists), "debian lists": int(debian_lists), "stamp age": int(stamp_age)}
    assert seen["mirror"]["sites"] == [services["apt_mirror"], services["apt_security_mirror"]], seen
    assert "/etc/apt/sources.list.llmfleet-disabled" in seen["mirror"]["files"], seen
    assert seen["mirror"]["changed"] > 0 and seen["mirror"]["debian lists"] == 0 < seen["mirror"]["lists"], seen
    # Lists two hours old: updated once (nothing new on the mirror), and the stamp says so.
    assert seen["mirror again, lists aged"]["changed"] == 0 and seen["mirror again, lists aged"]["apt"] == "ran", seen
    assert seen["mirror again, lists aged"]["stamp age"] < 600, seen
    # The sources switched back, the update not run: the next run updates the lists, then leaves them.
    assert seen["back, stopped before the update"]["changed"] > 0, seen
    assert seen["back, stopped before the update"]["debian lists"] == 0, seen
    assert seen["back"]["changed"] == 0 and seen["back"]["apt"] == "ran", seen
    assert seen["back"]["debian lists"] == seen["back"]["lists"] > 0, seen
    assert seen["back"]["sites"] == ["http://deb.debian.org/debian", "http://deb.debian.org/debian-security"], seen
    assert lab.ssh(HOST, look).stdout == before.stdout
