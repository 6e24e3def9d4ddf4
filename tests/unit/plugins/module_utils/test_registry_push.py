import json
import os
import stat

import pytest
from ansible_collections.llmfleet.cluster.plugins.module_utils import registry_push

CONFIG_B1 = json.dumps({"architecture": "amd64", "rootfs": {"diff_ids": ["sha256:aaa"]}})
CONFIG_B2 = json.dumps({"architecture": "amd64", "rootfs": {"diff_ids": ["sha256:bbb"]}})
IMAGES = [{"name": "engines/llamacpp:b1", "source": "docker-archive:/srv/b1.tar"},
          {"name": "engines/llamacpp:b2", "source": "docker-archive:/srv/b2.tar"}]


class Skopeo:
    """A registry held in a dict {name: (config, digest)}; sources {source: config}; every call recorded."""

    def __init__(self, sources, held, copy_rc=0):
        self.sources, self.held, self.copy_rc, self.calls = sources, held, copy_rc, []

    def __call__(self, argv):
        self.calls.append(argv)
        assert argv[0] == "skopeo"
        target = argv[-1]
        if argv[1] == "copy":
            if self.copy_rc:
                return self.copy_rc, "", "unauthorized: authentication required"
            name = target.split("/", 3)[-1]
            config = self.sources[argv[-2]]
            self.held[name] = (config, "sha256:" + ("1" if "aaa" in config else "2") * 64)
            return 0, "", ""
        if target.startswith("docker://"):
            name = target.split("/", 3)[-1]
            if name not in self.held:
                return 1, "", "manifest unknown"
            config, digest = self.held[name]
            return 0, (digest + "\n" if argv[2].startswith("--format") else config), ""
        if target not in self.sources:
            return 1, "", "no such file"
        return 0, self.sources[target], ""

    def copies(self):
        return [argv[-1] for argv in self.calls if argv[1] == "copy"]


SOURCES = {"docker-archive:/srv/b1.tar": CONFIG_B1, "docker-archive:/srv/b2.tar": CONFIG_B2}


def test_only_what_the_registry_lacks_or_holds_otherwise_is_copied_and_every_digest_read():
    # b1 there already (same configuration, whitespace aside); b2's name holds another image.
    skopeo = Skopeo(SOURCES, {"engines/llamacpp:b1": (json.dumps(json.loads(CONFIG_B1), indent=2), "sha256:" + "1" * 64),
                              "engines/llamacpp:b2": (CONFIG_B1, "sha256:" + "9" * 64)})
    result = registry_push.push(skopeo, IMAGES, "10.0.0.5:5000", "/w/auth.json", "/w/certs")
    assert result == {"copied": ["engines/llamacpp:b2"],
                      "pushed": {"engines/llamacpp:b1": "sha256:" + "1" * 64, "engines/llamacpp:b2": "sha256:" + "2" * 64}}
    assert skopeo.copies() == ["docker://10.0.0.5:5000/engines/llamacpp:b2"]
    copy = [argv for argv in skopeo.calls if argv[1] == "copy"][0]
    assert "--dest-authfile=/w/auth.json" in copy and "--dest-cert-dir=/w/certs" in copy
    # The registry is always asked with the account and the CA; nothing carries the password.
    for argv in skopeo.calls:
        if argv[-1].startswith("docker://") and argv[1] == "inspect":
            assert "--authfile=/w/auth.json" in argv and "--cert-dir=/w/certs" in argv


def test_a_second_run_copies_nothing():
    skopeo = Skopeo(SOURCES, {})
    first = registry_push.push(skopeo, IMAGES, "r:5000", "a", "c")
    again = registry_push.push(skopeo, IMAGES, "r:5000", "a", "c")
    assert first["copied"] == ["engines/llamacpp:b1", "engines/llamacpp:b2"] and again["copied"] == []
    assert again["pushed"] == first["pushed"]


def test_check_mode_copies_nothing_and_has_no_digest_for_what_it_would_copy():
    skopeo = Skopeo(SOURCES, {"engines/llamacpp:b1": (CONFIG_B1, "sha256:" + "1" * 64)})
    result = registry_push.push(skopeo, IMAGES, "r:5000", "a", "c", check_mode=True)
    assert result == {"copied": ["engines/llamacpp:b2"],
                      "pushed": {"engines/llamacpp:b1": "sha256:" + "1" * 64, "engines/llamacpp:b2": None}}
    assert skopeo.copies() == []


def test_an_unreadable_source_a_refused_copy_and_no_digest_fail_naming_the_image():
    with pytest.raises(registry_push.PushError, match=r"engines/llamacpp:b1: cannot read the image .*no such file"):
        registry_push.push(Skopeo({}, {}), IMAGES, "r:5000", "a", "c")
    with pytest.raises(registry_push.PushError, match=r"b1: skopeo copy to r:5000 failed \(rc 1\): unauthorized"):
        registry_push.push(Skopeo(SOURCES, {}, copy_rc=1), IMAGES, "r:5000", "a", "c")
    skopeo = Skopeo(SOURCES, {"engines/llamacpp:b1": (CONFIG_B1, "garbage")})
    with pytest.raises(registry_push.PushError, match=r"b1: cannot read its digest in r:5000: garbage"):
        registry_push.push(skopeo, IMAGES, "r:5000", "a", "c")


def test_the_access_files_are_private_and_hold_only_the_account_and_the_ca(tmp_path):
    ca = tmp_path / "site-ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    work = tmp_path / "work"
    work.mkdir()
    auth_file, cert_dir = registry_push.write_access(str(work), "r:5000", "pusher", "s3cret", str(ca))
    assert json.loads(open(auth_file).read()) == {"auths": {"r:5000": {"auth": "cHVzaGVyOnMzY3JldA=="}}}
    assert stat.S_IMODE(os.stat(auth_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cert_dir).st_mode) & 0o077 == 0
    assert os.listdir(cert_dir) == ["ca.crt"]
    # Without a CA (a site certificate the system trusts): an empty CA directory.
    other = tmp_path / "other"
    other.mkdir()
    assert os.listdir(registry_push.write_access(str(other), "r:5000", "p", "s")[1]) == []
