#!/bin/bash
# Runs inside the fresh rootfs (chroot): turns a debootstrap tree into a bootable cloud host
# like Debian's EC2 image (cloud-init makes the `admin` user and host keys at first boot).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Nothing starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
apt-get update -qq
apt-get install -y -qq --no-install-recommends linux-image-cloud-amd64 initramfs-tools zstd cloud-init >/dev/null
rm -f /usr/sbin/policy-rc.d

cat >/etc/fstab <<'FSTAB'
LABEL=gpubox-root / ext4 rw,discard,errors=remount-ro 0 1
FSTAB

# Debian's EC2 image: the default user is `admin`, key-only, passwordless sudo. Only NoCloud is
# probed, so boot does not wait on EC2's metadata address; the seed also carries the network
# off: systemd-networkd below does DHCP on QEMU's user network.
cat >/etc/cloud/cloud.cfg.d/01_gpubox-vm.cfg <<'CFG'
datasource_list: [NoCloud, None]
network: {config: disabled}
system_info:
  default_user:
    name: admin
    lock_passwd: true
    gecos: Debian
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
CFG

cat >/etc/systemd/network/50-dhcp.network <<'NET'
[Match]
Type=ether

[Network]
DHCP=yes
NET
systemctl enable systemd-networkd.service >/dev/null 2>&1
# QEMU's user network answers DNS on 10.0.2.3.
rm -f /etc/resolv.conf
echo 'nameserver 10.0.2.3' >/etc/resolv.conf

# Host keys are cloud-init's to make at first boot, so every test VM has its own.
rm -f /etc/ssh/ssh_host_*

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

echo 'en_US.UTF-8 UTF-8' >/etc/locale.gen
locale-gen >/dev/null
passwd --lock root >/dev/null
: >/etc/machine-id
echo 'localhost' >/etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/*
