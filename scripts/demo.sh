#!/usr/bin/env bash
# The playground demo: a 3-machine cluster on this host, its store checked,
# a key written on one machine and read on another. The cluster stays up.
set -euo pipefail
atoll=${1:-bin/atoll}
atoll=$(cd "$(dirname "$atoll")" && pwd)/$(basename "$atoll")

if [ "$(id -u)" != 0 ]; then
  echo "make demo needs root: the playground makes network namespaces, links and processes." >&2
  echo "run: sudo make demo" >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if ! command -v ip >/dev/null; then
  step "Installing iproute2 (the playground uses ip(8) for namespaces and links)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

step "Removing any earlier demo cluster"
"$atoll" cluster down --name default

step "Starting 3 machines (each a network namespace running atoll node)"
"$atoll" cluster up --name default --machines 3

step "Store health, checked on every member"
"$atoll" --cluster default kv health

step "Writing /demo/greeting on machine m1"
"$atoll" cluster exec m1 -- "$atoll" kv put /demo/greeting "hello from m1 at $(date -u +%H:%M:%S)"

step "Reading it back on machine m3"
"$atoll" cluster exec m3 -- "$atoll" kv get /demo/greeting

step "The store's members"
"$atoll" --cluster default kv members

cat <<HELP

The cluster is running. Try:
  $atoll cluster status                         # machines, roles, health
  $atoll --cluster default kv get /demo/greeting
  $atoll cluster exec m2 -- $atoll node status  # one machine's view
  eval "\$($atoll cluster env)"; etcdctl member list -w table$(command -v etcdctl >/dev/null || printf '   # apt-get install etcd-client')
  $atoll cluster stop m1 --signal KILL          # crash a machine ...
  $atoll cluster start m1                       # ... and bring it back
  $atoll cluster partition m2; $atoll cluster heal

Tear it down with:
  $atoll cluster down
HELP
