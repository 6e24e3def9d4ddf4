"""The private registry on hard-client (Debian's docker-registry) and the docker-engine node that
pulls from it, for real: an image pushed from this machine with playbooks/registry_push.yml (skopeo)
and pulled by digest by hard-docker's engine, which the docker role made trust the site CA for the
registry's address only and logged in. Refused: a pull without an account, a pull through a name
whose CA the engine does not trust, a connection from a host that does not pull (firewall)."""

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import testinfra

# Molecule's inventory directory: its own file and the lab tool's, which holds the connection and become
# settings (root on the hosts, as the scenario's other checks run).
INVENTORY = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
PUSHED_NAME = "llmfleet-test/registry-probe"
testinfra_hosts = [f"ansible://hard-docker?ansible_inventory={INVENTORY}"]


def lab_host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module", name="registry")
def fixture_registry():
    client = lab_host("hard-client")
    return f"{client.ansible.get_variables()['ansible_host']}:5000"


@pytest.fixture(scope="module", name="pushed")
def fixture_pushed(registry, tmp_path_factory):
    """An image made here (one file, no engine needed), pushed with the collection's playbook (the registry
    role's own account, address and CA from the inventory); its digest."""
    work = tmp_path_factory.mktemp("push")
    (work / "hello.txt").write_text("pushed by the molecule scenario\n")
    with tarfile.open(work / "rootfs.tar", "w") as rootfs:
        rootfs.add(work / "hello.txt", arcname="hello.txt")
    tag = f"localhost/{PUSHED_NAME}:1"
    subprocess.run(["podman", "import", str(work / "rootfs.tar"), tag], check=True, capture_output=True)
    try:
        subprocess.run(["podman", "save", "--format", "docker-archive", "-o", str(work / "image.tar"), tag],
                       check=True, capture_output=True)
    finally:
        subprocess.run(["podman", "rmi", tag], check=False, capture_output=True)
    extra = {"registry_images": [{"source": f"docker-archive:{work / 'image.tar'}", "name": f"{PUSHED_NAME}:1"}],
             "registry_push_result_file": str(work / "pushed.json")}
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, f"{project}/playbooks/registry_push.yml",
                           "-e", json.dumps(extra)], capture_output=True, text=True, check=False, cwd=project)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads((work / "pushed.json").read_text())[f"{PUSHED_NAME}:1"]


def pull(host, reference, config_dir=None):
    prefix = f"DOCKER_CONFIG={config_dir} " if config_dir else ""
    return host.run(f"{prefix}docker pull {reference}")


def test_the_node_pulls_by_digest_what_was_pushed(host, registry, pushed):
    assert pushed.startswith("sha256:") and len(pushed) == 71
    reference = f"{registry}/{PUSHED_NAME}@{pushed}"
    result = pull(host, reference)
    assert result.rc == 0, result.stderr
    digests = json.loads(host.check_output(f"docker image inspect --format '{{{{json .RepoDigests}}}}' {reference}"))
    assert reference in digests
    host.run(f"docker rmi {reference}")


def test_a_pull_without_an_account_is_refused(host, registry, pushed):
    host.check_output("install -d -m 700 /tmp/no-account")
    result = pull(host, f"{registry}/{PUSHED_NAME}@{pushed}", config_dir="/tmp/no-account")
    assert result.rc != 0
    assert "no basic auth credentials" in result.stderr or "unauthorized" in result.stderr, result.stderr


def test_a_pull_through_a_name_whose_ca_the_engine_does_not_trust_is_refused(host, registry, pushed):
    # hard-client:5000 is the same registry (the name is in /etc/hosts and in its certificate), but
    # the site CA is trusted for the address the inventory gives only.
    assert host.run("getent hosts hard-client").rc == 0
    result = pull(host, f"hard-client:5000/{PUSHED_NAME}@{pushed}")
    assert result.rc != 0
    assert "certificate signed by unknown authority" in result.stderr, result.stderr


def test_images_survive_a_restart_of_the_registry(host, registry, pushed):
    client = lab_host("hard-client")
    client.check_output("systemctl restart docker-registry")
    for _attempt in range(50):
        if client.run("bash -c 'exec 3<>/dev/tcp/127.0.0.1/5000'").rc == 0:
            break
        time.sleep(0.2)
    result = pull(host, f"{registry}/{PUSHED_NAME}@{pushed}")
    assert result.rc == 0, result.stderr
    host.run(f"docker rmi {registry}/{PUSHED_NAME}@{pushed}")


def test_only_the_pulling_hosts_reach_the_registry(registry):
    lb = lab_host("hard-lb")
    address, port = registry.split(":")
    probe = lb.run(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/{port}'")
    assert probe.rc == 124, (probe.rc, probe.stderr)  # dropped by the firewall: no answer at all
