#!/usr/bin/env bash
# Installs what the tests need on a Debian/Ubuntu controller (as root): podman, runc,
# debootstrap, OpenSSH client, Chromium (the plan/report pages are checked in it, headless), rsync
# (runner.py sync);
# and configures podman the way it works on hybrid-cgroup hosts (runc, moderate ulimits),
# unless /etc/containers/containers.conf already says otherwise.
#   scripts/host-tools.sh vm   also QEMU and e2fsprogs' tools, for the VM test host (make test-vm)
set -euo pipefail

tools="podman:podman runc:runc debootstrap:debootstrap ssh:openssh-client ssh-keygen:openssh-client chromium:chromium rsync:rsync"
if [ "${1:-}" = vm ]; then
  tools+=" qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils debugfs:e2fsprogs mkfs.ext4:e2fsprogs"
fi
need=()
for pair in $tools; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# Debian's podman needs these at run time without declaring all of them.
for pkg in uidmap slirp4netns; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "host-tools: missing ${need[*]}; install them (as root on Debian/Ubuntu: make host-tools)" >&2
    exit 1
  fi
  echo "host-tools: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi

conf=/etc/containers/containers.conf
if [ ! -e "$conf" ] && [ "$(id -u)" = 0 ]; then
  mkdir -p /etc/containers
  cat >"$conf" <<'CONF'
# Written by gpubox (scripts/host-tools.sh): crun fails on hybrid cgroup hosts, and higher
# ulimits than these are refused there.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
  echo "host-tools: wrote $conf (runtime runc, ulimits 4096)"
fi
podman info >/dev/null || { echo "host-tools: podman does not work here; see 'podman info'" >&2; exit 1; }
