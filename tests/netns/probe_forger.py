"""An on-link forger of in.mpathd probe replies, for the lab's switch namespace (IPv4).

It stands for a station on the NIC's link that wants a dead NIC to look
alive: it sends the host echo replies that claim to come from the probe
target, straight out of one switch port (an ``AF_PACKET`` socket), so they
reach the NIC whatever the state of the rest of the switch::

    python probe_forger.py --port h0p --nic-mac 02:.. --router-mac 02:.. \\
        --router 192.0.2.1 --test-address 192.0.2.10 (--ident N | --learn)

* ``--ident N``: the ICMP id to use, e.g. the one illumos derives from the
  daemon's pid and the NIC's index (``((pid & 0xff) << 8) | (ifindex & 0xff)``).
* ``--learn``: read the id from one probe the NIC sends through the port
  first (a learning switch floods unicast to a station whose MAC it does not
  know; multicast probes reach every station), and copy whatever that probe
  carries after the 16 bytes of the Solaris payload.  Prints
  ``{"event": "learned", "ident": N, "tail": "<hex>"}``.

The sequence numbers come on stdin, one line per probe, ``<seq> <state>``:
what any local user reads from the daemon's ``probes`` event stream
(``ipmpstat -p``).  For each line the forger answers that probe (a late
reply turns a lost probe into an acknowledged one, as in Solaris) and the
next two, which may be in flight.  The timestamp is the forger's
CLOCK_MONOTONIC in ms, the daemon's probe clock (one clock per host).

Output: ``{"event": "ready"}`` once the socket is open (after learning), and
on SIGTERM/SIGINT or end of input ``{"event": "done", "lines": n, "sent": n}``.
Standard library only: the script does not import the product.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from types import FrameType

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
PROBE_UNICAST = 0x1234
SOLARIS_PAYLOAD = 16  # sizeof (struct pr_icmp)
#: Probes answered ahead of each sequence number read (the two that may be in flight).
AHEAD = 2


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def frame(args: argparse.Namespace, ident: int, seq: int, tail: bytes, ip_id: int) -> bytes:
    """Ethernet + IPv4 + ICMP echo reply from the router to the test address."""
    stamp = int(time.monotonic() * 1000) & 0xFFFFFFFF
    icmp = struct.pack("!BBHHHII", ICMP_ECHO_REPLY, 0, 0, ident, seq & 0xFFFF, stamp, PROBE_UNICAST) + tail
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    src = ipaddress.IPv4Address(args.router).packed
    dst = ipaddress.IPv4Address(args.test_address).packed
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), ip_id & 0xFFFF, 0, 64, 1, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    eth = mac_bytes(args.nic_mac) + mac_bytes(args.router_mac) + struct.pack("!H", ETH_P_IP)
    return eth + header + icmp


def learn(sock: socket.socket, args: argparse.Namespace, timeout: float) -> tuple[int, bytes]:
    """The id of the next probe from the test address to the router, and what follows its Solaris payload."""
    src = ipaddress.IPv4Address(args.test_address).packed
    dst = ipaddress.IPv4Address(args.router).packed
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        data = sock.recv(65535)
        if len(data) < 34 or data[12:14] != b"\x08\x00":
            continue
        ip = data[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 1 or ip[12:16] != src or ip[16:20] != dst:
            continue
        icmp = ip[ihl:struct.unpack("!H", ip[2:4])[0]]
        if len(icmp) >= SOLARIS_PAYLOAD and icmp[0] == ICMP_ECHO_REQUEST:
            return struct.unpack("!H", icmp[4:6])[0], bytes(icmp[SOLARIS_PAYLOAD:])
    raise SystemExit("probe_forger: no probe seen to learn from")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="the switch port of the NIC")
    parser.add_argument("--nic-mac", required=True)
    parser.add_argument("--router-mac", required=True)
    parser.add_argument("--router", required=True, help="the probe target whose replies are forged")
    parser.add_argument("--test-address", required=True)
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--ident", type=int)
    how.add_argument("--learn", action="store_true")
    args = parser.parse_args(argv)

    if args.learn:
        # ETH_P_ALL: a bridge port hands its frames to the bridge before any
        # handler of one protocol would see them; taps for all protocols come first.
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as capture:
            capture.bind((args.port, ETH_P_ALL))
            ident, tail = learn(capture, args, 10.0)
        print(json.dumps({"event": "learned", "ident": ident, "tail": tail.hex()}), flush=True)
    else:
        ident, tail = args.ident, b""
    # Protocol 0: a socket that only sends (it is given no received frame).
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((args.port, 0))

    stop = False

    def on_signal(signum: int, frame_: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(json.dumps({"event": "ready"}), flush=True)
    lines = sent = 0
    pending = b""
    stdin = sys.stdin.fileno()
    while not stop:
        try:
            readable = select.select([stdin], [], [], 0.2)[0]
        except InterruptedError:
            continue
        if not readable:
            continue
        chunk = os.read(stdin, 65536)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            fields = line.split()
            if not fields or not fields[0].isdigit():
                continue
            lines += 1
            seq = int(fields[0])
            for ahead in range(AHEAD + 1):
                sock.send(frame(args, ident, seq + ahead, tail, sent))
                sent += 1
    print(json.dumps({"event": "done", "lines": lines, "sent": sent}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
