#!/usr/bin/env bash
# Make a busybox root file system from Debian's busybox-static package, the base image
# hoist's tests and examples use (no registry needed):
#   scripts/busybox-rootfs.sh DIR && hoist image import DIR busybox:latest
set -euo pipefail
dest=${1:?usage: busybox-rootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "busybox-rootfs.sh: $bb not found: apt-get install busybox-static" >&2; exit 1; }
file "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' \
  || { echo "busybox-rootfs.sh: $bb is not statically linked: install busybox-static" >&2; exit 1; }
mkdir -p "$dest"/{bin,etc,tmp,root,proc,sys,dev,var/www}
chmod 1777 "$dest/tmp"
cp "$bb" "$dest/bin/busybox"
for applet in $("$dest/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dest/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dest/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dest/etc/group"
