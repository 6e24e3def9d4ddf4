# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Large files (model weights) checked against their SHA-256 without reading them again on every run,
and verified copies put in place: the verified_files module.

Why: ansible.builtin.stat with a checksum and get_url with `checksum:` read the whole file on every run
to compare its SHA-256. For model weights that read is the run: a 70B model in 16 bits is ~140 GB, two to
five minutes of disk per node at 0.5-1 GB/s, in every no-op site.yml and before every rolling update (the
weights are staged before the first zone), on every node at once, and on the model store for each model
it holds.

A file is hashed again only when it is not the file that was hashed: a stamp per path (one JSON file on
the host) keeps the SHA-256 with the size, modification and change times (ns), inode and device the file
had when it was hashed. A write, a truncation, a chmod or chown, a rename over the path or a new file in
its place changes the change time, which no system call sets back (only the clock), so a file whose stat
matches its stamp holds the bytes that were hashed. What a stamp cannot see - bits changed beneath the
filesystem (a failing disk) - a run with rehash: true finds: it reads every file again.

File times come from a coarse clock (a tick, 1-10 ms; a second on some filesystems), so a write right
after the file was hashed could leave the same change time. A stamp is therefore taken only once the
file's change time is RACY_NS in the past (waiting out the rest, at most that long, for a file changed
just before), and only if the file's stat did not change while it was read: any later write then gets a
later change time (the racy-clean problem Git's index has, solved the same way).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import time

from ansible_collections.llmfleet.cluster.plugins.module_utils import config_files

DEFAULT_STAMPS = "/var/lib/llmfleet/verified-files.json"
BLOCK = 8 * 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")
STAMP_VERSION = 1
# Older than this, a file's change time cannot be shared by a later write (see the docstring).
RACY_NS = 2 * 10 ** 9


class VerifiedFilesError(Exception):
    pass


def sha256_of(path, block=BLOCK):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(block)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def identity(st):
    """What a stamp compares: any change of the file's bytes changes one of these (see the docstring)."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "ino": st.st_ino, "dev": st.st_dev}


def matches(stamp, st):
    """Whether the file (its stat st) is still the one the stamp was taken of."""
    now = identity(st)
    return dict((key, stamp.get(key)) for key in now) == now


def normalise(items):
    """The module's `files` entries, checked before anything is read on the host: path (absolute),
    sha256 (64 hex digits, any case), source (absolute, optional), mode (octal string, only with source)."""
    specs, seen = [], set()
    for item in items:
        path = item.get("path")
        if not path or not os.path.isabs(path):
            raise VerifiedFilesError("path must be absolute, got %r" % (path,))
        if path in seen:
            raise VerifiedFilesError("%s is listed twice" % path)
        seen.add(path)
        expected = str(item.get("sha256") or "").lower()
        if not SHA256.match(expected):
            raise VerifiedFilesError("%s: sha256 must be 64 hexadecimal digits, got %r" % (path, item.get("sha256")))
        source, mode = item.get("source"), item.get("mode")
        if source is not None and not os.path.isabs(source):
            raise VerifiedFilesError("%s: source must be absolute, got %r" % (path, source))
        if mode is not None:
            if source is None:
                raise VerifiedFilesError("%s: mode is applied to a source put in place; give source too" % path)
            try:
                mode = config_files.parse_mode(mode, path)
            except config_files.ConfigFilesError as exc:
                raise VerifiedFilesError(str(exc))
        specs.append({"path": path, "sha256": expected, "source": source, "mode": mode})
    return specs


def load_stamps(path):
    """The stamps file's entries by path; a missing, unreadable or foreign file counts as no stamps
    (every file is then hashed, which is always safe)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != STAMP_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return dict((key, value) for key, value in data["files"].items() if isinstance(value, dict))


def save_stamps(path, stamps):
    """Written beside itself and renamed into place: a run cut short leaves the old stamps or the new."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".verified-files.")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump({"version": STAMP_VERSION, "files": stamps}, out, indent=1, sort_keys=True)
            out.write("\n")
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _stat(path):
    """The file's stat through an open descriptor: on NFS an open revalidates the attributes with the
    server (close-to-open consistency), where a plain stat may answer from the client's attribute cache
    (up to acregmax, 60 s by default) and miss a file the server just replaced."""
    try:
        # O_NONBLOCK: a FIFO in a model's place must not hang the run (it is refused below).
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise VerifiedFilesError("%s: %s" % (path, exc.strerror))
    try:
        st = os.fstat(descriptor)
    finally:
        os.close(descriptor)
    if not stat.S_ISREG(st.st_mode):
        raise VerifiedFilesError("%s: not a regular file" % path)
    return st


def _hash(path, hasher):
    try:
        return hasher(path)
    except (IOError, OSError) as exc:
        raise VerifiedFilesError("%s: cannot be read: %s" % (path, exc.strerror))


class Clock(object):
    """The wall clock (file times come from it) and a sleep; tests pass their own."""

    def __init__(self, now=time.time, sleep=time.sleep):
        self.now, self.sleep = now, sleep


def settle(fresh, clock):
    """The stamps of the files read this call ({path: stamp from the stat before the read}), each kept only
    if the file did not change since. Taken once the newest change time among them is RACY_NS old (one
    wait for all of them; see the module's docstring)."""
    if not fresh:
        return {}
    wait = (max(stamp["ctime_ns"] for stamp in fresh.values()) + RACY_NS) / 1e9 - clock.now()
    if wait > 0:
        clock.sleep(wait)
    settled = {}
    for path, stamp in fresh.items():
        st = _stat(path)
        if st is not None and matches(stamp, st):
            settled[path] = stamp
    return settled


def check_one(spec, stamps, rehash, hasher):
    """The file at spec's path against its expected SHA-256: (result, stamp or None, whether the stamp is
    new: from the stat before this read, to be settled). Hashed only when there is no stamp that matches
    the file as it is now, or with rehash."""
    path = spec["path"]
    st = _stat(path)
    if st is None:
        return {"path": path, "state": "missing", "hashed": False}, None, False
    stamp = stamps.get(path)
    if not rehash and stamp and matches(stamp, st) and stamp.get("sha256"):
        result = {"path": path, "state": "verified" if stamp["sha256"] == spec["sha256"] else "different",
                  "hashed": False, "sha256": stamp["sha256"]}
        return result, stamp, False
    actual = _hash(path, hasher)
    result = {"path": path, "state": "verified" if actual == spec["sha256"] else "different", "hashed": True,
              "sha256": actual}
    if result["state"] != "verified":
        return result, None, False
    return result, dict(identity(st), sha256=actual), True


def place_one(spec, check_mode, hasher):
    """A copy (spec's source) put at spec's path only if its SHA-256 is the expected one: (result, stamp
    or None, whether the stamp is new). The copy that does not match is left where it is, and so is the
    file at path."""
    path, source = spec["path"], spec["source"]
    st = _stat(source)
    if st is None:
        if check_mode:  # the copy a real run would make first does not exist in check mode
            return {"path": path, "state": "placed", "hashed": False, "source": source}, None, False
        raise VerifiedFilesError("%s: the copy to put in place, %s, does not exist" % (path, source))
    actual = _hash(source, hasher)
    if actual != spec["sha256"]:
        raise VerifiedFilesError("%s: the copy %s has SHA-256 %s, expected %s; %s is left as it was"
                                 % (path, source, actual, spec["sha256"], path))
    result = {"path": path, "state": "placed", "hashed": True, "sha256": actual, "source": source}
    if check_mode:
        return result, None, False
    if spec["mode"] is not None:
        os.chmod(source, spec["mode"])
    os.rename(source, path)
    # The rename changed the file's change time: the stamp is taken from the file in place.
    return result, dict(identity(_stat(path)), sha256=actual), True


def model_files(models, root, source_suffix="", mode=None):
    """The verified_files entries of models ({name, file, sha256, ...}: llmfleet_models) kept at
    ROOT/NAME/FILE; with source_suffix, each put in place from ROOT/NAME/FILE + source_suffix (mode given
    to it first)."""
    entries = []
    for model in models:
        path = "%s/%s/%s" % (root.rstrip("/"), model["name"], model["file"])
        entry = {"path": path, "sha256": model["sha256"]}
        if source_suffix:
            entry["source"] = path + source_suffix
            if mode:
                entry["mode"] = mode
        entries.append(entry)
    return entries


def run(items, stamps_path=DEFAULT_STAMPS, rehash=False, check_mode=False, hasher=sha256_of, clock=None):
    """Check (or put in place, for entries with a source) every file; returns (changed, results).
    The stamps of the files listed are brought up to date (dropped for a file missing or different),
    the others are kept unless their file is gone. Raises VerifiedFilesError naming the file; the
    stamps of the files done before it are still saved."""
    specs = normalise(items)
    clock = clock or Clock()
    old = load_stamps(stamps_path)
    stamps = dict((key, value) for key, value in old.items() if os.path.lexists(key))
    results, placed, error, fresh = [], False, None, {}
    try:
        for spec in specs:
            if spec["source"] is not None:
                result, stamp, new = place_one(spec, check_mode, hasher)
                placed = True
            else:
                result, stamp, new = check_one(spec, stamps, rehash, hasher)
            results.append(result)
            stamps.pop(spec["path"], None)
            if new:
                fresh[spec["path"]] = stamp
            elif stamp is not None:
                stamps[spec["path"]] = stamp
    except VerifiedFilesError as exc:
        error = exc
    # In check mode nothing is saved: the new stamps count as they are (whether a real run would write).
    stamps.update(fresh if check_mode else settle(fresh, clock))
    stamps_changed = stamps != old
    if stamps_changed and not check_mode:
        try:
            save_stamps(stamps_path, stamps)
        except (IOError, OSError) as exc:
            raise VerifiedFilesError("%s: the stamps cannot be written: %s" % (stamps_path, exc))
    if error is not None:
        raise error
    return placed or stamps_changed, results
