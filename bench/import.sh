#!/usr/bin/env bash
# bench/import.sh: "root file system -> image in a local store" and "store -> OCI
# layout", hoist against buildah and skopeo, side by side, on a busybox rootfs and a
# Debian bookworm minbase rootfs. Prints a table of medians (hyperfine), CPU time, the
# hoist/peer ratio (lower is better) and peak RSS (/usr/bin/time -v).
#
#   sudo bench/import.sh            # as root: installs peers, mounts, unshare
#
# Environment:
#   BENCH_WORK   work dir, rootfs cache and results (default /var/tmp/hoist-bench)
#   BENCH_RUNS   timed runs per command, at least 5 (default 5; one warmup run too)
#   BENCH_ROOTFS which rootfs cases (default "busybox debian")
#   BENCH_NO_BUILD=1  use $HOIST as is instead of `cargo build --release --locked`
#   CARGO_TARGET_DIR  (default /work/target-bench); HOIST defaults to its release/hoist
#
# Idempotent: rootfs trees are built once into $BENCH_WORK/rootfs-* (temp dir + rename);
# every run starts from a fresh $BENCH_WORK/run. buildah and skopeo run inside a private
# mount namespace with overlays on /etc, /run and /var/lib/containers, so their lock
# files and caches never reach the system; their storage lives under $BENCH_WORK/run.
set -euo pipefail

die() { echo "bench/import.sh: error: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_WORK:-/var/tmp/hoist-bench}
RUNS=${BENCH_RUNS:-5}
CASES=${BENCH_ROOTFS:-busybox debian}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
HOIST=${HOIST:-$CARGO_TARGET_DIR/release/hoist}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" = 0 ] || die "run as root (apt-get, unshare -m, mount, buildah's overlay storage)"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 5 ] || die "BENCH_RUNS must be a number >= 5 (got $RUNS)"

# ---------------------------------------------------------------- 1. peers
need=()
for pair in buildah:buildah runc:runc skopeo:skopeo debootstrap:debootstrap \
  busybox-static:/bin/busybox hyperfine:hyperfine time:/usr/bin/time jq:jq \
  pigz:pigz zstd:zstd; do
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

# ---------------------------------------------------------------- hoist itself
if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
  say "cargo build --release --locked (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$REPO" && cargo build --release --locked -q) || die "cargo build failed"
fi
[ -x "$HOIST" ] || die "$HOIST is not an executable hoist binary"

# ---------------------------------------------------------------- 2. rootfs trees
mkdir -p "$WORK"
rootfs_busybox() {
  local d=$WORK/rootfs-busybox
  [ -f "$d.ok" ] && return 0
  rm -rf "$d" "$d.tmp"
  "$REPO/scripts/busybox-rootfs.sh" "$d.tmp" || die "scripts/busybox-rootfs.sh failed"
  mv "$d.tmp" "$d" && touch "$d.ok"
}
rootfs_debian() {
  local d=$WORK/rootfs-debian
  [ -f "$d.ok" ] && return 0
  rm -rf "$d" "$d.tmp"
  say "debootstrap --variant=minbase bookworm (about 3 minutes, once; log $WORK/debootstrap.log)"
  if timeout 480 debootstrap --variant=minbase bookworm "$d.tmp" "$DEBIAN_MIRROR" \
      >"$WORK/debootstrap.log" 2>&1; then
    mv "$d.tmp" "$d" && touch "$d.ok"
  else
    rm -rf "$d.tmp"
    echo "bench/import.sh: warning: debootstrap from $DEBIAN_MIRROR failed (mirror unreachable?);" \
      "see $WORK/debootstrap.log. Keeping the busybox case only." >&2
    return 1
  fi
}
cases=()
for c in $CASES; do
  case $c in
    busybox) rootfs_busybox && cases+=(busybox) ;;
    debian) if rootfs_debian; then cases+=(debian); fi ;;
    *) die "unknown rootfs case '$c' (busybox, debian)" ;;
  esac
done
[ ${#cases[@]} -gt 0 ] || die "no rootfs to measure"

# ---------------------------------------------------------------- run dir, namespace
RUN=$WORK/run
RES=$WORK/results
rm -rf "$RUN" "$RES"
mkdir -p "$RUN" "$RES"

# in_ns CMD...: run CMD in a private mount namespace whose /etc, /run and
# /var/lib/containers are overlays with upper dirs under $RUN/ns (buildah writes lock
# files in /etc/cni, /etc/containers/networks, /run/containers, a blob-info cache in
# /var/lib/containers). Everything mounted in it dies with it.
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
in_ns true || die "cannot make a private mount namespace with overlays (unshare -m, overlayfs)"

# containers-storage config for the peers; graphroot is wiped before every timed run.
peer_storage() { # DIR DRIVER
  mkdir -p "$1"
  printf '[storage]\ndriver = "%s"\ngraphroot = "%s/graph"\nrunroot = "%s/runroot"\n' \
    "$2" "$1" "$1" >"$1/storage.conf"
}
DRIVER=overlay
peer_storage "$RUN/probe" overlay
if ! CONTAINERS_STORAGE_CONF=$RUN/probe/storage.conf in_ns buildah images >/dev/null 2>&1; then
  echo "bench/import.sh: warning: buildah's overlay driver fails here; using vfs" >&2
  DRIVER=vfs
fi
rm -rf "$RUN/probe"

# ---------------------------------------------------------------- 3. measure
# hf NAME PREPARE CMD: hyperfine (PREPARE wipes the output and syncs, so no run pays
# for the previous run's writeback) with a warmup, RUNS runs, JSON to $RES/NAME.json,
# then one more prepared run under /usr/bin/time -v for the peak RSS ($RES/NAME.rss).
# With NS=1 both run inside the mount namespace.
hf() {
  local name=$1 prep=$2 cmd=$3 wrap=()
  [ "${NS:-0}" = 1 ] && wrap=(in_ns)
  say "$name"
  "${wrap[@]}" hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "$prep" \
    --export-json "$RES/$name.json" "$cmd" >"$RES/$name.log" 2>&1 \
    || { cat "$RES/$name.log" >&2; die "$name: hyperfine failed (command: $cmd)"; }
  "${wrap[@]}" bash -c "$prep && exec /usr/bin/time -v -o '$RES/$name.time' $cmd" \
    >"$RES/$name.rss.log" 2>&1 \
    || { cat "$RES/$name.rss.log" >&2; die "$name: the /usr/bin/time run failed"; }
  awk -F': ' '/Maximum resident set size/ {print $2}' "$RES/$name.time" >"$RES/$name.rss"
}

# the largest file under a dir (the layer blob), in bytes
largest() { find "$1" -type f -printf '%s\n' | sort -n | tail -1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

for c in "${cases[@]}"; do
  rootfs=$WORK/rootfs-$c
  d=$RUN/$c
  mkdir -p "$d"
  du -sb --apparent-size "$rootfs" | cut -f1 >"$RES/$c.rootfs-bytes"
  find "$rootfs" | wc -l >"$RES/$c.rootfs-entries"

  # (a) hoist import, fresh HOIST_HOME each run
  for comp in gzip zstd none; do
    h=$d/hoist-$comp
    HOIST_HOME=$h hf "$c.import.hoist.$comp" "bash -c 'rm -rf $h && sync'" \
      "$HOIST image import --compression $comp $rootfs bench:1"
    largest "$h/blobs" >"$RES/$c.import.hoist.$comp.layer-bytes"
  done

  # (b) buildah from scratch / copy / commit, fresh storage each run
  peer_storage "$d/buildah" "$DRIVER"
  export CONTAINERS_STORAGE_CONF=$d/buildah/storage.conf
  NS=1 hf "$c.import.buildah" "bash -c 'rm -rf $d/buildah/graph $d/buildah/runroot && sync'" \
    "bash -c 'ctr=\$(buildah from scratch) && buildah copy -q \$ctr $rootfs / >/dev/null && buildah commit -q \$ctr localhost/bench:1 >/dev/null'"
  # containers-storage keeps the layer unpacked; its tar size is the layer's diff-size
  jq '[.[]."diff-size" // 0] | max' "$d/buildah/graph/$DRIVER-layers/layers.json" \
    >"$RES/$c.import.buildah.layer-bytes" || die "cannot read buildah's layers.json"

  # (c) export to an OCI layout, fresh dir each run; the stores are the ones the last
  # import runs left (hoist: gzip layer; buildah: its uncompressed layer)
  HOIST_HOME=$d/hoist-gzip hf "$c.export.hoist" "bash -c 'rm -rf $d/oci-hoist && sync'" \
    "$HOIST image export bench:1 --format oci $d/oci-hoist"
  largest "$d/oci-hoist/blobs" >"$RES/$c.export.hoist.layer-bytes"
  NS=1 hf "$c.export.skopeo" "bash -c 'rm -rf $d/oci-skopeo && sync'" \
    "skopeo copy -q containers-storage:localhost/bench:1 oci:$d/oci-skopeo"
  largest "$d/oci-skopeo/blobs" >"$RES/$c.export.skopeo.layer-bytes"
  jq -r '.manifests[0].digest' "$d/oci-skopeo/index.json" >/dev/null \
    || die "skopeo's OCI layout has no manifest"
  unset CONTAINERS_STORAGE_CONF
  # the exported hoist layout must be loadable (sanity, not timed)
  HOIST_HOME=$d/verify "$HOIST" image load "$d/oci-hoist" >/dev/null || die "hoist cannot load its own export"
  HOIST_HOME=$d/verify "$HOIST" image load "$d/oci-skopeo" >/dev/null || die "hoist cannot load skopeo's export"
done

# ---------------------------------------------------------------- compressors alone
# The largest case's uncompressed layer tar (hoist --compression none) through standalone
# compressors, one run each: what the compression step costs by itself.
big=${cases[-1]}
tarball=$(find "$RUN/$big/hoist-none/blobs" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
cat "$tarball" >/dev/null
comp_table=$RES/compressors.md
{
  echo "| $big layer tar ($(mb "$(stat -c %s "$tarball")") MiB) through | wall s | CPU s | output MiB |"
  echo "|---|---:|---:|---:|"
  for z in "gzip -6" "gzip -1" "pigz -6 -p $(nproc)" "pigz -1 -p $(nproc)" "zstd -3 -T1 -q" "openssl dgst -sha256"; do
    /usr/bin/time -f '%e %U %S' -o "$RUN/z.time" $z <"$tarball" >"$RUN/z.out" || die "$z failed"
    read -r e u sy <"$RUN/z.time"
    awk -v z="$z" -v e="$e" -v c="$(awk -v u="$u" -v s="$sy" 'BEGIN {print u + s}')" \
      -v o="$(mb "$(stat -c %s "$RUN/z.out")")" 'BEGIN { printf "| `%s` | %.2f | %.2f | %s |\n", z, e, c, o }'
  done
  rm -f "$RUN/z.out" "$RUN/z.time"
} >"$comp_table"

# ---------------------------------------------------------------- 4. table
med() { jq -r '.results[0].median' "$RES/$1.json"; }
cpu() { jq -r '.results[0] | (.user + .system)' "$RES/$1.json"; }
rss() { echo "$(( $(cat "$RES/$1.rss") / 1024 ))"; }

table=$RES/table.md
{
  echo "| rootfs | case | hoist median s | peer median s | ratio hoist/peer | hoist CPU s | peer CPU s | CPU ratio | hoist peak RSS MiB | peer peak RSS MiB |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${cases[@]}"; do
    row() { # LABEL HOIST PEER
      local hm pm
      hm=$(med "$2") pm=$(med "$3")
      awk -v c="$c" -v l="$1" -v hm="$hm" -v pm="$pm" -v hc="$(cpu "$2")" -v pc="$(cpu "$3")" \
        -v hr="$(rss "$2")" -v pr="$(rss "$3")" \
        'BEGIN { printf "| %s | %s | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f | %d | %d |\n", c, l, hm, pm, hm/pm, hc, pc, hc/pc, hr, pr }'
    }
    row "import gzip (hoist default) vs buildah commit" "$c.import.hoist.gzip" "$c.import.buildah"
    row "import zstd vs buildah commit" "$c.import.hoist.zstd" "$c.import.buildah"
    row "import none vs buildah commit" "$c.import.hoist.none" "$c.import.buildah"
    row "export OCI layout vs skopeo copy" "$c.export.hoist" "$c.export.skopeo"
    awk -v c="$c" -v a="$(med "$c.import.hoist.gzip")" -v b="$(med "$c.export.hoist")" \
      -v x="$(med "$c.import.buildah")" -v y="$(med "$c.export.skopeo")" \
      -v ac="$(cpu "$c.import.hoist.gzip")" -v bc="$(cpu "$c.export.hoist")" \
      -v xc="$(cpu "$c.import.buildah")" -v yc="$(cpu "$c.export.skopeo")" \
      'BEGIN { printf "| %s | rootfs -> gzip OCI layout (import + export) | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f | | |\n", c, a+b, x+y, (a+b)/(x+y), ac+bc, xc+yc, (ac+bc)/(xc+yc) }'
  done
  echo
  echo "| rootfs | size MiB (entries) | hoist gzip layer MiB | hoist zstd layer MiB | hoist none layer MiB | buildah stored layer MiB | skopeo OCI layer MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for c in "${cases[@]}"; do
    echo "| $c | $(mb "$(cat "$RES/$c.rootfs-bytes")") ($(cat "$RES/$c.rootfs-entries")) |" \
      "$(mb "$(cat "$RES/$c.import.hoist.gzip.layer-bytes")") |" \
      "$(mb "$(cat "$RES/$c.import.hoist.zstd.layer-bytes")") |" \
      "$(mb "$(cat "$RES/$c.import.hoist.none.layer-bytes")") |" \
      "$(mb "$(cat "$RES/$c.import.buildah.layer-bytes")") |" \
      "$(mb "$(cat "$RES/$c.export.skopeo.layer-bytes")") |"
  done
} >"$table"

{
  echo
  echo "runs: $RUNS (+1 warmup) per command, wall medians by hyperfine; CPU = mean user+sys of the process tree;" \
    "peak RSS (largest process) from one more run under /usr/bin/time -v"
  echo "buildah storage driver: $DRIVER; load average at end: $(cut -d' ' -f1-3 /proc/loadavg);" \
    "CPU pressure (PSI some avg300): $(awk '/some/ {sub("avg300=", "", $4); print $4 "%"}' /proc/pressure/cpu 2>/dev/null || echo n/a)"
  echo "machine: nproc $(nproc), kernel $(uname -r), CPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "tools: $("$HOIST" --version 2>/dev/null | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))," \
    "$(buildah --version | head -1), $(skopeo --version), $(runc --version | head -1), $(hyperfine --version)"
  echo "results: $RES (hyperfine JSON, /usr/bin/time output)"
  echo
  cat "$comp_table"
} >>"$table"
cat "$table"
