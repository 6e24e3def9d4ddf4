import os

from ansible_collections.llmfleet.cluster.plugins.module_utils import sysctl


def make(root, key, value, writable=True):
    path = sysctl.key_path(key, str(root))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o644 if writable else 0o444)
    return path


def test_applies_only_what_differs_and_is_writable(tmp_path):
    make(tmp_path, "net.core.somaxconn", "128")
    make(tmp_path, "net.ipv4.tcp_rmem", "4096\t87380\t6291456")
    settings = {"net.core.somaxconn": 4096, "net.ipv4.tcp_rmem": "4096 87380 6291456", "vm.nonexistent": 1}
    result = sysctl.plan_and_apply(settings, root=str(tmp_path))
    assert result == {"applied": ["net.core.somaxconn"], "unchanged": ["net.ipv4.tcp_rmem"], "not_applied": {},
                      "absent": ["vm.nonexistent"]}
    assert open(sysctl.key_path("net.core.somaxconn", str(tmp_path))).read() == "4096"


def test_check_mode_writes_nothing(tmp_path):
    path = make(tmp_path, "net.core.somaxconn", "128")
    result = sysctl.plan_and_apply({"net.core.somaxconn": 4096}, root=str(tmp_path), check_mode=True)
    assert result["applied"] == ["net.core.somaxconn"]
    assert open(path).read() == "128\n"


def test_not_writable_is_reported_not_failed(tmp_path, monkeypatch):
    make(tmp_path, "kernel.kptr_restrict", "0")
    # As root every file is writable by permission bits; a read-only /proc/sys answers access() with EROFS.
    monkeypatch.setattr(sysctl.os, "access", lambda path, mode: False)
    result = sysctl.plan_and_apply({"kernel.kptr_restrict": 2}, root=str(tmp_path))
    assert result["applied"] == [] and "read-only /proc/sys" in result["not_applied"]["kernel.kptr_restrict"]


def test_rejected_value_is_reported(tmp_path, monkeypatch):
    make(tmp_path, "vm.mmap_rnd_bits", "28")
    real_open = open

    def rejecting_open(path, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(22, "Invalid argument")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", rejecting_open)
    result = sysctl.plan_and_apply({"vm.mmap_rnd_bits": 32}, root=str(tmp_path))
    assert result["not_applied"] == {"vm.mmap_rnd_bits": "the kernel rejects 32 (keeps 28)"}
