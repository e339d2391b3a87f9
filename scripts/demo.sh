#!/usr/bin/env bash
# The playground demo: a 3-machine cluster on this host, its store checked,
# a key written on one machine and read on another; then units submitted to
# fleet and spread over the machines: a small web server built from this
# repository (demo/web) as a pod on each machine, answering on its
# machine's port 8080, and a plain ticker process beside each. The cluster
# and the units stay up.
set -euo pipefail
atoll=${1:-bin/atoll}
atoll=$(cd "$(dirname "$atoll")" && pwd)/$(basename "$atoll")
repo=$(cd "$(dirname "$0")/.." && pwd)
go=${GO:-go}
playground=${ATOLL_PLAYGROUND_DIR:-/var/lib/atoll-playground}
image=atoll.dev/demo/web:1

if [ "$(id -u)" != 0 ]; then
  echo "make demo needs root: the playground makes network namespaces, links and processes." >&2
  echo "run: sudo make demo" >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

missing=""
command -v ip >/dev/null || missing="$missing iproute2"     # the playground's namespaces and links
command -v curl >/dev/null || missing="$missing curl"       # the requests to the pod
command -v iptables >/dev/null || missing="$missing iptables" # the pod's masquerading and port
if [ -n "$missing" ]; then
  step "Installing$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
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

step "Building the demo web server (demo/web) into an image"
image_dir=$(mktemp -d /tmp/atoll-demo-web.XXXXXX)
trap 'rm -rf "$image_dir"' EXIT
# Built as make build builds atoll, so that the two share Go's build cache.
(cd "$repo" && CGO_ENABLED=0 "$go" run -trimpath ./internal/runtime/imagetest/mkimage -o "$image_dir" -name "$image" ./demo/web)

step "Importing it on every machine (each machine has its own images and pods, under its root)"
for m in m1 m2 m3; do
  "$atoll" cluster exec "$m" -- "$atoll" image import --insecure-options=image "$image_dir" --name "$image" >/dev/null &
done
wait
echo "imported $image on m1, m2 and m3"

step "Units for fleet: web@.service (a pod, one per machine: Conflicts) and ticker@.service (a plain process)"
units_dir=$image_dir/units
mkdir -p "$units_dir"
cat >"$units_dir/web@.service" <<UNIT
[Unit]
Description=demo web server %i, as pod web-%i
[Service]
ExecStart=$atoll pod run --name web-%i --hostname web-%i --insecure-options=image --port 80:8080 $image
[X-Fleet]
Conflicts=web@*.service
UNIT
cat >"$units_dir/ticker@.service" <<'UNIT'
[Unit]
Description=ticker %i
[Service]
ExecStart=/bin/sh -c 'i=0; while :; do i=$((i+1)); echo "%n: tick $i"; sleep 2; done'
UNIT
show cat "$units_dir/web@.service" "$units_dir/ticker@.service"

step "Starting web@{1..3} and ticker@{1..3} across the cluster (fleetctl's verbs: atoll fleet, or the binary run as fleetctl)"
(cd "$units_dir" && "$atoll" --cluster default fleet start 'web@{1..3}' 'ticker@{1..3}')

fleet() { "$atoll" --cluster default fleet "$@"; }
fail() {
  echo "$*; the units:" >&2
  fleet list-units >&2 || true
  fleet status 'web@{1..3}' >&2 || true
  exit 1
}

step "The machines, and where fleet put the units (the least loaded machine that fits)"
show "$atoll" --cluster default fleet list-machines
show "$atoll" --cluster default fleet list-units

step "Each machine's web pod answers on its machine's address, port 8080 (asked from m1)"
ips=$("$atoll" cluster status | awk '$1 ~ /^m[0-9]/ { print $3 }')
deadline=$((SECONDS + 30))
for ip in $ips; do
  until "$atoll" cluster exec m1 -- curl -fsS -m 1 "http://$ip:8080/healthz" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the pod on $ip did not answer within 30s"
    sleep 0.2
  done
  show "$atoll" cluster exec m1 -- curl -sS -m 5 "http://$ip:8080/"
done

step "A unit's journal, read from the machine that runs it (no SSH)"
show "$atoll" --cluster default fleet journal --lines 3 ticker@1.service

cat <<HELP

The cluster is running, with web@1..3 (pods) and ticker@1..3 spread over it. Try:
  $atoll cluster status                                  # machines, roles, health
  $atoll --cluster default fleet list-units              # where each unit runs
  $atoll --cluster default fleet list-unit-files         # desired and current states
  $atoll --cluster default fleet journal -f ticker@2.service
  $atoll --cluster default fleet status web@1.service

Watch units move when a machine dies:
  $atoll cluster crash m3                                # a power cut: daemon, pods, units
  sleep 6; $atoll --cluster default fleet list-units     # m3's ticker now runs elsewhere
  $atoll --cluster default fleet list-unit-files         # m3's web@ cannot be placed (Conflicts), and says why
  $atoll cluster start m3                                # it comes back, and web@ with it

The real fleetctl works too (TLS with the cluster's client certificate):
  eval "\$($atoll cluster env)"
  fleetctl --endpoint https://$(echo $ips | cut -d' ' -f1):49153 --ca-file "\$ETCDCTL_CACERT" --cert-file "\$ETCDCTL_CERT" --key-file "\$ETCDCTL_KEY" list-units
And the store: $atoll --cluster default kv get /demo/greeting;  eval "\$($atoll cluster env)"; etcdctl member list -w table

Tear it all down (pods first) with:
  $atoll cluster down

The demo took ${SECONDS}s.
HELP
