#!/usr/bin/env bash
# hoist's proxy vs nginx as a reverse proxy, in front of the same loopback backend.
#
#   CARGO_TARGET_DIR=/work/target-bench bench/proxy.sh
#
# The backend is nginx answering `return 200` (1 worker). Both proxies keep alive to it
# (nginx: upstream keepalive 128, 2 workers; hoist: one worker runtime per CPU, 2 on
# this box). wrk (Debian) drives each proxy in alternation, ROUNDS times,
# after a warm-up. Prints requests/s and p99 of every run, then the ratios
# hoist/nginx of the means (throughput > 1 and p99 < 1 mean hoist is better).
# HOIST_BENCH_RUNTIME=workers (default: Proxy::with_workers, one current-thread runtime
# per CPU, as `hoist proxy` runs when the daemon starts it), multi (one multi-thread
# runtime) or current (one current-thread runtime) picks how hoist runs.
# HOIST_BENCH_BIN=path runs that bench_proxy binary instead of building one.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
BACKEND_PORT=${BACKEND_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
HOIST_PORT=${HOIST_PORT:-18082}

need() { command -v "$1" >/dev/null || { apt-get install -y "$2" >/dev/null; }; }
need nginx nginx
need wrk wrk

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${HOIST_BENCH_BIN:-}" ]; then
    bin=$HOIST_BENCH_BIN # a bench_proxy built elsewhere (e.g. to compare two builds)
else
    cargo build --release --locked -p hoist-proxy --example bench_proxy --manifest-path "$root/Cargo.toml" >&2
    bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_proxy"
fi

work=$(mktemp -d /tmp/hoist-proxy-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

nginx_conf() { # name workers server-block
    mkdir -p "$work/$1"
    cat >"$work/$1/nginx.conf" <<CONF
worker_processes $2;
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
    nginx -p "$work/$1" -c "$work/$1/nginx.conf" &
    pids+=($!)
}

nginx_conf backend 1 "server { listen 127.0.0.1:$BACKEND_PORT; location / { default_type text/plain; return 200 'hello from the backend\n'; } }"
nginx_conf proxy 2 "upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
    server { listen 127.0.0.1:$NGINX_PORT; location / {
        proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto \$scheme; } }"
"$bin" "127.0.0.1:$HOIST_PORT" "127.0.0.1:$BACKEND_PORT" &
pids+=($!)

for port in $BACKEND_PORT $NGINX_PORT $HOIST_PORT; do
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
    curl -fs "http://127.0.0.1:$port/" >/dev/null || { echo "nothing answers on $port" >&2; exit 1; }
done

# wrk's latency with unit -> microseconds
to_us() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); print v } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v*1000 } else { sub(/s$/,"",v); print v*1000000 } }'; }
run() { # name port -> "rps p99us"
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2/")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "$1: errors during the run:" >&2; echo "$out" >&2; exit 1; fi
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out" | to_us)
    echo "$rps $p99"
}

echo "hoist runtime: ${HOIST_BENCH_RUNTIME:-workers}; wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, $(nproc) CPUs, $(nginx -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s "http://127.0.0.1:$NGINX_PORT/" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s "http://127.0.0.1:$HOIST_PORT/" >/dev/null
printf '%-6s %-6s %12s %10s\n' round proxy requests/s p99_us
: >"$work/results"
for r in $(seq "$ROUNDS"); do
    for name in nginx hoist; do
        port=$NGINX_PORT; [ $name = hoist ] && port=$HOIST_PORT
        read -r rps p99 < <(run $name $port)
        printf '%-6s %-6s %12s %10s\n' "$r" "$name" "$rps" "$p99"
        echo "$name $rps $p99" >>"$work/results"
    done
done
awk '{ n[$1]++; rps[$1]+=$2; p99[$1]+=$3 }
     END { printf "mean   nginx  %12.0f %10.0f\nmean   hoist  %12.0f %10.0f\n", rps["nginx"]/n["nginx"], p99["nginx"]/n["nginx"], rps["hoist"]/n["hoist"], p99["hoist"]/n["hoist"];
           printf "ratio hoist/nginx: requests/s %.2f, p99 %.2f\n", rps["hoist"]/rps["nginx"], p99["hoist"]/p99["nginx"] }' "$work/results"
