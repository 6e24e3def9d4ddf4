"""The three kinds of lab host behind one interface (lab/fleetlab/engines.py): every engine answers
every call the commands make, and hosts are named alike on all of them."""

import inspect

from fleetlab import engines
from fleetlab.settings import ENGINES
from fleetlab.system import Machine

CALLS = ("hosts", "start", "remove", "address", "exec")


def test_every_engine_implements_what_the_commands_call(settings):
    found = engines.engines(Machine(settings))
    assert tuple(found) == ENGINES
    for name, engine in found.items():
        assert engine.name == name
        missing = [call for call in CALLS if getattr(type(engine), call) is getattr(engines.HostEngine, call)]
        assert not missing, f"{name} does not implement {missing}"
        for call in CALLS:
            assert inspect.signature(getattr(engine, call)).parameters.keys() == \
                inspect.signature(getattr(engines.HostEngine(engine.machine), call)).parameters.keys()


def test_podman_and_docker_hosts_share_the_lab_network_nspawn_has_its_own_gateway(settings):
    found = engines.engines(Machine(settings))
    assert found["podman"].network is found["docker"].network
    assert found["podman"].gateway_address() == found["docker"].gateway_address() == settings.gateway
    assert found["nspawn"].gateway_address() == settings.nspawn_gateway


def test_nspawn_hosts_are_listed_from_their_records(settings, tmp_path):
    engine = engines.engines(Machine(settings))["nspawn"]
    record = settings.state / "nspawn" / "llmfleet-t-n1" / "host.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"cname": "llmfleet-t-n1", "lab": "t", "address": "10.213.11.10", "pid": 999999999}')
    assert engine.hosts("t") == [{"name": "llmfleet-t-n1", "lab": "t", "state": "exited", "engine": "nspawn"}]
    assert engine.hosts("other") == []
    assert engine.address("llmfleet-t-n1") == "10.213.11.10"
    assert engines.container_name("t", "n1") == "llmfleet-t-n1"


def test_nspawn_gets_a_lab_machine_id_where_this_machines_is_empty(settings, tmp_path, monkeypatch):
    engine = engines.engines(Machine(settings))["nspawn"]
    host_id = tmp_path / "machine-id"
    monkeypatch.setattr(type(engine), "HOST_MACHINE_ID", host_id)
    command = ["systemd-nspawn", "--boot"]
    host_id.write_text("0123456789abcdef0123456789abcdef\n")
    assert engine._with_machine_id(command) == command
    for content in ("", "\n"):
        host_id.write_text(content)
        wrapped = engine._with_machine_id(command)
        assert wrapped[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
        assert wrapped[-2:] == command
        lab_id = settings.state / "nspawn" / "machine-id"
        assert wrapped[-3] == str(lab_id)
        assert len(lab_id.read_text().strip()) == 32
    # One lab machine ID: the hosts' MAC addresses stay the same from one start to the next.
    assert engine._with_machine_id(command) == wrapped
    host_id.unlink()
    assert engine._with_machine_id(command)[-2:] == command
