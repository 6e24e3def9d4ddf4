# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""The load balancers' shared front address (role virtual_ip): who holds it with whom, and what is wrong.

Load balancers with the same virtual_ip_address are one VRRP group (keepalived, unicast between them).
Worked out once on the controller from the validated inventory (fleet_validate): each peer's place in
the fleet plan (its peers' addresses, its priority, the group's router id), and the problems no single
host shows - a VIP outside a peer's network, peers that disagree on the engine, the password or the
router id.

VRRP version 2, because only it has authentication (keepalived ignores a password with version 3); a
version 2 password is 8 bytes on the wire (keepalived silently cuts a longer one, and two peers whose
passwords differ only after the 8th character would agree - or, cut differently by hand, not), so
longer ones are refused.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

PASSWORD_MAX = 8
# Automatic priorities: the first peer by name, then 10 less for each next one. High, so that the skew
# time a backup adds to the master-down timer ((256 - priority) / 256 s) stays small.
PRIORITY_FIRST = 250
PRIORITY_STEP = 10
# What the peers of one group must agree on.
SHARED = ("virtual_ip_auth_pass", "virtual_ip_router_id", "virtual_ip_advert_interval", "virtual_ip_down_adverts",
          "virtual_ip_preempt")


def valid_peers(hosts, address_of):
    """(name, fleet address, virtual_ip values) of the resolved hosts (fleet_validate's) that have a VIP
    whose values pass host_problems; address_of(host) gives a host's fleet address."""
    peers = []
    for host in hosts:
        values = (host.get("validated") or {}).get("virtual_ip") or {}
        if values.get("virtual_ip_address") and not list(host_problems(values)):
            peers.append((host["name"], address_of(host), values))
    return peers


def interface_address(cidr):
    """ipaddress.IPv4Interface of a 'ADDRESS/PREFIX' string; ValueError with the reason otherwise."""
    if not isinstance(cidr, str) or "/" not in cidr:
        raise ValueError("%r is not an address with its prefix length such as 10.20.0.250/24" % (cidr,))
    interface = ipaddress.ip_interface(cidr)
    if interface.version != 4:
        raise ValueError("%s is IPv6: VRRP version 2, the one with authentication, carries IPv4 only" % cidr)
    network = interface.network
    if network.prefixlen < 31 and interface.ip in (network.network_address, network.broadcast_address):
        raise ValueError("%s is the network's %s address, not a host's" % (
            cidr, "network" if interface.ip == network.network_address else "broadcast"))
    return interface


def host_problems(values):
    """Problems of one load balancer's virtual_ip variables (only when it has an address)."""
    cidr = values.get("virtual_ip_address") or ""
    if not cidr:
        return
    try:
        interface_address(cidr)
    except ValueError as exc:
        yield "virtual_ip_address: %s" % exc
    password = values.get("virtual_ip_auth_pass")
    if not isinstance(password, str) or not password:
        yield "virtual_ip_auth_pass: not set: the VRRP peers authenticate each other's adverts with it"
    elif len(password.encode("utf-8")) > PASSWORD_MAX:
        yield ("virtual_ip_auth_pass: %d bytes long: VRRP carries %d (keepalived would silently use only the first %d)"
               % (len(password.encode("utf-8")), PASSWORD_MAX, PASSWORD_MAX))
    elif not all(33 <= ord(c) <= 126 for c in password):
        yield "virtual_ip_auth_pass: has blanks or characters outside printable ASCII (keepalived.conf reads words)"


def router_id(values, interface):
    """The group's VRRP router id: virtual_ip_router_id, or the VIP's last byte (0 becomes 1)."""
    given = int(values.get("virtual_ip_router_id") or 0)
    return given or (int(interface.ip) & 0xFF) or 1


def groups(peers):
    """{VIP: [names]} of peers [(name, address, virtual_ip values)] with an address, names sorted."""
    found = {}
    for name, _address, values in peers:
        cidr = values.get("virtual_ip_address") or ""
        if cidr:
            found.setdefault(str(interface_address(cidr).ip), []).append(name)
    return dict((vip, sorted(names)) for vip, names in found.items())


def plan(peers):
    """{name: entry} for every peer with a VIP. peers: [(name, fleet address, virtual_ip values)] of
    valid values (fleet_validate checked them). entry: address, prefix, router_id, priority, peers (the
    other holders' fleet addresses), holders (names of the whole group)."""
    by_name = dict((name, (address, values)) for name, address, values in peers)
    entries = {}
    for vip, names in groups(peers).items():
        automatic = iter(range(PRIORITY_FIRST, 0, -PRIORITY_STEP))
        for name in names:
            address, values = by_name[name]
            interface = interface_address(values["virtual_ip_address"])
            given = int(values.get("virtual_ip_priority") or 0)
            entries[name] = {"address": vip, "prefix": interface.network.prefixlen,
                             "router_id": router_id(values, interface),
                             "priority": given or next(automatic),
                             "peers": [by_name[other][0] for other in names if other != name],
                             "holders": names}
    return entries


def fleet_problems(peers, engines, host_addresses):
    """What no single host shows. peers: [(name, fleet address, virtual_ip values)] of hosts whose values
    passed host_problems; engines: {name: load_balancer_engine}; host_addresses: {address: host} of the
    whole fleet."""
    by_name = dict((name, (address, values)) for name, address, values in peers)
    problems = []
    for vip, names in sorted(groups(peers).items()):
        first = names[0]
        if vip in host_addresses:
            problems.append("%s: virtual_ip_address: %s is %s's own address" % (first, vip, host_addresses[vip]))
        for name in names:
            address, values = by_name[name]
            network = interface_address(values["virtual_ip_address"]).network
            try:
                inside = ipaddress.ip_address(address) in network
            except ValueError:
                inside = None  # a host name: the role checks the interface on the host, before any change
            if inside is False:
                problems.append("%s: virtual_ip_address: %s is outside the host's network: its address %s is not in %s, so "
                                "no interface of it could answer for the VIP" % (name, values["virtual_ip_address"], address, network))
            if name == first:
                continue
            if engines.get(name) != engines.get(first):
                problems.append("%s: load_balancer_engine: %s, but its VIP peer %s runs %s: clients would get a different "
                                "service after a failover" % (name, engines.get(name), first, engines.get(first)))
            first_values = by_name[first][1]
            for key in SHARED + ("virtual_ip_address",):
                if values.get(key) != first_values.get(key):
                    shown = "" if key == "virtual_ip_auth_pass" else " (%s here, %s there)" % (values.get(key), first_values.get(key))
                    problems.append("%s: %s: differs from its VIP peer %s's%s: every holder of %s must have the same"
                                    % (name, key, first, shown, vip))
        given = [(int(by_name[n][1].get("virtual_ip_priority") or 0), n) for n in names]
        seen = {}
        for priority, name in given:
            if priority and priority in seen:
                problems.append("%s: virtual_ip_priority: %d is also %s's: the election would depend on addresses"
                                % (name, priority, seen[priority]))
            seen.setdefault(priority, name)
    return problems


def interface_for(facts, cidr):
    """The name of the host's interface whose IPv4 network (primary or secondary address) contains the
    VIP of `cidr`, from Ansible's facts; '' when none does."""
    vip = interface_address(cidr).ip
    for name in sorted(facts.get("interfaces") or ()):
        entry = facts.get(name.replace("-", "_")) or facts.get(name) or {}
        addresses = [entry.get("ipv4") or {}] + list(entry.get("ipv4_secondaries") or [])
        for address in addresses:
            if address.get("address") and address.get("netmask"):
                network = ipaddress.ip_interface("%s/%s" % (address["address"], address["netmask"])).network
                if vip in network and address["address"] != str(vip):
                    return name
    return ""
