#!/usr/bin/env bash
# Builds the disk of the VM test host: Debian 13 with Debian's cloud kernel, systemd, cloud-init
# (NoCloud: the login user and key come from a seed at boot, as EC2's metadata gives them),
# openssh-server, sudo and python3; ext4 made straight from the debootstrap tree (mkfs.ext4 -d),
# so no loop device, partition table or boot loader is needed: QEMU boots the guest's kernel
# directly (tests/vm.py).
#
#   images/vm/build.sh   -> prints the path of the cached raw base disk
#
# The disk is cached under GPUBOX_VM_CACHE (default /var/tmp/gpubox-vm) by a hash of this recipe;
# a rerun with the same recipe does nothing. Test runs boot sparse copies, never the base.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${GPUBOX_VM_CACHE:-/var/tmp/gpubox-vm}
mirror=${GPUBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
size=${GPUBOX_VM_DISK_SIZE:-8G}
recipe_hash=$( (cat "$here/build.sh" "$here/setup-rootfs.sh"; echo "$mirror $size") | sha256sum | cut -c1-12)
disk="$cache/debian13-$recipe_hash.raw"

if [ -s "$disk" ]; then
  echo "$disk"
  exit 0
fi
for tool in debootstrap mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "images/vm/build.sh: '$tool' is missing; run 'make host-tools' first" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "images/vm/build.sh: debootstrap needs root" >&2; exit 1; }

mkdir -p "$cache"
workdir=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf --one-file-system "$workdir"' EXIT
rootfs="$workdir/rootfs"

# Debootstrap lays down the base; the kernel and cloud-init come with apt inside it (debootstrap
# alone fails configuring cloud-init's Python dependencies in its own order).
packages=systemd,systemd-sysv,udev,kmod,e2fsprogs,dbus,libpam-systemd,python3,python3-apt,sudo,openssh-server
packages+=,ca-certificates,iproute2,procps,locales,tzdata,gnupg,netbase,cron

echo "Building $disk (debootstrap trixie with the cloud kernel, a few minutes)..." >&2
debootstrap --variant=minbase --include="$packages" trixie "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
  || { tail -n 30 "$workdir/debootstrap.log" >&2; exit 1; }

trap 'umount "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true; rm -rf --one-file-system "$workdir"' EXIT
mount -t proc proc "$rootfs/proc"
mount -t sysfs sysfs "$rootfs/sys"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
cp "$here/setup-rootfs.sh" "$rootfs/tmp/setup-rootfs.sh"
chroot "$rootfs" /bin/bash /tmp/setup-rootfs.sh >"$workdir/setup.log" 2>&1 || { tail -n 30 "$workdir/setup.log" >&2; exit 1; }
rm -f "$rootfs/tmp/setup-rootfs.sh"
umount "$rootfs/proc" "$rootfs/sys"

# -d copies the tree with owners and modes; the label is what fstab and the harness name.
mkfs.ext4 -q -L gpubox-root -d "$rootfs" "$workdir/disk.raw" "$size"
mv "$workdir/disk.raw" "$disk"
# Disks of older recipes are of no further use.
find "$cache" -maxdepth 1 -name 'debian13-*.raw' ! -path "$disk" -delete
echo "$disk"
