#!/usr/bin/env bash
# README's main command: build hoist, make a busybox base image from Debian's
# busybox-static package, build examples/hello (a static Rust service in a FROM
# scratch image) and examples/busybox-site (two stages, RUN, COPY --from) with
# `hoist build`, rebuild to show the cache, and export the image as an OCI layout
# that skopeo reads.
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
echo "image store: $HOIST_HOME; OCI layout: $work/hello-oci"
