#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lb_member
short_description: Drain, disable or enable model-server replicas on a load balancer, and wait for it
version_added: 0.1.0
description:
  - Sets replicas (load-balancer servers) to C(ready), C(drain) or C(maint), waits until the
    drained ones have no request left (bounded by I(timeout)) or the enabled ones are back up, and
    returns each one's previous state so that it can be restored with I(restore).
  - HAProxy through its runtime API (admin-level socket), with our own client instead of
    community.general.haproxy, whose drain + wait can hang (community.general issues 12286 and 1913) and which
    has no check mode. Drained means no session and no queued request; up means the status is
    exactly C(UP) (not a transitional C(UP 1/2)).
  - nginx (OSS, no runtime API) by marking the server lines C(down) in the configuration the
    load_balancer role rendered, checking it with C(nginx -t) before it replaces the old one, and
    reloading; drained means every worker of the previous configuration has exited (they finish
    their requests first, bounded by nginx's C(worker_shutdown_timeout)). nginx has no active health
    checks, so C(ready) does not wait for anything.
  - Without I(state), I(restore) or I(restore_owned), reports the servers and changes nothing.
  - B(Owned drains.) With I(owner), a drain (or maint) is first recorded in I(ledger) on the load
    balancer (server, its state before, owner, time), then set. Servers someone else already took
    out are skipped and left as they are (C(skipped)); servers the ledger already holds (an
    interrupted run's leftovers) keep the state recorded before that run. I(restore_owned) puts
    back exactly what the ledger holds of I(servers) and forgets it; a server changed by someone
    else since (e.g. put in C(maint) by hand) is left as it is and reported (C(report)).
  - Every server name is checked before anything changes.
options:
  servers:
    description: Server names (C(HOST-rINDEX), from the llmfleet_lb_members filter).
    type: list
    elements: str
  state:
    description: State to set on every server of I(servers).
    type: str
    choices: [ready, drain, maint]
  restore:
    description: State per server, as returned in C(servers[*].previous) by an earlier call.
    type: dict
  owner:
    description:
      - Who takes the servers out (e.g. C(rolling_update RUN_ID)); with I(state) C(drain) or C(maint) the drain is
        recorded in I(ledger) before anything changes.
    type: str
  restore_owned:
    description: Put I(servers) back to the state the ledger recorded before they were taken out, and forget them.
    type: bool
    default: false
  ledger:
    description: The owned-drain ledger on the load balancer (JSON, mode 0600).
    type: path
    default: /var/lib/llmfleet/lb-drains.json
  engine:
    description: Load-balancer engine.
    type: str
    choices: [haproxy, nginx]
    default: haproxy
  backend:
    description:
      - HAProxy backends or nginx upstreams that hold the servers, one per model (the model nodes'
        C(model_server_name)); each server is found in whichever of them holds it.
    type: list
    elements: str
    default: [llm]
    aliases: [backends]
  socket:
    description: HAProxy runtime API socket (admin level).
    type: path
    default: /run/haproxy/admin.sock
  nginx_config:
    description: nginx configuration file that holds the upstream.
    type: path
    default: /etc/nginx/nginx.conf
  nginx_service:
    description: systemd unit reloaded after the nginx configuration changed.
    type: str
    default: nginx
  wait:
    description: Wait until drained servers have no request left and enabled servers are up.
    type: bool
    default: true
  timeout:
    description: Seconds to wait at most; the module fails after it, naming the servers not done.
    type: float
    default: 120
  interval:
    description: Seconds between two looks.
    type: float
    default: 0.5
  socket_timeout:
    description: Seconds one runtime API command may take.
    type: float
    default: 5
notes:
  - Supports check mode (reports what would change; no wait).
author: llmfleet maintainers (@llmfleet)
"""

EXAMPLES = r"""
- name: Drain zone a's replicas on every load balancer and wait for their requests
  llmfleet.cluster.lb_member:
    engine: "{{ hostvars[item].load_balancer_engine | default('haproxy') }}"
    servers: [model-a1-r0, model-a1-r1]
    state: drain
    timeout: 300
  delegate_to: "{{ item }}"
  loop: "{{ groups['load_balancers'] }}"
  register: drained

- name: Put them back as each load balancer had them
  llmfleet.cluster.lb_member:
    engine: "{{ hostvars[item.item].load_balancer_engine | default('haproxy') }}"
    # {server: its state before the drain}
    restore: "{{ dict(item.servers.keys() | zip(item.servers.values() | map(attribute='previous'))) }}"
  delegate_to: "{{ item.item }}"
  loop: "{{ drained.results }}"

- name: Drain, recorded as ours (an interrupted run's successor restores exactly these)
  llmfleet.cluster.lb_member:
    servers: [model-a1-r0, model-a1-r1]
    state: drain
    owner: rolling_update 20261202T230000Z-1234
- name: Put back what we took out; a server put in maint by hand meanwhile stays in maint
  llmfleet.cluster.lb_member:
    servers: [model-a1-r0, model-a1-r1]
    restore_owned: true
- name: Only look (sessions, queue, status, counters)
  llmfleet.cluster.lb_member:
    servers: [model-a1-r0]
  register: seen
"""

RETURN = r"""
servers:
  description: Each server after the change, by name.
  returned: always
  type: dict
  contains:
    previous:
      description: Its state before (ready, drain or maint).
      type: str
    backend:
      description: The backend (nginx upstream) that holds it.
      type: str
    status:
      description: HAProxy status (UP, DOWN, DRAIN, MAINT...); nginx C(up) or C(down).
      type: str
    sessions:
      description: Requests in progress (HAProxy).
      type: int
    queued:
      description: Requests queued for it (HAProxy).
      type: int
    total:
      description: Requests it has received (HAProxy).
      type: int
    responses_5xx:
      description: 5xx answers it gave (HAProxy).
      type: int
owned:
  description: What the ledger holds for the backends after the call, by server (previous, state, owner, since).
  returned: always
  type: dict
skipped:
  description: With I(owner), servers not claimed because someone else had taken them out, and why.
  returned: when a claim was made
  type: dict
report:
  description: With I(restore_owned), what happened to each server.
  returned: when restore_owned
  type: dict
waited_seconds:
  description: Seconds spent waiting.
  returned: always
  type: float
engine:
  description: The load-balancer engine (haproxy or nginx).
  returned: always
  type: str
"""

import errno
import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.cluster.plugins.module_utils import lb_member


def processes():
    """[(pid, ppid, title)] from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as cmdline:
                title = cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        found.append((int(entry), ppid, title))
    return found


NGINX_PID_FILE = "/run/nginx.pid"


def nginx_master_pid(module):
    try:
        with open(NGINX_PID_FILE) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read nginx's master PID from %s: %s" % (NGINX_PID_FILE, exc))


def run_nginx(module, targets):
    p = module.params
    try:
        with open(p["nginx_config"]) as handle:
            text = handle.read()
        new_text, previous = lb_member.nginx_set(text, p["backend"], targets)
    except (OSError, lb_member.LBError) as exc:
        module.fail_json(msg="%s: %s" % (p["nginx_config"], exc))
    changed = new_text != text
    waited = 0.0
    if changed and not module.check_mode:
        directory = os.path.dirname(p["nginx_config"])
        fd, candidate = tempfile.mkstemp(prefix=".llmfleet-", suffix=".conf", dir=directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_text)
        os.chmod(candidate, os.stat(p["nginx_config"]).st_mode & 0o7777)
        rc, out, err = module.run_command(["nginx", "-t", "-q", "-c", candidate])
        if rc != 0:
            os.unlink(candidate)
            module.fail_json(msg="nginx -t refused the changed configuration, nothing changed: %s" % (err or out))
        master = nginx_master_pid(module)
        old_workers = set(lb_member.nginx_workers(processes(), master))
        os.rename(candidate, p["nginx_config"])
        rc, out, err = module.run_command(["systemctl", "reload", p["nginx_service"]])
        if rc != 0:
            module.fail_json(msg="reloading %s failed: %s" % (p["nginx_service"], err or out))
        if p["wait"]:
            ok, left, waited = lb_member.wait_for(
                lambda: old_workers & set(pid for pid, _ppid, _title in processes()), lambda alive: not alive,
                time.monotonic, time.sleep, p["timeout"], p["interval"])
            if not ok:
                module.fail_json(msg="workers %s of the previous nginx configuration still serve requests after %.0f s"
                                 % (", ".join(str(x) for x in sorted(left)), p["timeout"]))
    servers = dict((name, {"previous": previous[name], "status": "up" if state == "ready" else "down"})
                   for name, state in targets.items())
    return {"changed": changed, "servers": servers, "waited_seconds": round(waited, 3), "engine": "nginx"}


def read_ledger(module):
    path = module.params["ledger"]
    try:
        with open(path) as handle:
            ledger = json.load(handle)
    except (OSError, IOError) as exc:
        if getattr(exc, "errno", None) == errno.ENOENT:
            return {"version": lb_member.LEDGER_VERSION, "backends": {}}
        module.fail_json(msg="cannot read the drain ledger %s: %s" % (path, exc))
    except ValueError as exc:
        module.fail_json(msg="the drain ledger %s is not JSON (%s): look at it and remove it by hand only if no "
                             "rolling update left servers drained" % (path, exc))
    if not isinstance(ledger, dict) or ledger.get("version") != lb_member.LEDGER_VERSION:
        module.fail_json(msg="the drain ledger %s has an unknown format (version %r)" % (path, (ledger or {}).get("version")))
    return ledger


def write_ledger(module, ledger):
    """Atomically, root only (it tells which servers are out and why)."""
    path = module.params["ledger"]
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, temporary = tempfile.mkstemp(prefix=".lb-drains-", dir=directory)
    with os.fdopen(fd, "w") as handle:
        json.dump(ledger, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o600)
    os.rename(temporary, path)


def current_states(module, api, names):
    """({server: admin state}, {server: its backend}) as the LB sees it now (nginx: ready or drain)."""
    p = module.params
    try:
        if p["engine"] == "nginx":
            with open(p["nginx_config"]) as handle:
                servers = lb_member.nginx_query(handle.read(), p["backend"], names)
        else:
            servers = lb_member.haproxy_query(api, p["backend"], names)
    except (OSError, lb_member.LBError) as exc:
        module.fail_json(msg="%s: %s" % (p["nginx_config"] if p["engine"] == "nginx" else ", ".join(p["backend"]), exc))
    return (dict((name, view["previous"]) for name, view in servers.items()),
            dict((name, view["backend"]) for name, view in servers.items()))


def apply(module, api, targets):
    p = module.params
    if p["engine"] == "nginx":
        return run_nginx(module, targets)
    try:
        result = lb_member.haproxy_apply(api, p["backend"], targets, p["wait"], p["timeout"], p["interval"],
                                         module.check_mode, time.monotonic, time.sleep)
    except lb_member.LBError as exc:
        module.fail_json(msg=str(exc))
    result["engine"] = "haproxy"
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            servers=dict(type="list", elements="str"),
            state=dict(type="str", choices=list(lb_member.STATES)),
            restore=dict(type="dict"),
            restore_owned=dict(type="bool", default=False),
            owner=dict(type="str"),
            ledger=dict(type="path", default="/var/lib/llmfleet/lb-drains.json"),
            engine=dict(type="str", choices=["haproxy", "nginx"], default="haproxy"),
            backend=dict(type="list", elements="str", default=["llm"], aliases=["backends"]),
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            nginx_config=dict(type="path", default="/etc/nginx/nginx.conf"),
            nginx_service=dict(type="str", default="nginx"),
            wait=dict(type="bool", default=True),
            timeout=dict(type="float", default=120),
            interval=dict(type="float", default=0.5),
            socket_timeout=dict(type="float", default=5),
        ),
        mutually_exclusive=[("restore", "servers"), ("restore", "state"), ("owner", "restore")],
        required_one_of=[("servers", "restore")],
        required_if=[("restore_owned", True, ("servers",))],
        supports_check_mode=True,
    )
    p = module.params
    for name in ("timeout", "interval", "socket_timeout"):
        if p[name] <= 0:
            module.fail_json(msg="%s: must be greater than 0, got %r" % (name, p[name]))
    if p["restore_owned"] and (p["state"] or p["restore"] is not None):
        module.fail_json(msg="restore_owned: not together with state or restore")
    if p["owner"] is not None and not (p["state"] in ("drain", "maint") or p["restore_owned"]):
        module.fail_json(msg="owner: only with state drain or maint (claim) or restore_owned")
    api = lb_member.RuntimeAPI(p["socket"], p["socket_timeout"])
    ledger = read_ledger(module)
    if p["restore"] is not None:
        bad = dict((k, v) for k, v in p["restore"].items() if v not in lb_member.STATES)
        if bad:
            module.fail_json(msg="restore: %s: states must be one of %s" % (bad, ", ".join(lb_member.STATES)))
        targets = dict(p["restore"])
    elif p["restore_owned"]:
        current, where = current_states(module, api, p["servers"])
        new_ledger, targets, report = lb_member.ledger_release(ledger, where, current, p["servers"])
        result = apply(module, api, targets)
        # Forgotten only once the servers are back: a failed restore leaves the claim for the next run.
        if new_ledger != ledger and not module.check_mode:
            write_ledger(module, new_ledger)
        result["changed"] = result["changed"] or new_ledger != ledger
        result["owned"] = lb_member.ledger_entries(new_ledger, p["backend"])
        module.exit_json(report=report, **result)
    elif p["state"] and p["owner"] is not None:
        current, where = current_states(module, api, p["servers"])
        state = lb_member.nginx_state(p["state"]) if p["engine"] == "nginx" else p["state"]
        new_ledger, targets, skipped = lb_member.ledger_claim(ledger, where, current, state, p["servers"],
                                                              p["owner"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        # Recorded before anything changes: an interruption right after the drain leaves a claim.
        if new_ledger != ledger and not module.check_mode:
            write_ledger(module, new_ledger)
        result = apply(module, api, dict((name, p["state"]) for name in targets))
        result["changed"] = result["changed"] or new_ledger != ledger
        result["owned"] = lb_member.ledger_entries(new_ledger, p["backend"])
        module.exit_json(skipped=skipped, **result)
    elif p["state"]:
        targets = dict((name, p["state"]) for name in p["servers"])
    else:
        targets = None
    owned = lb_member.ledger_entries(ledger, p["backend"])
    if targets is not None:
        module.exit_json(owned=owned, **apply(module, api, targets))
    if p["engine"] == "nginx":
        try:
            with open(p["nginx_config"]) as handle:
                servers = lb_member.nginx_query(handle.read(), p["backend"], p["servers"])
        except (OSError, lb_member.LBError) as exc:
            module.fail_json(msg="%s: %s" % (p["nginx_config"], exc))
        module.exit_json(changed=False, servers=servers, waited_seconds=0.0, engine="nginx", owned=owned)
    try:
        servers = lb_member.haproxy_query(api, p["backend"], p["servers"])
    except lb_member.LBError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, servers=servers, waited_seconds=0.0, engine="haproxy", owned=owned)


if __name__ == "__main__":
    main()
