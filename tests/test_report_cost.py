"""`report`'s cost line for an EC2 workstation: asked of AWS (moto on 127.0.0.1) through the
local record provision leaves, priced from the bundled table."""

from __future__ import annotations

import boto3

from gpubox import contract
from gpubox.cloud import records
from gpubox.commands import document

REGION = "us-east-1"  # the moto fixtures' region (conftest.py)


def testcost_so_far_of_an_ec2_workstation(aws_env):
    client = boto3.client("ec2", region_name=REGION)
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE}, {"Key": contract.TAG_NAME, "Value": "bob"}]
    client.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="g5.xlarge",
                         TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    records.save_record("bob", {"region": REGION, "connect": "", "user": "ubuntu", "key": ""})
    row = document.cost_so_far("bob", None)
    assert row.value.startswith("g5.xlarge running, up 0.0 h since its last start: about $0.00 at $1.006/h"), row.value
    assert "not an EC2 workstation" in document.cost_so_far("carol", None).value
