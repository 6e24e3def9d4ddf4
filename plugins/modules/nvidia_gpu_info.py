#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: nvidia_gpu_info
short_description: Report a host's NVIDIA GPUs, driver versions and their state
version_added: 0.1.0
description:
  - Finds NVIDIA GPUs from PCI sysfs (vendor 10de, display or 3D controller class), so it answers
    before any driver is installed and on hosts without one.
  - Reads the loaded kernel module's version (C(/proc/driver/nvidia/version)) and the userspace
    library's version (the real file behind C(libnvidia-ml.so.1)) and says whether they match,
    which is what C(nvidia-smi) reports as "Driver/library version mismatch" after an upgrade
    without a reboot.
  - Runs C(nvidia-smi) when it is installed and returns one row per GPU.
  - Reports whether nouveau is loaded and the UEFI Secure Boot state.
  - Changes nothing.
options:
  nvidia_smi:
    description: The nvidia-smi program (name looked up in PATH, or a path).
    type: str
    default: nvidia-smi
  query_smi:
    description: Run nvidia-smi when it is installed.
    type: bool
    default: true
  extra_library_paths:
    description:
      - Directories searched for libnvidia-ml when the dynamic linker cache does not list it
        (drivers installed outside the distribution's library directories).
    type: list
    elements: path
    default: [/usr/local/nvidia/lib64, /usr/lib/x86_64-linux-gnu, /usr/lib64]
extends_documentation_fragment: [llmfleet.cluster.read_only]
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Read the GPU state
  llmfleet.cluster.nvidia_gpu_info:
  register: gpu

- name: Stop on a driver/library mismatch
  ansible.builtin.assert:
    that: gpu.versions_match is not false
    fail_msg: "kernel module {{ gpu.kernel_module.version }} != library {{ gpu.library.version }}"
"""

RETURN = r"""
gpus:
  description: NVIDIA GPUs on the PCI bus.
  returned: always
  type: list
  elements: dict
  sample: [{address: "0000:3b:00.0", vendor_id: "10de", device_id: "2330", pci_class: "0302", driver: nvidia}]
gpu_present:
  description: Whether at least one NVIDIA GPU was found.
  returned: always
  type: bool
kernel_module:
  description: The loaded NVIDIA kernel module (version and flavor are empty when none is loaded).
  returned: always
  type: dict
  sample: {loaded: true, version: "580.159.04", flavor: open}
library:
  description: The userspace driver library libnvidia-ml (path and version empty when absent).
  returned: always
  type: dict
  sample: {path: /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.159.04, version: "580.159.04"}
versions_match:
  description: Whether module and library versions are equal; null when one of them is missing.
  returned: always
  type: bool
nvidia_smi:
  description: Result of nvidia-smi; rows per GPU when it ran.
  returned: always
  type: dict
  sample: {available: true, rc: 0, gpus: [{index: "0", name: NVIDIA H100 80GB HBM3, driver_version: "580.159.04"}], error: ""}
nouveau_loaded:
  description: Whether the nouveau module is loaded (it must not be, for the NVIDIA driver).
  returned: always
  type: bool
secure_boot:
  description: UEFI Secure Boot state, C(enabled), C(disabled) or C(unknown) (legacy BIOS or unreadable).
  returned: always
  type: str
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.cluster.plugins.module_utils import nvidia


def find_library(module):
    rc, out, _err = module.run_command(["ldconfig", "-p"]) if module.get_bin_path("ldconfig") else (1, "", "")
    path = nvidia.ldconfig_library(out) if rc == 0 else ""
    if not path:
        for directory in module.params["extra_library_paths"]:
            candidates = glob.glob(os.path.join(directory, "libnvidia-ml.so.1"))
            if candidates:
                path = candidates[0]
                break
    return os.path.realpath(path) if path else ""


def query_smi(module):
    result = dict(available=False, rc=None, gpus=[], error="")
    program = module.params["nvidia_smi"]
    smi = program if os.path.isabs(program) and os.access(program, os.X_OK) else module.get_bin_path(program)
    if not smi or not module.params["query_smi"]:
        return result
    result["available"] = True
    rc, out, err = module.run_command([smi, "--query-gpu=" + ",".join(nvidia.SMI_FIELDS), "--format=csv,noheader,nounits"])
    result["rc"] = rc
    if rc != 0:
        # e.g. "Failed to initialize NVML: Driver/library version mismatch"
        result["error"] = (out + err).strip()
        return result
    try:
        result["gpus"] = nvidia.parse_smi_csv(out)
    except ValueError as exc:
        result["error"] = str(exc)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi=dict(type="str", default="nvidia-smi"),
            query_smi=dict(type="bool", default=True),
            extra_library_paths=dict(type="list", elements="path",
                                     default=["/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"]),
        ),
        supports_check_mode=True,
    )
    gpus = nvidia.nvidia_gpus(nvidia.scan_pci())
    proc_text = nvidia.read_text("/proc/driver/nvidia/version")
    module_version = nvidia.kernel_module_version(proc_text)
    library_path = find_library(module)
    library_version = nvidia.library_version(library_path)
    efivar = None
    try:
        with open(os.path.join("/sys/firmware/efi/efivars", nvidia.SECURE_BOOT_EFIVAR), "rb") as handle:
            efivar = handle.read()
    except (IOError, OSError):
        pass
    modules = nvidia.read_text("/proc/modules")
    module.exit_json(
        changed=False,
        gpus=gpus,
        gpu_present=bool(gpus),
        kernel_module=dict(loaded=bool(module_version), version=module_version, flavor=nvidia.kernel_module_flavor(proc_text)),
        library=dict(path=library_path, version=library_version),
        versions_match=nvidia.versions_match(module_version, library_version),
        nvidia_smi=query_smi(module),
        nouveau_loaded=any(line.split(" ", 1)[0] == "nouveau" for line in modules.splitlines()),
        secure_boot=nvidia.secure_boot_state(efivar),
    )


if __name__ == "__main__":
    main()
