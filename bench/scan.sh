#!/usr/bin/env bash
# hoist scan: inventory + vulnerability match of a real Debian image against a large
# OSV database, cold and warm, seconds and peak memory.
#
#   CARGO_TARGET_DIR=/work/target-bench bench/scan.sh
#
# The image is a debootstrap bookworm minbase rootfs (the one the inventory
# acceptance test caches) imported as one layer. The database holds ADVISORIES
# synthetic advisories from hoist-vulndb's gen_osv example (Debian:12, PyPI, npm,
# crates.io, Go, Maven; realistic names, ranges and severities) plus three Debian
# advisories for every source package in the image, written here so that matching
# finds real hits. Cold = page cache dropped before the run; warm = the same run
# again. No peer runs here: Trivy and Grype are not installable on this machine
# (no Debian package, no PyPI/npm release), so the target is absolute: < 1 s and
# < 200 MiB warm.
set -euo pipefail

ADVISORIES=${ADVISORIES:-100000}
ROUNDS=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cache=${HOIST_TEST_CACHE:-/var/cache/hoist-test}/debootstrap/bookworm-minbase

command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null
command -v /usr/bin/time >/dev/null && /usr/bin/time -f %M true 2>/dev/null || apt-get install -y time >/dev/null
cargo build --release --locked -p hoist --bin hoist --manifest-path "$root/Cargo.toml" >&2
cargo build --release --locked -p hoist-vulndb --example gen_osv --manifest-path "$root/Cargo.toml" >&2
hoist="$target/release/hoist"

if [ ! -d "$cache" ]; then
    mirror=$(grep -rhoE 'https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -m1 debian || echo http://deb.debian.org/debian)
    tmp="$cache.tmp-$$"
    mkdir -p "$(dirname "$cache")"
    debootstrap --variant=minbase bookworm "$tmp" "$mirror" >&2
    mv "$tmp" "$cache"
fi

work=$(mktemp -d /tmp/hoist-scan-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOIST_HOME="$work/home"

"$hoist" image import "$cache" bench/debian:bookworm >/dev/null
"$target/release/examples/gen_osv" "$ADVISORIES" "$work/osv.zip" 7 >/dev/null
mkdir -p "$work/debian"
dpkg-query --admindir="$cache/var/lib/dpkg" -W -f '${source:Package} ${source:Version}\n' | sort -u |
    python3 -c '
import json, sys
out = sys.argv[1]
for i, line in enumerate(sys.stdin):
    name, version = line.split()
    for k in range(3):
        adv = {"id": f"DEBIAN-BENCH-{i}-{k}", "modified": "2026-11-01T00:00:00Z",
               "summary": f"{name}: synthetic issue {k}",
               "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
               "affected": [{"package": {"ecosystem": "Debian:12", "name": name},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": version + "+fix" + str(k)}]}]}]}
        json.dump(adv, open(f"{out}/DEBIAN-BENCH-{i}-{k}.json", "w"))
' "$work/debian"
"$hoist" db import "$work/osv.zip" >&2
"$hoist" db import "$work/debian" >&2
total=$("$hoist" --json db status | python3 -c 'import json,sys; print(sum(s["advisories"] for s in json.load(sys.stdin)["sources"]))')

run() { # -> "seconds maxrss_kib vulns packages"
    /usr/bin/time -f '%e %M' -o "$work/time" "$hoist" scan bench/debian:bookworm --scanners vuln --format json -o "$work/report.json"
    read -r secs rss <"$work/time"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], len(r["vulnerabilities"]), len(r["packages"]))' "$work/report.json" "$secs" "$rss"
}
echo "hoist scan (inventory + match), $(nproc) CPUs, image: debootstrap bookworm minbase ($(du -sh "$cache" | cut -f1)), database: $total advisories"
printf '%-6s %-5s %9s %12s %8s %9s\n' round case seconds peak_MiB vulns packages
for r in $(seq "$ROUNDS"); do
    sync; echo 3 >/proc/sys/vm/drop_caches
    read -r s m v p < <(run); printf '%-6s %-5s %9s %12.1f %8s %9s\n' "$r" cold "$s" "$(echo "$m/1024" | bc -l)" "$v" "$p"
    read -r s m v p < <(run); printf '%-6s %-5s %9s %12.1f %8s %9s\n' "$r" warm "$s" "$(echo "$m/1024" | bc -l)" "$v" "$p"
done
# With the secret scanner too (every text file read).
/usr/bin/time -f '%e %M' -o "$work/time" "$hoist" scan bench/debian:bookworm --format json -o "$work/report.json"
read -r secs rss <"$work/time"
printf 'warm with secrets: %s s, %.1f MiB\n' "$secs" "$(echo "$rss/1024" | bc -l)"
