"""The pinger run from a topology: its command line, and a background job that reports.

:meth:`ipmp.lab.topology.Topology.ping` and ``start_ping`` run
:mod:`ipmp.lab.pinger` in a namespace; this module builds its command line,
reads its output without blocking on one pipe while the other fills, and
stops it -- or any other child the lab started -- by its own pid.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypedDict

from ipmp.lab.addressing import AddressLike, bare_address
from ipmp.lab.errors import LabError
from ipmp.lab.pingreport import PingReport, parse_output
from ipmp.program import python_module

__all__ = ["PingJob", "PingOptions", "PingerRun", "close_streams", "pinger_env", "stop_process"]


class PingOptions(TypedDict, total=False):
    """The pinger settings :meth:`Topology.ping` and :meth:`Topology.start_ping` share.

    ``interval``: seconds between rounds (default 0.01); ``timeout``: a reply
    later than this counts as lost (default 1.0); ``source``: addresses to send
    from (default: the kernel picks); ``device``: the interface to bind to.
    """

    interval: float
    timeout: float
    source: Sequence[AddressLike]
    device: str | None


@dataclass(frozen=True)
class PingerRun:
    """One run of :mod:`ipmp.lab.pinger`: its settings, defaults filled in, and its command line."""

    addrs: Sequence[AddressLike]
    count: int
    interval: float = 0.01
    timeout: float = 1.0
    source: Sequence[AddressLike] = ()
    device: str | None = None

    def argv(self, *, ready: bool) -> list[str]:
        argv = python_module("ipmp.lab.pinger", "--count", str(self.count))
        argv += ["--interval", repr(float(self.interval)), "--timeout", repr(float(self.timeout))]
        for src in self.source:
            argv += ["--source", bare_address(src)]
        if self.device is not None:
            argv += ["--device", self.device]
        if ready:
            argv.append("--ready")
        return [*argv, "--", *(bare_address(a) for a in self.addrs)]


class PingJob:
    """A background pinger (see :meth:`Topology.start_ping`)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.start_monotonic: float | None = None
        self._out = bytearray()
        self._err = bytearray()
        self._open: dict[int, bytearray] = {}
        if proc.stdout is not None:
            self._open[proc.stdout.fileno()] = self._out
        if proc.stderr is not None:
            self._open[proc.stderr.fileno()] = self._err

    @property
    def stderr(self) -> str:
        return self._err.decode(errors="replace")

    def _pump(self, deadline: float | None, stop_at_line: bool) -> None:
        # Raw os.read on the fds, never the file objects: mixing buffered reads
        # with select() would hide data inside Python's buffers.
        with selectors.DefaultSelector() as sel:
            for fd in self._open:
                sel.register(fd, selectors.EVENT_READ)
            while self._open:
                if stop_at_line and b"\n" in self._out:
                    return
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return
                for key, _ in sel.select(wait):
                    fd = int(key.fd)
                    chunk = os.read(fd, 65536)
                    if chunk:
                        self._open[fd] += chunk
                    else:
                        sel.unregister(fd)
                        del self._open[fd]

    def wait_ready(self, timeout: float = 10.0) -> float:
        """Block until the pinger has its sockets open; returns its start time (monotonic)."""
        self._pump(time.monotonic() + timeout, stop_at_line=True)
        line = bytes(self._out).split(b"\n", 1)[0]
        try:
            doc = json.loads(line) if b"\n" in self._out else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("event") != "ready":
            raise LabError(f"pinger did not start: {self.stderr.strip() or line.decode(errors='replace')}")
        self.start_monotonic = float(doc["start_monotonic"])
        return self.start_monotonic

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> PingReport:
        """Wait for the pinger to finish on its own (``count`` reached) and return its report."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._pump(deadline, stop_at_line=False)
        try:
            rc = self.proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise LabError("pinger did not finish in time") from None
        close_streams(self.proc)
        if rc != 0:
            raise LabError(f"pinger failed (exit {rc}): {self.stderr.strip()}")
        return parse_output(self._out.decode())

    def stop(self, timeout: float = 10.0) -> PingReport:
        """Stop sending; the pinger still collects in-flight replies, then reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def kill(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> PingJob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate one process we started, by its pid; escalate to SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    close_streams(proc)


def close_streams(proc: subprocess.Popen[bytes]) -> None:
    # Unclosed pipes raise ResourceWarning at garbage collection, which the
    # test suite turns into errors.
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def pinger_env() -> dict[str, str]:
    # The pinger runs as `python -m ipmp.lab.pinger` in a fresh process; make
    # sure it imports this very checkout even when it is not installed.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env
