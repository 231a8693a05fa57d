#!/usr/bin/env bash
# README's main command: build hoist, make a busybox base image from Debian's
# busybox-static package, build examples/hello (a static Rust service in a FROM
# scratch image) and examples/busybox-site (two stages, RUN, COPY --from) with
# `hoist build`, rebuild to show the cache, export the image as an OCI layout that
# skopeo reads, then push it to hoist's embedded registry and pull it into a second
# store with the same digest.
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
if command -v skopeo >/dev/null; then
  skopeo inspect --config "oci:$work/hello-oci" | head -30
fi

echo "--- push to the embedded registry and pull into a second store:"
"$hoist" registry serve --addr 127.0.0.1:0 --root "$work/registry" 2>"$work/registry.log" &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
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
echo "image store: $HOIST_HOME; OCI layout: $work/hello-oci; registry: $work/registry"
