#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: health_gate
short_description: Wait until a model-server replica really serves (readiness and a real completion)
version_added: 0.1.0
description:
  - Probes one replica until it passes I(consecutive) checks in a row. A check is the readiness
    endpoint (expected status, optionally a JMESPath expression on its JSON body) and, with
    I(completion), an OpenAI-style chat completion that must return a non-empty answer within
    I(completion.latency_budget) seconds.
  - Connection refused and HTTP 503 count as "loading" (engines refuse connections or answer 503
    while the model loads) and have their own I(loading_timeout); once the replica answered
    otherwise, it has I(timeout) seconds to pass. A connection reset before any answer is "loading"
    too (Docker's userland proxy holds a container's published port and resets connections while
    the engine inside does not listen yet).
  - With I(watch), a replica whose process is restarted during the gate (a release that crashes at
    start, restarted by its unit's or container's restart policy) fails at once instead of looking
    like one that is still loading.
  - Fails with the report of every attempt when the replica does not pass. Reads only, so it runs
    the same in check mode.
options:
  url:
    description:
      - Base URL of the replica, for example C(http://10.0.1.11:8000).
      - One of I(url) and I(urls) is required.
    type: str
  urls:
    description:
      - Base URLs of several replicas (a node's), gated at the same time, one thread each, with the
        same options. The gate passes when every replica passes; each one's report is in I(replicas).
    type: list
    elements: str
  watch:
    description:
      - The replica's process, one per URL in the same order - C(systemd:UNIT) or C(docker:CONTAINER).
        Its restart count (the unit's C(NRestarts), the container's C(RestartCount)) is read after
        every check that does not pass; when it rises, the replica fails at once.
    type: list
    elements: str
    default: []
  health_path:
    description: Readiness path (the engine's, see module_utils/serving.py).
    type: str
    default: /health
  health_paths:
    description:
      - Readiness path of each URL, in the order of I(urls) (a node whose servers run different engines);
        replaces I(health_path).
    type: list
    elements: str
    default: []
  models:
    description:
      - The completion's model for each URL, in the order of I(urls) (a node that serves several models);
        replaces the I(completion)'s I(model), which may then be left out.
    type: list
    elements: str
    default: []
  expect_status:
    description: Status the readiness endpoint must answer.
    type: int
    default: 200
  json_query:
    description: JMESPath expression on the readiness answer's JSON body that must be truthy (or equal I(json_expect)).
    type: str
  json_expect:
    description: Value I(json_query) must equal.
    type: raw
  completion:
    description: A real chat completion each check sends (omit to check readiness only).
    type: dict
    suboptions:
      model:
        description: Model name (required unless I(models) gives one per URL).
        type: str
      prompt:
        description: User message.
        type: str
        default: Reply with the word ready.
      max_tokens:
        description: Tokens to generate.
        type: int
        default: 4
      path:
        description: Completion path.
        type: str
        default: /v1/chat/completions
      latency_budget:
        description:
          - Seconds the completion may take; 0 for no budget.
          - With a budget, a completion still running after both its budget and the end of the gate's
            I(timeout) window is cut there (it can no longer change the verdict, only delay it); a
            slow release fails when its window ends, not after its slowest answer.
        type: float
        default: 0
  headers:
    description: Extra request headers (for example C(Authorization)).
    type: dict
    default: {}
  consecutive:
    description: Passing checks needed in a row.
    type: int
    default: 3
  interval:
    description:
      - Seconds from the start of one check to the start of the next once the replica answers, so that I(consecutive)
        passes span I(consecutive) - 1 intervals whatever a completion takes; a check that takes longer is followed
        at once.
    type: float
    default: 1.0
  loading_interval:
    description:
      - Seconds between checks while the replica is still loading (refused, reset, 503), at most
        I(interval). A replica that loads in under a second is seen when it is ready, not at the next
        whole I(interval); its restart count (I(watch)) is still read at most once per I(interval).
    type: float
    default: 0.25
  timeout:
    description: Seconds to pass, from the start of the first check that found the replica loaded.
    type: float
    default: 60
  loading_timeout:
    description: Seconds the replica may spend loading (refusing connections or answering 503).
    type: float
    default: 600
  request_timeout:
    description: Seconds one HTTP request may take.
    type: float
    default: 30
  validate_certs:
    description: Verify TLS certificates (https URLs).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Probes in check mode too; it changes nothing either way.
  diff_mode:
    support: none
    description: Not supported.
requirements: [jmespath (only with json_query)]
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Gate a replica after its update
  llmfleet.cluster.health_gate:
    url: "http://{{ llmfleet_address | default(ansible_host) }}:8000"
    health_path: /health
    json_query: status
    json_expect: ok
    completion:
      model: smollm2
      latency_budget: 2
    consecutive: 3
    loading_timeout: 900
  delegate_to: localhost
  register: gate

- name: Gate a node's replicas at once, on the node itself
  llmfleet.cluster.health_gate:
    urls:
      - http://127.0.0.1:8000
      - http://127.0.0.1:8001
    # A replica that crashes and is restarted by its unit fails at once, not at loading_timeout.
    watch:
      - systemd:llmfleet-llm-0.service
      - systemd:llmfleet-llm-1.service
    completion:
      model: smollm2
    consecutive: 2

- name: Gate the replicas of two models of one node at once
  llmfleet.cluster.health_gate:
    urls: [http://127.0.0.1:8000, http://127.0.0.1:8100]
    models: [smollm2, gemma3-270m]
    completion: {}
"""

RETURN = r"""
passed:
  description: Whether the replica (with I(urls), every replica) passed.
  returned: always
  type: bool
attempts:
  description: Every check, with its time from the start (at), state (ok, loading, failed), reason and latencies.
  returned: with I(url)
  type: list
  elements: dict
reason:
  description: Why the replica did not pass; empty when it passed.
  returned: with I(url)
  type: str
loading_seconds:
  description: Seconds until the replica stopped loading.
  returned: with I(url)
  type: float
seconds:
  description: Seconds the gate took (with I(urls), the slowest replica's).
  returned: always
  type: float
replicas:
  description:
    - With I(urls), one report per URL in their order, each with url, passed, reason, attempts,
      loading_seconds and seconds.
  returned: with I(urls)
  type: list
  elements: dict
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.llmfleet.cluster.plugins.module_utils import health_gate

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:
    HAS_JMESPATH = False


def fetch(url, data, headers, timeout, validate_certs):
    started = time.monotonic()
    try:
        resp = open_url(url, data=data, headers=headers, method="POST" if data else "GET", timeout=timeout,
                        validate_certs=validate_certs)
        return health_gate.Response(resp.getcode(), resp.read(), seconds=time.monotonic() - started)
    except HTTPError as exc:
        return health_gate.Response(exc.code, exc.read(), seconds=time.monotonic() - started)
    except URLError as exc:
        if isinstance(exc.reason, NO_ANSWER):
            return _no_answer(started)
        if isinstance(exc.reason, ConnectionRefusedError):
            return health_gate.Response(None, refused=True, seconds=time.monotonic() - started)
        return health_gate.Response(None, error="%s" % exc.reason, seconds=time.monotonic() - started)
    except NO_ANSWER:  # http.client.RemoteDisconnected is a reset: closed without a status line
        return _no_answer(started)
    except (OSError, ValueError) as exc:  # timeouts, malformed answers
        return health_gate.Response(None, error="%s: %s" % (type(exc).__name__, exc), seconds=time.monotonic() - started)


# The connection was taken and dropped before any answer: reset by the peer, or reset while the request
# was still being written.
NO_ANSWER = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def _no_answer(started):
    # Docker's userland proxy accepts on a container's published port and resets the connection while
    # nothing listens inside: the replica is not up yet, as with a refused connection.
    return health_gate.Response(None, error="connection reset before an answer (nothing listening behind the port)",
                                refused=True, seconds=time.monotonic() - started)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str"),
            urls=dict(type="list", elements="str"),
            watch=dict(type="list", elements="str", default=[]),
            health_path=dict(type="str", default="/health"),
            health_paths=dict(type="list", elements="str", default=[]),
            models=dict(type="list", elements="str", default=[]),
            expect_status=dict(type="int", default=200),
            json_query=dict(type="str"),
            json_expect=dict(type="raw"),
            completion=dict(type="dict", options=dict(
                model=dict(type="str"),
                prompt=dict(type="str", default="Reply with the word ready."),
                max_tokens=dict(type="int", default=4, no_log=False),
                path=dict(type="str", default="/v1/chat/completions"),
                latency_budget=dict(type="float", default=0),
            )),
            headers=dict(type="dict", default={}),
            consecutive=dict(type="int", default=3),
            interval=dict(type="float", default=1.0),
            loading_interval=dict(type="float", default=0.25),
            timeout=dict(type="float", default=60),
            loading_timeout=dict(type="float", default=600),
            request_timeout=dict(type="float", default=30),
            validate_certs=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("url", "urls")],
        required_one_of=[("url", "urls")],
        supports_check_mode=True,
    )
    p = module.params
    urls = [p["url"]] if p["url"] is not None else p["urls"]
    if not urls:
        module.fail_json(msg="urls: give at least one URL")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            module.fail_json(msg="%s: %r is not an http:// or https:// URL" % ("url" if p["url"] else "urls", url))
    watched = []
    for text in p["watch"]:
        try:
            watched.append(health_gate.parse_watch(text))
        except ValueError as exc:
            module.fail_json(msg="watch: %s" % exc)
    if watched and len(watched) != len(urls):
        module.fail_json(msg="watch: %d given for %d URLs: one per URL, in the same order" % (len(watched), len(urls)))
    for name in ("consecutive", "interval", "loading_interval", "timeout", "loading_timeout", "request_timeout"):
        if p[name] is None or p[name] <= 0:
            module.fail_json(msg="%s: must be greater than 0, got %r" % (name, p[name]))
    if p["json_query"] and not HAS_JMESPATH:
        module.fail_json(msg="json_query needs the Python library jmespath where this module runs")
    for name in ("models", "health_paths"):
        if p[name] and len(p[name]) != len(urls):
            module.fail_json(msg="%s: %d given for %d URLs: one per URL, in the same order" % (name, len(p[name]), len(urls)))
    headers = dict(p["headers"], **{"Content-Type": "application/json"})
    completion = p["completion"]
    if completion and not completion.get("model") and not p["models"]:
        module.fail_json(msg="completion: model: give the model (or models, one per URL)")
    models = dict(zip(urls, p["models"])) if p["models"] else {}
    paths = dict(zip(urls, p["health_paths"])) if p["health_paths"] else {}

    def body(url):
        if not completion:
            return None
        return json.dumps({"model": models.get(url) or completion["model"], "max_tokens": completion["max_tokens"],
                           "messages": [{"role": "user", "content": completion["prompt"]}]}).encode()

    def probe(url, window_end):
        base = url.rstrip("/")
        resp = fetch(base + paths.get(url, p["health_path"]), None, headers, p["request_timeout"], p["validate_certs"])
        state, reason = health_gate.check_response(resp, p["expect_status"], p["json_query"], p["json_expect"],
                                                   jmespath.search if HAS_JMESPATH else None)
        details = {"health_status": resp.status, "health_ms": round(resp.seconds * 1000, 1)}
        if state != "ok" or not completion:
            return state, reason, details
        cut = health_gate.completion_timeout(p["request_timeout"], completion["latency_budget"],
                                             window_end - time.monotonic())
        answer = fetch(base + completion["path"], body(url), headers, cut, p["validate_certs"])
        state, reason = health_gate.check_completion(answer, completion["latency_budget"])
        details.update(completion_status=answer.status, completion_ms=round(answer.seconds * 1000, 1))
        return state, reason, details

    def restarts(process):
        if process is None:
            return None
        kind, name = process
        return lambda: health_gate.restart_count(module.run_command, kind, name)

    def gate(url, process=None):
        return lambda: health_gate.run_gate(lambda window_end: probe(url, window_end), time.monotonic, time.sleep, p["consecutive"],
                                            p["interval"], p["timeout"], p["loading_timeout"], restarts(process),
                                            p["loading_interval"])

    bases = [url.rstrip("/") for url in urls]
    processes = watched or [None] * len(bases)
    if p["url"] is not None:
        report = gate(urls[0], processes[0])()
        if not report["passed"]:
            module.fail_json(msg="%s: %s" % (bases[0], report["reason"]), changed=False, **report)
        module.exit_json(changed=False, **report)
    replicas = [dict(report, url=base) for base, report in
                zip(bases, health_gate.run_gates([gate(u, w) for u, w in zip(urls, processes)]))]
    result = dict(changed=False, passed=all(r["passed"] for r in replicas), replicas=replicas,
                  seconds=max(r["seconds"] for r in replicas))
    if not result["passed"]:
        module.fail_json(msg="; ".join("%s: %s" % (r["url"], r["reason"]) for r in replicas if not r["passed"]),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
