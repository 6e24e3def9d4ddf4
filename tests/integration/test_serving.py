"""The serving stack after site.yml on the lab: two real llama.cpp models behind one endpoint, on 12
replicas (3 zones x 2 nodes x 2): SmolLM2-135M on model-a1, model-b1 and zone-c (Docker containers of the
lab's engine image, pulled by digest from the private registry on infra1), Gemma 3 270M on model-a2 and
model-b2; weights copied over NFS from nfs-ganesha, lb1 HAProxy and lb2 nginx (njs) in front.

Verified for real here: completions through both LBs (TLS checked against each LB's own certificate),
each routed by its "model" (name or alias) to that model's replicas, /v1/models, 404/400 for an
unknown/missing model, spread over zones (native and container replicas), 401/429/301, token budgets
per key (429 with Retry-After, admitted again after it), HAProxy's active checks under a killed
replica, the weights' bytes, what each replica container is (docker inspect).
Only rendered: the NFS kernel mount (no kernel NFS); GPU device requests (no GPU).
"""

import json
import ssl
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import node_of
from lbclient import KEYS, LAB_VARS, MODEL_FILES, MODELS, REPO, SERVED, Api, Load, haproxy_stat

pytestmark = pytest.mark.lab

RESULTS = REPO / ".lab" / "results"
ZONES = {"zone-a", "zone-b", "zone-c"}


@pytest.fixture(scope="module")
def apis(converged_lab):
    return {lb: Api(converged_lab, lb) for lb in ("lb1", "lb2")}


def zone_of_server(lab, name):
    return lab.load_inventory()["all"]["children"]["model_nodes"]["hosts"][node_of(name)]["llmfleet_zone"]


def test_chat_completion_through_each_lb(apis, converged_lab):
    for lb, api in apis.items():
        status, headers, body = api.chat("Say hello.", max_tokens=8)
        assert status == 200, (lb, body)
        answer = json.loads(body)
        assert answer["model"] == MODELS[0]
        assert answer["choices"][0]["message"]["content"].strip(), answer
        # The request id the LB gave back is in its JSON access log, with the caller's name.
        request_id = {k.lower(): v for k, v in headers.items()}["x-request-id"]
        log = converged_lab.ssh(lb, f"sudo -n grep -F '{request_id}' /var/log/llmfleet/lb-access.json")
        record = json.loads(log.stdout.strip().splitlines()[-1])
        assert record["request_id"] == request_id and record["api_client"] == "lab-tests" and record["status"] == 200


@pytest.mark.parametrize("lb", ["lb1", "lb2"])
def test_each_model_is_answered_by_its_own_replicas(apis, converged_lab, lb):
    """Two models behind one endpoint: a request goes to the replicas of the model it names (name or
    alias), seen in the answer and in the LB's access log (which replica served it); /v1/models is the
    LB's own answer (for a key limited to one model: that model); an unknown model is 404 and a missing
    one 400, as OpenAI-style errors."""
    lab, api = converged_lab, apis[lb]
    nodes_of = {}
    for node in (n for n in lab.hosts if n.startswith("model-")):
        for server, _model, _port in lab.servers(node).values():
            nodes_of.setdefault(server, set()).add(node)
    addresses = {lab.hosts[n]: n for n in lab.hosts}
    asked = {}
    for server, values in SERVED.items():
        for name in [values["model_server_model_name"]] + values.get("model_server_model_aliases", []):
            for _turn in range(3):
                status, headers, body = api.chat("Say hello.", max_tokens=4, model=name)
                assert status == 200, (lb, name, body)
                # llama.cpp answers with the name it serves (its --alias), whichever the client used.
                assert json.loads(body)["model"] == values["model_server_model_name"], body
                asked[{k.lower(): v for k, v in headers.items()}["x-request-id"]] = (server, name)
    log = lab.ssh(lb, "sudo -n tail -n 300 /var/log/llmfleet/lb-access.json").stdout.splitlines()
    records = {r["request_id"]: r for r in map(json.loads, log) if r["request_id"] in asked}
    assert set(records) == set(asked)
    for request_id, (server, name) in asked.items():
        record = records[request_id]
        assert (record["model"], record["backend"]) == (name, server), record
        # HAProxy logs the server's name (HOST-rINDEX, HOST-NAME-rINDEX), nginx the replica's address.
        node = node_of(record["server"]) if lb == "lb1" else addresses[record["server"].split(":")[0]]
        assert node in nodes_of[server], (record, nodes_of)
    status, _headers, body = api.request("/v1/models")
    listing = json.loads(body)
    assert status == 200 and listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == [MODELS[0], MODELS[1], *SERVED["gemma"]["model_server_model_aliases"]]
    status, _headers, body = api.request("/v1/chat/completions", {"model": "no-such-model", "messages": []})
    assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found", body
    status, _headers, body = api.request("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]})
    assert status == 400 and json.loads(body)["error"]["code"] == "model_required", body
    # A key limited to one model (by its alias: the whole model) gets 403 for the other.
    status, _headers, body = api.chat("Hi", model=MODELS[1], key=KEYS["lab-gemma-only"])
    assert status == 200, body
    status, _headers, body = api.chat("Hi", model=MODELS[0], key=KEYS["lab-gemma-only"])
    assert status == 403 and json.loads(body)["error"]["code"] == "model_not_allowed", body
    # and its /v1/models lists only what it may use.
    status, _headers, body = api.request("/v1/models", key=KEYS["lab-gemma-only"])
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == [MODELS[1], *SERVED["gemma"]["model_server_model_aliases"]]


def test_every_replica_is_a_healthy_haproxy_server(converged_lab):
    stats = haproxy_stat(converged_lab)
    expected = {name for node in converged_lab.hosts if node.startswith("model-") for name in converged_lab.servers(node)}
    assert "model-c2-gemma-r0" in expected  # the second model of model-c2
    assert set(stats) == expected
    assert {s["status"] for s in stats.values()} == {"UP"}, stats
    # The same states through the stats port's Prometheus endpoint, from the infra host (the only
    # host the firewall lets in there).
    metrics = converged_lab.ssh("infra1", f"curl -sf http://{converged_lab.hosts['lb1']}:8404/metrics")
    assert metrics.returncode == 0, metrics.stderr
    up = [line for line in metrics.stdout.splitlines()
          if line.startswith('haproxy_server_status{') and 'state="UP"' in line and line.endswith(" 1")]
    assert len(up) == len(expected)


def test_requests_spread_over_all_zones(apis, converged_lab):
    # GET /health names no model: the first model's backend (smollm2), which every zone serves.
    before = haproxy_stat(converged_lab)
    for _request in range(24):
        assert apis["lb1"].request("/health")[0] == 200
    after = haproxy_stat(converged_lab)
    served = {name for name in after if after[name]["stot"] > before[name]["stot"]}
    assert {zone_of_server(converged_lab, name) for name in served} == ZONES, served
    # nginx: the access log names the replica address each request went to.
    addresses = {addr: host for host, addr in converged_lab.hosts.items()}
    ids = []
    for _request in range(24):
        status, headers, _body = apis["lb2"].request("/health")
        assert status == 200
        ids.append({k.lower(): v for k, v in headers.items()}["x-request-id"])
    log = converged_lab.ssh("lb2", "sudo -n tail -n 200 /var/log/llmfleet/lb-access.json").stdout.splitlines()
    records = [json.loads(line) for line in log]
    upstreams = {r["server"].split(":")[0] for r in records if r["request_id"] in ids}
    inventory = converged_lab.load_inventory()["all"]["children"]["model_nodes"]["hosts"]
    assert {inventory[addresses[a]]["llmfleet_zone"] for a in upstreams} == ZONES


@pytest.mark.parametrize("lb", ["lb1", "lb2"])
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_keys_limits_and_tls_are_enforced(apis, lb):
    api = apis[lb]
    status, headers, body = api.request("/v1/models", key=None)
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    assert api.request("/v1/models", key="not-a-key-of-this-fleet-at-all")[0] == 401
    # Plain HTTP is only a redirect to HTTPS.
    status, headers, _body = api.request("/v1/models", scheme="http")
    assert status == 301 and {k.lower(): v for k, v in headers.items()}["location"].startswith("https://")
    # TLS below 1.2 is refused.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        urllib.request.urlopen(f"https://{api.address}/v1/models", context=old, timeout=10)
    # lab-limited may send 5 requests per 60 s: a burst of 12 gets 429 after at most 6.
    codes = [api.request("/v1/models", key=KEYS["lab-limited"])[0] for _request in range(12)]
    assert codes[0] == 200 and set(codes) == {200, 429} and codes.count(200) <= 6, codes
    assert codes[codes.index(429):] == [429] * (12 - codes.index(429)), codes


def _spend_the_token_budget(lab, api, lb):
    """lab-budget: 300 tokens per minute, refilled continuously. Each request reserves its body bytes / 4
    plus its max_tokens; a request that does not fit gets 429 and fits after Retry-After."""
    key = KEYS["lab-budget"]
    budget = next(k for k in LAB_VARS["load_balancer_api_keys"] if k["client"] == "lab-budget")["tokens_per_minute"]
    body = {"model": MODELS[0], "max_tokens": 64, "messages": [{"role": "user", "content": "Say hi."}]}
    cost = -(-len(json.dumps(body)) // 4) + 64
    # More than a whole minute's budget: refused at once, and no wait would help.
    status, headers, answer = api.request("/v1/chat/completions", dict(body, max_tokens=budget), key=key)
    assert status == 429 and json.loads(answer)["error"]["code"] == "request_over_token_budget", (lb, answer)
    assert "retry-after" not in {k.lower() for k in headers}
    admitted = []
    for _request in range(budget // cost + 1):
        status, headers, answer = api.request("/v1/chat/completions", body, key=key)
        if status != 200:
            break
        admitted.append({k.lower(): v for k, v in headers.items()}["x-request-id"])
    # Never more than the budget (fewer when an earlier run in this lab spent some of it).
    assert status == 429 and len(admitted) <= budget // cost, (lb, status, admitted, answer)
    assert json.loads(answer)["error"]["code"] == "token_budget_exceeded", answer
    wait = int({k.lower(): v for k, v in headers.items()}["retry-after"])
    assert 1 <= wait <= 60, wait
    time.sleep(wait)
    status, headers, answer = api.request("/v1/chat/completions", body, key=key)
    assert status == 200, (lb, wait, answer)
    admitted.append({k.lower(): v for k, v in headers.items()}["x-request-id"])
    log = lab.ssh(lb, "sudo -n tail -n 100 /var/log/llmfleet/lb-access.json").stdout.splitlines()
    reserved = {r["request_id"]: r["tokens_reserved"] for r in map(json.loads, log) if r["request_id"] in admitted}
    assert reserved == {request_id: str(cost) for request_id in admitted}, reserved


def test_a_key_over_its_token_budget_gets_429_until_retry_after(apis, converged_lab):
    # Both LBs at once (each counts its own requests): one wait for both.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda lb: _spend_the_token_budget(converged_lab, apis[lb], lb), apis))


def test_killed_replica_leaves_the_pool_and_returns(apis, converged_lab):
    """A replica is SIGKILLed while 4 clients send completions through both LBs (bounded: 60 s).

    Measured: time until HAProxy marks it DOWN, failed requests (in flight on the killed replica)
    and failures after it is DOWN (must be none), time until it is back UP after systemd restarts it.
    """
    lab = converged_lab
    victim_host, victim = "model-a1", "model-a1-r0"
    assert haproxy_stat(lab)[victim]["status"] == "UP"
    with Load(apis, ("lb1", "lb1", "lb2", "lb2"), seconds=60) as load:
        time.sleep(3)
        killed_at = time.monotonic()
        kill = lab.kill_replica(victim_host, 0)
        assert kill.returncode == 0, kill.stderr
        down_at = None
        while time.monotonic() - killed_at < 20:
            if haproxy_stat(lab, shared=True)[victim]["status"].startswith("DOWN"):
                down_at = time.monotonic()
                break
            time.sleep(0.2)
        assert down_at is not None, "HAProxy never marked the killed replica DOWN"
        time.sleep(3)
    results = load.results
    # Back in the pool: systemd starts it again (RestartSec=5), the checks bring it UP (rise 2).
    up_at = None
    while time.monotonic() - down_at < 60:
        if haproxy_stat(lab, shared=True)[victim]["status"] == "UP":
            up_at = time.monotonic()
            break
        time.sleep(0.5)
    assert up_at is not None, "the replica did not come back UP"
    before = haproxy_stat(lab)[victim]["stot"]
    for _request in range(36):
        apis["lb1"].request("/health")  # no model: the first model's backend, the victim's
    assert haproxy_stat(lab)[victim]["stot"] > before, "the restarted replica gets requests again"

    failed = load.failed()
    after_down = [r for r in failed if r[0] >= down_at]
    report = {
        "requests": len(results),
        "failed": len(failed),
        "failed_after_down": len(after_down),
        "seconds_to_down": round(down_at - killed_at, 2),
        "seconds_down_to_up": round(up_at - down_at, 2),
        "failures": [{"started_s": round(r[0] - killed_at, 2), "status": r[2], "lb": r[3]} for r in failed],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "replica-kill.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    assert len(results) > 20
    assert after_down == [], report
    # fall 2 x inter 1 s after the kill, plus the SSH round trips of this poll on a loaded 2-core machine
    # (seen: 1.5-3.1 s).
    assert report["seconds_to_down"] < 6, report


def test_stopped_replica_is_taken_out_by_its_fault_agent_and_returns(apis, converged_lab):
    """A replica's processes are stopped (SIGSTOP: alive, port open, answering nothing) while 4 clients send
    completions through the HAProxy LB (bounded: 40 s). Its node's fault agent (roles/fault_agent) sees the
    stopped process and answers HAProxy's agent-check "down": measured, the time until HAProxy marks it
    DOWN with the agent's reason, failures after that (must be none), and the time until it is back UP
    once continued (SIGCONT). The requests it held while stopped finish when it continues."""
    lab = converged_lab
    victim_host, victim = "model-b1", "model-b1-r0"
    assert haproxy_stat(lab)[victim]["status"] == "UP"
    with Load(apis, ("lb1",) * 4, seconds=40) as load:
        time.sleep(3)
        stopped_at = time.monotonic()
        stop = lab.signal_replica(victim_host, 0, "STOP")
        assert stop.returncode == 0, stop.stderr
        down_at, reason = None, ""
        try:
            while time.monotonic() - stopped_at < 15:
                stat = haproxy_stat(lab, shared=True)[victim]
                if stat["status"].startswith("DOWN"):
                    down_at, reason = time.monotonic(), stat["last_agt"]
                    break
                time.sleep(0.1)
            time.sleep(5)
        finally:
            resumed_at = time.monotonic()
            resume = lab.signal_replica(victim_host, 0, "CONT")
        assert resume.returncode == 0, resume.stderr
        assert down_at is not None, "HAProxy never marked the stopped replica DOWN"
        up_at = None
        while time.monotonic() - resumed_at < 20:
            if haproxy_stat(lab, shared=True)[victim]["status"] == "UP":
                up_at = time.monotonic()
                break
            time.sleep(0.3)
    failed = load.failed()
    report = {
        "requests": len(load.results),
        "failed": len(failed),
        "failed_after_down": len([r for r in failed if r[0] >= down_at]),
        "seconds_to_down": round(down_at - stopped_at, 2),
        "agent_said": reason,
        "seconds_continued_to_up": round(up_at - resumed_at, 2) if up_at else None,
        "failures": [{"started_s": round(r[0] - stopped_at, 2), "status": r[2]} for r in failed],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "replica-stop.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    # The agent, not the health check (which needs fall 2 x inter 1 s and a 2 s timeout), took it out.
    assert "stopped" in reason, report
    assert up_at is not None, report
    assert report["failed_after_down"] == 0, report
    # Agent look (1 s) + HAProxy's agent-inter (1 s) + this poll's SSH round trips on a loaded 2-core machine.
    assert report["seconds_to_down"] < 4, report
    assert len(load.results) > 20, report


def test_weights_arrive_byte_for_byte_over_nfs(converged_lab):
    lab = converged_lab
    for node in (n for n in lab.hosts if n.startswith("model-")):
        # Each node stages the models it serves (the lab's two: host_vars; model-c2 serves both).
        for model in {model for _server, model, _port in lab.servers(node).values()}:
            served = MODEL_FILES["gemma3" if model == SERVED["gemma"]["model_server_model_name"] else "smollm2"]
            path = f"/srv/models/{served['name']}/{served['file']}"
            store = lab.ssh("infra1", f"sha256sum {path}")
            assert store.stdout.split()[0] == served["sha256"], store.stdout + store.stderr
            local = lab.ssh(node, f"sha256sum {path}")
            assert local.stdout.split()[0] == served["sha256"], (node, local.stdout, local.stderr)
    # The export is read-only to the model nodes...
    write = lab.ssh("model-b1", "sudo -n nfs-cp /etc/hostname nfs://infra1/srv/models/written-by-a-client")
    assert write.returncode != 0
    assert lab.ssh("infra1", "test ! -e /srv/models/written-by-a-client").returncode == 0
    # ...and closed to every other host (lb1 has no NFS client package: a TCP connect must fail).
    probe = lab.ssh("lb1", "timeout 5 bash -c 'exec 3<>/dev/tcp/infra1/2049' && echo open || echo closed")
    assert probe.stdout.strip() == "closed"


def test_container_replicas_run_the_registry_image_by_digest_as_configured(converged_lab):
    """zone-c's replicas: one container each, created from the lab registry's image pinned by digest
    (what the node's release record holds too), weights read-only, the replica's port, CPU and
    memory limits, a stop timeout of the engine's drain, log rotation from the docker role, healthy by
    the engine's own readiness, restarted by Docker when they crash."""
    lab = converged_lab
    nodes = sorted(lab.container_nodes())
    assert nodes == ["model-c1", "model-c2"]
    registry = f"{lab.hosts['infra1']}:5000/engines/llamacpp@sha256:"
    for node in nodes:
        proc = lab.ssh(node, "sudo -n docker inspect llmfleet-llm-0 llmfleet-llm-1")
        assert proc.returncode == 0, proc.stderr
        containers = json.loads(proc.stdout)
        record = json.loads(lab.ssh(node, "cat /etc/llmfleet/model_server-llm.json").stdout)
        image = record["release"]["model_server_image"]
        assert image.startswith(registry) and len(image) == len(registry) + 64, image
        for index, container in enumerate(containers):
            config, host_config = container["Config"], container["HostConfig"]
            assert config["Image"] == image
            assert [(m["Source"], m["Destination"], m["RW"]) for m in container["Mounts"]] == [
                ("/srv/models/smollm2", "/srv/models/smollm2", False)]
            assert host_config["PortBindings"] == {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(8000 + index)}]}
            assert host_config["NanoCpus"] == 10 ** 9 and host_config["Memory"] == 2 ** 30
            assert config["StopTimeout"] == 30
            assert host_config["LogConfig"]["Type"] == "json-file"
            assert host_config["LogConfig"]["Config"]["max-size"] == "100m"
            assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
            assert container["State"]["Health"]["Status"] == "healthy", container["State"]["Health"]
            assert config["Cmd"][config["Cmd"].index("--threads") + 1] == "1"
        pulled = lab.ssh(node, "sudo -n docker image inspect -f '{{json .RepoDigests}}' " + image)
        assert image in json.loads(pulled.stdout), pulled.stdout
