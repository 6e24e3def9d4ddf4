# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Prometheus scrape targets from the inventory, the LLM SLO alert rules and their unit tests.

Targets, from the fleet plan (module_utils/fleet_plan.py: ports and engines as their own roles
resolve them): node exporter wherever it runs, HAProxy's Prometheus endpoint on every HAProxy load
balancer, every model-server replica (the same replica names the load balancers use, from the
model nodes' replica plans) and the site's DCGM exporter on model nodes whose replicas have GPUs.
Each target carries its zone, so alerts and dashboards say which zone is hurting.

Alert rules and the promtool unit tests of the same rules are made from the same thresholds:
each alert gets a series just over its threshold (must fire, and only once its `for` has
passed) and one just under it (must not fire), so a wrong threshold, a wrong `for` or a wrong
label selector fails `promtool test rules`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_plan, serving, validation

REPLICA_JOB = "model_replicas"
# The HAProxy backends of the models: each is named after its model_server_name, which has no "_"
# (serving.NAME_PATTERN), while the load balancer's own sections all have one (client_rates...).
MODEL_BACKENDS = "[a-z0-9-]+"
# Step of the unit tests' series and rule evaluation: every `for` is a whole multiple of it.
TEST_STEP_SECONDS = 5
DURATION_PATTERN = re.compile(r"^([0-9]+)(s|m|h)$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}

# Latency histograms of the engines that have one (model-servers.md); llama.cpp and Ollama have none.
LATENCY_HISTOGRAMS = ("vllm:e2e_request_latency_seconds_bucket", "tgi_request_duration_bucket")

THRESHOLD_KEYS = ("replica_down_for", "for", "latency_p99_seconds", "success_rate_min", "cpu_percent",
                  "gpu_utilisation_percent")


def duration_seconds(text):
    match = DURATION_PATTERN.match(str(text))
    if not match:
        raise ValueError("%s is not a duration like 30s, 5m or 1h" % validation._describe(text))
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _duration(seconds):
    if seconds % 60 == 0:
        return "%dm" % (seconds // 60)
    return "%ds" % seconds


def thresholds_problem(thresholds):
    """'' when the alert thresholds are usable, else what is wrong (names the key)."""
    if not isinstance(thresholds, dict):
        return "%s is not a mapping" % validation._describe(thresholds)
    missing = [k for k in THRESHOLD_KEYS if k not in thresholds]
    if missing:
        return "%s not set" % ", ".join(missing)
    for key in ("replica_down_for", "for"):
        try:
            seconds = duration_seconds(thresholds[key])
        except ValueError as exc:
            return "%s: %s" % (key, exc)
        if seconds < TEST_STEP_SECONDS or seconds % TEST_STEP_SECONDS:
            return "%s: %s must be a whole multiple of %d s (the rules' unit tests step by it)" % (
                key, thresholds[key], TEST_STEP_SECONDS)
    for key, low, high in (("latency_p99_seconds", 0, None), ("success_rate_min", 0, 1),
                           ("cpu_percent", 0, 100), ("gpu_utilisation_percent", 0, 100)):
        value = thresholds[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= low \
                or (high is not None and value >= high):
            return "%s: %s must be a number above %s%s" % (
                key, validation._describe(value), low, " and below %s" % high if high is not None else "")
    return ""


# --- Targets --------------------------------------------------------------------------------

def _target(address, port):
    return "[%s]:%s" % (address, port) if ":" in address else "%s:%s" % (address, port)


# NVIDIA's DCGM exporter listens on this port inside its image.
DCGM_EXPORTER_CONTAINER_PORT = 9400


def dcgm_exporter_container(image, port, bind_address="0.0.0.0", counters=""):
    """community.docker.docker_container arguments of the DCGM exporter: every GPU (NVIDIA device
    request), SYS_ADMIN (DCGM's profiling metrics need it; NVIDIA's own run line adds it), the
    exporter's port published on the node's port, a counters file of the image when one is given."""
    args = {
        "name": "llmfleet-dcgm-exporter",
        "image": image,
        "published_ports": ["%s:%d:%d" % (bind_address, int(port), DCGM_EXPORTER_CONTAINER_PORT)],
        "capabilities": ["SYS_ADMIN"],
        "device_requests": [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}],
        "restart_policy": "unless-stopped",
        "labels": {"org.llmfleet.role": "dcgm_exporter"},
        "command": ["-f", counters] if counters else [],
    }
    return args


def alertmanager_targets(fleet):
    """host:port of every Alertmanager of the fleet (the alertmanager role's hosts), zone by zone."""
    hosts = fleet_plan.fleet_hosts(fleet)
    return [_target(hosts[h]["address"], hosts[h]["alertmanager"]["port"]) for h in fleet_plan.hosts_running(fleet, "alertmanager")]


def scrape_jobs(fleet, hostvars, dcgm_port=None):
    """Prometheus scrape_configs entries (without intervals) from the fleet plan.

    fleet: llmfleet_fleet (module_utils/fleet_plan.py: every host's address, zone, roles and service
    endpoints as their own roles resolve them); hostvars: Ansible's hostvars, for the model nodes'
    replica plans (model_server_plan, playbooks/serving_plan.yml); dcgm_port: the port of the site's
    DCGM exporter on nodes whose replicas have GPUs (None or 0: not scraped). Only hosts that run the
    role are targets (a role turned off with <role>_enabled: false is not).
    """
    hosts = fleet_plan.fleet_hosts(fleet)
    jobs = []

    def host_targets(role, port_key, wanted=lambda entry: True):
        return [{"targets": [_target(hosts[h]["address"], hosts[h][role][port_key])],
                 "labels": {"instance": h, "zone": hosts[h]["zone_label"]}}
                for h in fleet_plan.hosts_running(fleet, role) if wanted(hosts[h][role])]

    node_targets = host_targets("node_exporter", "port")
    if node_targets:
        jobs.append({"job_name": "node", "static_configs": node_targets})
    alertmanager_targets = host_targets("alertmanager", "port")
    if alertmanager_targets:
        jobs.append({"job_name": "alertmanager", "static_configs": alertmanager_targets})
    haproxy_targets = host_targets("load_balancer", "stats_port", lambda lb: lb["engine"] == "haproxy")
    if haproxy_targets:
        jobs.append({"job_name": "haproxy", "metrics_path": "/metrics", "static_configs": haproxy_targets})
    # nginx's metrics come from Debian's prometheus-nginx-exporter, on the same stats port.
    nginx_targets = host_targets("load_balancer", "stats_port", lambda lb: lb["engine"] == "nginx")
    if nginx_targets:
        jobs.append({"job_name": "nginx", "metrics_path": "/metrics", "static_configs": nginx_targets})

    serving_hosts = fleet_plan.hosts_running(fleet, "model_server")
    replica_targets = []
    for member in serving.lb_members(serving_hosts, hostvars):
        server = serving.server_plan(hostvars[member["host"]]["model_server_plan"], member["backend"])
        metrics_path = serving.ENGINES[server["engine"]]["metrics_path"]
        if metrics_path is None:
            continue  # Ollama has no Prometheus endpoint
        labels = {"instance": member["name"], "host": member["host"], "zone": hosts[member["host"]]["zone_label"],
                  "replica": str(member["index"]), "engine": server["engine"], "model": str(server["model_name"])}
        if metrics_path != "/metrics":
            labels["__metrics_path__"] = metrics_path
        replica_targets.append({"targets": [_target(member["address"], member["port"])], "labels": labels})
    if replica_targets:
        jobs.append({"job_name": REPLICA_JOB, "metrics_path": "/metrics", "static_configs": replica_targets})

    dcgm_targets = []
    for host in serving_hosts:
        plan = hostvars[host]["model_server_plan"]
        # The collection's exporter (role dcgm_exporter) where it runs, else the site's own on dcgm_port.
        port = (hosts[host].get("dcgm_exporter") or {}).get("port") or dcgm_port
        if port and any(r["gpus"] for server in serving.plan_servers(plan) for r in server["replicas"]):
            dcgm_targets.append({"targets": [_target(plan["address"], port)],
                                 "labels": {"instance": host, "zone": hosts[host]["zone_label"]}})
    if dcgm_targets:
        jobs.append({"job_name": "dcgm", "static_configs": dcgm_targets})
    return jobs


# --- Alert rules ------------------------------------------------------------------------------

def _alerts(t):
    """[(rule, test case)] for the thresholds t. A test case says how to build the series of an
    instance that must fire ("over") and of one that must not ("under"), and which labels the alert keeps."""
    latency = float(t["latency_p99_seconds"])
    error_max = 1 - float(t["success_rate_min"])
    cpu = float(t["cpu_percent"])
    gpu = float(t["gpu_utilisation_percent"])
    step = TEST_STEP_SECONDS
    return [
        ({"alert": "LLMReplicaDown",
          "expr": 'up{job="%s"} == 0' % REPLICA_JOB,
          "for": t["replica_down_for"],
          "labels": {"severity": "critical"},
          "annotations": {"summary": "Model replica {{ $labels.instance }} in {{ $labels.zone }} is down",
                          "description": "Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.engine }} serving "
                                         "{{ $labels.model }} on {{ $labels.host }}). The load balancers' health checks "
                                         "take it out of rotation; the zone runs with one replica less."}},
         {"by": None, "gauge": True, "labels": {"job": REPLICA_JOB, "host": "model-a1", "replica": "0",
                                                "engine": "vllm", "model": "m"},
          "series": lambda over: [("up", {}, "%dx{n}" % (0 if over else 1))]}),
        ({"alert": "LLMScrapeTargetDown",
          "expr": 'up{job!="%s"} == 0' % REPLICA_JOB,
          "for": t["for"],
          "labels": {"severity": "warning"},
          "annotations": {"summary": "{{ $labels.job }} target {{ $labels.instance }} in {{ $labels.zone }} is down",
                          "description": "Prometheus cannot scrape the {{ $labels.job }} exporter of "
                                         "{{ $labels.instance }}: its metrics and alerts are blind."}},
         {"by": None, "gauge": True, "labels": {"job": "node"},
          "series": lambda over: [("up", {}, "%dx{n}" % (0 if over else 1))],
          # A replica that is down is LLMReplicaDown's, not this alert's.
          "quiet": [("up", {"job": REPLICA_JOB, "instance": "model-b1-r0", "zone": "zone-b"}, "0x{n}")]}),
        ({"alert": "LLMLatencyP99High",
          "expr": "histogram_quantile(0.99, sum by (le, instance, zone, engine, model) "
                  "(rate({__name__=~\"%s\"}[5m]))) > %s" % ("|".join(LATENCY_HISTOGRAMS), _number(latency)),
          "for": t["for"],
          "labels": {"severity": "warning"},
          "annotations": {"summary": "P99 latency of {{ $labels.instance }} in {{ $labels.zone }} is above %s s"
                                     % _number(latency),
                          "description": "End-to-end request latency (engine histogram) over the last 5 minutes."}},
         # Buckets at 0.95x and 1.05x the threshold. Over: 95% of requests in the lower bucket, 5% in
         # the upper one: P99 at 1.03x (fires) while P90 is at 0.9x (a rule on the wrong quantile
         # would not fire). Under: every request in the lower bucket, P99 at 0.94x.
         {"by": ("instance", "zone", "engine", "model"), "gauge": False,
          "labels": {"job": REPLICA_JOB, "engine": "vllm", "model": "m"},
          "series": lambda over: [
              ("vllm:e2e_request_latency_seconds_bucket", {"le": _number(latency * 0.95)}, "0+%dx{n}" % (95 if over else 100)),
              ("vllm:e2e_request_latency_seconds_bucket", {"le": _number(latency * 1.05)}, "0+100x{n}"),
              ("vllm:e2e_request_latency_seconds_bucket", {"le": "+Inf"}, "0+100x{n}")]}),
        ({"alert": "LLMInferenceSuccessRateLow",
          "expr": "(1 - sum by (instance, zone, proxy) (rate(haproxy_backend_http_responses_total{proxy=~\"%s\",code=\"5xx\"}[5m]))"
                  " / sum by (instance, zone, proxy) (rate(haproxy_backend_http_responses_total{proxy=~\"%s\"}[5m]))) < %s"
                  % (MODEL_BACKENDS, MODEL_BACKENDS, _number(t["success_rate_min"])),
          "for": t["for"],
          "labels": {"severity": "critical"},
          "annotations": {"summary": "Inference success rate of model backend {{ $labels.proxy }} through {{ $labels.instance }} "
                                     "is below %s%%" % _number(float(t["success_rate_min"]) * 100),
                          "description": "Share of requests the model replicas answered without a 5xx, "
                                         "at the load balancer, over the last 5 minutes."}},
         # 1.1x and 0.9x the allowed error share.
         {"by": ("instance", "zone", "proxy"), "gauge": False, "labels": {"job": "haproxy", "proxy": serving.DEFAULT_BACKEND},
          "series": lambda over: [
              ("haproxy_backend_http_responses_total", {"code": "5xx"},
               "0+%sx{n}" % _number(1000 * error_max * (1.1 if over else 0.9))),
              ("haproxy_backend_http_responses_total", {"code": "2xx"},
               "0+%sx{n}" % _number(1000 - 1000 * error_max * (1.1 if over else 0.9)))]}),
        # Idle share of all CPU time (a ratio of rates: right from the first samples, unlike an
        # average of per-CPU rates, which rate() underestimates until the 5m window is full).
        ({"alert": "NodeCPUHigh",
          "expr": "100 * (1 - sum by (instance, zone) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))"
                  " / sum by (instance, zone) (rate(node_cpu_seconds_total[5m]))) > %s" % _number(cpu),
          "for": t["for"],
          "labels": {"severity": "warning"},
          "annotations": {"summary": "CPU of {{ $labels.instance }} in {{ $labels.zone }} is above %s%%" % _number(cpu),
                          "description": "Average busy share of all CPUs over the last 5 minutes."}},
         # Busy at the threshold +/- 1 point (half the distance to 0 or 100 where that is less).
         {"by": ("instance", "zone"), "gauge": False, "labels": {"job": "node", "cpu": "0"},
          "series": lambda over: [
              ("node_cpu_seconds_total", {"mode": mode}, "0+%sx{n}" % _number(step * share / 100))
              for busy in [cpu + min(1.0, (100 - cpu) / 2) if over else cpu - min(1.0, cpu / 2)]
              for mode, share in (("idle", 100 - busy), ("user", busy))]}),
        ({"alert": "GPUUtilisationHigh",
          "expr": "avg by (instance, zone, gpu) (DCGM_FI_DEV_GPU_UTIL) > %s" % _number(gpu),
          "for": t["for"],
          "labels": {"severity": "warning"},
          "annotations": {"summary": "GPU {{ $labels.gpu }} of {{ $labels.instance }} in {{ $labels.zone }} "
                                     "is above %s%% busy" % _number(gpu),
                          "description": "The GPU is saturated: requests queue up and latency grows. Add replicas."}},
         {"by": ("instance", "zone", "gpu"), "gauge": True, "labels": {"job": "dcgm", "gpu": "0"},
          "series": lambda over: [("DCGM_FI_DEV_GPU_UTIL", {}, "%sx{n}" % _number(
              gpu + min(1.0, (100 - gpu) / 2) if over else gpu - min(1.0, gpu / 2)))]}),
    ]


def _number(value):
    """A number as Prometheus and promtool write it: 0.5, 85, 0.99 (no float noise)."""
    text = ("%.10f" % float(value)).rstrip("0").rstrip(".")
    return text or "0"


def alert_rules(thresholds):
    """The rules file (a mapping for to_nice_yaml) of the LLM SLO alerts."""
    problem = thresholds_problem(thresholds)
    if problem:
        raise ValueError(problem)
    return {"groups": [{"name": "llmfleet-slo", "rules": [pair[0] for pair in _alerts(thresholds)]}]}


def _expand(template, labels):
    return re.sub(r"\{\{ \$labels\.([a-z_]+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def alert_rule_tests(thresholds, rule_file):
    """promtool test file for alert_rules(thresholds), reading rule_file (relative to the test file).

    Per alert: an instance over the threshold and one under it, from the first sample on. The
    alert must not fire one step before its `for` has passed, must fire once it has, and only
    for the instance over the threshold.
    """
    problem = thresholds_problem(thresholds)
    if problem:
        raise ValueError(problem)
    step = TEST_STEP_SECONDS
    tests = []
    for rule, case in _alerts(thresholds):
        hold = duration_seconds(rule["for"])
        # Counters give a rate from the second sample on; gauges match from the first.
        active_at = 0 if case["gauge"] else step
        end = active_at + hold
        samples = end // step + 1
        instances = {True: {"instance": "over-a1", "zone": "zone-a"}, False: {"instance": "under-b1", "zone": "zone-b"}}
        input_series = []
        for over, names in instances.items():
            for metric, extra, values in case["series"](over):
                labels = dict(case["labels"], **names)
                labels.update(extra)
                input_series.append({"series": _series(metric, labels), "values": values.format(n=samples)})
        for metric, labels, values in case.get("quiet", []):
            input_series.append({"series": _series(metric, labels), "values": values.format(n=samples)})
        fired = dict(case["labels"], **instances[True])
        if case["by"] is not None:
            fired = {k: v for k, v in fired.items() if k in case["by"]}
        fired.update(rule["labels"])
        expected = {"exp_labels": fired,
                    "exp_annotations": {k: _expand(v, fired) for k, v in rule["annotations"].items()}}
        tests.append({
            "name": "%s: fires for the instance over the threshold once its for (%s) has passed" % (rule["alert"], rule["for"]),
            "interval": "%ds" % step,
            "input_series": input_series,
            "alert_rule_test": [
                {"eval_time": _duration(end - step), "alertname": rule["alert"], "exp_alerts": []},
                {"eval_time": _duration(end), "alertname": rule["alert"], "exp_alerts": [expected]},
            ],
        })
    return {"rule_files": [rule_file], "evaluation_interval": "%ds" % step, "tests": tests}


def _series(metric, labels):
    return "%s{%s}" % (metric, ", ".join('%s="%s"' % (k, labels[k]) for k in sorted(labels)))
