"""In the guest's router namespace: note every DHCP attempt seen on the test hub, and from which MAC.

Run by ``ipmp-vm-sniff.service`` from early boot (before ``network-pre.target``,
so before NetworkManager or systemd-networkd start) until power-off.  ``ens10``
is on the same QEMU hub as the group's NICs and the hub repeats every frame to
every port, so a DHCP request of a NIC the network manager still touches is seen
here, whatever the guest's own tools say.  The NIC is put in promiscuous mode:
virtio-net otherwise filters unicast and multicast frames for other MACs.

One JSON line per frame of interest, appended to the file given:
``{"t": seconds since boot, "src": MAC, "kind": ...}`` with ``kind`` one of
``dhcp4`` (UDP to port 67), ``dhcp6`` (UDP to port 547), and ``first`` for the
first frame of any kind from each MAC (proof that the capture sees that NIC).
READY=1 goes to systemd once the socket is bound (Type=notify): the units
ordered after this one start with the capture already running.

Standard library only (the guest's python3).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
IPPROTO_UDP = 17


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def classify(frame: bytes) -> str | None:
    """``dhcp4``, ``dhcp6`` or None for one Ethernet frame."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    offset = 14
    if ethertype == ETH_P_8021Q and len(frame) >= 18:
        ethertype = struct.unpack_from("!H", frame, 16)[0]
        offset = 18
    if ethertype == ETH_P_IP and len(frame) >= offset + 20:
        ihl = (frame[offset] & 0x0F) * 4
        if frame[offset + 9] == IPPROTO_UDP and len(frame) >= offset + ihl + 4:
            if struct.unpack_from("!H", frame, offset + ihl + 2)[0] == 67:
                return "dhcp4"
    elif ethertype == ETH_P_IPV6 and len(frame) >= offset + 44:
        # DHCPv6 clients send plain UDP (no extension headers) to ff02::1:2.
        if frame[offset + 6] == IPPROTO_UDP and struct.unpack_from("!H", frame, offset + 42)[0] == 547:
            return "dhcp6"
    return None


def notify_ready() -> None:
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)


def main() -> int:
    ifname, out = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    mreq = struct.pack("iHH8s", socket.if_nametoindex(ifname), PACKET_MR_PROMISC, 0, b"")
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    seen: set[str] = set()
    notify_ready()
    with os.fdopen(fd, "a", buffering=1) as log:
        while True:
            frame, addr = sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            src = _mac(frame[6:12])
            kinds = [] if src in seen else ["first"]
            seen.add(src)
            kind = classify(frame)
            if kind:
                kinds.append(kind)
            for k in kinds:
                log.write(json.dumps({"t": round(time.clock_gettime(time.CLOCK_BOOTTIME), 2), "src": src,
                                      "kind": k}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
