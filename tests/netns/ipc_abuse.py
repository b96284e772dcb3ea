"""Abuse in.mpathd's control socket: N bad requests from a pool of concurrent clients.

    python ipc_abuse.py SOCKET --requests 10000 --concurrency 200 [--hold N]

Every request is one of the kinds below, in turn; none is a valid
state-changing command, so the daemon's state must not change:

malformed JSON, not UTF-8, a wrong version, an unknown command, an unknown
field, a control-character command name (log forging), JSON nested too
deep, oversized without a newline (64 KiB), oversized with one (5 KiB), a
request trickled too slowly to finish within READ_TIMEOUT, a connection
that sends nothing and stays open (half-open), one that shuts its write
side at once (the liveness check), and a valid query whose reply is never
read.

``--hold N`` first opens N idle connections and keeps them open until the
end (the file-descriptor angle: a daemon without a bound on connections
runs out of descriptors).

Prints one JSON line: how many requests of each kind were made, how many
got a reply, and how many failed to connect (for example a full backlog).
Stops by itself; touches nothing but the socket.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import socket
import sys
from collections.abc import Awaitable, Callable

KINDS: tuple[tuple[str, bytes], ...] = (
    ("malformed", b"{]\n"),
    ("not-utf8", b"\xff\xfe{\"v\": 1}\n"),
    ("version", b'{"v": 2, "op": "ping"}\n'),
    ("unknown-op", b'{"v": 1, "op": "reboot"}\n'),
    ("unknown-field", b'{"v": 1, "op": "query", "x": 1}\n'),
    ("log-forging", b'{"v": 1, "op": "\\nNIC failure detected on qfe0 of group prod\\u001b[2J"}\n'),
    ("deep", b"[" * 4000 + b"\n"),
    ("oversized", b"y" * 65536),
    ("oversized-line", b"z" * 5000 + b"\n"),
    ("slow", b""),
    ("half-open", b""),
    ("shut-write", b""),
    ("unread-reply", b'{"v": 1, "op": "query"}\n'),
)


async def one(path: str, kind: str, payload: bytes, stats: collections.Counter[str]) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), 5.0)
    except (OSError, TimeoutError):
        stats["connect_failed"] += 1
        return
    stats[kind] += 1
    try:
        if kind == "slow":
            for byte in b'{"v": 1, "op": "query"':
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
                if reader.at_eof():
                    break
        elif kind == "half-open":
            await asyncio.sleep(2.5)  # READ_TIMEOUT is 2 s: the daemon hangs up first
        elif kind == "shut-write":
            sock = writer.get_extra_info("socket")
            sock.shutdown(socket.SHUT_WR)
        else:
            writer.write(payload)
            await writer.drain()
        if kind != "unread-reply":
            line = await asyncio.wait_for(reader.readline(), 5.0)
            if line:
                stats["replied"] += 1
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        stats["cut_off"] += 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def pool(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            await queue.get_nowait()()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def main(path: str, requests: int, concurrency: int, hold: int) -> dict[str, int]:
    stats: collections.Counter[str] = collections.Counter()
    held = []
    for _ in range(hold):
        try:
            held.append(await asyncio.wait_for(asyncio.open_unix_connection(path), 5.0))
            stats["held"] += 1
        except (OSError, TimeoutError):
            stats["hold_failed"] += 1
    jobs: list[Callable[[], Awaitable[None]]] = []
    for i in range(requests):
        kind, payload = KINDS[i % len(KINDS)]
        jobs.append(lambda kind=kind, payload=payload: one(path, kind, payload, stats))
    await pool(jobs, concurrency)
    for _, writer in held:
        writer.close()
    return dict(stats)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--hold", type=int, default=0)
    args = ap.parse_args()
    result = asyncio.run(main(args.socket, args.requests, args.concurrency, args.hold))
    print(json.dumps(result), flush=True)
    sys.exit(0)
