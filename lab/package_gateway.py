"""The lab's package gateway: the only way lab hosts reach packages, as at an air-gapped site.

One HTTP server on the lab network's gateway address, with three faces:

* an apt **proxy** (``Acquire::http::Proxy "http://GW:3142"``): absolute-URI requests, only for
  the upstream hosts in --allow (everything else gets 403);
* an apt **mirror** (``http://GW:3142/debian``, ``http://GW:3142/debian-security``);
* an **artifact source** (``http://GW:3142/artifacts/...``): a local directory (wheels, tarballs).

Upstream files are cached on disk. Index files (dists/.../InRelease, Release, Packages...) are
re-fetched when older than --fresh seconds; everything else (.deb, by-hash files) is immutable.
One lock per file: many hosts asking for the same file at once cause one upstream fetch.

Why not apt-cacher-ng: when several hosts refreshed the same InRelease within one second,
apt-cacher-ng 3.7.4 failed to rename it ("Failure to move file ... File exists") and left the
apt clients hanging (seen here with 9 hosts).
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import shutil
import socketserver
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

VOLATILE = re.compile(r"/dists/(?!.*/by-hash/)")
CHUNK = 1 << 16


class Gateway:
    def __init__(self, cache: Path, artifacts: Path, mirrors: dict[str, str], allow: set[str], fresh: float):
        self.cache = cache
        self.artifacts = artifacts
        self.mirrors = mirrors
        self.allow = allow
        self.fresh = fresh
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Direct connections only: this machine's own environment decides how it reaches upstream.
        self.opener = urllib.request.build_opener()

    def lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def upstream_url(self, request_target: str) -> str | None:
        """The upstream URL for a request, or None when the gateway must refuse it."""
        if request_target.startswith("http://"):
            parts = urllib.parse.urlsplit(request_target)
            return request_target if parts.hostname in self.allow else None
        for prefix, base in self.mirrors.items():
            if request_target == prefix or request_target.startswith(prefix + "/"):
                return base + request_target[len(prefix):]
        return None

    def cached(self, url: str) -> tuple[int, Path | None]:
        """Return (status, path of the cached file) for an upstream URL, fetching when needed."""
        parts = urllib.parse.urlsplit(url)
        rel = os.path.normpath(parts.path).lstrip("/")
        if rel.startswith("..") or parts.query:
            return 400, None
        path = self.cache / (parts.hostname or "_") / rel
        volatile = bool(VOLATILE.search(parts.path))
        with self.lock_for(str(path)):
            if path.is_file() and (not volatile or time.time() - path.stat().st_mtime < self.fresh):
                return 200, path
            try:
                with self.opener.open(url, timeout=60) as resp:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                        shutil.copyfileobj(resp, tmp, CHUNK)
                    os.replace(tmp.name, path)
                return 200, path
            except urllib.error.HTTPError as exc:
                return exc.code, None
            except OSError:
                # Upstream unreachable: serve a stale index rather than nothing.
                return (200, path) if path.is_file() else (502, None)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "llmfleet-lab-gateway/1"
    protocol_version = "HTTP/1.1"
    gateway: Gateway

    def log_message(self, fmt, *args):  # one line per request, to the log file
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_HEAD(self):
        self.handle_get(send_body=False)

    def do_GET(self):
        self.handle_get(send_body=True)

    def handle_get(self, send_body: bool):
        target = self.path
        if target.startswith("/artifacts/") or target == "/artifacts":
            return self.serve_artifact(target[len("/artifacts"):], send_body)
        url = self.gateway.upstream_url(target)
        if url is None:
            return self.send_error(403, "not an allowed upstream")
        status, path = self.gateway.cached(url)
        if path is None:
            return self.send_error(status)
        self.send_file(path, send_body)

    def serve_artifact(self, rel: str, send_body: bool):
        rel = urllib.parse.unquote(urllib.parse.urlsplit(rel).path)
        path = (self.gateway.artifacts / rel.lstrip("/")).resolve()
        root = self.gateway.artifacts.resolve()
        if path != root and root not in path.parents:
            return self.send_error(403)
        if path.is_dir():
            # A plain listing of links: what pip's --find-links reads.
            links = "".join(f'<a href="{urllib.parse.quote(p.name)}{"/" if p.is_dir() else ""}">{p.name}</a>\n'
                            for p in sorted(path.iterdir()))
            body = f"<html><body>\n{links}</body></html>\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)
            return None
        if not path.is_file():
            return self.send_error(404)
        return self.send_file(path, send_body)

    def send_file(self, path: Path, send_body: bool):
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header("Last-Modified", self.date_time_string(int(path.stat().st_mtime)))
        self.end_headers()
        if send_body:
            with open(path, "rb") as f:
                shutil.copyfileobj(f, self.wfile, CHUNK)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, default=3142)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--mirror", action="append", default=[], metavar="PREFIX=URL",
                   help="serve URL under /PREFIX, e.g. debian=http://deb.debian.org/debian")
    p.add_argument("--allow", action="append", default=[], metavar="HOST", help="upstream host proxied")
    p.add_argument("--fresh", type=float, default=600, help="seconds an index file is served from cache")
    args = p.parse_args(argv)
    mirrors = {}
    for item in args.mirror:
        prefix, _sep, url = item.partition("=")
        mirrors["/" + prefix.strip("/")] = url.rstrip("/")
    Handler.gateway = Gateway(args.cache, args.artifacts, mirrors, set(args.allow), args.fresh)
    with Server((args.bind, args.port), Handler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
