"""The in.mpathd control server: authorisation, a real server on a temporary socket.

The codec is tested in test_mpathd_protocol.py.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import stat
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ipmp.mpathd import ipc, protocol
from ipmp.mpathd.control import NotRunning, ReadFailed, call, is_running, socket_path
from ipmp.mpathd.ipc import DaemonRunning, Peer, authorised, connection, serve
from ipmp.mpathd.protocol import (
    IPMP_EPROTO,
    MPATHD_MIN_RED_ERROR,
    MPATHD_SYS_ERROR,
    Reply,
    Request,
    decode_reply,
    encode_reply,
    encode_request,
)
from tests.public_tmp import public_tempdir

NOBODY = 65534

# --------------------------------------------------------------------------
# Paths and authorisation (the codec: test_mpathd_protocol.py)
# --------------------------------------------------------------------------


def test_socket_path_is_under_the_root() -> None:
    assert socket_path(Path("/x")) == Path("/x/run/ipmp/mpathd.sock")


@pytest.mark.parametrize(("op", "uid", "allowed"), [
    ("ping", 1000, True), ("query", 1000, True), ("offline", 1000, False), ("undo_offline", 1000, False),
    ("offline", 0, True), ("undo_offline", 0, True), ("offline", -1, False),
])
def test_authorisation(op: protocol.Op, uid: int, allowed: bool) -> None:
    assert authorised(Request(op, "hme0"), Peer(4242, uid, uid)) is allowed
    assert ipc.refusal_line(Peer(4242, 1000, 100)) == "Attempt to connect from pid 4242 uid 1000"


# --------------------------------------------------------------------------
# A real server on a temporary socket
# --------------------------------------------------------------------------

class Daemon:
    """A scripted handler that records what it was asked."""

    def __init__(self) -> None:
        self.seen: list[tuple[Request, Peer]] = []
        self.log: list[str] = []

    async def handle(self, request: Request, peer: Peer) -> Reply:
        self.seen.append((request, peer))
        if request.ifname == "boom":
            raise RuntimeError("boom")
        if request.ifname == "set":
            return Reply(data={"x": {1, 2}})  # not JSON
        if request.op == "offline":
            return Reply(MPATHD_MIN_RED_ERROR)
        return Reply(data={"op": request.op})


@asynccontextmanager
async def running(root: Path, daemon: Daemon) -> AsyncIterator[asyncio.AbstractServer]:
    server = await serve(socket_path(root), daemon.handle, log=daemon.log.append)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()


async def ask(root: Path, request: Request) -> Reply:
    return await asyncio.to_thread(call, root, request)


async def raw(root: Path, payload: bytes) -> bytes:
    """Send ``payload``, half-close, and return everything the server answers."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path(root)))
    try:
        writer.write(payload)
        writer.write_eof()
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


def test_ping_and_peer_credentials(tmp_path: Path) -> None:
    daemon = Daemon()

    async def body() -> None:
        async with running(tmp_path, daemon):
            path = socket_path(tmp_path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o666
            assert is_running(tmp_path)
            reply = await ask(tmp_path, Request("ping"))
            assert reply == Reply(data={"op": "ping"})
        assert not path.exists()
        assert not is_running(tmp_path)

    asyncio.run(body())
    assert daemon.seen == [(Request("ping"), Peer(os.getpid(), os.getuid(), os.getgid()))]
    assert daemon.log == []


def test_call_without_a_daemon(tmp_path: Path) -> None:
    with pytest.raises(NotRunning) as info:
        call(tmp_path, Request("ping"))
    assert info.value.errno == errno.ENOENT
    assert not is_running(tmp_path)


def test_privileged_command_from_root_reaches_the_handler(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs uid 0 to be the privileged peer")
    daemon = Daemon()

    async def body() -> None:
        async with running(tmp_path, daemon):
            assert await ask(tmp_path, Request("offline", "hme0")) == Reply(MPATHD_MIN_RED_ERROR)

    asyncio.run(body())
    assert [r for r, _ in daemon.seen] == [Request("offline", "hme0")]


def _fork_client_as_nobody(path: Path, payload: bytes) -> tuple[int, int, int]:
    """Fork a child that drops to nobody and, once told to go, sends ``payload`` to
    ``path`` and copies the reply to a pipe.  Forked before any thread or event
    loop exists.  Returns (pid, fd to say go, fd to read the reply)."""
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(go_w)
            os.close(out_r)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.read(go_r, 1)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(path))
                sock.sendall(payload)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            os.write(out_w, data)
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(out_w)
    return pid, go_w, out_r


def test_privileged_command_from_a_non_root_peer_is_refused() -> None:
    # A directory nobody can traverse (pytest's tmp_path is private to root).
    top = public_tempdir("ipmp-ipc-")
    daemon = Daemon()
    request = Request("offline", "hme0")
    as_root = os.geteuid() == 0
    try:
        child = _fork_client_as_nobody(socket_path(top), encode_request(request)) if as_root else None

        async def body() -> Reply:
            async with running(top, daemon):
                if child is None:
                    return await ask(top, request)
                pid, go_w, out_r = child
                os.write(go_w, b"!")
                os.close(go_w)

                def collect() -> bytes:
                    with os.fdopen(out_r, "rb") as fh:
                        data = fh.read()
                    os.waitpid(pid, 0)
                    return data

                return decode_reply(await asyncio.to_thread(collect))

        reply = asyncio.run(body())
    finally:
        shutil.rmtree(top)
    assert reply == Reply(MPATHD_SYS_ERROR, errno.EPERM)
    assert daemon.seen == []
    assert len(daemon.log) == 1
    assert daemon.log[0].startswith("Attempt to connect from pid ")
    assert daemon.log[0].endswith(f" uid {NOBODY if as_root else os.geteuid()}")


def test_malformed_requests_get_a_protocol_error_and_a_log_line(tmp_path: Path) -> None:
    daemon = Daemon()

    async def body() -> None:
        async with running(tmp_path, daemon):
            assert decode_reply(await raw(tmp_path, b"garbage\n")) == Reply(IPMP_EPROTO)
            assert decode_reply(await raw(tmp_path, b'{"v":1,"op":"frob\\u001b"}\n')) == Reply(IPMP_EPROTO)
            assert decode_reply(await raw(tmp_path, b'{"v":9,"op":"ping"}\n')) == Reply(IPMP_EPROTO)
            assert decode_reply(await raw(tmp_path, b"x" * 5000)) == Reply(IPMP_EPROTO)
            # A request ended by EOF instead of a newline is still a request.
            writer_reply = await raw(tmp_path, encode_request(Request("query")).rstrip(b"\n"))
            assert decode_reply(writer_reply) == Reply(data={"op": "query"})
            # connect-and-close (the ifconfig liveness check): silent.
            assert await raw(tmp_path, b"") == b""

    asyncio.run(body())
    assert daemon.log == [
        "loopback_cmd: bad command format (request is not JSON)",
        "loopback_cmd: unknown command id `frob\\x1b'",
        "loopback_cmd: bad command format (unsupported protocol version 9)",
        "loopback_cmd: bad command format (request longer than 4096 bytes)",
    ]


def test_handler_failure_is_reported_not_fatal(tmp_path: Path) -> None:
    daemon = Daemon()

    async def body() -> None:
        async with running(tmp_path, daemon):
            assert await ask(tmp_path, Request("query", "boom")) == Reply(MPATHD_SYS_ERROR, errno.EIO)
            assert await ask(tmp_path, Request("query", "set")) == Reply(MPATHD_SYS_ERROR, errno.EIO)
            assert (await ask(tmp_path, Request("ping"))).ok

    asyncio.run(body())
    assert daemon.log == [
        "failed processing MI_QUERY: boom",
        "failed processing MI_QUERY: Object of type set is not JSON serializable",
    ]


def test_server_stays_responsive_under_bad_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "READ_TIMEOUT", 2.0)
    daemon = Daemon()

    Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]

    async def bad(kind: int) -> Conn | None:
        reader, writer = await asyncio.open_unix_connection(str(socket_path(tmp_path)))
        if kind == 0:  # slow: half a request, then silence (kept open)
            writer.write(b'{"v":1,')
            await writer.drain()
            return reader, writer
        payload = [b"", b"", b"{]\n", b"y" * 4097, b'{"v":1,"op":"nope"}\n'][kind]
        writer.write(payload)
        await writer.drain()
        # 1: connect and hang up; 3: oversize, leave without reading the reply.
        if kind not in (1, 3):
            await reader.read()
        writer.close()
        await writer.wait_closed()
        return None

    async def body() -> float:
        async with running(tmp_path, daemon):
            held: list[Conn] = []
            for batch in range(4):
                results = await asyncio.gather(*(bad(i % 5) for i in range(batch * 50, batch * 50 + 50)))
                held.extend(c for c in results if c is not None)
            assert len(held) == 40
            # Three pings while the slow clients are held: a server stalled by
            # them answers none before READ_TIMEOUT (2 s); the quickest of
            # three is not thrown off by one slice of a busy machine.
            times = []
            for _ in range(3):
                start = time.monotonic()
                reply = await ask(tmp_path, Request("ping"))
                times.append(time.monotonic() - start)
                assert reply.ok
            # All three before the slow clients time out: asked while they are held.
            assert sum(times) < 1.5, times
            elapsed = min(times)
            # The slow ones are dropped after READ_TIMEOUT, without a reply.
            async with asyncio.timeout(8):
                answers = await asyncio.gather(*(r.read() for r, _ in held))
            assert set(answers) == {b""}
            for _, w in held:
                w.close()
            await asyncio.gather(*(w.wait_closed() for _, w in held), return_exceptions=True)
            return elapsed

    elapsed = asyncio.run(body())
    assert elapsed < 0.25, f"the quickest of three pings took {elapsed * 1000:.0f} ms"
    assert [r for r, _ in daemon.seen] == [Request("ping")] * 3
    # 120 complaints (40 malformed, 40 oversize, 40 unknown command) from one
    # uid: COMPLAINT_BURST lines, and the count of the others when the server closes.
    assert len(daemon.log) == ipc.COMPLAINT_BURST + 1
    assert daemon.log[-1] == f"{120 - ipc.COMPLAINT_BURST} more complaints from uid {os.getuid()} suppressed"


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # a daemon that died without cleaning up
    assert path.exists() and not is_running(tmp_path)
    daemon = Daemon()

    async def body() -> None:
        async with running(tmp_path, daemon):
            assert (await ask(tmp_path, Request("ping"))).ok

    asyncio.run(body())


def test_second_daemon_is_refused_and_first_keeps_serving(tmp_path: Path) -> None:
    daemon = Daemon()

    async def body() -> None:
        async with running(tmp_path, daemon):
            with pytest.raises(DaemonRunning):
                await serve(socket_path(tmp_path), daemon.handle, log=daemon.log.append)
            assert (await ask(tmp_path, Request("ping"))).ok
        # Closed: the lock is released, a new daemon may start.
        async with running(tmp_path, daemon):
            assert (await ask(tmp_path, Request("ping"))).ok

    asyncio.run(body())


def test_live_daemon_without_the_lock_is_detected(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    path.parent.mkdir(parents=True)

    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(encode_reply(Reply()))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def body() -> None:
        other = await asyncio.start_unix_server(pong, path=str(path))
        try:
            with pytest.raises(DaemonRunning, match="answers"):
                await serve(path, Daemon().handle, log=print)
        finally:
            other.close()
            await other.wait_closed()

    asyncio.run(body())
    assert path.exists()  # never stolen


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        asyncio.run(serve(path, Daemon().handle, log=print))
    assert path.read_text() == "precious"


def test_client_reports_bad_daemons(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    path.parent.mkdir(parents=True)

    def server(answer: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def cb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            writer.write(answer)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        return cb

    async def body(answer: bytes) -> None:
        srv = await asyncio.start_unix_server(server(answer), path=str(path))
        try:
            with pytest.raises(ReadFailed):
                await ask(tmp_path, Request("ping"))
        finally:
            srv.close()
            await srv.wait_closed()
            path.unlink()

    asyncio.run(body(b""))
    asyncio.run(body(b'{"v":1}\n'))


def test_unprivileged_connections_are_bounded_and_root_always_gets_in(tmp_path: Path) -> None:
    # Everyone here is root: ``privileged`` stands in for a user until root is wanted.
    daemon = Daemon()
    as_root = False

    async def body() -> None:
        server = await serve(socket_path(tmp_path), daemon.handle, log=daemon.log.append,
                             privileged=lambda peer: as_root, max_unprivileged=2)
        held = [await asyncio.open_unix_connection(str(socket_path(tmp_path))) for _ in range(2)]
        try:
            # Both held connections are being served (waiting for their request):
            # the third unprivileged client is answered EAGAIN at once.
            start = time.monotonic()
            busy = [await ask(tmp_path, Request("ping")) for _ in range(3)]
            assert time.monotonic() - start < 1.0  # not after READ_TIMEOUT
            assert busy == [Reply(MPATHD_SYS_ERROR, errno.EAGAIN)] * 3
            assert daemon.seen == []
            # One log line for the whole flood, not one per client.
            assert daemon.log == ["Too many unprivileged clients (2 connected): 1 turned away"]
            nonlocal as_root
            as_root = True
            assert (await ask(tmp_path, Request("ping"))).ok
            as_root = False
            # A held client leaves: the next unprivileged one is served.
            _, writer = held.pop()
            writer.close()
            await writer.wait_closed()
            for _ in range(50):
                reply = await ask(tmp_path, Request("ping"))
                if reply.ok:
                    break
                await asyncio.sleep(0.02)
            assert reply.ok
        finally:
            for _, writer in held:
                writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(body())
    assert [r for r, _ in daemon.seen] == [Request("ping"), Request("ping")]


def test_a_full_backlog_is_waited_for_not_reported_as_no_daemon(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(0)
        queued = []
        try:
            while True:  # fill the backlog: nobody accepts
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                queued.append(s)
                s.setblocking(False)
                s.connect(str(path))
        except BlockingIOError:
            queued.pop().close()  # the one that did not get in
        try:
            # Still full at the timeout: ETIMEDOUT, after the timeout, not at once.
            start = time.monotonic()
            with pytest.raises(NotRunning) as err:
                call(tmp_path, Request("ping"), timeout=0.3)
            assert err.value.errno == errno.ETIMEDOUT
            assert time.monotonic() - start >= 0.25
            # Room appears while the client waits: it gets in and is answered.

            def serve_one() -> None:
                time.sleep(0.1)
                for _ in queued:
                    listener.accept()[0].close()
                conn, _ = listener.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(encode_reply(Reply()))

            server = threading.Thread(target=serve_one)
            server.start()
            try:
                assert call(tmp_path, Request("ping"), timeout=5.0).ok
            finally:
                server.join(5)
        finally:
            for s in queued:
                s.close()
