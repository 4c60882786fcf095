#!/usr/bin/env bash
# Builds the tiny test guest from Debian packages (nothing else is downloaded):
# Debian's cloud kernel (virtio-net as modules) and busybox-static in a gzip'd
# newc initramfs whose /init runs the script named by `netrr.task=` on the
# kernel command line (scripts are in guest/tasks/, static helpers built from
# guest/src/). Output, cached by input:
#   .cache/guest/vmlinuz  .cache/guest/initrd.gz
# Usage: scripts/build-guest.sh   (as root, or with the packages already downloadable)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/guest
mkdir -p "$out"
stamp=$(cat scripts/build-guest.sh guest/init guest/tasks/* guest/src/* | sha256sum | cut -c1-16)
if [[ -f "$out/stamp" && "$(cat "$out/stamp")" == "$stamp" && -f "$out/vmlinuz" && -f "$out/initrd.gz" ]]; then
  exit 0
fi
command -v cpio >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends cpio >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kpkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' | sort -V | tail -1 | cut -d' ' -f1)
if [[ -z "$kpkg" ]]; then
  apt-get update -qq
  kpkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' | sort -V | tail -1 | cut -d' ' -f1)
fi
(cd "$work" && chmod 777 . && apt-get download -qq "$kpkg" busybox-static >/dev/null 2>&1)
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/b"
kver=$(ls "$work/k/lib/modules")
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz"
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules,tasks}
cp "$work/b/bin/busybox" "$root/bin/busybox"
for a in sh ash mount insmod ip ifconfig route ping udhcpc nc nslookup wget tftp cat echo sleep poweroff md5sum sha256sum ls dd head tr seq date hexdump printf grep sed cut wc timeout kill arp; do ln -sf busybox "$root/bin/$a"; done
# virtio-net and what it depends on, in dependency order, from each module's
# own depends= field (the package ships no modules.dep; depmod is not needed).
moddir="$work/k/lib/modules/$kver"
order=()
modfile() { find "$moddir/kernel" -name "$1.ko" -o -name "$1.ko.xz" | head -1; }
modinfo_depends() {
  local f=$1
  if [[ "$f" == *.xz ]]; then xz -dc "$f"; else cat "$f"; fi | tr '\0' '\n' | sed -n 's/^depends=//p' | head -1 | tr ',' ' '
}
want() {
  local name=${1//-/_} f d o
  for o in "${order[@]:-}"; do [[ "$(basename "$o" | sed -E 's/\.ko(\.xz)?$//' | tr - _)" == "$name" ]] && return 0; done
  f=$(modfile "$name"); [[ -n "$f" ]] || f=$(modfile "${name//_/-}")
  [[ -n "$f" ]] || return 0 # built in
  for d in $(modinfo_depends "$f"); do want "$d"; done
  order+=("$f")
}
want virtio_pci
want virtio_net
: > "$root/etc/modules"
for f in "${order[@]}"; do
  name=$(basename "$f")
  if [[ "$name" == *.xz ]]; then name=${name%.xz}; xz -dc "$f" > "$root/lib/modules/$name"; else cp "$f" "$root/lib/modules/$name"; fi
  echo "$name" >> "$root/etc/modules"
done
cp guest/init "$root/init"
chmod +x "$root/init"
cp guest/tasks/* "$root/tasks/"
# Guest programs busybox lacks, static (the initramfs has no libc).
for c in guest/src/*.c; do "${CC:-cc}" -static -O2 -o "$root/bin/$(basename "$c" .c)" "$c"; done
chmod +x "$root"/tasks/*
(cd "$root" && mknod -m 600 dev/console c 5 1 && mknod -m 666 dev/null c 1 3 && find . | cpio -o -H newc --quiet | gzip -9 > "$OLDPWD/$out/initrd.gz")
echo "$stamp" > "$out/stamp"
echo "guest: $kpkg, modules: $(tr '\n' ' ' < "$root/etc/modules")" >&2
