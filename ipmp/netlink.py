"""The kernel boundary: read a ``KernelState`` and carry out plan operations.

This is the only module of the product that imports pyroute2.  It talks
rtnetlink to the network namespace of the current process; callers that need
another namespace run the whole process in it (``ip netns exec``).  pyroute2
is never given ``netns=``: that forks a helper per socket (13 ms against
2.4 ms, linux-mapping.md Q2).

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

Solaris names (``ipmp.ifmap``): a ``Kernel`` given the map's entries reads
every mapped link, its addresses' labels, its routes and its sysctls under
the Solaris name, and ``execute`` turns each op back into Linux names (sysctl
paths and ``/sys`` know no altname).  Without entries nothing is renamed.

May import: ``ipmp.model``, ``ipmp.ops``, ``ipmp.errors``, ``ipmp.ifmap``,
pyroute2, asyncio.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shlex
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface, ip_network
from types import TracebackType
from typing import Any, Final

from pyroute2 import AsyncIPRoute, NetlinkError

from ipmp.errors import ApplyError
from ipmp.ifmap import MapEntry, NameMap
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
from ipmp.ops import (
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelRoute,
    DelRule,
    Op,
    SetLink,
    SetSysctl,
    command,
)

__all__ = ["PROC_SYS", "Kernel", "execute_plan", "read_kernel"]

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
# Message accessors: the only code that touches pyroute2's untyped messages
# --------------------------------------------------------------------------


class _Msg:
    """One decoded netlink message: header fields plus its attributes by name.

    pyroute2 decodes an attribute only when its value is asked for (stats and
    per-family link data are most of a link message), and its ``msg.get``
    scans the attribute list on every call.  So the attribute *slots* are
    indexed once by name and only the values wanted are decoded: this halved
    the cost of turning a link message into a ``KLink``.
    """

    __slots__ = ("_msg", "_slots")

    def __init__(self, msg: Any) -> None:
        self._msg = msg
        slots: dict[str, Any] = {}
        for slot in msg["attrs"]:
            # slot[0] is the name and never decodes; the first one wins, as
            # with pyroute2's get_attr().
            slots.setdefault(slot[0], slot)
        self._slots = slots

    def _value(self, name: str) -> Any:
        slot = self._slots.get(name)
        return None if slot is None else slot[1]

    def value(self, name: str) -> Any:
        """An attribute's decoded value as pyroute2 gives it (nested ones stay here)."""
        return self._value(name)

    def field(self, name: str) -> int:
        return int(self._msg[name])

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


def _family(msg: Any) -> Family | None:
    """IPv4 or IPv6; None for the other families a dump may hold (ipmr rules, ...)."""
    return _FAMILY.get(int(msg["family"]))


def _link(m: _Msg) -> KLink:
    flags = m.field("flags")
    kind = m.nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    mac = m.text("IFLA_ADDRESS")
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
    )


def _altnames(m: _Msg) -> tuple[str, ...]:
    """The link's alternative names (IFLA_PROP_LIST / IFLA_ALT_IFNAME, kernel 5.5+)."""
    props = m.value("IFLA_PROP_LIST")
    if props is None:
        return ()
    return tuple(str(name) for name in props.get_attrs("IFLA_ALT_IFNAME"))


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
    )


def _next_hops6(m: _Msg, names: dict[int, str]) -> list[tuple[str, IPv6Address]]:
    """The link-local next hops of one IPv6 route, with their outgoing interfaces.

    A route with several routers (``ip -6 route append``, or the kernel's
    merge of equal routes) carries them as RTA_MULTIPATH next hops.
    """
    hops: list[tuple[int, Any]] = []
    multipath = m.value("RTA_MULTIPATH")
    if multipath:
        hops = [(int(nh["oif"]), nh.get_attr("RTA_GATEWAY")) for nh in multipath]
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
# Request arguments: ops turned into pyroute2 keyword arguments
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
    return args


def _address_args(a: KAddress, *, add: bool) -> dict[str, object]:
    args: dict[str, object] = {
        "index": _index(a.ifname),
        "family": _AF[a.family],
        "prefixlen": a.address.network.prefixlen,
    }
    if a.peer is not None:
        args["address"] = str(a.peer)
        args["local"] = str(a.address.ip)
    else:
        args["address"] = str(a.address.ip)
    if not add:
        return args
    flags = 0
    if a.noprefixroute:
        flags |= IFA_F_NOPREFIXROUTE
    if a.family is Family.INET6:
        # The address is already proven on this link; DAD would leave it
        # tentative (unbindable) for 1-2 s (linux-mapping.md, Q6).
        flags |= IFA_F_NODAD
    if flags:
        args["flags"] = flags
    if a.family is Family.INET:
        if a.label:
            args["label"] = a.label
        if a.broadcast is not None:
            args["broadcast"] = str(a.broadcast)
    if a.deprecated:
        args["preferred_lft"] = 0
        args["valid_lft"] = INFINITY_LIFE_TIME
    return args


def _route_args(r: KRoute, *, add: bool) -> dict[str, object]:
    metric = r.metric
    if r.family is Family.INET6 and metric == 0:
        metric = IP6_RT_PRIO_USER
    # "family" first: pyroute2's argument filters look at it while they
    # process the keys that follow.
    args: dict[str, object] = {
        "family": _AF[r.family],
        "dst_len": r.dst.prefixlen,
        "oif": _index(r.dev),
        "table": r.table,
        "proto": RTPROT_IPMP,
        "priority": metric,
    }
    if r.dst.prefixlen:
        args["dst"] = str(r.dst.network_address)
    if r.gateway is not None:
        args["gateway"] = str(r.gateway)
    if r.src is not None:
        args["prefsrc"] = str(r.src)
    if not add:
        args["scope"] = RT_SCOPE_NOWHERE
    elif r.family is Family.INET:
        args["scope"] = RT_SCOPE_UNIVERSE if r.gateway is not None else RT_SCOPE_LINK
    return args


def _rule_args(r: KRule) -> dict[str, object]:
    return {
        "family": _AF[r.family],
        "priority": r.priority,
        "src": str(r.src),
        "src_len": _HOST_PREFIX[r.family],
        "table": r.table,
        "protocol": RTPROT_IPMP,
    }


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
    return ApplyError(f"{command(op)}: {reason}", op=op, errno_=code)


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
        self._ifmap = tuple(ifmap)
        #: The translation of the last read (``ifmap`` checked against its links).
        self.names = NameMap()

    async def __aenter__(self) -> Kernel:
        # ext_ack: the kernel then says *why* (e.g. "Nexthop has invalid
        # gateway"), and the reason goes into ApplyError's message.
        self._ipr = AsyncIPRoute(groups=0, ext_ack=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            ipr.close()

    @property
    def _sock(self) -> Any:
        if self._ipr is None:
            raise RuntimeError("Kernel used outside 'async with'")
        return self._ipr

    async def _dump(self, kind: str) -> AsyncIterator[Any]:
        method = getattr(self._sock, kind)
        async for msg in await method("dump"):
            yield msg

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
        links = await self._links()
        names = {lk.index: lk.name for lk in links}
        linux = {lk.index: self.names.linux(lk.name) for lk in links}
        addresses: list[KAddress] = []
        async for m in self._dump("addr"):
            family = _family(m)
            ifname = names.get(int(m["index"]))
            # A link that appeared after the link dump is seen on the next read.
            if family is not None and ifname is not None:
                ka = _address(_Msg(m), ifname, family)
                if ka.label and self.names:
                    ka = replace(ka, label=self.names.label(ka.label, linux[int(m["index"])]))
                addresses.append(ka)
        routes: set[KRoute] = set()
        async for m in self._dump("route"):
            family = _family(m)
            # The header field first: most routes are not ours.
            if family is not None and int(m["proto"]) == RTPROT_IPMP:
                routes.add(_route(_Msg(m), family, names))
        rules: set[KRule] = set()
        async for m in self._dump("rule"):
            family = _family(m)
            msg = _Msg(m)
            if family is not None and msg.num("FRA_PROTOCOL") == RTPROT_IPMP:
                rule = _rule(msg, family)
                if rule is not None:
                    rules.add(rule)
        sysctls = tuple((k, v) for k in sysctl_keys
                        if (v := _read_sysctl(self.names.sysctl_key(k))) is not None)
        return KernelState(
            links=tuple(links),
            addresses=tuple(addresses),
            routes=frozenset(routes),
            rules=frozenset(rules),
            sysctls=sysctls,
        )

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
        links = await self._links()
        names = {lk.index: lk.name for lk in links}
        found: dict[tuple[str, IPv6Address], None] = {}
        async for m in await self._sock.route("dump", family=socket.AF_INET6):
            if _family(m) is not Family.INET6:
                continue
            msg = _Msg(m)
            if msg.num("RTA_TABLE", msg.field("table")) != RT_TABLE_MAIN:
                continue
            for hop in _next_hops6(msg, names):
                found.setdefault(hop, None)
        return tuple(found)

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
            except NetlinkError as exc:
                detail = str(exc.args[1]) if len(exc.args) > 1 and exc.args[1] else ""
                raise _failure(op, int(exc.code), detail) from exc
            except OSError as exc:
                raise _failure(op, exc.errno or 0, exc.strerror or "") from exc
            except ValueError as exc:
                # pyroute2 or the key check refused a value before anything
                # reached the kernel: a failed op like any other.
                raise _failure(op, errno.EINVAL, str(exc)) from exc
            if done is not None:
                done(i)

    async def _links(self) -> list[KLink]:
        """Every link, by index, named as the view names it (``ifmap``)."""
        raw = await self.linux_links()
        if self._ifmap:
            self.names = NameMap.of(self._ifmap, raw)
        return [self.names.link(lk) for lk in raw]

    async def linux_links(self) -> list[KLink]:
        """Every link by index under its Linux name, with its altnames as the kernel has them."""
        return sorted([_link(_Msg(m)) async for m in self._dump("link")], key=lambda lk: lk.index)

    async def add_altname(self, ifname: str, altname: str) -> None:
        """``ip link property add dev IFNAME altname ALTNAME``; raises ``ApplyError``."""
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
        ipr = self._sock
        match op:
            case SetSysctl(key=key, value=value):
                _write_sysctl(key, value)
            case SetLink():
                await ipr.link("set", **_link_args(op))
            case AddAddress(address=a):
                await ipr.addr("add", **_address_args(a, add=True))
            case DelAddress(address=a):
                await ipr.addr("del", **_address_args(a, add=False))
            case AddRoute(route=r):
                await ipr.route("add", **_route_args(r, add=True))
            case DelRoute(route=r):
                await ipr.route("del", **_route_args(r, add=False))
            case AddRule(rule=r):
                await ipr.rule("add", **_rule_args(r))
            case DelRule(rule=r):
                await ipr.rule("del", **_rule_args(r))


# --------------------------------------------------------------------------
# Synchronous conveniences for the command-line tools
# --------------------------------------------------------------------------


def read_kernel(sysctl_keys: Iterable[str] = ()) -> KernelState:
    """``Kernel.read`` in a fresh event loop."""

    async def run() -> KernelState:
        async with Kernel() as kernel:
            return await kernel.read(sysctl_keys)

    return asyncio.run(run())


def execute_plan(ops: Sequence[Op], *, done: Done | None = None) -> None:
    """``Kernel.execute`` in a fresh event loop; raises ``ApplyError``."""

    async def run() -> None:
        async with Kernel() as kernel:
            await kernel.execute(ops, done=done)

    asyncio.run(run())



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
WATCH_GROUPS: Final = (_RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV4_ROUTE | _RTMGRP_IPV4_RULE
                       | _RTMGRP_IPV6_IFADDR | _RTMGRP_IPV6_ROUTE | (1 << (_RTNLGRP_IPV6_RULE - 1)))
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
    ``read()`` returns link events and a flag saying that addresses, routes or
    rules changed, or that the socket overran (then everything must be read
    again).
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


def carrier(ifname: str) -> bool | None:
    """The carrier bit, read directly.

    The kernel's linkwatch batches carrier events of physical NICs up to 1 s
    (linux-mapping.md Q2); ``/sys/class/net/IF/carrier`` reads the driver's
    state at once, so the daemon polls it cheaply between events.  None when
    the interface is gone; False when it is admin down (the read fails EINVAL).
    """
    try:
        with open(f"/sys/class/net/{ifname}/carrier", "rb") as fh:
            return fh.read(1) == b"1"
    except FileNotFoundError:
        return None
    except OSError:
        return False
