"""Fixtures for tests against the real lab (lab/llmfleet_lab.py): systemd hosts reached over SSH.

The main lab is brought up once per session (idempotent: an existing lab is reused) and left
running; scripts/test tears it down at the end.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAB = [sys.executable, str(REPO / "lab" / "llmfleet_lab.py")]
VENV_BIN = Path(sys.executable).parent
# testinfra's ansible backend calls ansible-inventory and ansible from PATH.
os.environ["PATH"] = f"{VENV_BIN}:{os.environ.get('PATH', '')}"
os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))


def ansible_env(**extra):
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env.update(extra)
    return env


def node_of(server):
    """The node of a load-balancer server name: NODE-rINDEX, or NODE-NAME-rINDEX for a further server of the
    node (model_server_servers). The lab's nodes are model-<zone letter><number>."""
    return re.match(r"^(model-[a-z][0-9]+)-", server).group(1)


class Lab:
    def __init__(self, info):
        self.info = info
        self.inventory = Path(info["inventory"])
        self.hosts = info["hosts"]
        self._control_dir = None   # shared SSH connections (ssh(shared=True)), made on first use

    def load_inventory(self):
        text = self.inventory.read_text()
        return json.loads(text[text.index("{"):])

    def container_nodes(self):
        """Model nodes whose replicas are containers (the lab's container zone)."""
        model_nodes = self.load_inventory()["all"]["children"]["model_nodes"]
        return set(model_nodes.get("children", {}).get("container_nodes", {}).get("hosts", {}))

    def server_of(self, node):
        """The node's model_server_name: its units and containers are llmfleet-NAME-INDEX, its load-balancer
        backend NAME (the lab serves two models: host_vars name the second one's nodes)."""
        path = self.inventory.parent / "host_vars" / f"{node}.yml"
        values = yaml.safe_load(path.read_text()) if path.exists() else None
        return (values or {}).get("model_server_name", "llm")

    def further_servers(self, node):
        """[(model_server_name, model_name, [ports])] of the node's model_server_servers (model-c2 serves a
        second model beside its own); their load-balancer servers are NODE-NAME-rINDEX."""
        path = self.inventory.parent / "host_vars" / f"{node}.yml"
        values = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
        return [(s["name"], s["model_name"], [s["base_port"] + i for i in range(s.get("replica_count", 1))])
                for s in values.get("model_server_servers", [])]

    def servers(self, node):
        """{load-balancer server name: (model_server_name, model_name, port)} of every replica of node."""
        from lbclient import SERVED  # what each model_server_name of the lab serves (its inventory)
        own = self.server_of(node)
        model = SERVED[own]["model_server_model_name"]
        layout = SERVED["llm"]  # every node's own server: the model nodes' group_vars layout
        found = {f"{node}-r{i}": (own, model, layout["model_server_base_port"] + i)
                 for i in range(layout["model_server_replica_count"])}
        for name, model_name, ports in self.further_servers(node):
            found.update({f"{node}-{name}-r{i}": (name, model_name, port) for i, port in enumerate(ports)})
        return found

    def replica_unit(self, node, index):
        """llmfleet-NAME-INDEX of one replica of node (add .service for a native one)."""
        return f"llmfleet-{self.server_of(node)}-{index}"

    def replica_pid_command(self, node, indexes=(0, 1)):
        """A command that prints the main PID of each replica of node (systemd unit or container)."""
        if node in self.container_nodes():
            return "sudo -n docker inspect -f '{{.State.Pid}}' " + " ".join(self.replica_unit(node, i) for i in indexes)
        return "systemctl show -P MainPID " + " ".join(f"{self.replica_unit(node, i)}.service" for i in indexes)

    def kill_replica(self, node, index):
        """SIGKILL one replica's main process, as a crash would: systemd or Docker's restart policy brings it back."""
        unit = self.replica_unit(node, index)
        if node in self.container_nodes():
            return self.ssh(node, f"sudo -n kill -KILL $(sudo -n docker inspect -f '{{{{.State.Pid}}}}' {unit})")
        return self.ssh(node, f"sudo -n systemctl kill -s SIGKILL {unit}.service")

    def signal_replica(self, node, index, signal):
        """Send signal (STOP, CONT...) to every process of one replica (systemd unit or container)."""
        unit = self.replica_unit(node, index)
        if node in self.container_nodes():
            return self.ssh(node, f"sudo -n docker kill -s {signal} {unit}")
        return self.ssh(node, f"sudo -n systemctl kill -s SIG{signal} {unit}.service")

    def ssh(self, host, command, user=None, key=None, timeout=120, shared=False):
        """Run command on host, as the lab's admin account by default (root has no key and, once hardened,
        no login: use sudo -n), over a fresh SSH connection - or, with shared, over one connection per
        host and account kept open for the session (OpenSSH's ControlMaster). Shared is for a look repeated
        all through a test (the rolling-update tests' pool sampler, twice a second): each fresh login costs
        the cores the lab shares ~0.34 CPU-s (key exchange, PAM, a logind session, on both ends), a command
        over the open connection ~0.05 s (measured on lb1), so a sampler over fresh logins took a quarter of
        the machine from the update it watched. Never shared for what a test checks about logging in, SSH or
        the firewall, or for a host a test stops: an open connection would outlive the change."""
        user = user or self.info["admin_user"]
        address = self.hosts.get(host, host)
        cmd = ["ssh", "-i", key or self.info["ssh_key"], "-o", f"UserKnownHostsFile={self.info['known_hosts']}",
               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
               *(self._shared_connection() if shared else ()), f"{user}@{address}", command]
        # stdin: /dev/null. ssh puts the stdin it is given into non-blocking mode while it runs, and that
        # flag belongs to the open file the whole test process shares: an ansible-playbook started
        # meanwhile (the rolling-update tests sample the pools over SSH while the playbook starts)
        # then refuses to run ("Ansible requires blocking IO on stdin/stdout/stderr"; seen in CI).
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)

    def _shared_connection(self):
        if self._control_dir is None:
            # A short path: a unix socket's name is limited to 108 bytes.
            self._control_dir = tempfile.mkdtemp(prefix="llmfleet-ssh-")
        # ControlPersist as a backstop (close_shared ends them); a peer that stops answering ends its
        # connection after ~15 s instead of TCP's minutes.
        return ["-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_dir}/%C", "-o", "ControlPersist=300",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]

    def close_shared(self):
        """End the shared connections (ssh -O exit on each control socket) and remove their directory."""
        if self._control_dir is None:
            return
        for socket in Path(self._control_dir).iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"], capture_output=True,
                           timeout=30, check=False, stdin=subprocess.DEVNULL)
        shutil.rmtree(self._control_dir, ignore_errors=True)
        self._control_dir = None

    def playbook(self, *args, inventory=None, callback="default", timeout=1200):
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory or self.inventory.parent), *args]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, env=ansible_env(ANSIBLE_STDOUT_CALLBACK=callback))

    def inventory_copy(self, tmp_path, mutate):
        """A copy of the lab inventory (with its group_vars and host_vars) changed by mutate(dict)."""
        target = tmp_path / "inventory"
        shutil.copytree(self.inventory.parent / "group_vars", target / "group_vars")
        if (self.inventory.parent / "host_vars").is_dir():
            shutil.copytree(self.inventory.parent / "host_vars", target / "host_vars")
        inv = self.load_inventory()
        mutate(inv)
        (target / "hosts.yml").write_text(json.dumps(inv))
        return target


@pytest.fixture(scope="session")
def lab():
    proc = subprocess.run([*LAB, "--json", "up"], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail(f"lab up failed:\n{proc.stderr}")
    lab = Lab(json.loads(proc.stdout))
    yield lab
    lab.close_shared()


def installed_collection(root):
    """The collection as users get it: built with ansible-galaxy, installed from its tarball under root.
    Returns (collections path, the installed collection's directory, an ansible.cfg for it): the
    repository's settings without its .collections link and roles path, so that nothing of the
    repository can be found."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "build").mkdir(parents=True)
    env = ansible_env()
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(root / "build"), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=300, env=env)
    [tarball] = (root / "build").glob("llmfleet-cluster-*.tar.gz")
    collections = root / "collections"
    config = root / "ansible.cfg"
    lines = [line for line in (REPO / "ansible.cfg").read_text().splitlines()
             if not line.startswith(("collections_path", "roles_path", "inventory"))]
    config.write_text("\n".join(lines).replace("[defaults]", f"[defaults]\ncollections_path = {collections}", 1) + "\n")
    # With that configuration only the new path is searched: the repository's .collections link would
    # make the collection "already installed".
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(collections),
                    str(tarball)], check=True, capture_output=True, text=True, timeout=300, cwd=root,
                   env=dict(env, ANSIBLE_CONFIG=str(config)))
    return collections, collections / "ansible_collections" / "llmfleet" / "cluster", config


@pytest.fixture(scope="session")
def converged_lab(lab):
    """The lab after site.yml, run through ansible-runner as a CI job would: first from the repository,
    then again from the collection installed from its built tarball (nothing of the repository on the
    paths); the second run must change nothing.

    LLMFLEET_LAB_CONVERGED=1 reuses a lab on which site.yml already ran (while developing tests);
    the idempotence test then skips itself.
    """
    import ansible_runner

    if os.environ.get("LLMFLEET_LAB_CONVERGED") == "1":
        lab.site_runs = None
        return lab

    private_data_dir = REPO / ".lab" / "runner"
    private_data_dir.mkdir(parents=True, exist_ok=True)
    collections, installed, config = installed_collection(REPO / ".lab" / "collection")
    runs = [(REPO, {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}),
            (installed, {"ANSIBLE_CONFIG": str(config), "ANSIBLE_COLLECTIONS_PATH": str(collections)})]
    results, seconds = [], {}
    for (project, settings), name in zip(runs, ("site_from_repository", "site_from_installed_collection")):
        started = time.monotonic()
        runner = ansible_runner.run(
            private_data_dir=str(private_data_dir),
            project_dir=str(project),
            playbook=str(project / "site.yml"),
            inventory=str(lab.inventory.parent),
            envvars=dict(settings, PATH=ansible_env()["PATH"]),
            quiet=True,
            timeout=1200,
        )
        results.append(runner)
        seconds[name] = round(time.monotonic() - started, 1)
        if runner.rc != 0:
            pytest.fail(f"site.yml ({project}) failed (rc {runner.rc}): {runner.stats}\n{runner.stdout.read()[-5000:]}")
    lab.site_runs = results
    lab.installed_collection = installed
    started = time.monotonic()
    wait_for_background_work()
    seconds["waiting_for_molecule"] = round(time.monotonic() - started, 1)
    # Where the suite's longest setup goes (scripts/test prints it with its times).
    (REPO / ".lab" / "converge-seconds.json").write_text(json.dumps(seconds))
    return lab


def wait_for_background_work(limit=1800):
    """scripts/test runs molecule's scenario beside the first converge; the tests after it measure
    latencies and failovers on a 2-core machine, so they start once it has ended (its exit status lands in
    the file LLMFLEET_WAIT_FOR names; scripts/test reports it)."""
    marker = os.environ.get("LLMFLEET_WAIT_FOR")
    if not marker:
        return
    deadline = time.monotonic() + limit
    while not Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(2)
