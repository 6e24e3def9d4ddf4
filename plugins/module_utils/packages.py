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


def apt_lists_time(exists=os.path.exists, mtime=os.path.getmtime):
    """When apt's package lists were last updated, read where ansible.builtin.apt's cache_valid_time
    reads it, or None when neither path exists (then apt updates). The stamp is touched on every
    successful update where the base role's apt hook is in place (templates/apt-update-stamp.conf.j2);
    the lists' directory alone is not: an update that finds nothing new leaves it as it was."""
    for path in (APT_UPDATE_STAMP, APT_LISTS):
        if exists(path):
            try:
                return mtime(path)
            except OSError:
                return None
    return None


def apt_lists_age(now, lists_time):
    """Seconds from lists_time (apt_lists_time) to now (so a role can skip the apt module, whose start
    opens apt's whole cache, exactly when it would not update), or None with no lists time."""
    return None if lists_time is None else max(0.0, round(now - lists_time, 3))


# Where apt reads its sources: the one-line file (and what a switch to a mirror set aside of it) in
# /etc/apt, every file of the directory, and the directory itself (a file removed or renamed there).
APT_SOURCES_DIR = "/etc/apt/sources.list.d"


def apt_sources_newer(lists_time, listdir=os.listdir, ctime=lambda path: os.stat(path).st_ctime):
    """Whether apt's sources changed after its lists were last updated (lists_time, apt_lists_time), by
    their change times (ctime: a rename changes it, mtime it keeps) - the lists may then be those of
    other sources. A run that switched a host to a mirror and stopped before the update (Ctrl-C, a lost
    connection) left exactly that: the next run saw the sources unchanged and young lists, and every
    install read the old sources' lists until they aged out. True also with no lists time."""
    if lists_time is None:
        return True
    paths = [APT_SOURCES_DIR]
    for directory, wanted in (("/etc/apt", lambda name: name.startswith("sources.list")),
                              (APT_SOURCES_DIR, lambda name: True)):
        try:
            paths += [os.path.join(directory, name) for name in listdir(directory) if wanted(name)]
        except OSError:
            continue
    for path in paths:
        try:
            if ctime(path) > lists_time:
                return True
        except OSError:     # gone meanwhile, or no such directory
            continue
    return False


# What the base role writes to switch a host to a site's mirror (roles/base/tasks/apt.yml): the mirror's
# own sources file, and the distribution's sources set aside under this suffix.
MIRROR_SOURCES = "/etc/apt/sources.list.d/llmfleet.sources"
SET_ASIDE = ".llmfleet-disabled"


def apt_mirror_files(listdir=os.listdir):
    """The paths a switch to a mirror left on the host (the mirror's sources, the distribution's sources
    set aside), sorted; [] on a host that never switched. Read with the installed packages, so that a host
    whose mirror was taken off the inventory is switched back without a look of its own on every run.
    A source set aside whose original exists again (written anew by its package meanwhile) is not listed:
    the way back keeps the new one, so the copy is nothing left to undo - listed, the host would run the
    way back on every run."""
    found = []
    for directory in ("/etc/apt", "/etc/apt/sources.list.d"):
        try:
            names = set(listdir(directory))
        except OSError:
            continue
        found += [os.path.join(directory, name) for name in names
                  if (name.endswith(SET_ASIDE) and name[:-len(SET_ASIDE)] not in names)
                  or os.path.join(directory, name) == MIRROR_SOURCES]
    return sorted(found)
