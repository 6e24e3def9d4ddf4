#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: verified_files
short_description: Check large files against their SHA-256 without reading them on every run; put verified copies in place
version_added: 0.1.0
description:
  - Checks each file against its expected SHA-256. A file is read only when it is not the file hashed
    before - its size, modification and change times, inode or device differ from the stamp kept for
    its path in O(stamps) - or with O(rehash). Any write, truncation, chmod, chown or replacement of the
    file changes its change time, which no system call sets back, so a file that matches its stamp holds
    the bytes that were hashed.
  - An entry with O(files[].source) puts that copy at O(files[].path) only if the copy's SHA-256 is the
    expected one (one rename, atomic on one filesystem), and stamps it; a copy that does not match fails
    the task and leaves both files as they were.
  - Why not C(ansible.builtin.stat) with C(checksum_algorithm) or C(ansible.builtin.get_url) with
    C(checksum) - both read the whole file on every run. For model weights that read is the run (~140 GB
    for a 70B model in 16 bits, minutes of disk per node) in every no-op run and before every rolling
    update.
  - Bits changed beneath the filesystem (a failing disk) keep the stamp; run with O(rehash) to read
    every file again (an audit).
options:
  files:
    description: The files, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      sha256:
        description: Its expected SHA-256, 64 hexadecimal digits.
        type: str
        required: true
      source:
        description:
          - A copy (on the same filesystem) to put at O(files[].path) if its SHA-256 is O(files[].sha256).
            Without it the file is only checked.
        type: path
      mode:
        description: Octal permissions given to O(files[].source) before it is put in place.
        type: str
  stamps:
    description: Where the stamps are kept (one JSON file; created with its directory).
    type: path
    default: /var/lib/llmfleet/verified-files.json
  rehash:
    description: Read every file again, whatever its stamp says.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Checks and hashes as a real run would; moves nothing and writes no stamp.
  diff_mode:
    support: none
    description: Not supported.
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Check the local copies of the models
  llmfleet.cluster.verified_files:
    files:
      - path: /srv/models/smollm2/SmolLM2-135M-Instruct-Q4_K_M.gguf
        sha256: 5d8a6b6c0a7c4f0e4f1b0b0c2f7c1d6b0b6b7c3f2b1f9b8e7e6f5d4c3b2a1908
  register: local_copies

- name: Put a fetched copy in place once it verifies
  llmfleet.cluster.verified_files:
    files:
      - path: /srv/models/smollm2/SmolLM2-135M-Instruct-Q4_K_M.gguf
        source: /srv/models/smollm2/SmolLM2-135M-Instruct-Q4_K_M.gguf.partial
        sha256: 5d8a6b6c0a7c4f0e4f1b0b0c2f7c1d6b0b6b7c3f2b1f9b8e7e6f5d4c3b2a1908
        mode: "0644"
"""

RETURN = r"""
files:
  description: One entry per file, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    state:
      description:
        - C(verified) (its SHA-256 is the expected one), C(different), C(missing), or C(placed) (the source
          was put there; in check mode, would be).
      type: str
    hashed:
      description: Whether the file was read this run (false when its stamp matched).
      type: bool
    sha256:
      description: The file's SHA-256 (read, or from its stamp); absent for a missing file.
      type: str
  sample:
    - {path: /srv/models/smollm2/model.gguf, state: verified, hashed: false, sha256: 5d8a6b6c0a7c4f0e4f1b0b0c2f7c1d6b0b6b7c3f2b1f9b8e7e6f5d4c3b2a1908}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmfleet.cluster.plugins.module_utils import verified_files


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True, "options": {
                "path": {"type": "path", "required": True},
                "sha256": {"type": "str", "required": True},
                "source": {"type": "path"},
                "mode": {"type": "str"},
            }},
            "stamps": {"type": "path", "default": verified_files.DEFAULT_STAMPS},
            "rehash": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        changed, results = verified_files.run(params["files"], params["stamps"], params["rehash"], module.check_mode)
    except verified_files.VerifiedFilesError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, files=results)


if __name__ == "__main__":
    main()
