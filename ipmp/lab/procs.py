"""The lab's processes: found, checked and stopped by pid -- never by name -- and signal handling.

A pid alone is not a process: it is recorded with the kernel's start time
of the process, so a recycled pid is never signalled.  A process found in a
lab's namespace is only ours if it carries the lab's mark in its
environment (:data:`LAB_MARK_ENV`); anything else is reported, never killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ipmp.lab.logwrap import process_start_time

__all__ = [
    "LAB_MARK_ENV",
    "STOP_GRACE",
    "Proc",
    "cmdline",
    "interrupt_on_signals",
    "marked",
    "netns_list",
    "netns_pids",
    "signals_blocked",
]

#: Set to the lab's namespace prefix in the environment of everything the lab
#: runs, so that ``down`` can tell the lab's processes from anybody else's.
LAB_MARK_ENV = "IPMP_LAB"
#: SIGTERM, then this long, then SIGKILL.
STOP_GRACE = 3.0


@dataclass(frozen=True)
class Proc:
    """A process the lab started: its pid and kernel start time (pid reuse guard)."""

    pid: int
    start: int | None

    def alive(self) -> bool:
        now = process_start_time(self.pid)
        if now is None:
            return False
        if _is_zombie(self.pid):
            return False
        return self.start is None or now == self.start

    def stop(self, grace: float = STOP_GRACE) -> bool:
        """SIGTERM, then SIGKILL after ``grace`` seconds; True if it had to be killed."""
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            time.sleep(0.02)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        return True


def _is_zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = text.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


def marked(pid: int, mark: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{LAB_MARK_ENV}={mark}".encode() in environ.split(b"\0")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def netns_list() -> set[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def netns_pids(name: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return [int(word) for word in proc.stdout.split() if word.isdigit()]


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Cleanup must run to the end: a second Ctrl-C waits until it is done."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt, like Ctrl-C, so cleanup runs."""

    def raise_interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
