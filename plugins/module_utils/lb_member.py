# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Load-balancer members: take replicas out of rotation, wait for their requests, put them back.

HAProxy through its runtime API (our own client: community.general.haproxy can hang in
drain + wait on an enabled backend, community.general#12286, and when draining to maint, #1913;
it has no check mode). Every wait here depends only on numbers HAProxy reports (sessions,
queue, check status) and is bounded by a deadline, so it cannot hang.

nginx OSS has no runtime API: a replica is drained by marking its `server` line `down` in the
rendered configuration, checking the result with `nginx -t`, and reloading; requests in flight
finish in the old workers, so "drained" means every worker of the previous generation has exited.

One backend (HAProxy) or upstream (nginx) per model: wherever a function takes `backend`, it takes
one name or a list of names, and finds each server in whichever of them holds it (server names are
the fleet's HOST-rINDEX, unique across models).

The socket, the clock and the process table are passed in, so the logic is tested without them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import re
import socket

STATES = ("ready", "drain", "maint")


class LBError(Exception):
    pass


def backend_names(backend):
    """One backend name, a list of them, or {server: backend} -> the list of names."""
    if isinstance(backend, dict):
        return sorted(set(backend.values()))
    return [backend] if isinstance(backend, str) else list(backend)


def _where(kind, backend):
    """ "backend llm" or "backends gemma, llm", for messages."""
    names = backend_names(backend)
    return "%s %s" % (kind, names[0]) if len(names) == 1 else "%ss %s" % (kind, ", ".join(names))


# --- HAProxy --------------------------------------------------------------------------------------

class RuntimeAPI(object):
    """One command per connection (HAProxy closes a non-interactive session after answering)."""

    def __init__(self, path, timeout=5.0, connect=None):
        self.path = path
        self.timeout = timeout
        self._connect = connect or self._unix

    def _unix(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        return sock

    def command(self, text):
        try:
            sock = self._connect()
        except (OSError, socket.error) as exc:
            raise LBError("cannot connect to the HAProxy runtime API at %s: %s" % (self.path, exc))
        try:
            sock.sendall(text.encode("ascii") + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except socket.timeout:
            raise LBError("the HAProxy runtime API at %s did not finish answering %r within %.1f s"
                          % (self.path, text, self.timeout))
        except (OSError, socket.error) as exc:
            raise LBError("the HAProxy runtime API at %s failed during %r: %s" % (self.path, text, exc))
        finally:
            sock.close()
        return b"".join(chunks).decode("utf-8", "replace")

    def stats(self, backend):
        servers = parse_stat(self.command("show stat"), backend)
        # The status shows DOWN over an administrative drain or maint (a drained server that its checks
        # or its node's fault agent hold down reads "DOWN"): the admin state comes from `show servers
        # state`, where HAProxy keeps it as flags. Read from the status, a drained server that was down
        # looked ready, and a restore left it drained (seen with the fault agent's restart-loop verdict).
        admin = parse_servers_state(self.command("show servers state"))
        for name, view in servers.items():
            if (view["backend"], name) in admin:
                view["admin_state"] = admin[(view["backend"], name)]
        return servers

    def set_state(self, backend, server, state):
        answer = self.command("set server %s/%s state %s" % (backend, server, state)).strip()
        # Success is an empty answer; anything else is HAProxy saying why not.
        if answer:
            raise LBError("HAProxy refused 'set server %s/%s state %s': %s" % (backend, server, state, answer))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def parse_stat(text, backend):
    """`show stat` CSV -> {server: view} for the servers of the backend(s) (not BACKEND rows)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# pxname,svname,"):
        raise LBError("unexpected answer to 'show stat' (no CSV header): %r" % text[:200])
    header = lines[0][2:].split(",")
    wanted = set(backend_names(backend))
    servers = {}
    for row in csv.DictReader(lines[1:], fieldnames=header):
        if row.get("pxname") not in wanted or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        if row["svname"] in servers:
            raise LBError("server %s is in backends %s and %s: server names must be unique across models"
                          % (row["svname"], servers[row["svname"]]["backend"], row["pxname"]))
        servers[row["svname"]] = server_view(row)
    return servers


def admin_state(status):
    """What an operator set: 'maint', 'drain' or 'ready' (HAProxy shows it in the status)."""
    status = (status or "").upper()
    if status.startswith("MAINT"):
        return "maint"
    if status.startswith("DRAIN"):
        return "drain"
    return "ready"


# srv_admin_state flags of `show servers state` (HAProxy's SRV_ADMF_*): forced, inherited, configured,
# resolution and hostname maintenance; forced and inherited drain.
MAINT_FLAGS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
DRAIN_FLAGS = 0x08 | 0x10


def parse_servers_state(text):
    """`show servers state` -> {(backend, server): 'maint' | 'drain' | 'ready'}; {} when the answer is
    not that table (the status then says what it can)."""
    lines = text.splitlines()
    header = next((line[2:].split() for line in lines if line.startswith("# be_id ")), None)
    if not header or "srv_admin_state" not in header:
        return {}
    at = dict((name, index) for index, name in enumerate(header))
    states = {}
    for line in lines:
        fields = line.split()
        if not fields or line.startswith("#") or len(fields) <= at["srv_admin_state"] or not fields[0].isdigit():
            continue
        flags = _int(fields[at["srv_admin_state"]])
        states[(fields[at["be_name"]], fields[at["srv_name"]])] = (
            "maint" if flags & MAINT_FLAGS else "drain" if flags & DRAIN_FLAGS else "ready")
    return states


def server_view(row):
    return {
        "backend": row.get("pxname", ""),
        "status": row.get("status", ""),
        "admin_state": admin_state(row.get("status")),
        "sessions": _int(row.get("scur")),
        "queued": _int(row.get("qcur")),
        "total": _int(row.get("stot")),
        "responses_5xx": _int(row.get("hrsp_5xx")),
        "failed_responses": _int(row.get("eresp")),
        "failed_connections": _int(row.get("econ")),
        "check": row.get("check_status", ""),
    }


def _check_known(names, found, where):
    """Raise LBError naming the servers `where` (e.g. "backend llm") does not have."""
    missing = sorted(set(names) - set(found))
    if missing:
        raise LBError("%s has no server %s (it has: %s)" % (where, ", ".join(missing), ", ".join(sorted(found)) or "none"))


def haproxy_query(api, backend, names):
    """{server: view + previous} of the named servers; changes nothing."""
    stats = api.stats(backend)
    _check_known(names, stats, _where("backend", backend))
    return dict((n, dict(stats[n], previous=stats[n]["admin_state"])) for n in names)


def is_drained(view):
    return view["sessions"] == 0 and view["queued"] == 0


def is_up(view):
    # Transitional statuses ("UP 1/2" while going down, "DOWN 1/2" while coming up) are not UP.
    return view["status"] == "UP"


def wait_for(read, done, clock, sleep, timeout, interval):
    """Call read() until done(result) or timeout seconds passed. Returns (ok, result, seconds)."""
    start = clock()
    while True:
        result = read()
        if done(result):
            return True, result, clock() - start
        if clock() - start >= timeout:
            return False, result, clock() - start
        sleep(interval)


def haproxy_apply(api, backend, targets, wait, timeout, interval, check_mode, clock, sleep):
    """Set each server of targets ({server: state}) and, with wait, wait until the drained and
    maint servers have no session and no queued request and the ready servers are UP.

    Returns {"changed", "servers": {name: view + previous}, "waited_seconds"}.
    Raises LBError before any change when a server is not in the backend.
    """
    before = api.stats(backend)
    _check_known(targets, before, _where("backend", backend))
    changed = [name for name, state in sorted(targets.items()) if before[name]["admin_state"] != state]
    if not check_mode:
        for name in changed:
            api.set_state(before[name]["backend"], name, targets[name])
    waited = 0.0
    after = before
    if not check_mode:
        after = api.stats(backend)
    if wait and not check_mode:
        def done(stats):
            for name, state in targets.items():
                view = stats[name]
                if state == "ready" and not is_up(view):
                    return False
                if state != "ready" and not is_drained(view):
                    return False
            return True

        ok, after, waited = wait_for(lambda: api.stats(backend), done, clock, sleep, timeout, interval)
        if not ok:
            late = ["%s (%s, %d sessions, %d queued)" % (n, after[n]["status"], after[n]["sessions"], after[n]["queued"])
                    for n, state in sorted(targets.items()) if not (is_up(after[n]) if state == "ready"
                                                                    else is_drained(after[n]))]
            raise LBError("not done within %g s: %s" % (timeout, ", ".join(late)))
    servers = {}
    for name in targets:
        servers[name] = dict(after[name], previous=before[name]["admin_state"])
    return {"changed": bool(changed), "servers": servers, "waited_seconds": round(waited, 3)}


# --- nginx ------------------------------------------------------------------------------------------

_SERVER_LINE = re.compile(r"^(?P<indent>\s*)server\s+(?P<address>\S+)(?P<params>[^;#]*);(?P<rest>\s*#\s*(?P<name>\S+).*)$")


def _upstream_span(lines, upstream):
    start = None
    depth = 0
    for number, line in enumerate(lines):
        code = line.split("#", 1)[0]
        if start is None:
            if re.match(r"^\s*upstream\s+%s\s*\{" % re.escape(upstream), code):
                start = number
                depth = code.count("{") - code.count("}")
            continue
        depth += code.count("{") - code.count("}")
        if depth <= 0:
            return start, number
    raise LBError("no 'upstream %s { ... }' block in the nginx configuration" % upstream)


def nginx_servers(text, upstream):
    """{name: {"line": index, "down": bool, "backend": upstream}} of the upstream(s)' servers, named by
    their comment (the load_balancer role writes `server ADDRESS:PORT ...;  # NAME zone ZONE`)."""
    lines = text.split("\n")
    servers = {}
    for name in backend_names(upstream):
        first, last = _upstream_span(lines, name)
        for number in range(first + 1, last):
            match = _SERVER_LINE.match(lines[number])
            if match:
                params = match.group("params").split()
                servers[match.group("name")] = {"line": number, "down": "down" in params, "backend": name}
    return servers


def nginx_set(text, upstream, targets):
    """New configuration text with each server of targets ({name: state}) marked `down` (drain,
    maint) or not (ready). Returns (text, {name: previous state}). Raises LBError for unknown names."""
    lines = text.split("\n")
    servers = nginx_servers(text, upstream)
    _check_known(targets, servers, _where("upstream", upstream))
    previous = {}
    for name, state in targets.items():
        number = servers[name]["line"]
        match = _SERVER_LINE.match(lines[number])
        params = [p for p in match.group("params").split() if p != "down"]
        if state != "ready":
            params.append("down")
        previous[name] = "drain" if servers[name]["down"] else "ready"
        flags = "".join(" " + p for p in params)
        lines[number] = "%sserver %s%s;%s" % (match.group("indent"), match.group("address"), flags, match.group("rest"))
    return "\n".join(lines), previous


def nginx_query(text, upstream, names):
    """{server: {"previous", "status"}} of the named servers in the configuration text."""
    servers = nginx_servers(text, upstream)
    _check_known(names, servers, _where("upstream", upstream))
    return dict((n, {"previous": "drain" if servers[n]["down"] else "ready", "backend": servers[n]["backend"],
                     "status": "down" if servers[n]["down"] else "up"}) for n in names)


def nginx_workers(processes, master_pid):
    """PIDs of the master's worker processes. processes: [(pid, ppid, title)]."""
    return sorted(pid for pid, ppid, title in processes
                  if ppid == master_pid and title.startswith("nginx: worker process"))


# --- Owned drains ----------------------------------------------------------------------------------
# A drain is owned by whoever set it: the rolling update records, on the load balancer itself and
# before it changes anything, which servers it takes out, the state each had before, its run id and
# the time. A later run restores exactly those, from that record: "previous" is never read from a
# drain an interrupted run left behind, and a server somebody else took out (by hand, a script) is
# never claimed, so it stays as they left it. The ledger is a JSON file next to the LB
# ({"version": 1, "backends": {backend: {server: entry}}}); HAProxy's own runtime state is lost at
# a restart, the ledger is not, and a server found back at its previous state is simply forgotten.

LEDGER_VERSION = 1


def _held(ledger, backend):
    """{server: (its backend, entry)} the ledger holds for the backend(s) (copies)."""
    stored = (ledger or {}).get("backends") or {}
    held = {}
    for name in backend_names(backend):
        for server, entry in (stored.get(name) or {}).items():
            held[server] = (name, dict(entry))
    return held


def _store(ledger, backend, held):
    """The ledger with the backend(s)' entries replaced by held."""
    backends = dict((ledger or {}).get("backends") or {})
    for name in backend_names(backend):
        backends.pop(name, None)
    for server, (name, entry) in held.items():
        backends.setdefault(name, {})[server] = entry
    return {"version": LEDGER_VERSION, "backends": backends}


def ledger_entries(ledger, backend):
    """{server: entry} the ledger holds for the backend(s) (a copy)."""
    return dict((server, entry) for server, (_name, entry) in _held(ledger, backend).items())


def ledger_claim(ledger, backend, current, state, names, owner, since):
    """Take names out (state: drain or maint) as owner.

    backend: a backend name, or {server: backend} where the servers are in several.
    current: {server: admin state now} (ready, drain, maint; nginx knows ready and drain only).
    Claimed: servers that are ready now, and servers this ledger already holds (an earlier run's
    leftover: their recorded previous state is kept, the new owner noted). Servers someone else
    took out are skipped, untouched.
    Returns (ledger, {server: state to set}, {server: why skipped}).
    """
    held = _held(ledger, backend)
    targets = {}
    skipped = {}
    for name in names:
        if name in held:
            where, entry = held[name]
            held[name] = (where, dict(entry, state=state, owner=owner, claimed_again_at=since))
            targets[name] = state
        elif current[name] == "ready":
            where = backend[name] if isinstance(backend, dict) else backend
            held[name] = (where, {"previous": "ready", "state": state, "owner": owner, "since": since})
            targets[name] = state
        else:
            skipped[name] = "%s, not set by %s: left as it is" % (current[name], owner)
    return _store(ledger, backend, held), targets, skipped


def ledger_release(ledger, backend, current, names):
    """Put back what the ledger holds of names.

    A server still in the state its owner set goes back to its recorded previous state; one found
    at its previous state already (HAProxy restarted, someone enabled it) is just forgotten; one
    someone else changed since (e.g. put in maint by hand) is left as it is and reported.
    Servers the ledger does not hold are not touched.
    Returns (ledger, {server: state to set}, {server: what happened, for people}).
    """
    held = _held(ledger, backend)
    targets = {}
    report = {}
    for name in names:
        entry = held.pop(name, (None, None))[1]
        if entry is None:
            report[name] = "not drained by us: left %s" % current[name]
        elif current[name] == entry["state"]:
            targets[name] = entry["previous"]
            report[name] = "restored to %s (taken out by %s at %s)" % (entry["previous"], entry.get("owner", "?"),
                                                                       entry.get("since", "?"))
        elif current[name] == entry["previous"]:
            report[name] = "already %s" % current[name]
        else:
            report[name] = ("changed by someone else since %s took it out: left %s"
                            % (entry.get("owner", "?"), current[name]))
    return _store(ledger, backend, held), targets, report


def nginx_state(state):
    """What nginx can show of a state: a `down` server is 'drain'."""
    return "ready" if state == "ready" else "drain"
