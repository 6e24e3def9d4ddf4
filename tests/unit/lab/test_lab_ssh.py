"""The lab tool's bring-up of a host whose sshd does not come up (lab/llmfleet_lab.py ensure_ssh):
seen once in CI, on a loaded 2-core machine. Engine calls are replaced by recorders; the logic
under test is the wait, the one fresh start, and the error that says what the host looked like."""

import pytest


@pytest.fixture(name="lab")
def fixture_lab(lab_module, monkeypatch):
    module = lab_module
    calls = []
    monkeypatch.setattr(module, "remove_host", lambda cname, engine: calls.append(("remove", cname)))
    monkeypatch.setattr(module, "start_host", lambda lab, spec, image: calls.append(("start", spec.name)))
    monkeypatch.setattr(module, "host_address", lambda cname, engine: "10.213.9.40")
    monkeypatch.setattr(module, "host_diagnostics", lambda cname, engine: f"{cname}: system: starting")
    monkeypatch.setattr(module, "log", lambda msg: calls.append(("log", msg)))
    module.calls = calls
    return module


def ports(lab, monkeypatch, answers):
    waited = []

    def wait_port(host, port, timeout):
        waited.append((host, port, timeout))
        return answers.pop(0)
    monkeypatch.setattr(lab, "_wait_port", wait_port)
    return waited


def test_host_up_in_time_is_left_alone(lab, monkeypatch):
    waited = ports(lab, monkeypatch, [True])
    spec = lab.HostSpec("model-a1", ["model_nodes"], zone="zone-a")
    assert lab.ensure_ssh("main", spec, "img", "10.213.9.24", timeout=5) == "10.213.9.24"
    assert waited == [("10.213.9.24", 22, 5)]
    assert lab.calls == []


def test_host_late_is_started_again_once_and_its_new_address_used(lab, monkeypatch):
    waited = ports(lab, monkeypatch, [False, True])
    spec = lab.HostSpec("model-a1", ["model_nodes"], zone="zone-a")
    assert lab.ensure_ssh("main", spec, "img", "10.213.9.24", timeout=5) == "10.213.9.40"
    assert [w[0] for w in waited] == ["10.213.9.24", "10.213.9.40"]
    assert [c[0] for c in lab.calls] == ["log", "remove", "start"]
    assert "llmfleet-main-model-a1: system: starting" in lab.calls[0][1]


def test_host_late_twice_fails_naming_host_and_both_states(lab, monkeypatch):
    ports(lab, monkeypatch, [False, False])
    spec = lab.HostSpec("lb1", ["lbs"])
    with pytest.raises(lab.LabError, match=r"lb1: sshd on 10\.213\.9\.40 did not come up within 5s, twice; first: .*system: starting; then: "):
        lab.ensure_ssh("main", spec, "img", "10.213.9.24", timeout=5)
    assert [c[0] for c in lab.calls] == ["log", "remove", "start"]
