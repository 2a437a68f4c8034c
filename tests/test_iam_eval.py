"""tests/iam_eval.py against AWS's documented evaluation logic (IAM User Guide: "Policy evaluation
logic", "Condition operators", "Single-valued vs. multivalued context keys", "Policy variables").
Each case names the rule it checks; the examples are the guide's own where it gives one."""

from __future__ import annotations

import pytest

from iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, PolicyError, Request, arn_matches, evaluate, evaluate_with_boundary

BUCKET_OBJECT = "arn:aws:s3:::team-data/churn/a.csv"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action="s3:GetObject", resource="*", condition=None) -> dict:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return statement | ({"Condition": condition} if condition else {})


def deny(action="s3:GetObject", resource="*", condition=None) -> dict:
    return allow(action, resource, condition) | {"Effect": "Deny"}


def decide(statements: list[dict], action="s3:GetObject", resource=BUCKET_OBJECT, **context) -> str:
    return evaluate([policy(*statements)], Request(action, resource, context))


# Evaluation logic: default deny, allow, explicit deny wins in any policy.
def test_nothing_allows_it_so_it_is_implicitly_denied():
    assert decide([]) == IMPLICIT_DENY
    assert decide([allow("s3:PutObject")]) == IMPLICIT_DENY


def test_an_allow_allows():
    assert decide([allow()]) == ALLOW


def test_an_explicit_deny_wins_over_any_allow_in_any_policy():
    request = Request("s3:GetObject", BUCKET_OBJECT)
    assert evaluate([policy(allow()), policy(deny())], request) == EXPLICIT_DENY
    assert evaluate([policy(deny()), policy(allow("*"))], request) == EXPLICIT_DENY


def test_a_boundary_limits_what_the_identity_policy_allows():
    everything = policy(allow("*"))
    s3_only = policy(allow(["s3:GetObject", "s3:ListBucket"]))
    assert evaluate_with_boundary([everything], s3_only, Request("s3:GetObject", BUCKET_OBJECT)) == ALLOW
    assert evaluate_with_boundary([everything], s3_only, Request("iam:CreateUser", "arn:aws:iam::1:user/x")) == IMPLICIT_DENY
    # The boundary alone grants nothing.
    assert evaluate_with_boundary([policy()], s3_only, Request("s3:GetObject", BUCKET_OBJECT)) == IMPLICIT_DENY


# Action, NotAction, Resource, NotResource.
def test_actions_match_case_insensitively_with_wildcards():
    assert decide([allow("S3:get*")]) == ALLOW
    assert decide([allow("s3:Get?bject")]) == ALLOW
    assert decide([allow("s3:Put*")]) == IMPLICIT_DENY
    assert decide([allow("ec2:*")]) == IMPLICIT_DENY


def test_not_action_allows_everything_else():
    statement = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert decide([statement]) == ALLOW
    assert decide([statement], action="iam:CreateRole") == IMPLICIT_DENY


def test_resources_match_part_by_part():
    assert decide([allow(resource="arn:aws:s3:::team-data/*")]) == ALLOW
    assert decide([allow(resource="arn:aws:s3:::other/*")]) == IMPLICIT_DENY
    assert arn_matches("arn:aws:iam::*:role/gpubox/*", "arn:aws:iam::111122223333:role/gpubox/gpubox-a-us-east-1")
    assert not arn_matches("arn:aws:iam::*:role/gpubox/*", "arn:aws:iam::111122223333:role/admin")
    # A wildcard in one part does not reach into the next: the account part is not the service part.
    assert not arn_matches("arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:1:volume/vol-1")
    assert not arn_matches("arn:aws:iam::*:role/*", "arn:aws:sts::1:role/x")


def test_not_resource_allows_everything_else():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}
    assert decide([statement]) == ALLOW
    assert decide([statement], resource="arn:aws:s3:::secret/a") == IMPLICIT_DENY


# Condition operators.
def test_string_equals_is_case_sensitive_and_any_listed_value_matches():
    condition = {"StringEquals": {"aws:RequestTag/team": ["red", "blue"]}}
    assert decide([allow(condition=condition)], **{"aws:RequestTag/team": "blue"}) == ALLOW
    assert decide([allow(condition=condition)], **{"aws:RequestTag/team": "Blue"}) == IMPLICIT_DENY


def test_condition_key_names_are_case_insensitive():
    condition = {"StringEquals": {"aws:requesttag/team": "red"}}
    assert decide([allow(condition=condition)], **{"aws:RequestTag/team": "red"}) == ALLOW


def test_all_keys_and_all_operators_of_a_condition_must_hold():
    condition = {"StringEquals": {"aws:RequestTag/a": "1", "aws:RequestTag/b": "2"}, "Bool": {"aws:SecureTransport": "true"}}
    full = {"aws:RequestTag/a": "1", "aws:RequestTag/b": "2", "aws:SecureTransport": "true"}
    assert decide([allow(condition=condition)], **full) == ALLOW
    assert decide([allow(condition=condition)], **(full | {"aws:RequestTag/b": "3"})) == IMPLICIT_DENY
    assert decide([allow(condition=condition)], **(full | {"aws:SecureTransport": "false"})) == IMPLICIT_DENY


def test_a_missing_key_fails_a_positive_operator_and_passes_a_negated_one():
    assert decide([allow(condition={"StringEquals": {"aws:ResourceTag/owner": "alice"}})]) == IMPLICIT_DENY
    assert decide([allow(condition={"StringNotEquals": {"aws:ResourceTag/owner": "alice"}})]) == ALLOW
    assert decide([allow(condition={"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}})]) == ALLOW


def test_if_exists_passes_when_the_key_is_missing_and_checks_it_when_present():
    condition = {"StringEqualsIfExists": {"ec2:InstanceType": "g4dn.xlarge"}}
    assert decide([allow(condition=condition)]) == ALLOW
    assert decide([allow(condition=condition)], **{"ec2:InstanceType": "p5.48xlarge"}) == IMPLICIT_DENY


def test_negated_operators_need_every_listed_value_to_differ():
    condition = {"StringNotEquals": {"aws:RequestTag/team": ["red", "blue"]}}
    assert decide([allow(condition=condition)], **{"aws:RequestTag/team": "blue"}) == IMPLICIT_DENY
    assert decide([allow(condition=condition)], **{"aws:RequestTag/team": "green"}) == ALLOW


def test_string_like_uses_wildcards():
    condition = {"StringLike": {"s3:prefix": ["home/*", "shared"]}}
    assert decide([allow(condition=condition)], **{"s3:prefix": "home/alice"}) == ALLOW
    assert decide([allow(condition=condition)], **{"s3:prefix": "shared/x"}) == IMPLICIT_DENY
    assert decide([allow(condition={"StringNotLike": {"s3:prefix": "home/*"}})], **{"s3:prefix": "home/a"}) == IMPLICIT_DENY


def test_arn_like_matches_each_part():
    condition = {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/gpubox-*"}}
    assert decide([allow(condition=condition)], **{"aws:PrincipalArn": "arn:aws:iam::1:role/gpubox-it"}) == ALLOW
    assert decide([allow(condition=condition)], **{"aws:PrincipalArn": "arn:aws:iam::1:user/gpubox-it"}) == IMPLICIT_DENY


def test_bool():
    condition = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert decide([allow(condition=condition)], **{"aws:MultiFactorAuthPresent": "true"}) == ALLOW
    assert decide([allow(condition=condition)], **{"aws:MultiFactorAuthPresent": "false"}) == IMPLICIT_DENY
    assert decide([allow(condition=condition)]) == IMPLICIT_DENY


def test_null_checks_whether_the_key_is_present():
    absent = {"Null": {"aws:RequestTag/owner": "true"}}
    present = {"Null": {"aws:RequestTag/owner": "false"}}
    assert decide([allow(condition=absent)]) == ALLOW
    assert decide([allow(condition=present)]) == IMPLICIT_DENY
    assert decide([allow(condition=absent)], **{"aws:RequestTag/owner": "a"}) == IMPLICIT_DENY
    assert decide([allow(condition=present)], **{"aws:RequestTag/owner": "a"}) == ALLOW


# Multivalued keys and the set operators.
def test_for_all_values_needs_every_request_value_to_match_and_holds_when_there_are_none():
    condition = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert decide([allow(condition=condition)], **{"aws:TagKeys": ["environment"]}) == ALLOW
    assert decide([allow(condition=condition)], **{"aws:TagKeys": ["environment", "owner"]}) == IMPLICIT_DENY
    assert decide([allow(condition=condition)]) == ALLOW  # the documented pitfall: no keys at all
    assert decide([allow(condition=condition)], **{"aws:TagKeys": []}) == ALLOW


def test_for_any_value_needs_one_match_and_fails_when_there_are_none():
    condition = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}
    assert decide([deny(condition=condition), allow()], **{"aws:TagKeys": ["name", "owner"]}) == EXPLICIT_DENY
    assert decide([deny(condition=condition), allow()], **{"aws:TagKeys": ["name"]}) == ALLOW
    assert decide([deny(condition=condition), allow()]) == ALLOW


def test_for_all_values_with_a_negated_operator_refuses_any_listed_value():
    condition = {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["owner", "managed"]}}
    assert decide([allow(condition=condition)], **{"aws:TagKeys": ["configured"]}) == ALLOW
    assert decide([allow(condition=condition)], **{"aws:TagKeys": ["configured", "owner"]}) == IMPLICIT_DENY


def test_a_multivalued_key_needs_a_set_operator():
    with pytest.raises(PolicyError, match="multivalued"):
        decide([allow(condition={"StringEquals": {"aws:TagKeys": "owner"}})], **{"aws:TagKeys": ["owner"]})


def test_numeric_operators_compare_numbers_not_text():
    # The guide's example: s3:max-keys NumericLessThanEquals 10.
    condition = {"NumericLessThanEquals": {"s3:max-keys": "10"}}
    assert decide([allow(condition=condition)], **{"s3:max-keys": "10"}) == ALLOW
    assert decide([allow(condition=condition)], **{"s3:max-keys": "9"}) == ALLOW  # as text, "9" sorts after "10"
    assert decide([allow(condition=condition)], **{"s3:max-keys": "100"}) == IMPLICIT_DENY
    assert decide([allow(condition=condition)], **{"s3:max-keys": "many"}) == IMPLICIT_DENY
    assert decide([allow(condition=condition)]) == IMPLICIT_DENY
    bigger = {"NumericGreaterThan": {"ec2:VolumeSize": "500"}}
    assert decide([deny(condition=bigger), allow()], **{"ec2:VolumeSize": "501"}) == EXPLICIT_DENY
    assert decide([deny(condition=bigger), allow()], **{"ec2:VolumeSize": "500"}) == ALLOW
    assert decide([deny(condition=bigger), allow()], **{"ec2:VolumeSize": "80"}) == ALLOW
    assert decide([allow(condition={"NumericNotEquals": {"s3:max-keys": ["1", "2"]}})], **{"s3:max-keys": "2"}) == IMPLICIT_DENY
    assert decide([allow(condition={"NumericGreaterThanEquals": {"s3:max-keys": "2.5"}})], **{"s3:max-keys": "3"}) == ALLOW


def test_unknown_operators_are_refused_rather_than_guessed():
    with pytest.raises(PolicyError):
        decide([allow(condition={"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})], **{"aws:CurrentTime": "x"})
    with pytest.raises(PolicyError):
        decide([allow(condition={"ForSomeValues:StringEquals": {"aws:TagKeys": "a"}})], **{"aws:TagKeys": ["a"]})


# Policy variables.
def test_variables_in_conditions_take_the_requests_value():
    condition = {"StringEquals": {"aws:ResourceTag/owner": "${aws:userid}"}}
    assert decide([allow(condition=condition)], **{"aws:ResourceTag/owner": "AIDAALICE", "aws:userid": "AIDAALICE"}) == ALLOW
    assert decide([allow(condition=condition)], **{"aws:ResourceTag/owner": "AIDAALICE", "aws:userid": "AIDABOB"}) == IMPLICIT_DENY


def test_variables_in_resources():
    statement = allow(resource="arn:aws:s3:::home/${aws:username}/*")
    assert decide([statement], resource="arn:aws:s3:::home/alice/x", **{"aws:username": "alice"}) == ALLOW
    assert decide([statement], resource="arn:aws:s3:::home/bob/x", **{"aws:username": "alice"}) == IMPLICIT_DENY


def test_a_variable_in_a_resource_only_stands_in_its_resource_part():
    for pattern in ("${aws:PrincipalArn}", "arn:aws:iam::${aws:PrincipalAccount}:policy/x"):
        with pytest.raises(PolicyError, match="fifth colon"):
            decide([allow("iam:GetPolicy", pattern)], action="iam:GetPolicy", resource="arn:aws:iam::1:policy/x",
                   **{"aws:PrincipalArn": "arn:aws:iam::1:policy/x", "aws:PrincipalAccount": "1"})


def test_a_variable_whose_key_is_missing_matches_nothing_unless_it_has_a_default():
    condition = {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}
    assert decide([allow(condition=condition)], **{"aws:ResourceTag/owner": ""}) == IMPLICIT_DENY
    assert decide([allow(resource="arn:aws:s3:::home/${aws:username}/*")], resource="arn:aws:s3:::home//x") == IMPLICIT_DENY
    with_default = {"StringEquals": {"aws:ResourceTag/owner": "${aws:username, 'nobody'}"}}
    assert decide([allow(condition=with_default)], **{"aws:ResourceTag/owner": "nobody"}) == ALLOW


def test_a_substituted_value_is_literal_in_string_like_and_escapes_give_literal_wildcards():
    condition = {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}
    # A user named "*" must not match everyone's home.
    assert decide([allow(condition=condition)], **{"s3:prefix": "home/alice/x", "aws:username": "*"}) == IMPLICIT_DENY
    assert decide([allow(condition=condition)], **{"s3:prefix": "home/*/x", "aws:username": "*"}) == ALLOW
    literal = {"StringEquals": {"aws:RequestTag/pattern": "a${*}b${$}"}}
    assert decide([allow(condition=literal)], **{"aws:RequestTag/pattern": "a*b$"}) == ALLOW
