"""Monitoring and logs after site.yml on the lab, checked through Prometheus' own HTTP API on infra1.

Verified for real: node exporter on every host, HAProxy's Prometheus endpoint, every llama.cpp
replica's /metrics, all scraped with their zone labels from the inventory; a stopped replica goes to
up == 0 and LLMReplicaDown goes pending, then fires once its `for` has passed; the rules on the host
pass promtool's unit tests; a request sent through each LB leaves its request id in a file that the
host's Filebeat configuration reads.
Only rendered: Filebeat itself (no Debian package; Elastic's repository is out of the lab's reach).
The test renders each host's filebeat.yml with the role's own variables and filter, and checks on
the hosts what Filebeat would read: every filestream path matches real files, the LB access log
holds one JSON object per line (what the ndjson parser needs) with the request id, and the
journald matches select the replicas' and sshd's messages. DCGM (no GPU) and the P99 latency alert
(llama.cpp has no latency histogram) are checked by promtool's unit tests only.
"""

import fnmatch
import json
import time
import urllib.parse
import urllib.request

import pytest
import yaml
from lbclient import REPO, Api

pytestmark = pytest.mark.lab

LAB_VARS = yaml.safe_load((REPO / "inventories/lab/group_vars/all/main.yml").read_text())
SERVING_VARS = yaml.safe_load((REPO / "inventories/lab/group_vars/model_nodes/main.yml").read_text())


def _seconds(duration):
    return int(duration[:-1]) * {"s": 1, "m": 60}[duration[-1]]


class Prometheus:
    def __init__(self, lab):
        self.url = f"http://{lab.hosts['infra1']}:9090"

    def get(self, path, **params):
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def up(self, **labels):
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return {r["metric"]["instance"]: r["value"][1] for r in self.get("/api/v1/query", query=f"up{{{selector}}}")["result"]}

    def alerts(self, name):
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name]


@pytest.fixture(scope="module")
def prometheus(converged_lab):
    return Prometheus(converged_lab)


@pytest.fixture(scope="module")
def inventory(converged_lab):
    children = converged_lab.load_inventory()["all"]["children"]
    return {group: children[group]["hosts"] for group in ("model_nodes", "load_balancers", "infra")}


def _expected_targets(converged_lab, inventory):
    """(job, instance) -> zone, from the inventory: what Prometheus must scrape."""
    zone = {h: v.get("llmfleet_zone", "none") for hosts in inventory.values() for h, v in hosts.items()}
    expected = {("node", h): zone[h] for h in converged_lab.hosts}
    for lb in inventory["load_balancers"]:
        # lb2 runs nginx: its metrics come from the nginx exporter (load_balancer role), on the same port.
        expected[("nginx" if lb == "lb2" else "haproxy", lb)] = zone[lb]
    expected[("prometheus", "infra1")] = zone["infra1"]
    expected[("alertmanager", "infra1")] = zone["infra1"]  # roles/alertmanager, beside Prometheus
    for host in inventory["model_nodes"]:
        # Every server of the node (model-c2 serves a second model: model-c2-gemma-r0).
        for name in converged_lab.servers(host):
            expected[("model_replicas", name)] = zone[host]
    return expected


def test_every_target_is_up_with_its_zone(converged_lab, prometheus, inventory):
    expected = _expected_targets(converged_lab, inventory)
    deadline = time.monotonic() + 60
    while True:
        targets = prometheus.get("/api/v1/targets", state="active")["activeTargets"]
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t for t in targets}
        down = {k: t["lastError"] for k, t in seen.items() if t["health"] != "up"}
        if set(seen) == set(expected) and not down or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert set(seen) == set(expected), f"missing {set(expected) - set(seen)}, unexpected {set(seen) - set(expected)}"
    assert not down, f"targets not up: {down}"
    assert {k: t["labels"]["zone"] for k, t in seen.items()} == expected
    # The same through a query, as an alert rule sees it.
    values = prometheus.get("/api/v1/query", query="up")["result"]
    assert len(values) == len(expected) and {r["value"][1] for r in values} == {"1"}
    # Replicas carry what they serve: engine and model, from the replica plans (two models in the lab).
    replicas = [t for t in targets if t["labels"]["job"] == "model_replicas"]
    assert {t["labels"]["engine"] for t in replicas} == {"llamacpp"}
    assert {t["labels"]["instance"]: (t["labels"]["host"], t["labels"]["model"]) for t in replicas} == {
        name: (node, model) for node in ("model-a1", "model-a2", "model-b1", "model-b2", "model-c1", "model-c2")
        for name, (_server, model, _port) in converged_lab.servers(node).items()}
    assert all(t["scrapeUrl"].endswith("/metrics") for t in replicas)
    # The engines' own metrics arrive (names from model-servers.md), per zone.
    processing = prometheus.get("/api/v1/query", query="count by (zone) (llamacpp:requests_processing)")["result"]
    # (zone-c: model-c2's second model adds a replica.)
    assert {r["metric"]["zone"]: r["value"][1] for r in processing} == {"zone-a": "4", "zone-b": "4", "zone-c": "5"}
    backends = prometheus.get("/api/v1/query", query='haproxy_backend_http_responses_total{code="2xx"}')["result"]
    # One backend per model: the success-rate alert's input, for each.
    assert {"llm", "gemma"} <= {r["metric"]["proxy"] for r in backends}, backends


def test_the_rules_on_the_host_pass_their_unit_tests(converged_lab, prometheus):
    proc = converged_lab.ssh("infra1", "sudo -n /usr/local/lib/llmfleet/promtool-test-rules "
                                       "/etc/prometheus/tests/llmfleet-slo.test.yml /etc/prometheus/rules/llmfleet-slo.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout and proc.stdout.rstrip().endswith("SUCCESS")
    groups = prometheus.get("/api/v1/rules", type="alert")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert rules["LLMReplicaDown"]["duration"] == _seconds(LAB_VARS["prometheus_alert_replica_down_for"])
    assert rules["NodeCPUHigh"]["query"].endswith("> 85")


WEBHOOK_LOG = "/tmp/llmfleet-webhook.jsonl"
# A webhook receiver on infra1 (the lab's Alertmanager receiver, inventories/lab/group_vars/all): every
# POST body as one line of WEBHOOK_LOG. Bounded: it ends itself after 5 minutes.
WEBHOOK = """cat > /tmp/llmfleet-webhook.py <<'PY'
import http.server
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open("%s", "ab") as log:
            log.write(body.replace(b"\\n", b" ") + b"\\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", 9199), Hook).serve_forever()
PY
rm -f %s; setsid timeout 300 python3 /tmp/llmfleet-webhook.py </dev/null >/dev/null 2>&1 &""" % (WEBHOOK_LOG, WEBHOOK_LOG)


@pytest.fixture
def webhook(converged_lab):
    """Starts the receiver; yields a function that returns the notifications it received so far."""
    lab = converged_lab
    start = lab.ssh("infra1", WEBHOOK)
    assert start.returncode == 0, start.stderr

    def received():
        proc = lab.ssh("infra1", f"cat {WEBHOOK_LOG} 2>/dev/null || true")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    yield received
    lab.ssh("infra1", "pkill -f /tmp/llmfleet-webhook.py || true")


def _notified(notifications, status, victim):
    """The alerts about victim in notifications of that status (firing / resolved)."""
    return [a for n in notifications if n["status"] == status for a in n["alerts"]
            if a["labels"].get("alertname") == "LLMReplicaDown" and a["labels"].get("instance") == victim
            and a["status"] == status]


def test_a_stopped_replica_goes_down_and_its_alert_fires_after_its_for(converged_lab, prometheus, webhook):
    """Stop one replica (systemd would restart a killed one within 5 s, before any alert could
    hold): up == 0, LLMReplicaDown pending, then firing no earlier than its `for` and no later than
    for + a scrape interval + an evaluation interval + the scrape timeout (+5 s for this poll).
    Alertmanager (roles/alertmanager) delivers it to a webhook receiver with its zone and model labels,
    and the resolution follows once the replica is back."""
    lab = converged_lab
    hold = _seconds(LAB_VARS["prometheus_alert_replica_down_for"])
    latest = hold + sum(_seconds(LAB_VARS[k]) for k in (
        "prometheus_scrape_interval", "prometheus_evaluation_interval", "prometheus_scrape_timeout")) + 5
    host, victim = "model-b2", "model-b2-r1"
    unit = lab.replica_unit(host, 1) + ".service"
    assert prometheus.up(instance=victim) == {victim: "1"}
    assert not prometheus.alerts("LLMReplicaDown"), "an alert is already active"
    # The earliest the alert can fire is `for` after the stop was asked for: the replica stops listening
    # before `systemctl stop` returns through SSH, and a scrape and an evaluation can fall in between
    # (seen in CI on a slow machine: "fired after 14.0 s" measured from the return). The lower bound is
    # measured from the request, the upper one from the return.
    asked_at = time.monotonic()
    stop = lab.ssh(host, f"sudo -n systemctl stop {unit}")
    assert stop.returncode == 0, stop.stderr
    stopped_at = time.monotonic()
    down_at = pending_at = firing_at = fired_since_asked = None
    firing = []
    try:
        while time.monotonic() - stopped_at < latest + 10 and firing_at is None:
            now = time.monotonic() - stopped_at
            if down_at is None and prometheus.up(instance=victim) == {victim: "0"}:
                down_at = now
            alerts = prometheus.alerts("LLMReplicaDown")
            if pending_at is None and any(a["state"] == "pending" for a in alerts):
                pending_at = now
            firing = [a for a in alerts if a["state"] == "firing"]
            if firing:
                firing_at = now
                fired_since_asked = time.monotonic() - asked_at
            time.sleep(0.5)
    finally:
        start = lab.ssh(host, f"sudo -n systemctl start {unit}")
    assert start.returncode == 0, start.stderr
    print(f"up==0 after {down_at} s, pending after {pending_at} s, firing after {firing_at} s (for {hold} s)")
    assert down_at is not None, "up never went to 0"
    assert pending_at is not None and pending_at < hold, "the alert was never seen pending before its for"
    assert firing_at is not None, f"LLMReplicaDown did not fire within {latest + 10} s"
    assert fired_since_asked >= hold, f"fired {fired_since_asked:.1f} s after the stop was asked for; its for is {hold} s"
    assert firing_at <= latest, f"fired after {firing_at:.1f} s; at the latest {latest} s"
    assert len(firing) == 1
    labels = firing[0]["labels"]
    assert (labels["instance"], labels["zone"], labels["host"], labels["severity"]) == (victim, "zone-b", host, "critical")
    assert firing[0]["annotations"]["summary"] == f"Model replica {victim} in zone-b is down"

    # Back: up again and the alert resolves (the next tests need every replica serving).
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if prometheus.up(instance=victim) == {victim: "1"} and not prometheus.alerts("LLMReplicaDown"):
            break
        time.sleep(1)
    assert prometheus.up(instance=victim) == {victim: "1"}
    assert not prometheus.alerts("LLMReplicaDown")
    health = lab.ssh(host, "curl -fsS http://127.0.0.1:8001/health")
    assert health.returncode == 0, health.stderr

    # Delivered: the firing notification (group_wait after Alertmanager got it), then the resolution
    # (Prometheus sends it at its next evaluation, Alertmanager at the group's next interval).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _notified(webhook(), "resolved", victim):
        time.sleep(1)
    notifications = webhook()
    fired, resolved = _notified(notifications, "firing", victim), _notified(notifications, "resolved", victim)
    print(f"webhook: {len(notifications)} notifications, {len(fired)} firing and {len(resolved)} resolved for {victim}")
    assert fired, notifications
    host_vars = REPO / "inventories/lab/host_vars" / f"{host}.yml"
    model = (yaml.safe_load(host_vars.read_text()) if host_vars.exists() else SERVING_VARS)["model_server_model_name"]
    assert (fired[0]["labels"]["zone"], fired[0]["labels"]["model"]) == ("zone-b", model)
    assert resolved, notifications
    assert resolved[0]["endsAt"] >= fired[0]["startsAt"]


@pytest.fixture(scope="module")
def filebeat_configs(converged_lab, tmp_path_factory):
    """Each host's filebeat.yml, rendered by the role's own variables and filter (its validation
    step), without Filebeat: the lab cannot install it. Touches no host."""
    out = tmp_path_factory.mktemp("filebeat")
    proc = converged_lab.playbook(str(REPO / "tests/integration/playbooks/filebeat_config.yml"),
                                  "-e", json.dumps({"filebeat_config_dir": str(out),
                                                    "filebeat_output_hosts": ["logstash.lab.invalid:5044"]}))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {p.stem: yaml.safe_load(p.read_text()) for p in out.glob("*.yml")}


def _matching_files(lab, host, globs):
    listing = lab.ssh(host, "sudo -n find /var/log /var/lib/docker/containers -type f 2>/dev/null; true")
    return [f for f in listing.stdout.split() if any(fnmatch.fnmatch(f, g) for g in globs)]


def test_a_request_id_through_each_lb_lands_in_a_file_filebeat_reads(converged_lab, filebeat_configs):
    lab = converged_lab
    assert set(filebeat_configs) == set(lab.hosts)
    for lb in ("lb1", "lb2"):
        status, headers = Api(lab, lb).chat("Say hi.")[:2]
        assert status == 200
        request_id = headers.get("X-Request-ID") or headers.get("x-request-id")
        assert request_id, f"{lb} returned no X-Request-ID"
        config = filebeat_configs[lb]
        inputs = config["filebeat.inputs"]
        assert all(i["type"] in ("filestream", "journald") for i in inputs)
        assert len({i["id"] for i in inputs}) == len(inputs)
        access = next(i for i in inputs if i["id"] == "llmfleet-lb-access")
        assert access["parsers"][0]["ndjson"]["target"] == ""
        files = _matching_files(lab, lb, access["paths"])
        assert files, f"{lb}: the access-log input {access['paths']} matches no file"
        # The record may take a moment through rsyslog (HAProxy).
        deadline = time.monotonic() + 15
        while True:
            lines = lab.ssh(lb, "sudo -n grep -h -F -- " + json.dumps(request_id) + " " + " ".join(files)).stdout.splitlines()
            if lines or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(lines) == 1, f"{lb}: request {request_id} in {len(lines)} lines of {files}"
        record = json.loads(lines[0])  # one JSON object per line: what the ndjson parser reads
        assert record["request_id"] == request_id and record["status"] == 200
        assert record["path"] == "/v1/chat/completions"
        fields = access["fields"]["llmfleet"]
        assert (fields["host"], fields["zone"], fields["log"]) == (lb, lab.load_inventory()["all"]["children"][
            "load_balancers"]["hosts"][lb]["llmfleet_zone"], "lb-access")
        assert config["output.logstash"]["hosts"] == ["logstash.lab.invalid:5044"]


def test_filebeat_journal_matches_select_the_replicas_and_sshd(converged_lab, filebeat_configs):
    lab = converged_lab
    config = filebeat_configs["model-a1"]
    journal = {i["id"]: i["include_matches.match"] for i in config["filebeat.inputs"] if i["type"] == "journald"}
    units = journal["llmfleet-model-server-journal"]
    assert units == ["_SYSTEMD_UNIT=llmfleet-llm-0.service", "_SYSTEMD_UNIT=llmfleet-llm-1.service"]
    for match in units + journal["llmfleet-auth-journal"]:
        proc = lab.ssh("model-a1", f"sudo -n journalctl --no-pager -q -o cat -n 5 {match}")
        assert proc.returncode == 0 and proc.stdout.strip(), f"{match} selects nothing in the journal"
    auth = lab.ssh("model-a1", "sudo -n journalctl --no-pager -q -o cat SYSLOG_FACILITY=4 SYSLOG_FACILITY=10")
    assert "Accepted publickey for" in auth.stdout
    # LB and infra hosts have no model-server input.
    assert not any(i["id"].startswith("llmfleet-model-server") for i in filebeat_configs["lb1"]["filebeat.inputs"])
