"""The filters the roles call, with the inputs Ansible gives them (facts, hostvars)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.filter import nvidia as nvidia_filters
from ansible_collections.llmfleet.cluster.plugins.filter import zones as zone_filters

DEBIAN = {"distribution": "Debian", "distribution_version": "12.7", "kernel": "6.1.0-26-amd64"}
UBUNTU = {"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"}


def test_plan_from_facts():
    assert nvidia_filters.nvidia_driver_plan(DEBIAN, "distribution", "535")["headers_package"] == "linux-headers-6.1.0-26-amd64"
    assert nvidia_filters.nvidia_driver_plan(UBUNTU, "cuda_repository", "570", "570.172.08")["pin"] == "570.172.08-*"


def test_plan_errors_are_filter_errors():
    with pytest.raises(AnsibleFilterError, match="nvidia_driver_branch"):
        nvidia_filters.nvidia_driver_plan(DEBIAN, "distribution", "5x5")


def test_input_problem_without_facts():
    assert nvidia_filters.nvidia_driver_input_problem("distribution", "535", "535.216.01") == ""
    assert "not on branch" in nvidia_filters.nvidia_driver_input_problem("mirror", "535", "570.1.2")


GPU_OK = {"gpu_present": True, "kernel_module": {"version": "580.159.04"}, "library": {"version": "580.159.04"}, "nouveau_loaded": False}


def test_reboot_reason_from_module_results():
    assert nvidia_filters.nvidia_reboot_reason(GPU_OK) == ""
    assert nvidia_filters.nvidia_reboot_reason({"gpu_present": False}) == ""
    stale = dict(GPU_OK, kernel_module={"version": "570.1.2"})
    assert "570.1.2 is loaded" in nvidia_filters.nvidia_reboot_reason(stale)


def test_reboot_batches_across_gpu_and_gpuless_hosts():
    hostvars = {"model-a1": {"llmfleet_zone": "zone-a"}, "model-a2": {"llmfleet_zone": "zone-a"},
                "model-b1": {"llmfleet_zone": "zone-b"}, "cpu-only": {"llmfleet_zone": "zone-a"}}
    # What reboot.yml hands over: only the hosts that need a reboot (GPU-less hosts never do).
    needing = ["model-b1", "model-a2", "model-a1"]
    assert zone_filters.zone_batches(needing, hostvars, 1) == [
        {"zone": "zone-a", "hosts": ["model-a1"]}, {"zone": "zone-a", "hosts": ["model-a2"]},
        {"zone": "zone-b", "hosts": ["model-b1"]}]
    assert zone_filters.zone_batches(needing, hostvars, 0) == [
        {"zone": "zone-a", "hosts": ["model-a1", "model-a2"]}, {"zone": "zone-b", "hosts": ["model-b1"]}]
    assert zone_filters.zone_batches([], hostvars, 1) == []


def test_reboot_budget_must_be_sane():
    with pytest.raises(AnsibleFilterError, match="max_hosts"):
        zone_filters.zone_batches(["model-a1"], {"model-a1": {}}, -1)
