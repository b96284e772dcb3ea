"""The kernel boundary: read a ``KernelState`` and carry out plan operations.

This is the only module of the product that imports pyroute2.  It talks
rtnetlink to the network namespace of the current process; callers that need
another namespace run the whole process in it (``ip netns exec``).  pyroute2
is never given ``netns=``: that forks a helper per socket (13 ms against
2.4 ms, linux-mapping.md Q2).

Reads never touch pyroute2 (or an event loop): links, addresses, routes and
rules come from a plain NETLINK_ROUTE dump socket decoded here (``_Dumper``),
because ``import pyroute2`` alone costs more than ``ifconfig -a`` may take.
Address, route and rule writes do not touch it either: they are requests
encoded here (``encode_request``) on a plain socket (``Requester``), which
also spares in.mpathd pyroute2's Python at every address move.  pyroute2 is
imported only when a ``Kernel`` first writes a link.

Everything pyroute2 hands back is untyped; it is turned into ``ipmp.model``
values right here, so no ``Any`` and no netlink message leaves this module.

Kernel quirks handled here (each one measured on kernel 6.18):

* A *permanent* deprecated address reports ``ifa_prefered`` as forever in
  ``IFA_CACHEINFO``; only the ``IFA_F_DEPRECATED`` flag tells.
* IPv6 has no route metric 0: the kernel stores 0 as ``IP6_RT_PRIO_USER``
  (1024).  ``read`` maps 1024 back to 0 and ``execute`` sends 0 as 1024, so
  a route read back compares equal to the ``KRoute`` that made it.
* An IPv4 route without a gateway must have scope link, as ``ip route add``
  gives it; with scope universe the kernel refuses any later gateway route
  that should resolve through it.  A delete uses scope "nowhere" (any), as
  ``ip route del`` does, because the kernel otherwise matches the scope
  exactly.

Solaris names (``ipmp.host.ifmap``): a ``Kernel`` given the map's entries reads
every mapped link, its addresses' labels, its routes and its sysctls under
the Solaris name, and ``execute`` turns each op back into Linux names (sysctl
paths and ``/sys`` know no altname).  Without entries nothing is renamed.

May import: ``ipmp.model``, ``ipmp.linux.ops``, ``ipmp.errors``, ``ipmp.host.ifmap``,
pyroute2, asyncio.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface, ip_network
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from ipmp.errors import ApplyError
from ipmp.host.ifmap import MapEntry, NameMap
from ipmp.model import (
    RTPROT_IPMP,
    Family,
    IPAddress,
    KAddress,
    KernelState,
    KLink,
    KRoute,
    KRule,
)

if TYPE_CHECKING:
    from ipmp.linux.ops import Op, SetLink

__all__ = ["PROC_SYS", "Kernel", "execute_plan", "read_kernel", "read_state"]

#: Where the kernel exposes sysctls; keys are paths below it.
PROC_SYS: Final = "/proc/sys"

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

_AF: Final = {Family.INET: socket.AF_INET, Family.INET6: socket.AF_INET6}
_FAMILY: Final[dict[int, Family]] = {socket.AF_INET: Family.INET, socket.AF_INET6: Family.INET6}
_HOST_PREFIX: Final = {Family.INET: 32, Family.INET6: 128}
_ANY: Final = {Family.INET: "0.0.0.0", Family.INET6: "::"}

Done = Callable[[int], None]


# --------------------------------------------------------------------------
# Reading: a raw rtnetlink dump, decoded only as far as the converters ask
# --------------------------------------------------------------------------

# Message types and flags, from <linux/netlink.h> and <linux/rtnetlink.h>.
_NLMSG_ERROR: Final = 2
_NLMSG_DONE: Final = 3
_NLM_F_REQUEST: Final = 0x1
_NLM_F_DUMP: Final = 0x300
_RTM_GETLINK: Final = 18
_RTM_GETADDR: Final = 22
_RTM_GETROUTE: Final = 26
_RTM_GETRULE: Final = 34

_NLMSGHDR: Final = struct.Struct("=IHHII")
_RTATTR: Final = struct.Struct("=HH")
_U32: Final = struct.Struct("=I")
_NLA_F_MASK: Final = 0x3FFF  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER

# The fixed header of each dumped message: its size and the fields the
# converters read, as (name, struct format) in order.
# ifinfomsg: family, pad, type, index, flags, change.
_IFINFOMSG: Final = (struct.Struct("=BxHiII"), ("family", "type", "index", "flags", "change"))
# ifaddrmsg: family, prefixlen, flags, scope, index.
_IFADDRMSG: Final = (struct.Struct("=BBBBI"), ("family", "prefixlen", "flags", "scope", "index"))
# rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
_RTMSG: Final = (struct.Struct("=BBBBBBBBI"),
                 ("family", "dst_len", "src_len", "tos", "table", "proto", "scope", "type", "flags"))
# fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
_FIB_RULE_HDR: Final = (struct.Struct("=BBBBBBBBI"),
                        ("family", "dst_len", "src_len", "tos", "table", "res1", "res2", "action",
                         "flags"))

Decoder = Callable[[bytes, int], Any]


def _asciiz(data: bytes, family: int) -> str:
    return data.split(b"\0", 1)[0].decode(errors="replace")


def _u8(data: bytes, family: int) -> int:
    return data[0]


def _u32(data: bytes, family: int) -> int:
    return int(_U32.unpack_from(data)[0])


def _inet(data: bytes, family: int) -> str:
    return socket.inet_ntop(family, data)


def _l2addr(data: bytes, family: int) -> str:
    return ":".join(f"{b:02x}" for b in data)


def _attrs(data: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """The rtattrs from ``offset`` to ``end`` by type; the first of a type wins."""
    out: dict[int, bytes] = {}
    end = len(data) if end is None else min(end, len(data))
    while offset + 4 <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        out.setdefault(kind & _NLA_F_MASK, data[offset + 4:offset + length])
        offset += (length + 3) & ~3
    return out


def _linkinfo(data: bytes, family: int) -> dict[str, str]:
    kind = _attrs(data).get(1)  # IFLA_INFO_KIND
    return {} if kind is None else {"IFLA_INFO_KIND": _asciiz(kind, family)}


def _proplist(data: bytes, family: int) -> tuple[str, ...]:
    """IFLA_PROP_LIST: every IFLA_ALT_IFNAME (53) in it, in order."""
    names: list[str] = []
    offset = 0
    while offset + 4 <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        if kind & _NLA_F_MASK == 53:
            names.append(_asciiz(data[offset + 4:offset + length], family))
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
    nests = _attrs(data)
    forwarding: set[Family] = set()
    token: IPv6Address | None = None
    inet = nests.get(socket.AF_INET)
    conf = _attrs(inet).get(1) if inet is not None else None
    if conf is not None and len(conf) >= 4 and _U32.unpack_from(conf)[0]:
        forwarding.add(Family.INET)
    inet6 = nests.get(socket.AF_INET6)
    if inet6 is not None:
        fields = _attrs(inet6)
        conf = fields.get(2)
        if conf is not None and len(conf) >= 4 and _U32.unpack_from(conf)[0]:
            forwarding.add(Family.INET6)
        raw = fields.get(7)
        if raw is not None and len(raw) == 16 and any(raw):
            token = IPv6Address(raw)
    return frozenset(forwarding), token


def _metrics_mtu(data: bytes, family: int) -> int:
    """RTA_METRICS: its RTAX_MTU (2), 0 when the route has none."""
    mtu = _attrs(data).get(2)
    return 0 if mtu is None or len(mtu) < 4 else int(_U32.unpack_from(mtu)[0])


def _multipath(data: bytes, family: int) -> list[tuple[int, str | None]]:
    """RTA_MULTIPATH: each rtnexthop's ifindex and its nested RTA_GATEWAY (5)."""
    hops: list[tuple[int, str | None]] = []
    offset = 0
    while offset + 8 <= len(data):
        length, _flags, _hops, ifindex = struct.unpack_from("=HBBi", data, offset)
        if length < 8:
            break
        gateway = _attrs(data, offset + 8, offset + length).get(5)
        hops.append((ifindex, None if gateway is None else _inet(gateway, family)))
        offset += (length + 3) & ~3
    return hops


# Attribute numbers from <linux/if_link.h>, <linux/if_addr.h>,
# <linux/rtnetlink.h> and <linux/fib_rules.h>; only the ones read.
_IFLA: Final[dict[str, tuple[int, Decoder]]] = {
    "IFLA_ADDRESS": (1, _l2addr),
    "IFLA_IFNAME": (3, _asciiz),
    "IFLA_MTU": (4, _u32),
    "IFLA_LINKINFO": (18, _linkinfo),
    "IFLA_AF_SPEC": (26, _af_spec),
    "IFLA_PROP_LIST": (52, _proplist),
}
_IFA: Final[dict[str, tuple[int, Decoder]]] = {
    "IFA_ADDRESS": (1, _inet),
    "IFA_LOCAL": (2, _inet),
    "IFA_LABEL": (3, _asciiz),
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


class _Msg:
    """One dumped netlink message: its header fields, and its attributes by name.

    Only the attribute slots are indexed up front; a value is decoded when a
    converter asks for it (stats and per-family data are most of a link
    message and are never decoded).
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


_DUMPS: Final = {
    "link": (_RTM_GETLINK, _IFINFOMSG, _IFLA),
    "addr": (_RTM_GETADDR, _IFADDRMSG, _IFA),
    "route": (_RTM_GETROUTE, _RTMSG, _RTA),
    "rule": (_RTM_GETRULE, _FIB_RULE_HDR, _FRA),
}


class _Dumper:
    """A plain blocking NETLINK_ROUTE socket that only dumps: no pyroute2, no event loop."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0
        self._buf = bytearray(1 << 17)

    def close(self) -> None:
        self.sock.close()

    def dump(self, kind: str, family: int = socket.AF_UNSPEC) -> Iterator[_Msg]:
        """Every message of one dump (``link``, ``addr``, ``route``, ``rule``)."""
        rtm, (header, fields), names = _DUMPS[kind]
        self._seq += 1
        seq = self._seq
        body = bytearray(header.size)
        body[0] = family
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), rtm,
                                      _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0) + body)
        view = memoryview(self._buf)
        while True:
            size = self.sock.recv_into(self._buf)
            data = bytes(view[:size])
            offset = 0
            while offset + _NLMSGHDR.size <= size:
                length, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    break
                start, offset = offset + _NLMSGHDR.size, offset + ((length + 3) & ~3)
                if mseq != seq:
                    continue
                if mtype == _NLMSG_DONE:
                    return
                if mtype == _NLMSG_ERROR:
                    code = -int(struct.unpack_from("=i", data, start)[0])
                    if code:
                        raise OSError(code, os.strerror(code))
                    return
                if length - _NLMSGHDR.size < header.size:
                    continue
                values = dict(zip(fields, header.unpack_from(data, start), strict=True))
                attrs = _attrs(data, start + header.size, start - _NLMSGHDR.size + length)
                yield _Msg(values, attrs, names)


def _family(m: _Msg) -> Family | None:
    """IPv4 or IPv6; None for the other families a dump may hold (ipmr rules, ...)."""
    return _FAMILY.get(m.field("family"))


def _link(m: _Msg) -> KLink:
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


def _altnames(m: _Msg) -> tuple[str, ...]:
    """The link's alternative names (IFLA_PROP_LIST / IFLA_ALT_IFNAME, kernel 5.5+)."""
    props = m.value("IFLA_PROP_LIST")
    if props is None:
        return ()
    return tuple(str(name) for name in props)


def _address(m: _Msg, ifname: str, family: Family) -> KAddress:
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
    )


def _route(m: _Msg, family: Family, names: dict[int, str]) -> KRoute:
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


def _next_hops6(m: _Msg, names: dict[int, str]) -> list[tuple[str, IPv6Address]]:
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
        address = ip_address(str(gateway))
        if isinstance(address, IPv6Address) and address.is_link_local:
            out.append((names[oif], address))
    return out


def _rule(m: _Msg, family: Family) -> KRule | None:
    src = m.ip("FRA_SRC")
    if src is None or m.field("src_len") != _HOST_PREFIX[family]:
        # Not of the one shape the toolkit makes ("from <host> lookup <table>").
        return None
    return KRule(
        family=family,
        priority=m.num("FRA_PRIORITY"),
        src=src,
        table=m.num("FRA_TABLE", m.field("table")),
    )


# --------------------------------------------------------------------------
# Request arguments: link ops turned into pyroute2 keyword arguments
# (addresses, routes and rules are requests of our own: ``encode_request``)
# --------------------------------------------------------------------------


def _index(name: str) -> int:
    """The ifindex of ``name`` in this namespace: one ioctl, no netlink round trip."""
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        # CPython raises this without an errno.
        raise OSError(errno.ENODEV, f"no link named {name}") from exc


def _link_args(op: SetLink) -> dict[str, object]:
    flags = change = 0
    for value, bit in ((op.up, IFF_UP), (op.noarp, IFF_NOARP)):
        if value is not None:
            change |= bit
            flags |= bit if value else 0
    args: dict[str, object] = {"index": _index(op.name), "flags": flags, "change": change}
    if op.mtu is not None:
        args["mtu"] = op.mtu
    if op.mac is not None:
        args["address"] = op.mac
    if op.token is not None:
        # ``ip token set``: IFLA_INET6_TOKEN in the link's AF_INET6 nest
        # (the kernel keeps its low 64 bits, ``inet6_set_iftoken``).
        args["IFLA_AF_SPEC"] = {"attrs": [["AF_INET6", {"attrs": [["IFLA_INET6_TOKEN", str(op.token)]]}]]}
    return args


# --------------------------------------------------------------------------
# Sysctls: plain procfs I/O, microseconds, so done inline and not in a thread
# --------------------------------------------------------------------------


def _sysctl_path(key: str) -> str:
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad sysctl key {key!r}")
    return os.path.join(PROC_SYS, *parts)


def _read_sysctl(key: str) -> str | None:
    try:
        with open(_sysctl_path(key), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    # Multi-value sysctls (ping_group_range) come back tab-separated; one
    # space each makes them compare equal to the value a plan writes.
    return " ".join(text.split())


def _write_sysctl(key: str, value: str) -> None:
    # One write(2), so the kernel's verdict (EINVAL, ...) is this call's errno.
    fd = os.open(_sysctl_path(key), os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# The kernel
# --------------------------------------------------------------------------


def _failure(op: Op, code: int, detail: str = "") -> ApplyError:
    reason = os.strerror(code) if code else "failed"
    if detail and detail != reason:
        reason = f"{reason} ({detail})"
    from ipmp.linux.ops import command

    return ApplyError(f"{command(op)}: {reason}", op=op, errno_=code)


def _linux_links(dump: _Dumper) -> list[KLink]:
    """Every link by index under its Linux name, with its altnames as the kernel has them."""
    return sorted([_link(m) for m in dump.dump("link")], key=lambda lk: lk.index)


def _links(dump: _Dumper, ifmap: Sequence[MapEntry], names: NameMap) -> tuple[list[KLink], NameMap]:
    """Every link, by index, named as the view names it (``ifmap``, the loopback as lo0), and that naming."""
    raw = _linux_links(dump)
    names = NameMap.of(ifmap, raw)
    return [names.link(lk) for lk in raw], names


def _read(dump: _Dumper, ifmap: Sequence[MapEntry], names: NameMap,
          sysctl_keys: Iterable[str] | Callable[[list[str]], Iterable[str]]) -> tuple[KernelState, NameMap]:
    """``Kernel.read`` on a dump socket; ``sysctl_keys`` may be a function of the link names."""
    links, names = _links(dump, ifmap, names)
    by_index = {lk.index: lk.name for lk in links}
    linux = {lk.index: names.linux(lk.name) for lk in links}
    addresses: list[KAddress] = []
    for m in dump.dump("addr"):
        family = _family(m)
        index = m.field("index")
        ifname = by_index.get(index)
        # A link that appeared after the link dump is seen on the next read.
        if family is not None and ifname is not None:
            ka = _address(m, ifname, family)
            if ka.label and names:
                ka = replace(ka, label=names.label(ka.label, linux[index]))
            addresses.append(ka)
    routes: set[KRoute] = set()
    for m in dump.dump("route"):
        family = _family(m)
        # The header field first: most routes are not ours.
        if family is not None and m.field("proto") == RTPROT_IPMP:
            routes.add(_route(m, family, by_index))
    rules: set[KRule] = set()
    for m in dump.dump("rule"):
        family = _family(m)
        if family is not None and m.num("FRA_PROTOCOL") == RTPROT_IPMP:
            rule = _rule(m, family)
            if rule is not None:
                rules.add(rule)
    keys = sysctl_keys([lk.name for lk in links]) if callable(sysctl_keys) else sysctl_keys
    sysctls = tuple((k, v) for k in keys if (v := _read_sysctl(names.sysctl_key(k))) is not None)
    state = KernelState(
        links=tuple(links),
        addresses=tuple(addresses),
        routes=frozenset(routes),
        rules=frozenset(rules),
        sysctls=sysctls,
    )
    return state, names


def _routers6(dump: _Dumper, ifmap: Sequence[MapEntry],
              names: NameMap) -> tuple[tuple[tuple[str, IPv6Address], ...], NameMap]:
    """``Kernel.routers6`` on a dump socket."""
    links, names = _links(dump, ifmap, names)
    by_index = {lk.index: lk.name for lk in links}
    found: dict[tuple[str, IPv6Address], None] = {}
    for m in dump.dump("route", socket.AF_INET6):
        if _family(m) is not Family.INET6:
            continue
        if m.num("RTA_TABLE", m.field("table")) != RT_TABLE_MAIN:
            continue
        for hop in _next_hops6(m, by_index):
            found.setdefault(hop, None)
    return tuple(found), names


def read_state(sysctl_keys: Iterable[str] | Callable[[list[str]], Iterable[str]] = (),
               ifmap: Sequence[MapEntry] = ()) -> tuple[KernelState, NameMap]:
    """``Kernel(ifmap).read(...)`` without an event loop (and without pyroute2).

    Args:
        sysctl_keys: as for ``Kernel.read``, or a function that makes them
            from the view's link names (one dump instead of two).
        ifmap: the entries of ``etc/ipmp/ifmap``.

    Returns:
        The state and the name translation it was read with (``Kernel.names``).
    """
    dump = _Dumper()
    try:
        return _read(dump, tuple(ifmap), NameMap(), sysctl_keys)
    finally:
        dump.close()


class Kernel:
    """One rtnetlink request socket in the current network namespace.

    Use as ``async with Kernel() as kernel:``.  Requests go one at a time;
    the socket joins no multicast group, so no events pile up in it
    (listening for events is the daemon's business, on its own socket).

    ``ifmap``: the entries of ``etc/ipmp/ifmap``; each read checks them
    against the links and names the mapped ones by their Solaris names
    (``names`` is that translation), and ``execute`` translates back.
    """

    def __init__(self, ifmap: Sequence[MapEntry] = ()) -> None:
        self._ipr: Any = None
        self._dumper: _Dumper | None = None
        self._requester: Requester | None = None
        self._ifmap = tuple(ifmap)
        #: The translation of the last read (``ifmap`` checked against its links).
        self.names = NameMap()

    async def __aenter__(self) -> Kernel:
        self._dumper = _Dumper()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ipr, self._ipr = self._ipr, None
        dumper, self._dumper = self._dumper, None
        requester, self._requester = self._requester, None
        if dumper is not None:
            dumper.close()
        if requester is not None:
            requester.close()
        if ipr is not None:
            ipr.close()

    def _requests(self) -> Requester:
        """The socket for address, route and rule requests, opened on first use."""
        if self._dumper is None:
            raise RuntimeError("Kernel used outside 'async with'")
        if self._requester is None:
            self._requester = Requester()
        return self._requester

    @property
    def _sock(self) -> Any:
        """The pyroute2 socket for link writes, opened (and pyroute2 imported) on first use."""
        if self._dumper is None:
            raise RuntimeError("Kernel used outside 'async with'")
        if self._ipr is None:
            from pyroute2 import AsyncIPRoute

            # ext_ack: the kernel then says *why* (e.g. "Nexthop has invalid
            # gateway"), and the reason goes into ApplyError's message.
            self._ipr = AsyncIPRoute(groups=0, ext_ack=True)
        return self._ipr

    async def prepare_writes(self) -> None:
        """Open the write sockets now rather than at the first ``execute``.

        For the daemon: importing pyroute2 (link ops) takes about 0.2 s and
        its first request another millisecond, which a failover must not
        wait for.  The request is a read of the loopback link (index 1 in
        every namespace); its failure only means the first write pays instead.
        """
        from pyroute2 import NetlinkError

        self._requests()
        with contextlib.suppress(NetlinkError, OSError):
            await self._sock.link("get", index=1)

    @property
    def _dump(self) -> _Dumper:
        if self._dumper is None:
            raise RuntimeError("Kernel used outside 'async with'")
        return self._dumper

    async def read(self, sysctl_keys: Iterable[str] = ()) -> KernelState:
        """Read links, addresses, the toolkit's routes and rules, and sysctls.

        Args:
            sysctl_keys: paths below ``/proc/sys`` with ``/`` separators
                (``net/ipv4/conf/nic0/rp_filter``); a key the kernel does not
                have is left out of the result.

        Returns:
            Links by index; addresses in kernel order (per link, the primary
            IPv4 address first); routes in every table and rules of both
            families whose protocol is ``RTPROT_IPMP``.
        """
        state, self.names = _read(self._dump, self._ifmap, self.names, sysctl_keys)
        return state

    async def routers6(self) -> tuple[tuple[str, IPv6Address], ...]:
        """The IPv6 routers of the main routing table, for in.mpathd's probe targets.

        Solaris reads the whole routing table and takes the next hop of every
        route that has one; for IPv6 the target goes to the phyint of the
        route's outgoing interface (solaris-ipmp.md §2.6).  On Linux those are
        the routes the kernel learnt from router advertisements and static
        ones (``ip -6 route add default via fe80::1 dev nic0``), whatever
        their protocol; ``read`` returns only the toolkit's own.  Only
        link-local next hops count: an IPv6 test address is link-local and a
        target must be in its subnet (§2.3).

        Returns:
            ``(interface, next hop)`` pairs without repeats, in table order.
        """
        found, self.names = _routers6(self._dump, self._ifmap, self.names)
        return found

    async def execute(self, ops: Sequence[Op], *, done: Done | None = None) -> None:
        """Carry out ``ops`` in order, one kernel request each.

        Args:
            ops: the plan.
            done: called with the position of each op once it succeeded.

        Raises:
            ApplyError: on the first op that fails, naming it as an ``ip``
                command with the kernel's reason.  The ops before it stay
                done; reverting them is the caller's job.
        """
        for i, op in enumerate(ops):
            # The kernel's names: sysctl paths know no altname.
            op = self.names.op(op)
            try:
                await self._execute_one(op)
            except OSError as exc:
                raise _failure(op, exc.errno or 0, exc.strerror or "") from exc
            except ValueError as exc:
                # pyroute2 or the key check refused a value before anything
                # reached the kernel: a failed op like any other.
                raise _failure(op, errno.EINVAL, str(exc)) from exc
            if done is not None:
                done(i)

    async def linux_links(self) -> list[KLink]:
        """Every link by index under its Linux name, with its altnames as the kernel has them."""
        return _linux_links(self._dump)

    async def add_altname(self, ifname: str, altname: str) -> None:
        """``ip link property add dev IFNAME altname ALTNAME``; raises ``ApplyError``."""
        from pyroute2 import NetlinkError

        what = shlex.join(["ip", "link", "property", "add", "dev", ifname, "altname", altname])
        try:
            await self._sock.link("property_add", index=_index(ifname), altname=[altname])
        except NetlinkError as exc:
            detail = str(exc.args[1]) if len(exc.args) > 1 and exc.args[1] else ""
            reason = os.strerror(int(exc.code))
            raise ApplyError(f"{what}: {reason}" + (f" ({detail})" if detail and detail != reason else ""),
                             errno_=int(exc.code)) from exc
        except OSError as exc:
            raise ApplyError(f"{what}: {exc.strerror or 'failed'}", errno_=exc.errno or 0) from exc

    async def _execute_one(self, op: Op) -> None:
        """One op; OSError(errno, the kernel's reason) if the kernel refused it."""
        request = encode_request(op)
        if request is not None:
            await self._requests().send(request)
            return
        # Imported here: reads (``ifconfig -a``) come through this module and
        # never execute an operation.
        from ipmp.linux.ops import SetLink, SetSysctl

        match op:
            case SetSysctl(key=key, value=value):
                _write_sysctl(key, value)
            case SetLink():
                from pyroute2 import NetlinkError

                try:
                    await self._sock.link("set", **_link_args(op))
                except NetlinkError as exc:
                    detail = str(exc.args[1]) if len(exc.args) > 1 and exc.args[1] else ""
                    code = int(exc.code)
                    raise OSError(code, detail or os.strerror(code)) from exc


# --------------------------------------------------------------------------
# Synchronous conveniences for the command-line tools
# --------------------------------------------------------------------------


def read_kernel(sysctl_keys: Iterable[str] = ()) -> KernelState:
    """``Kernel.read``, synchronously (no event loop)."""
    return read_state(sysctl_keys)[0]


def execute_plan(ops: Sequence[Op], *, done: Done | None = None) -> None:
    """``Kernel.execute`` in a fresh event loop; raises ``ApplyError``."""
    import asyncio


    async def run() -> None:
        async with Kernel() as kernel:
            await kernel.execute(ops, done=done)

    asyncio.run(run())



# --------------------------------------------------------------------------
# Writes without pyroute2: address, route and rule requests
# --------------------------------------------------------------------------

# Message types and flags, from <linux/rtnetlink.h> and <linux/netlink.h>.
_RTM_NEWADDR: Final = 20
_RTM_DELADDR: Final = 21
_RTM_NEWROUTE: Final = 24
_RTM_DELROUTE: Final = 25
_RTM_NEWRULE: Final = 32
_RTM_DELRULE: Final = 33
_NLM_F_ACK: Final = 0x4
_NLM_F_EXCL: Final = 0x200
_NLM_F_CREATE: Final = 0x400
#: ``add`` fails when the object exists, ``del`` when it does not: the flags
#: pyroute2 ("create", "req") and ``ip`` send.
_FLAGS_ADD: Final = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
_FLAGS_DEL: Final = _NLM_F_REQUEST | _NLM_F_ACK
# Socket options and ack flags (<linux/netlink.h>): the kernel says why a
# request failed (extended ack) and does not echo the request back.
_SOL_NETLINK: Final = 270
_NETLINK_CAP_ACK: Final = 10
_NETLINK_EXT_ACK: Final = 11
_NLM_F_CAPPED: Final = 0x100
_NLM_F_ACK_TLVS: Final = 0x200
_NLMSGERR_ATTR_MSG: Final = 1
# Attribute numbers and values (<linux/if_addr.h>, <linux/rtnetlink.h>, <linux/fib_rules.h>).
_IFA_ADDRESS: Final = 1
_IFA_LOCAL: Final = 2
_IFA_LABEL: Final = 3
_IFA_BROADCAST: Final = 4
_IFA_CACHEINFO: Final = 6
_IFA_FLAGS: Final = 8
_RTA_DST: Final = 1
_RTA_OIF: Final = 4
_RTA_GATEWAY: Final = 5
_RTA_PRIORITY: Final = 6
_RTA_PREFSRC: Final = 7
_RTA_METRICS: Final = 8
_RTA_TABLE: Final = 15
_RTAX_MTU: Final = 2
_FRA_SRC: Final = 2
_FRA_PRIORITY: Final = 6
_FRA_TABLE: Final = 15
_FRA_PROTOCOL: Final = 21
_RTN_UNICAST: Final = 1
_FR_ACT_TO_TBL: Final = 1
_RT_TABLE_COMPAT: Final = 252
# struct ifa_cacheinfo: preferred, valid, cstamp, tstamp.
_CACHEINFO: Final = struct.Struct("=IIII")
#: How long a request waits for its answer at most (s).  rtnetlink answers
#: within the send(2) that carries the request; this only bounds the wait
#: should that ever not hold, so that an apply never hangs the daemon.
REQUEST_TIMEOUT: Final = 5.0
_ACK_SIZE: Final = 1 << 13

#: One rtnetlink request: message type, flags and body (header and attributes).
Request = tuple[int, int, bytes]


def _rta(kind: int, payload: bytes) -> bytes:
    size = _RTATTR.size + len(payload)
    return _RTATTR.pack(size, kind) + payload + bytes(-size % 4)


def _u32_rta(kind: int, value: int) -> bytes:
    return _rta(kind, _U32.pack(value))


def _address_request(a: KAddress, *, add: bool) -> Request:
    """RTM_NEWADDR / RTM_DELADDR, as ``ip addr add`` / ``ip addr del`` send them.

    IFA_LOCAL goes with every IPv4 address (``ip`` adds it; the kernel
    matches a delete on it) and with a point-to-point one; the flags travel
    in IFA_FLAGS (NOPREFIXROUTE does not fit the 8-bit header field).

    127.0.0.0/8 is added with host scope, as Linux gives it whatever adds it
    (the kernel's own 127.0.0.1, ``inet_set_ifa`` for ioctl ifconfig,
    iproute2's default scope).  The kernel refuses a second address of a
    subnet with another scope than the first ("ipv4: Invalid scope value",
    ``__inet_insert_ifa``), so ``lo0 addif 127.0.0.2/8`` needs it.  An IPv6
    address's scope comes from the address itself, and a delete matches
    without one.  The scope is no part of ``KAddress``: it follows from the
    address, so an address read back compares equal to the one added.
    """
    header, _fields = _IFADDRMSG
    host = add and a.family is Family.INET and a.address.ip.is_loopback
    scope = RT_SCOPE_HOST if host else RT_SCOPE_UNIVERSE
    body = [header.pack(_AF[a.family], a.address.network.prefixlen, 0, scope, _index(a.ifname))]
    body.append(_rta(_IFA_ADDRESS, (a.peer if a.peer is not None else a.address.ip).packed))
    if a.peer is not None or a.family is Family.INET:
        body.append(_rta(_IFA_LOCAL, a.address.ip.packed))
    if add:
        flags = IFA_F_NOPREFIXROUTE if a.noprefixroute else 0
        if a.family is Family.INET6:
            # The address is already proven on this link; DAD would leave it
            # tentative (unbindable) for 1-2 s (linux-mapping.md, Q6).
            flags |= IFA_F_NODAD
        if flags:
            body.append(_u32_rta(_IFA_FLAGS, flags))
        if a.family is Family.INET:
            if a.label:
                body.append(_rta(_IFA_LABEL, a.label.encode() + b"\0"))
            if a.broadcast is not None:
                body.append(_rta(_IFA_BROADCAST, a.broadcast.packed))
        if a.deprecated:
            body.append(_rta(_IFA_CACHEINFO, _CACHEINFO.pack(0, INFINITY_LIFE_TIME, 0, 0)))
    return (_RTM_NEWADDR, _FLAGS_ADD, b"".join(body)) if add else (_RTM_DELADDR, _FLAGS_DEL, b"".join(body))


def _route_request(r: KRoute, *, add: bool) -> Request:
    """RTM_NEWROUTE / RTM_DELROUTE, as ``ip route add`` / ``del`` send them (scopes: module docstring)."""
    metric = r.metric
    if r.family is Family.INET6 and metric == 0:
        metric = IP6_RT_PRIO_USER
    if add:
        scope = RT_SCOPE_LINK if r.family is Family.INET and r.gateway is None else RT_SCOPE_UNIVERSE
        kind = _RTN_UNICAST
    else:
        scope, kind = RT_SCOPE_NOWHERE, 0  # a delete matches any scope and type, as ``ip route del``
    # The header's table field is 8 bits: RTA_TABLE carries the real id.
    table = r.table if 0 < r.table < 255 else RT_TABLE_MAIN
    header, _fields = _RTMSG
    body = [header.pack(_AF[r.family], r.dst.prefixlen, 0, 0, table, RTPROT_IPMP, scope, kind, 0),
            _u32_rta(_RTA_OIF, _index(r.dev)), _u32_rta(_RTA_TABLE, r.table), _u32_rta(_RTA_PRIORITY, metric)]
    if r.dst.prefixlen:
        body.append(_rta(_RTA_DST, r.dst.network_address.packed))
    if r.gateway is not None:
        body.append(_rta(_RTA_GATEWAY, r.gateway.packed))
    if r.src is not None:
        body.append(_rta(_RTA_PREFSRC, r.src.packed))
    if add and r.mtu:
        body.append(_rta(_RTA_METRICS, _u32_rta(_RTAX_MTU, r.mtu)))
    return (_RTM_NEWROUTE, _FLAGS_ADD, b"".join(body)) if add else (_RTM_DELROUTE, _FLAGS_DEL, b"".join(body))


def _rule_request(r: KRule, *, add: bool) -> Request:
    """RTM_NEWRULE / RTM_DELRULE for ``from <host> lookup <table>``, as ``ip rule`` sends them."""
    header, _fields = _FIB_RULE_HDR
    table = r.table if 0 <= r.table <= 255 else _RT_TABLE_COMPAT  # FRA_TABLE has the real id
    body = b"".join((header.pack(_AF[r.family], 0, _HOST_PREFIX[r.family], 0, table, 0, 0, _FR_ACT_TO_TBL, 0),
                     _u32_rta(_FRA_PRIORITY, r.priority), _rta(_FRA_SRC, r.src.packed),
                     _u32_rta(_FRA_TABLE, r.table), _rta(_FRA_PROTOCOL, bytes((RTPROT_IPMP,)))))
    return (_RTM_NEWRULE, _FLAGS_ADD, body) if add else (_RTM_DELRULE, _FLAGS_DEL, body)


def encode_request(op: Op) -> Request | None:
    """The rtnetlink request of an address, route or rule op; None for the other ops.

    Raises:
        OSError: ENODEV when the op names a link this namespace does not have.
    """
    from ipmp.linux.ops import AddAddress, AddRoute, AddRule, DelAddress, DelRoute, DelRule

    match op:
        case AddAddress(address=a):
            return _address_request(a, add=True)
        case DelAddress(address=a):
            return _address_request(a, add=False)
        case AddRoute(route=r):
            return _route_request(r, add=True)
        case DelRoute(route=r):
            return _route_request(r, add=False)
        case AddRule(rule=r):
            return _rule_request(r, add=True)
        case DelRule(rule=r):
            return _rule_request(r, add=False)
    return None


def decode_ack(data: bytes, seq: int) -> tuple[int, str] | None:
    """The answer to request ``seq`` in ``data``: (errno, the kernel's reason or ""); None if absent.

    errno 0 is success.  The reason is the extended ack's NLMSGERR_ATTR_MSG,
    found after ``struct nlmsgerr`` (the error and the request's header, or
    the whole request when the kernel did not cap the echo).
    """
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, flags, mseq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        end = min(offset + length, len(data))
        start = offset + _NLMSGHDR.size
        if mseq == seq and mtype == _NLMSG_ERROR and start + 4 <= end:
            code = -int(struct.unpack_from("=i", data, start)[0])
            reason = ""
            if code and flags & _NLM_F_ACK_TLVS and start + 4 + _NLMSGHDR.size <= end:
                echoed = _NLMSGHDR.size if flags & _NLM_F_CAPPED else _U32.unpack_from(data, start + 4)[0]
                text = _attrs(data, start + 4 + ((echoed + 3) & ~3), end).get(_NLMSGERR_ATTR_MSG)
                if text is not None:
                    reason = _asciiz(text, 0)
            return code, reason
        offset += (length + 3) & ~3
    return None


class Requester:
    """A plain NETLINK_ROUTE socket that sends one request at a time and reads its answer.

    pyroute2 spends about 0.3-0.7 ms of Python per request (argument filters,
    message objects, its own event-loop protocol) where the request itself
    takes the kernel microseconds; on an emulated CPU that is tens of
    milliseconds of outage per address move.  The socket joins no multicast
    group, so nothing but answers arrives on it.
    """

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                             socket.NETLINK_ROUTE)
        try:
            for option in (_NETLINK_EXT_ACK, _NETLINK_CAP_ACK):
                with contextlib.suppress(OSError):  # older kernels: no reason, or the request echoed
                    sock.setsockopt(_SOL_NETLINK, option, 1)
            sock.bind((0, 0))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    async def send(self, request: Request) -> None:
        """Send ``request`` and wait for its answer; OSError(errno, reason) if the kernel refused it."""
        kind, flags, body = request
        self._seq = self._seq % 0xFFFFFFFF + 1
        seq = self._seq
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body)
        while True:
            try:
                data = self.sock.recv(_ACK_SIZE)
            except BlockingIOError:
                data = await self._wait()
            answer = decode_ack(data, seq)
            if answer is None:
                continue  # the late answer of an earlier request that timed out
            code, reason = answer
            if code:
                raise OSError(code, reason or os.strerror(code))
            return

    async def _wait(self) -> bytes:
        import asyncio

        try:
            return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, _ACK_SIZE),
                                          REQUEST_TIMEOUT)
        except TimeoutError:
            raise OSError(errno.ETIMEDOUT, "no answer from the kernel") from None


# --------------------------------------------------------------------------
# Events: a raw rtnetlink multicast socket for the daemon
# --------------------------------------------------------------------------

# rtnetlink multicast groups (<linux/rtnetlink.h>, RTMGRP_* bits / RTNLGRP_*).
_RTMGRP_LINK: Final = 0x1
_RTMGRP_IPV4_IFADDR: Final = 0x10
_RTMGRP_IPV4_ROUTE: Final = 0x40
_RTMGRP_IPV4_RULE: Final = 0x80
_RTMGRP_IPV6_IFADDR: Final = 0x100
_RTMGRP_IPV6_ROUTE: Final = 0x400
_RTNLGRP_IPV6_RULE: Final = 19
#: RTM_NEWNETCONF: a NIC's forwarding (ROUTER, ``ifconfig router``) changed,
#: whoever wrote the sysctl; the daemon must not plan over it from an old read.
_RTNLGRP_IPV4_NETCONF: Final = 24
_RTNLGRP_IPV6_NETCONF: Final = 25
WATCH_GROUPS: Final = (_RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV4_ROUTE | _RTMGRP_IPV4_RULE
                       | _RTMGRP_IPV6_IFADDR | _RTMGRP_IPV6_ROUTE | (1 << (_RTNLGRP_IPV6_RULE - 1))
                       | (1 << (_RTNLGRP_IPV4_NETCONF - 1)) | (1 << (_RTNLGRP_IPV6_NETCONF - 1)))
_RTM_NEWLINK: Final = 16
_RTM_DELLINK: Final = 17
_IFLA_IFNAME: Final = 3
_NLMSG_HDR: Final = 16


class LinkEvent:
    """RTM_NEWLINK / RTM_DELLINK: ``up`` is admin up with carrier (IFF_UP and IFF_LOWER_UP)."""

    __slots__ = ("gone", "index", "name", "up")

    def __init__(self, index: int, name: str, up: bool, gone: bool) -> None:
        self.index, self.name, self.up, self.gone = index, name, up, gone


class Watcher:
    """Kernel change notifications, read straight off a non-blocking netlink socket.

    A raw socket and ``loop.add_reader`` take about 0.36 ms from a carrier
    change to the daemon, against 0.76 ms through pyroute2 (linux-mapping.md
    Q2), and the daemon only needs the link flags and "something changed".
    ``read()`` returns link events and a flag saying that addresses, routes,
    rules or a NIC's forwarding changed, or that the socket overran (then
    everything must be read again).
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                  socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, WATCH_GROUPS))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def read(self) -> tuple[list[LinkEvent], bool]:
        links: list[LinkEvent] = []
        changed = False
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return links, changed
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    changed = True  # overrun: the caller rereads everything
                    continue
                raise
            offset = 0
            while offset + _NLMSG_HDR <= len(data):
                length = int.from_bytes(data[offset:offset + 4], "little")
                kind = int.from_bytes(data[offset + 4:offset + 6], "little")
                if length < _NLMSG_HDR:
                    break
                body = data[offset + _NLMSG_HDR:offset + length]
                if kind in (_RTM_NEWLINK, _RTM_DELLINK) and len(body) >= 16:
                    index = int.from_bytes(body[4:8], "little", signed=True)
                    flags = int.from_bytes(body[8:12], "little")
                    links.append(LinkEvent(index, _ifname(body[16:]),
                                           bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP),
                                           kind == _RTM_DELLINK))
                else:
                    changed = True
                offset += (length + 3) & ~3


def _ifname(attrs: bytes) -> str:
    offset = 0
    while offset + 4 <= len(attrs):
        length = int.from_bytes(attrs[offset:offset + 2], "little")
        kind = int.from_bytes(attrs[offset + 2:offset + 4], "little")
        if length < 4:
            break
        if kind == _IFLA_IFNAME:
            return attrs[offset + 4:offset + length].split(b"\0", 1)[0].decode(errors="replace")
        offset += (length + 3) & ~3
    return ""


class CarrierReader:
    """The carrier bit of NICs polled again and again, read directly: each file opened once, then re-read.

    The kernel's linkwatch batches carrier events of physical NICs up to 1 s
    (linux-mapping.md Q2); ``/sys/class/net/IF/carrier`` reads the driver's
    state at once, so the daemon polls it cheaply between events.

    sysfs makes an attribute again at every read from offset 0, so one
    pread(2) on a kept descriptor is a fresh read, where an open, a read and
    a close cost twenty times the instructions, for a poll every 50 ms per
    NIC.  A descriptor whose NIC is gone fails with ENODEV: it is dropped
    and the name opened again.  ``forget()`` drops every descriptor (names
    may have moved to other NICs).
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def __call__(self, ifname: str) -> bool | None:
        """The carrier bit: None when the NIC is gone; False when it is admin down (the read fails EINVAL)."""
        for _ in range(2):
            fd = self._fds.get(ifname)
            if fd is None:
                try:
                    fd = os.open(f"/sys/class/net/{ifname}/carrier", os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    return None
                except OSError:
                    return False
                self._fds[ifname] = fd
            try:
                return os.pread(fd, 1, 0) == b"1"
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    return False  # EINVAL: admin down
                self._drop(ifname)  # that NIC is gone: the name, again
        return None

    def _drop(self, ifname: str) -> None:
        fd = self._fds.pop(ifname, None)
        if fd is not None:
            os.close(fd)

    def forget(self) -> None:
        for ifname in list(self._fds):
            self._drop(ifname)

    close = forget
