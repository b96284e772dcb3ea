"""Run a command detached, writing its output to a log file with a timestamp per line.

The lab runs ``in.mpathd -d`` through this wrapper.  The daemon prints its
Solaris messages on stderr without times; a drill needs to know *when* each
message appeared, to the millisecond, to line it up with the moment a fault
was injected.  Stamping the lines as they come out of the pipe gives that,
whoever reads the log and however late.

    python -m ipmp.lab.logwrap --log FILE -- COMMAND [ARGS...]

Each log line is ``<monotonic seconds> <local ISO time> <text>``.  The
monotonic clock is system-wide (CLOCK_MONOTONIC), so a reader in another
process can compare it with its own ``time.monotonic()``; the wall time is
for people reading the file.  Lines the wrapper adds itself start with ``#``
after the two stamps.

The wrapper detaches (double fork, new session) so that it and the command
outlive the process that started them, and no terminal signal reaches them.
Before the original process exits it prints one JSON line on stdout:
``{"wrapper_pid": N, "wrapper_start": T, "pid": M, "start": U}``, where
``*_start`` are the kernel start times of the processes (``/proc/PID/stat``
field 22), so that whoever stops them later can tell a recycled pid from
the real one.  Exit status 0 once the command is running, 1 if it could not
be started.

SIGTERM, SIGINT or SIGHUP to the wrapper are passed on to the command as
SIGTERM; the wrapper logs the command's exit status and exits after it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

__all__ = ["format_line", "main", "parse_line", "process_start_time"]


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or
    # parentheses itself: split after the last ')'.
    fields = text.rpartition(")")[2].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def format_line(text: str, monotonic: float | None = None, wall: datetime.datetime | None = None) -> str:
    mono = time.monotonic() if monotonic is None else monotonic
    when = datetime.datetime.now() if wall is None else wall
    return f"{mono:.6f} {when.isoformat(timespec='milliseconds')} {text}\n"


def parse_line(line: str) -> tuple[float, str] | None:
    """``(monotonic, text)`` of one log line, or None for a line not in that format."""
    stamp, _, rest = line.rstrip("\n").partition(" ")
    _, _, text = rest.partition(" ")
    try:
        return float(stamp), text
    except ValueError:
        return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ipmp.lab.logwrap", description=__doc__.split("\n\n")[0])
    p.add_argument("--log", required=True, help="file to append the stamped lines to")
    p.add_argument("command", nargs="+", help="the command and its arguments (after --)")
    return p


class _Report:
    """The one message to the original process, sent (and the pipe closed) once."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def send(self, doc: dict[str, object]) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, json.dumps(doc).encode())
        finally:
            os.close(self.fd)
            self.fd = None


def _serve(command: Sequence[str], log_path: str, report: _Report) -> int:
    """The detached wrapper proper: start the command, stamp its output until it ends."""
    with open(log_path, "a", encoding="utf-8", errors="replace") as log:
        try:
            child = subprocess.Popen(
                list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            log.write(format_line(f"# cannot start {command[0]}: {exc}"))
            report.send({"error": f"cannot start {command[0]}: {exc}"})
            return 1

        def forward(_signum: int, _frame: FrameType | None) -> None:
            # Only the command we started, by its pid, and only while it runs.
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, forward)
        log.write(format_line(f"# started pid {child.pid}: {' '.join(command)}"))
        log.flush()
        report.send(
            {
                "wrapper_pid": os.getpid(),
                "wrapper_start": process_start_time(os.getpid()),
                "pid": child.pid,
                "start": process_start_time(child.pid),
            }
        )
        assert child.stdout is not None
        with child.stdout:
            for raw in child.stdout:
                log.write(format_line(raw.decode(errors="replace").rstrip("\n")))
                log.flush()
        rc = child.wait()
        log.write(format_line(f"# pid {child.pid} exited with status {rc}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Resolved now: the detached wrapper changes to / before opening it.
    log_path = os.path.abspath(args.log)
    read_fd, write_fd = os.pipe()
    first = os.fork()
    if first > 0:
        # The original process: wait for the detached wrapper's report.  EOF
        # without a report means the wrapper died on the way.
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 4096):
            chunks.append(chunk)
        os.close(read_fd)
        os.waitpid(first, 0)  # the intermediate child, gone at once: no zombie
        try:
            doc = json.loads(b"".join(chunks).decode(errors="replace"))
        except ValueError:
            doc = {"error": "the wrapper died before starting the command"}
        print(json.dumps(doc), flush=True)
        return 1 if "error" in doc else 0
    # First child: a new session, so the terminal's signals never reach us;
    # then fork again so that the wrapper is not a session leader and can
    # never acquire a controlling terminal.
    os.close(read_fd)
    report = _Report(write_fd)
    rc = 1
    try:
        os.setsid()
        if os.fork() > 0:
            report.fd = None  # the grandchild reports; only close our copy
            os.close(write_fd)
            os._exit(0)
        os.chdir("/")
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        rc = _serve(args.command, log_path, report)
    except BaseException as exc:  # a forked child must never unwind into the caller
        with contextlib.suppress(BaseException):
            report.send({"error": f"wrapper failed: {exc}"})
    finally:
        os._exit(rc)


if __name__ == "__main__":
    sys.exit(main())
