# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""What a pull of an image reference would bring to a node, asked through the node's Docker engine
without pulling (plugins/modules/docker_image_digest.py).

community.docker's docker_image_pull cannot tell in check mode: with pull=always it reports every tag
as changed (its documentation says so), so a --check of a converged fleet showed a change on every
container node on every run. The engine answers the question itself (API /distribution/NAME/json, the
docker SDK's images.get_registry_data): the digest the registry's tag names now, fetched by the daemon
with its own registry trust (/etc/docker/certs.d) and the node's login, and nothing is downloaded."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.llmfleet.cluster.plugins.module_utils.serving import image_repository

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ImageDigestError(Exception):
    pass


def _digests(attrs):
    return {str(entry).partition("@")[2] for entry in (attrs or {}).get("RepoDigests") or []}


def registry_digest(client, reference, not_found=(LookupError,)):
    """{digest, repo_digest, present, pull_needed} of `reference` (a tag, or REPOSITORY@sha256:...).

    client: a docker SDK DockerClient (images.get_registry_data(ref).id, images.get(ref).attrs).
    not_found: the exception types meaning "the node has no such image" (docker.errors.ImageNotFound).
    present: the node holds the image the reference names now (one of its RepoDigests is that digest);
    pull_needed: not present (a pull would download or re-tag it)."""
    reference = str(reference)
    if "@" in reference:
        digest = reference.split("@", 1)[1]
        if not DIGEST.match(digest):
            raise ImageDigestError("%s: %r is not a sha256 digest" % (reference, digest))
    else:
        try:
            digest = str(client.images.get_registry_data(reference).id)
        except Exception as exc:  # pylint: disable=broad-except  # the SDK's API and connection errors
            raise ImageDigestError("%s: the registry did not say what it names: %s" % (reference, exc))
        if not DIGEST.match(digest):
            raise ImageDigestError("%s: the registry answered %r, not a sha256 digest" % (reference, digest))
    try:
        present = digest in _digests(client.images.get(reference).attrs)
    except not_found:
        present = False
    return {"digest": digest, "repo_digest": "%s@%s" % (image_repository(reference), digest),
            "present": present, "pull_needed": not present}
