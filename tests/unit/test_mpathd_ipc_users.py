"""The control socket against other local users: complaints, root first, stream slots, idle streams.

The socket is world-writable, so every user of the host can reach it.  Each
attack here is made by real processes that dropped to other uids (``nobody``
and a few more), through the kernel's ``SO_PEERCRED``, against a real
``ipc.serve``:

* a user's flood of bad requests makes at most COMPLAINT_BURST log lines
  and one count per interval, and root's own complaint still gets through;
* root's request overtakes the unprivileged requests queued before it;
* users hold at most MAX_SUBSCRIBERS_PER_UID streams per topic and
  MAX_UNPRIVILEGED_SUBSCRIBERS together; root still gets its own slots;
* a subscriber that leaves its stream unread is dropped after
  STREAM_IDLE_TIMEOUT, one that reads or that is sent nothing is not.

The budget (``Complaints``) and the slots of the ``Broker`` are tested on their own first.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from ipmp.mpathd import control, ipc, protocol
from ipmp.mpathd.control import socket_path
from ipmp.mpathd.ipc import Broker, Complaints, Peer, connection, serve
from ipmp.mpathd.protocol import IPMP_EPROTO, MPATHD_SYS_ERROR, Reply, Request, decode_reply, encode_request
from tests.public_tmp import public_tempdir

NOBODY = 65534
BAD = b"{]\n"

# --------------------------------------------------------------------------
# The budget of complaint lines (pure)
# --------------------------------------------------------------------------


def test_complaints_are_budgeted_per_uid_and_counted() -> None:
    c = Complaints(burst=3, interval=60.0)
    out = [line for n in range(10) for line in c.complain(NOBODY, f"bad {n}", 100.0 + n)]
    assert out == ["bad 0", "bad 1", "bad 2"]
    # Another uid (root, here) has its own budget, whatever nobody did.
    assert c.complain(0, "root's", 105.0) == ["root's"]
    assert c.next_due() == 160.0
    assert c.due(159.9) == []
    assert c.due(160.0) == ["7 more complaints from uid 65534 suppressed"]
    assert c.next_due() is None  # root had nothing held back
    # A new interval, a new budget.
    assert c.complain(NOBODY, "again", 161.0) == ["again"]
    assert c.flush() == []


def test_a_late_count_comes_before_the_next_complaint() -> None:
    c = Complaints(burst=1, interval=10.0)
    assert c.complain(7, "a", 0.0) == ["a"]
    assert c.complain(7, "b", 1.0) == []
    # The count's timer has not fired yet: the complaint that opens the next
    # interval brings the count first, in order.
    assert c.complain(7, "c", 12.0) == ["1 more complaints from uid 7 suppressed", "c"]
    assert c.due(30.0) == []
    assert c.complain(7, "d", 31.0) == ["d"]
    assert c.complain(7, "e", 31.5) == []
    assert c.flush() == ["1 more complaints from uid 7 suppressed"]


def test_the_table_keeps_only_recent_uids() -> None:
    c = Complaints(burst=1, interval=10.0)
    for uid in range(1000, 1100):
        c.complain(uid, "x", float(uid - 1000) * 0.01)  # all within one interval
    assert len(c._windows) == 100
    c.complain(5, "x", 100.0)  # every window above has ended, none held anything back
    assert set(c._windows) == {5}


def test_broker_slots_per_uid_per_topic_and_roots_reserve() -> None:
    async def body() -> None:
        broker = Broker(max_subscribers=6, max_unprivileged=3, per_uid=1)
        a = broker.subscribe("probes", uid=1000, privileged=False)
        broker.subscribe("events", uid=1000, privileged=False)  # one per topic
        with pytest.raises(ipc.SubscribersFull, match="uid 1000"):
            broker.subscribe("probes", uid=1000, privileged=False)
        broker.subscribe("probes", uid=1001, privileged=False)
        with pytest.raises(ipc.SubscribersFull, match="unprivileged"):
            broker.subscribe("events", uid=1002, privileged=False)
        # Root: the three slots left, users or not; then nothing.
        roots = [broker.subscribe(topic) for topic in ("probes", "events", "probes")]
        with pytest.raises(ipc.SubscribersFull, match="6 streams"):
            broker.subscribe("events")
        # A slot given back is a slot again, for the kind that gave it.
        a.close()
        broker.subscribe("probes", uid=1000, privileged=False)
        roots[0].close()
        broker.subscribe("events")

    asyncio.run(body())


# --------------------------------------------------------------------------
# Real users against a real server
# --------------------------------------------------------------------------


def _need_root() -> None:
    if os.geteuid() == 0:
        return
    why = "needs uid 0 to become other users"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{why} (CI is set, so this is an error, not a skip)")
    pytest.skip(why)


class User:
    """A forked process that drops to ``uid`` and, once told to go, runs ``body(say, wait)``.

    ``say(data)`` sends bytes back (``hear`` reads a line of them); ``wait()``
    blocks until ``finish`` (EOF on its pipe).  Forked before the test
    starts a thread or an event loop; ended by its own pid.
    """

    #: The parent's ends of the pipes of every User alive: a child closes the
    #: others' too, or closing a go pipe would not end the wait of its child.
    _parent_fds: set[int] = set()

    def __init__(self, uid: int, body: Callable[[Callable[[bytes], None], Callable[[], None]], None]) -> None:
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                for fd in (go_w, out_r, *User._parent_fds):
                    os.close(fd)
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.read(go_r, 1)

                def say(data: bytes) -> None:
                    os.write(out_w, data)

                def wait() -> None:
                    while os.read(go_r, 1):
                        pass

                body(say, wait)
                code = 0
            finally:
                os._exit(code)
        os.close(go_r)
        os.close(out_w)
        User._parent_fds |= {go_w, out_r}
        self.pid = pid
        self._go: int | None = go_w
        self._out = os.fdopen(out_r, "rb", buffering=0)  # unbuffered: select sees every line

    def go(self) -> None:
        assert self._go is not None
        os.write(self._go, b"!")

    def _close_out(self) -> None:
        User._parent_fds.discard(self._out.fileno())
        self._out.close()

    def hear(self, timeout: float = 20.0) -> bytes:
        """One line from the child (blocking: call it off the event loop)."""
        ready, _, _ = select.select([self._out], [], [], timeout)
        assert ready, "the child said nothing"
        return self._out.readline().rstrip(b"\n")

    def release(self) -> None:
        """Ends the child's ``wait()``."""
        if self._go is not None:
            User._parent_fds.discard(self._go)
            os.close(self._go)
            self._go = None

    def finish(self, timeout: float = 20.0) -> int:
        self.release()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._close_out()
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        self._close_out()
        raise AssertionError(f"child {self.pid} did not finish")


@contextmanager
def shared_root() -> Iterator[Path]:
    """A root directory other users can traverse (pytest's tmp_path is private to root)."""
    top = public_tempdir("ipmp-ipc-users-")
    try:
        yield top
    finally:
        shutil.rmtree(top)


def _send_and_read(sock: socket.socket, payload: bytes) -> bytes:
    """Send ``payload``, return what comes back up to the first newline (or EOF)."""
    sock.sendall(payload)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _exchange(path: Path, payload: bytes, timeout: float = 10.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        return _send_and_read(sock, payload)


@asynccontextmanager
async def serving(root: Path, handle: ipc.Handler, log: list[str],
                  broker: Broker | None = None) -> AsyncIterator[None]:
    server = await serve(socket_path(root), handle, log=log.append, broker=broker)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def answer(request: Request, peer: Peer) -> Reply:
    return Reply(data={"op": request.op})


def test_a_users_flood_of_bad_requests_makes_a_few_lines_and_roots_still_get_through() -> None:
    _need_root()
    requests = 400
    with shared_root() as top:
        path = socket_path(top)

        def flood(say: Callable[[bytes], None], wait: Callable[[], None]) -> None:
            answered = sum(1 for _ in range(requests) if _exchange(path, BAD).startswith(b"{"))
            say(f"{answered}\n".encode())

        user = User(NOBODY, flood)
        log: list[str] = []

        async def body() -> None:
            async with serving(top, answer, log):
                user.go()
                assert int(await asyncio.to_thread(user.hear, 60.0)) == requests  # every one answered
                # Root's own bad request is logged: nobody's flood spent nobody's budget only.
                reply = await asyncio.to_thread(_exchange, path, BAD)
                assert decode_reply(reply) == Reply(IPMP_EPROTO)
                assert len(log) == ipc.COMPLAINT_BURST + 1

        try:
            asyncio.run(body())
        finally:
            assert user.finish() == 0
    line = "loopback_cmd: bad command format (request is not JSON)"
    # COMPLAINT_BURST of nobody's, root's one, and (at close: the interval
    # had not ended) the count of nobody's others.
    assert log == [line] * (ipc.COMPLAINT_BURST + 1) + [
        f"{requests - ipc.COMPLAINT_BURST} more complaints from uid {NOBODY} suppressed"]


def test_root_overtakes_the_unprivileged_requests_queued_before_it() -> None:
    _need_root()
    queued = 30
    busy = 0.02  # a handler that holds the loop, as a snapshot of 64 NICs does
    with shared_root() as top:
        path = socket_path(top)

        def many(say: Callable[[bytes], None], wait: Callable[[], None]) -> None:
            socks = []
            for _ in range(queued):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(30)
                sock.connect(str(path))
                sock.sendall(encode_request(Request("query")))
                socks.append(sock)
            say(b"sent\n")
            ok = 0
            for sock in socks:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                ok += decode_reply(data).ok
                sock.close()
            say(f"{ok}\n".encode())

        user = User(NOBODY, many)
        started: list[tuple[str, float]] = []  # whose handler started, when
        first = threading.Event()

        async def handle(request: Request, peer: Peer) -> Reply:
            started.append(("root" if peer.uid == 0 else "user", time.monotonic()))
            if peer.uid != 0:
                first.set()
                time.sleep(busy)  # noqa: ASYNC251 - blocking on purpose: the loop is busy
            return Reply()

        def root() -> tuple[float, float]:
            """Root's ping, sent once the first queued request is being handled."""
            assert first.wait(30)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(30)
                sock.connect(str(path))  # in the listen backlog from here on
                arrived = time.monotonic()
                assert decode_reply(_send_and_read(sock, encode_request(Request("ping")))).ok
                return arrived, time.monotonic()

        async def body() -> tuple[float, float]:
            async with serving(top, handle, []):
                user.go()
                assert await asyncio.to_thread(user.hear) == b"sent"
                times = await asyncio.to_thread(root)
                assert int(await asyncio.to_thread(user.hear, 60.0)) == queued
                return times

        try:
            arrived, answered = asyncio.run(body())
        finally:
            assert user.finish() == 0
    who = [w for w, _ in started]
    assert who.count("user") == queued
    root_at = next(t for w, t in started if w == "root")
    overtaken = [t for w, t in started if w == "user" and t > root_at]
    meanwhile = [t for w, t in started if w == "user" and arrived < t < root_at]
    figures = f"{len(meanwhile)} handlers while root waited, {len(overtaken)} overtaken, " \
              f"root answered in {1000 * (answered - arrived):.0f} ms"
    # FIFO would have run every request read before root's first (30 x 20 ms).
    # Root waits for at most the handler running when it arrives and one
    # already let in; the rest of the queue waits for root.
    assert len(meanwhile) <= 2, figures
    assert len(overtaken) >= queued // 2, figures
    assert answered - arrived < queued * busy / 2, figures


def test_stream_slots_per_uid_and_roots_own() -> None:
    _need_root()
    uids = [NOBODY, *range(60001, 60009)]  # 9 users wanting 3 streams of each topic
    reserved = ipc.MAX_SUBSCRIBERS - ipc.MAX_UNPRIVILEGED_SUBSCRIBERS
    with shared_root() as top:
        path = socket_path(top)

        def greedy(say: Callable[[bytes], None], wait: Callable[[], None]) -> None:
            socks, got = [], []
            for topic in protocol.TOPICS:
                for _ in range(3):
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.settimeout(10)
                    sock.connect(str(path))
                    sock.sendall(encode_request(Request("subscribe", topic=topic)))
                    data = b""
                    while not data.endswith(b"\n"):
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    reply = decode_reply(data)
                    got.append(f"{topic}:{'ok' if reply.ok else reply.sys_error}")
                    socks.append(sock)
            say((" ".join(got) + "\n").encode())
            wait()  # holds its streams until the test is done
            for sock in socks:
                sock.close()

        users = [User(uid, greedy) for uid in uids]
        broker = Broker()
        results: list[list[str]] = []

        async def body() -> list[Reply]:
            async with serving(top, answer, [], broker):
                for user in users:  # one after the other: the order the slots go in is known
                    user.go()
                    results.append((await asyncio.to_thread(user.hear)).decode().split())
                for n in range(reserved + 1):
                    stream = await asyncio.to_thread(control.subscribe, top, protocol.TOPICS[n % 2])
                    roots.append(stream)
                return [stream.reply for stream in roots]

        roots: list[control.Stream] = []
        try:
            replies = asyncio.run(body())
        finally:
            for stream in roots:
                stream.close()
            codes = [user.finish() for user in users]
    assert codes == [0] * len(users)
    eagain = str(errno.EAGAIN)
    for got in results:
        for topic in protocol.TOPICS:
            mine = [g.split(":")[1] for g in got if g.startswith(topic + ":")]
            assert mine.count("ok") <= ipc.MAX_SUBSCRIBERS_PER_UID, got
            assert set(mine) <= {"ok", eagain}, got
    assert results[0] == ["probes:ok", "probes:ok", f"probes:{eagain}",
                          "events:ok", "events:ok", f"events:{eagain}"]
    taken = sum(g.endswith(":ok") for got in results for g in got)
    assert taken == ipc.MAX_UNPRIVILEGED_SUBSCRIBERS  # 9 users x 4 wanted 36: the rest refused
    # Root gets the slots users cannot take; the one past MAX_SUBSCRIBERS is refused.
    assert [r.ok for r in replies] == [True] * reserved + [False]
    assert replies[-1] == Reply(MPATHD_SYS_ERROR, errno.EAGAIN)


def test_idle_subscribers_are_dropped_readers_and_quiet_ones_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    _need_root()
    # The connection module reads them: it writes the streams out.
    monkeypatch.setattr(connection, "STREAM_IDLE_TIMEOUT", 0.6)
    monkeypatch.setattr(connection, "STREAM_IDLE_CHECK", 0.1)
    events = 20
    with shared_root() as top:
        path = socket_path(top)

        def subscribed(topic: protocol.Topic) -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(encode_request(Request("subscribe", topic=topic)))
            data = b""
            while b"\n" not in data:
                data += sock.recv(1)
            assert decode_reply(data).ok
            return sock

        def state(sock: socket.socket) -> str:
            """Reads what is there without waiting: 'eof' if the daemon hung up, else 'open'."""
            sock.setblocking(False)
            try:
                while sock.recv(65536):
                    pass
            except BlockingIOError:
                return "open"
            return "eof"

        def lazy_body(say: Callable[[bytes], None], wait: Callable[[], None]) -> None:
            # Subscribes to both topics and reads nothing.
            busy, quiet = subscribed("events"), subscribed("probes")
            say(b"subscribed\n")
            wait()
            say(f"{state(busy)} {state(quiet)}\n".encode())

        def keen_body(say: Callable[[bytes], None], wait: Callable[[], None]) -> None:
            # Reads every line as it comes; then nothing comes.
            sock = subscribed("events")
            say(b"subscribed\n")
            lines = 0
            while lines < events:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                lines += chunk.count(b"\n")
            say(f"{lines}\n".encode())
            wait()
            say(f"{state(sock)}\n".encode())

        lazy = User(NOBODY, lazy_body)
        keen = User(60001, keen_body)
        broker = Broker()

        async def until(condition: Callable[[], bool], limit: float) -> None:
            async with asyncio.timeout(limit):
                while not condition():  # noqa: ASYNC110 - the broker has no event to wait on
                    await asyncio.sleep(0.02)

        async def body() -> tuple[bytes, bytes, bytes]:
            async with serving(top, answer, [], broker):
                lazy.go()
                keen.go()
                assert await asyncio.to_thread(lazy.hear) == b"subscribed"
                assert await asyncio.to_thread(keen.hear) == b"subscribed"
                assert (broker.subscribers("events"), broker.subscribers("probes")) == (2, 1)
                for n in range(events):  # over 2 s, each far below a socket buffer
                    broker.publish("events", {"event": "if_change", "n": n, "pad": "x" * 200})
                    await asyncio.sleep(0.1)
                taken = await asyncio.to_thread(keen.hear)
                # The one that left its lines unread goes, within the timeout and a check or two.
                await until(lambda: broker.subscribers("events") == 1, 10.0)
                # Nothing is sent any more: quiet, not idle.  Both others stay.
                await asyncio.sleep(3 * connection.STREAM_IDLE_TIMEOUT)
                assert (broker.subscribers("events"), broker.subscribers("probes")) == (1, 1)
                lazy.release()
                keen.release()
                return taken, await asyncio.to_thread(lazy.hear), await asyncio.to_thread(keen.hear)

        try:
            taken, lazy_says, keen_says = asyncio.run(body())
        finally:
            codes = [lazy.finish(), keen.finish()]
    assert codes == [0, 0]
    assert int(taken) == events
    assert lazy_says == b"eof open"  # its events stream was closed, its quiet one was not
    assert keen_says == b"open"
