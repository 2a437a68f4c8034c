"""AWS failures turned into a plain message and the fix, chosen by botocore's error code (never
by the wording, which AWS changes). moto cannot produce quota or capacity errors, so those are
built as botocore builds them; the rest come from the moto server."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, WaiterError

from botocore.parsers import ResponseParserError

from gpubox.cloud import aws
from gpubox.errors import GpuboxError


def refusal(code: str, message: str = "", operation: str = "RunInstances") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


CASES = {
    "quota": (refusal("VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 0 allows"),
              "GPU vCPUs in eu-west-1", "--quota-code L-DB2E81BA --desired-value 8 --region eu-west-1"),
    "capacity": (refusal("InsufficientInstanceCapacity", "We currently do not have sufficient g5.xlarge capacity"),
                 "no capacity", "another --instance-type"),
    "unauthorized": (refusal("UnauthorizedOperation", "You are not authorized to perform this operation. Encoded ..."),
                     "not allowed to call ec2:RunInstances", "allow ec2:RunInstances"),
    "no credentials": (NoCredentialsError(), "No AWS credentials found.", "aws configure"),
    "expired": (refusal("AuthFailure", "AWS was not able to validate the provided access credentials", "DescribeInstances"),
                "rejected your credentials", "aws sso login"),
    "unreachable": (EndpointConnectionError(endpoint_url="https://ec2.eu-west-1.amazonaws.com/"),
                    "Could not reach AWS in eu-west-1", "proxy"),
    "unreadable answer": (ResponseParserError("Unable to parse response (syntax error: line 1, column 0), invalid XML received"),
                          "could not be read", "AWS_ENDPOINT_URL"),
    "waiter": (WaiterError(name="InstanceRunning", reason="Max attempts exceeded", last_response={}),
               "Gave up waiting", "runner.py status"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_known_failures_get_a_plain_message_and_the_fix(case):
    error, message, fix = CASES[case]
    explained = aws.failure(error, "eu-west-1", "ec2:RunInstances")
    assert message in explained.message
    assert fix in explained.fix


def test_the_code_decides_never_the_wording():
    """A message that merely mentions another failure's words is not taken for it."""
    decoy = refusal("InvalidAMIID.NotFound", "The image id '[ami-123]' does not exist (not VcpuLimitExceeded, "
                    "Unable to locate credentials, not authorized to perform: ec2:RunInstances)")
    explained = aws.failure(decoy, "us-east-1", "ec2:RunInstances")
    assert "AWS refused ec2:RunInstances in us-east-1 (InvalidAMIID.NotFound" in explained.message
    assert "runner.py doctor" in explained.fix and "quota" not in explained.fix and "aws configure" not in explained.fix


def test_a_waiter_that_met_an_aws_error_carries_its_code():
    stuck = WaiterError(name="InstanceRunning", reason="...", last_response={"Error": {"Code": "UnauthorizedOperation"}})
    assert aws.code_of(stuck) == "UnauthorizedOperation"
    assert "not allowed" in aws.failure(stuck, "us-east-1").message


def test_calls_on_the_moto_server_name_the_action_and_take_absent_codes_as_empty(aws_env):
    ec2 = boto3.client("ec2", region_name="us-east-1")
    # A code the caller expects ("not there") is an empty answer, not an error.
    assert aws.call(ec2, "describe_key_pairs", "us-east-1", absent=("InvalidKeyPair.NotFound",), KeyNames=["gpubox-none"]) == {}
    with pytest.raises(GpuboxError) as raised:
        aws.call(ec2, "describe_key_pairs", "us-east-1", KeyNames=["gpubox-none"])
    assert raised.value.message.startswith("AWS refused ec2:DescribeKeyPairs in us-east-1 (InvalidKeyPair.NotFound")
    assert aws.instance_state("us-east-1", "i-0123456789abcdef0") == ""  # an ID EC2 does not know
    with pytest.raises(GpuboxError) as raised, aws.failures("us-east-1", "iam:GetRole"):
        boto3.client("iam", region_name="us-east-1").get_role(RoleName="gpubox-none")
    assert "(NoSuchEntity" in raised.value.message and "iam:GetRole" in raised.value.message
