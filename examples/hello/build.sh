#!/usr/bin/env bash
# Build examples/hello as a static x86_64 Linux binary into examples/hello/dist/hello,
# the one file its FROM scratch Dockerfile copies:
#   examples/hello/build.sh && hoist build examples/hello -t hello:0.1.0
# CARGO_TARGET_DIR defaults to examples/hello/target (not the workspace's).
set -euo pipefail
cd "$(dirname "$0")"
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" -q
bin=$CARGO_TARGET_DIR/$target/release/hello
# file(1) says "static-pie linked" for Rust's default PIE, ldd "statically linked"
file "$bin" 2>/dev/null | grep -Eq 'static(-pie|ally) linked' \
  || ldd "$bin" 2>&1 | grep -Eq 'statically linked|not a dynamic' \
  || { echo "examples/hello/build.sh: $bin is not statically linked" >&2; exit 1; }
mkdir -p dist
# A temp name of this process: concurrent builds (parallel tests) must not share it.
cp "$bin" "dist/hello.tmp.$$" && mv "dist/hello.tmp.$$" dist/hello
echo "examples/hello/dist/hello ($(stat -c %s dist/hello) bytes, static)"
