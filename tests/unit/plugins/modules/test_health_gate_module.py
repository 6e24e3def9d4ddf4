"""The module against real HTTP servers on loopback that behave like engines: loading (refused, then
503), serving, answering slowly, answering garbage."""

import json
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.llmfleet.cluster.plugins.modules import health_gate


class Engine(BaseHTTPRequestHandler):
    ready_at = 0.0          # monotonic time from which /health says ok
    completion_delay = 0.0  # seconds a completion takes
    completion_body = json.dumps({"choices": [{"message": {"content": "ready"}}]})
    requests = []
    barrier = None          # a threading.Barrier the first readiness request of each engine waits at

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gate cut the request (completion_timeout)

    def do_GET(self):
        first = not type(self).requests
        type(self).requests.append(("GET", self.path, self.headers.get("Authorization")))
        if first and self.barrier is not None:
            try:
                self.barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
        if time.monotonic() < self.ready_at:
            return self._send(503, '{"message":"Loading model"}')
        return self._send(200, '{"status":"ok"}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(("POST", self.path, body["model"]))
        time.sleep(self.completion_delay)
        return self._send(200, self.completion_body)


def serve(name, base=Engine):
    """A fake engine on a loopback port, with its own class state (ready_at, delays, requests)."""
    handler = type(name, (base,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def engine():
    yield from serve("TestEngine")


def args(port, **extra):
    base = {"url": "http://127.0.0.1:%d" % port, "interval": 0.05, "consecutive": 2, "timeout": 3,
            "loading_timeout": 5, "request_timeout": 2}
    base.update(extra)
    return {key: value for key, value in base.items() if value is not None}  # None: leave the option out


def test_passes_after_loading_with_real_completions(module_runner, engine):
    server, handler = engine
    handler.ready_at = time.monotonic() + 0.4
    code, result = module_runner(health_gate.main, args(server.server_port, json_query="status", json_expect="ok",
                                                        completion={"model": "smollm2", "latency_budget": 1},
                                                        headers={"Authorization": "Bearer k"}))
    assert code == 0 and result["passed"] and not result["changed"], result
    states = [a["state"] for a in result["attempts"]]
    assert states[0] == "loading" and states[-2:] == ["ok", "ok"]
    assert result["loading_seconds"] >= 0.3
    assert ("POST", "/v1/chat/completions", "smollm2") in handler.requests
    assert ("GET", "/health", "Bearer k") in handler.requests


def test_slow_completion_fails_the_latency_budget(module_runner, engine):
    server, handler = engine
    handler.completion_delay = 0.3
    code, result = module_runner(health_gate.main, args(server.server_port, completion={"model": "m", "latency_budget": 0.1},
                                                        timeout=1))
    assert code == 1 and not result["passed"]
    # The first answers come (0.3 s, over the budget); the one running when the window ends is cut there.
    first = result["attempts"][0]
    assert first["completion_status"] == 200 and first["reason"].startswith("completion: 0.3"), first
    assert "over the 0.10 s budget" in result["msg"]


def test_a_slow_completion_is_cut_when_it_can_no_longer_change_the_verdict(module_runner, engine):
    """Completions of 3 s against a 0.1 s budget and a 0.5 s window: the gate fails when the window
    ends (the first completion cut there), not after the slow answer (measured on the lab: a slow
    release's zone out of the pool 67 s for a 6 s window)."""
    server, handler = engine
    handler.completion_delay = 3
    started = time.monotonic()
    code, result = module_runner(health_gate.main, args(server.server_port, completion={"model": "m", "latency_budget": 0.1},
                                                        timeout=0.5, request_timeout=10))
    took = time.monotonic() - started
    assert code == 1 and not result["passed"]
    assert len(result["attempts"]) == 1 and result["attempts"][0]["completion_ms"] < 1500, result["attempts"]
    assert "no answer after 0." in result["msg"] and "over the 0.10 s budget" in result["msg"], result["msg"]
    assert took < 2.5


def test_empty_completion_is_not_ready(module_runner, engine):
    server, handler = engine
    handler.completion_body = '{"choices":[{"message":{"content":""}}]}'
    code, result = module_runner(health_gate.main, args(server.server_port, completion={"model": "m"}, timeout=0.5))
    assert code == 1 and "completion: empty answer" in result["msg"]


def test_connection_refused_is_loading_until_its_deadline(module_runner):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    code, result = module_runner(health_gate.main, args(port, loading_timeout=0.5, _ansible_check_mode=True))
    assert code == 1 and result["msg"].endswith("(connection refused)") and "still loading" in result["msg"]
    assert {a["state"] for a in result["attempts"]} == {"loading"}
    assert time.monotonic() - started < 3


def test_a_server_that_hangs_is_bounded_by_request_timeout(module_runner):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        started = time.monotonic()
        code, result = module_runner(health_gate.main, args(listener.getsockname()[1], request_timeout=0.3, timeout=1))
        assert code == 1 and result["attempts"][0]["state"] == "failed"
        assert time.monotonic() - started < 4
    finally:
        listener.close()


@pytest.mark.parametrize("bad,message", [
    ({"url": "10.0.0.1:8000"}, "url: '10.0.0.1:8000' is not an http:// or https:// URL"),
    ({"consecutive": 0}, "consecutive: must be greater than 0"),
    ({"completion": {"prompt": "hi"}}, "completion: model: give the model (or models, one per URL)"),
])
def test_bad_arguments(module_runner, bad, message):
    code, result = module_runner(health_gate.main, dict(args(1), **bad))
    assert code == 1 and message in result["msg"], result["msg"]


@pytest.fixture
def second_engine():
    yield from serve("SecondEngine")


def test_a_nodes_replicas_are_gated_at_once(module_runner, engine, second_engine):
    """Two loading replicas gated together: each engine's first readiness request waits until the other
    engine has been asked too, which only happens when they are gated at the same time (one after
    the other, the first request would wait in vain and time out). No clock decides the outcome."""
    (one, one_handler), (two, two_handler) = engine, second_engine
    one_handler.ready_at = two_handler.ready_at = time.monotonic() + 0.8
    one_handler.barrier = two_handler.barrier = barrier = threading.Barrier(2)
    urls = ["http://127.0.0.1:%d" % one.server_port, "http://127.0.0.1:%d/" % two.server_port]
    code, result = module_runner(health_gate.main, args(0, completion={"model": "m"}, url=None, urls=urls,
                                                        request_timeout=10))
    assert code == 0 and result["passed"], result
    assert not barrier.broken
    assert [r["url"] for r in result["replicas"]] == [urls[0], urls[1].rstrip("/")]
    assert all(r["passed"] and r["attempts"][0]["state"] == "loading" for r in result["replicas"])
    assert result["seconds"] == max(r["seconds"] for r in result["replicas"])


def test_one_replica_failing_fails_the_node_and_names_only_it(module_runner, engine, second_engine):
    one, (two, two_handler) = engine[0], second_engine
    two_handler.completion_body = '{"choices":[{"message":{"content":""}}]}'
    urls = ["http://127.0.0.1:%d" % one.server_port, "http://127.0.0.1:%d" % two.server_port]
    code, result = module_runner(health_gate.main, args(0, completion={"model": "m"}, timeout=0.5,
                                                        url=None, urls=urls))
    assert code == 1 and not result["passed"]
    assert result["msg"].startswith(urls[1] + ": no 2 passing checks") and urls[0] not in result["msg"]
    assert [r["passed"] for r in result["replicas"]] == [True, False]


def test_each_replica_is_asked_for_its_own_model(module_runner, engine, second_engine):
    """A node serving two models: each replica gets a completion for its server's model and its readiness
    path is its engine's (models / health_paths, one per URL)."""
    (one, one_handler), (two, two_handler) = engine, second_engine
    urls = ["http://127.0.0.1:%d" % one.server_port, "http://127.0.0.1:%d" % two.server_port]
    code, result = module_runner(health_gate.main, args(0, completion={}, url=None, urls=urls, models=["a", "b"],
                                                        health_paths=["/health", "/ready"]))
    assert code == 0 and result["passed"], result
    assert {r[2] for r in one_handler.requests if r[0] == "POST"} == {"a"}
    assert {r[2] for r in two_handler.requests if r[0] == "POST"} == {"b"}
    assert {r[1] for r in one_handler.requests if r[0] == "GET"} == {"/health"}
    assert {r[1] for r in two_handler.requests if r[0] == "GET"} == {"/ready"}


@pytest.mark.parametrize("bad,message", [
    ({"models": ["a"]}, "models: 1 given for 2 URLs: one per URL, in the same order"),
    ({"health_paths": ["/a", "/b", "/c"]}, "health_paths: 3 given for 2 URLs: one per URL, in the same order"),
])
def test_per_url_lists_must_match_the_urls(module_runner, bad, message):
    code, result = module_runner(health_gate.main, dict(args(0, url=None, completion={"model": "m"},
                                                             urls=["http://127.0.0.1:1", "http://127.0.0.1:2"]), **bad))
    assert code == 1 and message in result["msg"], result["msg"]


@pytest.mark.parametrize("bad,message", [
    ({"urls": ["http://127.0.0.1:1"]}, "parameters are mutually exclusive: url|urls"),
    ({"url": None}, "one of the following is required: url, urls"),
    ({"url": None, "urls": []}, "urls: give at least one URL"),
    ({"url": None, "urls": ["127.0.0.1:8000"]}, "urls: '127.0.0.1:8000' is not an http:// or https:// URL"),
])
def test_bad_url_lists(module_runner, bad, message):
    code, result = module_runner(health_gate.main, args(1, **bad))
    assert code == 1 and message in result["msg"], result["msg"]


class ProxiedEngine(Engine):
    """An engine behind Docker's userland proxy: until it listens, the proxy accepts each connection and
    resets it (as measured on the lab's docker-engine hosts)."""
    listens_at = 0.0

    def handle(self):
        if time.monotonic() < self.listens_at:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # the server closes the socket: an RST, no status line
        super().handle()


@pytest.fixture
def proxied_engine():
    yield from serve("ProxiedTestEngine", ProxiedEngine)


def test_a_reset_before_any_answer_is_loading_not_a_failure(module_runner, proxied_engine):
    """Counted as failures, the resets would start the short `timeout` (0.3 s here): a container that
    loads for minutes would fail its gate."""
    server, handler = proxied_engine
    handler.listens_at = time.monotonic() + 0.8
    code, result = module_runner(health_gate.main, args(server.server_port, timeout=0.3, loading_timeout=5))
    assert code == 0 and result["passed"], result
    loading = [a for a in result["attempts"] if a["state"] == "loading"]
    assert loading and all("connection reset before an answer" in a["reason"] for a in loading)


def test_a_watched_replica_that_restarts_fails_at_once(module_runner, proxied_engine, tmp_path, monkeypatch):
    """The unit's restart count, read with systemctl (a stand-in here that prints a counter file),
    rises while the replica never listens: the gate fails at once, not at loading_timeout."""
    server, handler = proxied_engine
    handler.listens_at = time.monotonic() + 60
    counter = tmp_path / "nrestarts"
    counter.write_text("0\n")
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\n[ \"$*\" = 'show --property=NRestarts --value llmfleet-llm-0.service' ] || exit 9\n"
                    f"cat {counter}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    threading.Timer(0.4, counter.write_text, args=("1\n",)).start()
    started = time.monotonic()
    code, result = module_runner(health_gate.main, args(server.server_port, loading_timeout=30,
                                                        watch=["systemd:llmfleet-llm-0.service"]))
    assert code == 1 and "restarted 1 time(s) during the gate: it crashes" in result["msg"], result["msg"]
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("bad,message", [
    ({"watch": ["llmfleet-llm-0.service"]}, "watch: 'llmfleet-llm-0.service' is not KIND:NAME"),
    ({"watch": ["docker:a", "docker:b"]}, "watch: 2 given for 1 URLs: one per URL, in the same order"),
])
def test_bad_watch_lists(module_runner, bad, message):
    code, result = module_runner(health_gate.main, args(1, **bad))
    assert code == 1 and message in result["msg"], result["msg"]
