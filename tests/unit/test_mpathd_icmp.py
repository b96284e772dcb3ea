"""The probe codec: packet layout, checksum, and every reply check of in.mpathd."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest

from ipmp.model import Family, IPAddress
from ipmp.mpathd.icmp import (
    ICMP6_ECHO_REPLY,
    ICMP6_ECHO_REQUEST,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    PROBE_LEN,
    PROBE_MULTICAST,
    PROBE_RTT,
    PROBE_UNICAST,
    BadReply,
    EchoReply,
    decode_echo_reply,
    encode_echo,
    icmp_checksum,
    icmp_filter_block_all_but,
    probe_ident,
)

ROUTER4 = IPv4Address("192.0.2.1")
ROUTER6_LL = IPv6Address("fe80::ff:fe00:201")
ROUTER6_GLOBAL = IPv6Address("2001:db8::1")


def ipv4_header(payload_len: int, ihl: int = 5) -> bytes:
    """A plausible IPv4 header as a raw socket delivers it (options zero-filled)."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + payload_len,
        0,
        0,
        64,
        1,
        0,
        ROUTER4.packed,
        IPv4Address("192.0.2.10").packed,
    )
    return header + b"\1" * (ihl * 4 - 20)  # option bytes (NOPs)


def reply_from(request: bytes, *, family: Family, code: int = 0, icmp_type: int | None = None) -> bytes:
    """What a target sends back for ``request`` (type flipped, payload echoed)."""
    if icmp_type is None:
        icmp_type = ICMP_ECHO_REPLY if family is Family.INET else ICMP6_ECHO_REPLY
    body = bytes([icmp_type, code]) + b"\0\0" + request[4:]
    if family is Family.INET:
        body = body[:2] + struct.pack("!H", icmp_checksum(body)) + body[4:]
        return ipv4_header(len(body)) + body
    return body


# ------------------------------------------------------------------- encoding
def test_probe_constants() -> None:
    assert (PROBE_UNICAST, PROBE_MULTICAST, PROBE_RTT) == (0x1234, 0x5678, 0x9ABC)
    assert PROBE_LEN == 16


@pytest.mark.parametrize(
    ("pid", "ifindex", "expected"),
    [(1, 2, 0x0102), (0x12345, 0x1FF, 0x45FF), (0, 0, 0), (255, 255, 0xFFFF), (256, 256, 0)],
)
def test_probe_ident(pid: int, ifindex: int, expected: int) -> None:
    assert probe_ident(pid, ifindex) == expected


def test_ipv4_echo_layout_and_checksum() -> None:
    packet = encode_echo(Family.INET, 0x0102, 7, 0x11223344, PROBE_UNICAST)
    assert len(packet) == 16
    icmp_type, code, csum, ident, seq, stamp, ptype = struct.unpack("!BBHHHII", packet)
    assert (icmp_type, code, ident, seq, stamp, ptype) == (
        ICMP_ECHO_REQUEST,
        0,
        0x0102,
        7,
        0x11223344,
        0x1234,
    )
    assert csum != 0
    # A correct Internet checksum makes the whole message sum to 0xffff.
    assert icmp_checksum(packet) == 0
    zeroed = packet[:2] + b"\0\0" + packet[4:]
    assert icmp_checksum(zeroed) == csum


def test_ipv4_checksum_known_value() -> None:
    # Worked by hand: 0800 + 0102 + 0007 + 1122 + 3344 + 0000 + 1234 = 5fa3, ~5fa3 = a05c.
    packet = encode_echo(Family.INET, 0x0102, 7, 0x11223344, PROBE_UNICAST)
    assert packet.hex() == "0800a05c010200071122334400001234"


def test_ipv6_echo_leaves_checksum_to_the_kernel() -> None:
    packet = encode_echo(Family.INET6, 0xABCD, 1, 5, PROBE_MULTICAST)
    assert packet == struct.pack("!BBHHHII", ICMP6_ECHO_REQUEST, 0, 0, 0xABCD, 1, 5, PROBE_MULTICAST)


def test_checksum_of_odd_length() -> None:
    assert icmp_checksum(b"\x01") == ~0x0100 & 0xFFFF
    assert icmp_checksum(b"") == 0xFFFF


def test_counters_wrap_and_fields_are_checked() -> None:
    packet = encode_echo(Family.INET6, 1, 0x10001, 0x1_0000_0005, PROBE_RTT)
    assert struct.unpack("!HI", packet[6:12]) == (1, 5)
    with pytest.raises(ValueError):
        encode_echo(Family.INET, 0x10000, 1, 0, PROBE_UNICAST)
    with pytest.raises(ValueError):
        encode_echo(Family.INET, -1, 1, 0, PROBE_UNICAST)
    with pytest.raises(ValueError):
        encode_echo(Family.INET, 1, 1, 0, 1 << 32)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("probe_type", [PROBE_UNICAST, PROBE_MULTICAST, PROBE_RTT])
@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_LL)])
def test_round_trip(family: Family, source: IPAddress, probe_type: int) -> None:
    request = encode_echo(family, 0x2A03, 0xFFFF, 0xFFFFFFFF, probe_type)
    reply = decode_echo_reply(family, reply_from(request, family=family), source)
    assert reply == EchoReply(
        ident=0x2A03, seq=0xFFFF, timestamp_ms=0xFFFFFFFF, probe_type=probe_type, source=source
    )


def test_ipv4_header_length_comes_from_ihl() -> None:
    request = encode_echo(Family.INET, 9, 3, 77, PROBE_UNICAST)
    body = reply_from(request, family=Family.INET)[20:]
    packet = ipv4_header(len(body), ihl=15) + body  # 60-byte header with options
    assert decode_echo_reply(Family.INET, packet, ROUTER4) == EchoReply(9, 3, 77, PROBE_UNICAST, ROUTER4)


def test_longer_reply_is_fine() -> None:
    request = encode_echo(Family.INET6, 9, 3, 77, PROBE_UNICAST) + b"padding"
    assert isinstance(
        decode_echo_reply(Family.INET6, reply_from(request, family=Family.INET6), ROUTER6_LL), EchoReply
    )


# ------------------------------------------------------- silently ignored input
@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x45",
        ipv4_header(0)[:19],  # shorter than an IP header
        ipv4_header(4) + b"\0\0\0\0",  # shorter than an ICMP header
        b"\x60" + ipv4_header(8)[1:] + b"\0" * 8,  # not IPv4 at all
        b"\x44" + ipv4_header(8)[1:] + b"\0" * 8,  # IHL below 5
        ipv4_header(8, ihl=15)[:40],  # IHL says 60, packet ends before
    ],
)
def test_ipv4_garbage_is_ignored(packet: bytes) -> None:
    assert decode_echo_reply(Family.INET, packet, ROUTER4) is None


@pytest.mark.parametrize("icmp_type", [ICMP_ECHO_REQUEST, 3, 11, ICMP6_ECHO_REPLY])
def test_ipv4_other_types_are_ignored(icmp_type: int) -> None:
    request = encode_echo(Family.INET, 1, 1, 1, PROBE_UNICAST)
    packet = reply_from(request, family=Family.INET, icmp_type=icmp_type, code=5)
    assert decode_echo_reply(Family.INET, packet, ROUTER4) is None


@pytest.mark.parametrize("icmp_type", [ICMP6_ECHO_REQUEST, 1, 136, ICMP_ECHO_REPLY])
def test_ipv6_other_types_are_ignored(icmp_type: int) -> None:
    request = encode_echo(Family.INET6, 1, 1, 1, PROBE_UNICAST)
    packet = reply_from(request, family=Family.INET6, icmp_type=icmp_type, code=5)
    assert decode_echo_reply(Family.INET6, packet, ROUTER6_GLOBAL) is None


def test_ipv6_shorter_than_icmp_header_is_ignored() -> None:
    assert decode_echo_reply(Family.INET6, bytes([ICMP6_ECHO_REPLY, 0, 0, 0, 0, 1, 0]), ROUTER6_LL) is None


@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_GLOBAL)])
def test_other_ident_is_ignored_before_any_other_check(family: Family, source: IPAddress) -> None:
    # Solaris compares the id first: a broken reply to someone else's ping
    # (here: bad code, too short, and for IPv6 not link-local) is not ours.
    request = encode_echo(family, 0x0101, 1, 1, PROBE_UNICAST)[:10]
    packet = reply_from(request, family=family, code=3)
    assert decode_echo_reply(family, packet, source, ident=0x0102) is None
    assert isinstance(decode_echo_reply(family, packet, source, ident=0x0101), BadReply)
    assert isinstance(decode_echo_reply(family, packet, source), BadReply)


def test_matching_ident_passes() -> None:
    request = encode_echo(Family.INET, 0x0101, 1, 1, PROBE_UNICAST)
    reply = decode_echo_reply(Family.INET, reply_from(request, family=Family.INET), ROUTER4, ident=0x0101)
    assert isinstance(reply, EchoReply)


# ----------------------------------------------------------- Solaris messages
def test_ipv4_bad_code() -> None:
    request = encode_echo(Family.INET, 1, 1, 1, PROBE_UNICAST)
    bad = decode_echo_reply(Family.INET, reply_from(request, family=Family.INET, code=3), ROUTER4)
    assert bad == BadReply("probe reply code %d from %s on %s", (3, "192.0.2.1"))
    assert isinstance(bad, BadReply)
    assert bad.message("nic0") == "probe reply code 3 from 192.0.2.1 on nic0"


def test_ipv6_bad_code_has_the_colon_of_in6_data() -> None:
    request = encode_echo(Family.INET6, 1, 1, 1, PROBE_UNICAST)
    bad = decode_echo_reply(Family.INET6, reply_from(request, family=Family.INET6, code=1), ROUTER6_LL)
    assert isinstance(bad, BadReply)
    assert bad.message("nic1") == "probe reply code: 1 from fe80::ff:fe00:201 on nic1"


@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_LL)])
@pytest.mark.parametrize("length", [8, 12, 15])
def test_too_short(family: Family, source: IPAddress, length: int) -> None:
    request = encode_echo(family, 1, 1, 1, PROBE_UNICAST)[:length]
    bad = decode_echo_reply(family, reply_from(request, family=family), source)
    assert isinstance(bad, BadReply)
    assert bad.message("nic0") == f"probe reply too short: {length} bytes from {source} on nic0"


def test_code_is_checked_before_length() -> None:
    request = encode_echo(Family.INET, 1, 1, 1, PROBE_UNICAST)[:8]
    bad = decode_echo_reply(Family.INET, reply_from(request, family=Family.INET, code=2), ROUTER4)
    assert isinstance(bad, BadReply)
    assert bad.reason_format.startswith("probe reply code")


@pytest.mark.parametrize(
    ("probe_type", "printed"), [(0, 0), (0x1235, 0x1235), (0xFFFFFFFF, -1), (0x80000000, -(2**31))]
)
@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_LL)])
def test_unknown_probe_type(family: Family, source: IPAddress, probe_type: int, printed: int) -> None:
    request = encode_echo(family, 1, 1, 1, probe_type)
    bad = decode_echo_reply(family, reply_from(request, family=family), source)
    assert isinstance(bad, BadReply)
    # %d of a 32-bit word, as Solaris prints it.
    assert bad.message("nic0") == f"probe reply type: {printed} from {source} on nic0"


def test_ipv6_source_must_be_link_local() -> None:
    request = encode_echo(Family.INET6, 1, 1, 1, PROBE_UNICAST)
    packet = reply_from(request, family=Family.INET6)
    bad = decode_echo_reply(Family.INET6, packet, ROUTER6_GLOBAL)
    assert bad == BadReply("ICMPv6 echo reply source address not linklocal from %s on %s", ("2001:db8::1",))
    assert isinstance(bad, BadReply)
    assert bad.message("nic0") == "ICMPv6 echo reply source address not linklocal from 2001:db8::1 on nic0"
    # ...and that check comes before the code check, as in in6_data().
    coded = decode_echo_reply(Family.INET6, reply_from(request, family=Family.INET6, code=4), ROUTER6_GLOBAL)
    assert isinstance(coded, BadReply) and coded.reason_format.startswith("ICMPv6 echo reply source")
    # The check can be switched off for non-link-local test addresses.
    assert decode_echo_reply(Family.INET6, packet, ROUTER6_GLOBAL, require_linklocal=False) == EchoReply(
        1, 1, 1, PROBE_UNICAST, ROUTER6_GLOBAL
    )


def test_scoped_source_prints_without_scope() -> None:
    source = IPv6Address("fe80::1%nic0")
    request = encode_echo(Family.INET6, 1, 1, 1, 0x4242)
    bad = decode_echo_reply(Family.INET6, reply_from(request, family=Family.INET6), source)
    assert isinstance(bad, BadReply)
    assert bad.message("nic0") == f"probe reply type: {0x4242} from fe80::1 on nic0"


# ---------------------------------------------------------------- ICMP6 filter
def test_icmp6_filter_passes_only_echo_reply() -> None:
    words = struct.unpack("=8I", icmp_filter_block_all_but(ICMP6_ECHO_REPLY))
    blocked = {t for t in range(256) if words[t >> 5] & (1 << (t & 31))}
    assert blocked == set(range(256)) - {ICMP6_ECHO_REPLY}
