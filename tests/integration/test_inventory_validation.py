"""Bad inventory is refused before any host is touched, naming the host and the variable."""

import json

import pytest

pytestmark = pytest.mark.lab

PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----"


def host_vars(inv, host):
    for group in inv["all"]["children"].values():
        if host in group["hosts"]:
            return group["hosts"][host]
    raise KeyError(host)


def drop_zone(inv):
    del host_vars(inv, "model-b2")["llmfleet_zone"]


def bad_proxy(inv):
    host_vars(inv, "lb1")["base_apt_proxy"] = "htp:/10.213.9.1:3142"


def private_key(inv):
    host_vars(inv, "model-a1")["base_operator_ssh_public_keys"] = [PRIVATE_KEY]


def driver_branch(inv):
    host_vars(inv, "model-c1")["nvidia_driver_branch"] = "latest"


def driver_mirror_without_url(inv):
    host_vars(inv, "model-b1")["nvidia_driver_source"] = "mirror"


def docker_log_size(inv):
    host_vars(inv, "model-a2").update(docker_enabled=True, docker_log_max_size="big")


def replicas_on_one_port(inv):
    host_vars(inv, "model-a1")["model_server_replicas"] = [{"port": 8000}, {"port": 8000}]


def fewer_gpus_than_replicas(inv):
    host_vars(inv, "model-b1").update(model_server_gpu_ids=[0], model_server_gpus_per_replica=1)


def unknown_engine(inv):
    host_vars(inv, "model-c1")["model_server_engine"] = "tensorrt"


def backend_not_an_address(inv):
    host_vars(inv, "model-a2")["llmfleet_address"] = "10.213.9.300"


def short_api_key(inv):
    host_vars(inv, "lb1")["load_balancer_api_keys"] = [{"client": "team-a", "key": "secret"}]


@pytest.mark.parametrize("mutate,host,variable,reason", [
    (replicas_on_one_port, "model-a1", "model_server_replicas[1]", "port 8000 is already used by replica 0"),
    (fewer_gpus_than_replicas, "model-b1", "model_server_gpu_ids", "2 replicas x 1 GPUs need 2 GPU ids, 1 given"),
    (unknown_engine, "model-c1", "model_server_engine", "'tensorrt' is not a known engine"),
    (backend_not_an_address, "model-a2", "llmfleet_address", "is not an IP address"),
    (short_api_key, "lb1", "load_balancer_api_keys[0] (team-a)", "24 or more printable characters"),
    (driver_branch, "model-c1", "nvidia_driver_branch", "is not a driver branch such as 550"),
    (driver_mirror_without_url, "model-b1", "nvidia_driver_repository_url", "must be set with nvidia_driver_source mirror"),
    (docker_log_size, "model-a2", "docker_log_max_size", "big is not a size such as 100m"),
    (drop_zone, "model-b2", "llmfleet_zone", "not set"),
    (bad_proxy, "lb1", "base_apt_proxy", "scheme must be one of http, https"),
    (private_key, "model-a1", "base_operator_ssh_public_keys[0]", "this is a PRIVATE key"),
])
def test_bad_inventory_is_refused_before_any_host_is_touched(lab, tmp_path, mutate, host, variable, reason):
    inventory = lab.inventory_copy(tmp_path, mutate)
    proc = lab.playbook("site.yml", inventory=inventory, callback="json")
    assert proc.returncode != 0
    report = json.loads(proc.stdout)
    # Only the validation play ran, and none of its tasks connected to a host.
    assert [p["play"]["name"] for p in report["plays"]] == ["Validate the inventory"]
    results = [res for play in report["plays"] for task in play["tasks"] for res in task["hosts"].values()]
    results += [item for res in results for item in res.get("results", [])]  # loop items
    messages = [res.get("msg", "") for res in results if res.get("failed")]
    assert any(m.startswith(f"{host}: {variable}: ") and reason in m for m in messages), messages
    for stats in report["stats"].values():
        assert stats["changed"] == 0 and stats["unreachable"] == 0
    assert "Gathering Facts" not in proc.stdout
