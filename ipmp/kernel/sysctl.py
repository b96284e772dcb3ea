"""Sysctls under ``/proc/sys``: plain procfs I/O, microseconds, so done inline and never in a thread.

Keys are paths below ``/proc/sys`` with ``/`` separators
(``net/ipv4/conf/nic0/rp_filter``), as ``KernelState.sysctls`` and
``SetSysctl`` carry them.

May import: nothing of ours.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["PROC_SYS", "read_sysctl", "write_sysctl"]

#: Where the kernel exposes sysctls; keys are paths below it.
PROC_SYS: Final = "/proc/sys"


def _sysctl_path(key: str) -> str:
    # A key comes from a plan built from hostname files: no way out of /proc/sys.
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad sysctl key {key!r}")
    return os.path.join(PROC_SYS, *parts)


def read_sysctl(key: str) -> str | None:
    """The value of ``key``, None if the kernel has no such sysctl."""
    try:
        with open(_sysctl_path(key), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    # Multi-value sysctls (ping_group_range) come back tab-separated; one
    # space each makes them compare equal to the value a plan writes.
    return " ".join(text.split())


def write_sysctl(key: str, value: str) -> None:
    """Write ``value`` to ``key``; OSError with the kernel's errno if it refuses."""
    # One write(2), so the kernel's verdict (EINVAL, ...) is this call's errno.
    fd = os.open(_sysctl_path(key), os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
