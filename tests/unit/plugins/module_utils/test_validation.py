import base64
import struct

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import validation as v

# A real key made with ssh-keygen -t ed25519 (public half only).
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr2X0D6kqvHzRMHqhRl0rP0ZyPpDQ6b6yS7xKpZP0nT ops@example"


def key_line(declared, blob_type, payload=b"\x00" * 32):
    blob = struct.pack(">I", len(blob_type)) + blob_type.encode() + struct.pack(">I", len(payload)) + payload
    return "%s %s comment" % (declared, base64.b64encode(blob).decode())


@pytest.mark.parametrize("url", [
    "http://10.213.9.1:3142",
    "https://mirror.example.com/debian",
    "http://[fd00::1]:8080/simple/",
    "http://proxy:3128",
])
def test_url_accepted(url):
    assert v.url_problem(url) == ""


@pytest.mark.parametrize("url,expected", [
    ("htp://proxy:3142", "scheme must be one of http, https"),
    ("http//proxy:3142", "scheme"),
    ("http://", "no host"),
    ("http://proxy:99999", "invalid port"),
    ("http://proxy:port", "invalid port"),
    ("http://proxy :3142", "invalid host"),
    (" http://proxy:3142", "surrounding spaces"),
    ("http://300.1.1.1:3142", "invalid host"),
    ("ftp://mirror/debian", "scheme"),
    (3142, "not a string"),
])
def test_url_refused(url, expected):
    assert expected in v.url_problem(url)


def test_url_schemes_are_configurable():
    assert v.url_problem("https://x.example", schemes=("http",)) != ""
    assert v.url_problem("nfs://infra1/srv/models", schemes=("nfs",)) == ""


def test_ssh_public_key_accepted():
    assert v.ssh_public_key_problem(ED25519) == ""
    assert v.ssh_public_key_problem(key_line("ssh-rsa", "ssh-rsa")) == ""
    assert v.ssh_public_key_problem(ED25519.rsplit(" ", 1)[0]) == ""  # no comment


@pytest.mark.parametrize("value,expected", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "PRIVATE key"),
    ("AAAAC3NzaC1lZDI1NTE5AAAAIGr2", "not an OpenSSH public key"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "unknown or disabled key type 'ssh-dss'"),
    ("ssh-ed25519 not*base64", "not base64"),
    # The blob says ssh-rsa but the line claims ed25519: a pasted/edited key.
    (key_line("ssh-ed25519", "ssh-rsa"), "does not match its type"),
    ("ssh-ed25519 AAAA", "truncated"),
    (ED25519 + "\n" + ED25519, "several lines"),
    (None, "not a string"),
])
def test_ssh_public_key_refused(value, expected):
    assert expected in v.ssh_public_key_problem(value)


@pytest.mark.parametrize("zone", ["zone-a", "a", "eu-west-1", "z" * 32])
def test_zone_accepted(zone):
    assert v.zone_problem(zone) == ""


@pytest.mark.parametrize("zone", ["", "Zone-A", "zone_a", "-a", "a-", "z" * 33, None, 3])
def test_zone_refused(zone):
    assert "not a zone name" in v.zone_problem(zone)


def test_addresses_and_hosts():
    assert v.ip_address_problem("10.0.0.1") == ""
    assert v.ip_address_problem("fd00::2") == ""
    assert "not an IP address" in v.ip_address_problem("model-a1")
    assert v.host_problem("ntp.example.com") == ""
    assert v.host_problem("10.1.2.3") == ""
    assert "not a host name" in v.host_problem("10.1.2")
    assert "not a host name" in v.host_problem("bad host")


def test_unix_names():
    assert v.unix_name_problem("llmops") == ""
    assert "not a valid user name" in v.unix_name_problem("Root")
    assert "not a valid user name" in v.unix_name_problem("9ops")


@pytest.mark.parametrize("value", ["10.213.9.0/24", "0.0.0.0/0", "fd00::/8", "192.0.2.7/32", "any"])
def test_good_networks(value):
    assert v.cidr_problem(value) == ""


@pytest.mark.parametrize("value,reason", [
    ("10.213.9.1/24", "host bits set"),
    ("10.213.9.0", "not a network in CIDR notation"),
    ("10.213.9.0/33", "not a valid network"),
    (24, "not a network in CIDR notation"),
    ("", "not a network in CIDR notation"),
])
def test_bad_networks(value, reason):
    assert reason in v.cidr_problem(value)


def test_address_in_networks():
    assert v.address_in_networks("10.213.9.1", ["192.0.2.0/24", "10.213.9.0/24"])
    assert not v.address_in_networks("10.213.9.1", ["192.0.2.0/24"])
    assert v.address_in_networks("2001:db8::1", ["any"])
    assert not v.address_in_networks("not-an-ip", ["any"])
    assert not v.address_in_networks("10.0.0.1", ["garbage"])


@pytest.mark.parametrize("value", [22, "8000", "8000:8009", 65535])
def test_good_ports(value):
    assert v.port_problem(value) == ""


@pytest.mark.parametrize("value,reason", [(0, "not a port"), (70000, "not a port"), ("http", "not a port"),
                                          (True, "not a port"), ("8009:8000", "first port must be lower"),
                                          ("1:2:3", "not a port"), (None, "not a port")])
def test_bad_ports(value, reason):
    assert reason in v.port_problem(value)
