"""The module on this machine (no GPU, no driver): the path every GPU-less lab host takes.
The parsing behind the GPU path is tested in module_utils/test_nvidia.py; the module itself ran
against a real H100 (docs/gpu-verification.md)."""

from ansible_collections.llmfleet.cluster.plugins.module_utils import nvidia
from ansible_collections.llmfleet.cluster.plugins.modules import nvidia_gpu_info


def test_reports_no_gpu_on_a_machine_without_one(module_runner):
    if nvidia.nvidia_gpus(nvidia.scan_pci()):
        import pytest
        pytest.skip("this machine has an NVIDIA GPU")
    code, result = module_runner(nvidia_gpu_info.main, {"nvidia_smi": "/nonexistent/nvidia-smi"})
    assert code == 0 and not result["changed"]
    assert result["gpu_present"] is False and result["gpus"] == []
    assert result["kernel_module"] == {"loaded": False, "version": "", "flavor": ""}
    assert result["versions_match"] is None
    assert result["nvidia_smi"]["available"] is False
    assert result["secure_boot"] in ("enabled", "disabled", "unknown")


def test_reads_a_fake_gpu_host(monkeypatch, tmp_path, module_runner):
    devices = tmp_path / "devices" / "0000:00:06.0"
    devices.mkdir(parents=True)
    for name, value in (("vendor", "0x10de"), ("device", "0x2330"), ("class", "0x030200")):
        (devices / name).write_text(value)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libnvidia-ml.so.535.216.01").write_text("")
    (lib / "libnvidia-ml.so.1").symlink_to("libnvidia-ml.so.535.216.01")
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'Failed to initialize NVML: Driver/library version mismatch'\nexit 18\n")
    smi.chmod(0o755)
    real_scan, real_read = nvidia.scan_pci, nvidia.read_text
    monkeypatch.setattr(nvidia, "scan_pci", lambda root=None: real_scan(str(tmp_path / "devices")))
    proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun Jun 2 2024"
    monkeypatch.setattr(nvidia, "read_text", lambda path, default="": proc if path == "/proc/driver/nvidia/version"
                        else ("nouveau 1 0 - Live" if path == "/proc/modules" else real_read(path, default)))
    monkeypatch.setattr(nvidia, "ldconfig_library", lambda text, soname="": "")
    code, result = module_runner(nvidia_gpu_info.main, {"nvidia_smi": str(smi), "extra_library_paths": [str(lib)]})
    assert code == 0
    assert result["gpu_present"] and result["gpus"][0]["device_id"] == "2330"
    assert result["kernel_module"]["version"] == "535.183.01" and result["library"]["version"] == "535.216.01"
    assert result["versions_match"] is False
    assert result["nvidia_smi"] == {"available": True, "rc": 18, "gpus": [],
                                    "error": "Failed to initialize NVML: Driver/library version mismatch"}
    assert result["nouveau_loaded"] is True
