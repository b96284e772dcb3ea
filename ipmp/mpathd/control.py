"""The in.mpathd control protocol as its clients see it: the wire codec and a blocking client.

Solaris (§2.11): ``if_mpadm``, ``ifconfig`` and libipmp talk to in.mpathd over
TCP on 127.0.0.1:5999, one request per connection, raw C structs.  Here the
transport is a Unix stream socket, ``<root>/run/ipmp/mpathd.sock``, and the
encoding one JSON object per line, versioned with ``"v": 1``::

    {"v": 1, "op": "offline", "ifname": "hme0", "min_redundancy": 1}
    {"v": 1, "mpathd_error": 0, "sys_error": 0, "data": {}}

Unknown keys are refused rather than ignored: a new field is a new version,
so a client and a daemon never silently disagree.  Error numbers and texts
are libipmp's (``ipmp_mpathd.h``, ``ipmp.h``, ``ipmp_errmsg``).  A
``subscribe`` request is answered with an ordinary reply, then event lines
until the client hangs up (``Stream``).

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
``ipaddress`` they were a quarter of ``ipmpstat -i``): the two records are
written out by hand, the client takes the root as a string or a path, and
it uses the ``_socket`` extension directly.

The codec (``Request``, ``Reply``, ``encode_*``, ``decode_*``, the error
tables of ``ipmp.mpathd.codes``) is pure.  The client (``call``,
``subscribe``, ``is_running``) does blocking I/O on one socket with a
timeout, and never prints.
"""

from __future__ import annotations

# ``_socket``, not ``socket``: the wrapper module converts its constants to
# enums and imports ``selectors`` at start-up, and a client needs neither.
import _socket
import errno
import json
import os
import time

from ipmp.errors import IpmpError, Record

# The error numbers and texts (libipmp's), one definition shared with the
# pure machine, which answers with them and must not load this module's I/O.
from ipmp.mpathd.codes import (
    IPMP_EINVAL,
    IPMP_ENOMEM,
    IPMP_ENOMPATHD,
    IPMP_EPROTO,
    IPMP_ERRMSG,
    IPMP_EUNKGROUP,
    IPMP_EUNKIF,
    MPATHD_FAILBACK_DISABLED,
    MPATHD_FAILBACK_PARTIAL,
    MPATHD_MIN_RED_ERROR,
    MPATHD_SUCCESS,
    MPATHD_SYS_ERROR,
    errmsg,
)

TYPE_CHECKING = False  # not typing's: see the module docstring
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path
    from typing import Any, Final, Literal

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

#: Bumped when a field is added or changes meaning; both ends refuse others.
PROTOCOL_VERSION: Final = 1
#: The socket lives with the state store, under the alternate root.
SOCKET_DIR: Final = "run/ipmp"
SOCKET_NAME: Final = "mpathd.sock"
#: How long a client waits before it retries a connect refused by a full backlog.
CONNECT_RETRY: Final = 0.01
#: The longest event line a client accepts.
MAX_EVENT: Final = 1 << 20

# -- requests and replies ------------------------------------------------------

if TYPE_CHECKING:
    Op = Literal["ping", "offline", "undo_offline", "query", "subscribe"]
    Topic = Literal["probes", "events"]
else:
    # At run time only names (re-exported by ``ipc``): the values a request
    # may carry are checked against OPS, STREAM_OPS and TOPICS.
    Op = Topic = str
#: One request, one reply, then the daemon hangs up.
OPS: Final[tuple[Op, ...]] = ("ping", "offline", "undo_offline", "query")
#: One request, one reply, then event lines until the client hangs up.
STREAM_OPS: Final[tuple[Op, ...]] = ("subscribe",)
#: ``probes``: every probe acknowledged or lost (``ipmpstat -p``); ``events``:
#: group and interface state changes (Solaris' IPMP sysevents).
TOPICS: Final[tuple[Topic, ...]] = ("probes", "events")
#: Commands that change state: root only (in.mpathd: reserved source port).
PRIVILEGED_OPS: Final = frozenset({"offline", "undo_offline"})
#: Solaris LIFNAMSIZ - 1: the longest interface name a request may carry.
MAX_IFNAME: Final = 31
_UINT32_MAX: Final = 2**32 - 1
_REQUEST_KEYS: Final = frozenset({"v", "op", "ifname", "min_redundancy", "topic"})
_REPLY_KEYS: Final = frozenset({"v", "mpathd_error", "sys_error", "data"})


class Request(Record):
    """One command.  ``min_redundancy`` only matters for ``offline``; if_mpadm sends 1.

    ``topic`` is for ``subscribe`` only (one of TOPICS), empty otherwise.
    """

    __slots__ = ("ifname", "min_redundancy", "op", "topic")
    __match_args__ = _fields = ("op", "ifname", "min_redundancy", "topic")
    op: Op
    ifname: str
    min_redundancy: int
    topic: str

    def __init__(self, op: Op, ifname: str = "", min_redundancy: int = 1, topic: str = "") -> None:
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "ifname", ifname)
        object.__setattr__(self, "min_redundancy", min_redundancy)
        object.__setattr__(self, "topic", topic)


class Reply(Record):
    """in.mpathd's ``mi_result`` plus the query payload."""

    __slots__ = ("data", "mpathd_error", "sys_error")
    __match_args__ = _fields = ("mpathd_error", "sys_error", "data")
    mpathd_error: int
    sys_error: int
    data: dict[str, Any]

    def __init__(self, mpathd_error: int = MPATHD_SUCCESS, sys_error: int = 0,
                 data: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "mpathd_error", mpathd_error)
        object.__setattr__(self, "sys_error", sys_error)
        object.__setattr__(self, "data", {} if data is None else data)

    @property
    def ok(self) -> bool:
        return self.mpathd_error == MPATHD_SUCCESS


class IpcError(IpmpError):
    """Base of the control-protocol errors."""


class ProtocolError(IpcError, ValueError):
    """A message that does not follow the protocol.

    ``unknown_op`` is set when only the command is unknown, which the daemon
    logs the way in.mpathd logs an unknown command id.
    """

    def __init__(self, message: str, *, unknown_op: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.unknown_op = unknown_op


class NotRunning(IpcError, ConnectionError):
    """Nothing accepts connections on the socket (connect failed: errno, strerror)."""


class SendFailed(IpcError, OSError):
    """The request could not be written."""


class ReadFailed(IpcError, OSError):
    """No complete, well-formed reply came back."""


def _json_line(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n").encode()


def _load_object(line: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not UTF-8") from None
    except (ValueError, RecursionError):
        raise ProtocolError(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    version = doc.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {_sanitise(repr(version))}")
    return doc


def _check_keys(doc: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = sorted(set(doc) - allowed)
    if extra:
        raise ProtocolError(f"unknown {what} field {_sanitise(repr(extra[0]))}")


def _uint32(doc: dict[str, Any], key: str, default: int) -> int:
    value = doc.get(key, default)
    # bool is an int subclass: true must not pass for 1.
    if type(value) is not int or not 0 <= value <= _UINT32_MAX:
        raise ProtocolError(f"{key} must be an unsigned 32-bit integer")
    return value


def encode_request(request: Request) -> bytes:
    """The request as one JSON line (``topic`` only when set)."""
    doc: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "op": request.op,
        "ifname": request.ifname,
        "min_redundancy": request.min_redundancy,
    }
    if request.topic:
        doc["topic"] = request.topic
    return _json_line(doc)


def decode_request(line: bytes) -> Request:
    """Parse and validate one request line (the trailing newline is optional).

    Raises:
        ProtocolError: not a version-1 request object, an unknown command
            (``unknown_op`` set), an unknown field, or a field of the wrong
            type or range.
    """
    doc = _load_object(line, "request")
    op = doc.get("op")
    if not isinstance(op, str):
        raise ProtocolError("op must be a string")
    if op not in OPS and op not in STREAM_OPS:
        raise ProtocolError(f"unknown command {_sanitise(op)}", unknown_op=op)
    _check_keys(doc, _REQUEST_KEYS, "request")
    ifname = doc.get("ifname", "")
    if not isinstance(ifname, str) or len(ifname) > MAX_IFNAME or not ifname.isprintable():
        raise ProtocolError(f"ifname must be a printable string of at most {MAX_IFNAME} characters")
    topic = doc.get("topic", "")
    if not isinstance(topic, str):
        raise ProtocolError("topic must be a string")
    if op in STREAM_OPS and topic not in TOPICS:
        raise ProtocolError(f"unknown topic {_sanitise(repr(topic))}")
    if op not in STREAM_OPS and topic:
        raise ProtocolError(f"topic is not a field of {op}")
    return Request(op, ifname, _uint32(doc, "min_redundancy", 1), topic)


def encode_reply(reply: Reply) -> bytes:
    """The reply as one JSON line.

    Raises:
        TypeError, ValueError: ``data`` is not JSON-serialisable.
    """
    return _json_line({
        "v": PROTOCOL_VERSION,
        "mpathd_error": reply.mpathd_error,
        "sys_error": reply.sys_error,
        "data": reply.data,
    })


def decode_reply(line: bytes) -> Reply:
    """Parse and validate one reply line.

    Raises:
        ProtocolError: not a well-formed version-1 reply.
    """
    doc = _load_object(line, "reply")
    _check_keys(doc, _REPLY_KEYS, "reply")
    if "mpathd_error" not in doc:
        raise ProtocolError("reply has no mpathd_error")
    data = doc.get("data", {})
    if not isinstance(data, dict):
        raise ProtocolError("reply data must be a JSON object")
    return Reply(_uint32(doc, "mpathd_error", 0), _uint32(doc, "sys_error", 0), data)


def encode_event(topic: str, doc: Mapping[str, Any]) -> bytes:
    """One event line of a stream: ``{"v": 1, "topic": topic, ...doc}``.

    Raises:
        TypeError, ValueError: ``doc`` is not JSON-serialisable.
    """
    return _json_line({**doc, "v": PROTOCOL_VERSION, "topic": topic})


def decode_event(line: bytes) -> dict[str, Any]:
    """Parse one event line: a version-1 object with string ``topic`` and ``event``.

    Unlike requests and replies, events may grow fields within a version:
    readers take what they know and ignore the rest.

    Raises:
        ProtocolError: not such an object.
    """
    doc = _load_object(line, "event")
    if not isinstance(doc.get("topic"), str) or not isinstance(doc.get("event"), str):
        raise ProtocolError("event has no topic or event name")
    return doc


def protocol_error() -> Reply:
    """The reply to a request that breaks the protocol.

    in.mpathd answered a command it does not implement with IPMP_EPROTO
    (S10: MI_PING) and dropped a malformed one without a word; a reply tells
    the client what went wrong instead of leaving it to guess from an EOF.
    """
    return Reply(IPMP_EPROTO)


def _sanitise(text: str, limit: int = 64) -> str:
    """Client text made safe for one log line: no control characters, bounded length."""
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


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
