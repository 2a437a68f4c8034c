"""List → dry run → confirm → act: the one path every verb that deletes takes (destroy, snapshots
prune, cleanup, image prune), so each lists the same way, stops the same way at --dry-run, and asks
the same way: the user types a word (without a terminal to ask on, --yes is required)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from gpubox.errors import GpuboxError

NOT_CONFIRMED = "Not confirmed; nothing was deleted."
DRY_RUN = "Dry run: nothing was deleted."


def typed(word: str, what: str, prompt: str = "") -> bool:
    """Whether the user typed `word`; refuses (exit 2) where there is no terminal to ask on."""
    if not sys.stdin.isatty():
        raise GpuboxError(f"Refusing to {what} without confirmation.", "Re-run with --yes to confirm.", exit_code=2)
    return input(prompt or f"Type {word} to confirm: ").strip() == word


def list_confirm_act(lines: Iterable[str], *, dry_run: bool, yes: bool, word: str, what: str,
                     act: Callable[[], None], dry_run_line: str = DRY_RUN, prompt: str = "") -> int:
    """Print what would be done; at --dry-run stop there; else ask (unless --yes) and act.
    Returns the exit code: 0 done or dry run, 1 not confirmed."""
    for line in lines:
        print(line)
    if dry_run:
        print(dry_run_line)
        return 0
    if not yes and not typed(word, what, prompt):
        print(NOT_CONFIRMED)
        return 1
    act()
    return 0
