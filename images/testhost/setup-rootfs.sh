#!/bin/bash
# Runs inside the fresh rootfs (chroot): turns a debootstrap tree into an EC2-like host.
set -euo pipefail
variant=${1:-full}  # minimal: no locales package, so no locale to generate
export DEBIAN_FRONTEND=noninteractive

# The `admin` user of Debian's EC2 images: no password at all (key-only), passwordless sudo.
useradd --create-home --shell /bin/bash --groups sudo admin
usermod --password '*' admin
install -d -m 0700 -o admin -g admin /home/admin/.ssh
echo 'admin ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users

# Host keys are made on first boot, like cloud-init does, so every test host has its own.
rm -f /etc/ssh/ssh_host_*
cat >/etc/systemd/system/ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable ssh-hostkeys.service ssh.service >/dev/null 2>&1

# Units that make no sense or fail inside a container.
systemctl mask systemd-remount-fs.service dev-hugepages.mount sys-fs-fuse-connections.mount \
  getty.target console-getty.service systemd-udevd.service \
  systemd-udev-trigger.service systemd-firstboot.service >/dev/null 2>&1 || true

# Apt sources as on Debian's cloud images: the release, its updates and the security archive.
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
rm -f /etc/apt/sources.list
cat >/etc/apt/sources.list.d/debian.sources <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename} ${codename}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${codename}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

if [[ $variant == full ]]; then
  echo 'en_US.UTF-8 UTF-8' >/etc/locale.gen
  locale-gen >/dev/null
fi
: >/etc/machine-id
echo 'gpubox-testhost' >/etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/*
