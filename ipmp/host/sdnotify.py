"""systemd's readiness protocol (``sd_notify``), with the standard library only.

A service of ``Type=notify`` finds in ``$NOTIFY_SOCKET`` the address of a
Unix datagram socket and sends it newline-separated ``KEY=VALUE``
assignments: ``READY=1`` once it serves, ``RELOADING=1`` before a reload,
``STOPPING=1`` when it begins to stop, ``STATUS=...`` free text.  An address
starting with ``@`` is in the abstract namespace (the ``@`` stands for the
leading NUL byte); one starting with ``/`` is a file.  Anything else (for
example ``vsock:``) is not supported here and is ignored.

``WATCHDOG=1`` keeps a unit with ``WatchdogSec=`` alive: systemd passes the
period in ``$WATCHDOG_USEC`` (and the pid it is meant for in
``$WATCHDOG_PID``) and restarts a service that stays silent that long.

Without ``$NOTIFY_SOCKET`` (not started by systemd) ``notify`` does nothing.
Errors are swallowed: a missing notification is systemd's timeout to report,
never a reason for the daemon to fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["ENV", "address", "notify", "watchdog_period"]

ENV = "NOTIFY_SOCKET"


def address(value: str | None) -> bytes | None:
    """The ``sockaddr_un`` path for a ``$NOTIFY_SOCKET`` value, or None if unusable."""
    if not value or len(value) < 2:
        return None
    if value[0] == "@":
        return b"\0" + os.fsencode(value[1:])
    if value[0] == "/":
        return os.fsencode(value)
    return None


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1\\nSTATUS=serving"``) to the service manager.

    Returns whether a datagram was sent.
    """
    addr = address((os.environ if env is None else env).get(ENV))
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_period(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """systemd's watchdog period in seconds, if it asks this process for ``WATCHDOG=1``.

    As ``sd_watchdog_enabled(3)``: ``$WATCHDOG_USEC`` a positive integer, and
    ``$WATCHDOG_PID``, when set, this process's pid (a child started by the
    service does not inherit the duty).
    """
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 1_000_000
