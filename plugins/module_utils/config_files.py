# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Several configuration files (and the directories they live in) brought to their content and
attributes in one call on the node: the config_files module.

Why: ansible.builtin.copy and template cost two round trips per file (a stat, then a file call for the
attributes) and a loop costs that per item. On a converged fleet those round trips are most of a no-op
run: ~3.6 s per file task on the 10-host lab with 2 cores (profile of a no-op site.yml, 2026-12-05),
os_hardening alone wrote 10 files that way. The content is still rendered on the controller (template
lookups); this compares, validates and writes on the node.

All or nothing: every changed file is written to a temporary file beside it and checked by its own
`validate` command first; only when every check passed are they moved into place (each move atomic),
so a set never lands half-written because its fifth file was refused.

A file may name a `backup`: a path kept equal to the file's content as it was before the call (what a
caller restores when the new content proves wrong, e.g. sshd's rollback). It is kept in the same call,
where a separate copy task cost a round trip to every host on every run, and it is not counted as a
change of the call (the files are what the caller manages).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex
import stat
import tempfile

KINDS = ("file", "directory")


class ConfigFilesError(Exception):
    pass


def parse_mode(text, path):
    """An octal mode string ("0644") as an int; anything else is refused, naming the path."""
    text = str(text)
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not text.isdigit() or not 0 <= mode <= 0o7777:
        raise ConfigFilesError("%s: mode must be an octal string such as \"0644\", got %r" % (path, text))
    return mode


def normalise(items, ids):
    """The module's `files` entries as specs: path, state, content (files), mode, uid, gid, validate.
    ids: (kind, name) -> uid or gid, or None when unknown (the module passes pwd/grp lookups).
    Every bad entry is refused before anything is looked at on the node."""
    specs, seen = [], set()
    for item in items:
        path, kind = item.get("path"), item.get("state") or "file"
        if not path or not os.path.isabs(path):
            raise ConfigFilesError("path must be absolute, got %r" % (path,))
        if path in seen:
            raise ConfigFilesError("%s is listed twice" % path)
        seen.add(path)
        if kind not in KINDS:
            raise ConfigFilesError("%s: state must be one of %s, got %r" % (path, ", ".join(KINDS), kind))
        content = item.get("content")
        if kind == "file" and content is None:
            raise ConfigFilesError("%s: a file needs content" % path)
        if kind == "directory" and (content is not None or item.get("validate")):
            raise ConfigFilesError("%s: a directory has no content and no validate" % path)
        backup = item.get("backup")
        if backup is not None and (kind != "file" or not os.path.isabs(backup) or backup == path):
            raise ConfigFilesError("%s: backup must be an absolute path other than the file's, and only for a file, "
                                   "got %r" % (path, backup))
        validate = item.get("validate")
        if validate and "%s" not in validate:
            raise ConfigFilesError("%s: validate must contain %%s (the new content's path): %s" % (path, validate))
        owner, group = item.get("owner") or "root", item.get("group") or "root"
        uid, gid = ids("user", owner), ids("group", group)
        if uid is None or gid is None:
            raise ConfigFilesError("%s: no such %s on this host: %s" % (
                path, "user" if uid is None else "group", owner if uid is None else group))
        mode = parse_mode(item.get("mode") or ("0755" if kind == "directory" else "0644"), path)
        specs.append({"path": path, "state": kind, "content": content, "mode": mode, "uid": uid, "gid": gid,
                      "validate": validate, "backup": backup})
    listed = {spec["path"] for spec in specs}
    for spec in specs:
        if spec["backup"] in listed:
            raise ConfigFilesError("%s: its backup %s is also listed as an entry" % (spec["path"], spec["backup"]))
    return specs


class Node(object):
    """The node's files; tests use it on a temporary directory (chown only where it can)."""

    def current(self, path):
        """None when missing, else {"kind": "file"/"directory"/"other", "mode", "uid", "gid", "content"}."""
        try:
            st = os.lstat(path)
        except OSError:
            return None
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        content = None
        if kind == "file":
            with open(path, "rb") as handle:
                content = handle.read()
        return {"kind": kind, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "content": content}

    def set_attributes(self, path, mode, uid, gid):
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, mode)

    def mkdir(self, path, mode, uid, gid):
        os.mkdir(path, mode)
        self.set_attributes(path, mode, uid, gid)

    def stage(self, path, content, mode, uid, gid):
        """A temporary file beside path with the content and attributes; its path. Named .NAME.XXXX~: a run
        killed before the move leaves a file that the readers of these directories skip (apt.conf.d ignores
        *~, sudoers.d names with a dot or ~, the *.conf directories anything else)."""
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix="~", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            self.set_attributes(tmp, mode, uid, gid)
        except Exception:
            self.discard(tmp)
            raise
        return tmp

    def move(self, tmp, path):
        os.rename(tmp, path)

    def discard(self, tmp):
        if os.path.lexists(tmp):
            os.unlink(tmp)


def differences(spec, current):
    """What differs between a spec and the node's current entry: "created", "content", "mode", "owner"."""
    if current is None:
        return ["created"]
    if current["kind"] != spec["state"]:
        found = "symlink or special file" if current["kind"] == "other" else current["kind"]
        raise ConfigFilesError("%s is a %s on this host, not a %s: left as it is" % (spec["path"], found, spec["state"]))
    found = []
    if spec["state"] == "file" and current["content"] != spec["content"]:
        found.append("content")
    if current["mode"] != spec["mode"]:
        found.append("mode")
    if (current["uid"], current["gid"]) != (spec["uid"], spec["gid"]):
        found.append("owner")
    return found


def _text(data):
    return data.decode("utf-8", "replace") if data is not None else ""


BACKUP_MODE = 0o600


def keep_backup(node, spec, current):
    """Makes spec's backup hold the file's content before this call (mode 0600, the file's owner), or
    removes it where there was no file: a rollback must never restore an older content. current is the
    file as it was (None, or a regular file: differences() refused anything else). Returns whether it
    wrote or removed anything."""
    path = spec["backup"]
    found = node.current(path)
    if found is not None and found["kind"] != "file":
        raise ConfigFilesError("%s: its backup %s is not a regular file: left as it is" % (spec["path"], path))
    if current is None:
        if found is None:
            return False
        node.discard(path)
        return True
    if found == dict(current, mode=BACKUP_MODE):
        return False
    node.move(node.stage(path, current["content"], BACKUP_MODE, current["uid"], current["gid"]), path)
    return True


def apply(specs, node, run, check_mode=False):
    """Bring the node to specs (see normalise; content as bytes). run(argv) -> (rc, out, err) runs a
    validate command. Returns {"changed", "files": [{"path", "changes"}] (the entries that differed),
    "backups": [paths written or removed], "diff": [...] (content changes, for --diff)}. Raises
    ConfigFilesError naming the path that failed."""
    report, diffs, attributes_only, writes, moved, backups = [], [], [], [], [], []
    created_dirs = set()
    for spec in specs:
        path = spec["path"]
        parent = os.path.dirname(path)
        current = None if parent in created_dirs else node.current(path)
        if current is None and parent not in created_dirs and node.current(parent) is None:
            raise ConfigFilesError("%s: its directory %s does not exist (list the directory before it)" % (path, parent))
        if spec.get("backup"):
            backups.append((spec, current))
        changes = differences(spec, current)
        if not changes:
            continue
        report.append({"path": path, "changes": changes})
        if spec["state"] == "directory":
            if current is None:
                created_dirs.add(path)
            if not check_mode:
                # Directories first, whatever comes later: the files staged below may live in them.
                if current is None:
                    node.mkdir(path, spec["mode"], spec["uid"], spec["gid"])
                else:
                    node.set_attributes(path, spec["mode"], spec["uid"], spec["gid"])
            continue
        if "created" in changes or "content" in changes:
            diffs.append({"before_header": path, "after_header": path,
                          "before": _text(current["content"] if current else None), "after": _text(spec["content"])})
            writes.append(spec)
        elif not check_mode:
            attributes_only.append(spec)
    if check_mode:
        return {"changed": bool(report), "files": report, "backups": [], "diff": diffs}
    try:
        for spec in writes:
            tmp = node.stage(spec["path"], spec["content"], spec["mode"], spec["uid"], spec["gid"])
            moved.append((tmp, spec["path"]))
            if spec["validate"]:
                argv = [part.replace("%s", tmp) for part in shlex.split(spec["validate"])]
                rc, out, err = run(argv)
                if rc != 0:
                    raise ConfigFilesError("%s: the new content failed its check (%s, rc %d): %s; no file of this "
                                           "task was changed" % (spec["path"], spec["validate"], rc,
                                                                 (err or out).strip()))
        # Before any file moves: a run stopped between the two leaves the new file with its backup.
        kept = [spec["backup"] for spec, current in backups if keep_backup(node, spec, current)]
    except Exception:
        for tmp, _path in moved:
            node.discard(tmp)
        raise
    for tmp, path in moved:
        node.move(tmp, path)
    for spec in attributes_only:
        node.set_attributes(spec["path"], spec["mode"], spec["uid"], spec["gid"])
    return {"changed": bool(report), "files": report, "backups": kept, "diff": diffs}
