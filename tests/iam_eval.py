"""A small IAM policy evaluator for the tests: identity-based policies (and a permissions boundary)
evaluated on one request, following AWS's documented evaluation logic.

No maintained Python library evaluates requests with conditions (PyPI has generators, linters and
cloudsplaining's pattern scan; moto's enforcement ignores resources and conditions), so this one is
written from the IAM User Guide and has its own tests (tests/test_iam_eval.py):
- "Policy evaluation logic": an explicit Deny in any policy wins; otherwise an Allow is needed;
  otherwise the request is implicitly denied. With a permissions boundary, the action must be
  allowed by both the identity policies and the boundary.
- "Action", "NotAction", "Resource", "NotResource": case-insensitive action patterns; resource
  ARNs matched per colon-separated part with * and ?; policy variables in resources.
- "Condition operators": within a Condition all operators must hold, within an operator all keys,
  and for one key any of the listed values (for a negated operator: none of them). A key missing
  from the request makes a positive operator false and a negated one true, except with ...IfExists
  (true) and Null. Condition key names are case-insensitive, values are not (StringEquals).
- "Single-valued vs. multivalued context keys": ForAllValues is true when every request value
  matches (and when the key is missing or empty), ForAnyValue when at least one does (false when
  missing). A multivalued key without a set operator is refused here as a policy mistake.
- "Policy variables": ${key} in condition values and resources is replaced by the request's value
  (in a Resource only after the ARN's fifth colon: elsewhere the policy is refused);
  ${key, 'default'} gives a default; ${*}, ${?} and ${$} are the literal characters. A variable
  whose key the request lacks makes that value match nothing.
- "Numeric condition operators": NumericEquals, NumericNotEquals, NumericLessThan(Equals),
  NumericGreaterThan(Equals), compared as numbers (the team policy's ec2:VolumeSize cap); a value
  that is not a number matches nothing.
Date, IP and binary operators are not needed by gpubox's policies and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERALS = {"*": "*", "?": "?", "$": "$"}
# Each operator: (the base comparison, whether it is negated).
_STRING_OPERATORS = {"StringEquals": ("equals", False), "StringNotEquals": ("equals", True),
                     "StringEqualsIgnoreCase": ("iequals", False), "StringNotEqualsIgnoreCase": ("iequals", True),
                     "StringLike": ("like", False), "StringNotLike": ("like", True),
                     "ArnEquals": ("arn", False), "ArnLike": ("arn", False), "ArnNotEquals": ("arn", True), "ArnNotLike": ("arn", True),
                     "Bool": ("bool", False)}

_NUMERIC_OPERATORS = {"NumericEquals": (lambda have, want: have == want, False),
                      "NumericNotEquals": (lambda have, want: have == want, True),
                      "NumericLessThan": (lambda have, want: have < want, False),
                      "NumericLessThanEquals": (lambda have, want: have <= want, False),
                      "NumericGreaterThan": (lambda have, want: have > want, False),
                      "NumericGreaterThanEquals": (lambda have, want: have >= want, False)}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


class PolicyError(ValueError):
    """The policy uses something this evaluator does not understand (or AWS would reject)."""


@dataclass(frozen=True)
class Request:
    """One authorization: an action on one resource with its request context (condition keys;
    a list value is a multivalued key such as aws:TagKeys)."""

    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    def value(self, key: str) -> str | list[str] | None:
        wanted = key.lower()
        for name, value in self.context.items():
            if name.lower() == wanted:
                return value if isinstance(value, str) else list(value)
        return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Unresolved(Exception):
    """A policy variable names a key the request lacks."""


def substitute(text: str, request: Request) -> str:
    """The text with its policy variables replaced (raises _Unresolved for a missing key)."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner in _LITERALS:
            return _LITERALS[inner]
        key, _, default = inner.partition(",")
        value = request.value(key.strip())
        if value is None:
            default = default.strip()
            if default.startswith("'") and default.endswith("'") and len(default) >= 2:
                return default[1:-1]
            raise _Unresolved(key)
        if not isinstance(value, str):
            raise PolicyError(f"policy variable {key} names a multivalued key")
        return value

    return _VARIABLE.sub(one, text)


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """* and ? as wildcards, everything else literal."""
    translated = "".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern)
    return re.fullmatch(translated, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _like_with_variables(pattern: str, value: str, request: Request) -> bool:
    """StringLike with variables: a substituted value is literal text, not wildcards ('${*}' is a literal *)."""
    parts: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(pattern):
        parts.append("".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern[position:match.start()]))
        parts.append(re.escape(substitute(match.group(0), request)))
        position = match.end()
    parts.append("".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern[position:]))
    return re.fullmatch("".join(parts), value, re.DOTALL) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike/ArnEquals and Resource: the six colon-separated parts each matched on their own
    (the last part may itself hold colons); '*' alone matches every resource."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return False
    return all(_glob(want, have) for want, have in zip(wanted, given))


def _compare(kind: str, policy_value: str, request_value: str, request: Request) -> bool:
    if kind in ("like",):
        return _like_with_variables(policy_value, request_value, request)
    resolved = substitute(policy_value, request)
    if kind == "equals":
        return resolved == request_value
    if kind == "iequals":
        return resolved.lower() == request_value.lower()
    if kind == "arn":
        return arn_matches(resolved, request_value)
    if kind == "bool":
        return resolved.lower() == request_value.lower()
    raise PolicyError(kind)


def _matches_any(kind: str, policy_values: list[str], request_value: str, request: Request) -> bool:
    for policy_value in policy_values:
        try:
            if _compare(kind, str(policy_value), request_value, request):
                return True
        except _Unresolved:
            continue  # a variable the request lacks: this value matches nothing
    return False


def _condition_holds(operator: str, key: str, policy_values: list[str], request: Request) -> bool:
    set_operator, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    value = request.value(key)
    if base == "Null":
        if set_operator or if_exists:
            raise PolicyError(f"{operator} is not an operator")
        expected_absent = [str(item).lower() for item in policy_values]
        absent = value is None or value == [] or value == ""
        return ("true" if absent else "false") in expected_absent
    if base in _NUMERIC_OPERATORS:
        compare, negated = _NUMERIC_OPERATORS[base]

        def one_value_holds(item: str) -> bool:
            have = _number(item)
            wanted = [_number(substitute(str(policy_value), request)) for policy_value in policy_values]
            hit = have is not None and any(want is not None and compare(have, want) for want in wanted)
            return not hit if negated else hit
    elif base in _STRING_OPERATORS:
        kind, negated = _STRING_OPERATORS[base]

        def one_value_holds(item: str) -> bool:
            hit = _matches_any(kind, policy_values, item, request)
            return not hit if negated else hit
    else:
        raise PolicyError(f"condition operator {operator} is not supported by this evaluator")

    if set_operator:
        values = [] if value is None else _listed(value)
        if set_operator == "ForAllValues":
            return all(one_value_holds(item) for item in values)
        if set_operator == "ForAnyValue":
            return any(one_value_holds(item) for item in values)
        raise PolicyError(f"set operator {set_operator} is not one of ForAllValues, ForAnyValue")
    if value is None:
        return if_exists or negated
    if isinstance(value, list):
        raise PolicyError(f"{key} is multivalued: use ForAllValues or ForAnyValue with {operator}")
    return one_value_holds(value)


def conditions_hold(condition: Mapping[str, Mapping[str, Any]], request: Request) -> bool:
    return all(_condition_holds(operator, key, _listed(values), request)
               for operator, keys in condition.items() for key, values in keys.items())


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(_glob(pattern, action, ignore_case=True) for pattern in patterns)


def _resource_matches(patterns: Iterable[str], request: Request) -> bool:
    for pattern in patterns:
        parts = pattern.split(":", 5)
        if "${" in pattern and (len(parts) < 6 or "${" in ":".join(parts[:5])):
            raise PolicyError(f"Resource {pattern}: a policy variable may only stand in the resource part (after the fifth colon)")
        try:
            if arn_matches(substitute(pattern, request), request.resource):
                return True
        except _Unresolved:
            continue
    return False


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Principal" in statement or "NotPrincipal" in statement:
        raise PolicyError("identity-based policies have no Principal")
    if ("Action" in statement) == ("NotAction" in statement) or ("Resource" in statement) == ("NotResource" in statement):
        raise PolicyError(f"statement {statement.get('Sid', '?')} needs exactly one of Action/NotAction and of Resource/NotResource")
    if "Action" in statement:
        action_ok = _action_matches(_listed(statement["Action"]), request.action)
    else:
        action_ok = not _action_matches(_listed(statement["NotAction"]), request.action)
    if "Resource" in statement:
        resource_ok = _resource_matches(_listed(statement["Resource"]), request)
    else:
        resource_ok = not _resource_matches(_listed(statement["NotResource"]), request)
    return action_ok and resource_ok and conditions_hold(statement.get("Condition", {}), request)


def evaluate(policies: Sequence[Mapping[str, Any]], request: Request) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for the request under these identity policies."""
    allowed = False
    for policy in policies:
        for statement in _listed(policy["Statement"]):
            if statement["Effect"] not in ("Allow", "Deny"):
                raise PolicyError(f"Effect {statement['Effect']}")
            if statement_applies(statement, request):
                if statement["Effect"] == "Deny":
                    return EXPLICIT_DENY
                allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def evaluate_with_boundary(policies: Sequence[Mapping[str, Any]], boundary: Mapping[str, Any], request: Request) -> str:
    """A principal with a permissions boundary: allowed only where both allow, denied where either denies."""
    identity = evaluate(policies, request)
    bounded = evaluate([boundary], request)
    if EXPLICIT_DENY in (identity, bounded):
        return EXPLICIT_DENY
    return ALLOW if identity == bounded == ALLOW else IMPLICIT_DENY
