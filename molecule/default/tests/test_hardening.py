"""Effective state of hardened lab hosts: what sshd, ufw and the kernel do, seen from the host
itself, from another lab host and from this machine, not the template text."""

import base64
import os
import socket
import time
import urllib.request

import pytest
import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("all")


def other(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def name_of(host):
    return host.backend.get_hostname()


def sshd_settings(host):
    out = host.check_output("sshd -T -C user=llmops,host=client,addr=10.213.9.50,lport=22")
    settings = {}
    for line in out.splitlines():
        key, _separator, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in settings.items()}


def test_sshd_runs_the_baseline(host):
    s = sshd_settings(host)
    assert s["passwordauthentication"] == "no"
    assert s["kbdinteractiveauthentication"] == "no"
    assert s["permitrootlogin"] == "no"
    assert s["authenticationmethods"] == "publickey"
    assert s["maxauthtries"] == "3"
    assert s["x11forwarding"] == "no" and s["allowtcpforwarding"] == "no" and s["allowagentforwarding"] == "no"
    assert s["ciphers"] == "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
    assert "diffie-hellman-group14-sha1" not in s["kexalgorithms"] and s["kexalgorithms"].startswith("sntrup761x25519")
    # The operator and the account Ansible connects as, nobody else.
    assert sorted(s["allowusers"]) == ["admin", "llmops"]
    # No weak DH group-exchange moduli left (field 5 is the size minus one).
    assert host.run("awk '$1 !~ /^#/ && NF >= 7 && $5 < 3071' /etc/ssh/moduli | wc -l").stdout.strip() == "0"
    assert oct(host.file("/etc/ssh/sshd_config").mode) == "0o600"
    # No rollback timer left behind.
    assert host.run("systemctl is-active llmfleet-sshd-rollback.timer").stdout.strip() != "active"


def test_ufw_policy(host):
    status = host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "Logging: on (low)" in status
    # Routed traffic: denied; where the kernel does not forward at all (the nspawn host, whose
    # ip_forward the hardening role really turned off) ufw reports routing as disabled.
    routed = "deny" if host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1" else "disabled"
    assert f"Default: deny (incoming), allow (outgoing), {routed} (routed)" in status
    assert (routed == "disabled") == (name_of(host) == "hard-nspawn")
    # The lab's SSH networks are listed (trusted): allowed, not rate-limited (firewall_ssh_rate_limit: world).
    assert any(line.split()[:4] == ["22/tcp", "ALLOW", "IN", "10.213.9.0/24"] for line in status.splitlines())
    assert "LIMIT" not in status
    if name_of(host) == "hard-lb":
        assert any(line.split()[:4] == ["8443/tcp", "ALLOW", "IN", "10.213.9.0/24"] for line in status.splitlines())


def test_kernel_settings_persisted_and_machine_untouched(host):
    conf = dict(line.split(" = ", 1) for line in host.file("/etc/sysctl.d/60-llmfleet.conf").content_string.splitlines()
                if " = " in line and not line.startswith("#"))
    forwarding = "1" if name_of(host) == "hard-docker" else "0"
    assert conf["net.ipv4.ip_forward"] == forwarding and conf["net.ipv6.conf.all.forwarding"] == forwarding
    assert conf["kernel.yama.ptrace_scope"] == "2" and conf["kernel.kexec_load_disabled"] == "1"
    assert conf["net.core.somaxconn"] == "4096" and conf["net.ipv4.tcp_syncookies"] == "1"
    if name_of(host) == "hard-nspawn":
        # Its own network namespace: every net.* key this kernel has there is in effect, as sysctl
        # reads it back. Keys the kernel keeps global are not shown in a namespace at all.
        net = {k: v for k, v in conf.items() if k.startswith("net.")}
        present = {k: v for k, v in net.items() if host.run(f"test -w /proc/sys/{k.replace('.', '/')}").rc == 0}
        # The kernel keeps these global: absent from the namespace (netdev_max_backlog) or read-only there.
        assert set(net) - set(present) == {"net.core.netdev_max_backlog", "net.core.rmem_max", "net.core.wmem_max"}
        # ufw applies its own kernel settings whenever it starts (IPT_SYSCTL, log_martians=0): restarted
        # here first, so that the values below are the ones a rebooted host keeps.
        host.check_output("systemctl restart ufw")
        effective = {k: " ".join(host.check_output(f"sysctl -n {k}").split()) for k in present}
        assert effective == {k: " ".join(v.split()) for k, v in present.items()}
        # ...while vm.*, kernel.* and fs.* stay read-only: written to the file, not applied. (The probe
        # writes back the value the kernel has, so that a broken isolation would change nothing.)
        assert host.run("sysctl -w vm.mmap_rnd_bits=$(sysctl -n vm.mmap_rnd_bits)").rc != 0
        assert host.check_output("sysctl -n vm.mmap_rnd_bits") != conf["vm.mmap_rnd_bits"]
        # This machine's network namespace kept its own value (600 in the host).
        with open("/proc/sys/net/ipv4/tcp_keepalive_time") as f:
            assert f.read().strip() != conf["net.ipv4.tcp_keepalive_time"]
    else:
        # In these hosts /proc/sys is read-only: the role wrote the file and said it could not apply it.
        assert host.run("touch /proc/sys/net/core/somaxconn").rc != 0
    # This machine's kernel kept its own values for keys the role sets otherwise (measured here:
    # kptr_restrict 0, protected_fifos 0, mmap_rnd_bits 28): nothing leaked from a host to the machine.
    for key in ("kernel.kptr_restrict", "fs.protected_fifos", "vm.mmap_rnd_bits"):
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            assert f.read().strip() != conf[key], key


def probe(host, address, port, timeout=3):
    """From host: HTTP status of http://address:port/, or 'timeout'/'refused'."""
    code = (f"import socket, urllib.request\n"
            f"try: print(urllib.request.urlopen('http://{address}:{port}/', timeout={timeout}).status)\n"
            f"except Exception as e: print('timeout' if 'timed out' in str(e) else 'refused' if 'refused' in str(e) else repr(e))\n")
    encoded = base64.b64encode(code.encode()).decode()
    return host.check_output(f"python3 -c 'import base64; exec(base64.b64decode(\"{encoded}\"))'")


def test_seen_from_another_lab_host(host):
    if name_of(host) != "hard-lb":
        pytest.skip("probed from hard-client")
    client = other("hard-client")
    lb_address = host.ansible.get_variables()["ansible_host"]
    # Passwords are not even offered: the server lists publickey only.
    # (ssh's own status 255 is echoed: testinfra's SSH backend takes a 255 for its own connection failing.)
    refused = client.run(f"ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                         f"-o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive "
                         f"llmops@{lb_address} true; echo ssh-status=$?")
    assert "ssh-status=255" in refused.stdout and "Permission denied (publickey)" in refused.stderr
    # The operator's key logs in (copied to the client for this test only).
    key = open(os.path.join(os.path.dirname(host.ansible.get_variables()["ansible_ssh_private_key_file"]),
                            "operator_ed25519")).read()
    client.check_output(f"install -m 600 /dev/null /tmp/operator-key && echo {base64.b64encode(key.encode()).decode()}"
                        " | base64 -d > /tmp/operator-key")
    try:
        login = client.run(f"ssh -i /tmp/operator-key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no "
                           f"-o UserKnownHostsFile=/dev/null llmops@{lb_address} id -un; echo ssh-status=$?")
        assert login.stdout.split() == ["llmops", "ssh-status=0"], login.stderr
    finally:
        client.run("rm -f /tmp/operator-key")
    # Two listeners on the LB: 8443 is opened to the lab network, 9999 is not.
    for port in (8443, 9999):
        host.run(f"systemd-run --unit=probe-{port} --collect python3 -m http.server {port} --directory /srv")
    try:
        for _attempt in range(50):
            if "200" == probe(host, "127.0.0.1", 9999) == probe(host, "127.0.0.1", 8443):
                break
            time.sleep(0.2)
        assert probe(host, "127.0.0.1", 9999) == "200"  # it listens: a block below is the firewall's
        assert probe(client, lb_address, 8443) == "200"
        assert probe(client, lb_address, 9999) == "timeout"
    finally:
        host.run("systemctl stop probe-8443 probe-9999")


def test_docker_published_ports_stay_behind_the_firewall(host):
    if name_of(host) != "hard-docker":
        pytest.skip("docker host only")
    address = host.ansible.get_variables()["ansible_host"]
    # A registry-free web server image from the host's own python3.
    host.check_output("tar --create --dereference --file - /usr/bin/python3 /usr/lib/python3.11 "
                      "$(ldd /usr/bin/python3 | grep -o '/[^ ]*') 2>/dev/null | docker import - llmfleet-test/http:1")
    try:
        for port in (8080, 8081):
            host.check_output(f"docker run -d --name web-{port} -p {port}:{port} llmfleet-test/http:1 "
                              f"/usr/bin/python3 -m http.server {port}")
        for _attempt in range(50):
            if probe(host, "127.0.0.1", 8081) == "200":
                break
            time.sleep(0.2)
        # From this machine (the lab network's gateway address): 8081 is opened by the role's
        # firewall_rules, 8080 is published by Docker but opened nowhere.
        assert urllib.request.urlopen(f"http://{address}:8081/", timeout=5).status == 200
        with pytest.raises(OSError) as blocked:
            urllib.request.urlopen(f"http://{address}:8080/", timeout=3)
        assert isinstance(blocked.value, socket.timeout) or "timed out" in str(blocked.value)
        assert "[UFW DOCKER BLOCK]" in host.check_output("iptables -S llmfleet-docker-deny")
    finally:
        host.run("docker rm -f web-8080 web-8081; docker rmi llmfleet-test/http:1")
