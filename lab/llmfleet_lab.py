"""llmfleet lab: a private, air-gapped "datacenter" of real systemd hosts on this machine.

Hosts are podman containers booting systemd (no --privileged, /proc/sys stays read-only, so
nothing inside a host can change this machine's kernel settings). They sit on one internal
podman network with no route out. The machine holds the network's gateway address and serves
the only ways in, exactly as an air-gapped site's mirror host would:

the package gateway (lab/package_gateway.py) on GATEWAY:3142: an apt proxy and cache for the
Debian mirror this machine uses, the same as a mirror (http://GATEWAY:3142/debian), and an
artifact source (http://GATEWAY:3142/artifacts/, the directory .lab/artifacts).

The collection's own variables (base_apt_proxy, base_pip_find_links, ...) point hosts at them.

Commands (all idempotent):
  up      build/reuse the base image, start the network, the proxy and the hosts, write an inventory
  down    remove a lab's hosts; with the last lab gone also the network and the proxy processes
  status  list labs and hosts
  image   build the base image only

Several labs may exist at once (the main lab, molecule scenarios): each is a set of hosts
labelled llmfleet.lab=NAME on the shared lab network. They belong to one clone of the repository:
another clone is refused until they are down (lab/fleetlab/owner.py).

The code is the package lab/fleetlab: settings (one object, LLMFLEET_LAB_*), system (commands,
daemons), image, engines (podman, docker, nspawn hosts behind one interface), gateway (the package
gateway and artifacts), topology, access (keys, admin account), inventory, owner, cli.

The three kinds of host (podman, docker-engine, nspawn) are described in lab/fleetlab/engines.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleetlab.cli import main  # noqa: E402  (lab/fleetlab, beside this file)

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))
