#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: registry_push
short_description: Copy images into a registry with skopeo where it does not hold them, and read their digests
version_added: 0.1.0
description:
  - For each image, compares its configuration with the one the registry holds under its name, copies it with
    C(skopeo copy) where the registry lacks the name or holds another image, and returns the digest the
    registry holds for each name - the value to pin (C(HOST:PORT/REPOSITORY@sha256:...)).
  - Compared by configuration (the image's layers and settings), not by manifest, which skopeo may store in
    another form than the archive's.
  - Why a module rather than C(command) tasks - each look was a module run per image, one after the other on
    the controller while every host of the play waited (~7 s of every run of the lab's C(site.yml) for two
    images).
  - The account is written to an auth file in a private temporary directory (not on the command line, where
    C(ps) shows it), removed when the module ends.
options:
  endpoint:
    description: The registry, C(HOST:PORT).
    type: str
    required: true
  images:
    description: The images to put in.
    type: list
    elements: dict
    required: true
    suboptions:
      source:
        description: Anything skopeo reads, e.g. C(docker-archive:FILE), C(oci-archive:FILE).
        type: str
        required: true
      name:
        description: C(REPOSITORY:TAG) in the registry.
        type: str
        required: true
  username:
    description: The registry account that pushes.
    type: str
    required: true
  password:
    description: Its password.
    type: str
    required: true
  ca_file:
    description: The CA the registry's certificate is checked against. Without it, the system's trusted CAs.
    type: path
attributes:
  check_mode:
    support: full
    description: Copies nothing; reports C(changed) and a null digest for each image it would copy.
requirements:
  - skopeo where the module runs (the controller, with C(delegate_to) C(localhost))
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Put the engine's image into the site's registry
  llmfleet.cluster.registry_push:
    endpoint: registry.example.com:5000
    images:
      - {source: "docker-archive:/srv/images/llamacpp-b1.tar", name: "engines/llamacpp:b1"}
    username: pusher
    password: "{{ vault_registry_password }}"
    ca_file: /etc/llmfleet/ca/ca.crt
  delegate_to: localhost
  run_once: true
  register: pushed
"""

RETURN = r"""
pushed:
  description: Each name's digest in the registry (V(null) for an image check mode did not copy).
  returned: success
  type: dict
  sample: {"engines/llamacpp:b1": "sha256:5f0c3a8e0d0ab4f3ff39a8c4a4e8f4c2d1b6a7e9f0b1c2d3e4f5a6b7c8d9e0f1"}
copied:
  description: The names copied (in check mode, those that would be).
  returned: success
  type: list
  elements: str
  sample: ["engines/llamacpp:b1"]
"""

import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmfleet.cluster.plugins.module_utils import registry_push


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoint=dict(type="str", required=True),
            images=dict(type="list", elements="dict", required=True,
                        options=dict(source=dict(type="str", required=True), name=dict(type="str", required=True))),
            username=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            ca_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not module.get_bin_path("skopeo"):
        module.fail_json(msg="skopeo not found: registry_push copies images with it (Debian's package skopeo)")
    directory = tempfile.mkdtemp(prefix="llmfleet-push-")
    try:
        auth_file, cert_dir = registry_push.write_access(directory, p["endpoint"], p["username"], p["password"],
                                                         p["ca_file"])
        result = registry_push.push(module.run_command, p["images"], p["endpoint"], auth_file,
                                    cert_dir, check_mode=module.check_mode)
    except (registry_push.PushError, OSError) as exc:
        module.fail_json(msg=to_native(exc))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    module.exit_json(changed=bool(result["copied"]), **result)


if __name__ == "__main__":
    main()
