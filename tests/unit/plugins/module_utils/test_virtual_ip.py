"""The load balancers' shared front address (module_utils/virtual_ip.py): one host's inputs, the rules
across a VRRP group, and the interface that carries the VIP. End to end, refused before any host is
touched: tests/unit/test_inventory_validation.py; on real hosts: tests/integration/test_virtual_ip.py."""

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import virtual_ip

GOOD = {"virtual_ip_address": "10.0.2.250/24", "virtual_ip_auth_pass": "s3cret-8", "virtual_ip_router_id": 0,
        "virtual_ip_priority": 0, "virtual_ip_advert_interval": 1, "virtual_ip_down_adverts": 2,
        "virtual_ip_preempt": False}


def problems(**changes):
    return list(virtual_ip.host_problems(dict(GOOD, **changes)))


def test_good_input_and_no_address_have_no_problem():
    assert problems() == []
    # No shared address: nothing else is looked at (the role does nothing).
    assert problems(virtual_ip_address="", virtual_ip_auth_pass="") == []


@pytest.mark.parametrize("address, reason", [
    ("10.0.2.250", "is not an address with its prefix length"),
    ("10.0.2.0/24", "is the network's network address"),
    ("10.0.2.255/24", "is the network's broadcast address"),
    ("fd00::250/64", "is IPv6: VRRP version 2"),
    ("10.0.2.300/24", "does not appear to be an IPv4 or IPv6 interface"),
])
def test_a_vip_that_is_not_a_host_address_with_its_prefix_is_refused(address, reason):
    [problem] = problems(virtual_ip_address=address)
    assert problem.startswith("virtual_ip_address: ") and reason in problem


@pytest.mark.parametrize("password, reason", [
    ("", "not set"),
    (None, "not set"),
    ("123456789", "9 bytes long: VRRP carries 8 (keepalived would silently use only the first 8)"),
    ("pässwörd", "10 bytes long"),
    ("two word", "blanks or characters outside printable ASCII"),
])
def test_a_password_vrrp_cannot_carry_whole_is_refused(password, reason):
    [problem] = problems(virtual_ip_auth_pass=password)
    assert problem.startswith("virtual_ip_auth_pass: ") and reason in problem
    if password and len(password) > 3:
        assert password not in problem  # a secret


def peer(name, address, **changes):
    return (name, address, dict(GOOD, **changes))


def fleet(peers, engines=None, addresses=None):
    engines = engines or dict((p[0], "haproxy") for p in peers)
    return virtual_ip.fleet_problems(peers, engines, addresses or dict((p[1], p[0]) for p in peers))


def test_peers_in_the_vips_network_that_agree_have_no_problem():
    assert fleet([peer("lb1", "10.0.2.5"), peer("lb3", "10.0.2.7")]) == []
    # A host known by name only: its interfaces are checked on the host, before any change.
    assert fleet([peer("lb1", "lb1.example.com")]) == []


def test_a_vip_outside_a_peers_network_is_named_with_the_peers_address():
    assert fleet([peer("lb1", "10.0.2.5"), peer("lb2", "10.0.3.5")]) == [
        "lb2: virtual_ip_address: 10.0.2.250/24 is outside the host's network: its address 10.0.3.5 is not in "
        "10.0.2.0/24, so no interface of it could answer for the VIP"]


def test_a_vip_that_is_a_hosts_own_address_is_refused():
    assert fleet([peer("lb1", "10.0.2.5")], addresses={"10.0.2.5": "lb1", "10.0.2.250": "infra1"}) == [
        "lb1: virtual_ip_address: 10.0.2.250 is infra1's own address"]


def test_peers_must_agree_on_engine_password_router_id_and_timers():
    other = peer("lb3", "10.0.2.7", virtual_ip_auth_pass="other-pw", virtual_ip_router_id=9, virtual_ip_down_adverts=3)
    found = fleet([peer("lb1", "10.0.2.5"), other], engines={"lb1": "haproxy", "lb3": "nginx"})
    assert found == [
        "lb3: load_balancer_engine: nginx, but its VIP peer lb1 runs haproxy: clients would get a different service "
        "after a failover",
        "lb3: virtual_ip_auth_pass: differs from its VIP peer lb1's: every holder of 10.0.2.250 must have the same",
        "lb3: virtual_ip_router_id: differs from its VIP peer lb1's (9 here, 0 there): every holder of 10.0.2.250 must "
        "have the same",
        "lb3: virtual_ip_down_adverts: differs from its VIP peer lb1's (3 here, 2 there): every holder of 10.0.2.250 "
        "must have the same"]
    assert not any("other-pw" in p or "s3cret-8" in p for p in found)


def test_the_same_prefix_of_one_vip_is_one_group_and_a_different_prefix_is_named():
    assert fleet([peer("lb1", "10.0.2.5"), peer("lb3", "10.0.2.200", virtual_ip_address="10.0.2.250/25")]) == [
        "lb3: virtual_ip_address: differs from its VIP peer lb1's (10.0.2.250/25 here, 10.0.2.250/24 there): every "
        "holder of 10.0.2.250 must have the same"]


def test_two_holders_with_the_same_given_priority_are_named():
    assert fleet([peer("lb1", "10.0.2.5", virtual_ip_priority=200), peer("lb3", "10.0.2.7", virtual_ip_priority=200)]) == [
        "lb3: virtual_ip_priority: 200 is also lb1's: the election would depend on addresses"]


def test_the_router_id_defaults_to_the_vips_last_byte():
    assert virtual_ip.router_id({}, virtual_ip.interface_address("10.0.2.250/24")) == 250
    assert virtual_ip.router_id({}, virtual_ip.interface_address("10.0.3.0/16")) == 1
    assert virtual_ip.router_id({"virtual_ip_router_id": 42}, virtual_ip.interface_address("10.0.2.250/24")) == 42


FACTS = {"interfaces": ["lo", "eth0", "br-ext"],
         "lo": {"ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0"}},
         "eth0": {"ipv4": {"address": "10.0.2.5", "netmask": "255.255.255.0"},
                  "ipv4_secondaries": [{"address": "10.0.2.250", "netmask": "255.255.255.0"}]},
         "br_ext": {"ipv4": {"address": "192.168.7.1", "netmask": "255.255.255.0"}}}


def test_the_vip_goes_on_the_interface_whose_network_contains_it():
    assert virtual_ip.interface_for(FACTS, "10.0.2.250/24") == "eth0"
    # Interface names with '-' are facts with '_'; a secondary address counts too.
    assert virtual_ip.interface_for(FACTS, "192.168.7.9/24") == "br-ext"
    facts = dict(FACTS, eth0={"ipv4": {"address": "10.9.9.9", "netmask": "255.255.255.0"},
                              "ipv4_secondaries": [{"address": "10.0.2.6", "netmask": "255.255.255.0"}]})
    assert virtual_ip.interface_for(facts, "10.0.2.250/24") == "eth0"


def test_no_interface_on_the_vips_network_gives_an_empty_name():
    assert virtual_ip.interface_for(FACTS, "10.0.9.250/24") == ""
    # The VIP itself, held as an address of its own, is not the host's network.
    facts = {"interfaces": ["eth1"], "eth1": {"ipv4": {"address": "10.0.9.250", "netmask": "255.255.255.255"}}}
    assert virtual_ip.interface_for(facts, "10.0.9.250/24") == ""
