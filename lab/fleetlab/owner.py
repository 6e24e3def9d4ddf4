"""Which clone's lab runs on this machine.

The lab's hosts, network, addresses and package gateway are this machine's, one set of them: a
second clone's `up` with the same settings used to adopt the first clone's running hosts and
replace their admin key with its own, locking the first clone out of its own lab with no warning
(and its `down --all` removed the other clone's hosts). Now the first clone to bring a lab up owns
the machine's lab until its last host is gone; another clone is refused, naming the owner, unless
that clone's state is gone (deleted clone: nobody can reach those hosts any more, so they are taken
over with a warning) or no host of the labs is left (a stale claim).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .settings import Settings
from .system import LabError, log


def owner_of(settings: Settings) -> dict | None:
    """The claim on this machine's lab: {"state", "repo", "since"}, or None."""
    try:
        return json.loads(settings.owner_file.read_text())
    except (OSError, ValueError):
        return None


def check(settings: Settings, hosts_exist: bool, action: str) -> dict | None:
    """Refuse `action` (up, down) when another clone, still present, owns hosts on this machine. Returns the
    other clone's claim when it may be taken over (None when the claim is this clone's or absent)."""
    claim = owner_of(settings)
    if claim is None or claim.get("state") == str(settings.state):
        return None
    other_state = Path(claim.get("state", ""))
    if hosts_exist and other_state.exists():
        consequence = {"up": "take them over (its admin key replaced by this clone's)",
                       "down": "remove them"}.get(action, "change them")
        raise LabError(
            f"this machine's lab belongs to the clone at {claim.get('repo')} (state {other_state}, since "
            f"{claim.get('since')}): its hosts, addresses and package gateway are this machine's one set, and "
            f"{action} from here would {consequence}. Take that lab down from there first "
            f"(lab/llmfleet_lab.py down --all in {claim.get('repo')})")
    if hosts_exist:
        log(f"taking over the lab of a clone that is gone ({claim.get('repo')}, state {other_state} no longer exists)")
    return claim


def claim(settings: Settings) -> None:
    if (owner_of(settings) or {}).get("state") == str(settings.state):
        return
    settings.owner_file.parent.mkdir(parents=True, exist_ok=True)
    settings.owner_file.write_text(json.dumps({
        "state": str(settings.state), "repo": str(settings.repo),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")


def release(settings: Settings) -> None:
    if (owner_of(settings) or {}).get("state") == str(settings.state):
        settings.owner_file.unlink(missing_ok=True)
