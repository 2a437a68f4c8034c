#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Read-only facts about the GPUs and the NVIDIA driver for the nvidia_driver role."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_driver_info
short_description: Look at the GPUs and the NVIDIA driver of a host
description:
  - Finds NVIDIA GPUs on the PCI bus (vendor 0x10de, class 0x0300 VGA or 0x0302 3D controller), asks the
    EC2 metadata service (IMDSv2, never through a proxy) for the instance type when DMI says the host
    is an EC2 instance, reads the loaded driver version, runs nvidia-smi when present, and reports the
    installed version, apt candidate and hold state of the given packages, so a no-change run skips apt.
  - Changes nothing.
version_added: 1.1.0
author: gpubox
options:
  imds_url:
    description: Base URL of the EC2 instance metadata service; empty to never ask it.
    type: str
    default: ""
  packages:
    description: Packages whose installed version, candidate and hold state to report.
    type: list
    elements: str
    default: []
extends_documentation_fragment: [gpubox.workstation.facts]
"""

EXAMPLES = r"""
- name: Look at the GPUs and the driver
  gpubox.workstation.nvidia_driver_info:
    imds_url: http://169.254.169.254
    packages: [nvidia-driver, nvidia-kernel-dkms]
  register: nvidia_driver_probe
"""

RETURN = r"""
kernel:
  description: The running kernel release.
  returned: always
  type: str
container:
  description: The container technology, empty on a machine or VM.
  returned: always
  type: str
gpus:
  description: NVIDIA GPUs in bus order.
  returned: always
  type: list
  elements: dict
  contains:
    address: {description: PCI address., type: str, returned: always}
    device_id: {description: PCI device ID such as 0x1eb8., type: str, returned: always}
    class: {description: PCI class (0x0300 or 0x0302)., type: str, returned: always}
    name: {description: Model name from lspci, empty without it., type: str, returned: always}
ec2:
  description: Whether DMI or the hypervisor says this is an EC2 instance.
  returned: always
  type: bool
instance_type:
  description: The EC2 instance type, empty off EC2 or without an answer.
  returned: always
  type: str
loaded_version:
  description: Version of the loaded nvidia kernel module, empty when none is loaded.
  returned: always
  type: str
nouveau_loaded:
  description: Whether the nouveau module is loaded.
  returned: always
  type: bool
nvidia_smi:
  description: Whether nvidia-smi is installed, whether it worked, its error message and the GPUs it lists.
  returned: always
  type: dict
packages:
  description: Package -> C(installed) version, apt C(candidate) (both empty for none) and C(held).
  returned: always
  type: dict
update_initramfs:
  description: Whether update-initramfs is installed.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils.ec2 import instance_type, on_ec2
from ansible_collections.gpubox.workstation.plugins.module_utils.host import container_type
from ansible_collections.gpubox.workstation.plugins.module_utils.nvidia import nvidia_smi
from ansible_collections.gpubox.workstation.plugins.module_utils.packages import states
from ansible_collections.gpubox.workstation.plugins.module_utils.pci import gpus, loaded_driver_version


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "imds_url": {"type": "str", "default": ""},
            "packages": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    ec2 = on_ec2()
    module.exit_json(
        changed=False,
        container=container_type(),
        kernel=os.uname().release,
        gpus=gpus(),
        ec2=ec2,
        instance_type=instance_type(module.params["imds_url"]) if ec2 else "",
        loaded_version=loaded_driver_version(),
        nouveau_loaded=os.path.isdir("/sys/module/nouveau"),
        nvidia_smi=nvidia_smi(),
        packages=states(module.params["packages"]),
        update_initramfs=os.path.exists("/usr/sbin/update-initramfs"),
    )


if __name__ == "__main__":
    main()
