# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Images into a registry with skopeo (Debian's): copied where the registry lacks the name or holds another
image under it, then the digest the registry holds for each name.

Why one module rather than tasks: each look was a command task per image (the image's configuration
here, the name's in the registry, the digest), a module run each - on the controller, one after the
other, while every host of the play waited: ~6 s of every run of site.yml on the lab, for three images.

Images are compared by their configuration (the image's identity: its layers' digests and its settings),
not by manifest: skopeo may store another manifest than the archive's own (another compression, another
manifest type), so the manifest of the same image differs between here and the registry.

The command runner is passed in, so the logic is tested without skopeo or a registry.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import shutil


class PushError(Exception):
    pass


def write_access(directory, endpoint, username, password, ca_file=None):
    """The account and the CA skopeo is given, in directory (private: the caller's temporary directory).
    The account goes in an auth file, not on the command line (where ps shows it); the CA directory holds
    nothing but the CA (skopeo reads every *.crt in it as one). Returns (auth file, CA directory)."""
    auth_file = os.path.join(directory, "auth.json")
    token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
    fd = os.open(auth_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"auths": {endpoint: {"auth": token}}}, out)
    cert_dir = os.path.join(directory, "certs")
    os.mkdir(cert_dir, 0o700)
    if ca_file:
        shutil.copyfile(ca_file, os.path.join(cert_dir, "ca.crt"))
    return auth_file, cert_dir


def _config(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def push(run, images, endpoint, auth_file, cert_dir, check_mode=False):
    """For each image ({name: REPOSITORY:TAG, source: anything skopeo reads}): its configuration here and
    under its name in the registry; copied when the registry lacks the name or holds another image (not
    in check mode); then the digest the registry holds (None for an image check mode did not copy).
    run(argv) -> (rc, stdout, stderr). Returns {"copied": [names], "pushed": {name: digest}}."""
    access = ["--authfile=" + auth_file, "--cert-dir=" + cert_dir]
    copied, pushed = [], {}
    for image in images:
        name, source = image["name"], image["source"]
        target = "docker://%s/%s" % (endpoint, name)
        rc, here, err = run(["skopeo", "inspect", "--raw", "--config", source])
        if rc != 0 or _config(here) is None:
            raise PushError("%s: cannot read the image %s: %s" % (name, source, (err or here).strip()))
        # Not there yet, or not readable: both mean a copy (which fails with the registry's own message).
        rc, held, _err = run(["skopeo", "inspect", "--raw", "--config"] + access + [target])
        if rc != 0 or _config(held) != _config(here):
            copied.append(name)
            if check_mode:
                pushed[name] = None
                continue
            rc, out, err = run(["skopeo", "copy", "--quiet", "--dest-authfile=" + auth_file,
                                "--dest-cert-dir=" + cert_dir, source, target])
            if rc != 0:
                raise PushError("%s: skopeo copy to %s failed (rc %d): %s" % (name, endpoint, rc, (err or out).strip()))
        rc, digest, err = run(["skopeo", "inspect", "--format={{.Digest}}"] + access + [target])
        if rc != 0 or not digest.strip().startswith("sha256:"):
            raise PushError("%s: cannot read its digest in %s: %s" % (name, endpoint, (err or digest).strip()))
        pushed[name] = digest.strip()
    return {"copied": copied, "pushed": pushed}
