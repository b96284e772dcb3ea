"""Gratuitous ARP and unsolicited NA: frame layout, and the burst schedule."""

from __future__ import annotations

import asyncio
import errno
import itertools
import struct
import time
from ipaddress import IPv4Address, IPv6Address

import pytest

from ipmp.model import IPAddress
from ipmp.mpathd.announce import (
    ANNOUNCE_COUNT,
    ANNOUNCE_SPACING,
    Announcer,
    garp_frame,
    unsolicited_na,
)
from ipmp.mpathd.hwaddr import parse_mac

MAC = "02:00:00:00:01:02"
MAC_BYTES = bytes.fromhex("020000000102")


def test_parse_mac() -> None:
    assert parse_mac(MAC) == MAC_BYTES
    assert parse_mac("0:1:a:B:ff:7") == bytes([0, 1, 0xA, 0xB, 0xFF, 7])


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "02:00:00:00:01",
        "02:00:00:00:01:02:03",
        "02-00-00-00-01-02",
        "0g:00:00:00:00:00",
        "100:0:0:0:0:0",
        "02::00:00:01:02",
        "+f:0:0:0:0:0",
        " f:0:0:0:0:0",
    ],
)
def test_parse_mac_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_mac(bad)


def test_garp_frame_layout() -> None:
    address = IPv4Address("192.0.2.100")
    frame = garp_frame(MAC, address)
    assert len(frame) == 60  # padded to the Ethernet minimum
    dst, src, ethertype = struct.unpack("!6s6sH", frame[:14])
    assert dst == b"\xff" * 6  # broadcast
    assert src == MAC_BYTES
    assert ethertype == 0x0806
    htype, ptype, hlen, plen, oper, sha, spa, tha, tpa = struct.unpack("!HHBBH6s4s6s4s", frame[14:42])
    assert (htype, ptype, hlen, plen) == (1, 0x0800, 6, 4)
    assert oper == 1  # a request, not a reply
    assert sha == MAC_BYTES  # sender MAC = the NIC that now holds the address
    assert spa == tpa == address.packed  # sender IP = target IP: a real GARP
    assert tha == bytes(6)
    assert frame[42:] == bytes(18)


def test_unsolicited_na_layout() -> None:
    address = IPv6Address("2001:db8::100")
    na = unsolicited_na(MAC, address)
    assert len(na) == 32
    icmp_type, code, checksum, flags = struct.unpack("!BBHI", na[:8])
    assert (icmp_type, code) == (136, 0)
    assert checksum == 0  # the kernel computes it
    assert flags == 0x20000000  # O=1, S=0, R=0, reserved bits zero
    assert na[8:24] == address.packed
    opt_type, opt_len = na[24], na[25]
    assert (opt_type, opt_len) == (2, 1)  # target link-layer address, 1 x 8 bytes
    assert na[26:32] == MAC_BYTES


def test_bad_mac_is_rejected_by_the_builders() -> None:
    with pytest.raises(ValueError):
        garp_frame("nonsense", IPv4Address("192.0.2.1"))
    with pytest.raises(ValueError):
        unsolicited_na("nonsense", IPv6Address("2001:db8::1"))


# ---------------------------------------------------------------- the burst
class Recorder(Announcer):
    """An Announcer that records instead of sending (no sockets are opened)."""

    def __init__(self, fail: set[IPAddress] | None = None) -> None:
        super().__init__()
        self.sent: list[tuple[float, str, str, IPAddress]] = []
        self.fail = fail or set()

    def send(self, ifname: str, mac: str, address: IPAddress) -> None:
        self.sent.append((time.monotonic(), ifname, mac, address))
        if address in self.fail:
            raise OSError(errno.ENETDOWN, "Network is down")


def test_burst_defaults_three_rounds_20ms_apart() -> None:
    assert (ANNOUNCE_COUNT, ANNOUNCE_SPACING) == (3, 0.02)
    addresses: list[IPAddress] = [IPv4Address("192.0.2.100"), IPv6Address("2001:db8::100")]
    rec = Recorder()
    asyncio.run(rec.burst("nic1", MAC, addresses))
    assert [(ifname, mac, a) for _, ifname, mac, a in rec.sent] == [
        ("nic1", MAC, a) for _ in range(3) for a in addresses
    ]
    starts = [t for t, *_ in rec.sent[::2]]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(0.018 <= g < 0.2 for g in gaps), gaps


def test_burst_continues_after_an_error_then_raises_the_first() -> None:
    bad = IPv6Address("2001:db8::100")
    good = IPv4Address("192.0.2.100")
    rec = Recorder(fail={bad})
    with pytest.raises(OSError) as info:
        asyncio.run(rec.burst("nic1", MAC, [bad, good], count=2, spacing=0))
    assert info.value.errno == errno.ENETDOWN
    assert [a for *_, a in rec.sent] == [bad, good, bad, good]


def test_burst_takes_any_iterable_once() -> None:
    rec = Recorder()
    asyncio.run(rec.burst("nic0", MAC, (a for a in [IPv4Address("192.0.2.7")]), count=2, spacing=0))
    assert len(rec.sent) == 2


def test_close_without_use_is_fine() -> None:
    with Announcer() as announcer:
        pass
    announcer.close()
