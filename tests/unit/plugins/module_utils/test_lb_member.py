"""Drain logic: HAProxy's `show stat` parsing, states, bounded waits (incl. the cases where
community.general.haproxy hangs), the runtime API client against a real Unix socket, nginx edits."""

import os
import socket
import threading

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import lb_member

HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status," \
         "weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate," \
         "rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,"
COLUMNS = HEADER[2:].rstrip(",").split(",")


def row(backend, server, status="UP", scur=0, qcur=0, stot=0, hrsp_5xx=0, eresp=0, econ=0):
    values = dict.fromkeys(COLUMNS, "")
    values.update(pxname=backend, svname=server, status=status, scur=scur, qcur=qcur, stot=stot, hrsp_5xx=hrsp_5xx,
                  eresp=eresp, econ=econ, check_status="L7OK")
    return ",".join(str(values[c]) for c in COLUMNS) + ","


def stat_text(servers, backend="llm"):
    """servers: {name: dict(status=..., scur=...)}"""
    lines = [HEADER, row("llm_api", "FRONTEND", status="OPEN")]
    lines += [row(backend, name, **fields) for name, fields in servers.items()]
    lines += [row(backend, "BACKEND"), row("stats", "FRONTEND", status="OPEN")]
    return "\n".join(lines) + "\n\n"


def test_parse_stat_keeps_only_the_backends_servers():
    stats = lb_member.parse_stat(stat_text({"m-a1-r0": {"scur": 3, "qcur": 1, "stot": 40, "hrsp_5xx": 2},
                                            "m-b1-r0": {"status": "DRAIN"}}), "llm")
    assert sorted(stats) == ["m-a1-r0", "m-b1-r0"]
    assert stats["m-a1-r0"]["sessions"] == 3 and stats["m-a1-r0"]["queued"] == 1
    assert stats["m-a1-r0"]["total"] == 40 and stats["m-a1-r0"]["responses_5xx"] == 2
    assert stats["m-b1-r0"]["admin_state"] == "drain"


@pytest.mark.parametrize("text", ["", "Unknown command\n", "pxname,svname\nllm,x\n"])
def test_parse_stat_refuses_what_is_not_show_stat(text):
    with pytest.raises(lb_member.LBError, match="no CSV header"):
        lb_member.parse_stat(text, "llm")


@pytest.mark.parametrize("status,state", [
    ("UP", "ready"), ("UP 1/2", "ready"), ("DOWN", "ready"), ("no check", "ready"),
    ("DRAIN", "drain"), ("DRAIN (agent)", "drain"), ("MAINT", "maint"), ("MAINT (resolution)", "maint"),
])
def test_admin_state(status, state):
    assert lb_member.admin_state(status) == state


class FakeClock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeAPI(object):
    """HAProxy as seen through the runtime API; `script` changes the servers on every `show stat`."""

    def __init__(self, servers, script=None):
        self.servers = servers
        self.script = script or (lambda servers, calls: None)
        self.sets = []
        self.shows = 0

    def stats(self, backend):
        self.script(self.servers, self.shows)
        self.shows += 1
        return lb_member.parse_stat(stat_text(self.servers), backend)

    def set_state(self, backend, server, state):
        self.sets.append((server, state))
        self.servers[server]["status"] = {"drain": "DRAIN", "maint": "MAINT", "ready": "UP"}[state]


def apply(api, targets, wait=True, timeout=10, check_mode=False):
    clock = FakeClock()
    return lb_member.haproxy_apply(api, "llm", targets, wait, timeout, 1.0, check_mode, clock, clock.sleep), clock


def test_drain_waits_until_sessions_and_queue_are_zero():
    def finish_requests(servers, calls):
        servers["a"]["scur"] = max(0, 3 - calls)
        servers["a"]["qcur"] = 1 if calls < 2 else 0

    api = FakeAPI({"a": {"scur": 3, "qcur": 1}, "b": {"scur": 5}}, finish_requests)
    result, clock = apply(api, {"a": "drain"})
    assert api.sets == [("a", "drain")]
    assert result["changed"] and result["servers"]["a"]["previous"] == "ready"
    assert result["servers"]["a"]["sessions"] == 0 and result["waited_seconds"] == 1.0 and api.shows == 4
    assert "b" not in result["servers"]


def test_drain_of_an_idle_enabled_server_returns_at_once():
    # community.general#12286: drain + wait on an enabled backend hung; here only numbers count.
    api = FakeAPI({"a": {"status": "UP"}})
    result, clock = apply(api, {"a": "drain"})
    assert result["waited_seconds"] == 0 and clock.now == 0


def test_drain_of_a_down_server_does_not_wait_for_a_status():
    api = FakeAPI({"a": {"status": "DOWN"}})
    result, _clock = apply(api, {"a": "maint"})
    assert result["servers"]["a"]["status"] == "MAINT" and result["waited_seconds"] == 0


def test_sessions_that_never_end_are_bounded_by_the_timeout():
    # community.general#1913 (drain to maint waited forever): here the wait has a deadline and says who is late.
    api = FakeAPI({"a": {"scur": 2}, "b": {"scur": 0}})
    with pytest.raises(lb_member.LBError) as exc:
        apply(api, {"a": "maint", "b": "maint"}, timeout=5)
    assert str(exc.value) == "not done within 5 s: a (MAINT, 2 sessions, 0 queued)"


def test_ready_waits_for_exactly_up():
    sequence = ["DOWN", "DOWN 1/2", "UP"]

    def checks(servers, calls):
        if calls >= 2:
            servers["a"]["status"] = sequence[min(calls - 2, 2)]

    api = FakeAPI({"a": {"status": "DRAIN"}}, checks)
    api.set_state = lambda backend, server, state: api.sets.append((server, state))
    result, clock = apply(api, {"a": "ready"})
    assert result["servers"]["a"]["status"] == "UP" and result["servers"]["a"]["previous"] == "drain"
    assert clock.now == 2.0


def test_a_server_that_stays_down_fails_the_ready_wait():
    api = FakeAPI({"a": {"status": "MAINT"}})
    api.set_state = lambda backend, server, state: api.servers["a"].update(status="DOWN")
    with pytest.raises(lb_member.LBError, match=r"not done within 3 s: a \(DOWN"):
        apply(api, {"a": "ready"}, timeout=3)


def test_unknown_server_changes_nothing():
    api = FakeAPI({"a": {}, "b": {}})
    with pytest.raises(lb_member.LBError, match="backend llm has no server zz \\(it has: a, b\\)"):
        apply(api, {"a": "drain", "zz": "drain"})
    assert api.sets == []


def test_check_mode_reports_without_setting_or_waiting():
    api = FakeAPI({"a": {"scur": 4}, "b": {"status": "DRAIN"}})
    result, clock = apply(api, {"a": "drain", "b": "drain"}, check_mode=True)
    assert result["changed"] and api.sets == [] and clock.now == 0
    assert not apply(FakeAPI({"a": {"status": "DRAIN"}}), {"a": "drain"})[0]["changed"]


def test_restore_sets_each_server_to_its_own_state():
    api = FakeAPI({"a": {"status": "DRAIN"}, "b": {"status": "DRAIN"}})
    result, _clock = apply(api, {"a": "ready", "b": "maint"})
    assert sorted(api.sets) == [("a", "ready"), ("b", "maint")]
    assert result["servers"]["b"]["status"] == "MAINT"


# --- the runtime API client against a real Unix socket -----------------------------------------

@pytest.fixture
def haproxy_socket(tmp_path):
    """A Unix socket that answers like HAProxy's runtime API; `behaviour` picks the answer."""
    path = str(tmp_path / "admin.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    state = {"behaviour": "normal", "commands": []}

    def serve():
        while True:
            try:
                conn, _address = server.accept()
            except OSError:
                return
            with conn:
                command = conn.recv(4096).decode().strip()
                state["commands"].append(command)
                if state["behaviour"] == "silent":
                    threading.Event().wait(2)
                    continue
                if command == "show stat":
                    conn.sendall(stat_text({"m-a1-r0": {"scur": 1, "status": "DOWN"}}).encode())
                elif command == "show servers state":
                    conn.sendall(SERVERS_STATE.encode())
                elif command.startswith("set server llm/m-a1-r0 "):
                    conn.sendall(b"\n")
                else:
                    conn.sendall(b"No such server.\n\n")

    threading.Thread(target=serve, daemon=True).start()
    yield path, state
    server.close()


# HAProxy 2.6's `show servers state` (first columns; m-a1-r0 in forced drain, 8, and down, 0).
SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight
5 llm 1 m-a1-r0 10.0.0.1 0 8 1 1
5 llm 2 m-a1-r1 10.0.0.1 2 1 1 1
5 llm 3 m-b1-r0 10.0.0.2 2 0 1 1

"""


def test_servers_state_gives_the_admin_state_the_status_hides():
    assert lb_member.parse_servers_state(SERVERS_STATE) == {
        ("llm", "m-a1-r0"): "drain", ("llm", "m-a1-r1"): "maint", ("llm", "m-b1-r0"): "ready"}
    assert lb_member.parse_servers_state("Unknown command.\n") == {}


def test_runtime_api_reads_stats_and_sets_states(haproxy_socket):
    path, state = haproxy_socket
    api = lb_member.RuntimeAPI(path, timeout=2)
    view = api.stats("llm")["m-a1-r0"]
    assert view["sessions"] == 1
    # Down and drained: "DOWN" in the status, drain in the servers state.
    assert (view["status"], view["admin_state"]) == ("DOWN", "drain")
    api.set_state("llm", "m-a1-r0", "drain")
    assert state["commands"] == ["show stat", "show servers state", "set server llm/m-a1-r0 state drain"]
    with pytest.raises(lb_member.LBError, match="HAProxy refused 'set server llm/nope state drain': No such server."):
        api.set_state("llm", "nope", "drain")


def test_runtime_api_that_never_answers_is_bounded(haproxy_socket):
    path, state = haproxy_socket
    state["behaviour"] = "silent"
    with pytest.raises(lb_member.LBError, match="did not finish answering 'show stat' within 0.3 s"):
        lb_member.RuntimeAPI(path, timeout=0.3).stats("llm")


def test_runtime_api_without_haproxy(tmp_path):
    with pytest.raises(lb_member.LBError, match="cannot connect to the HAProxy runtime API at .*missing.sock"):
        lb_member.RuntimeAPI(str(tmp_path / "missing.sock"), timeout=0.3).command("show stat")


# --- nginx ----------------------------------------------------------------------------------------

NGINX = """http {
    upstream other {
        server 10.0.0.9:9000;  # m-a1-r0 zone a
    }
    upstream llm {
        least_conn;
        zone llm 64k;
        server 10.0.0.1:8000 max_fails=2 fail_timeout=5s max_conns=8;  # m-a1-r0 zone a
        server 10.0.0.1:8001 max_fails=2 fail_timeout=5s max_conns=8 down;  # m-a1-r1 zone a
        server 10.0.0.2:8000 max_fails=2 fail_timeout=5s max_conns=8 backup;  # m-b1-r0 zone b
        keepalive 32;
    }
}
"""


def test_nginx_servers_are_found_by_their_names():
    servers = lb_member.nginx_servers(NGINX, "llm")
    assert sorted(servers) == ["m-a1-r0", "m-a1-r1", "m-b1-r0"]
    assert servers["m-a1-r1"]["down"] and not servers["m-a1-r0"]["down"]


def test_nginx_drain_marks_down_and_restore_removes_it():
    text, previous = lb_member.nginx_set(NGINX, "llm", {"m-a1-r0": "drain", "m-b1-r0": "maint", "m-a1-r1": "ready"})
    assert previous == {"m-a1-r0": "ready", "m-b1-r0": "ready", "m-a1-r1": "drain"}
    assert "server 10.0.0.1:8000 max_fails=2 fail_timeout=5s max_conns=8 down;  # m-a1-r0 zone a" in text
    assert "server 10.0.0.2:8000 max_fails=2 fail_timeout=5s max_conns=8 backup down;  # m-b1-r0 zone b" in text
    assert "server 10.0.0.1:8001 max_fails=2 fail_timeout=5s max_conns=8;  # m-a1-r1 zone a" in text
    assert "server 10.0.0.9:9000;  # m-a1-r0 zone a" in text  # another upstream is left alone
    again, _previous = lb_member.nginx_set(text, "llm", {"m-a1-r0": "drain", "m-b1-r0": "maint", "m-a1-r1": "ready"})
    assert again == text
    back, _previous = lb_member.nginx_set(text, "llm", previous)
    assert back == NGINX


def test_nginx_unknown_server_or_upstream():
    with pytest.raises(lb_member.LBError, match="upstream llm has no server zz"):
        lb_member.nginx_set(NGINX, "llm", {"zz": "drain"})
    with pytest.raises(lb_member.LBError, match=r"no 'upstream api \{ ... \}' block"):
        lb_member.nginx_servers(NGINX, "api")


def test_nginx_workers_are_the_masters_children():
    procs = [(10, 1, "nginx: master process /usr/sbin/nginx"), (11, 10, "nginx: worker process"),
             (12, 10, "nginx: worker process is shutting down"), (13, 1, "nginx: worker process"),
             (14, 10, "sh -c something")]
    assert lb_member.nginx_workers(procs, 10) == [11, 12]
    assert os.getpid() not in lb_member.nginx_workers(procs, 10)


# --- one backend per model --------------------------------------------------------------------------

def two_model_stat():
    lines = stat_text({"m-a1-r0": {"scur": 2}, "m-b1-r0": {}}).rstrip("\n").split("\n")
    lines += [row("gemma", "m-a2-r0", scur=1), row("gemma", "m-b2-r0", status="DRAIN"), row("gemma", "BACKEND"),
              row("client_rates", "BACKEND")]
    return "\n".join(lines) + "\n\n"


class TwoModelAPI(object):
    def __init__(self):
        self.text = two_model_stat()
        self.sets = []

    def stats(self, backend):
        return lb_member.parse_stat(self.text, backend)

    def set_state(self, backend, server, state):
        self.sets.append("%s/%s %s" % (backend, server, state))


def test_servers_are_found_in_the_backend_of_their_model():
    stats = lb_member.parse_stat(two_model_stat(), ["llm", "gemma"])
    assert sorted(stats) == ["m-a1-r0", "m-a2-r0", "m-b1-r0", "m-b2-r0"]
    assert (stats["m-a2-r0"]["backend"], stats["m-a2-r0"]["sessions"]) == ("gemma", 1)
    assert stats["m-b2-r0"]["admin_state"] == "drain" and stats["m-a1-r0"]["backend"] == "llm"
    api = TwoModelAPI()
    clock = FakeClock()
    lb_member.haproxy_apply(api, ["llm", "gemma"], {"m-a1-r0": "drain", "m-a2-r0": "drain"}, False, 5, 1.0, False,
                            clock, clock.sleep)
    assert api.sets == ["llm/m-a1-r0 drain", "gemma/m-a2-r0 drain"]
    with pytest.raises(lb_member.LBError, match="backends llm, gemma has no server zz"):
        lb_member.haproxy_query(api, ["llm", "gemma"], ["zz"])


def test_a_server_name_in_two_backends_is_refused():
    text = two_model_stat().replace("gemma,m-a2-r0", "gemma,m-a1-r0")
    with pytest.raises(lb_member.LBError, match="server m-a1-r0 is in backends llm and gemma"):
        lb_member.parse_stat(text, ["llm", "gemma"])


def test_nginx_drains_servers_in_every_upstream_named():
    text, previous = lb_member.nginx_set(NGINX, ["llm", "other"], {"m-b1-r0": "drain"})
    assert previous == {"m-b1-r0": "ready"} and "backup down;  # m-b1-r0" in text
    query = lb_member.nginx_query(NGINX, ["llm"], ["m-a1-r1", "m-b1-r0"])
    assert query["m-a1-r1"] == {"previous": "drain", "backend": "llm", "status": "down"}


def test_the_ledger_keeps_each_claim_under_its_own_backend():
    where = {"m-a1-r0": "llm", "m-a2-r0": "gemma"}
    ledger, targets, skipped = lb_member.ledger_claim({}, where, {"m-a1-r0": "ready", "m-a2-r0": "ready"}, "drain",
                                                      ["m-a1-r0", "m-a2-r0"], "run-1", "T1")
    assert targets == {"m-a1-r0": "drain", "m-a2-r0": "drain"} and skipped == {}
    assert sorted(ledger["backends"]) == ["gemma", "llm"] and list(ledger["backends"]["gemma"]) == ["m-a2-r0"]
    assert sorted(lb_member.ledger_entries(ledger, ["llm", "gemma"])) == ["m-a1-r0", "m-a2-r0"]
    # A ledger of one model is read as before, and releasing one model's server leaves the other's claim.
    ledger, targets, report = lb_member.ledger_release(ledger, {"m-a2-r0": "gemma"}, {"m-a2-r0": "drain"}, ["m-a2-r0"])
    assert targets == {"m-a2-r0": "ready"} and ledger["backends"] == {"llm": lb_member.ledger_entries(ledger, "llm")}
    assert list(lb_member.ledger_entries(ledger, "llm")) == ["m-a1-r0"]
