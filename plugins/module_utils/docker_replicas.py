# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""A model server's replicas as containers, brought to their plan in one call (plugins/modules/docker_replicas.py).

community.docker's docker_container handles one container per call, so a node's replicas were
recreated one after the other (stop, remove, create, start: a round trip and a stop each) inside the
zone's window of a rolling update: a GPU node with 8 replicas was out of the pool for 8 of them. Here,
as systemd_replicas does for native units, one call compares every container llmfleet-NAME-INDEX of the
server with its plan, stops the changed and the retired ones at once (each within its own stop
timeout: the engine's drain), then creates and starts the new ones at once.

What is compared is what the engine reports (container and image inspection), not a label of ours:
containers that docker_container created for the same plan are kept as they are, and a container
changed by hand is recreated. A container's parameters are the docker_container arguments that
module_utils/serving.docker_container makes (one shape for both, and for the DCGM exporter).

The engine is spoken to through its HTTP API on a unix socket (`unix_transport`), or any callable
`request(method, path, body=None, timeout=None) -> (status, payload)` (the unit tests' fake engine):
no Docker SDK needed on the node, and no SDK/requests version pairs to match (docker-py 5 fails with
requests >= 2.32, docker/docker-py#3256).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import socket
import threading

try:
    from http.client import HTTPConnection, HTTPException
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not a target (meta/runtime.yml), kept importable for sanity
    from httplib import HTTPConnection, HTTPException  # type: ignore
    from urllib import quote  # type: ignore

PREFIX = "llmfleet-"
# The engine's default shm size (docker run --shm-size): what a container has when none is asked for.
DEFAULT_SHM = 64 * 1024 * 1024
# Seconds an engine call may take beyond a stop's own timeout.
MARGIN = 60


class EngineError(Exception):
    """The engine refused a call, or could not be reached."""


# -- sizes and durations, as docker_container reads them ---------------------------------------------

SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.IGNORECASE)
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$")
DURATION_NS = {"ns": 1, "us": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}


def size_bytes(value, what):
    """Bytes of a size such as 8g, 512M or 1073741824 (binary units, as the Docker CLI reads them)."""
    match = SIZE.match(str(value).strip())
    if not match:
        raise ValueError("%s: %r is not a size such as 8g or 512m" % (what, value))
    power = " kmgtp".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1024 ** power)


def duration_ns(value, what):
    """Nanoseconds of a duration such as 10s, 500ms or 2m (a plain number is seconds)."""
    text = str(value).strip()
    if re.match(r"^\d+$", text):
        return int(text) * 10 ** 9
    match = DURATION.match(text)
    if not match:
        raise ValueError("%s: %r is not a duration such as 10s or 2m" % (what, value))
    return int(float(match.group(1)) * DURATION_NS[match.group(2)])


# -- the plan, as the engine's create call and as what inspection must show ---------------------------

def _ports(published, what):
    exposed, bindings = {}, {}
    for entry in published:
        parts = str(entry).rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].split("/")[0].isdigit():
            raise ValueError("%s: published port %r is not ADDRESS:HOST_PORT:CONTAINER_PORT" % (what, entry))
        address, host_port, container_port = parts
        key = container_port if "/" in container_port else container_port + "/tcp"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": address.strip("[]"), "HostPort": host_port})
    return exposed, bindings


def create_body(container):
    """The engine's create call (POST /containers/create) for one container: `container` holds the
    docker_container arguments serving.docker_container makes (name, image, command, env,
    published_ports, volumes, restart_policy, stop_timeout, healthcheck, labels; device_requests,
    ipc_mode, shm_size, memory, cpus when set)."""
    what = container["name"]
    exposed, bindings = _ports(container.get("published_ports") or [], what)
    host = {
        "Binds": list(container.get("volumes") or []),
        "PortBindings": bindings,
        "RestartPolicy": {"Name": container.get("restart_policy") or "no", "MaximumRetryCount": 0},
    }
    for request in container.get("device_requests") or []:
        host.setdefault("DeviceRequests", []).append({
            "Driver": request.get("driver") or "", "Count": int(request.get("count") or 0),
            "DeviceIDs": [str(i) for i in request.get("device_ids") or []],
            "Capabilities": [list(c) for c in request.get("capabilities") or []],
            "Options": dict(request.get("options") or {})})
    if container.get("ipc_mode"):
        host["IpcMode"] = container["ipc_mode"]
    if container.get("shm_size"):
        host["ShmSize"] = size_bytes(container["shm_size"], what + ": shm_size")
    if container.get("memory"):
        host["Memory"] = size_bytes(container["memory"], what + ": memory")
    if container.get("cpus"):
        host["NanoCpus"] = int(round(float(container["cpus"]) * 10 ** 9))
    body = {
        "Image": container["image"],
        "Cmd": [str(arg) for arg in container.get("command") or []],
        "Env": ["%s=%s" % (k, v) for k, v in sorted((container.get("env") or {}).items())],
        "Labels": {str(k): str(v) for k, v in (container.get("labels") or {}).items()},
        "ExposedPorts": exposed,
        "HostConfig": host,
    }
    if container.get("stop_timeout") is not None:
        body["StopTimeout"] = int(container["stop_timeout"])
    check = container.get("healthcheck")
    if check:
        body["Healthcheck"] = {
            "Test": list(check["test"]),
            "Interval": duration_ns(check.get("interval", "30s"), what + ": healthcheck interval"),
            "Timeout": duration_ns(check.get("timeout", "30s"), what + ": healthcheck timeout"),
            "Retries": int(check.get("retries", 3)),
            "StartPeriod": duration_ns(check.get("start_period", "0s"), what + ": healthcheck start_period"),
        }
    return body


def _devices(requests):
    return sorted((r.get("Driver") or "", r.get("Count") or 0, tuple(r.get("DeviceIDs") or ()),
                   tuple(tuple(c) for c in r.get("Capabilities") or ())) for r in requests or [])


def _extra_ok(actual, wanted, inherited):
    """A container's list (Env) or map (Labels) is the plan's when it holds every planned entry, and
    its other entries are the image's (the engine adds those)."""
    return wanted <= actual and actual - wanted <= inherited


def differences(body, inspected, image_id, image_config):
    """What of the planned container (create_body) the inspected one does not have, by name ([] when
    none). image_id: the Id of the image the plan names on the node (None when the node lacks it);
    image_config: that image's Config (its Env and Labels are the container's too)."""
    config = inspected.get("Config") or {}
    host = inspected.get("HostConfig") or {}
    want_host = body["HostConfig"]
    found = []
    if image_id is None or inspected.get("Image") != image_id:
        found.append("image")
    if list(config.get("Cmd") or []) != body["Cmd"]:
        found.append("command")
    env, labels = set(config.get("Env") or []), set((config.get("Labels") or {}).items())
    # An image the node lacks (check mode pulls nothing): which entries are its own is not known.
    inherited_env = env if image_config is None else set(image_config.get("Env") or [])
    inherited_labels = labels if image_config is None else set((image_config.get("Labels") or {}).items())
    if not _extra_ok(env, set(body["Env"]), inherited_env):
        found.append("env")
    if not _extra_ok(labels, set(body["Labels"].items()), inherited_labels):
        found.append("labels")
    if (host.get("PortBindings") or {}) != want_host["PortBindings"]:
        found.append("published_ports")
    if list(host.get("Binds") or []) != want_host["Binds"]:
        found.append("volumes")
    if ((host.get("RestartPolicy") or {}).get("Name") or "no") != want_host["RestartPolicy"]["Name"]:
        found.append("restart_policy")
    if config.get("StopTimeout") != body.get("StopTimeout"):
        found.append("stop_timeout")
    want_check, check = body.get("Healthcheck"), config.get("Healthcheck") or None
    if want_check != ({k: check.get(k) for k in want_check} if want_check and check else check):
        found.append("healthcheck")
    if _devices(host.get("DeviceRequests")) != _devices(want_host.get("DeviceRequests")):
        found.append("device_requests")
    if (host.get("IpcMode") == "host") != (want_host.get("IpcMode") == "host"):
        found.append("ipc_mode")
    # Not asked for: the engine's default (a daemon's default-shm-size is left alone).
    if "ShmSize" in want_host and host.get("ShmSize") != want_host["ShmSize"]:
        found.append("shm_size")
    if (host.get("Memory") or 0) != want_host.get("Memory", 0):
        found.append("memory")
    if (host.get("NanoCpus") or 0) != want_host.get("NanoCpus", 0):
        found.append("cpus")
    return found


# -- the engine --------------------------------------------------------------------------------------

class _UnixConnection(HTTPConnection):
    def __init__(self, path, timeout):
        HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self._socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


def unix_transport(path):
    """request(method, path, body=None, timeout=None) -> (status, payload) over the engine's unix
    socket: a connection per call (calls run in threads), JSON in and out."""
    def request(method, url, body=None, timeout=None):
        connection = _UnixConnection(path, timeout or MARGIN)
        try:
            data = json.dumps(body).encode("utf-8") if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            connection.request(method, url, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, socket.error, HTTPException) as exc:
            raise EngineError("the Docker engine at %s did not answer %s %s: %s" % (path, method, url, exc))
        finally:
            connection.close()
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        return response.status, payload
    return request


class Engine(object):
    """The calls this module makes, over a transport (unix_transport, or a fake one)."""

    def __init__(self, request):
        self._request = request

    def _call(self, method, url, body=None, timeout=None, ok=(200, 201, 204, 304), missing_ok=False):
        status, payload = self._request(method, url, body=body, timeout=timeout)
        if status == 404 and missing_ok:
            return None
        if status not in ok:
            message = payload.get("message") if isinstance(payload, dict) else payload
            raise EngineError("%s %s: %s %s" % (method, url.split("?")[0], status, message))
        return payload

    def containers(self, server):
        """{index: inspected container} of the server's containers (exact names llmfleet-SERVER-INDEX:
        the server llm does not take llm-2's llmfleet-llm-2-0)."""
        pattern = re.compile("^/?" + re.escape(PREFIX + server) + r"-(\d+)$")
        filters = quote(json.dumps({"name": ["^/?" + re.escape(PREFIX + server) + "-"]}))
        found = {}
        for summary in self._call("GET", "/containers/json?all=true&filters=" + filters) or []:
            for name in summary.get("Names") or []:
                match = pattern.match(name)
                if match:
                    inspected = self._call("GET", "/containers/%s/json" % summary["Id"], missing_ok=True)
                    if inspected is not None:
                        found[int(match.group(1))] = inspected
        return found

    def image(self, reference):
        """The image's inspection on the node, or None when the node lacks it."""
        return self._call("GET", "/images/%s/json" % quote(reference, safe="/:@"), missing_ok=True)

    def remove(self, inspected):
        """Stop (SIGTERM, SIGKILL after the container's own stop timeout) and remove."""
        ident = inspected["Id"]
        wait = (inspected.get("Config") or {}).get("StopTimeout")
        wait = 10 if wait is None else int(wait)
        self._call("POST", "/containers/%s/stop" % ident, timeout=wait + MARGIN, missing_ok=True)
        self._call("DELETE", "/containers/%s" % ident, missing_ok=True)

    def create(self, name, body):
        return self._call("POST", "/containers/create?name=" + quote(name), body=body)["Id"]

    def start(self, ident):
        self._call("POST", "/containers/%s/start" % ident)


def _all_at_once(jobs):
    """Run (name, function) jobs in threads at once; [(name, error message)] of those that failed."""
    errors = []
    lock = threading.Lock()

    def run(name, job):
        try:
            job()
        # Whatever it is: an exception left in a thread would vanish with it, and the call report success.
        except Exception as exc:  # pylint: disable=broad-except
            with lock:
                errors.append((name, str(exc)))

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(errors)


def reconcile(engine, server, containers, check_mode=False):
    """Bring the server's containers to `containers` (docker_container arguments, each with "name"
    llmfleet-SERVER-INDEX; [] retires them all): reconcile_servers for one server."""
    return reconcile_servers(engine, [(server, containers)], check_mode=check_mode)


def planned_containers(servers):
    """{server: {index: (name, create body)}} of [(server, containers)]; ValueError for a server given
    twice or a container not named llmfleet-SERVER-INDEX. The module asks it before it changes anything
    (the native units it retires first included)."""
    names = [server for server, _containers in servers]
    if len(set(names)) != len(names):
        raise ValueError("a server is given twice: %s" % ", ".join(sorted(n for n in set(names) if names.count(n) > 1)))
    plans = {}
    for server, containers in servers:
        pattern = re.compile("^" + re.escape(PREFIX + server) + r"-(\d+)$")
        planned = plans[server] = {}
        for container in containers:
            match = pattern.match(str(container.get("name", "")))
            if not match:
                raise ValueError("container %r: a replica of %s is named %s%s-INDEX" % (
                    container.get("name"), server, PREFIX, server))
            planned[int(match.group(1))] = (container["name"], create_body(container))
    return plans


def _plan_server(engine, server, planned, images, result):
    """What one server's containers need: (down, up, start) lists, its names added to result."""
    existing = engine.containers(server)
    for _name, body in planned.values():
        if body["Image"] not in images:
            images[body["Image"]] = engine.image(body["Image"])
    down, up, start = [], [], []
    for index in sorted(set(existing) - set(planned)):
        result["removed"].append(PREFIX + "%s-%d" % (server, index))
        down.append(existing[index])
    for index in sorted(planned):
        name, body = planned[index]
        image = images[body["Image"]]
        if index not in existing:
            result["created"].append(name)
            up.append((name, body))
            continue
        inspected = existing[index]
        found = differences(body, inspected, image and image.get("Id"), image and image.get("Config"))
        if found:
            result["recreated"].append(name)
            result["differences"][name] = found
            down.append(inspected)
            up.append((name, body))
        elif not (inspected.get("State") or {}).get("Running"):
            result["started"].append(name)
            start.append((name, inspected["Id"]))
        else:
            result["unchanged"].append(name)
    return down, up, start


def reconcile_servers(engine, servers, check_mode=False):
    """Bring each server's containers to its plan: servers is [(server, containers)], containers as
    docker_container arguments, each with "name" llmfleet-SERVER-INDEX ([] retires them all).

    Every server's changed and retired containers are stopped at once, then every new one started at
    once: a node serving several models restarts them together (one after the other, a rolling update's
    zone was out of the pool for each server's stops and starts in turn, and a round trip each).
    Returns {"changed", "created", "recreated", "started", "removed", "unchanged", "differences"}
    (container names, unique across servers; differences: {name: [what differs]}). Raises EngineError
    naming each container that failed (the others went on: a replica that could be brought up is not
    left down for another's fault). Nothing changes when a server's plan is refused (ValueError) or an
    image is missing."""
    plans = planned_containers(servers)
    result = {"created": [], "recreated": [], "started": [], "removed": [], "unchanged": [], "differences": {}}
    images, down, up, start = {}, [], [], []
    for server, _containers in servers:
        server_down, server_up, server_start = _plan_server(engine, server, plans[server], images, result)
        down += server_down
        up += server_up
        start += server_start
    result["changed"] = bool(down or up or start)
    if check_mode or not result["changed"]:
        return result
    missing = sorted({body["Image"] for _name, body in up if images[body["Image"]] is None})
    if missing:
        raise EngineError("the node lacks the image %s (it is pulled before the replicas run)" % ", ".join(missing))
    # Every old container is gone before a new one starts: a retired replica may hold a port a new one
    # is planned on (a base port moved, or another server's).
    # One that could not be removed is not recreated (its name is taken); the others still come up, so
    # that a replica already stopped is not left down for another's fault.
    errors = _all_at_once([(c["Name"].lstrip("/"), (lambda c=c: engine.remove(c))) for c in down])
    stuck = {name for name, _error in errors}
    errors += _all_at_once([(name, (lambda name=name, body=body: engine.start(engine.create(name, body))))
                            for name, body in up if name not in stuck]
                           + [(name, (lambda ident=ident: engine.start(ident))) for name, ident in start])
    if errors:
        raise EngineError("; ".join("%s: %s" % e for e in errors))
    return result


def retire(path, server, check_mode=False, transport=unix_transport):
    """Every container of `server` stopped (each within its own stop timeout) and removed: an earlier
    runtime's replicas, before native ones take their ports, or a retired server's. Their names; none on
    a node without the engine's socket (it never ran containers)."""
    if not os.path.exists(path):
        return []
    return reconcile(Engine(transport(path)), server, [], check_mode=check_mode)["removed"]
