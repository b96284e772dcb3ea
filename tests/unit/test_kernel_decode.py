"""ipmp.kernel.decode on hand-made rtnetlink messages: the one decoder of the dump and the events.

The bytes are laid out here as the kernel sends them (``<linux/netlink.h>``,
``<linux/rtnetlink.h>``), so that the decoder is held to the ABI and not to
itself; the netns tests hold it to a real kernel.
"""

from __future__ import annotations

import struct
from ipaddress import ip_interface

from ipmp.kernel.decode import (
    IFF_LOWER_UP,
    IFF_UP,
    address,
    dump_messages,
    events,
    link,
)
from ipmp.model import Family

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR = 16, 17, 20
NLMSG_DONE, NLMSG_ERROR = 3, 2
NLA_F_NESTED = 0x8000


def rta(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + bytes(-size % 4)


def message(kind: int, body: bytes, seq: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body + bytes(-len(body) % 4)


def ifinfomsg(index: int, flags: int, *attrs: bytes) -> bytes:
    return struct.pack("=BxHiII", 0, 1, index, flags, 0) + b"".join(attrs)


def test_events_name_the_link_as_the_dump_does() -> None:
    # The name after other attributes, one of them nested: it is found by
    # type, as in a dump, not by position.
    linkinfo = rta(NLA_F_NESTED | 18, rta(1, b"veth\0"))
    up = message(RTM_NEWLINK, ifinfomsg(7, IFF_UP | IFF_LOWER_UP, rta(4, struct.pack("=I", 1500)), linkinfo,
                                        rta(3, b"nic0\0")))
    gone = message(RTM_DELLINK, ifinfomsg(8, IFF_UP))
    links, changed = events(up + gone)
    assert [(e.index, e.name, e.up, e.gone) for e in links] == [(7, "nic0", True, False),
                                                                (8, "", False, True)]
    assert changed is False
    dumped, end = dump_messages(up + message(NLMSG_DONE, b""), 0, "link")
    assert end == 0
    assert [(k.name, k.index, k.up, k.running, k.mtu, k.kind) for k in map(link, dumped)] == [
        ("nic0", 7, True, True, 1500, "veth")]


def test_anything_but_a_link_message_only_says_something_changed() -> None:
    addr = message(RTM_NEWADDR, struct.pack("=BBBBI", 2, 24, 0, 0, 7))
    assert events(addr) == ([], True)
    # Admin up without carrier is not up; a truncated link message is a change.
    links, changed = events(message(RTM_NEWLINK, ifinfomsg(9, IFF_UP, rta(3, b"nic1\0")))
                            + message(RTM_NEWLINK, b"\0" * 8))
    assert [(e.name, e.up) for e in links] == [("nic1", False)] and changed is True


def test_a_dump_keeps_its_own_answers_and_stops_at_done_or_error() -> None:
    body = struct.pack("=BBBBI", 2, 24, 0x80, 0, 7) + rta(1, bytes((192, 0, 2, 10))) + rta(3, b"nic0:1\0")
    mine, late = message(RTM_NEWADDR, body, seq=5), message(RTM_NEWADDR, body, seq=4)
    found, end = dump_messages(late + mine, 5, "addr")
    assert end is None and len(found) == 1
    a = address(found[0], "nic0", Family.INET)
    assert (a.address, a.label, a.deprecated, a.kernel_owned) == (ip_interface("192.0.2.10/24"), "nic0:1",
                                                                  False, False)
    assert dump_messages(message(NLMSG_ERROR, struct.pack("=i", -95), seq=5), 5, "addr") == ([], 95)
    assert dump_messages(message(NLMSG_DONE, b"\0" * 4, seq=5), 5, "addr") == ([], 0)
