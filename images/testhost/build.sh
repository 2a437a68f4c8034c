#!/usr/bin/env bash
# Builds a systemd-booting test-host image that behaves like a fresh EC2 instance:
# python3, sudo, openssh-server and an `admin` user with key-only login and passwordless sudo.
#
#   images/testhost/build.sh debian12|debian13      -> prints the image reference
#   images/testhost/build.sh debian12-minimal|debian13-minimal
#       the smallest host site.yml must converge in one run: minbase with only openssh-server,
#       sudo, python3, systemd, unattended-upgrades, curl and gnupg (no cron, no locales, no
#       python3-apt), so every path and service the roles meet is one their own packages create.
#
# The image is tagged with a hash of this recipe, so it is rebuilt only when the recipe changes.
set -euo pipefail

release=${1:?usage: build.sh debian12|debian13|debian12-minimal|debian13-minimal}
case "$release" in
  debian12|debian12-minimal) suite=bookworm ;;
  debian13|debian13-minimal) suite=trixie ;;
  *) echo "build.sh: unknown release '$release'; use debian12, debian13, debian12-minimal or debian13-minimal" >&2; exit 2 ;;
esac
# Packages an EC2 cloud image has that the roles rely on; systemd-sysv gives /sbin/init.
packages=systemd,systemd-sysv,dbus,libpam-systemd,python3,python3-apt,sudo,openssh-server,ca-certificates,iproute2,procps,locales,tzdata,gnupg,netbase,cron
variant=full
if [[ $release == *-minimal ]]; then
  packages=systemd,systemd-sysv,python3,sudo,openssh-server,unattended-upgrades,curl,gnupg
  variant=minimal
fi

here=$(cd "$(dirname "$0")" && pwd)
mirror=${GPUBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
recipe_hash=$( (cat "$here/build.sh" "$here/setup-rootfs.sh"; echo "$release $mirror") | sha256sum | cut -c1-12)
image="localhost/gpubox-testhost:$release-$recipe_hash"

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "build.sh: '$tool' is missing; run 'make host-tools' first" >&2; exit 1; }
done

workdir=$(mktemp -d /var/tmp/gpubox-testhost.XXXXXX)
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"

echo "Building $image (debootstrap $suite, about a minute)..." >&2
debootstrap --variant=minbase --include="$packages" \
  "$suite" "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
  || { tail -n 30 "$workdir/debootstrap.log" >&2; exit 1; }

cp "$here/setup-rootfs.sh" "$rootfs/tmp/setup-rootfs.sh"
chroot "$rootfs" /bin/bash /tmp/setup-rootfs.sh "$variant"
rm -f "$rootfs/tmp/setup-rootfs.sh"

tar -C "$rootfs" --numeric-owner -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change 'ENV container=podman' \
  - "$image" >/dev/null
podman tag "$image" "localhost/gpubox-testhost:$release"
# Images of older recipes of this release are of no further use (those still in use stay).
# (The hash pattern keeps debian12's clean-up off the debian12-minimal images.)
podman images --format '{{.Repository}}:{{.Tag}}' | grep -E "^localhost/gpubox-testhost:$release-[0-9a-f]{12}\$" | grep -vx "$image" \
  | xargs -r podman rmi >/dev/null 2>&1 || true
echo "$image"
