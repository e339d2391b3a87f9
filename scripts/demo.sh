#!/usr/bin/env bash
# The playground demo: a 3-machine cluster on this host, its store checked,
# a key written on one machine and read on another; then a small web server
# built from this repository (demo/web) runs as a pod, started by a unit on
# m1's service manager, and answers on the pod's own address and, from m2,
# on the port m1 publishes. The cluster, the unit and the pod stay up.
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

step "Importing it on m1 (each machine has its own images and pods, under its root)"
"$atoll" cluster exec m1 -- "$atoll" image import --insecure-options=image "$image_dir" --name "$image"

step "Running it as unit web.service on m1: pod \"web\" under m1's service manager, its port 80 published as m1's port 8080"
cat >"$image_dir/web.service" <<UNIT
[Unit]
Description=demo web server, as pod web
[Service]
ExecStart=$atoll pod run --name web --hostname web-m1 --insecure-options=image --port 80:8080 $image
UNIT
show cat "$image_dir/web.service"
"$atoll" cluster exec m1 -- "$atoll" unit load "$image_dir/web.service"
"$atoll" cluster exec m1 -- "$atoll" unit start web.service
fail() {
  echo "$*; the unit:" >&2
  "$atoll" cluster exec m1 -- "$atoll" unit status -n 50 web.service >&2 || true
  exit 1
}
pod_ip=""
deadline=$((SECONDS + 20))
until [ -n "$pod_ip" ]; do
  "$atoll" cluster exec m1 -- "$atoll" unit status -n 0 web.service | grep -q 'Active: active' || fail "the unit is not running"
  [ "$SECONDS" -lt "$deadline" ] || fail "the pod did not answer within 20s"
  addr=$("$atoll" cluster exec m1 -- "$atoll" pod status web 2>/dev/null | sed -n 's/^networks=default:ip4=//p') || true
  if [ -n "$addr" ] && "$atoll" cluster exec m1 -- curl -fsS -m 1 "http://$addr/healthz" >/dev/null 2>&1; then
    pod_ip=$addr
  else
    sleep 0.1
  fi
done
m1_ip=$("$atoll" cluster status | awk '$1 == "m1" { print $3 }')

step "m1's unit, its pods, and the pod's status"
show "$atoll" cluster exec m1 -- "$atoll" unit status -n 5 web.service
show "$atoll" cluster exec m1 -- "$atoll" pod list
show "$atoll" cluster exec m1 -- "$atoll" pod status web

step "A request from inside m1 to the pod's own address ($pod_ip)"
show "$atoll" cluster exec m1 -- curl -sS -m 5 "http://$pod_ip/"

step "A request from m2 to m1's address, port 8080 (published by the pod)"
show "$atoll" cluster exec m2 -- curl -sS -m 5 "http://$m1_ip:8080/"

cat <<HELP

The cluster is running, and pod web on m1. Try:
  $atoll cluster status                         # machines, roles, health
  $atoll --cluster default kv get /demo/greeting
  $atoll cluster exec m2 -- $atoll node status  # one machine's view
  eval "\$($atoll cluster env)"; etcdctl member list -w table$(command -v etcdctl >/dev/null || printf '   # apt-get install etcd-client')
  $atoll cluster stop m1 --signal KILL          # crash a machine ...
  $atoll cluster start m1                       # ... and bring it back
  $atoll cluster partition m2; $atoll cluster heal

The unit and its pod (commands run inside m1, so they see m1's units and pods):
  $atoll cluster exec m1 -- $atoll unit list
  $atoll cluster exec m1 -- $atoll unit journal -f web.service
  $atoll cluster exec m1 -- $atoll pod list
  $atoll cluster exec m1 -- $atoll pod status web
  $atoll cluster exec m1 -- $atoll pod logs web
  $atoll cluster exec m1 -- $atoll pod enter web /bin/web -h   # run a command in it (the image holds only /bin/web)
  $atoll cluster exec m3 -- curl -s http://$m1_ip:8080/
  $atoll cluster exec m1 -- $atoll unit stop web.service     # stops the pod

Tear it all down (pods first) with:
  $atoll cluster down

The demo took ${SECONDS}s.
HELP
