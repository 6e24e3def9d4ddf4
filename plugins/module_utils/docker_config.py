# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Merging settings into Docker's daemon.json without losing what is already there.

Sites put their own keys in daemon.json (registry mirrors, proxies, address pools) and other
tools add theirs (`nvidia-ctk runtime configure` adds `runtimes.nvidia`). Writing the file from a
template would drop all of them, so llmfleet merges: objects are merged key by key, everything
else (strings, numbers, lists) is replaced by the value asked for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json


class DaemonConfigError(ValueError):
    """The existing file or the requested settings cannot be merged."""


def parse(text, source="daemon.json"):
    """The file's object; {} for an empty or missing file. Refuses anything but a JSON object."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DaemonConfigError("%s is not valid JSON (%s); fix or remove it, llmfleet does not overwrite it" % (source, exc))
    if not isinstance(value, dict):
        raise DaemonConfigError("%s holds a JSON %s, not an object" % (source, type(value).__name__))
    return value


def merge(existing, settings):
    """A new dict: existing with settings merged in (objects recursively, other values replaced)."""
    result = copy.deepcopy(existing)
    for key, value in settings.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def remove(config, paths):
    """A new dict without the given keys; a path is a top-level key or keys joined by '/'
    (runtimes/nvidia). Missing keys are ignored."""
    result = copy.deepcopy(config)
    for path in paths:
        parts = path.split("/")
        node = result
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return result


def render(config):
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def plan(current_text, settings, remove_paths=(), source="daemon.json"):
    """(before, after, changed): changed only when the content differs, not the formatting,
    so that a file laid out by hand is not rewritten for nothing."""
    before = parse(current_text, source)
    after = remove(merge(before, settings), remove_paths)
    return before, after, after != before
