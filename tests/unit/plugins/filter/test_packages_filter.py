import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.cluster.plugins.filter.packages import llmfleet_missing_packages

FACTS = {"packages": {"ufw": [{"version": "0.36.2-1"}], "sudo": [{"version": "1.9.13p3"}]}}


def test_only_what_is_not_installed_in_input_order():
    assert llmfleet_missing_packages(["rsyslog", "ufw", "socat", "sudo"], FACTS) == ["rsyslog", "socat"]
    assert llmfleet_missing_packages(["ufw", "sudo"], FACTS) == []
    assert llmfleet_missing_packages("ufw", FACTS) == []


def test_unread_packages_leave_the_decision_to_apt():
    assert llmfleet_missing_packages(["ufw"], {"distribution": "Debian"}) == ["ufw"]


def test_a_pinned_name_is_never_taken_as_installed():
    assert llmfleet_missing_packages(["ufw=0.36.2-1"], FACTS) == ["ufw=0.36.2-1"]


def test_facts_that_are_not_facts_are_an_error():
    with pytest.raises(AnsibleFilterError, match="must be the host's ansible_facts"):
        llmfleet_missing_packages(["ufw"], None)
