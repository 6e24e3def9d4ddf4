import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import zones


def test_zone_order_is_natural_and_puts_unzoned_hosts_last():
    assert zones.zone_order(["zone-10", "", "zone-2", "zone-b", "zone-a", "zone-2"]) == ["zone-2", "zone-10", "zone-a", "zone-b", ""]


ZONE_OF = {"model-a1": "zone-a", "model-a2": "zone-a", "model-a10": "zone-a", "model-b1": "zone-b", "model-b2": "zone-b",
           "model-c1": "zone-c", "gpu-infra": None}


def test_one_host_at_a_time_in_zone_order():
    batches = zones.batches_by_zone(["model-b2", "model-a10", "model-a2", "model-b1", "model-a1"], ZONE_OF, 1)
    assert [b["hosts"] for b in batches] == [["model-a1"], ["model-a2"], ["model-a10"], ["model-b1"], ["model-b2"]]
    assert [b["zone"] for b in batches] == ["zone-a", "zone-a", "zone-a", "zone-b", "zone-b"]


def test_a_budget_larger_than_a_zone_never_spans_two_zones():
    batches = zones.batches_by_zone(list(ZONE_OF), ZONE_OF, 5)
    assert batches == [
        {"zone": "zone-a", "hosts": ["model-a1", "model-a2", "model-a10"]},
        {"zone": "zone-b", "hosts": ["model-b1", "model-b2"]},
        {"zone": "zone-c", "hosts": ["model-c1"]},
        {"zone": "", "hosts": ["gpu-infra"]},
    ]


def test_budget_splits_a_zone():
    batches = zones.batches_by_zone(["model-a1", "model-a2", "model-a10"], ZONE_OF, 2)
    assert [b["hosts"] for b in batches] == [["model-a1", "model-a2"], ["model-a10"]]


def test_zero_means_a_whole_zone():
    batches = zones.batches_by_zone(list(ZONE_OF), ZONE_OF, 0)
    assert [len(b["hosts"]) for b in batches] == [3, 2, 1, 1]


def test_hosts_not_asked_for_are_left_alone_and_nothing_to_do_gives_no_batch():
    assert zones.batches_by_zone(["model-c1"], ZONE_OF, 1) == [{"zone": "zone-c", "hosts": ["model-c1"]}]
    assert zones.batches_by_zone([], ZONE_OF, 1) == []


@pytest.mark.parametrize("bad", [-1, True, "2", 1.5, None])
def test_bad_budget_is_refused(bad):
    with pytest.raises(ValueError, match="max_hosts"):
        zones.batches_by_zone(["model-a1"], ZONE_OF, bad)


def test_hosts_in_zone_order_then_natural_names_without_a_zone_last():
    zone_of = {"lb10": "zone-b", "lb2": "zone-b", "gpu-a10": "zone-a", "gpu-a2": "zone-a", "infra1": None}
    assert zones.in_zone_order(["infra1", "lb10", "gpu-a10", "lb2", "gpu-a2", "spare"], zone_of) == [
        "gpu-a2", "gpu-a10", "lb2", "lb10", "infra1", "spare"]
