# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""NVIDIA driver logic: GPU detection from sysfs, version readings, package selection.

Kept free of Ansible imports below the module boundary so that it can be unit-tested on a
machine without a GPU: every reader takes the text or the directory it parses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

NVIDIA_PCI_VENDOR = 0x10DE
# PCI base class 03 (display): 0300 VGA-compatible (workstation cards), 0302 3D controller
# (data-centre GPUs: A100, H100...). NVSwitches (0680) and audio functions (0403) are not GPUs.
GPU_PCI_CLASSES = (0x0300, 0x0302)

SOURCES = ("distribution", "cuda_repository", "mirror")
FLAVORS = ("proprietary", "open")

# Releases each source is known to carry drivers for. Keys: (distribution id, major version).
SUPPORTED_RELEASES = {
    ("debian", "12"): "debian12",
    ("ubuntu", "22"): "ubuntu2204",
    ("ubuntu", "24"): "ubuntu2404",
}

# Packages carrying the driver's version, which the apt pin applies to. Others that match a glob
# (nvidia-container-toolkit 1.x) have no version matching the pin and keep normal priority.
# Ubuntu's linux-modules-nvidia-* carry the kernel's version and follow the kernel.
DRIVER_PIN_PACKAGES = [
    "nvidia-*", "libnvidia-*", "libcuda*", "libnvcuvid*", "libnvoptix*", "firmware-nvidia-*",
    "xserver-xorg-video-nvidia*", "libglx-nvidia*", "libegl-nvidia*", "libgles-nvidia*", "libgl1-nvidia*",
    "cuda-drivers*",
]

# UEFI variable SecureBoot-<EFI global variable GUID>: 4 attribute bytes, then one data byte.
SECURE_BOOT_EFIVAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

_MODULE_VERSION = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)\b")
_LIBRARY_VERSION = re.compile(r"\.so\.(\d+\.\d+(?:\.\d+)?)$")
_DRIVER_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
_BRANCH = re.compile(r"^\d{3}$")


def read_text(path, default=""):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return default


def scan_pci(root="/sys/bus/pci/devices"):
    """Every PCI function under root as dicts: address, vendor, device, pci_class, driver."""
    devices = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return devices
    for name in names:
        path = os.path.join(root, name)
        try:
            vendor = int(read_text(os.path.join(path, "vendor"), "0x0"), 16)
            device = int(read_text(os.path.join(path, "device"), "0x0"), 16)
            pci_class = int(read_text(os.path.join(path, "class"), "0x0"), 16) >> 8
        except ValueError:
            continue
        driver_link = os.path.join(path, "driver")
        driver = os.path.basename(os.path.realpath(driver_link)) if os.path.islink(driver_link) else ""
        devices.append({"address": name, "vendor": vendor, "device": device, "pci_class": pci_class, "driver": driver})
    return devices


def nvidia_gpus(devices):
    """The NVIDIA GPUs among scan_pci() results, in the shape the module returns."""
    return [
        {
            "address": d["address"],
            "vendor_id": "%04x" % d["vendor"],
            "device_id": "%04x" % d["device"],
            "pci_class": "%04x" % d["pci_class"],
            "driver": d["driver"],
        }
        for d in devices
        if d["vendor"] == NVIDIA_PCI_VENDOR and d["pci_class"] in GPU_PCI_CLASSES
    ]


def kernel_module_version(proc_text):
    """Version from /proc/driver/nvidia/version, '' if none is loaded or the text is unknown."""
    match = _MODULE_VERSION.search(proc_text or "")
    return match.group(1) if match else ""


def kernel_module_flavor(proc_text):
    if not kernel_module_version(proc_text):
        return ""
    return "open" if "Open Kernel Module" in proc_text else "proprietary"


def library_version(path):
    """Version from the real file name of libnvidia-ml (libnvidia-ml.so.550.54.15)."""
    match = _LIBRARY_VERSION.search(os.path.basename(path or ""))
    return match.group(1) if match else ""


def ldconfig_library(ldconfig_text, soname="libnvidia-ml.so.1"):
    """Path of soname in `ldconfig -p` output (64-bit entry first), '' if absent."""
    found = []
    for line in (ldconfig_text or "").splitlines():
        line = line.strip()
        if not line.startswith(soname + " ") or "=>" not in line:
            continue
        found.append((("x86-64" not in line and "64bit" not in line), line.split("=>", 1)[1].strip()))
    return sorted(found)[0][1] if found else ""


SMI_FIELDS = ("index", "name", "uuid", "driver_version", "memory.total", "persistence_mode", "pci.bus_id")


def parse_smi_csv(text, fields=SMI_FIELDS):
    """Rows of `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits` as dicts."""
    rows = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        values = [value.strip() for value in line.split(",")]
        if len(values) != len(fields):
            raise ValueError("nvidia-smi printed %d fields where %d were asked for: %r" % (len(values), len(fields), line))
        rows.append(dict((field.replace(".", "_"), value) for field, value in zip(fields, values)))
    return rows


def secure_boot_state(efivar_bytes):
    """'enabled', 'disabled' or 'unknown' (no UEFI variable: legacy BIOS, or not readable)."""
    if efivar_bytes is None or len(efivar_bytes) < 5:
        return "unknown"
    return "enabled" if bytearray(efivar_bytes)[4] == 1 else "disabled"


def versions_match(module_version, library):
    """None when either side is missing, else whether the loaded module matches userspace.

    A mismatch is what `nvidia-smi` reports as 'Driver/library version mismatch': the package
    was upgraded but the old module is still loaded until the host reboots (or reloads it).
    """
    if not module_version or not library:
        return None
    return module_version == library


def release_key(distribution, version):
    return (str(distribution).lower(), str(version).split(".", 1)[0])


def driver_input_problem(source, branch, version="", flavor="proprietary"):
    """'' when the driver variables fit together, else one sentence naming the variable."""
    if source not in SOURCES:
        return "nvidia_driver_source: %r is not one of %s" % (source, ", ".join(SOURCES))
    if flavor not in FLAVORS:
        return "nvidia_driver_flavor: %r is not one of %s" % (flavor, ", ".join(FLAVORS))
    branch = str(branch)
    if not _BRANCH.match(branch):
        return "nvidia_driver_branch: %r is not a driver branch such as 550 or 570" % (branch,)
    if version:
        if not _DRIVER_VERSION.match(str(version)):
            return "nvidia_driver_version: %r is not a driver version such as 550.163.01" % (version,)
        if str(version).split(".", 1)[0] != branch:
            return "nvidia_driver_version: %s is not on branch %s (nvidia_driver_branch)" % (version, branch)
    return ""


def driver_plan(distribution, distribution_version, kernel_release, source, branch, version="", flavor="proprietary",
                ubuntu_signed_modules=True):
    """What to install for a pinned driver, and what the host needs for it.

    Returns a dict:
      packages: apt packages to install (version chosen by the pin),
      hold: the subset to hold with dpkg,
      pin: apt version pattern every NVIDIA driver package is pinned to,
      pin_packages: the package globs the pin applies to,
      builds_module: whether the kernel module is built on the host (DKMS): then kernel
        headers are needed and Secure Boot needs an enrolled signing key,
      headers_package: the headers package for the running kernel ('' when not needed),
      repository_path: the CUDA repository's path element (debian12, ubuntu2204...).
    Raises ValueError with one sentence naming the variable that is wrong.
    """
    key = release_key(distribution, distribution_version)
    if key not in SUPPORTED_RELEASES:
        raise ValueError("%s %s is not supported by the NVIDIA driver role (supported: Debian 12, Ubuntu 22.04, Ubuntu 24.04)"
                         % (distribution, distribution_version))
    problem = driver_input_problem(source, branch, version, flavor)
    if problem:
        raise ValueError(problem)
    branch = str(branch)
    pin = (version + "-*") if version else (branch + ".*")
    distribution_id = key[0]
    open_suffix = "-open" if flavor == "open" else ""
    builds_module = True
    if source == "distribution" and distribution_id == "debian":
        # Debian ships one branch per release (bookworm: 535) in non-free; the module is built by DKMS.
        kernel_package = "nvidia-open-kernel-dkms" if flavor == "open" else "nvidia-kernel-dkms"
        packages = ["nvidia-driver", kernel_package, "nvidia-smi", "firmware-misc-nonfree"]
        hold = ["nvidia-driver", kernel_package, "nvidia-smi"]
    elif source == "distribution":
        # Ubuntu's -server branches are the data-centre ones. Canonical also ships prebuilt,
        # signed modules per kernel flavour (work under Secure Boot, no headers needed).
        driver = "nvidia-driver-%s-server%s" % (branch, open_suffix)
        if ubuntu_signed_modules:
            flavour = kernel_release.rsplit("-", 1)[-1] if "-" in kernel_release else "generic"
            kernel_package = "linux-modules-nvidia-%s-server%s-%s" % (branch, open_suffix, flavour)
            builds_module = False
        else:
            kernel_package = "nvidia-dkms-%s-server%s" % (branch, open_suffix)
        packages = [driver, kernel_package]
        hold = [driver, kernel_package]
    else:
        # NVIDIA's CUDA repository (or a site mirror of it): one metapackage per branch.
        meta = ("nvidia-open-%s" if flavor == "open" else "cuda-drivers-%s") % branch
        packages = [meta]
        hold = [meta]
    return {
        "packages": packages,
        "hold": hold,
        "pin": pin,
        "pin_packages": DRIVER_PIN_PACKAGES,
        "builds_module": builds_module,
        "headers_package": ("linux-headers-%s" % kernel_release) if builds_module else "",
        "repository_path": SUPPORTED_RELEASES[key],
    }


def needs_reboot(gpu_present, module_version, library, nouveau_loaded):
    """Why the host must reboot to run the installed driver, '' if it need not.

    Loading a module by hand would do when nothing holds the old one, but on a serving node the
    model containers hold /dev/nvidia*; a reboot within the capacity budget is the safe path.
    """
    if not gpu_present:
        return ""
    if nouveau_loaded:
        return "nouveau is loaded and holds the GPU"
    if library and not module_version:
        return "driver %s is installed but its kernel module is not loaded" % library
    if library and module_version != library:
        return "kernel module %s is loaded but the installed driver is %s" % (module_version, library)
    return ""
