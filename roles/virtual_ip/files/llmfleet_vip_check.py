"""keepalived's tracked check of a load balancer: exit 0 when it answers 200 on its local health URL.

The URL is the load balancer's loopback-only health listener (roles/load_balancer): HAProxy answers 200
while at least one model server of its backends is usable (monitor-uri, nbsrv), nginx while a replica
answers through it. Anything else - refused, timed out, 503 - is a failure; after virtual_ip_check_fall
of them in a row keepalived gives the VIP to a peer.

Usage: llmfleet_vip_check.py URL TIMEOUT_SECONDS
"""

import sys
import urllib.error
import urllib.request


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    url, timeout = argv[1], float(argv[2])
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return 0 if answer.status == 200 else 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        sys.stderr.write("%s: %s\n" % (url, exc))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
