"""The module end to end: HAProxy through a Unix socket that behaves like the runtime API (sessions
that finish over time), nginx through a configuration file with stand-ins for `nginx -t` and
`systemctl reload` on PATH."""

import json
import os
import socket
import stat
import threading
import time

import pytest

from ansible_collections.llmfleet.cluster.plugins.modules import lb_member as module
from tests.unit.plugins.module_utils.test_lb_member import NGINX, stat_text


class FakeHAProxy(object):
    """Servers with a status and sessions; a drained server's sessions end `finish_after` s later."""

    def __init__(self, path, servers, finish_after=0.3):
        self.servers = servers
        self.finish_after = finish_after
        self.commands = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _address = self.sock.accept()
            except OSError:
                return
            with conn:
                command = conn.recv(4096).decode().strip()
                self.commands.append(command)
                if command == "show stat":
                    now = time.monotonic()
                    view = {}
                    for name, s in self.servers.items():
                        done = s.get("drained_at") and now - s["drained_at"] >= self.finish_after
                        view[name] = {"status": s["status"], "scur": 0 if done else s.get("scur", 0)}
                    conn.sendall(stat_text(view).encode())
                    continue
                if command == "show servers state":
                    # HAProxy's admin flags: forced maint 1, forced drain 8.
                    rows = ["5 llm %d %s 10.0.0.1 2 %d 1 1" % (i, name, {"MAINT": 1, "DRAIN": 8}.get(srv["status"], 0))
                            for i, (name, srv) in enumerate(sorted(self.servers.items()), 1)]
                    conn.sendall(("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
                                  "srv_iweight\n" + "\n".join(rows) + "\n\n").encode())
                    continue
                _set, _server, target, _state, state = command.split()
                name = target.split("/", 1)[1]
                if name not in self.servers:
                    conn.sendall(b"No such server.\n")
                    continue
                self.servers[name]["status"] = {"drain": "DRAIN", "maint": "MAINT", "ready": "UP"}[state]
                if state != "ready":
                    self.servers[name]["drained_at"] = time.monotonic()
                conn.sendall(b"\n")


@pytest.fixture
def haproxy(tmp_path):
    path = str(tmp_path / "admin.sock")
    fake = FakeHAProxy(path, {"m-a1-r0": {"status": "UP", "scur": 2}, "m-a1-r1": {"status": "UP", "scur": 1},
                              "m-b1-r0": {"status": "UP", "scur": 3}})
    yield path, fake
    fake.sock.close()


def test_drain_waits_then_restore_puts_back(module_runner, haproxy):
    path, fake = haproxy
    code, result = module_runner(module.main, {"socket": path, "servers": ["m-a1-r0", "m-a1-r1"], "state": "drain",
                                               "interval": 0.05, "timeout": 5})
    assert code == 0 and result["changed"] and result["engine"] == "haproxy", result
    assert result["waited_seconds"] >= 0.2
    assert {n: (s["previous"], s["status"], s["sessions"]) for n, s in result["servers"].items()} == {
        "m-a1-r0": ("ready", "DRAIN", 0), "m-a1-r1": ("ready", "DRAIN", 0)}
    assert fake.servers["m-b1-r0"]["status"] == "UP"
    restore = dict((n, s["previous"]) for n, s in result["servers"].items())
    code, result = module_runner(module.main, {"socket": path, "restore": restore, "interval": 0.05})
    assert code == 0 and result["changed"] and result["servers"]["m-a1-r0"]["status"] == "UP"
    code, result = module_runner(module.main, {"socket": path, "restore": restore})
    assert code == 0 and not result["changed"]


def test_query_and_check_mode_change_nothing(module_runner, haproxy):
    path, fake = haproxy
    code, result = module_runner(module.main, {"socket": path, "servers": ["m-b1-r0"]})
    assert code == 0 and not result["changed"] and result["servers"]["m-b1-r0"]["sessions"] == 3
    code, result = module_runner(module.main, {"socket": path, "servers": ["m-b1-r0"], "state": "maint",
                                               "_ansible_check_mode": True})
    assert code == 0 and result["changed"] and fake.servers["m-b1-r0"]["status"] == "UP"
    assert not any(c.startswith("set server") for c in fake.commands)


def test_drain_timeout_names_the_server(module_runner, haproxy):
    path, fake = haproxy
    fake.finish_after = 60
    started = time.monotonic()
    code, result = module_runner(module.main, {"socket": path, "servers": ["m-b1-r0"], "state": "drain",
                                               "interval": 0.05, "timeout": 0.4})
    assert code == 1 and result["msg"] == "not done within 0.4 s: m-b1-r0 (DRAIN, 3 sessions, 0 queued)"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("args,message", [
    ({"servers": ["m-a1-r0", "nope"], "state": "drain"}, "backend llm has no server nope"),
    ({"restore": {"m-a1-r0": "up"}}, "restore: {'m-a1-r0': 'up'}: states must be one of ready, drain, maint"),
    ({"servers": ["m-a1-r0"], "state": "drain", "timeout": 0}, "timeout: must be greater than 0"),
    ({"restore": {"m-a1-r0": "ready"}, "state": "drain"}, "parameters are mutually exclusive: restore|state"),
    ({"state": "drain"}, "one of the following is required: servers, restore"),
])
def test_bad_arguments_change_nothing(module_runner, haproxy, args, message):
    path, fake = haproxy
    code, result = module_runner(module.main, dict(args, socket=path))
    assert code == 1 and message in result["msg"]
    assert not any(c.startswith("set server") for c in fake.commands)


@pytest.fixture
def nginx(tmp_path, monkeypatch):
    """nginx.conf in tmp_path; `nginx -t` passes unless the file holds BROKEN; reloads are logged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name, body in {"nginx": 'echo "nginx $*" >> %s; ! grep -q BROKEN "$4"' % log,
                       "systemctl": 'echo "systemctl $*" >> %s' % log}.items():
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX)
    conf.chmod(0o640)
    pid_file = tmp_path / "nginx.pid"
    pid_file.write_text("999999\n")  # a master without workers: nothing to wait for
    monkeypatch.setattr(module, "NGINX_PID_FILE", str(pid_file))
    return conf, log


def test_nginx_drain_validates_reloads_and_restores(module_runner, nginx):
    conf, log = nginx
    code, result = module_runner(module.main, {"engine": "nginx", "nginx_config": str(conf),
                                               "servers": ["m-a1-r0"], "state": "drain"})
    assert code == 0 and result["changed"] and result["servers"]["m-a1-r0"] == {"previous": "ready", "status": "down"}
    assert "max_conns=8 down;  # m-a1-r0 zone a" in conf.read_text()
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    calls = log.read_text().splitlines()
    assert calls[0].startswith("nginx -t -q -c %s/.llmfleet-" % conf.parent) and calls[1] == "systemctl reload nginx"
    code, result = module_runner(module.main, {"engine": "nginx", "nginx_config": str(conf),
                                               "restore": {"m-a1-r0": "ready"}})
    assert code == 0 and result["changed"] and conf.read_text() == NGINX
    code, result = module_runner(module.main, {"engine": "nginx", "nginx_config": str(conf), "servers": ["m-a1-r1"]})
    assert code == 0 and result["servers"]["m-a1-r1"]["previous"] == "drain" and not result["changed"]


def test_nginx_config_that_fails_validation_is_not_installed(module_runner, nginx):
    conf, log = nginx
    conf.write_text(NGINX + "# BROKEN\n")
    code, result = module_runner(module.main, {"engine": "nginx", "nginx_config": str(conf),
                                               "servers": ["m-a1-r0"], "state": "drain"})
    assert code == 1 and result["msg"].startswith("nginx -t refused the changed configuration, nothing changed")
    assert conf.read_text() == NGINX + "# BROKEN\n"
    assert "systemctl" not in log.read_text()
    assert [p.name for p in conf.parent.iterdir() if p.name.startswith(".llmfleet-")] == []


def test_queries_name_unknown_servers(module_runner, haproxy, nginx):
    path, _fake = haproxy
    code, result = module_runner(module.main, {"socket": path, "servers": ["m-a1-r0", "zz"]})
    assert code == 1 and result["msg"] == "backend llm has no server zz (it has: m-a1-r0, m-a1-r1, m-b1-r0)"
    conf, _log = nginx
    code, result = module_runner(module.main, {"engine": "nginx", "nginx_config": str(conf), "servers": ["zz"]})
    assert code == 1 and result["msg"].endswith("upstream llm has no server zz (it has: m-a1-r0, m-a1-r1, m-b1-r0)")


def test_owned_drain_is_recorded_before_it_is_set_and_restored_exactly(module_runner, haproxy, tmp_path):
    """The ledger on the LB says which servers this owner took out; an operator's maint is skipped on
    the drain and kept on the restore; a second run's claim keeps the state before the first run."""
    path, fake = haproxy
    ledger = str(tmp_path / "lib" / "lb-drains.json")
    fake.servers["m-a1-r1"]["status"] = "MAINT"          # an operator's, before the update
    common = {"socket": path, "ledger": ledger, "interval": 0.05, "timeout": 5}
    code, result = module_runner(module.main, dict(common, servers=["m-a1-r0", "m-a1-r1"], state="drain",
                                                   owner="rolling_update run-1"))
    assert code == 0 and result["changed"], result
    assert sorted(result["owned"]) == ["m-a1-r0"] and result["owned"]["m-a1-r0"]["previous"] == "ready"
    assert result["skipped"] == {"m-a1-r1": "maint, not set by rolling_update run-1: left as it is"}
    assert fake.servers["m-a1-r0"]["status"] == "DRAIN" and fake.servers["m-a1-r1"]["status"] == "MAINT"
    assert oct(os.stat(ledger).st_mode & 0o777) == "0o600"
    # Interrupted here. The next run drains again: the claim keeps "ready", not the leftover drain.
    code, result = module_runner(module.main, dict(common, servers=["m-a1-r0", "m-a1-r1"], state="drain",
                                                   owner="rolling_update run-2"))
    assert code == 0 and result["owned"]["m-a1-r0"]["previous"] == "ready"
    assert result["owned"]["m-a1-r0"]["owner"] == "rolling_update run-2"
    # A look reports the claim without changing anything.
    code, result = module_runner(module.main, dict(common, servers=["m-a1-r0"]))
    assert code == 0 and not result["changed"] and "m-a1-r0" in result["owned"]
    code, result = module_runner(module.main, dict(common, servers=["m-a1-r0", "m-a1-r1"], restore_owned=True))
    assert code == 0 and result["changed"], result
    assert fake.servers["m-a1-r0"]["status"] == "UP" and fake.servers["m-a1-r1"]["status"] == "MAINT"
    assert result["report"]["m-a1-r1"] == "not drained by us: left maint"
    assert result["owned"] == {}
    assert json.loads(open(ledger).read()) == {"version": 1, "backends": {}}
    # Nothing left to put back: a second restore changes nothing.
    code, result = module_runner(module.main, dict(common, servers=["m-a1-r0"], restore_owned=True))
    assert code == 0 and not result["changed"]


def test_owned_drain_in_check_mode_writes_no_ledger(module_runner, haproxy, tmp_path):
    path, fake = haproxy
    ledger = tmp_path / "lb-drains.json"
    code, result = module_runner(module.main, {"socket": path, "ledger": str(ledger), "servers": ["m-a1-r0"],
                                               "state": "drain", "owner": "x", "_ansible_check_mode": True})
    assert code == 0 and result["changed"] and not ledger.exists()
    assert fake.servers["m-a1-r0"]["status"] == "UP"


def test_a_ledger_that_is_not_json_is_refused(module_runner, haproxy, tmp_path):
    path, _fake = haproxy
    ledger = tmp_path / "lb-drains.json"
    ledger.write_text("{broken")
    code, result = module_runner(module.main, {"socket": path, "ledger": str(ledger), "servers": ["m-a1-r0"],
                                               "state": "drain", "owner": "x"})
    assert code == 1 and "is not JSON" in result["msg"]
