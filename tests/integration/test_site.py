"""site.yml on the lab, through ansible-runner, and the real state it leaves on every host."""

import json
import re
import subprocess
import time

import pytest
import testinfra
from conftest import REPO, VENV_BIN, ansible_env

# Role tasks tagged always (tests/unit/test_tags.py): Ansible's argument check, the switch, the input check.
ALWAYS = re.compile(r"(End the role when|Validat)")

pytestmark = pytest.mark.lab


def test_second_run_changes_nothing(converged_lab):
    if converged_lab.site_runs is None:
        pytest.skip("LLMFLEET_LAB_CONVERGED=1: site.yml was not run by this session")
    first, second = converged_lab.site_runs
    hosts = set(converged_lab.hosts)
    assert set(second.stats["ok"]) == hosts, "every lab host took part"
    assert second.stats["changed"] == {}, f"second run changed: {second.stats['changed']}"
    assert not second.stats["failures"] and not second.stats["dark"]
    # The second run came from the collection installed from its built tarball: every task it ran is a
    # file of the installed copy, none of the repository's.
    paths = {e["event_data"]["task_path"].rsplit(":", 1)[0] for e in second.events
             if e.get("event") == "playbook_on_task_start" and e.get("event_data", {}).get("task_path")}
    root = str(converged_lab.installed_collection) + "/"
    assert paths and all(p.startswith(root) for p in paths), sorted(p for p in paths if not p.startswith(root))
    assert any("/roles/virtual_ip/" in p for p in paths) and any("/roles/model_server/" in p for p in paths)


def verified_files(run):
    """{host: [each file verified_files reported in that run]} from ansible-runner's events."""
    found = {}
    for event in run.events:
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_ok" and data.get("task_action") == "llmfleet.cluster.verified_files":
            found.setdefault(data["host"], []).extend(data["res"]["files"])
    return found


def test_the_no_op_reads_no_model_weights(converged_lab):
    """The store's models and each node's local copies were checked by SHA-256 in both runs, read in full
    in the first (fetched and put in place, or hashed once) and known by their stamps in the second: a
    no-op costs no read of the weights (at a real site ~140 GB per 70B model, per node)."""
    if converged_lab.site_runs is None:
        pytest.skip("LLMFLEET_LAB_CONVERGED=1: site.yml was not run by this session")
    first, second = (verified_files(run) for run in converged_lab.site_runs)
    expected = {"infra1", *(host for host in converged_lab.hosts if host.startswith("model-"))}
    assert set(first) == set(second) == expected, (sorted(first), sorted(second))
    # First: each file missing, then fetched and read once as it was put in place.
    assert all({f["path"] for f in files if f["hashed"]} == {f["path"] for f in files} for files in first.values()), first
    assert all(f["state"] == "verified" and not f["hashed"] for files in second.values() for f in files), second
    # Every model the lab serves, on the store; model-c2 keeps both.
    assert len(second["infra1"]) == 2 and len(second["model-c2"]) == 2, second


@pytest.fixture(scope="module")
def hosts(converged_lab):
    inventory = str(converged_lab.inventory)
    return {name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)
            for name in converged_lab.hosts}


def test_apt_goes_through_the_lab_gateway(hosts, converged_lab):
    proxy = converged_lab.info["services"]["apt_proxy"]
    for host in hosts.values():
        conf = host.file("/etc/apt/apt.conf.d/01llmfleet-proxy")
        assert conf.exists and f'Acquire::http::Proxy "{proxy}";' in conf.content_string
        # apt itself reports the proxy it will use (the effective configuration).
        assert host.check_output("apt-config dump Acquire::http::Proxy") == f'Acquire::http::Proxy "{proxy}";'
        assert installed(host, "python3-apt", "sudo", "chrony", "curl", "ca-certificates") == {
            "python3-apt", "sudo", "chrony", "curl", "ca-certificates"}


def installed(host, *packages):
    """Which of packages dpkg has installed on host (one round trip for all of them)."""
    out = host.run("dpkg-query -W -f '${Package} ${db:Status-Status}\\n' " + " ".join(packages)).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


def test_llamacpp_nodes_carry_what_the_engine_needs_and_no_compiler(hosts, converged_lab):
    """A llama.cpp node needs python3-venv and the OpenMP runtime its engine links, nothing more:
    python3-pip's recommends would put a compiler toolchain on every GPU node (hardening guides flag
    compilers: Lynis HRDN-7222). The engine imports, i.e. its libraries are all there."""
    containers = converged_lab.container_nodes()
    for name in converged_lab.load_inventory()["all"]["children"]["model_nodes"]["hosts"]:
        host = hosts[name]
        found = installed(host, "python3-venv", "libgomp1", "gcc", "g++", "cpp", "build-essential",
                          "python3-pip", "python3-dev")
        venvs = host.run("ls -d /opt/llmfleet/llamacpp* 2>/dev/null").stdout.split()
        if name in containers:
            # The engine and what it links live in its image: the node carries none of it.
            assert found == set(), name
            assert venvs == [], name
            continue
        assert found == {"python3-venv", "libgomp1"}, name
        # One virtualenv, the release's own (BASE-SERVER-HASH), and the replicas' units run it: the
        # virtualenvs of earlier releases are removed once a newer one is recorded.
        server = converged_lab.server_of(name)
        assert len(venvs) == 1 and venvs[0].startswith(f"/opt/llmfleet/llamacpp-{server}-"), (name, venvs)
        unit = host.file(f"/etc/systemd/system/llmfleet-{server}-0.service").content_string
        assert f"ExecStart={venvs[0]}/bin/python " in unit, (name, unit)
        assert host.run(f"{venvs[0]}/bin/python -c 'import xllamacpp'").rc == 0, name


def test_pip_points_at_the_artifact_source(hosts, converged_lab):
    artifacts = converged_lab.info["services"]["artifacts"]
    for host in hosts.values():
        conf = host.file("/etc/pip.conf").content_string
        assert f"find-links = {artifacts}/wheels/" in conf and "no-index = true" in conf


def test_fleet_is_in_etc_hosts(hosts, converged_lab):
    names = sorted(converged_lab.hosts)
    for name, host in hosts.items():
        # One lookup of every name per host (getent answers each in order).
        lines = host.check_output("getent hosts " + " ".join(names) + "; hostname").splitlines()
        assert [line.split() for line in lines[:-1]] == [[converged_lab.hosts[n], n] for n in names]
        assert lines[-1] == name


def test_time_settings(hosts):
    for host in hosts.values():
        assert host.file("/etc/localtime").linked_to.endswith("Etc/UTC")
        assert host.file("/etc/chrony/chrony.conf").contains("^server ")
        # Containers have no CAP_SYS_TIME: chrony is configured but (rightly) not running.
        assert not host.service("chrony").is_running


def test_operator_logs_in_with_its_key_and_uses_sudo(converged_lab):
    key = str(converged_lab.info["ssh_key"]).replace("id_ed25519", "operator_ed25519")
    for name in converged_lab.hosts:
        proc = converged_lab.ssh(name, "id -un && sudo -n id -u", user="llmops", key=key)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["llmops", "0"]
        # The admin key is not one of the operator's keys (authorized_keys is exclusive).
        refused = converged_lab.ssh(name, "true", user="llmops")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_operator_has_no_password(hosts):
    for host in hosts.values():
        shadow = host.check_output("getent shadow llmops").split(":")
        assert shadow[1] == "!"


def ufw_added(lab, host):
    out = lab.ssh(host, "sudo -n ufw show added")
    assert out.returncode == 0, out.stderr
    return sorted(line for line in out.stdout.splitlines() if line.startswith("ufw "))


def test_firewall_holds_the_wanted_openings_and_drops_what_its_owner_no_longer_wants(converged_lab):
    lab = converged_lab
    inv = lab.load_inventory()
    groups = inv["all"]["children"]
    clients = sorted(lab.hosts[h] for h in list(groups["load_balancers"]["hosts"]) + list(groups["infra"]["hosts"]))
    rules = ufw_added(lab, "model-a1")
    # One rule per replica port and client (the LBs, Prometheus), each owned by the model server.
    for port in ("8000", "8001"):
        mine = [r for r in rules if f" port {port} " in r]
        assert sorted(r.split()[3] for r in mine) == clients, (port, rules)
        assert all(r.endswith("comment 'llmfleet model server llm'") for r in mine), mine
    # A stale opening of the model server (as a replica that went away leaves) and one an operator added.
    setup = lab.ssh("model-a1", "sudo -n ufw allow from 10.213.9.250 to any port 8009 proto tcp comment 'llmfleet model server llm'"
                    " && sudo -n ufw allow from 10.213.9.251 to any port 8010 proto tcp comment 'operator'")
    assert setup.returncode == 0, setup.stderr
    try:
        wanted = json.dumps([{"port": port, "from": clients} for port in (8000, 8001)])
        cmd = [str(VENV_BIN / "ansible"), "-i", str(lab.inventory.parent), "model-a1", "-b",
               "-m", "llmfleet.cluster.ufw_rules", "-a", json.dumps({"owner": "model server llm", "rules": json.loads(wanted)})]

        def reconcile():
            return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                                  env=ansible_env())

        first = reconcile()
        assert first.returncode == 0 and "CHANGED" in first.stdout, first.stdout + first.stderr
        after = ufw_added(lab, "model-a1")
        assert not any(" port 8009 " in r for r in after), after
        assert any(" port 8010 " in r and r.endswith("comment 'operator'") for r in after), after
        assert [r for r in after if "llmfleet" in r] == [r for r in rules if "llmfleet" in r]
        second = reconcile()
        assert second.returncode == 0 and "CHANGED" not in second.stdout, second.stdout
    finally:
        lab.ssh("model-a1", "sudo -n ufw delete allow from 10.213.9.250 to any port 8009 proto tcp;"
                " sudo -n ufw delete allow from 10.213.9.251 to any port 8010 proto tcp")


def test_a_tag_narrows_a_run_to_its_role(converged_lab):
    """site.yml --tags node_exporter on the converged lab: the inventory check and the replica plan (tagged
    always), then only node exporter's tasks - and the firewall rules it opens through the firewall role's
    rules.yml - on every host; nothing changes."""
    proc = converged_lab.playbook("site.yml", "--tags", "node_exporter", callback="ansible.posix.json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    roles = set()
    for play in report["plays"]:
        for task in play["tasks"]:
            if not any(not result.get("skipped") for result in task["hosts"].values()):
                continue
            name = task["task"]["name"]
            if name == "Gathering Facts" or ALWAYS.search(name):
                # Tagged always: facts (cached, gathered once per host), each role's check of its arguments
                # (by Ansible itself), its switch and its input check, which change nothing.
                continue
            role = name.split(" : ", 1)[0].rsplit(".", 1)[-1] if " : " in name else None
            roles.add(role or play["play"]["name"])
    # The plan's tasks are model_server's plan.yml; the firewall's are its rules.yml, which node_exporter
    # includes (its tasks named after their play; rules.yml reads _common's docker_host.yml).
    assert roles <= {"Validate the inventory", "Plan the model-server replicas", "model_server", "node_exporter",
                     "Node exporter and Filebeat", "firewall", "_common"}, roles
    assert "node_exporter" in roles
    assert set(report["stats"]) == set(converged_lab.hosts)
    assert all(stats["changed"] == 0 and stats["failures"] == 0 for stats in report["stats"].values()), report["stats"]


def ran_tasks(report):
    """{task name: hosts it ran on (not skipped)} of an ansible.posix.json report."""
    ran = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            hosts = {h for h, result in task["hosts"].items() if not result.get("skipped")}
            if hosts:
                ran.setdefault(task["task"]["name"], set()).update(hosts)
    return ran


def test_verify_checks_the_fleet_and_changes_nothing(converged_lab, tmp_path):
    """site.yml --tags verify on the converged lab: every role's checks of the effective state ran (the
    exporters answer, the load balancers answer, sshd's effective settings, the replicas' completions), and
    not one task that installs or configures - taken from the site's own task list (tagged install or
    configure, not verify or always) - ran; nothing changes. Run with an inventory that describes another
    release than the one running (a larger context, as in the middle of an update): verify alone must not
    write the inventory's release into the nodes' records (what a rollback returns to) - only a run that
    applied it and saw it serve does."""
    listing = converged_lab.playbook("site.yml", "--list-tasks")
    assert listing.returncode == 0, listing.stdout[-3000:]
    not_verify = set()
    for line in listing.stdout.splitlines():
        if "\tTAGS: [" in line and " : " in line:
            name, tags = line.strip().rsplit("\tTAGS: [", 1)
            tags = set(tags.rstrip("]").split(", "))
            if tags & {"install", "configure"} and not tags & {"verify", "always"}:
                not_verify.add(name)
    assert len(not_verify) > 80, len(not_verify)
    inventory = converged_lab.inventory_copy(tmp_path, lambda inv: None)
    (inventory / "group_vars" / "model_nodes" / "zz-release.yml").write_text(json.dumps({"model_server_llamacpp_ctx_size": 8192}))
    records = "sudo -n md5sum /etc/llmfleet/model_server-*.json"
    models = sorted(h for h in converged_lab.hosts if h.startswith("model-"))
    before = {node: converged_lab.ssh(node, records).stdout for node in models}
    started = time.monotonic()
    proc = converged_lab.playbook("site.yml", "--tags", "verify", inventory=inventory, callback="ansible.posix.json")
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    ran = ran_tasks(report)
    assert not set(ran) & not_verify, sorted(set(ran) & not_verify)
    hosts = set(converged_lab.hosts)
    expected = {
        "llmfleet.cluster.node_exporter : Check that node exporter serves metrics": hosts,
        "llmfleet.cluster.load_balancer : Check that the load balancer answers on its health port":
            {h for h in hosts if h.startswith("lb")},
        "llmfleet.cluster.ssh_hardening : Check the settings that keep passwords and root out": hosts,
        "llmfleet.cluster.prometheus : Check that the running configuration and rules are the ones written": {"infra1"},
        "llmfleet.cluster.model_server : Wait until every replica answers chat completions": set(models),
    }
    for name, where in expected.items():
        assert ran.get(name) == where, (name, ran.get(name))
    assert any(name.startswith("llmfleet.cluster.docker : ") and not ALWAYS.search(name) for name in ran), sorted(ran)
    assert set(report["stats"]) == hosts
    assert {h: s for h, s in report["stats"].items() if s["changed"] or s["failures"]} == {}
    assert "llmfleet.cluster.model_server : Record the release the replicas run" not in ran
    assert {node: converged_lab.ssh(node, records).stdout for node in models} == before
    (REPO / ".lab" / "results").mkdir(parents=True, exist_ok=True)
    (REPO / ".lab" / "results" / "verify-run.json").write_text(json.dumps(
        {"seconds": round(seconds, 1), "tasks_ran": len(ran), "hosts": len(hosts)}, indent=2))
