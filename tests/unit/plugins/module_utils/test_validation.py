import base64
import struct

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import validation as v

# A real key made with ssh-keygen -t ed25519 (public half only).
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr2X0D6kqvHzRMHqhRl0rP0ZyPpDQ6b6yS7xKpZP0nT ops@example"
# Made with ssh-keygen -t rsa -b 3072, -t ecdsa -b 384 and -t rsa -b 1024 (public halves only).
RSA_3072 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCFDNCmO6DeHACcjpaSOQchT49jjFuNLt63Mq92E6nM2Q42XT2/pRCnT+A56kuA"
    "EqHv12XIIZRCiaRqiLOJQuJCB4cjIII7MKOlLRVybdbfVTMyzCxfnUngJ0BdCoD3ioU0Kq9FBDiCcwyBLxI+m0dNjg3lU7pMSS01"
    "tu1bEpGW9Dm5xe+AcdL485cCQCVy6cmx3rfnwhbauH+9lJoM6gDcvOVYpl+KN9Xbd+JEe3tD04m0aNfFoY3p0Rvmv7nXj3hH45Kc"
    "WtYZWOFdEtwGxdqdvTbxJqloCxkOwGszBqP3g7g5lJgOIc4/V3ajIigysNLV+CpQrtIkRQFUUOSq/Mly1IYCTt1DxndSl59eFP37"
    "5ZzcnWX8aiuF+jgxj1hOw9tscWXj/m5b44JCLB6bYAfvj47S9N6oqr9PaX6LpCPC+6ZxeSEP9G6oZfz4nw0RT/zSjBAQ4yPncSbL"
    "b6Gv9z9C2i5kltbvMwhEGi8L82NWE8+asnAe6wUNVgc3Aofzl9U=")
ECDSA_384 = (
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBK7uhXN5L9JcuGVuJZobqBXbJcel"
    "m9qwqXdd8ptMGrgMntp3UWqQ5TFQ2lu1yC/d1AxaQ/9QnuDKXrMSZE5MPwBNmbXL+NSzwI5gX7yQKn/gDJKTKAAzBcED1Q/m9Q4c"
    "eg==")
RSA_1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDGA5SnPc1M1b9LWLOHhmHDx5L22UIq79ida3Tv2urZN2VWUwf/xURw8aJZrE/8"
    "Ahk6Za9rreNTvfNRWq1VyH8Q06kcBtszyF2x9Bk95DMDLz0j9E1fGMHpH4u3Wi1w6JwYJFksDF9xXqzP/R/TWkBOPGvgG4syKiKx"
    "rfAPJisDTQ==")


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
    assert v.ssh_public_key_problem(RSA_3072) == ""
    assert v.ssh_public_key_problem(ECDSA_384 + " ops@example") == ""
    assert v.ssh_public_key_problem(ED25519.rsplit(" ", 1)[0]) == ""  # no comment


@pytest.mark.parametrize("value,expected", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "PRIVATE key"),
    ("AAAAC3NzaC1lZDI1NTE5AAAAIGr2", "not an OpenSSH public key"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "unknown or disabled key type 'ssh-dss'"),
    ("ssh-ed25519 not*base64", "not base64"),
    # The blob says ssh-rsa but the line claims ed25519: a pasted/edited key.
    (key_line("ssh-ed25519", "ssh-rsa"), "does not match its type"),
    ("ssh-ed25519 AAAA", "truncated"),
    # Keys that decode and carry the right type name but could never let anyone in:
    (key_line("ssh-ed25519", "ssh-ed25519", b"\x00" * 31), "an Ed25519 key is 32 bytes"),
    (key_line("ssh-rsa", "ssh-rsa"), "an RSA key is an exponent and a modulus"),
    (RSA_1024, "the RSA modulus has 1024 bits, at least 2048 needed"),
    (ECDSA_384[:-8], "the key data is truncated"),  # cut short when pasted: still base64
    (key_line("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", b"nistp256"), "names its curve nistp256 and holds one point"),
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
