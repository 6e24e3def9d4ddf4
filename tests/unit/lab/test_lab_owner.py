"""Two clones on one machine (lab/fleetlab/owner.py): the lab's hosts, network and gateway are this
machine's one set, so a second clone must not take them over (it used to replace the first clone's
admin key on `up`, and remove its hosts on `down --all`). Real files; no host is started."""

import dataclasses
import json

import pytest
from fleetlab import owner
from fleetlab.system import LabError


@pytest.fixture(name="other")
def fixture_other(settings, tmp_path):
    """A second clone: its own repository and state, the same machine-wide owner file."""
    repo = tmp_path / "clone2"
    return dataclasses.replace(settings, repo=repo, state=repo / ".lab")


def test_the_first_clone_claims_the_machine_and_the_second_is_refused_naming_the_owner(settings, other):
    assert owner.check(settings, hosts_exist=False, action="up") is None
    owner.claim(settings)
    assert owner.owner_of(settings)["state"] == str(settings.state)
    settings.state.mkdir(parents=True)
    with pytest.raises(LabError, match=rf"belongs to the clone at {settings.repo} \(state {settings.state}.*"
                                       r"up from here would take them over \(its admin key replaced"):
        owner.check(other, hosts_exist=True, action="up")
    with pytest.raises(LabError, match="down from here would remove them"):
        owner.check(other, hosts_exist=True, action="down")
    # The owner itself goes on, as often as it likes.
    assert owner.check(settings, hosts_exist=True, action="up") is None
    owner.claim(settings)
    assert owner.owner_of(settings)["state"] == str(settings.state)


def test_a_claim_is_released_by_its_owner_only(settings, other):
    owner.claim(settings)
    owner.release(other)
    assert owner.owner_of(settings) is not None
    owner.release(settings)
    assert owner.owner_of(settings) is None and not settings.owner_file.exists()
    owner.claim(other)
    assert json.loads(settings.owner_file.read_text())["repo"] == str(other.repo)


def test_the_lab_of_a_deleted_clone_or_a_lab_without_hosts_is_taken_over(settings, other):
    owner.claim(settings)  # settings.state does not exist: that clone is gone
    assert owner.check(other, hosts_exist=True, action="up")["state"] == str(settings.state)
    settings.state.mkdir(parents=True)
    # Its state is there but none of the labs' hosts is left: a stale claim.
    assert owner.check(other, hosts_exist=False, action="up")["state"] == str(settings.state)
