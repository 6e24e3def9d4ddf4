"""The engine's effective state on a real Docker engine (the scenario's docker-engine model node, no GPU).

Checked through the running dockerd (docker info, docker run), apt's own view of pins and
holds, and the file only for what must survive in it.
"""

import json
import os
import time

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("model_nodes")


def engine(host):
    return json.loads(host.check_output("docker info --format '{{json .}}'"))


def test_preexisting_keys_survive_and_are_live(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["debug"] is True
    assert config["labels"] == ["site=preexisting"]
    # Nested objects are merged key by key: the site's log label and the role's rotation.
    assert config["log-opts"] == {"labels": "site", "max-size": "100m", "max-file": "5"}
    info = engine(host)
    assert info["Debug"] is True
    assert "site=preexisting" in info["Labels"]
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"
    # The previous file was kept beside it.
    assert host.run("ls /etc/docker/daemon.json.*~").rc == 0


def test_engine_is_pinned_and_held(host):
    assert "docker.io" in host.check_output("apt-mark showhold").split()
    policy = host.check_output("apt-cache policy docker.io")
    assert "1001" in policy and "20.10.24+dfsg1" in policy.split("Installed:")[1].split()[0]


def test_a_container_runs_and_logs_rotate_by_default(host):
    out = host.check_output("docker run --rm --network none llmfleet/engine-probe:1 /usr/bin/echo hello-from-a-container")
    assert out == "hello-from-a-container"
    opts = host.check_output(
        "docker run -d --network none llmfleet/engine-probe:1 /usr/bin/echo x | xargs docker inspect --format '{{json .HostConfig.LogConfig}}'")
    assert json.loads(opts) == {"Type": "json-file", "Config": {"labels": "site", "max-file": "5", "max-size": "100m"}}
    host.run("docker container prune -f")


def test_containers_survive_a_daemon_restart(host):
    # live-restore: a model container keeps serving while dockerd restarts (upgrades, config).
    host.check_output("tar --create --dereference --file - /usr/bin/sleep $(ldd /usr/bin/sleep | grep -o '/[^ ]*') 2>/dev/null"
                      " | docker import - llmfleet-test/sleep:1")
    cid = host.check_output("docker run -d --network none llmfleet-test/sleep:1 /usr/bin/sleep 300")
    pid_before = host.check_output(f"docker inspect --format '{{{{.State.Pid}}}}' {cid}")
    host.check_output("systemctl restart docker")
    for _attempt in range(50):
        if host.run("docker info").rc == 0:
            break
        time.sleep(0.2)
    assert host.check_output(f"docker inspect --format '{{{{.State.Running}}}} {{{{.State.Pid}}}}' {cid}") == f"true {pid_before}"
    host.run(f"docker rm -f {cid}")


def test_operator_may_use_the_engine(host):
    assert "docker" in host.user("llmops").groups


def test_gpu_roles_skipped_cleanly_without_a_gpu(host):
    assert host.run("ls /sys/bus/pci/devices/*/vendor 2>/dev/null | xargs -r grep -l 0x10de").stdout == ""
    for path in ("/etc/apt/sources.list.d/llmfleet-nvidia-driver.sources",
                 "/etc/apt/sources.list.d/llmfleet-nvidia-container-toolkit.sources",
                 "/etc/apt/preferences.d/llmfleet-nvidia-driver.pref"):
        assert not host.file(path).exists, path
    assert "nvidia" not in engine(host)["Runtimes"]
