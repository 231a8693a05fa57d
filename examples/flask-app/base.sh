#!/usr/bin/env bash
# Make the flask-app example's base image, localhost/debian-python3-flask:bookworm:
# a Debian bookworm minbase root file system with Debian's python3-flask, made by
# debootstrap (no registry needed) and imported into hoist's store:
#   examples/flask-app/base.sh && hoist up examples/flask-app
#
# Needs root and debootstrap (apt-get install -y debootstrap); the first run
# downloads about 40 MB from the Debian mirror. Environment:
#   HOIST             the hoist binary (default: hoist on PATH)
#   HOIST_TEST_CACHE  where the root file system is kept between runs, under
#                     debootstrap/ (default /var/cache/hoist-test, shared with the tests)
#   DEBIAN_MIRROR     the mirror (default: the one apt uses here, else deb.debian.org)
#   BASE_IMAGE        the image name (default localhost/debian-python3-flask:bookworm)
#   BASE_REIMPORT=1   import again even when the store has the image
# `base.sh --rootfs` makes the root file system only and prints its path.
set -euo pipefail
rootfs_only=
case ${1:-} in
  --rootfs) rootfs_only=1 ;;
  "") ;;
  *) echo "usage: base.sh [--rootfs]" >&2; exit 2 ;;
esac

hoist=${HOIST:-hoist}
image=${BASE_IMAGE:-localhost/debian-python3-flask:bookworm}
cache=${HOIST_TEST_CACHE:-/var/cache/hoist-test}/debootstrap
root=$cache/bookworm-minbase-python3-flask
say() { echo "examples/flask-app/base.sh: $*" >&2; }

# The Debian mirror this machine's apt uses (deb822 `URIs:` or one-line `deb`
# sources), as crates/hoist-inventory/tests/os_packages.rs picks it.
debian_mirror() {
  local f line url
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
    [ -f "$f" ] || continue
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line#"${line%%[![:space:]]*}"}
      url=
      case $line in
        URIs:*) read -r url _ <<<"${line#URIs:}" ;;
        "deb "*)
          for w in ${line#deb }; do
            case $w in http*) url=$w; break ;; esac
          done ;;
      esac
      url=${url%/}
      case $url in */debian) echo "$url"; return ;; esac
    done <"$f"
  done
  echo http://deb.debian.org/debian
}

# A complete root is one that was renamed into place: debootstrap writes into a
# temporary directory next to it.
complete() { [ -f "$1/var/lib/dpkg/status" ] && [ -d "$1/usr/lib/python3/dist-packages/flask" ]; }

# Made once: in a temporary directory, renamed into place when complete, one
# debootstrap at a time (parallel tests wait for the first and use its root).
build_root() {
  local tmp
  tmp=$(mktemp -d "$cache/.tmp-bookworm-minbase-python3-flask.XXXXXX")
  # shellcheck disable=SC2064 # $tmp is expanded now, on purpose
  trap "rm -rf '$tmp' '$tmp.log'" EXIT
  say "debootstrap --variant=minbase --include=python3-flask bookworm from $mirror"
  if ! debootstrap --variant=minbase --include=python3-flask bookworm "$tmp" "$mirror" \
    >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    say "debootstrap failed"
    exit 1
  fi
  rm -f "$tmp.log" "$tmp"/var/cache/apt/archives/*.deb
  complete "$tmp" || { say "debootstrap left no flask in $tmp"; exit 1; }
  mv -T "$tmp" "$root"
  trap - EXIT
}

if ! complete "$root"; then
  command -v debootstrap >/dev/null \
    || { say "debootstrap is needed: apt-get install -y debootstrap"; exit 1; }
  command -v flock >/dev/null || { say "flock (util-linux) is needed"; exit 1; }
  mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
  mkdir -p "$cache"
  exec 9>"$cache/.bookworm-minbase-python3-flask.lock"
  flock 9
  complete "$root" || build_root
  exec 9>&-
fi
complete "$root" || { say "$root is not complete"; exit 1; }
say "root file system: $root"

if [ -n "$rootfs_only" ]; then
  echo "$root"
  exit 0
fi
if [ "${BASE_REIMPORT:-}" != 1 ] && "$hoist" image inspect "$image" >/dev/null 2>&1; then
  say "$image is in the store already (BASE_REIMPORT=1 to import it again)"
  exit 0
fi
# The root's files all date from debootstrap: a fixed epoch makes the same root the
# same image.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$root/var/lib/dpkg/status")} \
  "$hoist" image import "$root" "$image" --change 'CMD ["python3"]'
say "imported $image"
