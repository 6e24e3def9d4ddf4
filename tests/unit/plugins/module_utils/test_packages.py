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
    at = packages.apt_lists_time(exists=times.__contains__, mtime=times.__getitem__)
    assert packages.apt_lists_age(1600.0, at) == 600.0
    del times[packages.APT_UPDATE_STAMP]
    at = packages.apt_lists_time(exists=times.__contains__, mtime=times.__getitem__)
    assert packages.apt_lists_age(1600.0, at) == 1100.0
    # A clock behind the files' times is no negative age; nothing to read is None (the apt module updates).
    assert packages.apt_lists_age(100.0, at) == 0.0
    assert packages.apt_lists_time(exists=lambda path: False) is None
    assert packages.apt_lists_age(1600.0, None) is None


def test_the_apt_lists_age_of_real_files(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    os.utime(lists, (1000.0, 1000.0))
    monkeypatch.setattr(packages, "APT_UPDATE_STAMP", str(tmp_path / "no-stamp"))
    monkeypatch.setattr(packages, "APT_LISTS", str(lists))
    assert packages.apt_lists_age(4600.5, packages.apt_lists_time()) == 3600.5


SOURCES = {"/etc/apt": ["sources.list", "apt.conf.d", "trusted.gpg.d"],
           "/etc/apt/sources.list.d": ["debian.sources", "docker.sources"]}


def sources_changed_at(changed):
    """ctime of every path: 100, those in `changed` given."""
    return lambda path: changed.get(path, 100.0)


def test_sources_older_than_the_lists_are_not_newer():
    assert packages.apt_sources_newer(500.0, SOURCES.__getitem__, sources_changed_at({})) is False


def test_a_switch_of_the_sources_after_the_lists_were_updated_is_seen():
    # A switch to a mirror interrupted before the update: the mirror's file written, the distribution's renamed.
    for changed in ({"/etc/apt/sources.list.d/llmfleet.sources": 900.0},
                    {"/etc/apt/sources.list.llmfleet-disabled": 900.0},
                    {"/etc/apt/sources.list.d": 900.0}):       # a file removed or renamed there
        tree = {"/etc/apt": SOURCES["/etc/apt"] + ["sources.list.llmfleet-disabled"],
                "/etc/apt/sources.list.d": SOURCES["/etc/apt/sources.list.d"] + ["llmfleet.sources"]}
        assert packages.apt_sources_newer(500.0, tree.__getitem__, sources_changed_at(changed)) is True, changed
    # What is not a source is not read: apt's configuration, keys.
    assert packages.apt_sources_newer(500.0, SOURCES.__getitem__,
                                      sources_changed_at({"/etc/apt/apt.conf.d": 900.0, "/etc/apt/trusted.gpg.d": 900.0})) is False


def test_no_lists_time_is_newer_and_missing_paths_are_no_error():
    assert packages.apt_sources_newer(None, SOURCES.__getitem__, sources_changed_at({})) is True

    def listdir(path):
        raise FileNotFoundError(path)

    def ctime(path):
        raise FileNotFoundError(path)
    assert packages.apt_sources_newer(500.0, listdir, ctime) is False


def test_real_sources_against_real_lists(tmp_path, monkeypatch):
    sources_d = tmp_path / "sources.list.d"
    sources_d.mkdir()
    (sources_d / "debian.sources").write_text("Types: deb\n")
    monkeypatch.setattr(packages, "APT_SOURCES_DIR", str(sources_d))
    written = os.stat(sources_d / "debian.sources").st_ctime
    assert packages.apt_sources_newer(written + 60, listdir=lambda path: os.listdir(str(sources_d))) is False
    assert packages.apt_sources_newer(written - 60, listdir=lambda path: os.listdir(str(sources_d))) is True


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


def test_a_source_set_aside_whose_original_is_back_is_nothing_left_to_undo():
    # debian.sources written anew by its package while the mirror was on: the way back keeps it, and
    # the copy set aside is not listed (else the way back ran on every run of that host).
    tree = {"/etc/apt": ["sources.list.llmfleet-disabled"],
            "/etc/apt/sources.list.d": ["debian.sources", "debian.sources.llmfleet-disabled"]}
    assert packages.apt_mirror_files(listdir=tree.__getitem__) == ["/etc/apt/sources.list.llmfleet-disabled"]
    tree["/etc/apt"] = ["sources.list", "sources.list.llmfleet-disabled"]
    assert packages.apt_mirror_files(listdir=tree.__getitem__) == []
