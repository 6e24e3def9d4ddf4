import os

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import nvidia

# Seen on the lent H100 machine (open module) and on a proprietary-driver host.
PROC_OPEN = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \nGCC version:  gcc version 15.3.0 (GCC)"
PROC_PROPRIETARY = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.216.01  Tue Sep 24 23:12:24 UTC 2024\nGCC version:  gcc 12.2.0"
LDCONFIG = """\t1234 libs found in cache `/etc/ld.so.cache'
\tlibnvidia-ml.so.1 (libc6) => /usr/lib/i386-linux-gnu/libnvidia-ml.so.1
\tlibnvidia-ml.so.1 (libc6,x86-64) => /usr/local/nvidia/lib64/libnvidia-ml.so.1
\tlibnvidia-ml.so (libc6,x86-64) => /usr/local/nvidia/lib64/libnvidia-ml.so
"""


def make_device(root, name, vendor, pci_class, device="0x2330", driver=None):
    path = root / name
    path.mkdir(parents=True)
    (path / "vendor").write_text(vendor + "\n")
    (path / "device").write_text(device + "\n")
    (path / "class").write_text(pci_class + "\n")
    if driver:
        target = root / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        os.symlink(str(target), str(path / "driver"))


def test_gpus_found_in_sysfs_and_other_functions_ignored(tmp_path):
    devices = tmp_path / "devices"
    make_device(devices, "0000:00:01.0", "0x1af4", "0x018000", driver="virtio-pci")   # virtio disk
    make_device(devices, "0000:00:06.0", "0x10de", "0x030200", driver="nvidia")       # H100: 3D controller
    make_device(devices, "0000:3b:00.0", "0x10de", "0x030000", device="0x2684")        # RTX 4090: VGA, no driver yet
    make_device(devices, "0000:3b:00.1", "0x10de", "0x040300", device="0x22ba")        # its HDMI audio
    make_device(devices, "0000:c4:00.0", "0x10de", "0x068000", device="0x22a3")        # NVSwitch: a bridge
    gpus = nvidia.nvidia_gpus(nvidia.scan_pci(str(devices)))
    assert gpus == [
        {"address": "0000:00:06.0", "vendor_id": "10de", "device_id": "2330", "pci_class": "0302", "driver": "nvidia"},
        {"address": "0000:3b:00.0", "vendor_id": "10de", "device_id": "2684", "pci_class": "0300", "driver": ""},
    ]


def test_no_gpu_and_no_sysfs():
    assert nvidia.nvidia_gpus(nvidia.scan_pci("/nonexistent")) == []


def test_kernel_module_version_and_flavor():
    assert nvidia.kernel_module_version(PROC_OPEN) == "580.159.04"
    assert nvidia.kernel_module_flavor(PROC_OPEN) == "open"
    assert nvidia.kernel_module_version(PROC_PROPRIETARY) == "535.216.01"
    assert nvidia.kernel_module_flavor(PROC_PROPRIETARY) == "proprietary"
    assert nvidia.kernel_module_version("") == "" and nvidia.kernel_module_flavor("") == ""
    assert nvidia.kernel_module_version("garbage") == ""


def test_library_version_from_the_real_file_name():
    assert nvidia.ldconfig_library(LDCONFIG) == "/usr/local/nvidia/lib64/libnvidia-ml.so.1"
    assert nvidia.ldconfig_library("") == ""
    assert nvidia.library_version("/usr/local/nvidia/lib64/libnvidia-ml.so.580.159.04") == "580.159.04"
    assert nvidia.library_version("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1") == ""


def test_versions_match_and_mismatch():
    assert nvidia.versions_match("580.159.04", "580.159.04") is True
    assert nvidia.versions_match("535.183.01", "535.216.01") is False
    assert nvidia.versions_match("", "535.216.01") is None
    assert nvidia.versions_match("535.216.01", "") is None


def test_smi_rows():
    text = "0, NVIDIA H100 80GB HBM3, GPU-372f, 580.159.04, 81559, Enabled, 00000000:00:06.0\n"
    assert nvidia.parse_smi_csv(text) == [{"index": "0", "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-372f",
                                           "driver_version": "580.159.04", "memory_total": "81559",
                                           "persistence_mode": "Enabled", "pci_bus_id": "00000000:00:06.0"}]
    with pytest.raises(ValueError, match="7 were asked"):
        nvidia.parse_smi_csv("0, only, three\n")


def test_secure_boot_state():
    assert nvidia.secure_boot_state(b"\x06\x00\x00\x00\x01") == "enabled"
    assert nvidia.secure_boot_state(b"\x06\x00\x00\x00\x00") == "disabled"
    assert nvidia.secure_boot_state(None) == "unknown"
    assert nvidia.secure_boot_state(b"\x06") == "unknown"


@pytest.mark.parametrize("gpu,module,library,nouveau,reason", [
    (False, "", "", False, ""),                                    # no GPU: never
    (True, "580.159.04", "580.159.04", False, ""),                # in step
    (True, "535.183.01", "535.216.01", False, "kernel module 535.183.01 is loaded but the installed driver is 535.216.01"),
    (True, "", "535.216.01", False, "driver 535.216.01 is installed but its kernel module is not loaded"),
    (True, "", "535.216.01", True, "nouveau is loaded and holds the GPU"),
    (True, "", "", False, ""),                                      # nothing installed yet (check mode)
])
def test_reboot_reasons(gpu, module, library, nouveau, reason):
    assert nvidia.needs_reboot(gpu, module, library, nouveau) == reason


def test_debian_distribution_plan():
    plan = nvidia.driver_plan("Debian", "12.7", "6.1.0-26-amd64", "distribution", "535", "535.216.01")
    assert plan["packages"] == ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "firmware-misc-nonfree"]
    assert plan["hold"] == ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi"]
    assert plan["pin"] == "535.216.01-*"
    assert plan["builds_module"] is True
    assert plan["headers_package"] == "linux-headers-6.1.0-26-amd64"
    assert "nvidia-*" in plan["pin_packages"] and "libcuda*" in plan["pin_packages"]


def test_debian_open_modules_and_branch_pin():
    plan = nvidia.driver_plan("Debian", "12", "6.1.0-26-amd64", "distribution", "535", flavor="open")
    assert plan["packages"][1] == "nvidia-open-kernel-dkms" and plan["pin"] == "535.*"


def test_ubuntu_signed_prebuilt_modules_need_no_headers():
    plan = nvidia.driver_plan("Ubuntu", "22.04", "5.15.0-122-generic", "distribution", "550")
    assert plan["packages"] == ["nvidia-driver-550-server", "linux-modules-nvidia-550-server-generic"]
    assert plan["builds_module"] is False and plan["headers_package"] == ""
    assert plan["repository_path"] == "ubuntu2204"


def test_ubuntu_open_on_another_kernel_flavour():
    plan = nvidia.driver_plan("Ubuntu", "24.04", "6.8.0-1015-nvidia", "distribution", "570", flavor="open")
    assert plan["packages"] == ["nvidia-driver-570-server-open", "linux-modules-nvidia-570-server-open-nvidia"]


def test_ubuntu_dkms():
    plan = nvidia.driver_plan("Ubuntu", "24.04", "6.8.0-45-generic", "distribution", "570", ubuntu_signed_modules=False)
    assert plan["packages"] == ["nvidia-driver-570-server", "nvidia-dkms-570-server"]
    assert plan["builds_module"] is True and plan["headers_package"] == "linux-headers-6.8.0-45-generic"


@pytest.mark.parametrize("distribution,version,path", [("Debian", "12", "debian12"), ("Ubuntu", "22.04", "ubuntu2204"),
                                                       ("Ubuntu", "24.04", "ubuntu2404")])
@pytest.mark.parametrize("source", ["cuda_repository", "mirror"])
def test_nvidia_repository_metapackages(distribution, version, path, source):
    proprietary = nvidia.driver_plan(distribution, version, "6.1.0-26-amd64", source, "550", "550.163.01")
    assert proprietary["packages"] == ["cuda-drivers-550"] and proprietary["hold"] == ["cuda-drivers-550"]
    assert proprietary["pin"] == "550.163.01-*" and proprietary["repository_path"] == path
    assert proprietary["builds_module"] is True
    assert nvidia.driver_plan(distribution, version, "6.1.0-26-amd64", source, "570", flavor="open")["packages"] == ["nvidia-open-570"]


@pytest.mark.parametrize("args,message", [
    (("Debian", "11", "5.10.0-1-amd64", "distribution", "535"), "Debian 11 is not supported"),
    (("Rocky", "9", "5.14", "distribution", "535"), "Rocky 9 is not supported"),
    (("Debian", "12", "k", "apt", "535"), "nvidia_driver_source: 'apt'"),
    (("Debian", "12", "k", "distribution", "latest"), "nvidia_driver_branch: 'latest'"),
    (("Debian", "12", "k", "distribution", "535", "535"), "nvidia_driver_version: '535' is not a driver version"),
    (("Debian", "12", "k", "distribution", "535", "550.163.01"), "550.163.01 is not on branch 535"),
    (("Debian", "12", "k", "distribution", "535", "", "free"), "nvidia_driver_flavor: 'free'"),
])
def test_bad_input_names_the_variable(args, message):
    with pytest.raises(ValueError, match=message):
        nvidia.driver_plan(*args)
