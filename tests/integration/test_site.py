"""site.yml on the lab, through ansible-runner, and the real state it leaves on every host."""

import pytest
import testinfra

pytestmark = pytest.mark.lab


def test_second_run_changes_nothing(converged_lab):
    if converged_lab.site_runs is None:
        pytest.skip("LLMFLEET_LAB_CONVERGED=1: site.yml was not run by this session")
    first, second = converged_lab.site_runs
    hosts = set(converged_lab.hosts)
    assert set(second.stats["ok"]) == hosts, "every lab host took part"
    assert second.stats["changed"] == {}, f"second run changed: {second.stats['changed']}"
    assert not second.stats["failures"] and not second.stats["dark"]


@pytest.fixture(scope="module")
def hosts(converged_lab):
    inventory = str(converged_lab.inventory)
    return {name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)
            for name in converged_lab.hosts}


def test_apt_goes_through_the_lab_gateway(hosts, converged_lab):
    proxy = converged_lab.info["services"]["apt_proxy"]
    for host in hosts.values():
        conf = host.file("/etc/apt/apt.conf.d/01llmfleet-proxy")
        assert conf.exists and f'Acquire::http::Proxy "{proxy}";' in conf.content_string
        # apt itself reports the proxy it will use (the effective configuration).
        assert host.check_output("apt-config dump Acquire::http::Proxy") == f'Acquire::http::Proxy "{proxy}";'
        for pkg in ("python3-apt", "sudo", "chrony", "curl", "ca-certificates"):
            assert host.package(pkg).is_installed, pkg


def test_pip_points_at_the_artifact_source(hosts, converged_lab):
    artifacts = converged_lab.info["services"]["artifacts"]
    for host in hosts.values():
        conf = host.file("/etc/pip.conf").content_string
        assert f"find-links = {artifacts}/wheels/" in conf and "no-index = true" in conf


def test_fleet_is_in_etc_hosts(hosts, converged_lab):
    for name, host in hosts.items():
        for other, address in converged_lab.hosts.items():
            assert host.run(f"getent hosts {other}").stdout.split() == [address, other]
        assert host.check_output("hostname") == name


def test_time_settings(hosts):
    for host in hosts.values():
        assert host.file("/etc/localtime").linked_to.endswith("Etc/UTC")
        assert host.file("/etc/chrony/chrony.conf").contains("^server ")
        # Containers have no CAP_SYS_TIME: chrony is configured but (rightly) not running.
        assert not host.service("chrony").is_running


def test_operator_logs_in_with_its_key_and_uses_sudo(converged_lab):
    key = str(converged_lab.info["ssh_key"]).replace("id_ed25519", "operator_ed25519")
    for name in converged_lab.hosts:
        proc = converged_lab.ssh(name, "id -un && sudo -n id -u", user="llmops", key=key)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["llmops", "0"]
        # The admin key is not one of the operator's keys (authorized_keys is exclusive).
        refused = converged_lab.ssh(name, "true", user="llmops")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_operator_has_no_password(hosts):
    for host in hosts.values():
        shadow = host.check_output("getent shadow llmops").split(":")
        assert shadow[1] == "!"
