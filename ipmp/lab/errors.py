"""The lab's errors: what the environment, not the product, could not do."""

from __future__ import annotations

import subprocess

__all__ = ["CommandError", "LabError"]


class LabError(RuntimeError):
    """The lab could not do what was asked (the environment, not the product)."""


class CommandError(subprocess.CalledProcessError, LabError):
    """A command failed; unlike CalledProcessError, str() shows its stderr."""

    def __str__(self) -> str:
        err = self.stderr.strip() if isinstance(self.stderr, str) else ""
        return f"{super().__str__()}{': ' + err if err else ''}"

