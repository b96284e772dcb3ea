"""A tiny measuring agent that runs *inside* one lab namespace.

Started by the benchmarks with ``Topology.popen(ns, [python, -m, bench.agent, ...])``.
It does two things, both on raw ``AF_NETLINK`` sockets so that no library
sits between the kernel and the clock:

* **listen** (``--watch link,addr,neigh,route,rule,netconf``): every
  RTM_NEWLINK / RTM_NEWADDR / RTM_DELADDR / RTM_NEWNEIGH of its namespace is
  printed as one JSON line with the ``time.monotonic()`` of its arrival, any
  other message of the chosen groups as ``{"ev": "other", "type": N}``;
* **act** (commands on stdin, one per line): ``down IF``, ``up IF``,
  ``nomaster IF``, ``master IF BRIDGE``.  Each is one RTM_NEWLINK request; the
  agent stamps ``t0`` right before ``send()`` and answers
  ``{"ev": "done", "t0": ..., "t1": ...}`` once the kernel has acknowledged.

CLOCK_MONOTONIC is system-wide (the lab creates no time namespace), so stamps
taken here compare directly with stamps of the benchmark process and of the
other agents.  The first line is ``{"ev": "ready"}`` once the sockets are bound.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator, Sequence

RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV4_RULE = 0x80
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTMGRP_IPV6_RULE = 1 << (19 - 1)  # RTNLGRP_IPV6_RULE
RTMGRP_IPV4_NETCONF = 1 << (24 - 1)  # RTNLGRP_IPV4_NETCONF
RTMGRP_IPV6_NETCONF = 1 << (25 - 1)  # RTNLGRP_IPV6_NETCONF

RTM_NEWLINK = 16
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_NEWNEIGH = 28
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_LOWER_UP = 0x10000
IFLA_IFNAME = 3
IFLA_MASTER = 10
IFA_ADDRESS = 1
IFA_LOCAL = 2
NDA_DST = 1
NDA_LLADDR = 2

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBi")
_NDMSG = struct.Struct("=BxxxiHBB")
_RTATTR = struct.Struct("=HH")

_GROUPS = {
    "link": RTMGRP_LINK,
    "addr": RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
    "neigh": RTMGRP_NEIGH,
    "route": RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
    "rule": RTMGRP_IPV4_RULE | RTMGRP_IPV6_RULE,
    "netconf": RTMGRP_IPV4_NETCONF | RTMGRP_IPV6_NETCONF,
}


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            return
        yield kind & 0x3FFF, data[offset + _RTATTR.size:offset + length]
        offset += (length + 3) & ~3


def _ip(family: int, raw: bytes) -> str:
    try:
        return socket.inet_ntop(family, raw)
    except (ValueError, OSError):
        return raw.hex()


def _ifname(index: int, cache: dict[int, str]) -> str:
    name = cache.get(index)
    if name is None:
        try:
            name = socket.if_indextoname(index)
        except OSError:
            return str(index)
        cache[index] = name
    return name


def decode(data: bytes, stamp: float, names: dict[int, str]) -> list[dict[str, object]]:
    """One netlink datagram -> the events this agent reports."""
    out: list[dict[str, object]] = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        body = data[offset + _NLMSGHDR.size:offset + length]
        offset += (length + 3) & ~3
        if kind == RTM_NEWLINK and len(body) >= _IFINFOMSG.size:
            _fam, _type, index, flags, _change = _IFINFOMSG.unpack_from(body)
            name = next((v.rstrip(b"\0").decode() for k, v in _attrs(body[_IFINFOMSG.size:])
                         if k == IFLA_IFNAME), str(index))
            names[index] = name
            out.append({"ev": "link", "t": stamp, "ifname": name,
                        "running": bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)})
        elif kind in (RTM_NEWADDR, RTM_DELADDR) and len(body) >= _IFADDRMSG.size:
            family, _plen, _aflags, _scope, index = _IFADDRMSG.unpack_from(body)
            found = dict(_attrs(body[_IFADDRMSG.size:]))
            raw = found.get(IFA_LOCAL, found.get(IFA_ADDRESS))
            if raw is None:
                continue
            out.append({"ev": "newaddr" if kind == RTM_NEWADDR else "deladdr", "t": stamp,
                        "ifname": _ifname(index, names), "addr": _ip(family, raw)})
        elif kind == RTM_NEWNEIGH and len(body) >= _NDMSG.size:
            family, index, state, _nflags, _ntype = _NDMSG.unpack_from(body)
            found = dict(_attrs(body[_NDMSG.size:]))
            dst = found.get(NDA_DST)
            mac = found.get(NDA_LLADDR)
            if dst is None:
                continue
            out.append({"ev": "neigh", "t": stamp, "ip": _ip(family, dst), "state": state,
                        "mac": ":".join(f"{b:02x}" for b in mac) if mac else None})
        else:
            out.append({"ev": "other", "t": stamp, "type": kind})
    return out


class Actor:
    """RTM_NEWLINK requests on their own socket, so acks never mix with events."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def _request(self, index: int, flags: int, change: int, attrs: bytes) -> tuple[float, float, int]:
        self.seq += 1
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change) + attrs
        msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK,
                             self.seq, 0) + body
        t0 = time.monotonic()
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            t1 = time.monotonic()
            _len, kind, _f, seq, _p = _NLMSGHDR.unpack_from(data)
            if kind == NLMSG_ERROR and seq == self.seq:
                (code,) = struct.unpack_from("=i", data, _NLMSGHDR.size)
                return t0, t1, -code

    def run(self, words: Sequence[str]) -> dict[str, object]:
        verb, ifname = words[0], words[1]
        index = socket.if_nametoindex(ifname)
        if verb == "down":
            t0, t1, err = self._request(index, 0, IFF_UP, b"")
        elif verb == "up":
            t0, t1, err = self._request(index, IFF_UP, IFF_UP, b"")
        elif verb in ("nomaster", "master"):
            master = socket.if_nametoindex(words[2]) if verb == "master" else 0
            attr = _RTATTR.pack(8, IFLA_MASTER) + struct.pack("=I", master)
            t0, t1, err = self._request(index, 0, 0, attr)
        else:
            return {"ev": "error", "error": f"unknown command {verb!r}"}
        return {"ev": "done", "cmd": " ".join(words), "t0": t0, "t1": t1, "errno": err}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.agent")
    p.add_argument("--watch", default="", help="comma-separated: link, addr, neigh")
    args = p.parse_args(argv)
    groups = 0
    for word in filter(None, args.watch.split(",")):
        groups |= _GROUPS[word]
    listener: socket.socket | None = None
    if groups:
        listener = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                 socket.NETLINK_ROUTE)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        listener.bind((0, groups))
    actor = Actor()
    out = sys.stdout
    out.write(json.dumps({"ev": "ready", "pid": os.getpid()}) + "\n")
    out.flush()
    names: dict[int, str] = {}
    stdin_fd = sys.stdin.fileno()
    pending = b""
    fds = [stdin_fd] + ([listener.fileno()] if listener is not None else [])
    while True:
        readable, _, _ = select.select(fds, [], [])
        if listener is not None and listener.fileno() in readable:
            while True:
                try:
                    data = listener.recv(1 << 16)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:
                        out.write(json.dumps({"ev": "overrun", "t": time.monotonic()}) + "\n")
                        continue
                    raise
                stamp = time.monotonic()
                for event in decode(data, stamp, names):
                    out.write(json.dumps(event) + "\n")
            out.flush()
        if stdin_fd in readable:
            chunk = os.read(stdin_fd, 4096)
            if not chunk:
                return 0
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if not words:
                    continue
                try:
                    reply = actor.run(words)
                except OSError as exc:
                    reply = {"ev": "error", "error": str(exc)}
                out.write(json.dumps(reply) + "\n")
                out.flush()


if __name__ == "__main__":
    sys.exit(main())
