"""One in.mpathd per root: the instance lock, the stale-socket check and the socket's binding.

Transport: a Unix stream socket, ``<root>/run/ipmp/mpathd.sock``
(``ipmp.mpathd.control.socket_path``), mode 0666 so that queries are open to
everyone; the peer check (``ipmp.mpathd.ipc.peers``) guards the rest.

A daemon first takes the lock ``mpathd.sock.lock`` beside the socket
(``lock_path``), then looks at the socket file: a daemon that answers there,
or anything that accepts connections, means another instance
(``DaemonRunning``); a socket nothing listens on is stale and replaced.
The lock makes that look-then-replace atomic (see ``lock_path``).

These helpers touch only the local file system (a few system calls, never
blocking on the network), so they run directly on the event loop; the
liveness check is a connection with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipmp.host.state import open_lock
from ipmp.mpathd.protocol import IpcError, ProtocolError, Request, decode_reply, encode_request

#: How long ``claim`` waits for a daemon already on the socket to answer.
LIVENESS_TIMEOUT: Final = 1.0
#: The umask the control socket is bound with: mode 0666 (connect needs write).
SOCKET_UMASK: Final = 0o111


class DaemonRunning(IpcError, RuntimeError):
    """Another in.mpathd already serves this root."""


def lock_path(path: Path) -> Path:
    """The lock a serving daemon holds: ``mpathd.sock.lock`` beside the socket.

    Taking it before touching the socket makes "is one running, else replace
    the stale socket" atomic: two daemons started at once (ifconfig starts
    in.mpathd when a group is set) cannot both decide the socket is stale.
    The file stays; deleting a lock file would reopen that race.
    """
    return path.with_name(path.name + ".lock")


@dataclass(frozen=True, slots=True)
class Claim:
    """What a serving daemon holds: the listening socket (not listening yet), the
    inode it was bound to (``close`` unlinks only that file) and the locked lock."""

    sock: socket.socket
    inode: tuple[int, int]
    lock_fd: int

    def release(self) -> None:
        """Give both up (serving did not start)."""
        self.sock.close()
        os.close(self.lock_fd)


async def claim(path: Path) -> Claim:
    """Take the instance lock for ``path``, replace a stale socket there and bind a new one.

    Raises:
        DaemonRunning: another daemon holds the lock, or something accepts
            connections on ``path``.
        OSError: the socket cannot be created (``path`` exists and is not a
            socket: FileExistsError).
    """
    lock_fd = _take_lock(path)
    try:
        if _socket_file_exists(path):
            alive = await _answers(path)
            if alive is True:
                raise DaemonRunning(f"{path}: in.mpathd answers there")
            if alive is None:
                raise DaemonRunning(f"{path}: something accepts connections there")
            _unlink_stale(path)
        sock, inode = _bind(path)
    except BaseException:
        os.close(lock_fd)
        raise
    return Claim(sock, inode, lock_fd)


async def _answers(path: Path) -> bool | None:
    """Whether a daemon listens on ``path``: True if it answers ping, None if it
    accepts but does not answer, False if nothing listens (a stale file)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), LIVENESS_TIMEOUT)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except (TimeoutError, BlockingIOError):
        return None  # a full backlog (EAGAIN on a Unix socket): something is alive there
    try:
        writer.write(encode_request(Request("ping")))
        async with asyncio.timeout(LIVENESS_TIMEOUT):
            await writer.drain()
            line = await reader.readline()
        decode_reply(line)
        return True
    except (OSError, TimeoutError, ProtocolError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _take_lock(path: Path) -> int:
    # 0600 (state.open_lock): a lock anyone could open read-only was one a
    # local user could hold, and every restart and SIGHUP re-exec of the
    # daemon then exited as "another instance" (issue 20).
    lock_fd = open_lock(lock_path(path))
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_fd)
        raise DaemonRunning(f"{path}: another in.mpathd holds {lock_path(path).name}") from None
    except BaseException:
        os.close(lock_fd)
        raise
    return lock_fd


def _socket_file_exists(path: Path) -> bool:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket", str(path))
    return True


def _unlink_stale(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _bind(path: Path) -> tuple[socket.socket, tuple[int, int]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Queries are for everyone; the peer check guards the rest.  The
        # mode comes from the umask at bind(): a chmod by name afterwards
        # would follow whatever the name had become by then.
        old_umask = os.umask(SOCKET_UMASK)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        st = path.lstat()
    except BaseException:
        sock.close()
        raise
    return sock, (st.st_dev, st.st_ino)
