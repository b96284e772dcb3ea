"""systemd's readiness protocol (``sd_notify``), with the standard library only.

A service of ``Type=notify`` finds in ``$NOTIFY_SOCKET`` the address of a
Unix datagram socket and sends it newline-separated ``KEY=VALUE``
assignments: ``READY=1`` once it serves, ``RELOADING=1`` before a reload,
``STOPPING=1`` when it begins to stop, ``STATUS=...`` free text.  An address
starting with ``@`` is in the abstract namespace (the ``@`` stands for the
leading NUL byte); one starting with ``/`` is a file.  Anything else (for
example ``vsock:``) is not supported here and is ignored.

Without ``$NOTIFY_SOCKET`` (not started by systemd) ``notify`` does nothing.
Errors are swallowed: a missing notification is systemd's timeout to report,
never a reason for the daemon to fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["ENV", "address", "notify"]

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
