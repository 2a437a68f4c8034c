"""Errors a user can act on: every one carries what went wrong and what to do next."""

from __future__ import annotations


class GpuboxError(Exception):
    """A failure with a plain message and the fix; the CLI prints both and exits non-zero."""

    def __init__(self, message: str, fix: str = "", *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.fix}" if self.fix else self.message
