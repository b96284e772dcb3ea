"""What the per-probe and per-move paths of in.mpathd keep instead of recomputing, held to the original.

Each shortcut (a remembered token, an incrementally kept run of losses, a
cached probe interval, a checksum by big-integer remainder, rtnetlink
requests built by hand) is compared with the straightforward computation it
replaces, over generated inputs.
"""

from __future__ import annotations

import hashlib
import random
import struct
from ipaddress import IPv4Address, ip_address, ip_interface, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmp.kernel import request
from ipmp.kernel.request import decode_ack, encode_request
from ipmp.linux.ops import AddAddress, AddRoute, AddRule, DelAddress, DelRoute, DelRule, Op, SetSysctl
from ipmp.model import Family, KAddress, KRoute, KRule
from ipmp.mpathd import icmp
from ipmp.mpathd.phyint import FDT_DIVISOR, Group
from ipmp.mpathd.probe import PROBE_STATS_COUNT, Instance, SlotStatus, Target


def _rfc1071(data: bytes) -> int:
    """The Internet checksum word by word, as RFC 1071 writes it."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=96))
def test_the_checksum_by_remainder_is_rfc_1071s(data: bytes) -> None:
    assert icmp.icmp_checksum(data) == _rfc1071(data)


def test_the_checksum_edge_cases_of_the_remainder() -> None:
    # All-zero words sum to 0; non-zero words summing to 0 modulo 0xFFFF sum to 0xFFFF.
    for data in (b"", b"\0\0", b"\xff\xff", b"\xff\xff\xff\xff", b"\x80\x00\x7f\xff", b"\x01"):
        assert icmp.icmp_checksum(data) == _rfc1071(data), data


@given(st.integers(0, 0x1FFFF), st.integers(0, 0x1_FFFF_FFFF),
       st.sampled_from(sorted(icmp._KNOWN_PROBE_TYPES)))
def test_a_remembered_token_is_the_keyed_hash_of_its_fields(seq: int, stamp: int, probe_type: int) -> None:
    key = icmp.ProbeKey(0x1234, bytes(range(icmp.SECRET_LEN)))
    signed = struct.pack("!HHII", key.ident, seq & 0xFFFF, stamp & 0xFFFFFFFF, probe_type)
    expected = hashlib.blake2b(signed, digest_size=icmp.TOKEN_LEN, key=key.secret).digest()
    assert key.token(seq, stamp, probe_type) == expected
    assert key.token(seq, stamp, probe_type) == expected  # from memory this time


def test_the_token_memory_is_bounded_and_forgets_nothing_it_needs() -> None:
    """Anyone may send replies carrying our fields: the memory never grows past its bound."""
    key = icmp.new_probe_key()
    first = key.token(1, 2, icmp.PROBE_UNICAST)
    for seq in range(10 * icmp._TOKEN_MEMORY):
        key.token(seq, seq, icmp.PROBE_UNICAST)
        assert len(key._recent) <= icmp._TOKEN_MEMORY
    assert key.token(1, 2, icmp.PROBE_UNICAST) == first  # computed again, the same
    assert key == icmp.ProbeKey(key.ident, key.secret)  # the memory is not part of the key


# -- the run of losses, kept as the slots change -------------------------------------

_OPS = st.lists(st.tuples(st.sampled_from(["probe", "ack", "late", "expire", "fake", "clear"]),
                          st.integers(0, 3)), max_size=400)


@settings(max_examples=300)
@given(_OPS, st.integers(0, 0xFFFF))
def test_the_kept_run_of_losses_is_the_walked_one(ops: list[tuple[str, int]], first: int) -> None:
    routers = [IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")]
    inst = Instance(IPv4Address("192.0.2.10"), created_at=0.0, snxt=first,
                    targets=[Target(r, True) for r in routers])
    rng = random.Random(7)
    now = 0.0
    inst.start(now, 0.1, rng)
    for op, arg in ops:
        now += 0.05
        if op == "probe":
            inst.next_probe(now, 0.1, 0.1, rng)
        elif op == "ack" and inst.order:
            seq = inst.order[-1 - min(arg, len(inst.order) - 1)]
            inst.on_reply(seq, inst.history[seq].target, now)
        elif op == "late":
            lost = [s for s in inst.order if inst.history[s].status is SlotStatus.LOST]
            if lost:
                seq = lost[arg % len(lost)]
                inst.on_reply(seq, inst.history[seq].target, now)
        elif op == "expire":
            inst.expire(now + arg, 0.1)
        elif op == "fake" and inst.order:
            inst.on_reply(inst.order[-1], IPv4Address("198.51.100.7"), now)
        elif op == "clear" and arg == 0:
            inst.clear_history()
        assert inst.consecutive_losses() == inst._count_losses(), (op, arg)
        assert len(inst.order) <= PROBE_STATS_COUNT


def test_a_long_run_of_losses_shortens_as_its_oldest_slots_leave_the_history() -> None:
    inst = Instance(IPv4Address("192.0.2.10"), created_at=0.0,
                    targets=[Target(IPv4Address("192.0.2.1"), True)])
    rng = random.Random(1)
    inst.start(0.0, 0.1, rng)
    inst.next_probe(0.0, 0.1, 0.1, rng)
    inst.on_reply(inst.order[-1], IPv4Address("192.0.2.1"), 0.01)  # one acknowledged, then none
    for k in range(1, 3 * PROBE_STATS_COUNT):
        inst.next_probe(k * 0.1, 0.1, 0.1, rng)
        assert inst.consecutive_losses() == inst._count_losses()
    assert inst.consecutive_losses() == PROBE_STATS_COUNT - 2  # the window, less the two pending


@given(st.integers(1, 10**6))
def test_the_kept_probe_interval_follows_the_fdt(fdt_ms: int) -> None:
    grp = Group("prod", 1000)
    assert grp.interval == (1000 // FDT_DIVISOR) / 1000.0
    grp.fdt_ms = fdt_ms
    assert grp.interval == (fdt_ms // FDT_DIVISOR) / 1000.0


# -- rtnetlink requests and answers, by hand ---------------------------------------------


def _attrs(body: bytes, header: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    offset = header
    while offset + 4 <= len(body):
        length, kind = struct.unpack_from("=HH", body, offset)
        out[kind] = body[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def test_requests_carry_the_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """The attributes the kernel reads, byte for byte (the netns tests compare with iproute2)."""
    monkeypatch.setattr(request, "ifindex", {"nic0": 7}.__getitem__)  # no such link here
    a = KAddress("nic0", ip_interface("192.0.2.100/24"), label="nic0:1", broadcast=IPv4Address("192.0.2.255"),
                 deprecated=True)
    kind, flags, body = _request(AddAddress(a))
    assert (kind, flags) == (20, 0x605)
    family, prefix, _flags, _scope, index = struct.unpack_from("=BBBBI", body)
    assert (family, prefix, index) == (2, 24, 7)
    attrs = _attrs(body, 8)
    assert attrs[1] == attrs[2] == ip_address("192.0.2.100").packed
    assert attrs[3] == b"nic0:1\0" and attrs[4] == ip_address("192.0.2.255").packed
    assert struct.unpack("=I", attrs[8]) == (0x200,)  # noprefixroute
    assert struct.unpack("=IIII", attrs[6])[:2] == (0, 0xFFFFFFFF)  # preferred 0: deprecated
    kind, flags, body = _request(DelAddress(a))
    assert (kind, flags) == (21, 0x5) and set(_attrs(body, 8)) == {1, 2}

    r = KRoute(Family.INET6, 1007, ip_network("::/0"), "nic0", gateway=ip_address("2001:db8::1"), mtu=1280)
    kind, flags, body = _request(AddRoute(r))
    assert (kind, flags) == (24, 0x605)
    assert body[4:8] == bytes((254, 73, 0, 1))  # table (RTA_TABLE has 1007), proto, scope, unicast
    attrs = _attrs(body, 12)
    assert struct.unpack("=I", attrs[15]) == (1007,) and struct.unpack("=I", attrs[6]) == (1024,)
    assert attrs[8] == struct.pack("=HHI", 8, 2, 1280) and 1 not in attrs
    kind, flags, body = _request(DelRoute(r))
    assert (kind, flags) == (25, 0x5) and body[6:8] == bytes((255, 0))  # any scope, any type

    rule = KRule(Family.INET, 200, ip_address("192.0.2.100"), 1007)
    for op, kind_wanted in ((AddRule(rule), 32), (DelRule(rule), 33)):
        kind, flags, body = _request(op)
        assert kind == kind_wanted and body[2] == 32 and body[7] == 1  # /32, to table
        assert _attrs(body, 12)[21] == bytes((73,))
    assert encode_request(SetSysctl("net/ipv4/conf/nic0/rp_filter", "2")) is None


def _request(op: Op) -> tuple[int, int, bytes]:
    request = encode_request(op)
    assert request is not None
    return request


def _ack(seq: int, error: int, *, reason: str = "", capped: bool = True, echoed: bytes = b"") -> bytes:
    """An NLMSG_ERROR answer as the kernel makes it (extended ack TLVs when ``reason``)."""
    request = struct.pack("=IHHII", 16 + len(echoed), 20, 0x605, seq, 0) + (b"" if capped else echoed)
    body = struct.pack("=i", -error) + request
    flags = 0x100 if capped else 0
    if reason:
        text = reason.encode() + b"\0"
        body += struct.pack("=HH", 4 + len(text), 1) + text + bytes(-len(text) % 4)
        flags |= 0x200
    return struct.pack("=IHHII", 16 + len(body), 2, flags, seq, 0) + body


def test_answers_are_read_for_their_request_only() -> None:
    assert decode_ack(_ack(5, 0), 5) == (0, "")
    assert decode_ack(_ack(4, 17), 5) is None  # another request's
    assert decode_ack(_ack(4, 0) + _ack(5, 99, reason="ipv4: Address not found"), 5) == (
        99, "ipv4: Address not found")
    # An older kernel echoes the whole request before the reason.
    uncapped = _ack(6, 101, reason="Nexthop has invalid gateway", capped=False, echoed=bytes(24))
    assert decode_ack(uncapped, 6) == (101, "Nexthop has invalid gateway")
    assert decode_ack(_ack(7, 22), 7) == (22, "")
    assert decode_ack(b"\x00" * 10, 7) is None  # truncated: nothing
