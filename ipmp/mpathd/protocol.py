"""The in.mpathd control protocol on the wire: requests, replies and event lines.

Solaris (§2.11): ``if_mpadm``, ``ifconfig`` and libipmp talk to in.mpathd over
TCP on 127.0.0.1:5999, one request per connection, raw C structs.  Here the
transport is a Unix stream socket (``ipmp.mpathd.control`` names it, the
daemon's side is ``ipmp.mpathd.ipc``) and the encoding one JSON object per
line, UTF-8, versioned with ``"v": 1``::

    {"v": 1, "op": "offline", "ifname": "hme0", "min_redundancy": 1}
    {"v": 1, "mpathd_error": 0, "sys_error": 0, "data": {}}

Unknown keys are refused rather than ignored: a new field is a new version,
so a client and a daemon never silently disagree.  Error numbers and texts
are libipmp's (``ipmp_mpathd.h``, ``ipmp.h``, ``ipmp_errmsg``), defined in
``ipmp.mpathd.codes``: the reply's ``mpathd_error`` is an IPMP error code and
``sys_error`` an errno, meaningful when ``mpathd_error`` is MPATHD_SYS_ERROR
(in.mpathd's ``send_result`` zeroes it otherwise).  A ``subscribe`` request
is answered with an ordinary reply, then event lines until the client hangs
up (``ipmp.mpathd.control.Stream``).

Both ends load this module, the commands at every start-up: it imports no
``dataclasses`` or ``typing`` at run time (with ``inspect`` they were a
quarter of ``ipmpstat -i``, issue 15, point 7), so the two records are
written out by hand.

Pure module: no I/O, no clock; the daemon and the client do the reading and
writing.
"""

from __future__ import annotations

import json

from ipmp.errors import IpmpError, Record

# The error numbers and texts (libipmp's), one definition shared with the
# pure machine, which answers with them and must not load the client's I/O.
from ipmp.mpathd.codes import (
    IPMP_EHWADDRDUP,
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
    from collections.abc import Mapping
    from typing import Any, Final, Literal

__all__ = [
    "IPMP_EHWADDRDUP",
    "IPMP_EINVAL",
    "IPMP_ENOMEM",
    "IPMP_ENOMPATHD",
    "IPMP_EPROTO",
    "IPMP_ERRMSG",
    "IPMP_EUNKGROUP",
    "IPMP_EUNKIF",
    "MAX_IFNAME",
    "MPATHD_FAILBACK_DISABLED",
    "MPATHD_FAILBACK_PARTIAL",
    "MPATHD_MIN_RED_ERROR",
    "MPATHD_SUCCESS",
    "MPATHD_SYS_ERROR",
    "OPS",
    "PRIVILEGED_OPS",
    "PROTOCOL_VERSION",
    "STREAM_OPS",
    "TOPICS",
    "IpcError",
    "Op",
    "ProtocolError",
    "Reply",
    "Request",
    "Topic",
    "decode_event",
    "decode_reply",
    "decode_request",
    "encode_event",
    "encode_reply",
    "encode_request",
    "errmsg",
    "protocol_error",
    "sanitise",
]

#: Bumped when a field is added or changes meaning; both ends refuse others.
PROTOCOL_VERSION: Final = 1

# -- requests and replies ------------------------------------------------------

if TYPE_CHECKING:
    Op = Literal["ping", "offline", "undo_offline", "query", "subscribe"]
    Topic = Literal["probes", "events"]
else:
    # At run time only names (re-exported by ``control`` and ``ipc``): the
    # values a request may carry are checked against OPS, STREAM_OPS and TOPICS.
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
        raise ProtocolError(f"unsupported protocol version {sanitise(repr(version))}")
    return doc


def _check_keys(doc: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = sorted(set(doc) - allowed)
    if extra:
        raise ProtocolError(f"unknown {what} field {sanitise(repr(extra[0]))}")


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
        raise ProtocolError(f"unknown command {sanitise(op)}", unknown_op=op)
    _check_keys(doc, _REQUEST_KEYS, "request")
    ifname = doc.get("ifname", "")
    if not isinstance(ifname, str) or len(ifname) > MAX_IFNAME or not ifname.isprintable():
        raise ProtocolError(f"ifname must be a printable string of at most {MAX_IFNAME} characters")
    topic = doc.get("topic", "")
    if not isinstance(topic, str):
        raise ProtocolError("topic must be a string")
    if op in STREAM_OPS and topic not in TOPICS:
        raise ProtocolError(f"unknown topic {sanitise(repr(topic))}")
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


def sanitise(text: str, limit: int = 64) -> str:
    """Client text made safe for one log line: no control characters, bounded length."""
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])
    return out + ("..." if len(text) > limit else "")

