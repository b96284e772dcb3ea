"""The in.mpathd control server: the listening socket, its accept path and ``serve``.

Robustness, since the socket is world-writable: every connection is its own
task, so a slow client never blocks another; at most MAX_UNPRIVILEGED
non-root connections are served at once (one more is answered EAGAIN at
once), root always is; connections are accepted ACCEPT_BATCH at a time, so
a burst of them never holds the event loop, and in a batch root's
connections are set up first (``ipmp.mpathd.ipc.turns``).  What one
connection may cost is ``ipmp.mpathd.ipc.connection``'s.

The server is one of the few places allowed to do I/O; it never prints and
logs only through the ``log`` callable it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ipmp.mpathd.ipc.broker import Broker
from ipmp.mpathd.ipc.complaints import Complainer, Complaints
from ipmp.mpathd.ipc.connection import WRITE_TIMEOUT, Connection, Context, Handler, connection_handler
from ipmp.mpathd.ipc.instance import claim
from ipmp.mpathd.ipc.peers import Peer, authorised, is_root, peer_of
from ipmp.mpathd.ipc.turns import Turns, no_release
from ipmp.mpathd.protocol import MPATHD_SYS_ERROR, Reply, Request, encode_reply

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


class ControlServer(asyncio.AbstractServer):
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
                 max_unprivileged: int = MAX_UNPRIVILEGED, turns: Turns | None = None,
                 complainer: Complainer | None = None) -> None:
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
        self._turns = turns if turns is not None else Turns()
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
            peer = peer_of(conn)
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
                release = no_release
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
    COMPLAINT_INTERVAL (``ipmp.mpathd.ipc.complaints``):

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
    held = await claim(path)
    try:
        complainer = Complainer(log, complaints)
        turns = Turns()
        on_connect = connection_handler(Context(handle, complainer, authorise, broker, turns))
        return ControlServer(held.sock, path, held.inode, held.lock_fd, on_connect, log, broker=broker,
                             privileged=privileged, max_unprivileged=max_unprivileged,
                             turns=turns, complainer=complainer)
    except BaseException:
        held.release()
        raise
