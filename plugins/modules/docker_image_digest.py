#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: docker_image_digest
short_description: What an image tag names in its registry now, and whether the node holds it, without pulling
version_added: 0.1.0
description:
  - Asks the node's Docker engine for the digest the registry's tag names now (the engine fetches it with
    its own registry trust and the node's login; nothing is downloaded) and looks whether the node
    already holds that image.
  - For check mode, where community.docker.docker_image_pull with C(pull=always) reports every tag as
    changed without asking the registry; the model_server role uses it there instead of the pull.
  - A reference with a digest (C(REPOSITORY@sha256:...)) is not asked about, since it names one image for good.
options:
  name:
    description: The image reference, C(REGISTRY/REPOSITORY:TAG) or C(REPOSITORY@sha256:...).
    type: str
    required: true
attributes:
  check_mode:
    support: full
    description: >-
      Changes nothing either way. In check mode it reports C(changed) when a pull would change the node
      (the tag names an image the node does not hold), as the pull it stands in for would.
requirements:
  - the Docker SDK for Python (Debian's python3-docker) on the node
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Say whether a pull of the engine's image would change the node
  llmfleet.cluster.docker_image_digest:
    name: registry.example.com:5000/engines/vllm:v0.6.3
  register: engine_image
  when: ansible_check_mode
"""

RETURN = r"""
digest:
  description: The digest the reference names (C(sha256:...)).
  returned: success
  type: str
repo_digest:
  description: C(REPOSITORY@sha256:...), the reference pinned to that digest.
  returned: success
  type: str
present:
  description: The node holds that image.
  returned: success
  type: bool
pull_needed:
  description: A pull would change the node (the opposite of I(present)).
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_image

try:
    import docker
    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False


def main():
    module = AnsibleModule(argument_spec=dict(name=dict(type="str", required=True)), supports_check_mode=True)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (python3-docker)"))
    try:
        client = docker.from_env()
        result = docker_image.registry_digest(client, module.params["name"], not_found=(docker.errors.ImageNotFound,))
    except docker_image.ImageDigestError as exc:
        module.fail_json(msg=to_native(exc))
    except docker.errors.DockerException as exc:
        module.fail_json(msg="%s: the Docker engine did not answer: %s" % (module.params["name"], to_native(exc)))
    module.exit_json(changed=bool(module.check_mode and result["pull_needed"]), **result)


if __name__ == "__main__":
    main()
