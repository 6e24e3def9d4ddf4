"""Mounts left in the image's build tree (lab/fleetlab/image.py unmount_under).

Seen on a fresh machine: debootstrap left the tree's /proc mounted; tar read this machine's /proc
into the image and the temporary tree could not be removed. Everything at or below the tree is
unmounted, deepest first, and nothing else. The mounts table is a real file; umount is recorded."""

from fleetlab import image


def test_mounts_below_the_tree_are_unmounted_deepest_first_and_no_others(monkeypatch, tmp_path):
    tree = tmp_path / "rootfs-x"
    table = tmp_path / "mounts"
    table.write_text(
        "proc /proc proc rw 0 0\n"
        f"proc {tree}/proc proc rw 0 0\n"
        f"sysfs {tree}/proc/sys/fs/binfmt_misc binfmt_misc rw 0 0\n"
        f"tmpfs {tree}-other/dev tmpfs rw 0 0\n"
        f"tmpfs {tree}/with\\040blank tmpfs rw 0 0\n")
    calls = []
    monkeypatch.setattr(image, "run", lambda cmd, check=True: calls.append(cmd))
    done = image.unmount_under(tree, mounts=table)
    assert done == [f"{tree}/proc/sys/fs/binfmt_misc", f"{tree}/with blank", f"{tree}/proc"]
    assert calls == [["umount", "-l", point] for point in done]


def test_a_clean_tree_unmounts_nothing(monkeypatch, tmp_path):
    table = tmp_path / "mounts"
    table.write_text("proc /proc proc rw 0 0\n")
    calls = []
    monkeypatch.setattr(image, "run", lambda cmd, check=True: calls.append(cmd))
    assert image.unmount_under(tmp_path / "rootfs", mounts=table) == []
    assert not calls


def test_the_image_tag_follows_the_mirror_the_recipe_is_built_from():
    assert image.image_tag("http://deb.debian.org/debian") != image.image_tag("http://mirror.example/debian")
    assert image.image_tag("http://deb.debian.org/debian").startswith("localhost/llmfleet-lab:bookworm-")
