"""A provision that fails after the instance exists must say that it is billing, what it costs
and the exact commands that stop or delete it; forgetting a GPU instance is expensive."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gpubox import prices
from gpubox.cloud import aws, records
from gpubox.errors import GpuboxError

if TYPE_CHECKING:
    from gpubox.cloud.ec2 import Request


def left_running(request: Request, instance_id: str, state: str) -> str:
    """The lines that follow any failure after launch."""
    price = prices.hourly(request.instance_type, request.spot)
    cost = f"~${price:.3f}/h" if price is not None else "price unknown, see the EC2 pricing page"
    where = f"--name {request.name} --region {request.region}"
    return (f"Instance {instance_id} ({request.instance_type}{' spot' if request.spot else ''}, {cost}) is {state} and billing. "
            f"Its dead-man's switch powers it off {request.deadman_minutes} min after boot unless configuring finishes.\n"
            f"     Stop it:    python runner.py stop {where}\n"
            f"     Delete it:  python runner.py destroy {where} --yes\n"
            f"     Or fix the cause and run the same provision again: it finds this instance and picks up where it stopped.")


@contextmanager
def on_failure(request: Request) -> Iterator[None]:
    """Re-raise any failure (Ctrl-C too) with the running instance it leaves behind, if any."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        instance_id = records.load_record(request.name).get("instance_id", "")
        if not instance_id:
            raise
        try:
            state = aws.instance_state(request.region, instance_id)
        except GpuboxError:
            state = "probably running"
        if state not in ("pending", "running", "probably running"):
            raise
        problem = exc if isinstance(exc, GpuboxError) else GpuboxError(
            "Interrupted." if isinstance(exc, KeyboardInterrupt) else f"unexpected {type(exc).__name__}: {exc}")
        fix = f"{problem.fix}\n  -> " if problem.fix else ""
        raise GpuboxError(problem.message, fix + left_running(request, instance_id, state),
                          exit_code=130 if isinstance(exc, KeyboardInterrupt) else problem.exit_code) from exc
