"""The streaming half of the control protocol: ``subscribe``, the broker, the client."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ipmp.mpathd import control, ipc, protocol
from ipmp.mpathd.control import ReadFailed, socket_path
from ipmp.mpathd.ipc import Broker, Peer, SubscribersFull, serve
from ipmp.mpathd.protocol import (
    IPMP_EPROTO,
    MPATHD_SYS_ERROR,
    ProtocolError,
    Reply,
    Request,
    decode_event,
    decode_request,
    encode_event,
    encode_request,
)

# --------------------------------------------------------------------------
# Codec
# --------------------------------------------------------------------------


@pytest.mark.parametrize("topic", protocol.TOPICS)
def test_subscribe_request_round_trip(topic: str) -> None:
    request = Request("subscribe", topic=topic)
    line = encode_request(request)
    assert json.loads(line) == {"v": 1, "op": "subscribe", "ifname": "", "min_redundancy": 1, "topic": topic}
    assert decode_request(line) == request


@pytest.mark.parametrize("line", [
    b'{"v": 1, "op": "subscribe"}\n',
    b'{"v": 1, "op": "subscribe", "topic": "everything"}\n',
    b'{"v": 1, "op": "subscribe", "topic": 1}\n',
    b'{"v": 1, "op": "query", "topic": "probes"}\n',
])
def test_bad_subscriptions_are_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(line)
    assert info.value.unknown_op is None


def test_one_shot_requests_keep_their_wire_format() -> None:
    assert b"topic" not in encode_request(Request("query"))
    assert "subscribe" not in protocol.OPS and protocol.STREAM_OPS == ("subscribe",)
    assert ipc.authorised(Request("subscribe", topic="probes"), Peer(1, 1000, 1000))


def test_event_codec() -> None:
    line = encode_event("probes", {"event": "probe", "probe": 7, "v": 99, "topic": "spoofed"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_event(line) == {"v": 1, "topic": "probes", "event": "probe", "probe": 7}
    for bad in (b'{"v": 1, "topic": "probes"}', b'{"v": 2, "topic": "p", "event": "e"}', b"[]",
                b'{"v": 1, "topic": 3, "event": "e"}'):
        with pytest.raises(ProtocolError):
            decode_event(bad)


# --------------------------------------------------------------------------
# Broker
# --------------------------------------------------------------------------


def test_broker_fans_out_and_bounds_its_queues() -> None:
    async def body() -> None:
        baselines: list[str] = []
        broker = Broker(max_subscribers=3, queue_limit=2, on_subscribe=baselines.append)
        broker.publish("probes", {"event": "nobody listens"})
        a = broker.subscribe("probes")
        b = broker.subscribe("probes")
        e = broker.subscribe("events")
        assert baselines == ["probes", "probes", "events"]
        assert (broker.subscribers("probes"), broker.subscribers("events")) == (2, 1)
        with pytest.raises(SubscribersFull):
            broker.subscribe("events")
        with pytest.raises(ValueError, match="unknown topic"):
            Broker().subscribe("gossip")
        broker.publish("probes", {"event": "one"})
        assert decode_event(await a.get() or b"")["event"] == "one"
        broker.publish("probes", {"event": "two"})
        broker.publish("probes", {"event": "three"})
        # a kept up (one line queued, then two); b never read: three lines > 2.
        assert b.closed and b.overflowed and await b.get() is None
        assert not a.closed and len(a) == 2 and len(e) == 0
        assert broker.subscribers("probes") == 1
        broker.subscribe("probes")  # b's place is free again
        broker.close()
        assert a.closed and not a.overflowed and e.closed
        # Closing drains: what was queued is still delivered, then the end.
        assert [decode_event(x or b"")["event"] for x in (await a.get(), await a.get())] == ["two", "three"]
        assert await a.get() is None
        assert broker.subscribers("probes") == broker.subscribers("events") == 0

    asyncio.run(body())


def test_a_waiting_subscriber_wakes_on_publish_and_on_close() -> None:
    async def body() -> None:
        broker = Broker()
        sub = broker.subscribe("events")
        waiter = asyncio.ensure_future(sub.get())
        await asyncio.sleep(0)
        assert not waiter.done()
        broker.publish("events", {"event": "if_change"})
        assert decode_event(await asyncio.wait_for(waiter, 1) or b"")["event"] == "if_change"
        waiter = asyncio.ensure_future(sub.get())
        await asyncio.sleep(0)
        sub.close()
        assert await asyncio.wait_for(waiter, 1) is None

    asyncio.run(body())


# --------------------------------------------------------------------------
# A real server on a temporary socket
# --------------------------------------------------------------------------


class Daemon:
    def __init__(self) -> None:
        self.seen: list[Request] = []
        self.log: list[str] = []
        self.refuse = False

    async def handle(self, request: Request, peer: Peer) -> Reply:
        self.seen.append(request)
        if self.refuse:
            return Reply(MPATHD_SYS_ERROR, errno.EPERM)
        return Reply(data={"topic": request.topic})


@asynccontextmanager
async def running(root: Path, daemon: Daemon, broker: Broker | None) -> AsyncIterator[asyncio.AbstractServer]:
    server = await serve(socket_path(root), daemon.handle, log=daemon.log.append, broker=broker)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()


async def until(condition: Any) -> None:
    """Poll ``condition`` (server-side state, which has no event to wait on) for up to 5 s."""
    async with asyncio.timeout(5.0):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def collect(root: Path, topic: protocol.Topic, count: int) -> tuple[Reply, list[dict[str, Any]]]:
    """Subscribe (blocking client), read ``count`` events, hang up."""
    with control.subscribe(root, topic, idle_timeout=5.0) as stream:
        events: list[dict[str, Any]] = []
        if stream.reply.ok:
            for event in stream:
                events.append(event)
                if len(events) == count:
                    break
        return stream.reply, events


def test_subscribe_streams_until_the_client_hangs_up(tmp_path: Path) -> None:
    daemon = Daemon()
    broker = Broker()

    async def body() -> None:
        async with running(tmp_path, daemon, broker):
            task = asyncio.ensure_future(asyncio.to_thread(collect, tmp_path, "probes", 3))
            await until(lambda: broker.subscribers("probes") == 1)
            for n in range(3):
                broker.publish("probes", {"event": "probe", "probe": n})
                broker.publish("events", {"event": "if_change"})  # another topic: not sent
            reply, events = await task
            assert reply == Reply(data={"topic": "probes"})
            assert [(e["topic"], e["probe"]) for e in events] == [("probes", 0), ("probes", 1), ("probes", 2)]
            # The client closed: its subscription goes, the server keeps serving.
            await until(lambda: broker.subscribers("probes") == 0)
            assert (await asyncio.to_thread(control.call, tmp_path, Request("ping"))).ok

    asyncio.run(body())
    assert daemon.seen == [Request("subscribe", topic="probes"), Request("ping")]
    assert daemon.log == []


def test_closing_the_server_ends_the_streams(tmp_path: Path) -> None:
    broker = Broker()

    async def body() -> None:
        server = await serve(socket_path(tmp_path), Daemon().handle, log=print, broker=broker)
        try:
            task = asyncio.ensure_future(asyncio.to_thread(collect, tmp_path, "events", 10))
            await until(lambda: broker.subscribers("events") == 1)
            broker.publish("events", {"event": "group_state"})
        finally:
            server.close()
            await server.wait_closed()
        reply, events = await asyncio.wait_for(task, 5)
        assert reply.ok and [e["event"] for e in events] == ["group_state"]

    asyncio.run(body())


def test_subscribe_refusals(tmp_path: Path) -> None:
    daemon = Daemon()

    async def body() -> None:
        async with running(tmp_path, daemon, None):
            reply, _ = await asyncio.to_thread(collect, tmp_path, "probes", 1)
            assert reply == Reply(IPMP_EPROTO)  # no broker: not implemented here
        broker = Broker(max_subscribers=1)
        async with running(tmp_path, daemon, broker):
            first = asyncio.ensure_future(asyncio.to_thread(collect, tmp_path, "probes", 1))
            await until(lambda: broker.subscribers("probes") == 1)
            reply, _ = await asyncio.to_thread(collect, tmp_path, "events", 1)
            assert reply == Reply(MPATHD_SYS_ERROR, errno.EAGAIN)
            broker.publish("probes", {"event": "probe"})
            assert (await first)[0].ok
            await until(lambda: broker.subscribers("probes") == 0)
            daemon.refuse = True  # the handler says no: no stream, no subscription left
            reply, events = await asyncio.to_thread(collect, tmp_path, "probes", 1)
            assert (reply, events) == (Reply(MPATHD_SYS_ERROR, errno.EPERM), [])
            assert broker.subscribers("probes") == 0

    asyncio.run(body())
    assert daemon.log == []


def test_a_client_that_does_not_read_is_dropped_and_others_go_on(tmp_path: Path) -> None:
    # 400 lines of 4 kB: far more than a socket buffer and the queue of 200 hold
    # for the client that stops reading; the one that reads gets them all.
    broker = Broker(queue_limit=200)
    big = "x" * 4000

    async def body() -> None:
        async with running(tmp_path, Daemon(), broker):
            # A raw client: subscribes, reads the reply, then stops reading.
            reader, writer = await asyncio.open_unix_connection(str(socket_path(tmp_path)))
            writer.write(encode_request(Request("subscribe", topic="probes")))
            await writer.drain()
            assert protocol.decode_reply(await reader.readline()).ok
            good = asyncio.ensure_future(asyncio.to_thread(collect, tmp_path, "probes", 400))
            await until(lambda: broker.subscribers("probes") == 2)
            for n in range(400):
                broker.publish("probes", {"event": "probe", "probe": n, "pad": big})
                await asyncio.sleep(0.001)
            reply, events = await asyncio.wait_for(good, 10)
            assert reply.ok and [e["probe"] for e in events] == list(range(400))
            # The stalled one was dropped when its queue overflowed.
            await until(lambda: broker.subscribers("probes") == 0)
            tail = b""
            with contextlib.suppress(ConnectionResetError):
                async with asyncio.timeout(5):
                    while chunk := await reader.read(1 << 20):
                        tail += chunk
            writer.close()
            lines = [decode_event(line) for line in tail.splitlines() if line.startswith(b"{")]
            assert len(lines) < 400
            # Either the last complete line is the overflow notice, or the
            # stall cut it off mid-stream; both leave the connection closed.
            assert all(e["event"] in ("probe", "overflow") for e in lines)

    asyncio.run(body())


def test_client_reports_broken_streams(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    path.parent.mkdir(parents=True)

    async def body(answer: bytes) -> list[dict[str, Any]]:
        async def cb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            writer.write(answer)
            await writer.drain()
            writer.close()

        srv = await asyncio.start_unix_server(cb, path=str(path))
        try:
            def read() -> list[dict[str, Any]]:
                with control.subscribe(tmp_path, "events", idle_timeout=5) as stream:
                    return list(stream)
            return await asyncio.to_thread(read)
        finally:
            srv.close()
            await srv.wait_closed()

    ok = b'{"v":1,"mpathd_error":0,"sys_error":0,"data":{}}\n'
    two = b'{"v":1,"topic":"events","event":"a"}\n{"v":1,"topic":"events","event":"b"}\n'
    assert [e["event"] for e in asyncio.run(body(ok + two))] == ["a", "b"]
    with pytest.raises(ReadFailed, match="malformed event"):
        asyncio.run(body(ok + b"not json\n"))
    with pytest.raises(ReadFailed, match="malformed reply"):
        asyncio.run(body(b"{}\n"))
    with pytest.raises(ReadFailed, match="closed before the reply"):
        asyncio.run(body(b""))


def test_subscribe_without_a_daemon(tmp_path: Path) -> None:
    with pytest.raises(control.NotRunning) as info:
        control.subscribe(tmp_path, "probes")
    assert info.value.errno == errno.ENOENT
