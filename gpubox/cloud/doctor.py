"""`doctor`: everything provision needs, checked before any money is spent. Each line is passed,
failed (with the fix) or could not be checked (with how to check it by hand); a check that could
not run is never shown as passed, and "All checks passed" is said only when every one did."""

from __future__ import annotations

from pathlib import Path

from gpubox.cloud import aws, data_role, ec2, ownership
from gpubox.cloud.aws import Check
from gpubox.errors import GpuboxError


def public_address() -> Check:
    """The lookup provision makes when --allow-cidr is left out (the security group's only source)."""
    try:
        cidr = ec2.caller_cidr()
    except GpuboxError as exc:
        return Check("public address", False, exc.message, exc.fix)
    return Check("public address", True, f"{cidr}: provision admits SSH from this address only unless --allow-cidr says otherwise")


def run(region: str | None, instance_type: str, key: Path | None) -> list[Check]:
    checks = aws.doctor(region, instance_type, key)
    if checks[0].ok:  # with credentials: a stable owner, the IAM rights and the boundary provision --data needs
        checks += [ownership.doctor(region), data_role.doctor(region), data_role.boundary_doctor(region)]
    checks.append(public_address())
    return checks


def line(check: Check) -> str:
    if not check.checked:
        return f"[??] {check.name}: {check.detail} → {check.fix}"
    text = f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}"
    return text if check.ok or not check.fix else f"{text}\n       -> {check.fix}"


def report(checks: list[Check]) -> tuple[list[str], int]:
    """The lines to print and the exit status: 1 when a check failed, else 0."""
    failed = [check for check in checks if check.checked and not check.ok]
    unchecked = [check for check in checks if not check.checked]
    if not failed and not unchecked:
        summary = "All checks passed."
    else:
        parts = ([f"{len(failed)} problem(s) to fix before provisioning"] if failed else []) + \
                ([f"{len(unchecked)} check(s) could not run ({', '.join(check.name for check in unchecked)}): "
                  "check those by hand as shown"] if unchecked else [])
        summary = "; ".join(parts) + "."
    return [line(check) for check in checks] + ["", summary], 1 if failed else 0
