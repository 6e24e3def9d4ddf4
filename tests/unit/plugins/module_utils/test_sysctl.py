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


def _kernel_like_forwarding(tmp_path, monkeypatch):
    """open() for the fake /proc/sys that does what the kernel does when IPv4 forwarding is written:
    conf.all.accept_redirects becomes !forwarding (net/ipv4/devinet.c, inet_forward_change)."""
    real_open = open
    redirects = sysctl.key_path("net.ipv4.conf.all.accept_redirects", str(tmp_path))

    class Writer:
        def __init__(self, path):
            self.path, self.handle = path, real_open(path, "w")

        def __enter__(self):
            return self

        def write(self, text):
            self.handle.write(text)

        def __exit__(self, *exc):
            self.handle.close()
            if self.path.endswith(("ip_forward", "all/forwarding")):
                with real_open(redirects, "w") as handle:
                    handle.write("0" if text_of(self.path) == "1" else "1")

    def text_of(path):
        with real_open(path) as handle:
            return handle.read().strip()

    def fake_open(path, mode="r"):
        return Writer(path) if mode == "w" else real_open(path, mode)

    monkeypatch.setattr(sysctl, "open", fake_open, raising=False)


def test_forwarding_is_written_before_the_keys_it_resets(tmp_path, monkeypatch):
    make(tmp_path, "net.ipv4.ip_forward", "1")
    make(tmp_path, "net.ipv4.conf.all.accept_redirects", "1")
    _kernel_like_forwarding(tmp_path, monkeypatch)
    settings = {"net.ipv4.conf.all.accept_redirects": 0, "net.ipv4.ip_forward": 0}
    first = sysctl.plan_and_apply(settings, root=str(tmp_path))
    assert first["applied"] == ["net.ipv4.conf.all.accept_redirects", "net.ipv4.ip_forward"]
    assert first["not_applied"] == {}
    # A second run finds everything as asked (it re-applied accept_redirects before the fix).
    second = sysctl.plan_and_apply(settings, root=str(tmp_path))
    assert second["applied"] == [] and sorted(second["unchanged"]) == sorted(settings)


def test_a_value_the_kernel_does_not_keep_is_reported(tmp_path, monkeypatch):
    """Some keys accept a write and keep another value (clamped to a limit): not applied."""
    path = make(tmp_path, "net.core.somaxconn", "4096")
    real_open = open

    def clamping_open(name, mode="r"):
        handle = real_open(name, mode)
        if mode == "w":
            original = handle.write
            handle.write = lambda text: original(str(min(int(text), 65535)))
        return handle

    monkeypatch.setattr(sysctl, "open", clamping_open, raising=False)
    result = sysctl.plan_and_apply({"net.core.somaxconn": 100000}, root=str(tmp_path))
    assert result["applied"] == [] and result["unchanged"] == []
    assert result["not_applied"] == {"net.core.somaxconn": "the kernel changed it back to 65535 after it was written"}
    assert real_open(path).read() == "65535"
