"""verified_files on real files: a file is read again only when it is not the file that was hashed."""

import hashlib
import json
import os
import time

import pytest
from ansible_collections.llmfleet.cluster.plugins.module_utils import verified_files as vf

WEIGHTS = b"weights " * 4096


def sha(data):
    return hashlib.sha256(data).hexdigest()


class CountingHasher:
    """The real SHA-256, counting which files were read."""

    def __init__(self):
        self.read = []

    def __call__(self, path):
        self.read.append(path)
        return vf.sha256_of(path, block=1000)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "models" / "m" / "model.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(WEIGHTS)
    return path


class FakeClock(vf.Clock):
    """A wall clock `ahead` seconds ahead of the real one; its sleeps are recorded and move it on."""

    def __init__(self, ahead=10.0):
        self.ahead, self.slept = ahead, []
        super(FakeClock, self).__init__(self._now, self._sleep)

    def _now(self):
        return time.time() + self.ahead

    def _sleep(self, seconds):
        self.slept.append(seconds)
        self.ahead += seconds


def check(path, stamps, expected=sha(WEIGHTS), clock=None, **kwargs):
    """One file checked; by default with a clock far enough ahead that no stamp waits (see the racy tests)."""
    hasher = CountingHasher()
    changed, results = vf.run([{"path": str(path), "sha256": expected}], str(stamps), hasher=hasher,
                              clock=clock or FakeClock(), **kwargs)
    return changed, results[0], hasher.read


def test_a_file_is_hashed_once_then_known_by_its_stamp(model, tmp_path):
    stamps = tmp_path / "state" / "verified.json"
    changed, result, read = check(model, stamps)
    assert (changed, result["state"], result["hashed"], read) == (True, "verified", True, [str(model)])
    assert json.loads(stamps.read_text())["files"][str(model)]["sha256"] == sha(WEIGHTS)
    changed, result, read = check(model, stamps)
    assert (changed, result["state"], result["hashed"], read) == (False, "verified", False, [])
    assert result["sha256"] == sha(WEIGHTS)


def test_the_same_size_and_modification_time_put_back_do_not_hide_a_rewrite(model, tmp_path, monkeypatch):
    """With the real clock: the stamp waits until the file's change time is RACY_NS old (shortened here;
    file times move by a tick, 1-10 ms), so the rewrite right after gets a later change time."""
    monkeypatch.setattr(vf, "RACY_NS", 50 * 10 ** 6)
    stamps = tmp_path / "verified.json"
    check(model, stamps, clock=vf.Clock())
    st = model.stat()
    model.write_bytes(WEIGHTS.replace(b"weights", b"WEIGHTS", 1))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert model.stat().st_size == st.st_size and model.stat().st_mtime_ns == st.st_mtime_ns
    changed, result, read = check(model, stamps)
    assert (result["state"], read, changed) == ("different", [str(model)], True)
    # A different file keeps no stamp: it is read again until it is right.
    assert str(model) not in json.loads(stamps.read_text())["files"]
    assert check(model, stamps)[2] == [str(model)]


def test_a_file_replaced_by_another_is_hashed_again(model, tmp_path):
    stamps = tmp_path / "verified.json"
    check(model, stamps)
    other = model.with_name("other")
    other.write_bytes(WEIGHTS)
    os.rename(other, model)
    changed, result, read = check(model, stamps)
    assert (result["state"], read) == ("verified", [str(model)])
    assert changed  # the stamp names the new inode
    assert check(model, stamps)[2] == []


def test_rehash_reads_every_file_whatever_its_stamp(model, tmp_path):
    stamps = tmp_path / "verified.json"
    check(model, stamps)
    changed, result, read = check(model, stamps, rehash=True)
    assert (changed, result["state"], result["hashed"], read) == (False, "verified", True, [str(model)])


def test_a_missing_file_is_reported_and_its_old_stamp_dropped(model, tmp_path):
    stamps = tmp_path / "verified.json"
    check(model, stamps)
    model.unlink()
    changed, result, read = check(model, stamps)
    assert (changed, result, read) == (True, {"path": str(model), "state": "missing", "hashed": False}, [])
    assert json.loads(stamps.read_text())["files"] == {}


def test_stamps_of_files_not_listed_are_kept_while_their_file_exists(model, tmp_path):
    stamps = tmp_path / "verified.json"
    second = model.with_name("second.gguf")
    second.write_bytes(b"second")
    vf.run([{"path": str(second), "sha256": sha(b"second")}], str(stamps), clock=FakeClock())
    check(model, stamps)
    assert set(json.loads(stamps.read_text())["files"]) == {str(model), str(second)}
    second.unlink()
    check(model, stamps)
    assert set(json.loads(stamps.read_text())["files"]) == {str(model)}


def test_check_mode_hashes_but_writes_no_stamp(model, tmp_path):
    stamps = tmp_path / "verified.json"
    changed, result, read = check(model, stamps, check_mode=True)
    assert (changed, result["state"], read) == (True, "verified", [str(model)])
    assert not stamps.exists()


def test_an_unreadable_or_foreign_stamps_file_counts_as_none(model, tmp_path):
    stamps = tmp_path / "verified.json"
    for text in ("not json", json.dumps({"version": 99, "files": {}}), json.dumps([1, 2])):
        stamps.write_text(text)
        changed, result, read = check(model, stamps)
        assert (changed, result["state"], read) == (True, "verified", [str(model)])
        stamps.write_text(text)


def test_a_stamp_for_another_checksum_is_not_trusted(model, tmp_path):
    """The inventory's checksum changed (a new release of the model under the same name): the stamp's
    SHA-256 is compared with the new one, without reading the file."""
    stamps = tmp_path / "verified.json"
    check(model, stamps)
    changed, result, read = check(model, stamps, expected=sha(b"new release"))
    assert (result["state"], result["sha256"], read) == ("different", sha(WEIGHTS), [])


def test_a_verified_copy_is_put_in_place_with_its_mode_and_stamped(model, tmp_path):
    stamps = tmp_path / "verified.json"
    new = b"new weights" * 100
    partial = model.with_name("model.gguf.partial")
    partial.write_bytes(new)
    os.chmod(partial, 0o600)
    hasher = CountingHasher()
    changed, results = vf.run([{"path": str(model), "sha256": sha(new), "source": str(partial), "mode": "0644"}],
                              str(stamps), hasher=hasher, clock=FakeClock())
    assert changed and results[0]["state"] == "placed" and hasher.read == [str(partial)]
    assert model.read_bytes() == new and not partial.exists()
    assert model.stat().st_mode & 0o777 == 0o644
    assert check(model, stamps, expected=sha(new))[1:] == (
        {"path": str(model), "state": "verified", "hashed": False, "sha256": sha(new)}, [])


def test_a_copy_that_does_not_verify_changes_nothing_and_names_both_files(model, tmp_path):
    stamps = tmp_path / "verified.json"
    check(model, stamps)
    partial = model.with_name("model.gguf.partial")
    partial.write_bytes(b"truncated")
    with pytest.raises(vf.VerifiedFilesError) as exc:
        vf.run([{"path": str(model), "sha256": sha(b"the real one"), "source": str(partial)}], str(stamps))
    assert str(partial) in str(exc.value) and sha(b"truncated") in str(exc.value)
    assert "left as it was" in str(exc.value)
    assert model.read_bytes() == WEIGHTS and partial.read_bytes() == b"truncated"
    assert check(model, stamps)[2] == []  # the old copy's stamp still holds


def test_placing_in_check_mode_moves_nothing(model, tmp_path):
    stamps = tmp_path / "verified.json"
    partial = model.with_name("model.gguf.partial")
    partial.write_bytes(b"new")
    changed, results = vf.run([{"path": str(model), "sha256": sha(b"new"), "source": str(partial)}],
                              str(stamps), check_mode=True)
    assert changed and results[0]["state"] == "placed"
    assert model.read_bytes() == WEIGHTS and partial.exists() and not stamps.exists()
    # The copy a real run makes first does not exist in check mode: reported as it would be placed.
    changed, results = vf.run([{"path": str(model), "sha256": sha(b"new"), "source": str(partial) + ".none"}],
                              str(stamps), check_mode=True)
    assert changed and results[0] == {"path": str(model), "state": "placed", "hashed": False,
                                      "source": str(partial) + ".none"}


def test_a_missing_copy_fails_outside_check_mode(model, tmp_path):
    with pytest.raises(vf.VerifiedFilesError, match="model.gguf.partial, does not exist"):
        vf.run([{"path": str(model), "sha256": sha(b"x"), "source": str(model) + ".partial"}],
               str(tmp_path / "verified.json"))


def test_what_is_not_a_regular_file_is_refused_by_name(tmp_path):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)  # opened for reading, a FIFO would wait for a writer
    for path in (tmp_path, fifo):
        with pytest.raises(vf.VerifiedFilesError, match="%s: not a regular file" % path):
            vf.run([{"path": str(path), "sha256": sha(b"")}], str(tmp_path / "verified.json"))


def test_the_stamps_of_the_files_before_an_error_are_saved(model, tmp_path):
    stamps = tmp_path / "verified.json"
    with pytest.raises(vf.VerifiedFilesError):
        vf.run([{"path": str(model), "sha256": sha(WEIGHTS)},
                {"path": str(model) + ".x", "sha256": sha(b"x"), "source": str(model) + ".none"}], str(stamps),
               clock=FakeClock())
    assert check(model, stamps)[2] == []


@pytest.mark.parametrize("entry,message", [
    ({"path": "models/m.gguf", "sha256": "0" * 64}, "path must be absolute"),
    ({"path": "/m.gguf", "sha256": "abc"}, "sha256 must be 64 hexadecimal digits"),
    ({"path": "/m.gguf", "sha256": "g" * 64}, "sha256 must be 64 hexadecimal digits"),
    ({"path": "/m.gguf", "sha256": "0" * 64, "mode": "0644"}, "give source too"),
    ({"path": "/m.gguf", "sha256": "0" * 64, "source": "/m.partial", "mode": "rw"}, "octal string"),
    ({"path": "/m.gguf", "sha256": "0" * 64, "source": "m.partial"}, "source must be absolute"),
])
def test_bad_entries_are_refused_before_any_file_is_read(entry, message):
    with pytest.raises(vf.VerifiedFilesError, match=message):
        vf.normalise([entry])


def test_a_path_listed_twice_is_refused():
    with pytest.raises(vf.VerifiedFilesError, match="listed twice"):
        vf.normalise([{"path": "/m", "sha256": "0" * 64}, {"path": "/m", "sha256": "1" * 64}])


def test_an_upper_case_checksum_is_compared_as_lower_case(model, tmp_path):
    assert check(model, tmp_path / "v.json", expected=sha(WEIGHTS).upper())[1]["state"] == "verified"


def test_a_file_changed_just_before_is_stamped_only_once_its_change_time_is_old_enough(model, tmp_path):
    clock = FakeClock(ahead=0.5)  # the file changed half a second ago
    changed, result, read = check(model, tmp_path / "v.json", clock=clock)
    assert result["state"] == "verified" and len(clock.slept) == 1
    assert vf.RACY_NS / 1e9 - 0.6 < clock.slept[0] <= vf.RACY_NS / 1e9 - 0.5
    assert check(model, tmp_path / "v.json")[2] == []


def test_a_file_written_while_it_is_read_gets_no_stamp(model, tmp_path):
    def hasher(path):
        digest = vf.sha256_of(path)
        with open(path, "ab") as handle:
            handle.write(b"more")
        return digest

    stamps = tmp_path / "v.json"
    changed, results = vf.run([{"path": str(model), "sha256": sha(WEIGHTS)}], str(stamps), hasher=hasher,
                              clock=FakeClock())
    assert results[0]["state"] == "verified"  # what was read
    assert not stamps.exists()  # but it is read again next time
    assert check(model, stamps)[1]["state"] == "different"


def test_the_models_entries_for_checking_and_for_putting_copies_in_place():
    models = [{"name": "smollm2", "file": "m.gguf", "sha256": "a" * 64, "url": "http://store/m.gguf"}]
    assert vf.model_files(models, "/srv/models/") == [{"path": "/srv/models/smollm2/m.gguf", "sha256": "a" * 64}]
    assert vf.model_files(models, "/srv/models", ".partial", "0644") == [
        {"path": "/srv/models/smollm2/m.gguf", "sha256": "a" * 64, "source": "/srv/models/smollm2/m.gguf.partial",
         "mode": "0644"}]
    # What the filter gives, the module takes (no key it does not know).
    vf.normalise(vf.model_files(models, "/srv/models", ".partial", "0644"))


def test_files_read_in_one_call_wait_once_for_their_stamps(model, tmp_path):
    second = model.with_name("second.gguf")
    second.write_bytes(b"second")
    clock = FakeClock(ahead=0.5)
    changed, results = vf.run([{"path": str(model), "sha256": sha(WEIGHTS)},
                               {"path": str(second), "sha256": sha(b"second")}], str(tmp_path / "v.json"), clock=clock)
    assert [r["state"] for r in results] == ["verified", "verified"] and len(clock.slept) == 1
    assert set(json.loads((tmp_path / "v.json").read_text())["files"]) == {str(model), str(second)}
