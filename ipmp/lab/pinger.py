"""A small, accurate ICMP echo pinger for the lab (IPv4 and IPv6, raw sockets).

The lab has no ``ping`` binary, and failover drills need more than ping's
summary: *which* echoes were lost and *when* they were sent, so a loss window
can be lined up with the moment a failure was injected.  Hence this module.

Run it inside a namespace (raw sockets need root or CAP_NET_RAW)::

    python -m ipmp.lab.pinger --count 100 --interval 0.01 --timeout 1 192.0.2.1 2001:db8::1

Every ``interval`` seconds one *round* goes out: one echo request to every
target, all carrying the same sequence number.  Send times come from a fixed
schedule on the monotonic clock (``start + round * interval``) so the rate does
not drift with the loop's own overhead.  ``--count 0`` keeps sending until
SIGINT or SIGTERM; either signal stops sending early, after which the pinger
still waits up to ``timeout`` for replies already in flight, then reports.

Output (stdout): with ``--ready``, first one line ``{"event": "ready", ...}``
once the sockets are open; then, as the last line, one JSON report (its
schema: ``PingReport.from_json`` in :mod:`ipmp.lab.pingreport`).  The exit
status is 0 whenever the run completed, whatever the loss: loss is data here, not an error; 2 means
bad arguments, 1 a failure to open the sockets.

Replies are matched strictly, because a raw socket sees *every* ICMP packet
of its namespace (other pingers, the product's probes): the echo identifier,
a random per-run cookie in the payload, the target index and a 32-bit
sequence number in the payload, and the reply's source address must all agree.
A reply slower than ``timeout`` counts as ``late`` and as lost, so "lost"
means "no answer within the timeout", as a prober would see it.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

# One owner for the ICMP numbers and the RFC 1071 checksum: the daemon's probe
# codec (ICMPv4 needs the checksum; the kernel fills in ICMPv6's).
from ipmp.lab.pingreport import LossRange, PingReport, TargetStats, seq_ranges
from ipmp.mpathd.icmp import (
    ICMP6_ECHO_REPLY,
    ICMP6_ECHO_REQUEST,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    icmp_checksum,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Linux constants the socket module does not export.
_SOL_RAW = 255
_ICMP_FILTER = 1  # SOL_RAW level; u32 bitmap of ICMP types to *block*
_ICMP6_FILTER = 1  # IPPROTO_ICMPV6 level; 256-bit bitmap of types to *block*
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)

# Payload after the 8-byte ICMP header: cookie, target index, 32-bit sequence,
# send time (monotonic ns).  The full sequence lives here because the 16-bit
# header field wraps after 11 minutes at 100 pings/s.
_COOKIE_LEN = 8
_PAYLOAD = struct.Struct("!8sHIQ")
_HEADER = struct.Struct("!BBHHH")

_RCVBUF = 1 << 20  # room for bursts of replies while we are busy sending


def build_echo(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    """An echo request; the checksum is left 0 for IPv6 (the kernel fills it in)."""
    if family == socket.AF_INET:
        header = _HEADER.pack(ICMP_ECHO_REQUEST, 0, 0, ident, seq & 0xFFFF)
        csum = icmp_checksum(header + payload)
        return _HEADER.pack(ICMP_ECHO_REQUEST, 0, csum, ident, seq & 0xFFFF) + payload
    return _HEADER.pack(ICMP6_ECHO_REQUEST, 0, 0, ident, seq & 0xFFFF) + payload


@dataclass
class _Target:
    text: str
    index: int
    ip: IPAddress
    family: int
    sockaddr: tuple[Any, ...]
    send_ns: list[int] = field(default_factory=list)  # by sequence; 0 = send failed
    rtt_ns: dict[int, int] = field(default_factory=dict)  # seq -> rtt, within timeout
    late: int = 0
    duplicates: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def _resolve(text: str, index: int) -> _Target:
    """Numeric addresses only: a namespace has no resolver, and DNS would hang."""
    bare = text.split("%")[0]
    ip = ipaddress.ip_address(bare)  # raises ValueError for garbage
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    info = socket.getaddrinfo(text, None, family, socket.SOCK_RAW, 0, socket.AI_NUMERICHOST)
    return _Target(text=text, index=index, ip=ip, family=family, sockaddr=info[0][4])


def _open_socket(family: int, source: str | None, device: str | None) -> socket.socket:
    if family == socket.AF_INET:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        # Only echo replies reach us: less work per packet at high rates.
        sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", 0xFFFFFFFF & ~(1 << ICMP_ECHO_REPLY)))
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        words = [0xFFFFFFFF] * 8
        words[ICMP6_ECHO_REPLY >> 5] &= ~(1 << (ICMP6_ECHO_REPLY & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("=8I", *words))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        if device:
            sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, device.encode())
        if source:
            info = socket.getaddrinfo(source, None, family, socket.SOCK_RAW, 0, socket.AI_NUMERICHOST)
            sock.bind(info[0][4])
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Pinger:
    """One run against a fixed set of targets.  Use :meth:`run` once."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        count: int = 5,
        interval: float = 0.1,
        timeout: float = 1.0,
        sources: Sequence[str] = (),
        device: str | None = None,
    ) -> None:
        if not targets:
            raise ValueError("no targets")
        if len(set(targets)) != len(targets):
            raise ValueError("duplicate targets")
        if count < 0:
            raise ValueError("count must be >= 0 (0 = until signalled)")
        if not 0.0005 <= interval <= 3600:
            raise ValueError("interval must be between 0.0005 and 3600 s")
        if not 0 < timeout <= 3600:
            raise ValueError("timeout must be between 0 and 3600 s")
        self.targets = [_resolve(t, i) for i, t in enumerate(targets)]
        self.count = count
        self.interval = interval
        self.timeout = timeout
        self.device = device
        self.sources: dict[int, str] = {}
        for src in sources:
            fam = socket.AF_INET if ipaddress.ip_address(src.split("%")[0]).version == 4 else socket.AF_INET6
            if fam in self.sources:
                raise ValueError("at most one source address per family")
            self.sources[fam] = src
        self.ident = int.from_bytes(os.urandom(2), "big")
        self.cookie = os.urandom(_COOKIE_LEN)
        self._stop = False
        self._socks: dict[int, socket.socket] = {}

    def stop(self) -> None:
        """Stop sending new rounds (safe to call from a signal handler)."""
        self._stop = True

    def open(self) -> None:
        for fam in sorted({t.family for t in self.targets}):
            self._socks[fam] = _open_socket(fam, self.sources.get(fam), self.device)

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()

    def _send_round(self, seq: int) -> None:
        for t in self.targets:
            now = time.monotonic_ns()
            payload = _PAYLOAD.pack(self.cookie, t.index, seq, now)
            try:
                self._socks[t.family].sendto(build_echo(t.family, self.ident, seq, payload), t.sockaddr)
            except OSError as exc:
                # Counted as sent (and so as lost): for a drill, "could not
                # even send" is an outage like any other.
                name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                t.errors[name] = t.errors.get(name, 0) + 1
                t.send_ns.append(0)
            else:
                t.send_ns.append(now)

    def _receive(self, sock: socket.socket) -> None:
        while True:
            try:
                data, addr = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            stamp = time.monotonic_ns()
            if sock.family == socket.AF_INET:
                if len(data) < 20:
                    continue
                data = data[(data[0] & 0x0F) * 4 :]  # IPv4 raw sockets include the IP header
                want_type = ICMP_ECHO_REPLY
            else:
                want_type = ICMP6_ECHO_REPLY
            self._match(data, want_type, str(addr[0]), stamp)

    def _match(self, data: bytes, want_type: int, source: str, stamp: int) -> None:
        if len(data) < _HEADER.size + _PAYLOAD.size:
            return
        icmp_type, code, _csum, ident, seq16 = _HEADER.unpack_from(data)
        if icmp_type != want_type or code != 0 or ident != self.ident:
            return
        cookie, index, seq, _sent = _PAYLOAD.unpack_from(data, _HEADER.size)
        if cookie != self.cookie or index >= len(self.targets):
            return
        target = self.targets[index]
        if seq >= len(target.send_ns) or seq & 0xFFFF != seq16:
            return
        if ipaddress.ip_address(source.split("%")[0]) != target.ip:
            return
        # Use our own record of the send time rather than the echoed one: the
        # payload is the peer's to corrupt.
        sent = target.send_ns[seq]
        if sent == 0:
            return
        rtt = stamp - sent
        if seq in target.rtt_ns:
            target.duplicates += 1
        elif rtt > self.timeout * 1e9:
            target.late += 1
        else:
            target.rtt_ns[seq] = rtt

    def _all_answered(self, rounds: int) -> bool:
        return all(len(t.rtt_ns) + t.send_ns.count(0) == rounds for t in self.targets)

    def run(self, on_ready: Callable[[float], None] | None = None) -> PingReport:
        """Send, collect, report.

        ``on_ready(now)`` is called once, with the sockets open, just before the
        first round; the report's ``start_monotonic`` is the exact schedule origin.
        """
        if not self._socks:
            self.open()
        by_fd = {s.fileno(): s for s in self._socks.values()}
        # Signals must wake select() at once, or a stop during the drain phase
        # could wait a whole timeout.
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        watched = [*by_fd, wake_r]
        in_main = threading.current_thread() is threading.main_thread()
        old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False) if in_main else -1
        interval_ns = round(self.interval * 1e9)
        timeout_ns = round(self.timeout * 1e9)
        max_lag = 0
        rounds = 0
        last_send = 0
        try:
            if on_ready is not None:
                on_ready(time.monotonic())
            # The schedule starts after on_ready, so its output is not
            # counted as lag of the first round.
            start = time.monotonic_ns()
            while True:
                now = time.monotonic_ns()
                sending = not self._stop and (self.count == 0 or rounds < self.count)
                if sending:
                    due = start + rounds * interval_ns
                    if now >= due:
                        max_lag = max(max_lag, now - due)
                        self._send_round(rounds)
                        rounds += 1
                        last_send = time.monotonic_ns()
                        continue
                    wake_at = due
                else:
                    if rounds == 0 or self._all_answered(rounds):
                        break
                    wake_at = last_send + timeout_ns
                    if now >= wake_at:
                        break
                # select(), not poll()/epoll(): their millisecond timeouts
                # would make each round up to 1 ms late; select has microseconds.
                readable, _, _ = select.select(watched, [], [], max(0.0, (wake_at - now) / 1e9))
                for fd in readable:
                    if fd == wake_r:
                        try:
                            while os.read(wake_r, 512):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self._receive(by_fd[fd])
            end = time.monotonic_ns()
        finally:
            if in_main:
                signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            self.close()
        return self._report(rounds, start, end, max_lag)

    def _report(self, rounds: int, start: int, end: int, max_lag: int) -> PingReport:
        stats: dict[str, TargetStats] = {}
        for t in self.targets:
            rtts = list(t.rtt_ns.values())
            lost = [s for s in range(len(t.send_ns)) if s not in t.rtt_ns]
            lost_ranges: list[LossRange] = []
            for a, b in seq_ranges(lost):
                # A failed send has no send time; use its scheduled one.
                ta = t.send_ns[a] or start + a * round(self.interval * 1e9)
                tb = t.send_ns[b] or start + b * round(self.interval * 1e9)
                lost_ranges.append(LossRange(a, b, (ta - start) / 1e9, (tb - start) / 1e9))
            stats[t.text] = TargetStats(
                address=t.text,
                sent=len(t.send_ns),
                received=len(t.rtt_ns),
                late=t.late,
                duplicates=t.duplicates,
                errors=dict(t.errors),
                replied=tuple(seq_ranges(t.rtt_ns)),
                lost_ranges=tuple(lost_ranges),
                rtt_min_ms=min(rtts) / 1e6 if rtts else None,
                rtt_avg_ms=sum(rtts) / len(rtts) / 1e6 if rtts else None,
                rtt_max_ms=max(rtts) / 1e6 if rtts else None,
            )
        return PingReport(
            ident=self.ident,
            interval=self.interval,
            timeout=self.timeout,
            rounds=rounds,
            start_monotonic=start / 1e9,
            end_monotonic=end / 1e9,
            max_send_lag_ms=max_lag / 1e6,
            targets=stats,
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ipmp.lab.pinger", description=__doc__.split("\n\n")[0])
    p.add_argument("addresses", nargs="+", metavar="ADDR", help="numeric IPv4/IPv6 address")
    p.add_argument("--count", type=int, default=5, help="rounds to send; 0 = until SIGINT/SIGTERM")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between rounds")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds a reply may take")
    p.add_argument("--source", action="append", default=[], help="source address (one per family)")
    p.add_argument("--device", help="bind to this interface (SO_BINDTODEVICE)")
    p.add_argument("--ready", action="store_true", help="print a ready line once sockets are open")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        pinger = Pinger(
            args.addresses,
            count=args.count,
            interval=args.interval,
            timeout=args.timeout,
            sources=args.source,
            device=args.device,
        )
    except ValueError as exc:
        print(f"pinger: {exc}", file=sys.stderr)
        return 2
    try:
        pinger.open()
    except OSError as exc:
        print(f"pinger: cannot open raw ICMP socket: {exc}", file=sys.stderr)
        return 1

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        pinger.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    def ready(start: float) -> None:
        if args.ready:
            print(json.dumps({"event": "ready", "ident": pinger.ident, "start_monotonic": start}), flush=True)

    report = pinger.run(on_ready=ready)
    print(json.dumps(report.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
