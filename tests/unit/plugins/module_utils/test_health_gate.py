import json

import jmespath
import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import health_gate as hg

OK_CHAT = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ready"}}]}).encode()


class Clock:
    """A fake clock: each probe takes `step` seconds, sleep advances it."""

    def __init__(self, step=0.1):
        self.now = 0.0
        self.step = step

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def scripted(clock, states):
    """A probe that returns the given states in order, then the last one forever."""
    states = list(states)

    def probe(_window_end):
        clock.now += clock.step
        state = states.pop(0) if len(states) > 1 else states[0]
        return state, "" if state == "ok" else "scripted " + state, {}
    return probe


def test_loading_then_three_passes_in_a_row():
    clock = Clock()
    report = hg.run_gate(scripted(clock, ["loading"] * 5 + ["ok", "failed", "ok", "ok", "ok"]), clock, clock.sleep,
                         consecutive=3, interval=1, timeout=30, loading_timeout=60)
    assert report["passed"] and report["reason"] == ""
    assert [a["state"] for a in report["attempts"]] == ["loading"] * 5 + ["ok", "failed", "ok", "ok", "ok"]
    # 5 loading probes started 1 s apart: loaded from the start of the sixth (its own 0.1 s not counted).
    assert report["loading_seconds"] == pytest.approx(5.0)
    # The three passes in a row span two intervals from start to start, the probes' own time not added.
    at = [a["at"] for a in report["attempts"]]
    assert at[-1] - at[-3] == pytest.approx(2.0)


def test_loading_has_its_own_deadline():
    clock = Clock()
    report = hg.run_gate(scripted(clock, ["loading"]), clock, clock.sleep, consecutive=1, interval=1,
                         timeout=5, loading_timeout=20)
    assert not report["passed"] and report["reason"].startswith("still loading after 2")
    assert report["reason"].endswith(" s (scripted loading)") and 20 <= report["seconds"] < 22
    assert 19 <= len(report["attempts"]) <= 22


def test_a_replica_that_answers_but_never_passes_fails_after_timeout_not_loading_timeout():
    clock = Clock()
    report = hg.run_gate(scripted(clock, ["loading", "loading", "failed"]), clock, clock.sleep, consecutive=2,
                         interval=1, timeout=10, loading_timeout=600)
    assert not report["passed"]
    assert report["reason"] == "no 2 passing checks in a row within 10 s of loading; last: scripted failed"
    assert report["seconds"] < 15


def test_flapping_never_counts_as_consecutive():
    clock = Clock()
    report = hg.run_gate(scripted(clock, ["ok", "failed"] * 50), clock, clock.sleep, consecutive=2, interval=1,
                         timeout=20, loading_timeout=60)
    assert not report["passed"]


def test_503_after_loading_is_a_failure_of_the_streak():
    clock = Clock()
    report = hg.run_gate(scripted(clock, ["ok", "loading", "ok", "ok"]), clock, clock.sleep, consecutive=2,
                         interval=1, timeout=20, loading_timeout=60)
    assert report["passed"] and len(report["attempts"]) == 4


@pytest.mark.parametrize("resp,kwargs,expected", [
    (hg.Response(None, refused=True), {}, ("loading", "connection refused")),
    (hg.Response(503, b'{"message":"Loading model"}'), {}, ("loading", "HTTP 503 (loading)")),
    (hg.Response(500, b""), {}, ("failed", "HTTP 500, expected 200")),
    (hg.Response(None, error="timed out"), {}, ("failed", "timed out")),
    (hg.Response(200, b'{"status":"ok"}'), {"query": "status", "expect": "ok"}, ("ok", "")),
    (hg.Response(200, b'{"status":"degraded"}'), {"query": "status", "expect": "ok"},
     ("failed", "status is 'degraded', expected 'ok'")),
    (hg.Response(200, b'{"data":[]}'), {"query": "data[?id=='smollm2']"}, ("failed", "data[?id=='smollm2'] is []")),
    (hg.Response(200, b'{"data":[{"id":"smollm2"}]}'), {"query": "data[?id=='smollm2']"}, ("ok", "")),
    (hg.Response(200, b"<html>"), {"query": "status"}, ("failed", "body is not JSON")),
])
def test_readiness_answers(resp, kwargs, expected):
    state, reason = hg.check_response(resp, 200, search=jmespath.search, **kwargs)
    assert state == expected[0] and reason.startswith(expected[1]), reason


@pytest.mark.parametrize("resp,expected", [
    (hg.Response(200, OK_CHAT, seconds=0.2), ("ok", "")),
    (hg.Response(200, OK_CHAT, seconds=3.0), ("failed", "completion: 3.00 s, over the 2.00 s budget")),
    (hg.Response(200, b'{"choices":[{"message":{"content":"  "}}]}'), ("failed", "completion: empty answer")),
    (hg.Response(200, b'{"error":"x"}'), ("failed", "completion: no choices")),
    (hg.Response(200, b"not json"), ("failed", "completion: body is not JSON")),
    (hg.Response(503, b""), ("loading", "completion: HTTP 503")),
    (hg.Response(200, b'{"choices":[{"text":"legacy completion"}]}'), ("ok", "")),
    # Cut after its budget (completion_timeout): over the budget, whatever cut it.
    (hg.Response(None, error="timed out", seconds=6.0),
     ("failed", "completion: no answer after 6.00 s, over the 2.00 s budget (timed out)")),
    (hg.Response(None, error="timed out", seconds=1.0), ("failed", "completion: timed out")),
])
def test_completion_answers(resp, expected):
    state, reason = hg.check_completion(resp, 2.0)
    assert state == expected[0] and reason.startswith(expected[1]), reason


def test_gates_run_at_once_and_report_in_order_a_raising_one_as_failed():
    import threading
    started = threading.Barrier(3, timeout=2)  # passes only if all three gates run at the same time

    def gate(value):
        def run():
            started.wait()
            if value == "boom":
                raise RuntimeError("probe crashed")
            return {"passed": True, "reason": "", "value": value}
        return run
    reports = hg.run_gates([gate("a"), gate("boom"), gate("c")])
    assert [r.get("value") for r in reports] == ["a", None, "c"]
    assert reports[1]["passed"] is False and reports[1]["reason"] == "gate error: RuntimeError: probe crashed"


def test_a_gate_that_times_out_on_a_pass_names_the_failure_that_broke_the_streak():
    """A slow release answers within its budget now and then: the timeout must say what failed (seen on
    the lab: "last: ok" for a release whose completions were over the latency budget)."""
    clock = Clock()
    states = [("ok", ""), ("failed", "completion: 2.10 s, over the 1.49 s budget"), ("ok", "")] * 20

    def probe(_window_end):
        clock.now += clock.step
        state, reason = states.pop(0)
        return state, reason, {}
    report = hg.run_gate(probe, clock, clock.sleep, consecutive=3, interval=1, timeout=6, loading_timeout=60)
    assert not report["passed"]
    assert report["attempts"][-1]["state"] == "ok"
    assert report["reason"] == ("no 3 passing checks in a row within 6 s of loading; "
                                "last failure: completion: 2.10 s, over the 1.49 s budget (then 2 passing)")


def test_a_replica_restarted_during_the_gate_fails_at_once_not_at_the_loading_timeout():
    """A release that exits at start: its unit or container restart policy brings it back again and
    again, so it looks like one that is loading. Its restart count gives it away."""
    clock = Clock()
    counts = iter([0, 0, 1])
    report = hg.run_gate(scripted(clock, ["loading"]), clock, clock.sleep, loading_timeout=600,
                         restarts=lambda: next(counts))
    assert not report["passed"]
    assert report["reason"] == "restarted 1 time(s) during the gate: it crashes (last: scripted loading)"
    assert len(report["attempts"]) == 2 and clock.now < 5


def test_restart_counts_that_cannot_be_read_or_do_not_move_change_nothing():
    clock = Clock()
    counts = iter([None, None, 4, 4, 4, 4])   # read from the first readable value on
    report = hg.run_gate(scripted(clock, ["loading", "loading", "loading", "ok"]), clock, clock.sleep,
                         restarts=lambda: next(counts))
    assert report["passed"], report


@pytest.mark.parametrize("rc,out,expected", [(0, "3\n", 3), (0, "", None), (1, "", None), (0, "[n/a]", None)])
def test_restart_count_reads_the_units_or_containers_counter(rc, out, expected):
    calls = []

    def run(argv):
        calls.append(argv)
        return rc, out, ""
    assert hg.restart_count(run, "systemd", "llmfleet-llm-0.service") == expected
    assert hg.restart_count(run, "docker", "llmfleet-llm-0") == expected
    assert calls == [["systemctl", "show", "--property=NRestarts", "--value", "llmfleet-llm-0.service"],
                     ["docker", "inspect", "--format", "{{.RestartCount}}", "llmfleet-llm-0"]]


@pytest.mark.parametrize("text", ["llmfleet-llm-0", "podman:x", "docker:", ":x"])
def test_a_watch_that_is_not_kind_and_name_is_refused(text):
    with pytest.raises(ValueError, match="is not KIND:NAME with KIND one of docker, systemd"):
        hg.parse_watch(text)


def test_a_loading_replica_is_polled_at_the_loading_interval_and_its_restarts_read_once_per_interval():
    clock = Clock(step=0.01)
    reads = []

    def restarts():
        reads.append(clock.now)
        return 0
    report = hg.run_gate(scripted(clock, ["loading"] * 4 + ["ok"]), clock, clock.sleep, consecutive=2, interval=1,
                         timeout=30, loading_timeout=60, restarts=restarts, loading_interval=0.25)
    assert report["passed"]
    # Ready after ~1 s of loading: seen at the fifth check (4 x 0.25 s), not after 4 whole intervals.
    assert report["loading_seconds"] == pytest.approx(1.0)
    # The start's count, then one read during the second of loading (not one per check).
    assert len(reads) == 2
    # Once it answers, the passes in a row are an interval apart.
    at = [a["at"] for a in report["attempts"] if a["state"] == "ok"]
    assert at[1] - at[0] == pytest.approx(1.0)


def test_a_check_slower_than_the_interval_is_followed_at_once():
    # A completion that takes 1.5 s with a 1 s interval: the next check starts when it ends, no sleep added.
    clock = Clock(step=1.5)
    slept = []
    report = hg.run_gate(scripted(clock, ["ok"]), clock, lambda seconds: (slept.append(seconds), clock.sleep(seconds)),
                         consecutive=3, interval=1, timeout=30, loading_timeout=60)
    assert report["passed"] and slept == [0.0, 0.0]
    assert [a["at"] for a in report["attempts"]] == [0.0, 1.5, 3.0]


def test_the_loading_interval_is_never_longer_than_the_interval():
    clock = Clock(step=0.0)
    report = hg.run_gate(scripted(clock, ["loading", "ok"]), clock, clock.sleep, consecutive=1, interval=0.5,
                         timeout=30, loading_timeout=60, loading_interval=5)
    assert report["loading_seconds"] == pytest.approx(0.5)


def test_the_window_given_to_each_check_ends_timeout_after_the_first_check_that_found_it_loaded():
    clock = Clock(step=0.5)
    states = ["loading", "loading", "failed", "ok", "failed", "ok", "ok"]
    windows = []

    def probe(window_end):
        windows.append((clock.now, window_end))
        clock.now += clock.step
        state = states.pop(0)
        return state, "" if state == "ok" else "scripted " + state, {}
    report = hg.run_gate(probe, clock, clock.sleep, consecutive=3, interval=1, timeout=4, loading_timeout=60,
                         loading_interval=1)
    # While it loads, each check's window would start with it; from the third check (at 2 s, the first
    # that found it loaded) the window is fixed: 2 + 4 s.
    assert windows == [(0.0, 4.0), (1.0, 5.0), (2.0, 6.0), (3.0, 6.0), (4.0, 6.0), (5.0, 6.0), (6.0, 6.0)]
    assert report["loading_seconds"] == pytest.approx(2.0)
    assert not report["passed"] and report["seconds"] == pytest.approx(6.5)


@pytest.mark.parametrize("request_timeout,budget,window_left,expected", [
    (30, 0, 5.0, 30),       # no budget: a late answer may still complete the streak
    (30, 0.78, 6.0, 6.0),   # over budget and past the window: cut when the window ends
    (30, 0.78, -1.0, 0.78),  # the window is over: the budget still gets its full time
    (30, 2.0, 0.5, 2.0),
    (3, 0.78, 6.0, 3),      # request_timeout bounds every request
])
def test_a_completion_is_cut_only_once_it_can_no_longer_change_the_verdict(request_timeout, budget, window_left,
                                                                           expected):
    assert hg.completion_timeout(request_timeout, budget, window_left) == expected
