# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Health gate: is a model-server replica really serving?

A replica passes when it answers `consecutive` probes in a row. One probe is the readiness
endpoint (status, optionally a JMESPath expression on its JSON body) and, when asked, a real
chat completion within a latency budget: vLLM's /health can be 200 before the engine serves
(vllm#15313), so only a completion proves it. Connection refused and 503 mean "still loading"
(engines refuse connections or answer 503 while the model loads) and have their own, longer
timeout. So does a connection reset before any answer: a container's published port is held by
Docker's userland proxy, which accepts the connection and resets it while the engine inside does not
listen yet (measured on the lab's docker-engine hosts); counted as a failure, it made a container
that loads for minutes (vLLM) fail the gate's short `timeout`. A replica whose process restarts
during the gate (its systemd unit's NRestarts or its container's RestartCount goes up: a release
that crashes at start and is restarted by its restart policy) fails at once, instead of looking
like one that loads until `loading_timeout`. Every attempt is reported.

The HTTP call and the clock are passed in, so that the logic is tested without sockets or sleeps.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import threading

LOADING_STATUSES = (503,)


class Response(object):
    def __init__(self, status, body=b"", error=None, refused=False, seconds=0.0):
        self.status = status
        self.body = body
        self.error = error
        self.refused = refused
        self.seconds = seconds


def _json(body):
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body), ""
    except (ValueError, UnicodeDecodeError) as exc:
        return None, "body is not JSON (%s)" % exc


def check_response(resp, expect_status, query=None, expect=None, search=None):
    """(state, reason): state is 'ok', 'loading' or 'failed'."""
    if resp.refused:
        return "loading", resp.error or "connection refused"
    if resp.error:
        return "failed", resp.error
    if resp.status in LOADING_STATUSES and resp.status != expect_status:
        return "loading", "HTTP %d (loading)" % resp.status
    if resp.status != expect_status:
        return "failed", "HTTP %d, expected %d" % (resp.status, expect_status)
    if query:
        data, problem = _json(resp.body)
        if problem:
            return "failed", problem
        value = search(query, data)
        if expect is None:
            if value in (None, False, "", [], {}):
                return "failed", "%s is %r" % (query, value)
        elif value != expect:
            return "failed", "%s is %r, expected %r" % (query, value, expect)
    return "ok", ""


def check_completion(resp, latency_budget):
    """A chat completion must be 200, carry a non-empty answer, and come within the budget."""
    if latency_budget and resp.error and resp.seconds > latency_budget:
        # Cut by completion_timeout (or timed out on its own) after its budget had run out.
        return "failed", "completion: no answer after %.2f s, over the %.2f s budget (%s)" % (
            resp.seconds, latency_budget, resp.error)
    state, reason = check_response(resp, 200)
    if state != "ok":
        return state, "completion: " + reason
    data, problem = _json(resp.body)
    if problem:
        return "failed", "completion: " + problem
    try:
        choice = data["choices"][0]
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return "failed", "completion: no choices in the answer"
    if not text.strip():
        return "failed", "completion: empty answer"
    if latency_budget and resp.seconds > latency_budget:
        return "failed", "completion: %.2f s, over the %.2f s budget" % (resp.seconds, latency_budget)
    return "ok", ""


def completion_timeout(request_timeout, latency_budget, window_left):
    """Seconds a gate's completion may take before it is cut.

    A completion still running after its latency budget has failed its check, and one still running
    after the gate's window (window_left: seconds from now to its end) cannot be followed by another
    check: past both, its answer cannot change the verdict, only delay it. Measured on the lab: a
    slow release's completions took 12-23 s against a 0.78 s budget and a 6 s window, and its zone
    stayed out of the pool 67 s for a verdict known after 6. Without a budget, a late completion can
    still complete the streak: only request_timeout bounds it."""
    if not latency_budget:
        return request_timeout
    return min(request_timeout, max(latency_budget, window_left))


RESTART_COUNTERS = {
    # kind: the command that prints the replica's restart count (the name is appended).
    "systemd": ["systemctl", "show", "--property=NRestarts", "--value"],
    "docker": ["docker", "inspect", "--format", "{{.RestartCount}}"],
}


def parse_watch(text):
    """'systemd:UNIT' or 'docker:CONTAINER' -> (kind, name); ValueError naming what is wrong."""
    kind, _sep, name = str(text).partition(":")
    if kind not in RESTART_COUNTERS or not name:
        raise ValueError("%r is not KIND:NAME with KIND one of %s" % (text, ", ".join(sorted(RESTART_COUNTERS))))
    return kind, name


def restart_count(run, kind, name):
    """The replica's restart count, or None when it cannot be read (the unit or container is not there).
    run(argv) -> (rc, stdout, stderr)."""
    rc, out, _err = run(RESTART_COUNTERS[kind] + [name])
    text = (out or "").strip()
    return int(text) if rc == 0 and text.isdigit() else None


def run_gate(probe, clock, sleep, consecutive=3, interval=1.0, timeout=60.0, loading_timeout=600.0, restarts=None,
             loading_interval=None):
    """Probe until `consecutive` passes in a row, or give up.

    interval: seconds from the start of one check to the start of the next once the replica answered
    (the passes in a row span that much time: consecutive - 1 intervals, whatever a completion takes;
    counted from the end of a check, a gate of 3 spanned 2 s plus two completions' time, which a zone
    spent out of the pool). loading_interval: between checks while it is still loading (default: interval); a refused
    connection costs nothing, and a replica that loads in 0.8 s is then seen at once instead of at the
    next whole interval (a zone is out of the pool meanwhile). The restart count is read at most once
    per interval.

    probe(window_end): (state, reason, details) with state 'ok', 'loading' or 'failed'; window_end is the
    clock time at which the gate's window closes (completion_timeout uses it).
    restarts(): the replica's restart count or None (unknown); when it rises above its value at the
    start, the gate fails at once (the process crashed and was restarted).
    Deadlines: loading_timeout while the replica is loading (from the start); from the start of the
    first check that found it loaded, timeout more seconds to pass.
    Returns a report dict: passed, reason, attempts, loading_seconds, seconds.
    """
    restarts = restarts or (lambda: None)
    restarts_at_start = restarts()
    loading_interval = interval if loading_interval is None else min(loading_interval, interval)
    start = clock()
    counted_at = None
    loaded_at = None
    streak = 0
    attempts = []
    # Why the streak last broke: a gate that times out after a pass says why it did not pass, not "ok".
    last_failure = None
    while True:
        now = probed_at = clock()
        state, reason, details = probe((probed_at if loaded_at is None else loaded_at) + timeout)
        attempt = {"at": round(now - start, 3), "state": state}
        if reason:
            attempt["reason"] = reason
        attempt.update(details or {})
        attempts.append(attempt)
        now = clock()
        count = None
        if state != "ok" and (counted_at is None or now - counted_at >= interval or state != "loading"):
            count, counted_at = restarts(), now
        if restarts_at_start is None:
            restarts_at_start = count  # the first count that could be read is the baseline
        elif count is not None and count > restarts_at_start:
            return _report(False, "restarted %d time(s) during the gate: it crashes (last: %s)"
                           % (count - restarts_at_start, reason or state), attempts, start, now,
                           (now if loaded_at is None else loaded_at) - start)
        if state == "loading" and loaded_at is None:
            streak = 0
            if now - start >= loading_timeout:
                return _report(False, "still loading after %.0f s (%s)" % (now - start, reason), attempts, start, now,
                               now - start)
        else:
            if loaded_at is None:
                # When the check started (its readiness answer comes first), not when its completion ended.
                loaded_at = probed_at
            if state == "ok":
                streak += 1
                if streak >= consecutive:
                    return _report(True, "", attempts, start, now, loaded_at - start)
            else:
                streak = 0
                last_failure = reason or state
            if now - loaded_at >= timeout:
                why = "last: %s" % (reason or state) if state != "ok" or last_failure is None \
                    else "last failure: %s (then %d passing)" % (last_failure, streak)
                return _report(False, "no %d passing checks in a row within %.0f s of loading; %s"
                               % (consecutive, timeout, why), attempts, start, now, loaded_at - start)
        sleep(max(0.0, (loading_interval if loaded_at is None else interval) - (clock() - probed_at)))


def run_gates(gates):
    """Several gates at once, one thread each; gates: callables returning a run_gate report.

    A node's replicas load and answer independently, and an engine serves one request per slot
    without waiting for its neighbours: gated one after the other, a node with N replicas is out of
    the pool N times as long. Returns the reports in the order of gates; a gate that raises is a
    failed report naming the error, never a lost one."""
    reports = [None] * len(gates)

    def work(index, gate):
        try:
            reports[index] = gate()
        except Exception as exc:  # pylint: disable=broad-except  # reported, not lost in a thread
            reports[index] = _report(False, "gate error: %s: %s" % (type(exc).__name__, exc), [], 0, 0, 0)

    threads = [threading.Thread(target=work, args=(i, gate)) for i, gate in enumerate(gates)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports


def _report(passed, reason, attempts, start, end, loading):
    return {"passed": passed, "reason": reason, "attempts": attempts,
            "loading_seconds": round(loading, 3), "seconds": round(end - start, 3)}
