#!/bin/sh
# Checks a keepalived.conf with keepalived's own --config-test, minus its vrrp_script and track_script
# blocks. keepalived 2.2.7 (Debian 12) kills its own process group with SIGTERM when it checks a
# configuration whose scripts fall under script security (acassen/keepalived#2587 and #2617, fixed in
# 2.2.8 by aae8e91): the test then exits 143 whatever the file says. Without those blocks it exits 0 on
# a good file and non-zero on any error. The check script itself is fixed text of the role; the role
# proves it runs (the VIP answers only once a holder's check has passed).
# Usage: llmfleet_keepalived_config_test.sh FILE   (KEEPALIVED: the binary, for tests)
set -eu
file=$1
copy=$(mktemp)
trap 'rm -f "$copy"' EXIT
sed '/^vrrp_script /,/^}/d; /^ *track_script {/,/}/d' "$file" > "$copy"
"${KEEPALIVED:-/usr/sbin/keepalived}" --config-test --use-file="$copy"
