"""Running things on this machine: commands, the podman and docker CLIs of the lab, and the lab's
own daemons (package gateways, dockerd) with their pid files in the lab's state."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .settings import Settings


class LabError(RuntimeError):
    """A lab operation failed in a way the user must see."""


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], *, check: bool = True, capture: bool = True, input_text: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, input=input_text, text=True, env=env, check=False,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise LabError(f"{shlex.join(cmd)} failed ({proc.returncode}): {detail}")
    return proc


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class Machine:
    """This machine as the lab uses it: its container CLIs (with the lab's settings) and daemons."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def podman_env(self) -> dict:
        return dict(os.environ, CONTAINERS_CONF=str(self.settings.containers_conf))

    def docker_env(self) -> dict:
        return dict(os.environ, DOCKER_HOST=f"unix://{self.settings.docker_socket}")

    def podman(self, *args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
        return run(["podman", *args], check=check, input_text=input_text, env=self.podman_env())

    def docker(self, *args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
        return run(["docker", *args], check=check, input_text=input_text, env=self.docker_env())

    def pipe(self, producer: list[str], producer_env: dict, consumer: list[str], consumer_env: dict | None = None,
             what: str = "") -> None:
        """producer | consumer, both checked (podman save | docker load, podman export | tar...)."""
        source = subprocess.Popen(producer, stdout=subprocess.PIPE, env=producer_env)
        sink = subprocess.run(consumer, stdin=source.stdout, capture_output=True, text=True, check=False,
                              env=consumer_env)
        source.wait()
        if sink.returncode != 0 or source.returncode != 0:
            raise LabError(f"{what or shlex.join(producer)} failed: {sink.stderr.strip()}")

    # ------------------------------------------------------------ daemons

    def pidfile(self, name: str) -> Path:
        return self.settings.state / "run" / f"{name}.pid"

    def alive(self, name: str) -> int | None:
        try:
            pid = int(self.pidfile(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def log_path(self, name: str) -> Path:
        return self.settings.state / "log" / f"{name}.log"

    def start_daemon(self, name: str, cmd: list[str], port: int, address: str) -> None:
        if self.alive(name):
            return
        state = self.settings.state
        (state / "run").mkdir(parents=True, exist_ok=True)
        (state / "log").mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab") as logfile:
            proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=state)
        self.pidfile(name).write_text(str(proc.pid))
        if port and not wait_port(address, port, 15):
            raise LabError(f"{name} did not listen on {address}:{port}; see {self.log_path(name)}")
        log(f"{name}: started (pid {proc.pid})" + (f", listening on {address}:{port}" if port else ""))

    def stop_daemon(self, name: str) -> None:
        pid = self.alive(name)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            for _attempt in range(50):
                if not self.alive(name):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
        self.pidfile(name).unlink(missing_ok=True)
