"""An in-memory Docker engine for the unit tests of docker_replicas: the API calls the module makes,
answered as Docker 20.10+ answers them (inspection merges the image's Env and Labels into the
container's, fills the engine's defaults; a port two running containers want is refused; a running
container cannot be removed), with every call logged. `serve_unix` puts it behind a real unix socket."""

import json
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

IMAGE_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LLAMA_ARG_HOST=0.0.0.0"]
IMAGE_LABELS = {"org.opencontainers.image.version": "24.04"}


class FakeDocker:
    def __init__(self, images=None):
        # reference -> image inspection
        self.images = images if images is not None else {}
        self.containers = {}
        self.calls = []
        self.lock = threading.RLock()
        self.next_id = 0
        self.hooks = {}   # (method, kind) -> callable(container) run before the call is answered

    def add_image(self, reference, ident, env=None, labels=None):
        config = {"Env": list(IMAGE_ENV if env is None else env),
                  "Labels": dict(IMAGE_LABELS if labels is None else labels)}
        self.images[reference] = {"Id": ident, "Config": config}

    def _by_ref(self, ref):
        for container in self.containers.values():
            if container["Id"] == ref or container["Name"] == "/" + ref:
                return container
        return None

    def create(self, name, body):
        """A container as the engine inspects it once created from `body`."""
        image = self.images[body["Image"]]
        env = {}
        for entry in list(image["Config"]["Env"]) + list(body.get("Env") or []):
            key = entry.split("=", 1)[0]
            env[key] = entry
        host = dict(body.get("HostConfig") or {})
        self.next_id += 1
        ident = "%064x" % self.next_id
        container = {
            "Id": ident, "Name": "/" + name, "Image": image["Id"],
            "Config": {"Image": body["Image"], "Cmd": body.get("Cmd"), "Env": list(env.values()),
                       "Labels": dict(image["Config"]["Labels"], **(body.get("Labels") or {})),
                       "ExposedPorts": body.get("ExposedPorts"), "Healthcheck": body.get("Healthcheck"),
                       "StopTimeout": body.get("StopTimeout")},
            "HostConfig": {"Binds": host.get("Binds"), "PortBindings": host.get("PortBindings") or {},
                           "RestartPolicy": host.get("RestartPolicy") or {"Name": "", "MaximumRetryCount": 0},
                           "DeviceRequests": host.get("DeviceRequests"), "IpcMode": host.get("IpcMode") or "private",
                           "ShmSize": host.get("ShmSize") or 67108864, "Memory": host.get("Memory") or 0,
                           "NanoCpus": host.get("NanoCpus") or 0},
            "State": {"Running": False, "Status": "created"},
        }
        self.containers[ident] = container
        return container

    def _ports_taken(self, container):
        wanted = {b["HostPort"] for bindings in container["HostConfig"]["PortBindings"].values() for b in bindings}
        for other in self.containers.values():
            if other is not container and other["State"]["Running"]:
                held = {b["HostPort"] for bindings in other["HostConfig"]["PortBindings"].values() for b in bindings}
                if wanted & held:
                    return sorted(wanted & held)[0]
        return None

    def request(self, method, url, body=None, timeout=None):
        parts = urlsplit(url)
        path, query = unquote(parts.path), parse_qs(parts.query)
        with self.lock:
            self.calls.append((method, path, threading.current_thread().name))
        hook = None
        match = re.match(r"^/containers/([^/]+)/(stop|start|json)$", path) or re.match(r"^/containers/([^/]+)$", path)
        if match:
            kind = match.group(2) if match.lastindex == 2 else "delete"
            hook = self.hooks.get((method, kind))
            if hook:
                hook(match.group(1))
        with self.lock:
            if method == "GET" and path == "/containers/json":
                names = json.loads(query["filters"][0]).get("name", [])
                return 200, [{"Id": c["Id"], "Names": [c["Name"]]} for c in self.containers.values()
                             if all(re.search(n, c["Name"]) for n in names)]
            match = re.match(r"^/images/(.+)/json$", path)
            if method == "GET" and match:
                image = self.images.get(match.group(1))
                return (200, image) if image else (404, {"message": "No such image: " + match.group(1)})
            if method == "POST" and path == "/containers/create":
                name = query["name"][0]
                if self._by_ref(name):
                    return 409, {"message": 'Conflict. The container name "/%s" is already in use' % name}
                if body["Image"] not in self.images:
                    return 404, {"message": "No such image: " + body["Image"]}
                return 201, {"Id": self.create(name, body)["Id"], "Warnings": []}
            match = re.match(r"^/containers/([^/]+)(?:/(json|stop|start))?$", path)
            container = self._by_ref(match.group(1)) if match else None
            if container is None:
                return 404, {"message": "No such container: %s" % (match.group(1) if match else path)}
            action = match.group(2)
            if method == "GET" and action == "json":
                return 200, json.loads(json.dumps(container))
            if method == "POST" and action == "stop":
                if not container["State"]["Running"]:
                    return 304, None
                container["State"] = {"Running": False, "Status": "exited"}
                return 204, None
            if method == "POST" and action == "start":
                if container["State"]["Running"]:
                    return 304, None
                taken = self._ports_taken(container)
                if taken:
                    return 500, {"message": "driver failed programming external connectivity: Bind for 0.0.0.0:%s "
                                            "failed: port is already allocated" % taken}
                container["State"] = {"Running": True, "Status": "running"}
                return 204, None
            if method == "DELETE" and action is None:
                if container["State"]["Running"]:
                    return 409, {"message": "You cannot remove a running container %s. Stop the container before "
                                            "attempting removal or force remove" % container["Id"]}
                del self.containers[container["Id"]]
                return 204, None
        return 404, {"message": "page not found"}

    def mutations(self):
        return [(m, p) for m, p, _t in self.calls if m != "GET"]


def serve_unix(engine, path):
    """The engine behind a real HTTP server on the unix socket `path` (shut it down when done)."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def address_string(self):
            return "unix"

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = engine.request(self.command, self.path, body=body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    server = Server(path, Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
