"""One control connection, from its request to its last line: read, check, run, answer, stream.

Robustness, since the socket is world-writable: a request is at most
MAX_REQUEST bytes and must arrive within READ_TIMEOUT seconds, and a reply
or an event line the client does not take within WRITE_TIMEOUT seconds ends
the connection; every connection is its own task (``ipmp.mpathd.ipc.server``),
so a slow client never blocks another.  The handler never sees a malformed
or unauthorised request, and a handler that raises costs its client an
EIO answer, never the server.

Idle subscribers: a subscriber is idle when data of its stream stays unread
for STREAM_IDLE_TIMEOUT seconds on end: the daemon's buffer for it or the
socket's send queue (``SIOCOUTQ``) never empty, looked at before every
line written and every STREAM_IDLE_CHECK seconds while something is
unread.  An idle subscriber is dropped (the connection is closed).  Quiet
is not idleness: a client that reads, or that is sent nothing because
nothing happens, keeps its stream however long it lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ipmp.mpathd.ipc.broker import Broker, SubscribersFull, Subscription
from ipmp.mpathd.ipc.peers import Peer, refusal_line
from ipmp.mpathd.ipc.turns import Turns
from ipmp.mpathd.protocol import (
    MPATHD_SYS_ERROR,
    STREAM_OPS,
    ProtocolError,
    Reply,
    Request,
    decode_request,
    encode_event,
    encode_reply,
    errmsg,
    protocol_error,
    sanitise,
)

#: The largest request accepted, newline included.  A real request is under
#: 100 bytes; in.mpathd read at most ``sizeof (union mi_commands)`` (72).
MAX_REQUEST: Final = 4096
#: Seconds a client has to send its whole request.  in.mpathd did one
#: blocking read; an event loop must not wait on a half-open peer.
READ_TIMEOUT: Final = 2.0
#: Seconds allowed to hand the reply (or an event line) to a client that does not read it.
WRITE_TIMEOUT: Final = 2.0
#: Seconds a subscriber may leave data of its stream unread on end before it
#: is dropped as idle (see the module text: quiet is not idleness).
STREAM_IDLE_TIMEOUT: Final = 10.0
#: How often the unread data of a stream is looked at while there is some.
STREAM_IDLE_CHECK: Final = 1.0

#: The illumos command names (``mpathd_interface`` ``MI_*``), for log lines.
MI_NAMES: Final[dict[str, str]] = {
    "ping": "MI_PING",
    "offline": "MI_OFFLINE",
    "undo_offline": "MI_UNDO_OFFLINE",
    "query": "MI_QUERY",
    "subscribe": "MI_SUBSCRIBE",
}

Handler = Callable[[Request, Peer], Awaitable[Reply]]


class _Oversize(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Context:
    """What every connection of one server shares."""

    handle: Handler
    complain: Callable[[Peer, str], None]
    authorise: Callable[[Request, Peer], bool]
    broker: Broker | None
    turns: Turns


#: ``on_connect(reader, writer, peer, privileged, release)``: ``release`` ends
#: the wait of a root connection (``Turns.root_arrived``).
Connection = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Peer, bool, Callable[[], None]],
                      Awaitable[None]]


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


def connection_handler(ctx: Context) -> Connection:
    """The ``on_connect`` of the connections of one server: a connection's whole life."""

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
                    ctx.complain(peer, f"failed processing {name}: {sanitise(str(err), 200)}")
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
    """Write the subscription's lines until the client leaves, lags or goes idle (``server.serve``).

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
    reader: asyncio.StreamReader, peer: Peer, privileged: bool, ctx: Context,
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
            complain(peer, f"loopback_cmd: unknown command id `{sanitise(err.unknown_op)}'")
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


async def _run(request: Request, peer: Peer, ctx: Context,
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
                           f"{sanitise(str(err) or type(err).__name__, 200)}")
        return request, Reply(MPATHD_SYS_ERROR, errno.EIO), None
    if sub is not None and not answer.ok:
        sub.close()
        sub = None
    return request, answer, sub
