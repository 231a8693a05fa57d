#!/usr/bin/env bash
# What a deployment costs the traffic: wrk through hoist's proxy against the hello
# service (2 tasks), first in steady state, then while a rolling update and a
# blue/green update run. Prints requests/s, p99 latency and errors (non-2xx and
# socket errors) of each phase, and the ratio deploying/steady. The goal is 0 errors.
#
#   CARGO_TARGET_DIR=/work/target-rel bench/deploy.sh
set -euo pipefail
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-16}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -q -p hoist
hoist=${CARGO_TARGET_DIR:-$root/target}/release/hoist
work=$(mktemp -d)
export HOIST_HOME=$work/home
cleanup() {
  "$hoist" service rm hello >/dev/null 2>&1 || true
  for _ in $(seq 150); do
    [ "$("$hoist" --json service ls 2>/dev/null | tr -d ' \n')" = "[]" ] && break
    sleep 0.2
  done
  for lock in "$HOIST_HOME/deploy/daemon.lock" "$HOIST_HOME/proxy/proxy.lock"; do
    [ -s "$lock" ] && kill "$(head -1 "$lock")" 2>/dev/null || true
  done
}
trap cleanup EXIT
scripts/busybox-rootfs.sh "$work/rootfs" >/dev/null
"$hoist" image import "$work/rootfs" busybox >/dev/null
CARGO_TARGET_DIR="$work/hello-target" examples/hello/build.sh >/dev/null 2>&1
"$hoist" build examples/hello -t hello:dev --progress quiet >/dev/null
"$hoist" deploy examples/hello/service.yml >/dev/null

run_wrk() { wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency http://127.0.0.1:8088/ >"$1" 2>&1; }
summary() {
  local rps p99 errs
  rps=$(sed -n 's/^Requests\/sec: *//p' "$1")
  p99=$(sed -n 's/^ *99% *//p' "$1")
  errs=$(sed -n 's/.*Non-2xx or 3xx responses: *//p; s/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\)/\1+\2+\3+\4/p' "$1" | paste -sd+ | bc 2>/dev/null || true)
  echo "$rps ${p99:-?} ${errs:-0}"
}

run_wrk "$work/steady.txt"
read -r s_rps s_p99 s_err <<<"$(summary "$work/steady.txt")"
echo "steady:      $s_rps req/s, p99 $s_p99, errors $s_err"

sed 's/HELLO_VERSION: "1"/HELLO_VERSION: "2"/' examples/hello/service.yml >"$work/v2.yml"
run_wrk "$work/rolling.txt" &
sleep 2
"$hoist" deploy "$work/v2.yml" >/dev/null
wait
read -r r_rps r_p99 r_err <<<"$(summary "$work/rolling.txt")"
echo "rolling:     $r_rps req/s, p99 $r_p99, errors $r_err"

sed -e 's/HELLO_VERSION: "1"/HELLO_VERSION: "3"/' -e 's/strategy: .*/strategy: {type: blue-green, bake: 2s}/' examples/hello/service.yml >"$work/v3.yml"
run_wrk "$work/bluegreen.txt" &
sleep 2
"$hoist" deploy "$work/v3.yml" >/dev/null
wait
read -r b_rps b_p99 b_err <<<"$(summary "$work/bluegreen.txt")"
echo "blue/green:  $b_rps req/s, p99 $b_p99, errors $b_err"
echo "ratio rolling/steady throughput: $(echo "scale=2; $r_rps / $s_rps" | bc)"
echo "ratio blue-green/steady throughput: $(echo "scale=2; $b_rps / $s_rps" | bc)"
