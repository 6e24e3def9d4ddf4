"""The load balancers' shared front address (roles/virtual_ip): lb1 and lb3 (HAProxy) hold the lab's VIP
together with keepalived; clients reach the API there and trust it by the certificates (which name the
VIP: hostname checking is on).

Under a bounded load through the VIP, the holder fails twice:
  - its HAProxy is killed (and kept from restarting): its tracked check fails, keepalived gives the VIP
    away at once (FAULT, an advert of priority 0);
  - its whole host stops (the container frozen: no goodbye advert, nothing answers): the other holder
    takes over after the missed adverts (virtual_ip_down_adverts x advert interval + skew).
Measured each time: the seconds from the fault until a probe through the VIP is answered again (the
issue's bound: 3 s), and the requests that failed - only those in flight at the move may fail, none
that started after it. Then the failed holder comes back: with nopreempt it does not take the VIP back
(virtual_ip_preempt false), so one holder holds it. Figures: .lab/results/virtual-ip-*.json.
"""

import json
import ssl
import subprocess
import threading
import time

import pytest
from lbclient import KEYS, REPO, Api, Load

pytestmark = pytest.mark.lab
RESULTS = REPO / ".lab" / "results"
HOLDERS = ("lb1", "lb3")


def vip_of(lab):
    lbs = lab.load_inventory()["all"]["children"]["load_balancers"]["hosts"]
    return lbs["lb1"]["virtual_ip_address"].split("/")[0]


class VipApi(Api):
    """A client of the VIP that trusts the certificates of every holder, and only for the VIP's address."""

    def __init__(self, lab, vip):
        pems = []
        for lb in HOLDERS:
            pem = lab.ssh(lb, "sudo -n cat /etc/llmfleet/tls/server.crt")
            assert pem.returncode == 0, pem.stderr
            pems.append(pem.stdout)
        self.address = vip
        self.context = ssl.create_default_context(cadata="".join(pems))


def holding(lab, vip):
    """The holders that have the VIP on an interface now."""
    return [lb for lb in HOLDERS if lab.ssh(lb, f"ip -o -4 addr show to {vip}/32").stdout.strip()]


class Probe:
    """Asks the VIP for the model list (answered by the load balancer itself) every 0.1 s, with a short
    timeout: the first answer after the fault is when the VIP works again."""

    def __init__(self, api):
        self.api, self.answers, self.stop = api, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                # Its own key: the load's key keeps its whole rate limit.
                ok = self.api.request("/v1/models", key=KEYS["lab-gemma-only"], timeout=0.5)[0] == 200
            except OSError:
                ok = False
            self.answers.append((started, ok))
            self.stop.wait(max(0.0, started + 0.1 - time.monotonic()))

    def back_after(self, fault_at):
        later = [started for started, ok in self.answers if ok and started > fault_at]
        return later[0] - fault_at if later else None


@pytest.fixture(scope="module")
def vip(converged_lab):
    address = vip_of(converged_lab)
    assert len(holding(converged_lab, address)) == 1, "the VIP must have one holder before the drills"
    return address


def failover(lab, vip, name, fault, repair):
    [holder] = holding(lab, vip)
    api = VipApi(lab, vip)
    assert api.request("/v1/models")[0] == 200
    probe = Probe(api)
    probe.thread.start()
    try:
        # 4 clients, each at most 2 requests a second: under the lab key's rate limit on one LB.
        with Load({"vip": api}, ("vip",) * 4, seconds=60, max_requests=2000, pace=0.5) as load:
            time.sleep(3)
            fault(holder)
            # When the fault is in place (the command returned): an answer after this is the new holder's.
            fault_at = time.monotonic()
            deadline = fault_at + 20
            while time.monotonic() < deadline and probe.back_after(fault_at) is None:
                time.sleep(0.1)
            back = probe.back_after(fault_at)
            time.sleep(8)  # served by the new holder, under load
            load.stop.set()
        new_holders = holding(lab, vip)
    finally:
        probe.stop.set()
        probe.thread.join(5)
        repair(holder)
    assert back is not None, f"{name}: the VIP did not answer again within 20 s"
    moved_at = fault_at + back
    failed = load.failed()
    late = [r for r in failed if r[0] > moved_at]
    figures = {"drill": name, "holder": holder, "new_holders": new_holders, "vip_back_s": round(back, 2),
               "requests": len(load.results), "failed": len(failed), "failed_after_move": len(late),
               "failed_in_flight": [round(r[0] - fault_at, 2) for r in failed if r[0] <= moved_at]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"virtual-ip-{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\n[virtual ip] {json.dumps(figures)}")
    assert new_holders == [lb for lb in HOLDERS if lb != holder], figures
    assert back <= 3.0, figures
    assert not late, figures
    assert len(load.results) >= 20, figures
    return holder, figures


def came_back_as_backup(lab, vip, holder):
    """The old holder is up again (its check passes) and, with nopreempt, leaves the VIP where it is."""
    time.sleep(6)  # its check rises (2 x 1 s) and a few adverts pass
    state = lab.ssh(holder, "sudo -n systemctl is-active keepalived haproxy")
    assert state.stdout.split() == ["active", "active"], state.stdout
    now = holding(lab, vip)
    assert len(now) == 1 and holder not in now, now
    assert VipApi(lab, vip).request("/v1/models")[0] == 200


def test_the_vip_moves_when_the_holders_haproxy_is_killed(converged_lab, vip):
    lab = converged_lab

    def kill(holder):
        # Masked for the drill: systemd's Restart= would otherwise bring HAProxy back at once.
        proc = lab.ssh(holder, "sudo -n systemctl mask --runtime haproxy && sudo -n systemctl kill -s KILL haproxy")
        assert proc.returncode == 0, proc.stderr

    def repair(holder):
        lab.ssh(holder, "sudo -n systemctl unmask --runtime haproxy; sudo -n systemctl reset-failed haproxy; "
                        "sudo -n systemctl start haproxy")

    holder, _figures = failover(lab, vip, "haproxy-killed", kill, repair)
    came_back_as_backup(lab, vip, holder)


def test_the_vip_moves_when_the_holders_host_stops(converged_lab, vip):
    lab = converged_lab

    def container(host):
        return f"llmfleet-{lab.info['lab']}-{host}"  # lab/llmfleet_lab.py container_name

    def freeze(holder):
        subprocess.run(["podman", "pause", container(holder)], check=True, capture_output=True, timeout=30)

    def thaw(holder):
        subprocess.run(["podman", "unpause", container(holder)], check=False, capture_output=True, timeout=30)

    holder, _figures = failover(lab, vip, "host-stopped", freeze, thaw)
    # Thawed, the old holder still believes it holds the VIP until the first advert of the new one: one
    # of them yields (the lower priority), so that one holder holds it again.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(holding(lab, vip)) != 1:
        time.sleep(0.5)
    assert len(holding(lab, vip)) == 1
    assert VipApi(lab, vip).request("/v1/models")[0] == 200


def test_vrrp_is_let_in_from_the_peer_only(converged_lab, vip):
    """The firewall: VRRP (protocol 112) accepted from the other holder's address, nothing else."""
    lab = converged_lab
    for lb in HOLDERS:
        peer = lab.hosts[[other for other in HOLDERS if other != lb][0]]
        rules = lab.ssh(lb, "sudo -n iptables -S ufw-before-input").stdout
        # iptables names protocol 112 "vrrp" where /etc/protocols has it.
        vrrp = [line.replace("-p 112 ", "-p vrrp ") for line in rules.splitlines() if "-p vrrp" in line or "-p 112" in line]
        assert vrrp == [f"-A ufw-before-input -s {peer}/32 -p vrrp -j ACCEPT"], rules
