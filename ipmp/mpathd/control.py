"""The in.mpathd control protocol's blocking client: ``call``, ``subscribe``, ``is_running``.

The daemon listens on a Unix stream socket, ``<root>/run/ipmp/mpathd.sock``,
one request per connection (Solaris: TCP 127.0.0.1:5999, §2.11); the wire
format is ``ipmp.mpathd.protocol``, whose names this module re-exports so
that a command needs one import to ask the daemon and read its answer.

This module is what ``ipmpstat``, ``if_mpadm`` and ``ifconfig`` load to ask
the daemon, so it imports no asyncio: a script that calls ``ipmpstat -i``
every few seconds pays for the interpreter and the codec, not for the
daemon's event loop (asyncio pulls in ssl, logging, subprocess and
concurrent.futures, about a third of such a command's start-up; issue 15,
point 7).  The server, its authorisation and its limits are
``ipmp.mpathd.ipc``, which re-exports the names of this module its callers
use.

For the same reason it imports no ``dataclasses``, ``pathlib`` or
``typing`` at run time (with ``inspect``, ``urllib.parse`` and
``ipaddress`` they were a quarter of ``ipmpstat -i``): the client takes the
root as a string or a path, and it uses the ``_socket`` extension directly.

The client does blocking I/O on one socket with a timeout, and never prints.
"""

from __future__ import annotations

# ``_socket``, not ``socket``: the wrapper module converts its constants to
# enums and imports ``selectors`` at start-up, and a client needs neither.
import _socket
import errno
import os
import time

# The codec, re-exported: the commands take the client and the records it
# sends and returns from one module.
from ipmp.mpathd.protocol import (
    IPMP_EINVAL,
    IPMP_ENOMEM,
    IPMP_ENOMPATHD,
    IPMP_EPROTO,
    IPMP_ERRMSG,
    IPMP_EUNKGROUP,
    IPMP_EUNKIF,
    MAX_IFNAME,
    MPATHD_FAILBACK_DISABLED,
    MPATHD_FAILBACK_PARTIAL,
    MPATHD_MIN_RED_ERROR,
    MPATHD_SUCCESS,
    MPATHD_SYS_ERROR,
    OPS,
    PRIVILEGED_OPS,
    PROTOCOL_VERSION,
    STREAM_OPS,
    TOPICS,
    IpcError,
    Op,
    ProtocolError,
    Reply,
    Request,
    Topic,
    decode_event,
    decode_reply,
    decode_request,
    encode_event,
    encode_reply,
    encode_request,
    errmsg,
    protocol_error,
)

TYPE_CHECKING = False  # not typing's: see the module docstring
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any, Final

    #: A root as the commands hold it (``altroot.root_dir``) or as the daemon does.
    Root = str | os.PathLike[str]

__all__ = [
    "CONNECT_RETRY",
    "IPMP_EINVAL",
    "IPMP_ENOMEM",
    "IPMP_ENOMPATHD",
    "IPMP_EPROTO",
    "IPMP_ERRMSG",
    "IPMP_EUNKGROUP",
    "IPMP_EUNKIF",
    "MAX_EVENT",
    "MAX_IFNAME",
    "MPATHD_FAILBACK_DISABLED",
    "MPATHD_FAILBACK_PARTIAL",
    "MPATHD_MIN_RED_ERROR",
    "MPATHD_SUCCESS",
    "MPATHD_SYS_ERROR",
    "OPS",
    "PRIVILEGED_OPS",
    "PROTOCOL_VERSION",
    "SOCKET_DIR",
    "SOCKET_NAME",
    "STREAM_OPS",
    "TOPICS",
    "IpcError",
    "NotRunning",
    "Op",
    "ProtocolError",
    "ReadFailed",
    "Reply",
    "Request",
    "SendFailed",
    "Stream",
    "Topic",
    "call",
    "decode_event",
    "decode_reply",
    "decode_request",
    "encode_event",
    "encode_reply",
    "encode_request",
    "errmsg",
    "is_running",
    "protocol_error",
    "socket_path",
    "subscribe",
]

#: The socket lives with the state store, under the alternate root.
SOCKET_DIR: Final = "run/ipmp"
SOCKET_NAME: Final = "mpathd.sock"
#: How long a client waits before it retries a connect refused by a full backlog.
CONNECT_RETRY: Final = 0.01
#: The longest event line a client accepts.
MAX_EVENT: Final = 1 << 20


class NotRunning(IpcError, ConnectionError):
    """Nothing accepts connections on the socket (connect failed: errno, strerror)."""


class SendFailed(IpcError, OSError):
    """The request could not be written."""


class ReadFailed(IpcError, OSError):
    """No complete, well-formed reply came back."""


# -- paths -------------------------------------------------------------------------


def socket_path(root: Root) -> Path:
    """``<root>/run/ipmp/mpathd.sock``."""
    from pathlib import Path

    return Path(root, SOCKET_DIR, SOCKET_NAME)


def _socket_file(root: Root) -> str:
    """``socket_path`` as the string a client connects to, without loading ``pathlib``."""
    return os.path.join(os.fspath(root), SOCKET_DIR, SOCKET_NAME)


# -- client --------------------------------------------------------------------------


def call(root: Root, request: Request, *, timeout: float = 5.0) -> Reply:
    """Send one request to the daemon serving ``root`` and return its reply.

    Raises:
        NotRunning: connecting failed (nothing listens, no socket, no
            permission); carries errno and strerror.
        SendFailed: the request could not be written.
        ReadFailed: no complete reply within ``timeout``, the connection
            closed first, or the reply is malformed (errno 0 then).
    """
    sock = _unix_socket()
    try:
        sock.settimeout(timeout)
        buf = _client_exchange(sock, _socket_file(root), request)
    finally:
        sock.close()
    return _reply_line(buf)[0]


def _unix_socket() -> _socket.socket:
    return _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)


def _connect(sock: _socket.socket, path: str) -> None:
    """Connect within the socket's timeout, also past a momentarily full backlog.

    A Unix socket does not wait for room in the listener's backlog: a
    non-blocking (timed) connect fails with EAGAIN at once.  That is a busy
    daemon, not a missing one, so the connect is retried until the timeout.

    Raises:
        NotRunning: nothing listens, no permission, or still EAGAIN at the
            timeout (errno ETIMEDOUT then).
    """
    timeout = sock.gettimeout()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            sock.connect(path)
            return
        except TimeoutError:
            raise NotRunning(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
        except BlockingIOError:
            if deadline is not None and time.monotonic() + CONNECT_RETRY > deadline:
                raise NotRunning(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
            time.sleep(CONNECT_RETRY)
        except OSError as err:
            raise NotRunning(err.errno, err.strerror) from None


def _client_exchange(sock: _socket.socket, path: str, request: Request) -> bytearray:
    """Connect, send one request line, read until the reply's line is complete.

    What follows the reply line (the first events of a stream) stays in the
    returned buffer.  Raises NotRunning, SendFailed or ReadFailed.

    A daemon that turns a client away (MAX_UNPRIVILEGED) answers EAGAIN
    and hangs up without reading: the send may then fail (EPIPE) with that
    answer already waiting, and the answer is what the client gets.
    """
    _connect(sock, path)
    refused: SendFailed | None = None
    try:
        sock.sendall(encode_request(request))
    except TimeoutError:
        raise SendFailed(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
    except OSError as err:
        if err.errno not in (errno.EPIPE, errno.ECONNRESET):
            raise SendFailed(err.errno, err.strerror) from None
        refused = SendFailed(err.errno, err.strerror)
    buf = bytearray()
    while b"\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise ReadFailed(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
        except OSError as err:
            if refused is not None:
                raise refused from None
            raise ReadFailed(err.errno, err.strerror) from None
        if not chunk:
            if refused is not None:
                raise refused
            raise ReadFailed(0, "connection closed before the reply")
        buf += chunk
    return buf


def _reply_line(buf: bytearray) -> tuple[Reply, bytes]:
    """The reply on the first line of ``buf``, and what follows it."""
    end = buf.index(b"\n") + 1
    try:
        return decode_reply(bytes(buf[:end])), bytes(buf[end:])
    except ProtocolError as err:
        raise ReadFailed(0, f"malformed reply: {err.message}") from None


class Stream:
    """A subscription seen from the client: the daemon's reply, then its events.

    Iterating yields each event object (``decode_event``) as it arrives and
    ends when the daemon closes the connection.  Use as a context manager,
    or call ``close``.
    """

    def __init__(self, sock: _socket.socket, reply: Reply, rest: bytes) -> None:
        self.reply = reply
        self._sock = sock
        self._buf = bytearray(rest)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Events until EOF.

        Raises:
            ReadFailed: a receive error, an event line over MAX_EVENT bytes,
                or one that is not an event object (errno 0 then).
        """
        while True:
            end = self._buf.find(b"\n")
            while end < 0:
                if len(self._buf) > MAX_EVENT:
                    raise ReadFailed(0, f"event longer than {MAX_EVENT} bytes")
                try:
                    chunk = self._sock.recv(65536)
                except TimeoutError:
                    raise ReadFailed(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
                except OSError as err:
                    raise ReadFailed(err.errno, err.strerror) from None
                if not chunk:
                    return
                self._buf += chunk
                end = self._buf.find(b"\n")
            line = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            try:
                yield decode_event(line)
            except ProtocolError as err:
                raise ReadFailed(0, f"malformed event: {err.message}") from None


def subscribe(root: Root, topic: Topic, *, timeout: float = 5.0, idle_timeout: float | None = None) -> Stream:
    """Open a stream of ``topic`` events from the daemon serving ``root``.

    ``timeout`` bounds the connect and the reply; ``idle_timeout`` (None:
    wait forever) bounds each wait for an event afterwards.  The caller
    checks ``stream.reply.ok``: a refusal is a reply, not an exception.

    Raises:
        NotRunning, SendFailed, ReadFailed: as ``call``.
    """
    sock = _unix_socket()
    try:
        sock.settimeout(timeout)
        buf = _client_exchange(sock, _socket_file(root), Request("subscribe", topic=topic))
        reply, rest = _reply_line(buf)
        sock.settimeout(idle_timeout)
    except BaseException:
        sock.close()
        raise
    return Stream(sock, reply, rest)


def is_running(root: Root, *, timeout: float = 1.0) -> bool:
    """Whether a daemon accepts connections for ``root``.

    Like Solaris ``ifconfig``, this only connects and hangs up: the daemon
    drops such a connection silently, and a busy daemon still counts.
    """
    sock = _unix_socket()
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(_socket_file(root))
        except (TimeoutError, BlockingIOError):
            return True  # a full backlog (EAGAIN on a Unix socket): it is there
        except OSError:
            return False
    finally:
        sock.close()
    return True
