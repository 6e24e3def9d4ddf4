"""Effective state of the os_hardening role on the scenario's hosts: what the host does (PAM refuses a
weak password, a blocked module cannot be loaded, a login session gets the umask, set-ID bits are gone
and stay gone through dpkg), not the text of the files."""

import os

import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("all")


def login_defs(host):
    values = {}
    for line in host.file("/etc/login.defs").content_string.splitlines():
        parts = line.split()
        if len(parts) == 2 and not parts[0].startswith("#"):
            values[parts[0]] = parts[1]
    return values


def test_login_defs_carry_the_role_values(host):
    values = login_defs(host)
    assert values["UMASK"] == "027"
    assert values["PASS_MAX_DAYS"] == "365"
    assert values["SHA_CRYPT_MIN_ROUNDS"] == values["SHA_CRYPT_MAX_ROUNDS"] == "65536"


def test_a_login_session_gets_the_umask_where_asked(host):
    # A fresh SSH session (testinfra's ansible backend): with os_hardening_umask_sessions (hard-lb only)
    # pam_umask gives it login.defs' UMASK; elsewhere the session keeps Debian's 022.
    asked = host.backend.get_hostname() == "hard-lb"
    assert host.run("umask").stdout.strip() == ("0027" if asked else "0022")


def test_pam_refuses_a_weak_password(host):
    # pwscore (libpwquality-tools, installed here for the test) reads the same pwquality.conf as
    # pam_pwquality; a short dictionary word fails it.
    with host.sudo():
        host.check_output("DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpwquality-tools")
    weak = host.run("echo password | pwscore")
    assert weak.rc != 0
    strong = host.run("echo 'Vq7#rTz!pL2m@xW9k' | pwscore")
    assert strong.rc == 0, strong.stderr
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string


def test_blocked_modules_are_kept_out(host):
    # The lab image has no kmod (a container loads no modules itself), so modprobe cannot be asked; the
    # file modprobe reads on a host that has it.
    conf = host.file("/etc/modprobe.d/60-llmfleet-blocked.conf").content_string
    for module in ("dccp", "sctp", "rds", "tipc", "usb-storage", "firewire-core"):
        assert f"install {module} /bin/true\nblacklist {module}\n" in conf
    assert "overlay" not in conf and "br_netfilter" not in conf


def test_setid_bits_are_gone_and_dpkg_keeps_them_gone(host):
    for path in ("/usr/bin/chfn", "/usr/bin/chsh", "/usr/bin/newgrp"):
        mode = host.file(path).mode
        assert not mode & 0o6000, f"{path} still {oct(mode)}"
    with host.sudo():
        overrides = host.check_output("dpkg-statoverride --list")
    assert "/usr/bin/chfn" in overrides
    # sudo keeps its bit: the operator needs it.
    assert host.file("/usr/bin/sudo").mode & 0o4000


def test_banners_and_core_dumps(host):
    assert "Authorized access only" in host.file("/etc/issue.net").content_string
    assert "Debian" not in host.file("/etc/issue").content_string
    assert host.run("bash -lc 'ulimit -Hc'").stdout.strip() == "0"
    assert "Storage=none" in host.file("/etc/systemd/coredump.conf.d/60-llmfleet.conf").content_string


def test_home_and_cron_closed(host):
    with host.sudo():
        assert host.file("/root").mode == 0o700
        assert host.file("/etc/crontab").mode == 0o600 if host.file("/etc/crontab").exists else True
    assert host.file("/home/llmops").mode == 0o750


def test_unattended_upgrades_off_on_model_nodes_only(host):
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    model_node = host.backend.get_hostname() == "hard-docker"
    assert ('Unattended-Upgrade "0"' in periodic) == model_node
    assert ('Unattended-Upgrade "1"' in periodic) == (not model_node)
    if not model_node:
        # What apt reads, all files merged: only the security suite (Debian's own 50unattended-upgrades
        # would add the stable suite's point releases without the role's #clear).
        patterns = [line for line in host.check_output("apt-config dump").splitlines()
                    if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
        assert patterns and all("label=Debian-Security" in line for line in patterns), patterns


def test_sysstat_collects(host):
    # The role sets ENABLED="true" in Debian's /etc/default/sysstat: sa1 (the unit's start, then its timer)
    # writes the day's figures only when it says so.
    with host.sudo():
        assert host.service("sysstat").is_enabled and host.service("sysstat").is_running
        assert host.check_output("ls /var/log/sysstat").split(), "sysstat wrote no figures"
