"""The in.mpathd control protocol: the Unix-socket server (codec and client: ``control``).

Solaris (§2.11): ``if_mpadm``, ``ifconfig`` and libipmp talk to in.mpathd over
TCP on 127.0.0.1:5999, one request per connection, raw C structs; only peers
on a reserved source port (i.e. root) are listened to.  Here:

* Transport: a Unix stream socket, ``<root>/run/ipmp/mpathd.sock``, mode 0666
  so that queries are open to everyone.  One request per connection, then
  the daemon closes, as in.mpathd does.
* Encoding: one JSON object per line, UTF-8, versioned with ``"v": 1``::

      {"v": 1, "op": "offline", "ifname": "hme0", "min_redundancy": 1}
      {"v": 1, "mpathd_error": 0, "sys_error": 0, "data": {}}

  Unknown keys are refused rather than ignored: a new field is a new
  version, so a client and a daemon never silently disagree.
* Authorisation from ``SO_PEERCRED``: ``ping`` and ``query`` for everyone,
  ``offline`` and ``undo_offline`` for uid 0 only.  in.mpathd refused every
  command from an unprivileged port, queries included; libipmp users were
  all root.  Our ``ipmpstat`` runs as anyone, so queries are open.
* Error numbers and texts are libipmp's (``ipmp_mpathd.h``, ``ipmp.h``,
  ``ipmp_errmsg``): the reply's ``mpathd_error`` is an IPMP error code and
  ``sys_error`` an errno, meaningful when ``mpathd_error`` is
  MPATHD_SYS_ERROR (in.mpathd's ``send_result`` zeroes it otherwise).

Robustness, since the socket is world-writable: a request is at most
MAX_REQUEST bytes and must arrive within READ_TIMEOUT seconds; every
connection is its own task, so a slow client never blocks another; at most
MAX_UNPRIVILEGED non-root connections are served at once (one more is
answered EAGAIN at once), root always is; connections are accepted
ACCEPT_BATCH at a time, so a burst of them never holds the event loop.

Complaints: the log lines a client's own request causes (a malformed
request, a refused command, a reply it did not take, a handler that failed
on it) are rate-limited per uid, not per connection or pid, which cost
nothing to change: COMPLAINT_BURST lines per COMPLAINT_INTERVAL seconds,
then the rest are counted and logged as one line when the interval ends.
journald drops a service's lines past its rate limit (RateLimitBurst=10000
per RateLimitIntervalSec=30s by default), "NIC failure detected" included,
so a local user must not be able to spend that budget: 10,000 bad requests
from one user make at most COMPLAINT_BURST + 1 lines a minute.  Root has a
bucket of its own under the same bound: root could stop the daemon anyway,
but a root script looping on a bad request must not push failover lines
out either, and no user's flood can hide root's complaints.

Privileged first: the handlers of unprivileged requests run one at a time,
in the order their requests were read, and none starts while a root
connection waits for its answer (from its accept until its handler has
answered); in a batch of accepts root's connections are set up first.  The
loop is cooperative, so root waits for at most the one unprivileged handler
already running, however many were queued before it.

Streams (our addition; Solaris published the same facts as sysevents, §2.11):
``{"v": 1, "op": "subscribe", "topic": "probes"}`` (or ``"events"``) is
answered with an ordinary reply, and then the connection stays open and the
daemon writes one event line per published event until the client closes::

    {"v": 1, "topic": "probes", "event": "probe", "interface": "hme0", ...}

``subscribe`` is open to everyone, like ``query``.  A subscriber gets a
bounded queue (QUEUE_LIMIT lines); one that falls that far behind, or does
not take a line within WRITE_TIMEOUT seconds, is dropped (after an
``{"event": "overflow"}`` line when the queue is what overflowed).

Stream slots: at most MAX_SUBSCRIBERS streams are served at once, of which
non-root users together hold at most MAX_UNPRIVILEGED_SUBSCRIBERS and one
uid at most MAX_SUBSCRIBERS_PER_UID per topic; the others are root's, so
root is never refused while it holds fewer than MAX_SUBSCRIBERS -
MAX_UNPRIVILEGED_SUBSCRIBERS.  One more is refused with MPATHD_SYS_ERROR /
EAGAIN, without a log line.

Idle subscribers: a subscriber is idle when data of its stream stays unread
for STREAM_IDLE_TIMEOUT seconds on end: the daemon's buffer for it or the
socket's send queue (``SIOCOUTQ``) never empty, looked at before every
line written and every STREAM_IDLE_CHECK seconds while something is
unread.  An idle subscriber is dropped (the connection is closed).  Quiet
is not idleness: a client that reads, or that is sent nothing because
nothing happens, keeps its stream however long it lasts.

``Broker`` is the publishing side, ``subscribe`` the blocking client.  Every
other op keeps one request per connection.

The codec (``Request``, ``Reply``, ``encode_*``, ``decode_*``, the error
tables) and the blocking client (``call``, ``subscribe``, ``is_running``) are
``ipmp.mpathd.control``, which imports no asyncio, so that the commands
scripts run in loops do not load the event loop (issue 15, point 7); this
module re-exports the names its callers use.  ``authorised`` and ``Complaints`` are pure.  The
server (``serve``) is one of the few places allowed to do I/O; it never
prints and logs only through the ``log`` callable it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import stat
import struct
import termios
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# The codec and the blocking client live in ``control``, which the commands
# load without asyncio; the names the daemon and its tests take from here are
# re-exported (see __all__), the others are ``control``'s alone.
from ipmp.mpathd.control import (
    IPMP_EPROTO,
    IPMP_EUNKIF,
    MAX_IFNAME,
    MPATHD_FAILBACK_DISABLED,
    MPATHD_FAILBACK_PARTIAL,
    MPATHD_MIN_RED_ERROR,
    MPATHD_SUCCESS,
    MPATHD_SYS_ERROR,
    OPS,
    PRIVILEGED_OPS,
    STREAM_OPS,
    TOPICS,
    IpcError,
    NotRunning,
    Op,
    ProtocolError,
    ReadFailed,
    Reply,
    Request,
    Stream,
    Topic,
    _sanitise,
    call,
    decode_event,
    decode_reply,
    decode_request,
    encode_event,
    encode_reply,
    encode_request,
    errmsg,
    is_running,
    protocol_error,
    socket_path,
    subscribe,
)

__all__ = [
    "BACKLOG",
    "COMPLAINT_BURST",
    "COMPLAINT_INTERVAL",
    "IPMP_EPROTO",
    "IPMP_EUNKIF",
    "MAX_IFNAME",
    "MAX_REQUEST",
    "MAX_SUBSCRIBERS",
    "MAX_SUBSCRIBERS_PER_UID",
    "MAX_UNPRIVILEGED",
    "MAX_UNPRIVILEGED_SUBSCRIBERS",
    "MPATHD_FAILBACK_DISABLED",
    "MPATHD_FAILBACK_PARTIAL",
    "MPATHD_MIN_RED_ERROR",
    "MPATHD_SUCCESS",
    "MPATHD_SYS_ERROR",
    "OPS",
    "QUEUE_LIMIT",
    "READ_TIMEOUT",
    "STREAM_IDLE_TIMEOUT",
    "STREAM_OPS",
    "TOPICS",
    "Broker",
    "Complaints",
    "DaemonRunning",
    "Handler",
    "IpcError",
    "NotRunning",
    "Op",
    "Peer",
    "ProtocolError",
    "ReadFailed",
    "Reply",
    "Request",
    "Stream",
    "SubscribersFull",
    "Subscription",
    "Topic",
    "authorised",
    "call",
    "decode_event",
    "decode_reply",
    "decode_request",
    "encode_event",
    "encode_reply",
    "encode_request",
    "errmsg",
    "is_running",
    "lock_path",
    "serve",
    "socket_path",
    "subscribe",
]

#: The largest request accepted, newline included.  A real request is under
#: 100 bytes; in.mpathd read at most ``sizeof (union mi_commands)`` (72).
MAX_REQUEST: Final = 4096
#: Seconds a client has to send its whole request.  in.mpathd did one
#: blocking read; an event loop must not wait on a half-open peer.
READ_TIMEOUT: Final = 2.0
#: Seconds allowed to hand the reply to a client that does not read it.
WRITE_TIMEOUT: Final = 2.0
#: Listen backlog: a burst of clients must not see EAGAIN on connect.  The
#: kernel caps it at net.core.somaxconn (4096 by default since Linux 5.4).
BACKLOG: Final = 1024
#: Connections from unprivileged peers served at once.  The socket is open to
#: everyone (queries); past this many, one more non-root client is answered
#: MPATHD_SYS_ERROR / EAGAIN at once and hung up on, without reading its
#: request.  Root is never turned away: a flood of local users must not keep
#: if_mpadm from the daemon, nor hold the event loop that times the probes.
MAX_UNPRIVILEGED: Final = 64
#: Connections accepted per wake-up of the listening socket: between two
#: batches the loop runs everything else (probe replies, timers).
ACCEPT_BATCH: Final = 32
#: Seconds between two "turning away" log lines (a flood must not fill the log).
TURN_AWAY_LOG_INTERVAL: Final = 60.0
#: Seconds to stop accepting after the process ran out of descriptors.
ACCEPT_RETRY_DELAY: Final = 1.0
#: How long ``serve`` waits for a daemon already on the socket to answer.
LIVENESS_TIMEOUT: Final = 1.0
#: Event lines queued for one subscriber before it is dropped as too slow.
QUEUE_LIMIT: Final = 1024
#: Streams served at once (the socket is world-writable: bound the cost).
MAX_SUBSCRIBERS: Final = 32
#: Of these, the most non-root users may hold together: the rest are root's
#: alone, so that no local user can take the streams root's tools need.
MAX_UNPRIVILEGED_SUBSCRIBERS: Final = 16
#: Streams of one topic one non-root uid may hold (a pid is cheap to change,
#: a uid is not): a user cannot take every unprivileged slot either.
MAX_SUBSCRIBERS_PER_UID: Final = 2
#: Seconds a subscriber may leave data of its stream unread on end before it
#: is dropped as idle (see the module text: quiet is not idleness).
STREAM_IDLE_TIMEOUT: Final = 10.0
#: How often the unread data of a stream is looked at while there is some.
STREAM_IDLE_CHECK: Final = 1.0
#: Complaint lines (see the module text) logged per uid per COMPLAINT_INTERVAL
#: seconds; the rest are counted into one line at the end of the interval.
COMPLAINT_BURST: Final = 5
COMPLAINT_INTERVAL: Final = 60.0

#: The illumos command names (``mpathd_interface`` ``MI_*``), for log lines.
MI_NAMES: Final[dict[str, str]] = {
    "ping": "MI_PING",
    "offline": "MI_OFFLINE",
    "undo_offline": "MI_UNDO_OFFLINE",
    "query": "MI_QUERY",
    "subscribe": "MI_SUBSCRIBE",
}
class DaemonRunning(IpcError, RuntimeError):
    """Another in.mpathd already serves this root."""


class SubscribersFull(IpcError, RuntimeError):
    """No stream slot is left for the peer (see ``Broker.subscribe``)."""


# -- authorisation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    """The client process, from ``SO_PEERCRED`` (-1 when unknown)."""

    pid: int
    uid: int
    gid: int


def authorised(request: Request, peer: Peer) -> bool:
    """Whether ``peer`` may run ``request``: state changes need uid 0, questions do not."""
    return request.op not in PRIVILEGED_OPS or peer.uid == 0


def refusal_line(peer: Peer) -> str:
    """The log line for a refused client.

    Modelled on in.mpathd's ``Attempt to connect from addr %s port %d``, with
    the credentials a Unix socket has in place of address and port:
    ``Attempt to connect from pid %d uid %d``.
    """
    return f"Attempt to connect from pid {peer.pid} uid {peer.uid}"


# -- complaints ----------------------------------------------------------------------


@dataclass(slots=True)
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


class Complaints:
    """The per-uid budget of complaint lines (see the module text).  Pure: ``now`` is passed in.

    A uid's window opens with its first complaint and lasts ``interval``
    seconds; in it ``burst`` lines are logged and the rest counted.  Each
    call returns the lines to log now: ``complain`` the complaint itself,
    or nothing, after the count of an earlier window not reported yet;
    ``due`` the counts of the windows that have ended (the caller calls it
    at ``next_due``), ``flush`` every count still held (at exit).
    """

    def __init__(self, *, burst: int = COMPLAINT_BURST, interval: float = COMPLAINT_INTERVAL) -> None:
        self.burst = burst
        self.interval = interval
        self._windows: dict[int, _Window] = {}

    @staticmethod
    def summary(uid: int, count: int) -> str:
        return f"{count} more complaints from uid {uid} suppressed"

    def complain(self, uid: int, line: str, now: float) -> list[str]:
        out: list[str] = []
        window = self._windows.get(uid)
        if window is not None and now >= window.start + self.interval:
            if window.suppressed:
                out.append(self.summary(uid, window.suppressed))
            window = None
        if window is None:
            if len(self._windows) >= 64:
                # Forget the quiet uids whose windows are over: the table
                # holds the uids heard from in the last interval, no more.
                self._windows = {u: w for u, w in self._windows.items()
                                 if w.suppressed or now < w.start + self.interval}
            window = self._windows[uid] = _Window(now)
        if window.logged < self.burst:
            window.logged += 1
            out.append(line)
        else:
            window.suppressed += 1
        return out

    def next_due(self) -> float | None:
        """When the first window with complaints held back ends."""
        ends = [w.start + self.interval for w in self._windows.values() if w.suppressed]
        return min(ends) if ends else None

    def due(self, now: float) -> list[str]:
        """The counts of the windows that have ended; those windows are forgotten."""
        out: list[str] = []
        for uid, window in list(self._windows.items()):
            if now >= window.start + self.interval:
                if window.suppressed:
                    out.append(self.summary(uid, window.suppressed))
                del self._windows[uid]
        return out

    def flush(self) -> list[str]:
        """Every count held back, whatever its window; everything is forgotten."""
        out = [self.summary(uid, w.suppressed) for uid, w in self._windows.items() if w.suppressed]
        self._windows = {}
        return out


class _Complainer:
    """``Complaints`` on the event loop's clock, logging through ``log``, with a timer for the counts."""

    def __init__(self, log: Callable[[str], None], limits: Complaints | None = None) -> None:
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._limits = limits if limits is not None else Complaints()
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, peer: Peer, line: str) -> None:
        for text in self._limits.complain(peer.uid, line, self._loop.time()):
            self._log(text)
        self._arm()

    def _arm(self) -> None:
        at = self._limits.next_due()
        if at is not None and self._timer is None:
            # Windows open in time order: none can end before this one.
            self._timer = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        for text in self._limits.due(self._loop.time()):
            self._log(text)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for text in self._limits.flush():
            self._log(text)


def _peer_of(sock: Any) -> Peer:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
    except (OSError, AttributeError, struct.error):
        return Peer(-1, -1, -1)  # unknown: privileged commands are refused
    return Peer(pid, uid, gid)


# -- paths -------------------------------------------------------------------------


def lock_path(path: Path) -> Path:
    """The lock a serving daemon holds: ``mpathd.sock.lock`` beside the socket.

    Taking it before touching the socket makes "is one running, else replace
    the stale socket" atomic: two daemons started at once (ifconfig starts
    in.mpathd when a group is set) cannot both decide the socket is stale.
    The file stays; deleting a lock file would reopen that race.
    """
    return path.with_name(path.name + ".lock")


# -- streams ------------------------------------------------------------------------


class Subscription:
    """One subscriber's queue of encoded event lines (bounded; see ``Broker``)."""

    def __init__(self, broker: Broker, topic: str, limit: int, *, uid: int = 0,
                 privileged: bool = True) -> None:
        self.topic = topic
        #: Whose slot this is (``Broker.subscribe``).
        self.uid = uid
        self.privileged = privileged
        self.closed = False
        #: Set when the queue overflowed: the subscriber was too slow.
        self.overflowed = False
        self._broker = broker
        #: The most lines queued before the subscriber counts as too slow.
        self.limit = limit
        self._lines: deque[bytes] = deque()
        self._wake = asyncio.Event()

    def push(self, line: bytes) -> None:
        """Queue a line; a full queue closes the subscription instead."""
        if self.closed:
            return
        if len(self._lines) >= self.limit:
            self.overflowed = True
            self._lines.clear()
            self.close()
            return
        self._lines.append(line)
        self._wake.set()

    async def get(self) -> bytes | None:
        """The next line; None once closed and drained."""
        while not self._lines:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        return self._lines.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._broker._discard(self)
        self._wake.set()

    def __len__(self) -> int:
        return len(self._lines)


class Broker:
    """Fan-out of published events to the subscribers of each topic.

    ``publish`` never blocks and never fails on a subscriber's account: a
    subscriber whose queue holds ``queue_limit`` lines is closed (its
    ``overflowed`` set).  ``on_subscribe(topic)`` runs as a subscriber is
    added, before anything is published to it: the publisher takes its
    baseline there, so that the first events are changes from then on.
    Slots: ``max_subscribers`` in all, of which unprivileged subscribers
    hold at most ``max_unprivileged``, one uid at most ``per_uid`` per topic.
    Pure asyncio, no I/O: the server writes the lines out.
    """

    def __init__(self, *, max_subscribers: int = MAX_SUBSCRIBERS,
                 max_unprivileged: int = MAX_UNPRIVILEGED_SUBSCRIBERS, per_uid: int = MAX_SUBSCRIBERS_PER_UID,
                 queue_limit: int = QUEUE_LIMIT, on_subscribe: Callable[[str], None] | None = None) -> None:
        self.max_subscribers = max_subscribers
        self.max_unprivileged = min(max_unprivileged, max_subscribers)
        self.per_uid = per_uid
        self.queue_limit = queue_limit
        self.on_subscribe = on_subscribe
        self._subs: dict[str, list[Subscription]] = {topic: [] for topic in TOPICS}

    def subscribers(self, topic: str) -> int:
        return len(self._subs.get(topic, ()))

    def subscribe(self, topic: str, *, uid: int = 0, privileged: bool = True) -> Subscription:
        """A new subscription to ``topic`` (one of TOPICS) for a peer of ``uid``.

        A privileged peer (root) is refused only when every slot is taken,
        which unprivileged ones alone cannot do.

        Raises:
            SubscribersFull: no slot left for this peer.
            ValueError: an unknown topic.
        """
        if topic not in self._subs:
            raise ValueError(f"unknown topic {topic!r}")
        everyone = [sub for subs in self._subs.values() for sub in subs]
        if len(everyone) >= self.max_subscribers:
            raise SubscribersFull(f"{self.max_subscribers} streams are open already")
        if not privileged:
            if sum(1 for sub in everyone if not sub.privileged) >= self.max_unprivileged:
                raise SubscribersFull(f"{self.max_unprivileged} unprivileged streams are open already")
            if sum(1 for sub in self._subs[topic] if not sub.privileged and sub.uid == uid) >= self.per_uid:
                raise SubscribersFull(f"uid {uid} holds {self.per_uid} {topic} streams already")
        sub = Subscription(self, topic, self.queue_limit, uid=uid, privileged=privileged)
        self._subs[topic].append(sub)
        if self.on_subscribe is not None:
            self.on_subscribe(topic)
        return sub

    def publish(self, topic: str, doc: Mapping[str, Any]) -> None:
        """Queue ``doc`` (an event object with at least ``"event"``) for every subscriber of ``topic``.

        Raises:
            TypeError, ValueError: ``doc`` is not JSON-serialisable.
        """
        subs = self._subs.get(topic)
        if not subs:
            return
        line = encode_event(topic, doc)
        for sub in list(subs):
            sub.push(line)

    def close(self) -> None:
        """End every subscription (the daemon is stopping)."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()

    def _discard(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs[sub.topic].remove(sub)


# -- server ------------------------------------------------------------------------

Handler = Callable[[Request, Peer], Awaitable[Reply]]


class _Oversize(Exception):
    pass


def is_root(peer: Peer) -> bool:
    """Whether ``peer`` is served even when MAX_UNPRIVILEGED others are."""
    return peer.uid == 0


class _Turns:
    """Privileged requests first (see the module text): the order in which handlers may start.

    ``root_arrived`` counts a root connection as waiting (its returned
    release, idempotent, ends that); ``unprivileged`` admits one
    unprivileged handler at a time, in the order asked, and none while a
    root connection waits.

    A turn is given at the end of a loop iteration (a timer due at once
    runs after the iteration's I/O callbacks), never straight away: a root
    connection accepted in that iteration is counted before the next
    unprivileged handler may start, and a batch of requests read in one
    iteration does not run its handlers back to back in it.
    """

    def __init__(self) -> None:
        self._root = 0
        self._running = False
        self._granting = False
        self._queue: deque[asyncio.Future[None]] = deque()

    def root_arrived(self) -> Callable[[], None]:
        self._root += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._root -= 1
                self._next()

        return release

    @contextlib.asynccontextmanager
    async def unprivileged(self) -> AsyncIterator[None]:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        self._next()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._done()  # granted, then cancelled before it could start
            raise
        try:
            yield
        finally:
            self._done()

    def _done(self) -> None:
        self._running = False
        self._next()

    def _next(self) -> None:
        if not self._granting and not self._running and not self._root and self._queue:
            self._granting = True
            asyncio.get_running_loop().call_later(0, self._grant)

    def _grant(self) -> None:
        self._granting = False
        while not self._running and not self._root and self._queue:
            turn = self._queue.popleft()
            if not turn.done():  # else its task was cancelled while waiting
                self._running = True
                turn.set_result(None)


@dataclass(frozen=True, slots=True)
class _Context:
    """What every connection of one server shares."""

    handle: Handler
    complain: Callable[[Peer, str], None]
    authorise: Callable[[Request, Peer], bool]
    broker: Broker | None
    turns: _Turns


def _no_release() -> None:
    pass


#: ``on_connect(reader, writer, peer, privileged, release)``: ``release`` ends
#: the wait of a root connection (``_Turns.root_arrived``).
Connection = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Peer, bool, Callable[[], None]],
                      Awaitable[None]]


class _ControlServer(asyncio.AbstractServer):
    """The listening socket with its own accept path, plus what it owns: the
    socket file and the instance lock.

    Not ``asyncio.start_unix_server``: that one accepts up to its backlog in
    one go and builds a transport and a task for each before anyone can look
    at the peer, so a flood of connects holds the loop.  Here the peer's
    credentials are read right after ``accept``; an unprivileged peer over
    the limit costs one ``send`` and one ``close``.
    """

    def __init__(self, sock: socket.socket, path: Path, inode: tuple[int, int], lock_fd: int,
                 on_connect: Connection, log: Callable[[str], None], *, broker: Broker | None = None,
                 privileged: Callable[[Peer], bool] = is_root,
                 max_unprivileged: int = MAX_UNPRIVILEGED, turns: _Turns | None = None,
                 complainer: _Complainer | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = sock
        self._path = path
        self._inode = inode
        self._lock_fd: int | None = lock_fd
        self._on_connect = on_connect
        self._log = log
        self._broker = broker
        self._privileged = privileged
        self._max_unprivileged = max_unprivileged
        self._turns = turns if turns is not None else _Turns()
        self._complainer = complainer
        self._unprivileged = 0
        self._turned_away = 0
        self._next_note = 0.0
        self._busy = encode_reply(Reply(MPATHD_SYS_ERROR, errno.EAGAIN))
        self._tasks: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._closed = asyncio.Event()
        sock.setblocking(False)
        sock.listen(BACKLOG)
        self._loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        sock = self._sock
        if sock is None:
            return
        # The whole batch first, then root's connections before the others.
        batch: list[tuple[socket.socket, Peer, bool]] = []
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # The socket stays readable: pause rather than spin.
                    self._log(f"cannot accept connections: {err.strerror}")
                    self._loop.remove_reader(sock.fileno())
                    self._retry = self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume)
                break  # ECONNABORTED and the like: that client is gone
            peer = _peer_of(conn)
            batch.append((conn, peer, self._privileged(peer)))
        batch.sort(key=lambda item: not item[2])  # stable: arrival order within each kind
        for conn, peer, privileged in batch:
            if privileged:
                release = self._turns.root_arrived()
            elif self._unprivileged >= self._max_unprivileged:
                self._turn_away(conn)
                continue
            else:
                self._unprivileged += 1
                release = _no_release
            task = self._loop.create_task(self._serve(conn, peer, privileged, release))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _resume(self) -> None:
        self._retry = None
        if self._sock is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _turn_away(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(self._busy)  # a fresh socket's buffer takes these few bytes
        conn.close()
        self._turned_away += 1
        now = self._loop.time()
        if now >= self._next_note:
            self._next_note = now + TURN_AWAY_LOG_INTERVAL
            self._log(f"Too many unprivileged clients ({self._max_unprivileged} connected): "
                      f"{self._turned_away} turned away")
            self._turned_away = 0

    async def _serve(self, conn: socket.socket, peer: Peer, privileged: bool,
                     release: Callable[[], None]) -> None:
        try:
            try:
                reader, writer = await asyncio.open_unix_connection(sock=conn)
            except BaseException:
                conn.close()
                raise
            await self._on_connect(reader, writer, peer, privileged, release)
        except OSError:
            pass  # the client left before its stream was set up
        finally:
            release()  # also when the task ends before on_connect could
            if not privileged:
                self._unprivileged -= 1

    def close(self) -> None:
        # Unlink first, so new clients see "not running" rather than a
        # refused connection; only our own socket file, never a successor's.
        with contextlib.suppress(OSError):
            st = self._path.lstat()
            if (st.st_dev, st.st_ino) == self._inode:
                self._path.unlink()
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._closed.set()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._broker is not None:
            self._broker.close()  # open streams end: their clients see EOF
        if self._complainer is not None:
            self._complainer.close()  # the counts held back, before the daemon goes
            self._complainer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._sock is not None

    async def start_serving(self) -> None:
        pass  # serving from construction on

    async def serve_forever(self) -> None:
        await self._closed.wait()

    async def wait_closed(self) -> None:
        """Connections still open get WRITE_TIMEOUT to finish (streams flush
        what they hold), then they are dropped: the daemon is going away."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=WRITE_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def path(self) -> Path:
        return self._path


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """Bytes up to the first newline, or to EOF; empty for a bare connect."""
    buf = bytearray()
    while True:
        chunk = await reader.read(MAX_REQUEST + 1)
        if not chunk:
            return bytes(buf)
        buf += chunk
        end = buf.find(b"\n")
        if end >= 0:
            if end + 1 > MAX_REQUEST:
                raise _Oversize
            return bytes(buf[: end + 1])
        if len(buf) > MAX_REQUEST:
            raise _Oversize


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


async def serve(
    path: Path,
    handle: Handler,
    *,
    log: Callable[[str], None],
    authorise: Callable[[Request, Peer], bool] = authorised,
    broker: Broker | None = None,
    privileged: Callable[[Peer], bool] = is_root,
    max_unprivileged: int = MAX_UNPRIVILEGED,
    complaints: Complaints | None = None,
) -> asyncio.AbstractServer:
    """Listen for control requests on the Unix socket ``path``.

    The directory is created if missing; the socket gets mode 0666.  A stale
    socket file (nothing listening) is replaced.  Each request is decoded,
    authorised, passed to ``handle`` and its reply sent back; the handler
    never sees a malformed or unauthorised request.  ``authorise`` and
    ``privileged`` exist so that tests can stand in for root and for a user;
    ``max_unprivileged`` bounds the connections of peers ``privileged``
    refuses (see MAX_UNPRIVILEGED); ``complaints`` (tests) replaces the
    default budget of complaint lines.

    Log lines (passed to ``log``, in.mpathd wording adapted).  The first
    four are complaints, at most COMPLAINT_BURST per uid per
    COMPLAINT_INTERVAL (see the module text):

    * ``Attempt to connect from pid %d uid %d``: a privileged command from
      a non-root peer (answered MPATHD_SYS_ERROR / EPERM);
    * ``loopback_cmd: unknown command id `%s'``: an unknown ``op``;
    * ``loopback_cmd: bad command format (%s)``: anything else malformed,
      including a request over MAX_REQUEST bytes (answered IPMP_EPROTO);
    * ``failed processing %s: %s``: the handler raised, or the reply could
      not be delivered (in.mpathd logs this when ``send_result`` fails);
    * ``%d more complaints from uid %d suppressed``: the complaints of one
      uid over the budget, once when its interval ends (and at close);
    * ``Too many unprivileged clients (%d connected): %d turned away``: at
      most once a minute while non-root clients are being turned away;
    * ``cannot accept connections: %s``: out of descriptors (accepting
      pauses for ACCEPT_RETRY_DELAY).

    A client that connects and sends nothing (the ``ifconfig`` liveness
    check) or is too slow is dropped silently, as in.mpathd does.

    ``subscribe`` needs a ``broker`` (without one it is answered
    IPMP_EPROTO, the answer to a command the daemon does not implement).
    The subscription is taken first, then ``handle`` is asked for the
    acknowledging reply (so that a snapshot it returns can only be older
    than the first event, never newer); after a successful reply the
    broker's lines for the topic are written until the client hangs up, the
    subscription overflows, a write takes WRITE_TIMEOUT or the subscriber
    goes idle (STREAM_IDLE_TIMEOUT).  Closing the server closes the broker's
    subscriptions.

    Returns:
        the server, already serving.  Closing it removes the socket file and
        releases the instance lock.

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
        try:
            complainer = _Complainer(log, complaints)
            turns = _Turns()
            on_connect = _connection_handler(_Context(handle, complainer, authorise, broker, turns))
            return _ControlServer(sock, path, inode, lock_fd, on_connect, log, broker=broker,
                                  privileged=privileged, max_unprivileged=max_unprivileged,
                                  turns=turns, complainer=complainer)
        except BaseException:
            sock.close()
            raise
    except BaseException:
        os.close(lock_fd)
        raise


# The helpers below touch only the local file system (a few system calls,
# never blocking on the network), so they run directly on the event loop.


def _take_lock(path: Path) -> int:
    # 0600 (state.open_lock): a lock anyone could open read-only was one a
    # local user could hold, and every restart and SIGHUP re-exec of the
    # daemon then exited as "another instance" (issue 20).  Imported here:
    # the clients (if_mpadm, ipmpstat) never serve.
    from ipmp.host.state import open_lock

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


#: The umask the control socket is bound with: mode 0666 (connect needs write).
SOCKET_UMASK: Final = 0o111


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


def _connection_handler(ctx: _Context) -> Connection:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer,
                         privileged: bool, release: Callable[[], None]) -> None:
        sub: Subscription | None = None
        try:
            try:
                reply = await _exchange(reader, peer, privileged, ctx)
            finally:
                release()  # root has its answer: unprivileged handlers may go on
            if reply is not None:
                request, answer, sub = reply
                try:
                    line = encode_reply(answer)
                except (TypeError, ValueError) as err:  # data the handler could not serialise
                    name = MI_NAMES[request.op] if request is not None else "request"
                    ctx.complain(peer, f"failed processing {name}: {_sanitise(str(err), 200)}")
                    line = encode_reply(Reply(MPATHD_SYS_ERROR, errno.EIO))
                    if sub is not None:
                        sub.close()
                        sub = None
                delivered = False
                try:
                    writer.write(line)
                    async with asyncio.timeout(WRITE_TIMEOUT):
                        await writer.drain()
                    delivered = True
                except (OSError, TimeoutError) as err:
                    if request is not None:
                        ctx.complain(peer, f"failed processing {MI_NAMES[request.op]}: "
                                           f"{errmsg(MPATHD_SYS_ERROR)} ({err})")
                if sub is not None and delivered:
                    await _stream(sub, reader, writer)
        except (OSError, TimeoutError):
            pass  # the client went away or stopped reading; nothing to tell anyone
        finally:
            if sub is not None:
                sub.close()
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await writer.wait_closed()

    return on_connect


def _unread(writer: asyncio.StreamWriter) -> int:
    """What the client has not read yet: our buffer, and the socket's send queue.

    The send queue (``SIOCOUTQ``) of a Unix stream socket counts what the
    peer has not read, in the kernel's own units (buffer sizes): zero
    exactly when it has read everything.  An error counts as nothing
    unread: the write path reports a dead socket on its own.
    """
    unread = writer.transport.get_write_buffer_size()
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ
            unread += struct.unpack("i", raw)[0]
    return unread


class _IdleWatch:
    """Drops a subscriber that leaves its stream unread STREAM_IDLE_TIMEOUT seconds on end.

    ``writing`` is called before each line: with nothing unread the wait
    starts again from now.  While something is unread, a timer looks every
    STREAM_IDLE_CHECK seconds; with nothing unread it stops, so a quiet
    stream costs nothing.
    """

    def __init__(self, sub: Subscription, writer: asyncio.StreamWriter) -> None:
        self._sub = sub
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.dropped = False

    def writing(self) -> None:
        if self._since is None or not _unread(self._writer):
            self._since = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_later(STREAM_IDLE_CHECK, self._check)

    def _check(self) -> None:
        self._timer = None
        if not _unread(self._writer):
            self._since = None
            return
        if self._since is not None and self._loop.time() - self._since >= STREAM_IDLE_TIMEOUT:
            self.dropped = True
            self._sub.close()  # wakes the stream, which ends
            return
        self._timer = self._loop.call_later(STREAM_IDLE_CHECK, self._check)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def _stream(sub: Subscription, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Write the subscription's lines until the client leaves, lags or goes idle (see ``serve``).

    Raises:
        OSError, TimeoutError: a write failed or took longer than WRITE_TIMEOUT.
    """
    gone = False
    idle = _IdleWatch(sub, writer)

    async def watch() -> None:
        # The client sends nothing more; EOF (or an error) means it left.
        nonlocal gone
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass
        gone = True
        sub.close()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        while (line := await sub.get()) is not None and not gone and not idle.dropped:
            idle.writing()
            writer.write(line)
            async with asyncio.timeout(WRITE_TIMEOUT):
                await writer.drain()
        if sub.overflowed and not gone:
            # Best effort: tell the client why, without waiting for it.
            writer.write(encode_event(sub.topic, {"event": "overflow", "limit": sub.limit}))
    finally:
        idle.cancel()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _exchange(
    reader: asyncio.StreamReader, peer: Peer, privileged: bool, ctx: _Context,
) -> tuple[Request | None, Reply, Subscription | None] | None:
    """Read, check and run one request.

    Returns the reply to send and, for an accepted ``subscribe``, the
    subscription to stream afterwards; None to hang up silently.
    """
    complain = ctx.complain
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            line = await _read_request(reader)
    except TimeoutError:
        return None  # slow or half-open: dropped
    except _Oversize:
        complain(peer, f"loopback_cmd: bad command format (request longer than {MAX_REQUEST} bytes)")
        return None, protocol_error(), None
    if not line.strip():
        return None  # connect-and-close: a liveness check
    try:
        request = decode_request(line)
    except ProtocolError as err:
        if err.unknown_op is not None:
            complain(peer, f"loopback_cmd: unknown command id `{_sanitise(err.unknown_op)}'")
        else:
            complain(peer, f"loopback_cmd: bad command format ({err.message})")
        return None, protocol_error(), None
    if not ctx.authorise(request, peer):
        complain(peer, refusal_line(peer))
        return request, Reply(MPATHD_SYS_ERROR, errno.EPERM), None
    if privileged:
        return await _run(request, peer, ctx, privileged)
    async with ctx.turns.unprivileged():
        return await _run(request, peer, ctx, privileged)


async def _run(request: Request, peer: Peer, ctx: _Context,
               privileged: bool) -> tuple[Request | None, Reply, Subscription | None]:
    """Take the stream slot, if any, and ask the handler (``_exchange``)."""
    sub: Subscription | None = None
    if request.op in STREAM_OPS:
        if ctx.broker is None:
            return request, protocol_error(), None
        try:
            sub = ctx.broker.subscribe(request.topic, uid=peer.uid, privileged=privileged)
        except SubscribersFull:
            # Not logged: anyone can open streams, and the log is not theirs to fill.
            return request, Reply(MPATHD_SYS_ERROR, errno.EAGAIN), None
    try:
        answer = await ctx.handle(request, peer)
    except Exception as err:  # a handler bug must not take the server down
        if sub is not None:
            sub.close()
        ctx.complain(peer, f"failed processing {MI_NAMES[request.op]}: "
                           f"{_sanitise(str(err) or type(err).__name__, 200)}")
        return request, Reply(MPATHD_SYS_ERROR, errno.EIO), None
    if sub is not None and not answer.ok:
        sub.close()
        sub = None
    return request, answer, sub
