"""``in.mpathd [-a] [-d] [-D mask] [-f]``: the IPMP failure detection daemon.

Options as Solaris (§2.1): ``-a`` adopt mode (exit at once when nothing needs
tracking), ``-d`` debug in the foreground, ``-D mask`` debug mask, also in the
foreground.  Any other option prints ``usage: in.mpathd`` and exits 1.

Ours: ``-f`` / ``--foreground`` stays in the foreground but logs to syslog
as the daemon does (stderr when there is no ``/dev/log``): the mode for a
service manager.  ``--version``.  When ``$NOTIFY_SOCKET`` is set (systemd
``Type=notify``), the daemon sends ``READY=1`` once its control socket
answers and its first scan is done, ``RELOADING=1`` on SIGHUP and
``STOPPING=1`` on SIGTERM, SIGINT or SIGQUIT (``ipmp.host.sdnotify``).

Configuration comes from ``<root>/etc/default/mpathd``; SIGHUP re-executes
the daemon with its original arguments, which is how Solaris rereads it.

Test-only environment (never set in production): ``IPMP_FAILURE_DETECTION_QP``
and ``IPMP_IF_SCAN_INTERVAL`` shorten the 40 s quiet period and the 20 s
rescan, in seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ipmp import __version__
from ipmp.host import sdnotify, smf
from ipmp.host.altroot import root_path
from ipmp.mpathd import control, ipc
from ipmp.mpathd.logger import Logger
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import Timing
from ipmp.mpathd.runtime import Runtime
from ipmp.mpathd.settings import parse_settings
from ipmp.program import ROOT_CWD, python_module

PROG = "in.mpathd"
#: Solaris in.mpathd's documented getopt letters (``a``, ``d``, ``D:``) and our ``f``.
OPTSTRING = "adD:f"
LONG_OPTIONS = ("--foreground", "--version")
#: Every option the command accepts (the man page must document each).
OPTIONS = (*(f"-{c}" for c in OPTSTRING if c != ":"), *LONG_OPTIONS)
#: Where syslog(3) writes; without it ``-f`` logs to stderr.
SYSLOG_SOCKET = "/dev/log"


def _usage() -> int:
    print(f"usage: {PROG}", file=sys.stderr)
    return 1


def _float_env(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value > 0 else default


def logs_to_stderr(*, foreground: bool, debug: bool) -> bool:
    """-d/-D: stderr.  -f: syslog like the daemon, unless there is no syslog socket to write to."""
    return debug or (foreground and not os.path.exists(SYSLOG_SOCKET))


def _daemonize() -> Callable[[bool], None]:
    """Double fork; the first parent exits 0 once the daemon says it is ready.

    Solaris opens its listeners before daemonising so that whoever started it
    can talk to it as soon as it exits; the pipe gives the same promise.
    """
    rfd, wfd = os.pipe()
    if os.fork() > 0:
        os.close(wfd)
        status = os.read(rfd, 1)
        os._exit(0 if status == b"0" else 1)
    os.close(rfd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)

    def tell(ok: bool) -> None:
        try:
            os.write(wfd, b"0" if ok else b"1")
            os.close(wfd)
        except OSError:
            pass

    return tell


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    adopt = foreground = debug = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--version":
            print(f"{PROG} (ipmp) {__version__}")
            return 0
        if arg == "--foreground":
            foreground = True
            i += 1
            continue
        if not arg.startswith("-") or arg == "-" or arg.startswith("--"):
            return _usage()
        letters = arg[1:]
        for j, letter in enumerate(letters):
            if letter not in OPTSTRING or letter == ":":
                return _usage()
            if letter == "f":
                foreground = True
            elif letter == "a":
                adopt = True
            elif letter == "d":
                foreground = debug = True
            elif letter == "D":
                value = letters[j + 1:] or (args[i + 1] if i + 1 < len(args) else "")
                if not letters[j + 1:]:
                    i += 1
                try:
                    mask = int(value, 0)
                except ValueError:
                    mask = 0
                if mask == 0:
                    print(f"Bad debug flags: {value}", file=sys.stderr)
                    return 1
                foreground = debug = True
                break
            else:
                return _usage()
        i += 1
    return run(adopt=adopt, foreground=foreground, debug=debug, argv=args)


def run(*, adopt: bool, foreground: bool, debug: bool, argv: Sequence[str]) -> int:
    root = root_path(None)
    if control.is_running(root):
        print(f"{PROG}: main: is another instance of in.mpathd already active?", file=sys.stderr)
        return 1
    tell: Callable[[bool], None] = lambda ok: None  # noqa: E731
    if not foreground:
        tell = _daemonize()
    log = Logger(to_stderr=logs_to_stderr(foreground=foreground, debug=debug), debug=debug)
    try:
        text = (root / "etc/default/mpathd").read_text(errors="replace")
    except OSError:
        text = ""
    settings, warnings = parse_settings(text)
    for warning in warnings:
        log("err", warning)
    # Solaris 11: an SMF property, set by svccfg and taken over by svcadm refresh (host/smf).
    transitive, smf_warning = smf.transitive_probing(Path(root))
    if smf_warning is not None:
        log("err", smf_warning)
    settings = replace(settings, transitive_probing=transitive)
    timing = Timing(
        quiet_period=_float_env("IPMP_FAILURE_DETECTION_QP", Timing.quiet_period),
        scan_interval=_float_env("IPMP_IF_SCAN_INTERVAL", Timing.scan_interval),
    )
    # The first probe sequence numbers come from a secret nobody can guess (issue 20).
    machine = Machine(settings, timing, seed=os.getpid(), seq_secret=os.urandom(16))
    runtime = Runtime(Path(root), machine, log)
    hup = False

    def on_hup() -> None:
        nonlocal hup
        hup = True
        log("err", "SIGHUP: restart and reread config file")
        sdnotify.notify("RELOADING=1")
        runtime.stop()

    def on_stop() -> None:
        sdnotify.notify("STOPPING=1")
        runtime.stop()

    def ready() -> None:
        tell(True)
        # The same promise as the pipe: the control socket answers from now on.
        tracked = len(machine.phyints)
        sdnotify.notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=tracking {tracked} interface(s)")
        if adopt and not machine.phyints:
            runtime.stop()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        loop.add_signal_handler(signal.SIGUSR1, runtime.report_statistics)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(sig, on_stop)
        await runtime.run(ready)

    try:
        asyncio.run(go())
    except ipc.DaemonRunning:
        log("err", "main: is another instance of in.mpathd already active?")
        tell(False)
        return 1
    except OSError as err:
        log("err", f"main: {err}")
        tell(False)
        return 1
    if hup:
        # Solaris re-executes itself with the original arguments; in-memory
        # state is lost, the kernel and the state store keep the flags.
        # By absolute path, isolated: never from the directory it was started in.
        os.chdir(ROOT_CWD)
        command = python_module("ipmp.cli.in_mpathd", *argv)
        os.execv(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
