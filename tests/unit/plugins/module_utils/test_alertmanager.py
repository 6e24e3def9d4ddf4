"""Alertmanager's configuration and the checks of its variables (module_utils/alertmanager.py); amtool
checks the rendered file on the lab's infra host (roles/alertmanager, validate:)."""

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import alertmanager

HOOK = {"name": "oncall", "webhook_configs": [{"url": "https://hooks.example.net/x", "send_resolved": True}]}
MAIL = {"name": "team", "email_configs": [{"to": "llm@example.net"}]}


def build(receivers, default="", routes=()):
    return alertmanager.config(receivers, default, list(routes), ["alertname", "zone"], "30s", "5m", "4h", [], {})


def test_the_first_receiver_takes_what_no_route_catches_and_routes_are_kept():
    conf = build([HOOK, MAIL], routes=[{"receiver": "team", "matchers": ['severity="warning"']}])
    assert conf["route"]["receiver"] == "oncall"
    assert conf["route"]["routes"] == [{"receiver": "team", "matchers": ['severity="warning"']}]
    assert conf["route"]["group_by"] == ["alertname", "zone"]
    assert [r["name"] for r in conf["receivers"]] == ["oncall", "team"]
    assert "global" not in conf


def test_without_receivers_alerts_stay_in_alertmanager():
    conf = build([])
    assert conf["route"]["receiver"] == alertmanager.NO_RECEIVER
    assert conf["receivers"] == [{"name": alertmanager.NO_RECEIVER}]


@pytest.mark.parametrize("receivers, problem", [
    ([{"name": "oncall"}], "alertmanager_receivers[0] (oncall): no target"),
    ([{"name": "oncall", "webhook_configs": []}], "alertmanager_receivers[0] (oncall): no target"),
    ([{"name": "oncall", "webhook_configs": [{"send_resolved": True}]}], "webhook_configs[0]: url not set"),
    ([{"name": "m", "email_configs": [{"from": "a@b"}]}], "email_configs[0]: to not set"),
    ([HOOK, HOOK], "alertmanager_receivers[1] (oncall): name: given to two receivers"),
    ([dict(HOOK, pager_configs=[{}])], "pager_configs: not an Alertmanager 0.25 receiver key"),
    ([{"webhook_configs": [{"url": "x"}]}], "alertmanager_receivers[0]: name: None is not a receiver name"),
    ("oncall", "alertmanager_receivers: give a list"),
])
def test_receivers_that_would_deliver_nothing_are_named(receivers, problem):
    found = list(alertmanager.receivers_problems(receivers))
    assert any(problem in p for p in found), found


def test_routes_and_the_default_must_name_receivers():
    assert list(alertmanager.routes_problems([{"receiver": "oncall"}], "oncall", [HOOK])) == []
    found = list(alertmanager.routes_problems([{"receiver": "pager"}], "boss", [HOOK]))
    assert found == ["alertmanager_default_receiver: boss is not a receiver of alertmanager_receivers (oncall)",
                     "alertmanager_routes[0]: receiver: pager is not a receiver of alertmanager_receivers (oncall)"]
