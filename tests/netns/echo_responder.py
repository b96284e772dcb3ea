"""A programmable ICMP echo responder for the lab's router namespace (IPv4).

The lab kernel has no netem, so a probe target that loses some echoes and
answers late is built in user space: the kernel's own echo replies are
switched off in the responder's namespace (``net.ipv4.icmp_echo_ignore_all=1``,
set by the test, and only in that test namespace) and this process answers
instead, through raw sockets::

    python echo_responder.py --address 192.0.2.1 --loss 0.01 --delay-ms 2 --jitter-ms 3 --seed 7

* Only echo requests to one of the ``--address`` values are answered; the
  reply leaves from a raw socket bound to that address, so its source is the
  address that was asked.  Everything else (broadcast and multicast echoes
  included) is ignored and counted.
* Each request is dropped with probability ``--loss``; otherwise it is
  answered after ``delay + uniform(-jitter, +jitter)`` ms (never negative),
  so replies may overtake each other, as on a real jittery path.
* The random stream is seeded (``--seed``): one run is reproducible apart
  from the order in which requests happen to arrive.

Output (stdout): one ``{"event": "ready"}`` line once the sockets are open,
and on SIGTERM/SIGINT one JSON line with counters (``received``,
``answered``, ``dropped``, ``ignored``, ``pending`` = scheduled replies not yet
sent when stopped); exit status 0.  Standard library only, so the script runs
with any Python 3.11 in the namespace without importing the product.
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
_SOL_RAW = 255
_ICMP_FILTER = 1  # u32 bitmap of ICMP types to *block* on this raw socket


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def make_reply(request: bytes) -> bytes:
    """The echo reply for an echo request (ICMP header + data, no IP header)."""
    body = bytes([ICMP_ECHO_REPLY, 0, 0, 0]) + request[4:]
    csum = checksum(body)
    return body[:2] + struct.pack("!H", csum) + body[4:]


@dataclass(order=True)
class _Due:
    at: float
    order: int
    source: str = field(compare=False)  # our address, the request's destination
    to: str = field(compare=False)
    packet: bytes = field(compare=False)


@dataclass
class Counters:
    received: int = 0
    answered: int = 0
    dropped: int = 0
    ignored: int = 0
    send_errors: int = 0


class Responder:
    def __init__(self, addresses: Sequence[str], loss: float, delay_ms: float, jitter_ms: float,
                 seed: int) -> None:
        self.addresses = {str(ipaddress.IPv4Address(a)) for a in addresses}
        self.loss = loss
        self.delay = delay_ms / 1000.0
        self.jitter = jitter_ms / 1000.0
        self.rng = random.Random(seed)
        self.counters = Counters()
        self.queue: list[_Due] = []
        self._order = 0
        self._stop = False
        self.recv = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        only_requests = struct.pack("=I", 0xFFFFFFFF & ~(1 << ICMP_ECHO_REQUEST))
        self.recv.setsockopt(_SOL_RAW, _ICMP_FILTER, only_requests)
        self.recv.setblocking(False)
        self.send: dict[str, socket.socket] = {}
        for address in sorted(self.addresses):
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", 0xFFFFFFFF))  # never reads
            sock.bind((address, 0))
            self.send[address] = sock

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        self.recv.close()
        for sock in self.send.values():
            sock.close()

    def _receive(self, now: float) -> None:
        while True:
            try:
                data, addr = self.recv.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if len(data) < 20:
                continue
            ihl = (data[0] & 0x0F) * 4
            total = struct.unpack("!H", data[2:4])[0]
            dst = socket.inet_ntoa(data[16:20])
            icmp = data[ihl:total]
            if len(icmp) < 8 or icmp[0] != ICMP_ECHO_REQUEST or icmp[1] != 0 or dst not in self.addresses:
                self.counters.ignored += 1
                continue
            self.counters.received += 1
            if self.rng.random() < self.loss:
                self.counters.dropped += 1
                continue
            wait = max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))
            self._order += 1
            heapq.heappush(self.queue, _Due(now + wait, self._order, dst, str(addr[0]), make_reply(icmp)))

    def _send_due(self, now: float) -> None:
        while self.queue and self.queue[0].at <= now:
            due = heapq.heappop(self.queue)
            try:
                self.send[due.source].sendto(due.packet, (due.to, 0))
            except OSError:
                self.counters.send_errors += 1
            else:
                self.counters.answered += 1

    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        try:
            while not self._stop:
                now = time.monotonic()
                self._send_due(now)
                timeout = None if not self.queue else max(0.0, self.queue[0].at - now)
                readable, _, _ = select.select([self.recv.fileno(), wake_r], [], [], timeout)
                now = time.monotonic()
                if self.recv.fileno() in readable:
                    self._receive(now)
                if wake_r in readable:
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
        finally:
            signal.set_wakeup_fd(old)
            os.close(wake_r)
            os.close(wake_w)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--address", action="append", required=True, help="IPv4 address to answer for")
    p.add_argument("--loss", type=float, default=0.0, help="drop probability, 0..1")
    p.add_argument("--delay-ms", type=float, default=0.0, help="mean reply delay")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="delay varies uniformly by +-this")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0.0 <= args.loss <= 1.0 or args.delay_ms < 0 or args.jitter_ms < 0:
        print("echo_responder: loss must be in 0..1, delay and jitter >= 0", file=sys.stderr)
        return 2
    responder = Responder(args.address, args.loss, args.delay_ms, args.jitter_ms, args.seed)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        responder.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    print(json.dumps({"event": "ready"}), flush=True)
    try:
        responder.run()
    finally:
        responder.close()
    c = responder.counters
    print(json.dumps({"received": c.received, "answered": c.answered, "dropped": c.dropped,
                      "ignored": c.ignored, "send_errors": c.send_errors, "pending": len(responder.queue)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
