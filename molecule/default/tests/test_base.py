"""Verify the base role's effective state on the scenario's hosts (not template text)."""

import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")


def test_apt_sources_follow_the_chosen_path(host):
    services = host.ansible.get_variables()["llmfleet_lab_services"]
    proxy = host.check_output("apt-config dump Acquire::http::Proxy")
    sources = host.check_output("apt-get indextargets --format '$(SITE)' | sort -u").splitlines()
    if host.backend.get_hostname() == "hard-client":
        assert proxy == ""
        assert sorted(sources) == sorted([services["apt_mirror"], services["apt_security_mirror"]])
        # The distribution's sources set aside (not emptied): taking the mirror off puts them back.
        assert not host.file("/etc/apt/sources.list").exists
        assert host.file("/etc/apt/sources.list.d/llmfleet.sources").exists
    else:
        assert proxy == f'Acquire::http::Proxy "{services["apt_proxy"]}";'
        assert all("deb.debian.org" in s for s in sources), sources
    # apt works through that path now (the cache is fresh and signatures verify).
    update = host.run("apt-get update -q")
    assert update.rc == 0 and "W:" not in update.stderr, update.stderr


def test_base_packages_installed(host):
    for pkg in ("ca-certificates", "curl", "gnupg", "python3-apt", "sudo", "chrony"):
        assert host.package(pkg).is_installed, pkg


def test_sudoers_is_valid_and_grants_the_operator(host):
    assert host.run("visudo -c").rc == 0
    assert "(ALL : ALL) NOPASSWD: ALL" in host.check_output("sudo -l -U llmops")


def test_operator_keys_are_exactly_the_configured_ones(host):
    keys = host.ansible.get_variables()["base_operator_ssh_public_keys"]
    auth = host.file("/home/llmops/.ssh/authorized_keys")
    assert auth.user == "llmops" and auth.mode == 0o600
    assert [line for line in auth.content_string.splitlines() if line.strip()] == keys


def test_fleet_hosts_resolve(host):
    for name in ("hard-lb", "hard-client", "hard-docker", "hard-nspawn"):
        assert host.run(f"getent hosts {name}").rc == 0
