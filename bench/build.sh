#!/usr/bin/env bash
# bench/build.sh: "Dockerfile -> image in a local store", hoist build against
# buildah bud, on the two examples (examples/hello: FROM scratch + one static binary;
# examples/busybox-site: two stages on a busybox base, RUN, COPY, COPY --from). Prints
# per-case medians (hyperfine), CPU time, hoist/buildah ratios (lower is better) and a
# markdown table for BENCHMARKS.md.
#
#   sudo bench/build.sh            # as root: containers, overlay mounts, unshare
#
# Cases, per example:
#   cold  empty store with only the busybox base image in it (loaded before timing), no
#         build cache
#   warm  the same build again, nothing changed (every step cached)
#   edit  (busybox-site only) one page changed: stage 1's COPY and RUN and the final
#         stage's COPY steps run again, the RUN that adds the user stays cached
#
# Environment:
#   BENCH_WORK   work dir, rootfs cache and results (default /var/tmp/hoist-bench; this
#                script uses build-run/ and build-results/ there, bench/import.sh run/
#                and results/, and both share rootfs-busybox/)
#   BENCH_RUNS   timed runs per command, at least 5 (default 5; one warmup run too)
#   BENCH_TOOLS  "hoist buildah" (default), or one of them alone
#   HOIST        the hoist binary (default ${CARGO_TARGET_DIR:-target}/release/hoist,
#                built with `cargo build --release --locked -p hoist` if missing)
#
# Both sides get the same base image bytes: the busybox rootfs is imported by hoist,
# exported as an OCI layout, and copied into buildah's storage with skopeo as
# docker.io/library/busybox:latest, which is what `FROM busybox` means to both. buildah
# runs offline (--pull=never, a registries.conf with no search registries) in a private
# mount namespace with overlays on /etc, /run and /var/lib/containers, as in
# bench/import.sh; its storage (--root, --runroot) lives under the work dir.
set -euo pipefail

die() { echo "bench/build.sh: error: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_WORK:-/var/tmp/hoist-bench}
RUNS=${BENCH_RUNS:-5}
TOOLS=${BENCH_TOOLS:-hoist buildah}
HOIST=${HOIST:-${CARGO_TARGET_DIR:-$REPO/target}/release/hoist}

[ "$(id -u)" = 0 ] || die "run as root (containers, unshare -m, mount, buildah's overlay storage)"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 5 ] || die "BENCH_RUNS must be a number >= 5 (got $RUNS)"
use_hoist=0 use_buildah=0
for t in $TOOLS; do
  case $t in
    hoist) use_hoist=1 ;;
    buildah) use_buildah=1 ;;
    *) die "unknown tool '$t' in BENCH_TOOLS (hoist, buildah)" ;;
  esac
done
[ $((use_hoist + use_buildah)) -gt 0 ] || die "BENCH_TOOLS names no tool"

# ---------------------------------------------------------------- 1. tools
need=()
for pair in buildah:buildah runc:runc skopeo:skopeo busybox-static:/bin/busybox \
  hyperfine:hyperfine jq:jq file:file; do
  pkg=${pair%%:*} bin=${pair#*:}
  if [ "$pkg" = busybox-static ]; then
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
  else
    command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
  fi
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
[ -x /usr/sbin/runc ] || die "/usr/sbin/runc missing (apt-get install runc)"
export BUILDAH_RUNTIME=/usr/sbin/runc

# hoist: built if missing; it is needed for the base image even when only buildah is timed
if [ ! -x "$HOIST" ]; then
  say "cargo build --release --locked -p hoist (for $HOIST)"
  (cd "$REPO" && CARGO_TARGET_DIR=$(dirname "$(dirname "$HOIST")") \
    cargo build --release --locked -q -p hoist) || die "cargo build failed"
fi
[ -x "$HOIST" ] || die "$HOIST is not an executable hoist binary"
if [ $use_hoist = 1 ] && ! "$HOIST" build --help >/dev/null 2>&1; then
  die "$HOIST has no 'build' command; rebuild it, or BENCH_TOOLS=buildah to time buildah alone"
fi

# ---------------------------------------------------------------- 2. inputs
mkdir -p "$WORK"
RUN=$WORK/build-run
RES=$WORK/build-results
rm -rf "$RUN" "$RES"
mkdir -p "$RUN" "$RES"

# the busybox rootfs, shared with bench/import.sh (temp dir + rename, built once)
rootfs=$WORK/rootfs-busybox
if [ ! -f "$rootfs.ok" ]; then
  rm -rf "$rootfs" "$rootfs.tmp"
  "$REPO/scripts/busybox-rootfs.sh" "$rootfs.tmp" || die "scripts/busybox-rootfs.sh failed"
  mv "$rootfs.tmp" "$rootfs" && touch "$rootfs.ok"
fi

# the base image, once: a hoist store holding it, and its OCI layout for skopeo
BASE_HOME=$RUN/base-home
BASE_OCI=$RUN/base-oci
HOIST_HOME=$BASE_HOME "$HOIST" image import "$rootfs" busybox:latest --change 'CMD ["sh"]' \
  >"$RES/base.log" 2>&1 || { cat "$RES/base.log" >&2; die "hoist image import $rootfs failed"; }
HOIST_HOME=$BASE_HOME "$HOIST" image export busybox --format oci "$BASE_OCI" >>"$RES/base.log" 2>&1 \
  || { cat "$RES/base.log" >&2; die "hoist image export busybox failed"; }

# the build contexts, copied so the edit case never touches the repository; hello's
# binary is built first (examples/hello/build.sh, not timed)
say "examples/hello/build.sh (static binary, not timed)"
env -u CARGO_TARGET_DIR -u RUSTFLAGS "$REPO/examples/hello/build.sh" >/dev/null \
  || die "examples/hello/build.sh failed"
EXAMPLES="hello busybox-site"
mkdir -p "$RUN/ctx"
for ex in $EXAMPLES; do
  tar -C "$REPO/examples" --exclude="$ex/target" -cf - "$ex" | tar -C "$RUN/ctx" -xf - \
    || die "cannot copy examples/$ex"
done
[ -x "$RUN/ctx/hello/dist/hello" ] || die "examples/hello/dist/hello missing after build.sh"
EDIT_FILE=$RUN/ctx/busybox-site/site/about.html

# ---------------------------------------------------------------- namespace for buildah
# in_ns CMD...: run CMD in a private mount namespace whose /etc, /run and
# /var/lib/containers are overlays with upper dirs under $RUN/ns (buildah writes lock
# files in /etc/cni, /run, a blob-info cache in /var/lib/containers).
cat >"$RUN/ns.sh" <<'EOF'
set -e
ov=$1; shift
mount --make-rprivate /
for p in /etc /run /var/lib/containers; do
  mkdir -p "$p" 2>/dev/null || true
  [ -d "$p" ] || continue
  n=${p//\//_}; mkdir -p "$ov/$n.up" "$ov/$n.wk"
  mount -t overlay overlay -o "lowerdir=$p,upperdir=$ov/$n.up,workdir=$ov/$n.wk" "$p"
done
exec "$@"
EOF
in_ns() { unshare -m bash "$RUN/ns.sh" "$RUN/ns" "$@"; }

# No search registries and no short-name aliases: nothing can reach a network. `FROM
# busybox` still finds docker.io/library/busybox:latest in local storage.
printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$RUN/registries.conf"
export CONTAINERS_REGISTRIES_CONF=$RUN/registries.conf

# buildah_cmd STORE: buildah with its own overlay storage under STORE
buildah_cmd() { echo "buildah --root $1/graph --runroot $1/runroot --storage-driver overlay"; }
# buildah_reset STORE: an empty store holding only the base image
buildah_reset() {
  echo "rm -rf $1 && skopeo copy -q oci:$BASE_OCI containers-storage:[overlay@$1/graph+$1/runroot]docker.io/library/busybox:latest"
}
# --format docker: buildah drops HEALTHCHECK from OCI-format images, and both examples
# have one. --network host: what hoist build's RUN steps get by default (buildah's
# default, a new network namespace per RUN, cost about 0.4 s per RUN step here).
# Isolation: OCI (runc) unless the probe below finds it broken.
BUD_FLAGS="--pull=never --layers --format docker --network host -q"
if [ $use_buildah = 1 ]; then
  in_ns bash -c "$(buildah_reset "$RUN/probe") && mkdir -p $RUN/probe-ctx &&
    printf 'FROM busybox\nRUN true\n' >$RUN/probe-ctx/Dockerfile &&
    $(buildah_cmd "$RUN/probe") bud $BUD_FLAGS -t probe:1 $RUN/probe-ctx" \
    >"$RUN/probe.log" 2>&1 || {
    echo "bench/build.sh: warning: buildah bud with OCI isolation fails here; using --isolation chroot" >&2
    BUD_FLAGS="$BUD_FLAGS --isolation chroot"
    in_ns bash -c "$(buildah_cmd "$RUN/probe") bud $BUD_FLAGS -t probe:1 $RUN/probe-ctx" \
      >>"$RUN/probe.log" 2>&1 || { cat "$RUN/probe.log" >&2; die "buildah bud fails here (log above)"; }
  }
  rm -rf "$RUN/probe" "$RUN/probe-ctx"
fi

# ---------------------------------------------------------------- 3. measure
# hf NAME PREPARE CMD: hyperfine with a warmup and RUNS runs (PREPARE before each, then
# sync, so no run pays for the previous run's writeback), JSON to $RES/NAME.json. With
# NS=1 it runs inside the mount namespace.
hf() {
  local name=$1 prep=$2 cmd=$3 wrap=()
  [ "${NS:-0}" = 1 ] && wrap=(in_ns)
  say "$name"
  "${wrap[@]}" hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "bash -c '$prep && sync'" \
    --export-json "$RES/$name.json" "$cmd" >"$RES/$name.log" 2>&1 \
    || { cat "$RES/$name.log" >&2; die "$name: hyperfine failed (command: $cmd)"; }
}
# once NAME CMD: run CMD once (not timed), logging to $RES/NAME.once.log
once() {
  local name=$1; shift
  "$@" >"$RES/$name.once.log" 2>&1 || { cat "$RES/$name.once.log" >&2; die "$name failed"; }
}
# edit the page the edit case changes, differently every time
EDIT="echo \"<!-- \$(date +%s%N) -->\" >>$EDIT_FILE"

for ex in $EXAMPLES; do
  ctx=$RUN/ctx/$ex
  tag=$ex:bench
  if [ $use_hoist = 1 ]; then
    h=$RUN/hoist-$ex
    build="$HOIST build $ctx -t $tag --progress plain"
    # cold: a fresh HOIST_HOME holding only the base image
    HOIST_HOME=$h hf "$ex.cold.hoist" "rm -rf $h && cp -a $BASE_HOME $h" "$build"
    # warm: the store the last cold run left, rebuilt unchanged
    HOIST_HOME=$h hf "$ex.warm.hoist" "true" "$build"
    HOIST_HOME=$h once "$ex.check.hoist" "$HOIST" image inspect "$tag"
    if [ "$ex" = busybox-site ]; then
      HOIST_HOME=$h hf "$ex.edit.hoist" "$EDIT" "$build"
    fi
  fi
  if [ $use_buildah = 1 ]; then
    s=$RUN/buildah-$ex
    build="$(buildah_cmd "$s") bud $BUD_FLAGS -t $tag $ctx"
    NS=1 hf "$ex.cold.buildah" "$(buildah_reset "$s")" "$build"
    NS=1 hf "$ex.warm.buildah" "true" "$build"
    once "$ex.check.buildah" in_ns $(buildah_cmd "$s") inspect --type image "$tag"
    if [ "$ex" = busybox-site ]; then
      NS=1 hf "$ex.edit.buildah" "$EDIT" "$build"
    fi
  fi
done

# ---------------------------------------------------------------- 4. table
med() { [ -f "$RES/$1.json" ] && jq -r '.results[0].median' "$RES/$1.json" || echo -; }
cpu() { [ -f "$RES/$1.json" ] && jq -r '.results[0] | (.user + .system)' "$RES/$1.json" || echo -; }
table=$RES/table.md
{
  echo "| example | case | hoist median s | buildah median s | ratio hoist/buildah | hoist CPU s | buildah CPU s | CPU ratio |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for ex in $EXAMPLES; do
    for c in cold warm edit; do
      [ -f "$RES/$ex.$c.hoist.json" ] || [ -f "$RES/$ex.$c.buildah.json" ] || continue
      awk -v ex="$ex" -v c="$c" -v hm="$(med "$ex.$c.hoist")" -v bm="$(med "$ex.$c.buildah")" \
        -v hc="$(cpu "$ex.$c.hoist")" -v bc="$(cpu "$ex.$c.buildah")" '
        function n(x) { return x == "-" ? "-" : sprintf("%.3f", x) }
        function r(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }
        BEGIN { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", ex, c, n(hm), n(bm), r(hm, bm), n(hc), n(bc), r(hc, bc) }'
    done
  done
  echo
  echo "runs: $RUNS (+1 warmup) per command, wall medians by hyperfine; CPU = mean user+sys of the process tree"
  echo "buildah: bud $BUD_FLAGS, overlay storage, BUILDAH_RUNTIME=$BUILDAH_RUNTIME;" \
    "load average at end: $(cut -d' ' -f1-3 /proc/loadavg);" \
    "CPU pressure (PSI some avg300): $(awk '/some/ {sub("avg300=", "", $4); print $4 "%"}' /proc/pressure/cpu 2>/dev/null || echo n/a)"
  echo "machine: nproc $(nproc), kernel $(uname -r), CPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "tools: $("$HOIST" --version 2>/dev/null | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))," \
    "$(buildah --version | head -1), $(runc --version | head -1), $(skopeo --version), $(hyperfine --version)"
  echo "results: $RES (hyperfine JSON and logs)"
} >"$table"
cat "$table"
