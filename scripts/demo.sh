#!/usr/bin/env bash
# README's main command: build hoist, make a busybox base image from Debian's
# busybox-static package, show it, and export it as an OCI layout that skopeo reads.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
hoist=${CARGO_TARGET_DIR:-$PWD/target}/release/hoist
work=$(mktemp -d)
export HOIST_HOME=${HOIST_HOME:-$work/home}
scripts/busybox-rootfs.sh "$work/rootfs"
"$hoist" image import "$work/rootfs" busybox:latest --change 'CMD ["sh"]'
"$hoist" image ls
"$hoist" image export busybox --format oci "$work/busybox-oci"
if command -v skopeo >/dev/null; then
  skopeo inspect "oci:$work/busybox-oci" | head -20
fi
echo "image store: $HOIST_HOME; OCI layout: $work/busybox-oci"
