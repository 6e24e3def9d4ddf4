# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Checks of user input shared by llmfleet's plugins and modules.

Each check returns '' when the value is acceptable, or one sentence saying what is wrong,
so that callers can name the host and the variable around it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import ipaddress
import re
import struct

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 targets are not supported, but sanity imports this
    from urlparse import urlsplit  # type: ignore

# OpenSSH public key types a current sshd accepts (ssh-dss is disabled since OpenSSH 7.0).
SSH_PUBLIC_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)

# Zone names end up in Prometheus labels, HAProxy server names and file names.
ZONE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
UNIX_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
HOSTNAME_PATTERN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# An image reference as Docker's distribution parses it: [REGISTRY[:PORT]/]PATH[:TAG][@DIGEST]; a
# digest pin is sha256 with 64 hex digits (what the registry and the engine address content by).
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
IMAGE_PATTERN = re.compile(r"^(?:%s/)?%s(?:/%s)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@(?P<digest>[^@]+))?$"
                           % (_IMAGE_DOMAIN, _IMAGE_COMPONENT, _IMAGE_COMPONENT))
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_problem(value):
    """'' if value is an image reference (tag or digest pin), else what is wrong."""
    if not isinstance(value, str) or not value:
        return "%s is not an image reference" % _describe(value)
    match = IMAGE_PATTERN.match(value)
    if not match:
        return "%s is not an image reference such as registry:5000/team/engine:1.2 or ...@sha256:<64 hex>" % _describe(value)
    if match.group("digest") is not None and not DIGEST_PATTERN.match(match.group("digest")):
        return "%s: the digest pin %s is not sha256:<64 hex digits>" % (value, match.group("digest"))
    return ""


def url_problem(value, schemes=("http", "https")):
    """'' if value is an absolute URL with one of schemes, a host and a valid port."""
    if not isinstance(value, str):
        return "%s is not a string" % _describe(value)
    if value != value.strip() or not value:
        return "%s is empty or has surrounding spaces" % _describe(value)
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        return "%s is not a URL: the scheme must be one of %s" % (_describe(value), ", ".join(schemes))
    try:
        port = parts.port
    except ValueError:
        return "%s has an invalid port" % _describe(value)
    host = parts.hostname
    if not host:
        return "%s has no host" % _describe(value)
    if host_problem(host):
        return "%s has an invalid host %r" % (_describe(value), host)
    if port == 0:
        return "%s has an invalid port" % _describe(value)
    if any(c.isspace() for c in value):
        return "%s contains white space" % _describe(value)
    return ""


def host_problem(value):
    """'' if value is an IP address or a DNS host name."""
    if not isinstance(value, str) or not value:
        return "%s is not a host name or address" % _describe(value)
    if ip_address_problem(value) == "":
        return ""
    if re.match(r"^[0-9.]+$", value) or not HOSTNAME_PATTERN.match(value):
        return "%s is not a host name or address" % _describe(value)
    return ""


def ip_address_problem(value):
    """'' if value is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value if isinstance(value, str) else "")
    except ValueError:
        return "%s is not an IP address" % _describe(value)
    return ""


def cidr_problem(value):
    """'' if value is an IPv4/IPv6 network in CIDR notation with no host bits set (10.0.0.0/8), or 'any'."""
    if value == "any":
        return ""
    if not isinstance(value, str) or "/" not in value:
        return "%s is not a network in CIDR notation such as 10.20.0.0/16 (or any)" % _describe(value)
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return "%s is not a valid network (%s)" % (_describe(value), exc)
    return ""


def address_in_networks(address, networks):
    """Whether address lies in one of the networks (CIDR strings; 'any' matches everything)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        if network == "any":
            return True
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except (ValueError, TypeError):
            continue
    return False


def port_problem(value):
    """'' if value is a TCP/UDP port number (1-65535) or a range 'low:high'."""
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    parts = text.split(":") if text is not None else []
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() and 1 <= int(p) <= 65535 for p in parts):
        return "%s is not a port (1-65535) or a range such as 8000:8009" % _describe(value)
    if len(parts) == 2 and int(parts[0]) >= int(parts[1]):
        return "%s is not a range: the first port must be lower" % _describe(value)
    return ""


def zone_problem(value):
    """'' if value is a usable zone name: lower-case letters, digits and '-', at most 32."""
    if not isinstance(value, str) or not ZONE_PATTERN.match(value):
        return ("%s is not a zone name: use 1 to 32 lower-case letters, digits and '-', "
                "starting and ending with a letter or digit" % _describe(value))
    return ""


def unix_name_problem(value):
    """'' if value is a portable user or group name."""
    if not isinstance(value, str) or not UNIX_NAME_PATTERN.match(value):
        return "%s is not a valid user name (lower-case, starts with a letter or _, at most 32)" % _describe(value)
    return ""


def ssh_public_key_problem(value):
    """'' if value is one OpenSSH public key line whose key blob matches its declared type."""
    if not isinstance(value, str):
        return "%s is not a string" % _describe(value)
    text = value.strip()
    if "PRIVATE KEY" in text:
        return "this is a PRIVATE key: give the public key (the .pub file), and keep the private key secret"
    if "\n" in text:
        return "one key per list item: this value has several lines"
    fields = text.split()
    # authorized_keys options (from=..., command=...) are not accepted here: keys only.
    if len(fields) < 2:
        return "%s is not an OpenSSH public key ('TYPE BASE64 [COMMENT]')" % _describe(value)
    key_type, blob = fields[0], fields[1]
    if key_type not in SSH_PUBLIC_KEY_TYPES:
        return "%s is not an OpenSSH public key: unknown or disabled key type %r" % (_describe(value), key_type)
    try:
        raw = base64.b64decode(blob.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return "%s is not an OpenSSH public key: the key data is not base64" % _describe(value)
    if len(raw) < 4:
        return "%s is not an OpenSSH public key: the key data is truncated" % _describe(value)
    (length,) = struct.unpack(">I", raw[:4])
    if raw[4:4 + length] != key_type.encode("ascii"):
        return "%s is not an OpenSSH public key: the key data does not match its type %r" % (_describe(value), key_type)
    problem = _key_blob_problem(key_type, raw)
    if problem:
        return "%s is not a usable %s key: %s" % (_describe(value), key_type, problem)
    return ""


# EC point sizes (uncompressed: 0x04 || X || Y) per curve.
_EC_POINT_BYTES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
RSA_MIN_BITS = 2048


def _ssh_strings(raw):
    """The length-prefixed fields of an SSH key blob (RFC 4253 6.6); ValueError when they do not add up."""
    fields, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ValueError("the key data is truncated")
        (length,) = struct.unpack(">I", raw[offset:offset + 4])
        if offset + 4 + length > len(raw):
            raise ValueError("the key data is truncated")
        fields.append(raw[offset + 4:offset + 4 + length])
        offset += 4 + length
    return fields


def _key_blob_problem(key_type, raw):
    """'' when the blob holds what its type needs (a key that base64-decodes but is cut short, padded,
    or has the wrong sizes would be written to authorized_keys and never let anyone in)."""
    try:
        fields = _ssh_strings(raw)[1:]
    except ValueError as exc:
        return str(exc)
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        expected = 2 if key_type.startswith("sk-") else 1
        if len(fields) != expected or len(fields[0]) != 32:
            return "an Ed25519 key is 32 bytes%s" % (" and an application" if expected == 2 else "")
        return ""
    if key_type == "ssh-rsa":
        if len(fields) != 2:
            return "an RSA key is an exponent and a modulus"
        exponent = int(binascii.hexlify(fields[0]) or b"0", 16)
        bits = int(binascii.hexlify(fields[1]) or b"0", 16).bit_length()
        if exponent < 3 or exponent % 2 == 0:
            return "the RSA exponent %d is not usable" % exponent
        if bits < RSA_MIN_BITS:
            return "the RSA modulus has %d bits, at least %d needed" % (bits, RSA_MIN_BITS)
        return ""
    curve = key_type.split("-")[-1].split("@")[0] if "ecdsa" in key_type else ""
    if curve in _EC_POINT_BYTES:
        expected = 3 if key_type.startswith("sk-") else 2
        if len(fields) != expected or fields[0] != curve.encode("ascii"):
            return "an ECDSA key names its curve %s and holds one point" % curve
        if len(fields[1]) != _EC_POINT_BYTES[curve] or fields[1][:1] != b"\x04":
            return "the ECDSA point is not an uncompressed %s point" % curve
        return ""
    return ""
