"""What a test does when the machine lacks something it needs: skip, or under CI fail.

CI must run every test (DEVELOPERS.md: when ``CI`` is set a missing
capability fails, it never skips); a developer's machine may lack QEMU or
root and still run the rest.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["in_ci", "missing"]


def in_ci() -> bool:
    """``CI`` is set to something other than empty, 0, false or no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> None:
    """Skip the test for ``what`` it lacks; under CI fail it instead (raises either way)."""
    if in_ci():
        pytest.fail(f"{what} (CI is set, so this is an error, not a skip)")
    pytest.skip(what)
