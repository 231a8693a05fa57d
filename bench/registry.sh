#!/usr/bin/env bash
# bench/registry.sh: hoist's embedded registry (`hoist registry serve`) against
# Distribution 2.8 (Debian's `docker-registry`), both on loopback and both storing on the
# same file system, driven by the same client (skopeo). Cases:
#   small  an image of 32 random gzip layers of 256 KiB - 2 MiB
#   big    an image of one 512 MiB random gzip layer
# For each case and registry, every round starts a fresh, empty registry and times
#   push   skopeo copy oci:LAYOUT docker://REGISTRY/bench/CASE:1
#   pull   skopeo copy docker://REGISTRY/bench/CASE:1 oci:NEWDIR
# and, for reference, hoist's own client and a light client against the same registry:
#   hoist pull  into a fresh HOIST_HOME
#   hoist push  from that store into another fresh, empty registry
#   light pull  GET of every blob on one keep-alive connection (Python http.client)
#   light push  POST + streaming PUT ?digest= of every blob, then the manifest, into
#               another fresh, empty registry (same client)
# skopeo spends more CPU than either server (for the 512 MiB layer it is the
# bottleneck, see /work/shared/notes/peers.md), so the light rows show the servers.
# Every timed command runs after a `sync` (Distribution never fsyncs; its dirty pages
# must not be written back during the next measurement). Prints medians, the ratio
# Distribution time / hoist time (above 1: hoist is faster) and each server's peak RSS
# (VmHWM from /proc/PID/status, the largest over all rounds).
#
#   bench/registry.sh            # as root (apt-get); about 5 minutes
#
# Environment:
#   BENCH_WORK    work dir: image layouts (made once), registries, results
#                 (default /var/tmp/hoist-bench-registry)
#   BENCH_ROUNDS  rounds per case, odd is best (default 5)
#   BENCH_CASES   which cases (default "small big")
#   BENCH_NO_BUILD=1  use $HOIST as is instead of `cargo build --release -p hoist`
#   CARGO_TARGET_DIR  (default /work/target-bench); HOIST defaults to its release/hoist
set -euo pipefail

die() { echo "bench/registry.sh: error: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_WORK:-/var/tmp/hoist-bench-registry}
ROUNDS=${BENCH_ROUNDS:-5}
CASES=${BENCH_CASES:-small big}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
HOIST=${HOIST:-$CARGO_TARGET_DIR/release/hoist}

[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] || die "BENCH_ROUNDS must be a number >= 1"

# ---------------------------------------------------------------- peers and hoist
need=()
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]}; run as root to install them"
  say "installing ${need[*]}"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
  say "cargo build --release -p hoist (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$REPO" && cargo build --release -p hoist -q) || die "cargo build failed"
fi
[ -x "$HOIST" ] || die "$HOIST is not executable"

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

# ---------------------------------------------------------------- image layouts
# One OCI layout per case, made once: each layer is a tar holding one file of random
# bytes, gzipped at level 0 (stored blocks: a real gzip stream, cheap to make, which
# skopeo passes through unchanged), with a config whose diff_ids are right.
make_layout() { # case dir layer-sizes...
  python3 - "$@" <<'PY'
import hashlib, json, os, random, sys, tarfile, zlib
case, out, *sizes = sys.argv[1:]
tmp = out + ".tmp"
os.makedirs(tmp + "/blobs/sha256", exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{tmp}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return d
layers, diff_ids = [], []
for i, size in enumerate(int(s) for s in sizes):
    z = zlib.compressobj(0, zlib.DEFLATED, 31)
    raw, comp = hashlib.sha256(), hashlib.sha256()
    path = f"{tmp}/blobs/sha256/layer.tmp"
    n = 0
    with open(path, "wb") as f:
        def emit(b):
            global n
            raw.update(b)
            c = z.compress(b)
            comp.update(c); f.write(c); n += len(c)
        info = tarfile.TarInfo(f"data-{i}")
        info.size = size
        info.mode = 0o644
        emit(info.tobuf(format=tarfile.USTAR_FORMAT))
        left = size
        while left:
            k = min(left, 4 << 20)
            emit(os.urandom(k))
            left -= k
        emit(b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024)
        c = z.flush()
        comp.update(c); f.write(c); n += len(c)
    d = comp.hexdigest()
    os.rename(path, f"{tmp}/blobs/sha256/{d}")
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": "sha256:" + d, "size": n})
    diff_ids.append("sha256:" + raw.hexdigest())
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd = put(config)
manifest = json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + cd, "size": len(config)},
    "layers": layers}).encode()
md = put(manifest)
with open(f"{tmp}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + md, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "img"}}]}, f)
with open(f"{tmp}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
os.rename(tmp, out)
PY
}
for c in $CASES; do
  dir=$WORK/layout-$c
  [ -f "$dir/index.json" ] && continue
  rm -rf "$dir" "$dir.tmp"
  case $c in
    small) mapfile -t sizes < <(python3 -c 'import random
r = random.Random(1)
for _ in range(32): print(r.randrange(256 << 10, 2 << 20))') ;;
    big) sizes=($((512 << 20))) ;;
    *) die "unknown case $c (small, big)" ;;
  esac
  say "making the $c image layout (${#sizes[@]} layers)"
  make_layout "$c" "$dir" "${sizes[@]}"
done

# ---------------------------------------------------------------- servers
RUN=$WORK/run
rm -rf "$RUN"
mkdir -p "$RUN"
LOG=$RUN/commands.log
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # kind root port
  local kind=$1 root=$2 port=$3
  rm -rf "$root"
  mkdir -p "$root"
  case $kind in
    hoist)
      "$HOIST" registry serve --addr "127.0.0.1:$port" --root "$root/data" \
        >"$root/server.log" 2>&1 &
      ;;
    distribution)
      cat >"$root/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $root/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
      docker-registry serve "$root/config.yml" >"$root/server.log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 200); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$root/server.log" >&2
  die "$kind registry did not start on port $port"
}

stop_server() { # kind case -> records VmHWM
  local hwm
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
  echo "$2 $1 rss_kib $hwm" >>"$RUN/results"
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

timed() { # case kind op command...
  local c=$1 k=$2 op=$3 s e
  shift 3
  sync
  s=$(date +%s%N)
  "$@" >>"$LOG" 2>&1 || die "$c/$k/$op failed: $* (see $LOG)"
  e=$(date +%s%N)
  echo "$c $k $op $(( (e - s) / 1000 ))" >>"$RUN/results"
}

sk() { skopeo --insecure-policy copy --quiet "$@"; }

# A light client, so the server's own speed shows: Python's http.client on one
# keep-alive connection with 1 MiB buffers and no hashing. push: for every blob of the
# layout a POST and one streaming PUT ?digest= of the file, then the manifest; pull: the
# manifest, then a GET of its config and every layer into a file.
light() { # push|pull layout host:port name [out-dir]
  python3 - "$@" <<'PY'
import http.client, json, os, sys
op, layout, host, name = sys.argv[1:5]
blobs = os.path.join(layout, "blobs", "sha256")
c = http.client.HTTPConnection(host, blocksize=1 << 20)
def call(method, url, body=None, headers={}):
    c.request(method, url, body=body, headers=headers)
    r = c.getresponse()
    return r
if op == "push":
    for hexd in sorted(os.listdir(blobs)):
        r = call("POST", f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
        r.read()
        assert r.status == 202, r.status
        loc = r.getheader("Location")
        loc += ("&" if "?" in loc else "?") + "digest=sha256:" + hexd
        path = os.path.join(blobs, hexd)
        with open(path, "rb") as f:
            r = call("PUT", loc, body=f, headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(os.path.getsize(path))})
            r.read()
        assert r.status == 201, (r.status, loc)
    m = json.load(open(os.path.join(layout, "index.json")))["manifests"][0]
    with open(os.path.join(blobs, m["digest"][7:]), "rb") as f:
        body = f.read()
    r = call("PUT", f"/v2/{name}/manifests/1", body=body,
             headers={"Content-Type": m["mediaType"]})
    r.read()
    assert r.status == 201, r.status
else:
    out = sys.argv[5]
    os.makedirs(out)
    buf = bytearray(1 << 20)
    r = call("GET", f"/v2/{name}/manifests/1", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    m = json.loads(r.read())
    assert r.status == 200, r.status
    for desc in [m["config"]] + m["layers"]:
        hexd = desc["digest"][7:]
        r = call("GET", f"/v2/{name}/blobs/sha256:{hexd}")
        assert r.status == 200, r.status
        with open(os.path.join(out, hexd), "wb") as f:
            while n := r.readinto(buf):
                f.write(memoryview(buf)[:n])
PY
}

round() { # case kind
  local c=$1 k=$2 port port2 root=$RUN/$2-$1 home
  port=$(free_port)
  start_server "$k" "$root" "$port"
  local ref=127.0.0.1:$port/bench/$c:1
  timed "$c" "$k" skopeo-push sk --dest-tls-verify=false "oci:$WORK/layout-$c:img" "docker://$ref"
  rm -rf "$RUN/pulled"
  timed "$c" "$k" skopeo-pull sk --src-tls-verify=false "docker://$ref" "oci:$RUN/pulled:img"
  rm -rf "$RUN/pulled"
  home=$RUN/home
  rm -rf "$home"
  timed "$c" "$k" hoist-pull env HOIST_HOME="$home" "$HOIST" pull "$ref"
  rm -rf "$RUN/pulled"
  timed "$c" "$k" light-pull light pull "$WORK/layout-$c" "127.0.0.1:$port" "bench/$c" "$RUN/pulled"
  rm -rf "$RUN/pulled"
  stop_server "$k" "$c"
  port2=$(free_port)
  start_server "$k" "$root" "$port2"
  timed "$c" "$k" light-push light push "$WORK/layout-$c" "127.0.0.1:$port2" "bench/$c"
  stop_server "$k" "$c"
  port2=$(free_port)
  start_server "$k" "$root" "$port2"
  timed "$c" "$k" hoist-push env HOIST_HOME="$home" "$HOIST" push "$ref" "127.0.0.1:$port2/bench/$c:1"
  stop_server "$k" "$c"
  rm -rf "$root" "$home"
}

# One warmup round per case, not counted: this machine (a VM) is slow the first time it
# touches memory, which the first page-cache fill of a run pays.
for c in $CASES; do
  say "$c: warmup"
  round "$c" hoist
  round "$c" distribution
done
rm -f "$RUN/results"

for c in $CASES; do
  for r in $(seq "$ROUNDS"); do
    say "$c: round $r of $ROUNDS"
    # Alternate who goes first, so neither always runs on a warmer machine.
    if [ $((r % 2)) = 1 ]; then round "$c" hoist; round "$c" distribution
    else round "$c" distribution; round "$c" hoist; fi
  done
done

# ---------------------------------------------------------------- report
say "results (raw: $RUN/results)"
python3 - "$RUN/results" <<'PY'
import collections, statistics, sys
t = collections.defaultdict(list); rss = collections.defaultdict(int)
for line in open(sys.argv[1]):
    c, k, op, v = line.split()
    if op == "rss_kib":
        rss[c, k] = max(rss[c, k], int(v))
    else:
        t[c, k, op].append(int(v) / 1e6)
cases = list(dict.fromkeys(c for c, _, _ in t))
ops = ["skopeo-push", "skopeo-pull", "hoist-push", "hoist-pull", "light-push", "light-pull"]
print("| case | client op | hoist median s | Distribution median s | ratio Distribution/hoist | runs |")
print("|---|---|---:|---:|---:|---:|")
for c in cases:
    for op in ops:
        h, d = t.get((c, "hoist", op)), t.get((c, "distribution", op))
        if not h or not d:
            continue
        mh, md = statistics.median(h), statistics.median(d)
        print(f"| {c} | {op} | {mh:.3f} | {md:.3f} | {md / mh:.2f} | {len(h)} |")
print()
print("| case | hoist peak RSS MiB | Distribution peak RSS MiB |")
print("|---|---:|---:|")
for c in cases:
    print(f"| {c} | {rss[c, 'hoist'] / 1024:.0f} | {rss[c, 'distribution'] / 1024:.0f} |")
PY
