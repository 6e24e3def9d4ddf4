# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Zone logic shared by every plugin that takes hosts out of service: driver reboots,
rolling updates. One zone is the unit of failure the fleet is sized for, so work that
removes capacity never spans two zones at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Hosts that carry no zone (an infra host with a GPU, say) are handled after every zone.
NO_ZONE = ""

_DIGITS = re.compile(r"(\d+)")


def natural_key(name):
    """Sort key that puts zone-2 before zone-10 and model-a2 before model-a10."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(str(name))]


def zone_order(zones):
    """The distinct zones, in the stable order every play uses; hosts without a zone last."""
    named = sorted(set(z for z in zones if z != NO_ZONE), key=natural_key)
    if NO_ZONE in zones:
        named.append(NO_ZONE)
    return named


def in_zone_order(hosts, zone_of):
    """hosts sorted zone by zone in the order every play uses (hosts without a zone last), then by name.
    zone_of: mapping host name -> zone name (missing or None means no zone)."""
    zone = dict((host, zone_of.get(host) or NO_ZONE) for host in hosts)
    order = dict((name, i) for i, name in enumerate(zone_order(list(zone.values()))))
    return sorted(hosts, key=lambda host: (order[zone[host]], natural_key(host)))


def batches_by_zone(hosts, zone_of, max_hosts):
    """Split hosts into batches that each stay inside one zone.

    hosts: host names to handle (others are ignored).
    zone_of: mapping host name -> zone name (missing or None means no zone).
    max_hosts: most hosts per batch; 0 means a whole zone at a time.

    Returns a list of {"zone": name, "hosts": [names]} in zone order, hosts in natural order.
    """
    if isinstance(max_hosts, bool) or not isinstance(max_hosts, int) or max_hosts < 0:
        raise ValueError("max_hosts must be an integer >= 0 (0: a whole zone at a time), got %r" % (max_hosts,))
    members = {}
    for host in hosts:
        zone = zone_of.get(host) or NO_ZONE
        members.setdefault(zone, []).append(host)
    batches = []
    for zone in zone_order(list(members)):
        zone_hosts = sorted(set(members[zone]), key=natural_key)
        size = max_hosts or len(zone_hosts)
        for start in range(0, len(zone_hosts), size):
            batches.append({"zone": zone, "hosts": zone_hosts[start:start + size]})
    return batches
