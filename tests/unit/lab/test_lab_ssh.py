"""The lab tool's bring-up of a host whose sshd does not come up (lab/fleetlab/cli.py Lab.ensure_ssh):
seen once in CI, on a loaded 2-core machine. The engine is a recorder; the logic under test is the
wait, the one fresh start, and the error that says what the host looked like."""

import pytest
from fleetlab import cli
from fleetlab.engines import HostEngine
from fleetlab.system import LabError
from fleetlab.topology import HostSpec


class RecordingEngine(HostEngine):
    name = "podman"

    def __init__(self, machine, calls):
        super().__init__(machine)
        self.calls = calls

    def remove(self, cname):
        self.calls.append(("remove", cname))

    def start(self, lab, spec, image):
        self.calls.append(("start", spec.name))

    def address(self, cname):
        return "10.213.9.40"

    def diagnostics(self, cname):
        return f"{cname}: system: starting"


@pytest.fixture(name="lab")
def fixture_lab(settings, monkeypatch):
    lab = cli.Lab(settings)
    lab.calls = []
    lab.engines = {"podman": RecordingEngine(lab.machine, lab.calls)}
    monkeypatch.setattr(cli, "log", lambda msg: lab.calls.append(("log", msg)))
    return lab


def ports(lab, answers):
    waited = []

    def wait_port(host, port, timeout):
        waited.append((host, port, timeout))
        return answers.pop(0)
    lab.wait_port = wait_port
    return waited


def test_host_up_in_time_is_left_alone(lab):
    waited = ports(lab, [True])
    spec = HostSpec("model-a1", ["model_nodes"], zone="zone-a")
    assert lab.ensure_ssh("main", spec, "img", "10.213.9.24", timeout=5) == "10.213.9.24"
    assert waited == [("10.213.9.24", 22, 5)]
    assert lab.calls == []


def test_host_late_is_started_again_once_and_its_new_address_used(lab):
    waited = ports(lab, [False, True])
    spec = HostSpec("model-a1", ["model_nodes"], zone="zone-a")
    assert lab.ensure_ssh("main", spec, "img", "10.213.9.24", timeout=5) == "10.213.9.40"
    assert waited == [("10.213.9.24", 22, 5), ("10.213.9.40", 22, 5)]
    assert [c[0] for c in lab.calls] == ["log", "remove", "start"]
    assert "llmfleet-main-model-a1: system: starting" in lab.calls[0][1]


def test_host_late_twice_fails_naming_host_and_both_states(lab):
    ports(lab, [False, False])
    spec = HostSpec("lb1", ["lbs"])
    with pytest.raises(LabError, match=r"lb1: sshd on 10\.213\.9\.40 did not come up within 5s, twice; first: .*system: starting; then: "):
        lab.ensure_ssh("main", spec, "img", "10.213.9.24", timeout=5)
    assert [c[0] for c in lab.calls] == ["log", "remove", "start"]
