# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Whether a virtualenv satisfies a list of requirements, read from the metadata of the distributions
installed in it - what pip itself reads to say "Requirement already satisfied" - without running pip.

Why: a no-op `pip install` (ansible.builtin.pip) starts pip, reads its configuration and the site's
package index or links page, and resolves every dependency again, on every run of every native model
node: ~1.3 s on a lab node for an engine with no dependencies, seconds more for vLLM's ~150. This look
costs one module run; pip runs only where something is missing or at another version."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


def canonical(name):
    """A distribution's name as PEP 503 compares them (Foo_Bar.baz -> foo-bar-baz)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _wanted(requirement, environment, extras):
    """Whether a requirement applies: its marker, for one of the extras asked of its parent ('' for none)."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate(dict(environment, extra=extra)) for extra in (extras or {""}))


def unmet(requirements, installed, environment, parse):
    """What keeps the installed distributions from satisfying the requirements, dependencies included.

    requirements: as pip takes them: PEP 508 strings, or a wheel's path or a URL, which only pip can
    answer for (each a problem, so that pip runs). installed: canonical name -> (version, [its
    Requires-Dist strings]). environment: the interpreter's marker environment. parse: a requirement
    string -> packaging's Requirement (injected: the node's packaging, the controller's in tests).
    Returns one line per problem, in the order found; [] when everything is there at a version pip would
    accept as installed (pre-releases included, as pip compares an installed version)."""
    problems, seen, queue = [], set(), []
    for text in requirements:
        try:
            requirement = parse(text)
        except ValueError:   # packaging's InvalidRequirement: a wheel's path, a directory, an option
            requirement = None
        if requirement is None or requirement.url:
            # What such an entry installs is known only to pip, which then runs and decides.
            problems.append("%s: not a name and version to compare (a path, a URL): pip decides" % text)
        else:
            queue.append((requirement, {""}, None))
    while queue:
        requirement, parent_extras, parent = queue.pop(0)
        if not _wanted(requirement, environment, parent_extras):
            continue
        name = canonical(requirement.name)
        key = (name, str(requirement.specifier), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        wanted_by = " (wanted by %s)" % parent if parent else ""
        if name not in installed:
            problems.append("%s is not installed%s" % (requirement, wanted_by))
            continue
        version, requires = installed[name]
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append("%s is installed at %s%s" % (requirement, version, wanted_by))
            continue
        extras = set(requirement.extras) | {""}
        for text in requires or []:
            queue.append((parse(text), extras, "%s %s" % (name, version)))
    return problems


def read_installed(distributions):
    """canonical name -> (version, requires) from importlib.metadata distributions; the first of a name
    wins, as on sys.path."""
    installed = {}
    for dist in distributions:
        name = dist.metadata["Name"]
        if name and canonical(name) not in installed:
            installed[canonical(name)] = (dist.version, list(dist.requires or []))
    return installed


def venv_python_version(pyvenv_cfg):
    """'3.11' from a pyvenv.cfg's text (its `version` or `version_info` line), or None."""
    for line in pyvenv_cfg.splitlines():
        key, _sep, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            found = re.match(r"\s*(\d+)\.(\d+)", value)
            if found:
                return "%s.%s" % found.groups()
    return None
