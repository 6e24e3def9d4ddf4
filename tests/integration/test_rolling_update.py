"""playbooks/rolling_update.yml on the lab, under load through both load balancers (lb1 HAProxy, lb2 nginx).

A "release" here is the llama.cpp context size of every replica (model_server_llamacpp_ctx_size): a real
restart of every replica with new arguments, visible in each replica's /props (n_ctx per slot).
Every request the clients send is counted; a sampler watches both LBs during the update (HAProxy's
server status over the runtime socket, nginx's `down` markers) to check that never more than one zone
is out of the pool. Results: .lab/results/rolling-update-*.json. The lab is left on the new release
(ctx 4096); site.yml puts it back (restarting every replica at once).
"""

import json
import threading
import time

import pytest
from lbclient import REPO, Api, Load, haproxy_stat

pytestmark = pytest.mark.lab

RESULTS = REPO / ".lab" / "results"
NODES = ["model-a1", "model-a2", "model-b1", "model-b2", "model-c1", "model-c2"]
ZONE_OF_NODE = {n: "zone-" + n[len("model-")] for n in NODES}
LAB_CTX = 2048      # inventories/lab (model_server_llamacpp_ctx_size default)
NEW_CTX = 4096
PARALLEL = 2        # slots per replica: n_ctx per slot = ctx / slots


@pytest.fixture(scope="module")
def apis(converged_lab):
    return {lb: Api(converged_lab, lb) for lb in ("lb1", "lb2")}


def release_inventory(lab, tmp_path, **model_vars):
    def mutate(inv):
        inv["all"]["children"]["model_nodes"].setdefault("vars", {}).update(model_vars)
    return lab.inventory_copy(tmp_path, mutate)


def rolling_update(lab, inventory, result_file, *extra):
    proc = lab.playbook("playbooks/rolling_update.yml", "-e", f"rolling_update_result_file={result_file}", *extra,
                        inventory=inventory, timeout=1200)
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return proc, result


def slot_contexts(lab):
    """{node-rINDEX: n_ctx per slot} read from each replica's /props on its node."""
    found = {}
    for node in NODES:
        for index, port in enumerate((8000, 8001)):
            proc = lab.ssh(node, f"curl -s --max-time 5 http://127.0.0.1:{port}/props")
            assert proc.returncode == 0, proc.stderr
            found[f"{node}-r{index}"] = json.loads(proc.stdout)["default_generation_settings"]["n_ctx"]
    return found


def replica_pids(lab, nodes):
    out = {}
    for node in nodes:
        proc = lab.ssh(node, "systemctl show -P MainPID llmfleet-llm-0.service llmfleet-llm-1.service")
        out[node] = proc.stdout.split()
    return out


class PoolSampler:
    """Which zones each LB has out of its pool, sampled about once a second until stopped."""

    def __init__(self, lab):
        self.lab = lab
        self.samples = []   # (seconds, lb, zones out, servers out)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _nginx_down(self):
        proc = self.lab.ssh("lb2", "sudo -n grep -E ' down;' /etc/nginx/nginx.conf || true")
        return [line.split("#", 1)[1].split()[0] for line in proc.stdout.splitlines() if "#" in line]

    def _run(self):
        start = time.monotonic()
        while not self.stop.is_set() and time.monotonic() - start < 900:
            out = [(name, s["status"]) for name, s in haproxy_stat(self.lab).items() if s["status"] != "UP"]
            self.samples.append((time.monotonic() - start, "lb1", {ZONE_OF_NODE[n.rsplit("-r", 1)[0]] for n, _status in out},
                                 out))
            down = self._nginx_down()
            self.samples.append((time.monotonic() - start, "lb2", {ZONE_OF_NODE[n.rsplit("-r", 1)[0]] for n in down},
                                 down))
            time.sleep(0.7)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)

    def zones_seen_out(self, lb, status_prefix=""):
        return set().union(*[s[2] for s in self.samples if s[1] == lb and (
            lb == "lb2" or any(st.startswith(status_prefix) for _n, st in s[3]))])

    def most_zones_out(self):
        return max((len(s[2]) for s in self.samples), default=0)


def report(name, data):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"rolling-update-{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(json.dumps(data, default=str))


def test_broken_release_stops_at_the_first_zone_and_rolls_it_back(converged_lab, apis, tmp_path):
    """A release whose replicas cannot start (an unknown engine flag, with the new context size): zone-a
    fails its gate, is rolled back to the release recorded on its nodes (the lab's) and re-enabled;
    zone-b and zone-c are not touched."""
    lab = converged_lab
    inventory = release_inventory(lab, tmp_path, model_server_llamacpp_ctx_size=NEW_CTX,
                                  model_server_extra_args=["--no-such-flag"])
    assert set(slot_contexts(lab).values()) == {LAB_CTX // PARALLEL}
    result_file = tmp_path / "result.json"
    others = replica_pids(lab, NODES[2:])
    with PoolSampler(lab) as sampler, Load(apis, ("lb1", "lb1", "lb2", "lb2"), seconds=600, pace=1.0) as load:
        time.sleep(2)
        proc, result = rolling_update(lab, inventory, result_file, "-e", "rolling_update_gate_loading_timeout=10",
                                      "-e", "rolling_update_soak_seconds=3")
    failed = load.failed()
    report("broken", {"requests": len(load.results), "failed": len(failed), "failures": failed[:20],
                      "most_zones_out_at_once": sampler.most_zones_out(), "result": result,
                      "playbook_tail": proc.stdout[-3000:]})
    assert proc.returncode != 0
    assert "The rolling update stopped: zone-a rolled back" in proc.stdout
    zones = {z["zone"]: z for z in result["zones"]}
    assert result["status"] == "stopped"
    assert zones["zone-a"]["status"] == "rolled_back", zones["zone-a"]
    assert "still loading after" in zones["zone-a"]["error"] and "connection refused" in zones["zone-a"]["error"]
    assert zones["zone-a"]["seconds"]["rollback"] > 0
    assert zones["zone-b"]["status"] == zones["zone-c"]["status"] == "pending"
    assert len(load.results) > 20
    assert failed == []
    # zone-a serves the release it had; the other zones' processes were never restarted.
    assert set(slot_contexts(lab).values()) == {LAB_CTX // PARALLEL}
    assert replica_pids(lab, NODES[2:]) == others
    assert {s["status"] for s in haproxy_stat(lab).values()} == {"UP"}
    assert sampler._nginx_down() == []
    assert sampler.zones_seen_out("lb1") == {"zone-a"} and sampler.most_zones_out() == 1


def test_full_update_under_load_fails_no_request(converged_lab, apis, tmp_path):
    """Three zones to a new release while 4 clients (2 per LB, at most 1 request/s each: under the lab
    key's rate limit) send completions; bounded to 15 min. Leaves the lab on that release."""
    lab = converged_lab
    inventory = release_inventory(lab, tmp_path, model_server_llamacpp_ctx_size=NEW_CTX)
    result_file = tmp_path / "result.json"
    with PoolSampler(lab) as sampler, Load(apis, ("lb1", "lb1", "lb2", "lb2"), seconds=900, pace=1.0) as load:
        time.sleep(2)
        proc, result = rolling_update(lab, inventory, result_file, "-e", "rolling_update_soak_seconds=3")
    assert proc.returncode == 0, proc.stdout[-6000:]
    failed = load.failed()
    report("full", {"requests": len(load.results), "failed": len(failed), "failures": failed[:20],
                    "most_zones_out_at_once": sampler.most_zones_out(), "samples": len(sampler.samples),
                    "result": result})
    assert [(z["zone"], z["status"]) for z in result["zones"]] == [
        ("zone-a", "updated"), ("zone-b", "updated"), ("zone-c", "updated")]
    assert result["status"] == "updated"
    assert len(load.results) > 50
    assert failed == []
    # Every replica runs the new release, and every LB has them all back.
    assert set(slot_contexts(lab).values()) == {NEW_CTX // PARALLEL}
    assert {s["status"] for s in haproxy_stat(lab).values()} == {"UP"}
    assert sampler._nginx_down() == []
    # Each zone was out of both pools in turn, never two at once.
    assert sampler.zones_seen_out("lb1", "DRAIN") == {"zone-a", "zone-b", "zone-c"}
    assert sampler.zones_seen_out("lb2") == {"zone-a", "zone-b", "zone-c"}
    assert sampler.most_zones_out() == 1


def test_rerun_after_success_skips_every_zone(converged_lab, tmp_path):
    """The fleet already runs the release: a rerun (how an aborted update resumes) drains nothing."""
    lab = converged_lab
    inventory = release_inventory(lab, tmp_path, model_server_llamacpp_ctx_size=NEW_CTX)
    before = haproxy_stat(lab)
    proc, result = rolling_update(lab, inventory, tmp_path / "result.json")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert [(z["zone"], z["status"]) for z in result["zones"]] == [
        ("zone-a", "skipped"), ("zone-b", "skipped"), ("zone-c", "skipped")]
    assert {n: s["status"] for n, s in haproxy_stat(lab).items()} == {n: "UP" for n in before}
    assert set(slot_contexts(lab).values()) == {NEW_CTX // PARALLEL}
