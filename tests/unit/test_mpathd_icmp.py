"""The probe codec: packet layout, checksum, every reply check of in.mpathd, and the token.

The token and the random id are ours (issue 20; the ``icmp`` module says
why): a reply must bring back the token of the probe it answers, and each
probe socket gets a random id instead of illumos's ``(pid << 8) | ifindex``.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from ipaddress import IPv4Address, IPv6Address

import pytest

from ipmp.model import Family, IPAddress
from ipmp.mpathd.icmp import (
    ICMP6_ECHO_REPLY,
    ICMP6_ECHO_REQUEST,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    PR_ICMP_LEN,
    PROBE_LEN,
    PROBE_MULTICAST,
    PROBE_RTT,
    PROBE_UNICAST,
    SECRET_LEN,
    TOKEN_LEN,
    BadReply,
    EchoReply,
    ProbeKey,
    decode_echo_reply,
    encode_echo,
    icmp_checksum,
    icmp_filter_block_all_but,
    new_probe_key,
)

ROUTER4 = IPv4Address("192.0.2.1")
ROUTER6_LL = IPv6Address("fe80::ff:fe00:201")
ROUTER6_GLOBAL = IPv6Address("2001:db8::1")


def key(ident: int = 1, fill: int = 7) -> ProbeKey:
    """A fixed key (tests only: the daemon's come from ``new_probe_key``)."""
    return ProbeKey(ident, bytes([fill]) * SECRET_LEN)


K = key(0x0102)


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
    assert PR_ICMP_LEN == 16  # sizeof (struct pr_icmp)
    assert PROBE_LEN == PR_ICMP_LEN + TOKEN_LEN == 24


def test_ipv4_echo_layout_and_checksum() -> None:
    packet = encode_echo(Family.INET, K, 7, 0x11223344, PROBE_UNICAST)
    assert len(packet) == PROBE_LEN
    icmp_type, code, csum, ident, seq, stamp, ptype = struct.unpack_from("!BBHHHII", packet)
    assert (icmp_type, code, ident, seq, stamp, ptype) == (
        ICMP_ECHO_REQUEST,
        0,
        0x0102,
        7,
        0x11223344,
        0x1234,
    )
    # The Solaris payload, then the token of exactly these fields.
    assert packet[PR_ICMP_LEN:] == K.token(7, 0x11223344, PROBE_UNICAST)
    assert csum != 0
    # A correct Internet checksum makes the whole message (token included) sum to 0xffff.
    assert icmp_checksum(packet) == 0
    zeroed = packet[:2] + b"\0\0" + packet[4:]
    assert icmp_checksum(zeroed) == csum


def test_ipv4_checksum_known_value() -> None:
    # Worked by hand over the Solaris part: 0800 + 0102 + 0007 + 1122 + 3344
    # + 0000 + 1234 = 5fa3; the token words are added to that.
    packet = encode_echo(Family.INET, K, 7, 0x11223344, PROBE_UNICAST)
    token_sum = sum(struct.unpack("!4H", packet[16:]))
    total = 0x5FA3 + token_sum
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    assert packet[:16].hex() == f"0800{~total & 0xFFFF:04x}010200071122334400001234"


def test_ipv6_echo_leaves_checksum_to_the_kernel() -> None:
    k = key(0xABCD)
    packet = encode_echo(Family.INET6, k, 1, 5, PROBE_MULTICAST)
    header = struct.pack("!BBHHHII", ICMP6_ECHO_REQUEST, 0, 0, 0xABCD, 1, 5, PROBE_MULTICAST)
    assert packet == header + k.token(1, 5, PROBE_MULTICAST)


def test_checksum_of_odd_length() -> None:
    assert icmp_checksum(b"\x01") == ~0x0100 & 0xFFFF
    assert icmp_checksum(b"") == 0xFFFF


def test_counters_wrap_and_fields_are_checked() -> None:
    k = key(1)
    packet = encode_echo(Family.INET6, k, 0x10001, 0x1_0000_0005, PROBE_RTT)
    assert struct.unpack("!HI", packet[6:12]) == (1, 5)
    # The token is made over the wrapped values, so the reply checks out.
    reply = decode_echo_reply(Family.INET6, reply_from(packet, family=Family.INET6), ROUTER6_LL, key=k)
    assert reply == EchoReply(1, 1, 5, PROBE_RTT, ROUTER6_LL)
    with pytest.raises(ValueError):
        ProbeKey(0x10000, bytes(SECRET_LEN))
    with pytest.raises(ValueError):
        ProbeKey(-1, bytes(SECRET_LEN))
    with pytest.raises(ValueError):
        ProbeKey(1, bytes(SECRET_LEN - 1))  # a short secret is a guessable one
    with pytest.raises(ValueError):
        encode_echo(Family.INET, k, 1, 0, 1 << 32)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("probe_type", [PROBE_UNICAST, PROBE_MULTICAST, PROBE_RTT])
@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_LL)])
def test_round_trip(family: Family, source: IPAddress, probe_type: int) -> None:
    k = key(0x2A03)
    request = encode_echo(family, k, 0xFFFF, 0xFFFFFFFF, probe_type)
    expected = EchoReply(
        ident=0x2A03, seq=0xFFFF, timestamp_ms=0xFFFFFFFF, probe_type=probe_type, source=source
    )
    assert decode_echo_reply(family, reply_from(request, family=family), source, key=k) == expected
    reply = decode_echo_reply(family, reply_from(request, family=family), source)
    assert reply == EchoReply(
        ident=0x2A03, seq=0xFFFF, timestamp_ms=0xFFFFFFFF, probe_type=probe_type, source=source
    )


def test_ipv4_header_length_comes_from_ihl() -> None:
    k = key(9)
    request = encode_echo(Family.INET, k, 3, 77, PROBE_UNICAST)
    body = reply_from(request, family=Family.INET)[20:]
    packet = ipv4_header(len(body), ihl=15) + body  # 60-byte header with options
    reply = decode_echo_reply(Family.INET, packet, ROUTER4, key=k)
    assert reply == EchoReply(9, 3, 77, PROBE_UNICAST, ROUTER4)


def test_longer_reply_is_fine() -> None:
    k = key(9)
    request = encode_echo(Family.INET6, k, 3, 77, PROBE_UNICAST) + b"padding"
    reply = decode_echo_reply(Family.INET6, reply_from(request, family=Family.INET6), ROUTER6_LL, key=k)
    assert isinstance(reply, EchoReply)


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
    request = encode_echo(Family.INET, key(1), 1, 1, PROBE_UNICAST)
    packet = reply_from(request, family=Family.INET, icmp_type=icmp_type, code=5)
    assert decode_echo_reply(Family.INET, packet, ROUTER4) is None


@pytest.mark.parametrize("icmp_type", [ICMP6_ECHO_REQUEST, 1, 136, ICMP_ECHO_REPLY])
def test_ipv6_other_types_are_ignored(icmp_type: int) -> None:
    request = encode_echo(Family.INET6, key(1), 1, 1, PROBE_UNICAST)
    packet = reply_from(request, family=Family.INET6, icmp_type=icmp_type, code=5)
    assert decode_echo_reply(Family.INET6, packet, ROUTER6_GLOBAL) is None


def test_ipv6_shorter_than_icmp_header_is_ignored() -> None:
    assert decode_echo_reply(Family.INET6, bytes([ICMP6_ECHO_REPLY, 0, 0, 0, 0, 1, 0]), ROUTER6_LL) is None


@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_GLOBAL)])
def test_other_ident_is_ignored_before_any_other_check(family: Family, source: IPAddress) -> None:
    # Solaris compares the id first: a broken reply to someone else's ping
    # (here: bad code, too short, and for IPv6 not link-local) is not ours.
    request = encode_echo(family, key(0x0101), 1, 1, PROBE_UNICAST)[:10]
    packet = reply_from(request, family=family, code=3)
    assert decode_echo_reply(family, packet, source, key=key(0x0102)) is None
    assert isinstance(decode_echo_reply(family, packet, source, key=key(0x0101)), BadReply)
    assert isinstance(decode_echo_reply(family, packet, source), BadReply)


def test_matching_ident_passes() -> None:
    request = encode_echo(Family.INET, key(0x0101), 1, 1, PROBE_UNICAST)
    reply = decode_echo_reply(Family.INET, reply_from(request, family=Family.INET), ROUTER4, key=key(0x0101))
    assert isinstance(reply, EchoReply)


# ----------------------------------------------------------- Solaris messages
def test_ipv4_bad_code() -> None:
    request = encode_echo(Family.INET, key(1), 1, 1, PROBE_UNICAST)
    bad = decode_echo_reply(Family.INET, reply_from(request, family=Family.INET, code=3), ROUTER4)
    assert bad == BadReply("probe reply code %d from %s on %s", (3, "192.0.2.1"))
    assert isinstance(bad, BadReply)
    assert bad.message("nic0") == "probe reply code 3 from 192.0.2.1 on nic0"


def test_ipv6_bad_code_has_the_colon_of_in6_data() -> None:
    request = encode_echo(Family.INET6, key(1), 1, 1, PROBE_UNICAST)
    bad = decode_echo_reply(Family.INET6, reply_from(request, family=Family.INET6, code=1), ROUTER6_LL)
    assert isinstance(bad, BadReply)
    assert bad.message("nic1") == "probe reply code: 1 from fe80::ff:fe00:201 on nic1"


@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_LL)])
@pytest.mark.parametrize("length", [8, 12, 15])
def test_too_short(family: Family, source: IPAddress, length: int) -> None:
    request = encode_echo(family, key(1), 1, 1, PROBE_UNICAST)[:length]
    bad = decode_echo_reply(family, reply_from(request, family=family), source)
    assert isinstance(bad, BadReply)
    assert bad.message("nic0") == f"probe reply too short: {length} bytes from {source} on nic0"


def test_code_is_checked_before_length() -> None:
    request = encode_echo(Family.INET, key(1), 1, 1, PROBE_UNICAST)[:8]
    bad = decode_echo_reply(Family.INET, reply_from(request, family=Family.INET, code=2), ROUTER4)
    assert isinstance(bad, BadReply)
    assert bad.reason_format.startswith("probe reply code")


@pytest.mark.parametrize(
    ("probe_type", "printed"), [(0, 0), (0x1235, 0x1235), (0xFFFFFFFF, -1), (0x80000000, -(2**31))]
)
@pytest.mark.parametrize(("family", "source"), [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_LL)])
def test_unknown_probe_type(family: Family, source: IPAddress, probe_type: int, printed: int) -> None:
    request = encode_echo(family, key(1), 1, 1, probe_type)
    bad = decode_echo_reply(family, reply_from(request, family=family), source)
    assert isinstance(bad, BadReply)
    # %d of a 32-bit word, as Solaris prints it.
    assert bad.message("nic0") == f"probe reply type: {printed} from {source} on nic0"


def test_ipv6_source_must_be_link_local() -> None:
    request = encode_echo(Family.INET6, key(1), 1, 1, PROBE_UNICAST)
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
    request = encode_echo(Family.INET6, key(1), 1, 1, 0x4242)
    bad = decode_echo_reply(Family.INET6, reply_from(request, family=Family.INET6), source)
    assert isinstance(bad, BadReply)
    assert bad.message("nic0") == f"probe reply type: {0x4242} from fe80::1 on nic0"


# ------------------------------------------------------- the token (issue 20)
def _forged(family: Family, ident: int, seq: int, stamp: int, probe_type: int, tail: bytes) -> bytes:
    """An echo reply built by someone without the key: the Solaris payload and ``tail``."""
    icmp_type = ICMP_ECHO_REPLY if family is Family.INET else ICMP6_ECHO_REPLY
    body = struct.pack("!BBHHHII", icmp_type, 0, 0, ident, seq, stamp, probe_type) + tail
    if family is Family.INET:
        body = body[:2] + struct.pack("!H", icmp_checksum(body)) + body[4:]
        return ipv4_header(len(body)) + body
    return body


FAMILIES = [(Family.INET, ROUTER4), (Family.INET6, ROUTER6_LL)]


@pytest.mark.parametrize(("family", "source"), FAMILIES)
def test_reply_without_the_right_token_is_not_a_reply(family: Family, source: IPAddress) -> None:
    """A forger who knows the id and the sequence number still cannot make a reply."""
    good = reply_from(encode_echo(family, K, 40, 1000, PROBE_UNICAST), family=family)
    assert decode_echo_reply(family, good, source, key=K) == EchoReply(0x0102, 40, 1000, PROBE_UNICAST,
                                                                       source)
    token = K.token(40, 1000, PROBE_UNICAST)
    forgeries = {
        # What illumos sends, and what a forger of the old scheme sends: no token at all.
        "no token": _forged(family, K.ident, 40, 1000, PROBE_UNICAST, b""),
        "zero token": _forged(family, K.ident, 40, 1000, PROBE_UNICAST, bytes(TOKEN_LEN)),
        "token one byte short": _forged(family, K.ident, 40, 1000, PROBE_UNICAST, token[:-1]),
        "one bit off": _forged(family, K.ident, 40, 1000, PROBE_UNICAST, bytes([token[0] ^ 1]) + token[1:]),
        # Another socket's key with the same id (e.g. a daemon before a restart).
        "other secret": _forged(family, K.ident, 40, 1000, PROBE_UNICAST,
                                key(K.ident, fill=8).token(40, 1000, PROBE_UNICAST)),
        # A token seen on one probe (a multicast probe reaches every host)
        # does not fit a reply naming another sequence number, time or type.
        "token of seq 39": _forged(family, K.ident, 40, 1000, PROBE_UNICAST,
                                   K.token(39, 1000, PROBE_UNICAST)),
        "token of another time": _forged(family, K.ident, 40, 1000, PROBE_UNICAST,
                                         K.token(40, 999, PROBE_UNICAST)),
        "token of a multicast probe": _forged(family, K.ident, 40, 1000, PROBE_UNICAST,
                                              K.token(40, 1000, PROBE_MULTICAST)),
    }
    for what, packet in forgeries.items():
        assert decode_echo_reply(family, packet, source, key=K) is None, what
        # Without a key the decoder is Solaris's: it would have believed it.
        assert isinstance(decode_echo_reply(family, packet, source), EchoReply), what


@pytest.mark.parametrize(("family", "source"), FAMILIES)
def test_solaris_messages_still_come_for_replies_with_our_id(family: Family, source: IPAddress) -> None:
    # The token is checked after Solaris's checks, so its messages stay.
    request = encode_echo(family, K, 1, 1, PROBE_UNICAST)
    coded = decode_echo_reply(family, reply_from(request, family=family, code=3), source, key=K)
    assert isinstance(coded, BadReply) and coded.reason_format.startswith("probe reply code")
    short = decode_echo_reply(family, reply_from(request[:12], family=family), source, key=K)
    assert isinstance(short, BadReply) and short.message("nic0").startswith("probe reply too short: 12 bytes")
    odd_type = _forged(family, K.ident, 1, 1, 0x4242, K.token(1, 1, PROBE_UNICAST))
    bad_type = decode_echo_reply(family, odd_type, source, key=K)
    assert isinstance(bad_type, BadReply) and bad_type.reason_format.startswith("probe reply type")


def test_probe_key_never_shows_its_secret() -> None:
    k = ProbeKey(5, b"\xab" * SECRET_LEN)
    assert "ab" not in repr(k) and "secret" not in repr(k)
    assert repr(k) == "ProbeKey(ident=5)"


def test_new_probe_keys_are_random_and_unique_among_the_daemons_sockets() -> None:
    keys = [new_probe_key() for _ in range(64)]
    # illumos would give one id for every socket of one NIC and one pid.
    assert len({k.ident for k in keys}) >= 56
    assert len({k.secret for k in keys}) == 64
    assert all(len(k.secret) == SECRET_LEN for k in keys)
    # Ids in use by the daemon's other sockets are never handed out again.
    free = 0xBEEF
    taken = set(range(0x10000)) - {free}
    assert {new_probe_key(taken).ident for _ in range(5)} == {free}
    with pytest.raises(ValueError):
        new_probe_key(set(range(0x10000)))


def test_ids_differ_between_runs() -> None:
    """Two daemons (processes) draw different ids; illumos's depend on pid and ifindex only."""
    code = ("import json; from ipmp.mpathd.icmp import new_probe_key; "
            "print(json.dumps([new_probe_key().ident for _ in range(8)]))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs[0] != runs[1]


# ---------------------------------------------------------------- ICMP6 filter
def test_icmp6_filter_passes_only_echo_reply() -> None:
    words = struct.unpack("=8I", icmp_filter_block_all_but(ICMP6_ECHO_REPLY))
    blocked = {t for t in range(256) if words[t >> 5] & (1 << (t & 31))}
    assert blocked == set(range(256)) - {ICMP6_ECHO_REPLY}
