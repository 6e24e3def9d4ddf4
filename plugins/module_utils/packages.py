# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""The installed Debian packages from dpkg's own database, in ansible.builtin.package_facts' shape
(why not package_facts: the installed_packages module's documentation)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

# One line per package dpkg knows: the status abbreviation (desired, current, error: "ii " is
# installed and fine), name, version, architecture.
DPKG_QUERY = ["dpkg-query", "--show", "--showformat=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n"]


def parse(text):
    """{name: [{"name", "version", "arch", "source": "apt"}]} of the packages dpkg lists as installed
    (current state "i"; a package half-installed, half-configured, unpacked or with only its
    configuration files left counts as missing, so an install task runs and finishes it). A name
    installed for several architectures has one entry per architecture."""
    packages = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        status, name, version, arch = fields
        if len(status) < 2 or status[1] != "i" or not name:
            continue
        packages.setdefault(name, []).append({"name": name, "version": version, "arch": arch, "source": "apt"})
    return packages


# Where ansible.builtin.apt's cache_valid_time looks for the time of apt's last update: the stamp
# apt's periodic hook writes where it is installed, else the lists' directory.
APT_UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
APT_LISTS = "/var/lib/apt/lists"


def apt_lists_age(now, exists=os.path.exists, mtime=os.path.getmtime):
    """Seconds since apt's package lists were last updated, read as ansible.builtin.apt's
    cache_valid_time reads it (so a role can skip the apt module, whose start opens apt's whole cache,
    exactly when it would not update), or None when neither path exists (then apt updates)."""
    for path in (APT_UPDATE_STAMP, APT_LISTS):
        if exists(path):
            try:
                return max(0.0, round(now - mtime(path), 3))
            except OSError:
                return None
    return None


# What the base role writes to switch a host to a site's mirror (roles/base/tasks/apt.yml): the mirror's
# own sources file, and the distribution's sources set aside under this suffix.
MIRROR_SOURCES = "/etc/apt/sources.list.d/llmfleet.sources"
SET_ASIDE = ".llmfleet-disabled"


def apt_mirror_files(listdir=os.listdir):
    """The paths a switch to a mirror left on the host (the mirror's sources, the distribution's sources
    set aside), sorted; [] on a host that never switched. Read with the installed packages, so that a host
    whose mirror was taken off the inventory is switched back without a look of its own on every run."""
    found = []
    for directory in ("/etc/apt", "/etc/apt/sources.list.d"):
        try:
            names = listdir(directory)
        except OSError:
            continue
        found += [os.path.join(directory, name) for name in names
                  if name.endswith(SET_ASIDE) or os.path.join(directory, name) == MIRROR_SOURCES]
    return sorted(found)
