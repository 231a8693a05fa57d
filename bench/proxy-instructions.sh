#!/usr/bin/env bash
# User-space instructions per proxied request: hoist's proxy vs nginx as a reverse
# proxy, counted by valgrind's callgrind (a count, not a time: it does not move with
# what else the machine is doing, so it compares builds on a shared machine where
# bench/proxy.sh's requests/s swing by 30%).
#
#   CARGO_TARGET_DIR=/work/target-bench bench/proxy-instructions.sh
#
# Same backend and proxy settings as bench/proxy.sh (nginx `return 200` behind each
# proxy; keep-alive to it; X-Forwarded-For/-Proto set). Each proxy runs under
# callgrind twice, serving wrk -t1 -c8 for SHORT then LONG; the difference of the
# two totals over the difference of the requests served is the marginal cost of one
# request (start-up and shutdown cancel out). Kernel time is not counted: both
# proxies make the same system calls per request (2 reads, 2 writes; see
# BENCHMARKS.md), so this is where they differ.
# HOIST_BENCH_BIN=path measures that bench_proxy binary instead of building one.
set -euo pipefail

SHORT=${SHORT:-1s}
LONG=${LONG:-5s}
BACKEND_PORT=${BACKEND_PORT:-18180}
PROXY_PORT=${PROXY_PORT:-18181}

need() { command -v "$1" >/dev/null || { apt-get install -y "$2" >/dev/null; }; }
need nginx nginx
need wrk wrk
need valgrind valgrind

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${HOIST_BENCH_BIN:-}" ]; then
    bin=$HOIST_BENCH_BIN
else
    cargo build --release --locked -p hoist-proxy --example bench_proxy --manifest-path "$root/Cargo.toml" >&2
    bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_proxy"
fi

work=$(mktemp -d /tmp/hoist-proxy-instr.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

conf() { # dir header server-block
    mkdir -p "$work/$1"
    cat >"$work/$1/nginx.conf" <<CONF
$2
daemon off;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/$1/body;
    proxy_temp_path $work/$1/proxy;
    fastcgi_temp_path $work/$1/fastcgi;
    uwsgi_temp_path $work/$1/uwsgi;
    scgi_temp_path $work/$1/scgi;
    keepalive_requests 1000000;
    $3
}
CONF
}

conf backend "worker_processes 1;" "server { listen 127.0.0.1:$BACKEND_PORT; location / { default_type text/plain; return 200 'hello from the backend\n'; } }"
nginx -p "$work/backend" -c "$work/backend/nginx.conf" &
pids+=($!)
# One process, no master: callgrind counts the process that serves.
conf proxy "master_process off; worker_processes 1;" "upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
    server { listen 127.0.0.1:$PROXY_PORT; location / {
        proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto \$scheme; } }"

wait_for() {
    for _ in $(seq 150); do curl -fs "http://127.0.0.1:$1/" >/dev/null && return 0; sleep 0.2; done
    echo "nothing answers on $1" >&2
    exit 1
}
wait_for "$BACKEND_PORT"

# measure NAME DURATION -> "instructions requests"
measure() {
    local out="$work/$1.$2.cg" pid
    case $1 in
    nginx) valgrind --tool=callgrind --callgrind-out-file="$out" \
        nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" 2>/dev/null &
        pid=$! ;;
    hoist) HOIST_BENCH_RUNTIME=workers valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" "127.0.0.1:$PROXY_PORT" "127.0.0.1:$BACKEND_PORT" 2>/dev/null &
        pid=$! ;;
    esac
    wait_for "$PROXY_PORT"
    local res
    res=$(wrk -t1 -c8 -d"$2" "http://127.0.0.1:$PROXY_PORT/")
    if grep -q "Non-2xx\|Socket errors" <<<"$res"; then echo "$1: errors during the run:" >&2; echo "$res" >&2; exit 1; fi
    # nginx ends on QUIT, bench_proxy on INT; both write the profile on exit.
    if [ "$1" = nginx ]; then kill -QUIT "$pid"; else kill -INT "$pid"; fi
    wait "$pid" 2>/dev/null || true
    local total
    total=$(awk '/^summary:/ { print $2 }' "$out")
    echo "$total $(awk '/requests in/ { print $1 }' <<<"$res")"
}

echo "callgrind, wrk -t1 -c8, $SHORT and $LONG; $(nginx -v 2>&1), $(valgrind --version)"
printf '%-6s %14s %14s %10s %10s %14s\n' proxy "instr ($SHORT)" "instr ($LONG)" "req" "req" "instr/request"
declare -A per
for name in nginx hoist; do
    read -r i1 n1 < <(measure $name "$SHORT")
    read -r i2 n2 < <(measure $name "$LONG")
    per[$name]=$(( (i2 - i1) / (n2 - n1) ))
    printf '%-6s %14s %14s %10s %10s %14s\n' $name "$i1" "$i2" "$n1" "$n2" "${per[$name]}"
done
awk -v h="${per[hoist]}" -v n="${per[nginx]}" 'BEGIN { printf "ratio hoist/nginx: instructions per request %.2f\n", h / n }'
