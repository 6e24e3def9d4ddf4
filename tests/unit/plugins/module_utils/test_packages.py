import os

from ansible_collections.llmfleet.cluster.plugins.module_utils import packages

DPKG = (
    "ii \tufw\t0.36.2-1\tall\n"
    "ii \tlibc6\t2.36-9+deb12u9\tamd64\n"
    "ii \tlibc6\t2.36-9+deb12u9\ti386\n"
    "rc \tapache2\t2.4.62-1\tamd64\n"       # removed, its configuration files left
    "iU \tauditd\t1:3.0.9-1\tamd64\n"       # unpacked, not configured
    "iF \tsysstat\t12.6.1-1\tamd64\n"       # half-configured
    "un \tnever-installed\t\t\n"
    "garbage line\n"
)


def test_only_fully_installed_packages_are_listed_in_package_facts_shape():
    found = packages.parse(DPKG)
    assert sorted(found) == ["libc6", "ufw"]
    assert found["ufw"] == [{"name": "ufw", "version": "0.36.2-1", "arch": "all", "source": "apt"}]
    assert [p["arch"] for p in found["libc6"]] == ["amd64", "i386"]


def test_nothing_installed_reads_empty():
    assert packages.parse("") == {}


def test_a_held_package_is_installed():
    assert sorted(packages.parse("hi \tdocker.io\t20.10.24+dfsg1-1+b3\tamd64\n")) == ["docker.io"]


def test_the_apt_lists_age_is_read_where_the_apt_module_reads_it():
    times = {packages.APT_UPDATE_STAMP: 1000.0, packages.APT_LISTS: 500.0}
    # The update-success stamp wins over the lists' directory, as in ansible.builtin.apt.
    assert packages.apt_lists_age(1600.0, exists=times.__contains__, mtime=times.__getitem__) == 600.0
    del times[packages.APT_UPDATE_STAMP]
    assert packages.apt_lists_age(1600.0, exists=times.__contains__, mtime=times.__getitem__) == 1100.0
    # A clock behind the files' times is no negative age; nothing to read is None (the apt module updates).
    assert packages.apt_lists_age(100.0, exists=times.__contains__, mtime=times.__getitem__) == 0.0
    assert packages.apt_lists_age(1600.0, exists=lambda path: False) is None


def test_the_apt_lists_age_of_real_files(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    os.utime(lists, (1000.0, 1000.0))
    monkeypatch.setattr(packages, "APT_UPDATE_STAMP", str(tmp_path / "no-stamp"))
    monkeypatch.setattr(packages, "APT_LISTS", str(lists))
    assert packages.apt_lists_age(4600.5) == 3600.5


def test_what_a_mirror_left_is_found_in_both_apt_directories():
    tree = {"/etc/apt": ["sources.list.llmfleet-disabled", "apt.conf.d", "trusted.gpg.d"],
            "/etc/apt/sources.list.d": ["debian.sources.llmfleet-disabled", "llmfleet.sources", "docker.sources"]}
    assert packages.apt_mirror_files(listdir=tree.__getitem__) == [
        "/etc/apt/sources.list.d/debian.sources.llmfleet-disabled", "/etc/apt/sources.list.d/llmfleet.sources",
        "/etc/apt/sources.list.llmfleet-disabled"]


def test_a_host_that_never_switched_has_nothing_and_a_missing_directory_is_no_error():
    def listdir(path):
        if path == "/etc/apt/sources.list.d":
            raise FileNotFoundError(path)
        return ["sources.list", "llmfleet.sources"]   # not in sources.list.d: not the mirror's file
    assert packages.apt_mirror_files(listdir=listdir) == []
