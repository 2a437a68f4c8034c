"""AWS failures turned into a plain message and the fix. The messages are botocore's own format
("An error occurred (Code) when calling the Operation operation: ..."), as Ansible's amazon.aws
modules pass them on; moto cannot produce quota or capacity errors, so they are recorded here."""

from __future__ import annotations

import pytest

from gpubox.cloud import aws

CASES = {
    "quota": ("An error occurred (VcpuLimitExceeded) when calling the RunInstances operation: You have requested more vCPU "
              "capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type "
              "belongs to.", "GPU vCPUs in eu-west-1", "--quota-code L-DB2E81BA --desired-value 8 --region eu-west-1"),
    "capacity": ("An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation (reached max "
                 "retries: 4): We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested "
                 "(eu-west-1a).", "no capacity", "another --instance-type"),
    "unauthorized": ("An error occurred (UnauthorizedOperation) when calling the RunInstances operation: You are not "
                     "authorized to perform this operation. User: arn:aws:iam::123456789012:user/alice is not authorized to "
                     "perform: ec2:RunInstances on resource: arn:aws:ec2:eu-west-1:123456789012:instance/*",
                     "not allowed to call ec2:RunInstances", "allow ec2:RunInstances"),
    "no credentials": ("Failed to describe instances: Unable to locate credentials", "No AWS credentials found.", "aws configure"),
    "expired": ("An error occurred (AuthFailure) when calling the DescribeInstances operation: AWS was not able to validate "
                "the provided access credentials", "rejected your credentials", "aws sso login"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_known_failures_get_a_plain_message_and_the_fix(case):
    text, message, fix = CASES[case]
    explained = aws.explain(text, "eu-west-1")
    assert message in explained.message
    assert fix in explained.fix


def test_unknown_failures_keep_the_original_words():
    explained = aws.explain("An error occurred (InvalidAMIID.NotFound) when calling the RunInstances operation: "
                            "The image id '[ami-123]' does not exist", "us-east-1")
    assert "InvalidAMIID.NotFound" in explained.message and "runner.py doctor" in explained.fix
