"""Native replicas' files and the one-call reconcile, on a temporary unit and environment directory with a
fake systemctl that keeps the units' state as systemd would."""

import os
import re

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import replica_units

PLAN = {"name": "llm", "replicas": [{"index": 0, "port": 8001, "gpus": []}, {"index": 1, "port": 8002, "gpus": []}]}
RELEASE = {"engine": "llamacpp", "model_name": "smollm2", "model_path": "/srv/models/smollm2.gguf", "user": "llmfleet-model",
           "venv": "/opt/llmfleet/llamacpp-llm-0123456789ab", "launcher": "/usr/local/lib/llmfleet/llamacpp_serve-abc.py",
           "extra_args": [], "environment": {"LLAMA_LOG": "info"}, "bind_address": "0.0.0.0",
           "llamacpp": {"parallel": 2, "ctx_size": 2048, "threads": 1}, "stop_timeout": "30", "restart_sec": 5,
           "memory_limit": "", "cpus": "0"}


class FakeSystemctl(object):
    """systemctl as far as reconcile uses it: show, enable, disable --now, reset-failed, start, restart, daemon-reload."""

    def __init__(self, active=(), enabled=()):
        self.active, self.enabled, self.calls = set(active), set(enabled), []

    def __call__(self, args):
        self.calls.append(list(args))
        verb, units = args[0], [a for a in args[1:] if not a.startswith("--")]
        if verb == "show":
            return 0, "\n\n".join("Id=%s\nActiveState=%s\nUnitFileState=%s" % (
                u, "active" if u in self.active else "inactive", "enabled" if u in self.enabled else "disabled")
                for u in units) + "\n", ""
        if verb in ("start", "restart"):
            self.active.update(units)
        elif verb == "enable":
            self.enabled.update(units)
        elif verb == "disable":
            self.active.difference_update(units)
            self.enabled.difference_update(units)
        return 0, "", ""

    def verbs(self):
        return [c[0] for c in self.calls if c[0] != "show"]


@pytest.fixture
def node(tmp_path):
    (tmp_path / "units").mkdir()
    (tmp_path / "default").mkdir()
    return replica_units.Node(FakeSystemctl(), unit_dir=str(tmp_path / "units"), env_dir=str(tmp_path / "default"),
                              gid=os.getgid())


def test_the_unit_runs_the_release_from_its_virtualenv_and_launcher():
    files = replica_units.render(PLAN, RELEASE)
    assert [f["index"] for f in files] == [0, 1]
    unit = files[1]["unit"]
    assert "ExecStart=/opt/llmfleet/llamacpp-llm-0123456789ab/bin/python /usr/local/lib/llmfleet/llamacpp_serve-abc.py " \
           "--model /srv/models/smollm2.gguf --alias smollm2 --host 0.0.0.0 --port 8002 --metrics " \
           "--parallel 2 --ctx-size 2048 --threads 1\n" in unit
    assert "Environment=PATH=/opt/llmfleet/llamacpp-llm-0123456789ab/bin:/usr/local/bin:/usr/bin:/bin\n" in unit
    assert "EnvironmentFile=/etc/default/llmfleet-llm-1\n" in unit
    assert "TimeoutStopSec=30\n" in unit and "KillMode=mixed\n" in unit and "User=llmfleet-model\n" in unit
    # No limits asked for, none written ("0" as templated variables give it).
    assert "MemoryMax" not in unit and "CPUQuota" not in unit
    assert files[1]["environment"].endswith('LLAMA_LOG="info"\n')


def test_limits_and_arguments_systemd_would_read_otherwise_are_written_as_meant():
    release = dict(RELEASE, memory_limit="8G", cpus=1.5, extra_args=["--chat-template", "a b", "100%", "$HOME", 'q"t'])
    unit = replica_units.render(PLAN, release)[0]["unit"]
    assert "MemoryMax=8G\n" in unit and "CPUQuota=150%\n" in unit
    # systemd.service: % starts a specifier, $ a variable, a space splits words.
    assert unit.split("ExecStart=")[1].split("\n")[0].endswith(' --chat-template "a b" 100%% $$HOME "q\\"t"')


def test_a_rollback_renders_the_recorded_engine_and_model_not_the_plan_s():
    plan = dict(PLAN, engine="vllm", model_name="new")
    unit = replica_units.render(plan, RELEASE)[0]["unit"]
    assert "--alias smollm2" in unit and "llamacpp" in unit


def test_first_run_writes_enables_and_starts_every_replica(node):
    result = replica_units.reconcile(node, "llm", replica_units.render(PLAN, RELEASE))
    assert result["changed"] and result["restarted"] == ["llmfleet-llm-0.service", "llmfleet-llm-1.service"]
    assert sorted(os.listdir(node.unit_dir)) == ["llmfleet-llm-0.service", "llmfleet-llm-1.service"]
    env = os.path.join(node.env_dir, "llmfleet-llm-0")
    assert oct(os.stat(env).st_mode & 0o777) == "0o640"
    # One reload, one enable and one restart for both replicas.
    assert node.systemctl.verbs() == ["daemon-reload", "enable", "reset-failed", "restart"]
    assert node.systemctl.calls[-1] == ["restart", "llmfleet-llm-0.service", "llmfleet-llm-1.service"]
    # Their restart counts start afresh (the fault agent reads a kept count as a crash loop).
    assert node.systemctl.calls[-2] == ["reset-failed", "llmfleet-llm-0.service", "llmfleet-llm-1.service"]


def test_a_second_run_changes_nothing_and_restarts_nothing(node):
    files = replica_units.render(PLAN, RELEASE)
    replica_units.reconcile(node, "llm", files)
    node.systemctl.calls = []
    result = replica_units.reconcile(node, "llm", files)
    assert not result["changed"] and node.systemctl.verbs() == []


def test_only_the_replica_whose_file_changed_restarts_without_a_reload_when_only_its_environment_changed(node):
    files = replica_units.render(PLAN, RELEASE)
    replica_units.reconcile(node, "llm", files)
    node.systemctl.calls = []
    files[1]["environment"] += "EXTRA=1\n"
    result = replica_units.reconcile(node, "llm", files)
    assert result["restarted"] == ["llmfleet-llm-1.service"] and node.systemctl.verbs() == ["reset-failed", "restart"]


def test_a_stopped_replica_is_started_not_restarted_and_a_wrong_mode_is_fixed_without_a_restart(node):
    files = replica_units.render(PLAN, RELEASE)
    replica_units.reconcile(node, "llm", files)
    node.systemctl.active.discard("llmfleet-llm-0.service")
    os.chmod(os.path.join(node.env_dir, "llmfleet-llm-1"), 0o644)
    node.systemctl.calls = []
    result = replica_units.reconcile(node, "llm", files)
    assert result["started"] == ["llmfleet-llm-0.service"] and result["restarted"] == []
    assert result["written"] == [os.path.join(node.env_dir, "llmfleet-llm-1")]
    assert node.systemctl.verbs() == ["reset-failed", "start"]


def test_replicas_the_plan_no_longer_has_are_stopped_and_removed_but_not_another_server_s(node):
    replica_units.reconcile(node, "llm", replica_units.render(PLAN, RELEASE))
    other = dict(PLAN, name="llm-2")
    replica_units.reconcile(node, "llm-2", replica_units.render(other, RELEASE))
    node.systemctl.calls = []
    one = dict(PLAN, replicas=PLAN["replicas"][:1])
    result = replica_units.reconcile(node, "llm", replica_units.render(one, RELEASE))
    assert result["retired"] == ["llmfleet-llm-1.service"]
    assert node.systemctl.calls[0] == ["disable", "--now", "llmfleet-llm-1.service"]
    assert node.systemctl.verbs() == ["disable", "daemon-reload"]
    assert sorted(os.listdir(node.unit_dir)) == ["llmfleet-llm-0.service", "llmfleet-llm-2-0.service",
                                                 "llmfleet-llm-2-1.service"]
    assert sorted(os.listdir(node.env_dir)) == ["llmfleet-llm-0", "llmfleet-llm-2-0", "llmfleet-llm-2-1"]
    # An empty plan (the server moved to containers) retires every unit of the server.
    result = replica_units.reconcile(node, "llm", [])
    assert result["retired"] == ["llmfleet-llm-0.service"]


def test_check_mode_reports_and_touches_nothing(node):
    result = replica_units.reconcile(node, "llm", replica_units.render(PLAN, RELEASE), check_mode=True)
    assert result["changed"] and len(result["written"]) == 4 and result["restarted"]
    assert os.listdir(node.unit_dir) == [] and node.systemctl.verbs() == []


def test_a_failing_systemctl_is_reported_with_its_message(node):
    def failing(args):
        return (1, "", "Failed to restart llmfleet-llm-0.service: Unit not found.") if args[0] == "restart" \
            else FakeSystemctl()(args)
    node.systemctl = failing
    with pytest.raises(RuntimeError, match="systemctl restart .*Unit not found"):
        replica_units.reconcile(node, "llm", replica_units.render(PLAN, RELEASE))


def test_prune_removes_what_no_unit_names_and_keeps_what_any_server_runs(node, tmp_path):
    venvs = tmp_path / "opt"
    for name in ("llamacpp", "llamacpp-llm-0123456789ab", "llamacpp-llm-ffffffffffff", "llamacpp-llm-2-aaaaaaaaaaaa",
                 "llamacpp-llm-0123456789abc", "vllm"):
        (venvs / name / "bin").mkdir(parents=True)
    release = dict(RELEASE, venv=str(venvs / "llamacpp-llm-0123456789ab"))
    replica_units.reconcile(node, "llm", replica_units.render(PLAN, release))
    # Another server runs the unversioned virtualenv of an earlier collection version.
    replica_units.reconcile(node, "llm-3", replica_units.render(dict(PLAN, name="llm-3"),
                                                                dict(RELEASE, venv=str(venvs / "llamacpp"))))
    candidates = [{"dir": str(venvs), "pattern": r"^llamacpp(-llm-[0-9a-f]{12})?$"}]
    assert replica_units.prune(node, candidates, check_mode=True) == [str(venvs / "llamacpp-llm-ffffffffffff")]
    assert (venvs / "llamacpp-llm-ffffffffffff").is_dir()
    assert replica_units.prune(node, candidates) == [str(venvs / "llamacpp-llm-ffffffffffff")]
    assert sorted(os.listdir(venvs)) == ["llamacpp", "llamacpp-llm-0123456789ab", "llamacpp-llm-0123456789abc",
                                         "llamacpp-llm-2-aaaaaaaaaaaa", "vllm"]
    replica_units.reconcile(node, "llm-3", [])
    assert replica_units.prune(node, candidates) == [str(venvs / "llamacpp")]


def test_prune_refuses_a_bad_pattern(node):
    with pytest.raises(ValueError, match="prune: pattern"):
        replica_units.prune(node, [{"dir": node.unit_dir, "pattern": "("}])


def test_unit_names_match_what_the_load_balancers_and_gates_call_the_replicas():
    assert re.match(replica_units.UNIT_PATTERN % "llm", replica_units.unit_name("llm", 12))
    assert not re.match(replica_units.UNIT_PATTERN % "llm", replica_units.unit_name("llm-2", 0))
