"""rtnetlink messages decoded into ``ipmp.model`` values: the one attribute decoder of the kernel boundary.

The dump (``read``), the answers to requests (``request``) and the multicast
events (``watch``) all take attributes apart with ``attrs`` here: one way to
read a message.  Values are decoded only as far as the converters ask: stats
and most per-family data of a link message are never decoded.

Kernel quirks handled here (each one measured on kernel 6.18):

* A *permanent* deprecated address reports ``ifa_prefered`` as forever in
  ``IFA_CACHEINFO``; only the ``IFA_F_DEPRECATED`` flag tells.
* IPv6 has no route metric 0: the kernel stores 0 as ``IP6_RT_PRIO_USER``
  (1024).  ``route`` maps 1024 back to 0 (and ``request`` sends 0 as 1024),
  so a route read back compares equal to the ``KRoute`` that made it.

Pure module: bytes in, values out; no socket, no clock.  The numbers are the
kernel's ABI (``<linux/*.h>``), written out so that no socket module is needed.

May import: ``ipmp.model``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface, ip_network
from typing import Any, Final

from ipmp.model import Family, IPAddress, KAddress, KLink, KRoute, KRule

# Address families, from <linux/socket.h>.
AF_UNSPEC: Final = 0
AF_INET: Final = 2
AF_INET6: Final = 10
AF: Final = {Family.INET: AF_INET, Family.INET6: AF_INET6}
_FAMILY: Final[dict[int, Family]] = {AF_INET: Family.INET, AF_INET6: Family.INET6}
HOST_PREFIX: Final = {Family.INET: 32, Family.INET6: 128}
_ANY: Final = {Family.INET: "0.0.0.0", Family.INET6: "::"}

# Device flags, from <linux/if.h>.
IFF_UP: Final = 0x1
IFF_LOOPBACK: Final = 0x8
IFF_POINTOPOINT: Final = 0x10
IFF_NOARP: Final = 0x80
IFF_MULTICAST: Final = 0x1000
#: Set only while the device is admin up *and* has carrier (dev_get_flags).
IFF_LOWER_UP: Final = 0x10000

# Address flags, from <linux/if_addr.h>.  The ones above 0xff only travel in
# the IFA_FLAGS attribute, never in the 8-bit ifa_flags header field.
IFA_F_NODAD: Final = 0x02
IFA_F_DADFAILED: Final = 0x08
IFA_F_DEPRECATED: Final = 0x20
IFA_F_TENTATIVE: Final = 0x40
IFA_F_PERMANENT: Final = 0x80
IFA_F_NOPREFIXROUTE: Final = 0x200
#: "forever" in IFA_CACHEINFO lifetimes.
INFINITY_LIFE_TIME: Final = 0xFFFFFFFF

# Route scopes and the IPv6 default metric, from <linux/rtnetlink.h> and
# <net/ip6_route.h>.
RT_SCOPE_UNIVERSE: Final = 0
RT_SCOPE_LINK: Final = 253
RT_SCOPE_HOST: Final = 254
RT_SCOPE_NOWHERE: Final = 255
IP6_RT_PRIO_USER: Final = 1024
#: The kernel's main routing table (``RT_TABLE_MAIN``).
RT_TABLE_MAIN: Final = 254

# Message types and flags, from <linux/netlink.h> and <linux/rtnetlink.h>.
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_ACK: Final = 0x4
NLM_F_DUMP: Final = 0x300
RTM_NEWLINK: Final = 16
RTM_DELLINK: Final = 17
_RTM_GETLINK: Final = 18
_RTM_GETADDR: Final = 22
_RTM_GETROUTE: Final = 26
_RTM_GETRULE: Final = 34

NLMSGHDR: Final = struct.Struct("=IHHII")
RTATTR: Final = struct.Struct("=HH")
U32: Final = struct.Struct("=I")
I32: Final = struct.Struct("=i")
_RTNEXTHOP: Final = struct.Struct("=HBBi")
_NLA_F_MASK: Final = 0x3FFF  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER

#: A message's fixed header: its layout, and the names of its fields in order.
Header = tuple[struct.Struct, tuple[str, ...]]
# ifinfomsg: family, pad, type, index, flags, change.
IFINFOMSG: Final[Header] = (struct.Struct("=BxHiII"), ("family", "type", "index", "flags", "change"))
# ifaddrmsg: family, prefixlen, flags, scope, index.
IFADDRMSG: Final[Header] = (struct.Struct("=BBBBI"), ("family", "prefixlen", "flags", "scope", "index"))
# rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
RTMSG: Final[Header] = (struct.Struct("=BBBBBBBBI"),
                        ("family", "dst_len", "src_len", "tos", "table", "proto", "scope", "type", "flags"))
# fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
FIB_RULE_HDR: Final[Header] = (struct.Struct("=BBBBBBBBI"),
                               ("family", "dst_len", "src_len", "tos", "table", "res1", "res2", "action",
                                "flags"))

Decoder = Callable[[bytes, int], Any]


def asciiz(data: bytes, family: int = AF_UNSPEC) -> str:
    """A NUL-terminated string attribute."""
    return data.split(b"\0", 1)[0].decode(errors="replace")


def _u8(data: bytes, family: int) -> int:
    return data[0]


def _u32(data: bytes, family: int) -> int:
    return int(U32.unpack_from(data)[0])


def _inet(data: bytes, family: int) -> str:
    # The address's length says its family (4 or 16 bytes), as inet_ntop's does.
    return str(ip_address(data))


def _l2addr(data: bytes, family: int) -> str:
    return ":".join(f"{b:02x}" for b in data)


def attrs(data: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """The rtattrs from ``offset`` to ``end`` by type; the first of a type wins."""
    out: dict[int, bytes] = {}
    end = len(data) if end is None else min(end, len(data))
    while offset + 4 <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        out.setdefault(kind & _NLA_F_MASK, data[offset + 4:offset + length])
        offset += (length + 3) & ~3
    return out


def _linkinfo(data: bytes, family: int) -> dict[str, str]:
    kind = attrs(data).get(1)  # IFLA_INFO_KIND
    return {} if kind is None else {"IFLA_INFO_KIND": asciiz(kind, family)}


def _proplist(data: bytes, family: int) -> tuple[str, ...]:
    """IFLA_PROP_LIST: every IFLA_ALT_IFNAME (53) in it, in order (a type that repeats)."""
    names: list[str] = []
    offset = 0
    while offset + 4 <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        if kind & _NLA_F_MASK == 53:
            names.append(asciiz(data[offset + 4:offset + length], family))
        offset += (length + 3) & ~3
    return tuple(names)


def _cacheinfo(data: bytes, family: int) -> dict[str, int]:
    # struct ifa_cacheinfo starts with ifa_prefered (sic), then ifa_valid.
    return {"ifa_preferred": _u32(data, family)}


def _af_spec(data: bytes, family: int) -> tuple[frozenset[Family], IPv6Address | None]:
    """IFLA_AF_SPEC of a link: the families it forwards for, and its IPv6 token.

    Per family a nest: AF_INET's IFLA_INET_CONF (1) is the u32 array of
    ``net.ipv4.conf.IF.*`` from IPV4_DEVCONF_FORWARDING (1) on, so forwarding
    is its first value; AF_INET6's IFLA_INET6_CONF (2) is the s32 array from
    DEVCONF_FORWARDING (0), and IFLA_INET6_TOKEN (7) the token (all zeros:
    none).  A family the link does not have (IPv6 disabled) is simply absent.
    """
    nests = attrs(data)
    forwarding: set[Family] = set()
    token: IPv6Address | None = None
    inet = nests.get(AF_INET)
    conf = attrs(inet).get(1) if inet is not None else None
    if conf is not None and len(conf) >= 4 and U32.unpack_from(conf)[0]:
        forwarding.add(Family.INET)
    inet6 = nests.get(AF_INET6)
    if inet6 is not None:
        fields = attrs(inet6)
        conf = fields.get(2)
        if conf is not None and len(conf) >= 4 and U32.unpack_from(conf)[0]:
            forwarding.add(Family.INET6)
        raw = fields.get(7)
        if raw is not None and len(raw) == 16 and any(raw):
            token = IPv6Address(raw)
    return frozenset(forwarding), token


def _metrics_mtu(data: bytes, family: int) -> int:
    """RTA_METRICS: its RTAX_MTU (2), 0 when the route has none."""
    mtu = attrs(data).get(2)
    return 0 if mtu is None or len(mtu) < 4 else int(U32.unpack_from(mtu)[0])


def _multipath(data: bytes, family: int) -> list[tuple[int, str | None]]:
    """RTA_MULTIPATH: each rtnexthop's ifindex and its nested RTA_GATEWAY (5)."""
    hops: list[tuple[int, str | None]] = []
    offset = 0
    while offset + 8 <= len(data):
        length, _flags, _hops, ifindex = _RTNEXTHOP.unpack_from(data, offset)
        if length < 8:
            break
        gateway = attrs(data, offset + 8, offset + length).get(5)
        hops.append((ifindex, None if gateway is None else _inet(gateway, family)))
        offset += (length + 3) & ~3
    return hops


# Attribute numbers from <linux/if_link.h>, <linux/if_addr.h>,
# <linux/rtnetlink.h> and <linux/fib_rules.h>; only the ones read.
IFLA_IFNAME: Final = 3
_IFLA: Final[dict[str, tuple[int, Decoder]]] = {
    "IFLA_ADDRESS": (1, _l2addr),
    "IFLA_IFNAME": (IFLA_IFNAME, asciiz),
    "IFLA_MTU": (4, _u32),
    "IFLA_LINKINFO": (18, _linkinfo),
    "IFLA_AF_SPEC": (26, _af_spec),
    "IFLA_PROP_LIST": (52, _proplist),
}
_IFA: Final[dict[str, tuple[int, Decoder]]] = {
    "IFA_ADDRESS": (1, _inet),
    "IFA_LOCAL": (2, _inet),
    "IFA_LABEL": (3, asciiz),
    "IFA_BROADCAST": (4, _inet),
    "IFA_CACHEINFO": (6, _cacheinfo),
    "IFA_FLAGS": (8, _u32),
}
_RTA: Final[dict[str, tuple[int, Decoder]]] = {
    "RTA_DST": (1, _inet),
    "RTA_OIF": (4, _u32),
    "RTA_GATEWAY": (5, _inet),
    "RTA_PRIORITY": (6, _u32),
    "RTA_PREFSRC": (7, _inet),
    "RTA_METRICS": (8, _metrics_mtu),
    "RTA_MULTIPATH": (9, _multipath),
    "RTA_TABLE": (15, _u32),
}
_FRA: Final[dict[str, tuple[int, Decoder]]] = {
    "FRA_SRC": (2, _inet),
    "FRA_PRIORITY": (6, _u32),
    "FRA_TABLE": (15, _u32),
    "FRA_PROTOCOL": (21, _u8),
}


class Message:
    """One rtnetlink message: its header fields, and its attributes by name.

    Only the attribute slots are indexed up front; a value is decoded when a
    converter asks for it.
    """

    __slots__ = ("_attrs", "_fields", "_names")

    def __init__(self, fields: dict[str, int], attrs: dict[int, bytes],
                 names: dict[str, tuple[int, Decoder]]) -> None:
        self._fields = fields
        self._attrs = attrs
        self._names = names

    def _value(self, name: str) -> Any:
        number, decode = self._names[name]
        data = self._attrs.get(number)
        return None if data is None else decode(data, self._fields["family"])

    def value(self, name: str) -> Any:
        """An attribute's decoded value (nested ones as dicts, tuples or lists)."""
        return self._value(name)

    def field(self, name: str) -> int:
        return self._fields[name]

    def num(self, name: str, default: int = 0) -> int:
        value = self._value(name)
        return default if value is None else int(value)

    def text(self, name: str) -> str | None:
        value = self._value(name)
        return None if value is None else str(value)

    def ip(self, name: str) -> IPAddress | None:
        value = self._value(name)
        return None if value is None else ip_address(str(value))

    def nested(self, name: str, key: str) -> Any:
        value = self._value(name)
        return None if value is None else value.get(key)


#: The dumps ``read`` asks for: request type, the header of each answer, its attributes.
DUMPS: Final[dict[str, tuple[int, Header, dict[str, tuple[int, Decoder]]]]] = {
    "link": (_RTM_GETLINK, IFINFOMSG, _IFLA),
    "addr": (_RTM_GETADDR, IFADDRMSG, _IFA),
    "route": (_RTM_GETROUTE, RTMSG, _RTA),
    "rule": (_RTM_GETRULE, FIB_RULE_HDR, _FRA),
}


def dump_request(kind: str, seq: int, family: int = AF_UNSPEC) -> bytes:
    """The request of one dump (``link``, ``addr``, ``route``, ``rule``) of ``family``."""
    rtm, (header, _fields), _names = DUMPS[kind]
    body = bytearray(header.size)
    body[0] = family
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), rtm, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def dump_messages(data: bytes, seq: int, kind: str) -> tuple[list[Message], int | None]:
    """The messages of dump ``seq`` in one datagram, and how the dump stands after it.

    Returns:
        The messages, and None while more are to come, else 0 (NLMSG_DONE or
        an ack) or the errno of the kernel's NLMSG_ERROR.  Messages of other
        sequence numbers (a late answer) and short ones are skipped.
    """
    _rtm, (header, fields), names = DUMPS[kind]
    out: list[Message] = []
    offset = 0
    size = len(data)
    while offset + NLMSGHDR.size <= size:
        length, mtype, _flags, mseq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            break
        start, offset = offset + NLMSGHDR.size, offset + ((length + 3) & ~3)
        if mseq != seq:
            continue
        if mtype == NLMSG_DONE:
            return out, 0
        if mtype == NLMSG_ERROR:
            return out, -int(I32.unpack_from(data, start)[0])
        if length - NLMSGHDR.size < header.size:
            continue
        values = dict(zip(fields, header.unpack_from(data, start), strict=True))
        out.append(Message(values, attrs(data, start + header.size, start - NLMSGHDR.size + length), names))
    return out, None


# --------------------------------------------------------------------------
# Messages to ``ipmp.model`` values
# --------------------------------------------------------------------------


def family_of(m: Message) -> Family | None:
    """IPv4 or IPv6; None for the other families a dump may hold (ipmr rules, ...)."""
    return _FAMILY.get(m.field("family"))


def link(m: Message) -> KLink:
    """A link message as a ``KLink``, under its Linux name."""
    flags = m.field("flags")
    kind = m.nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    mac = m.text("IFLA_ADDRESS")
    spec = m.value("IFLA_AF_SPEC")
    forwarding, token = spec if spec is not None else (frozenset(), None)
    return KLink(
        name=m.text("IFLA_IFNAME") or "",
        index=m.field("index"),
        up=bool(flags & IFF_UP),
        running=bool(flags & IFF_LOWER_UP),
        mtu=m.num("IFLA_MTU"),
        mac=None if mac is None else mac.lower(),
        noarp=bool(flags & IFF_NOARP),
        loopback=bool(flags & IFF_LOOPBACK),
        pointopoint=bool(flags & IFF_POINTOPOINT),
        multicast=bool(flags & IFF_MULTICAST),
        kind="" if kind is None else str(kind),
        altnames=_altnames(m),
        forwarding=forwarding,
        token=token,
    )


def _altnames(m: Message) -> tuple[str, ...]:
    """The link's alternative names (IFLA_PROP_LIST / IFLA_ALT_IFNAME, kernel 5.5+)."""
    props = m.value("IFLA_PROP_LIST")
    if props is None:
        return ()
    return tuple(str(name) for name in props)


def address(m: Message, ifname: str, family: Family) -> KAddress:
    """An address message as a ``KAddress`` of link ``ifname``."""
    # IFA_ADDRESS is the peer on a point-to-point address and IFA_LOCAL the
    # local end; otherwise both are the same, or (IPv6) only IFA_ADDRESS.
    remote = m.text("IFA_ADDRESS")
    local = m.text("IFA_LOCAL") or remote
    interface = ip_interface(f"{local}/{m.field('prefixlen')}")
    peer = ip_address(remote) if remote is not None and remote != local else None
    # IFA_FLAGS, when present, is the full 32-bit set; the header keeps 8 bits.
    flags = m.num("IFA_FLAGS", m.field("flags"))
    preferred = m.nested("IFA_CACHEINFO", "ifa_preferred")
    broadcast = m.text("IFA_BROADCAST") if family is Family.INET else None
    kernel_owned = family is Family.INET6 and (
        interface.ip.is_link_local or not flags & IFA_F_PERMANENT
    )
    return KAddress(
        ifname=ifname,
        address=interface,
        label=(m.text("IFA_LABEL") or "") if family is Family.INET else "",
        broadcast=None if broadcast is None else IPv4Address(broadcast),
        peer=peer,
        deprecated=bool(flags & IFA_F_DEPRECATED) or preferred == 0,
        noprefixroute=bool(flags & IFA_F_NOPREFIXROUTE),
        kernel_owned=kernel_owned,
        tentative=bool(flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)),
        dynamic=family is Family.INET and not flags & IFA_F_PERMANENT,
    )


def route(m: Message, family: Family, names: dict[int, str]) -> KRoute:
    """A route message as a ``KRoute``; ``names``: link names by index."""
    dst = m.text("RTA_DST") or _ANY[family]
    metric = m.num("RTA_PRIORITY")
    if family is Family.INET6 and metric == IP6_RT_PRIO_USER:
        metric = 0
    return KRoute(
        family=family,
        # The header's table field is 8 bits; RTA_TABLE has the real id.
        table=m.num("RTA_TABLE", m.field("table")),
        dst=ip_network(f"{dst}/{m.field('dst_len')}"),
        dev=names.get(m.num("RTA_OIF"), ""),
        gateway=m.ip("RTA_GATEWAY"),
        src=m.ip("RTA_PREFSRC"),
        metric=metric,
        mtu=m.num("RTA_METRICS"),
    )


def next_hops6(m: Message, names: dict[int, str]) -> list[tuple[str, IPv6Address]]:
    """The link-local next hops of one IPv6 route, with their outgoing interfaces.

    A route with several routers (``ip -6 route append``, or the kernel's
    merge of equal routes) carries them as RTA_MULTIPATH next hops.
    """
    hops: list[tuple[int, Any]] = []
    multipath = m.value("RTA_MULTIPATH")
    if multipath:
        hops = list(multipath)
    else:
        hops = [(m.num("RTA_OIF"), m.value("RTA_GATEWAY"))]
    out: list[tuple[str, IPv6Address]] = []
    for oif, gateway in hops:
        if gateway is None or oif not in names:
            continue
        hop = ip_address(str(gateway))
        if isinstance(hop, IPv6Address) and hop.is_link_local:
            out.append((names[oif], hop))
    return out


def rule(m: Message, family: Family) -> KRule | None:
    """A rule message as a ``KRule``; None for any other shape than the toolkit's."""
    src = m.ip("FRA_SRC")
    if src is None or m.field("src_len") != HOST_PREFIX[family]:
        # Not of the one shape the toolkit makes ("from <host> lookup <table>").
        return None
    return KRule(
        family=family,
        priority=m.num("FRA_PRIORITY"),
        src=src,
        table=m.num("FRA_TABLE", m.field("table")),
    )


# --------------------------------------------------------------------------
# Multicast events
# --------------------------------------------------------------------------


class LinkEvent:
    """RTM_NEWLINK / RTM_DELLINK: ``up`` is admin up with carrier (IFF_UP and IFF_LOWER_UP)."""

    __slots__ = ("gone", "index", "name", "up")

    def __init__(self, index: int, name: str, up: bool, gone: bool) -> None:
        self.index, self.name, self.up, self.gone = index, name, up, gone


def events(data: bytes) -> tuple[list[LinkEvent], bool]:
    """The messages of one multicast datagram: its link events, and whether anything else changed.

    Anything but a link message (an address, route, rule or a NIC's
    forwarding) only says "something changed": the daemon reads it back.
    """
    header, _fields = IFINFOMSG
    links: list[LinkEvent] = []
    changed = False
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            break
        start, end = offset + NLMSGHDR.size, offset + length
        if kind in (RTM_NEWLINK, RTM_DELLINK) and min(end, len(data)) - start >= header.size:
            _family, _type, index, flags, _change = header.unpack_from(data, start)
            name = attrs(data, start + header.size, end).get(IFLA_IFNAME)
            links.append(LinkEvent(index, "" if name is None else asciiz(name),
                                   bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP), kind == RTM_DELLINK))
        else:
            changed = True
        offset += (length + 3) & ~3
    return links, changed
