"""The lab tool's commands (up, down, status, image) over the pieces of this package."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from . import access, engine_images, gateway, image, inventory, owner
from .engines import HostEngine, container_name, engines
from .settings import ADMIN_USER, Settings
from .system import LabError, Machine, log, wait_port
from .topology import HostSpec, default_topology, parse_host_specs


class Lab:
    """This machine's labs, seen from one clone (its settings and state)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.machine = Machine(settings)
        self.engines: dict[str, HostEngine] = engines(self.machine)
        self.wait_port = wait_port

    def hosts(self, lab: str | None = None) -> list[dict]:
        """Hosts of a lab (or of all labs) on every engine: {"name", "lab", "state", "engine"}."""
        return [host for engine in self.engines.values() for host in engine.hosts(lab)]

    def ensure_ssh(self, lab: str, spec: HostSpec, image_tag: str, address: str, timeout: float = 120) -> str:
        """Wait for the host's sshd; a host that does not get there in time is started once more
        from scratch (seen once in CI on a loaded machine: one of nine hosts never opened port 22
        while the others did), and what it looked like is logged. Returns the (new) address."""
        engine = self.engines[spec.engine]
        cname = container_name(lab, spec.name)
        if self.wait_port(address, 22, timeout):
            return address
        first = engine.diagnostics(cname)
        log(f"{spec.name}: sshd on {address} not up within {timeout:.0f}s ({first}); starting the host again")
        engine.remove(cname)
        engine.start(lab, spec, image_tag)
        address = engine.address(cname)
        if self.wait_port(address, 22, timeout):
            return address
        raise LabError(f"{spec.name}: sshd on {address} did not come up within {timeout:.0f}s, twice; "
                       f"first: {first}; then: {engine.diagnostics(cname)}")

    def install_admin_account(self, cname: str, engine: HostEngine) -> None:
        engine.before_admin_account(cname)
        engine.exec(cname, access.admin_account_script(),
                    input_text=access.ssh_key(self.settings).with_suffix(".pub").read_text())

    # ------------------------------------------------------------ commands

    def up(self, args) -> dict:
        started = time.monotonic()
        s = self.settings
        owner.check(s, bool(self.hosts()), "up")
        if args.hosts_json:
            specs = parse_host_specs(args.hosts_json)
        else:
            specs = default_topology(s, args.zones, args.model_nodes, args.lbs, args.infra, args.container_zones)
        owner.claim(s)
        tag = image.ensure_image(self.machine)
        t_image = time.monotonic() - started
        used = {spec.engine for spec in specs} | {"podman"}  # the lab network and its gateway: always
        for name in used:
            self.engines[name].prepare(tag)
        wanted = {(container_name(args.name, spec.name), spec.engine) for spec in specs}
        for existing in self.hosts(args.name):
            if (existing["name"], existing["engine"]) not in wanted:
                self.engines[existing["engine"]].remove(existing["name"])
        for spec in specs:
            self.engines[spec.engine].start(args.name, spec, tag)
        gateway.ensure_services(self.machine)
        gateway.ensure_artifacts(self.machine)
        images = {}
        if any("container_nodes" in spec.groups for spec in specs):
            wheel = sorted((s.state / "artifacts" / "wheels").glob("xllamacpp-*.whl"))[-1]
            images = engine_images.ensure(self.machine.podman, tag, wheel, s.state / "artifacts" / "images", log)
        addresses = {spec.name: self.engines[spec.engine].address(container_name(args.name, spec.name)) for spec in specs}
        for spec in specs:
            addresses[spec.name] = self.ensure_ssh(args.name, spec, tag, addresses[spec.name])
            self.install_admin_account(container_name(args.name, spec.name), self.engines[spec.engine])
        access.scan_host_keys(s, list(addresses.values()))
        gateways = {name: address for name, address in
                    ((name, engine.gateway_address()) for name, engine in self.engines.items()) if address != s.gateway}
        inv = inventory.inventory(s, args.name, specs, addresses, images, gateways)
        path = Path(args.inventory) if args.inventory else s.inventory_path(args.name)
        inventory.write_yaml_inventory(path, inv)
        elapsed = time.monotonic() - started
        log(f"lab {args.name}: {len(specs)} hosts up in {elapsed:.1f}s (image {t_image:.1f}s); inventory {path}")
        return {"lab": args.name, "inventory": str(path), "hosts": addresses, "image": tag,
                "seconds": round(elapsed, 2), "image_seconds": round(t_image, 2),
                "ssh_key": str(access.ssh_key(s)), "admin_user": ADMIN_USER, "known_hosts": str(access.known_hosts(s)),
                "services": gateway.service_urls(s)}

    def down(self, args) -> dict:
        s = self.settings
        owner.check(s, bool(self.hosts()), "down")
        labs = sorted({host["lab"] for host in self.hosts()}) if args.all else [args.name]
        removed = []
        for lab in labs:
            hosts = self.hosts(lab)
            addresses = []
            for host in hosts:
                try:
                    addresses.append(self.engines[host["engine"]].address(host["name"]))
                except (LabError, KeyError, OSError, ValueError):
                    pass
            for host in hosts:
                self.engines[host["engine"]].remove(host["name"])
                removed.append(host["name"])
            access.forget_host_keys(s, addresses)
            path = s.inventory_path(lab)
            if path.exists():
                path.unlink()
            # The lab's site CA and registry password go with it.
            shutil.rmtree(s.lab_dir(lab), ignore_errors=True)
        # An engine with no host left stops what it runs; the lab network and gateway go last.
        for name in ("nspawn", "docker"):
            if not self.engines[name].hosts():
                self.engines[name].teardown(args.purge)
        if not self.hosts():
            self.machine.stop_daemon(gateway.MAIN)
            self.engines["podman"].teardown(args.purge)
            owner.release(s)
            if args.purge:
                image.remove_images(self.machine)
                shutil.rmtree(s.state, ignore_errors=True)
        log(f"removed {len(removed)} hosts")
        return {"removed": removed}

    def status(self, _args) -> dict:
        labs: dict[str, list] = {}
        for host in self.hosts():
            labs.setdefault(host["lab"], []).append({"name": host["name"], "state": host["state"], "engine": host["engine"]})
        return {"labs": labs, "gateway": bool(self.machine.alive(gateway.MAIN)), "dockerd": self.engines["docker"].running(),
                "services": gateway.service_urls(self.settings), "owner": owner.owner_of(self.settings),
                "image": image.image_tag(self.settings.debian_mirror), "image_cached": image.image_cached(self.machine)}

    def image(self, _args) -> dict:
        return {"image": image.ensure_image(self.machine)}


def main(argv: list[str] | None = None, doc: str | None = None) -> int:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring a lab up (idempotent)")
    up.add_argument("--name", default="main", help="lab name (default: main, inventory inventories/lab/hosts.yml)")
    up.add_argument("--zones", type=int, default=3)
    up.add_argument("--model-nodes", type=int, default=2, help="model nodes per zone")
    up.add_argument("--lbs", type=int, default=3)
    up.add_argument("--infra", type=int, default=1)
    up.add_argument("--container-zones", type=int, default=1,
                    help="zones (the last ones) whose model nodes run containers from the lab registry")
    up.add_argument("--hosts-json", help='explicit hosts: [{"name":..,"groups":[..],"zone":..,"vars":{..}}]')
    up.add_argument("--inventory", help="where to write the inventory")
    down = sub.add_parser("down", help="remove a lab")
    down.add_argument("--name", default="main")
    down.add_argument("--all", action="store_true", help="every lab")
    down.add_argument("--purge", action="store_true",
                      help="with the last lab gone, also remove the cached image, apt cache, keys and state")
    sub.add_parser("status")
    sub.add_parser("image")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab needs root (podman networks, the package gateway on the bridge address)")
    lab = Lab(Settings.from_env())
    handler = {"up": lab.up, "down": lab.down, "status": lab.status, "image": lab.image}[args.command]
    try:
        result = handler(args)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    if args.json or args.command == "status":
        print(json.dumps(result, indent=2))
    return 0
