"""Telling the link that an address moved: gratuitous ARP and unsolicited NA.

After a failover or failback the data address answers from another NIC's MAC,
and peers keep sending to the old one until their caches expire (30-44 s
measured in linux-mapping.md Q4, "Without GARP").  Linux announces nothing
when an address is added to a NIC, so the daemon does, as measured in Q3/Q4:

* IPv4: a *real* gratuitous ARP -- an ARP **request** to the broadcast MAC
  with sender IP = target IP = the address and sender MAC = the new NIC.
  Linux peers then update an existing entry even inside its ``locktime``
  (a GARP does not create entries; a peer without one ARPs anyway).
* IPv6: an unsolicited Neighbor Advertisement (RFC 4861 section 7.2.6): ICMPv6
  type 136 with Override=1, Solicited=0, a target link-layer address option,
  to ff02::1 with hop limit 255.  Without O a peer only marks its entry
  STALE and keeps the old MAC; with another hop limit it drops the NA.
* Three announcements 20 ms apart per address (Q4 "failover" step 5), so one
  lost frame does not leave a peer on the old MAC until its cache expires.

The frame builders are pure; :class:`Announcer` does the I/O.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from ipmp.model import IPAddress
from ipmp.mpathd.hwaddr import parse_mac

__all__ = [
    "ALL_NODES_V6",
    "ANNOUNCE_COUNT",
    "ANNOUNCE_SPACING",
    "ETH_P_ARP",
    "ND_NEIGHBOR_ADVERT",
    "Announcer",
    "garp_frame",
    "unsolicited_na",
]

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LINKADDR = 2
# Neighbor Advertisement flags (first byte of the reserved word).
ND_NA_FLAG_ROUTER = 0x80
ND_NA_FLAG_SOLICITED = 0x40
ND_NA_FLAG_OVERRIDE = 0x20
#: RFC 4861 section 7.1.2: a receiver drops an NA whose hop limit is not 255.
ND_HOP_LIMIT = 255
ALL_NODES_V6 = IPv6Address("ff02::1")
#: Announcements per address and their spacing in seconds (linux-mapping.md Q4).
ANNOUNCE_COUNT = 3
ANNOUNCE_SPACING = 0.02

_BROADCAST_MAC = b"\xff" * 6
# Minimum Ethernet frame without FCS (ETH_ZLEN).  Real NICs pad short frames
# themselves, but not every driver does it properly; padding here is harmless.
_ETH_ZLEN = 60
# IPPROTO_ICMPV6: 256-bit bitmap of ICMPv6 types to block (linux/icmpv6.h).
_ICMP6_FILTER = 1


def garp_frame(mac: str, address: IPv4Address) -> bytes:
    """A complete Ethernet frame with a gratuitous ARP request for ``address``.

    Request, not reply: Linux, like most stacks, updates an existing entry on
    either, but only a request to broadcast reaches every station's ARP code
    on every switch.  The target hardware address is zero, as in an ordinary
    request (RFC 5227 section 3 says it is ignored).
    """
    hw = parse_mac(mac)
    ip = address.packed
    ethernet = _BROADCAST_MAC + hw + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, ARPOP_REQUEST) + hw + ip + b"\0" * 6 + ip
    return (ethernet + arp).ljust(_ETH_ZLEN, b"\0")


def unsolicited_na(mac: str, address: IPv6Address) -> bytes:
    """The ICMPv6 part of an unsolicited Neighbor Advertisement for ``address``.

    Flags: Override set (replace the cached MAC), Solicited clear (nobody
    asked; a peer must not treat the entry as confirmed reachable), Router
    clear (the host is not a router).  One option: the target link-layer
    address (type 2, length 1 = 8 bytes).  The checksum is left 0: the
    kernel fills it in on raw ICMPv6 sockets.
    """
    hw = parse_mac(mac)
    header = struct.pack("!BBHB3x", ND_NEIGHBOR_ADVERT, 0, 0, ND_NA_FLAG_OVERRIDE)
    option = struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + hw
    return header + address.packed + option


class Announcer:
    """Sends gratuitous ARPs and unsolicited NAs out of a given NIC.

    Two sockets serve every NIC, opened on first use:

    * an ``AF_PACKET`` raw socket with protocol 0 -- it never receives
      anything -- that names the NIC on every ``sendto``;
    * a raw ICMPv6 socket with unicast and multicast hop limit 255 and a
      filter blocking every ICMPv6 type (it only sends); the NIC is the scope
      id of the ff02::1 destination.

    Naming the NIC per send instead of binding one socket per NIC means a NIC
    that is unplumbed and re-created (new ifindex, section 2.2 of the Solaris
    reference) is still reached, and no socket has to be dropped with it.
    """

    def __init__(self) -> None:
        self._packet: socket.socket | None = None
        self._icmp6: socket.socket | None = None

    def _packet_socket(self) -> socket.socket:
        if self._packet is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            sock.setblocking(False)
            self._packet = sock
        return self._packet

    def _icmp6_socket(self) -> socket.socket:
        if self._icmp6 is None:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ND_HOP_LIMIT)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ND_HOP_LIMIT)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, b"\xff" * 32)
            except BaseException:
                sock.close()
                raise
            self._icmp6 = sock
        return self._icmp6

    def send(self, ifname: str, mac: str, address: IPAddress) -> None:
        """One announcement of ``address`` at ``mac`` out of ``ifname``; raises OSError."""
        if isinstance(address, IPv4Address):
            frame = garp_frame(mac, address)
            sent = self._packet_socket().sendto(frame, (ifname, ETH_P_ARP))
        else:
            frame = unsolicited_na(mac, address)
            ifindex = socket.if_nametoindex(ifname)
            sent = self._icmp6_socket().sendto(frame, (str(ALL_NODES_V6), 0, 0, ifindex))
        if sent != len(frame):
            raise OSError(errno.EMSGSIZE, f"announcement for {address} on {ifname}: sent {sent} bytes")

    async def burst(
        self,
        ifname: str,
        mac: str,
        addresses: Iterable[IPAddress],
        count: int = ANNOUNCE_COUNT,
        spacing: float = ANNOUNCE_SPACING,
    ) -> None:
        """``count`` rounds ``spacing`` seconds apart, each announcing every address once.

        A failed send does not stop the burst: the other addresses and rounds
        still go out, then the first error is raised.
        """
        targets = list(addresses)
        first_error: OSError | None = None
        for round_no in range(count):
            if round_no:
                await asyncio.sleep(spacing)
            for address in targets:
                try:
                    self.send(ifname, mac, address)
                except OSError as exc:
                    if first_error is None:
                        first_error = exc
        if first_error is not None:
            raise first_error

    def close(self) -> None:
        for sock in (self._packet, self._icmp6):
            if sock is not None:
                sock.close()
        self._packet = None
        self._icmp6 = None

    def __enter__(self) -> Announcer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
