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
  - Without I(state) or I(restore), reports the servers and changes nothing.
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
  engine:
    description: Load-balancer engine.
    type: str
    choices: [haproxy, nginx]
    default: haproxy
  backend:
    description: HAProxy backend or nginx upstream that holds the servers.
    type: str
    default: llm
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
waited_seconds:
  description: Seconds spent waiting.
  returned: always
  type: float
engine:
  description: The load-balancer engine (haproxy or nginx).
  returned: always
  type: str
"""

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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            servers=dict(type="list", elements="str"),
            state=dict(type="str", choices=list(lb_member.STATES)),
            restore=dict(type="dict"),
            engine=dict(type="str", choices=["haproxy", "nginx"], default="haproxy"),
            backend=dict(type="str", default="llm"),
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            nginx_config=dict(type="path", default="/etc/nginx/nginx.conf"),
            nginx_service=dict(type="str", default="nginx"),
            wait=dict(type="bool", default=True),
            timeout=dict(type="float", default=120),
            interval=dict(type="float", default=0.5),
            socket_timeout=dict(type="float", default=5),
        ),
        mutually_exclusive=[("restore", "servers"), ("restore", "state")],
        required_one_of=[("servers", "restore")],
        supports_check_mode=True,
    )
    p = module.params
    for name in ("timeout", "interval", "socket_timeout"):
        if p[name] <= 0:
            module.fail_json(msg="%s: must be greater than 0, got %r" % (name, p[name]))
    if p["restore"] is not None:
        bad = dict((k, v) for k, v in p["restore"].items() if v not in lb_member.STATES)
        if bad:
            module.fail_json(msg="restore: %s: states must be one of %s" % (bad, ", ".join(lb_member.STATES)))
        targets = dict(p["restore"])
    elif p["state"]:
        targets = dict((name, p["state"]) for name in p["servers"])
    else:
        targets = None

    if p["engine"] == "nginx":
        if targets is None:
            try:
                with open(p["nginx_config"]) as handle:
                    servers = lb_member.nginx_query(handle.read(), p["backend"], p["servers"])
            except (OSError, lb_member.LBError) as exc:
                module.fail_json(msg="%s: %s" % (p["nginx_config"], exc))
            module.exit_json(changed=False, servers=servers, waited_seconds=0.0, engine="nginx")
        module.exit_json(**run_nginx(module, targets))

    api = lb_member.RuntimeAPI(p["socket"], p["socket_timeout"])
    try:
        if targets is None:
            servers = lb_member.haproxy_query(api, p["backend"], p["servers"])
            module.exit_json(changed=False, servers=servers, waited_seconds=0.0, engine="haproxy")
        result = lb_member.haproxy_apply(api, p["backend"], targets, p["wait"], p["timeout"], p["interval"],
                                         module.check_mode, time.monotonic, time.sleep)
    except lb_member.LBError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(engine="haproxy", **result)


if __name__ == "__main__":
    main()
