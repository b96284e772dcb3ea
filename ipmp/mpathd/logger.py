"""in.mpathd's log lines: syslog (facility daemon, ident in.mpathd, pid) or, in debug mode, stderr."""

from __future__ import annotations

import sys
import syslog
from typing import Any, Protocol


class SyslogBackend(Protocol):
    """What ``Logger`` uses of the ``syslog`` module (tests pass a stand-in)."""

    LOG_PID: int
    LOG_DAEMON: int
    LOG_ERR: int
    LOG_INFO: int
    LOG_DEBUG: int

    def openlog(self, ident: str, logoption: int, facility: int) -> None: ...

    def syslog(self, priority: int, message: str) -> None: ...


class Logger:
    """syslog (facility daemon, ident in.mpathd, pid) or, in debug mode, stderr.

    Through syslog the messages reach ``/dev/log``, where syslogd or the
    systemd journal reads them: level ``err`` is LOG_ERR (every state change,
    with the Solaris 10 texts), ``info`` LOG_INFO, ``debug`` LOG_DEBUG (only
    with ``debug``).  On stderr each message is one flushed line.
    """

    def __init__(self, *, to_stderr: bool, debug: bool, backend: SyslogBackend | Any = syslog) -> None:
        self.to_stderr = to_stderr
        self.debug = debug
        self.backend: SyslogBackend = backend
        if not to_stderr:
            backend.openlog("in.mpathd", backend.LOG_PID, backend.LOG_DAEMON)

    def __call__(self, level: str, message: str) -> None:
        if level == "debug" and not self.debug:
            return
        if not self.to_stderr:
            b = self.backend
            prio = {"err": b.LOG_ERR, "info": b.LOG_INFO}.get(level, b.LOG_DEBUG)
            # syslog() encodes strictly: an undecodable byte of a hostname file
            # (a group name read with surrogateescape) must not stop the daemon.
            b.syslog(prio, message.encode("utf-8", "backslashreplace").decode("utf-8"))
            return
        print(message, file=sys.stderr, flush=True)
