#!/usr/bin/env bash
# README's main command: build hoist, make a busybox base image from Debian's
# busybox-static package, build examples/hello (a static Rust service in a FROM
# scratch image) and examples/busybox-site (two stages, RUN, COPY --from) with
# `hoist build`, rebuild to show the cache, export the image as an OCI layout that
# skopeo reads, scan it, push it to hoist's embedded registry and pull it into a
# second store with the same digest; then the pipeline: `hoist up examples/hello`
# (tests, build, scan, push, deploy to dev, smoke check) and a second `hoist up`
# with a new version rolled out while a client keeps asking (the script fails if
# one request fails).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p hoist
hoist=${CARGO_TARGET_DIR:-$PWD/target}/release/hoist
work=$(mktemp -d)
export HOIST_HOME=${HOIST_HOME:-$work/home}
scripts/busybox-rootfs.sh "$work/rootfs"
"$hoist" image import "$work/rootfs" busybox:latest --change 'CMD ["sh"]'

# The example service: a static binary, then the image.
CARGO_TARGET_DIR="$work/hello-target" examples/hello/build.sh
"$hoist" build examples/hello -t hello:dev --progress plain
"$hoist" build examples/busybox-site -t busybox-site:dev --progress plain
echo "--- unchanged rebuild (every step from the cache):"
"$hoist" build examples/busybox-site -t busybox-site:dev
"$hoist" image ls
"$hoist" image inspect hello:dev | grep -A12 '"Config"'
"$hoist" image export hello:dev --format oci "$work/hello-oci"
echo "--- scan hello: secrets gate (add OSV advisories with 'hoist db import' or 'hoist db update' for vulnerabilities) and its SBOM:"
"$hoist" scan hello:dev --scanners secret --fail-on high
"$hoist" sbom hello:dev --format spdx -o "$work/hello.spdx.json"
if command -v skopeo >/dev/null; then
  skopeo inspect --config "oci:$work/hello-oci" | head -30
fi

echo "--- push to the embedded registry and pull into a second store:"
"$hoist" registry serve --addr 127.0.0.1:0 --root "$work/registry" 2>"$work/registry.log" &
registry_pid=$!
cleanup() {
  kill $registry_pid 2>/dev/null || true
  # Stop the deployed service, then the controller and the proxy it started.
  if [ -e "$HOIST_HOME/deploy/state.db" ]; then
    "$hoist" service rm hello-dev 2>/dev/null || true
    for _ in $(seq 150); do
      [ "$("$hoist" --json service ls 2>/dev/null | tr -d ' \n')" = "[]" ] && break
      sleep 0.2
    done
  fi
  for lock in "$HOIST_HOME/deploy/daemon.lock" "$HOIST_HOME/proxy/proxy.lock" "$HOIST_HOME/registry/serve.lock"; do
    [ -s "$lock" ] && kill "$(head -1 "$lock")" 2>/dev/null || true
  done
}
trap cleanup EXIT
for _ in $(seq 100); do
  addr=$(sed -n 's|.*listening on http://||p' "$work/registry.log")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/registry.log"; exit 1; }
"$hoist" push hello:dev "$addr/examples/hello:dev"
HOIST_HOME="$work/home2" "$hoist" pull "$addr/examples/hello:dev"
pushed=$("$hoist" image inspect hello:dev | sed -n 's/.*"Digest": "\(.*\)".*/\1/p' | head -1)
pulled=$(HOIST_HOME="$work/home2" "$hoist" image inspect "$addr/examples/hello:dev" | sed -n 's/.*"Digest": "\(.*\)".*/\1/p' | head -1)
echo "pushed $pushed"
echo "pulled $pulled"
[ "$pushed" = "$pulled" ]

echo "--- hoist up examples/hello: the pipeline of its hoist.yml (cargo test and the static"
echo "    binary, image build, scan gate, push to hoist's own registry, deploy to dev on"
echo "    127.0.0.1:8080 behind hoist's proxy, smoke check):"
"$hoist" up examples/hello
busybox wget -q -O - http://127.0.0.1:8080/

echo "--- hoist up again with HELLO_VERSION=2: a rolling update while a client keeps asking:"
sed '0,/HELLO_VERSION: "1"/s//HELLO_VERSION: "2"/' examples/hello/hoist.yml >"$work/hello-v2.yml"
(
  ok=0 failed=0
  while [ ! -e "$work/stop-load" ]; do
    if busybox wget -q -O /dev/null http://127.0.0.1:8080/; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
  done
  echo "$ok $failed" >"$work/load-result"
) &
load_pid=$!
"$hoist" up examples/hello -f "$work/hello-v2.yml"
sleep 2 # the old tasks drain and stop under load
touch "$work/stop-load"
wait $load_pid
read -r ok failed <"$work/load-result"
echo "requests during the update: $ok answered, $failed failed"
busybox wget -q -O - http://127.0.0.1:8080/ | grep -q 'version=2'
"$hoist" runs ls
"$hoist" service ps hello-dev
[ "$failed" = 0 ]
echo "image store: $HOIST_HOME; OCI layout: $work/hello-oci; registry: $work/registry"
