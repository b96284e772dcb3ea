"""An in-memory kernel for the pure tests: ``FakeKernel`` implements ``apply.KernelIO``.

It keeps links, addresses, the toolkit's routes and rules, and sysctls, and
carries out plan operations with the Linux behaviour the plan relies on.  Each
rule below was measured on kernel 6.18 in a throwaway namespace (or is listed
in linux-mapping.md Q6); the fake is for checking the *logic* of planning and
reverting, never a proof of what a real kernel does (that is tests/netns).
As a check of the fake itself, random plan pairs and their reverts (the
generator of test_plan.py) were run op by op on a real namespace and here:
same errno for every op, same managed state after every plan.

* Deleting an IPv4 address deletes every route whose ``src`` is that address
  (once no link holds it any more).  IPv6 keeps such a route and only clears
  its ``src``.
* Deleting the last IPv4 address of a link deletes every IPv4 route through
  that link, in every table (``fib_disable_ip``).
* With ``promote_secondaries`` 0 (the kernel default), deleting a primary
  IPv4 address also deletes the secondaries of its subnet on that link.
* Setting a link admin-down deletes every route through it (both families,
  every table); it also flushes the link's IPv6 addresses unless
  ``keep_addr_on_down`` is 1.  Admin-up gives the link an IPv6 link-local
  address (kernel-owned).
* Adding a route on a down link fails ENETDOWN; with a ``src`` that no link
  holds, EINVAL; with a gateway that no gateway-less route of the same link
  in the same table (or main) covers, ENETUNREACH (IPv4) / EHOSTUNREACH (IPv6).
* A route is identified by (family, table, destination, metric): adding a
  second one fails EEXIST even through another link or gateway.
* Writing ``net/ipv6/conf/all/ignore_routes_with_linkdown`` (or
  ``forwarding``, ``disable_ipv6``) copies the value to every link.
* Adding an existing address, route or rule fails EEXIST; deleting a missing
  address fails EADDRNOTAVAIL, a missing route ESRCH, a missing rule ENOENT;
  naming a missing link ENODEV; a missing sysctl ENOENT; an IPv4 label of
  16 characters or more ERANGE.

``fail_at`` makes the op with that index fail with ``ApplyError`` (EIO), the
index counting every op handed to ``execute`` since creation or ``reset``.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Interface, IPv6Interface, ip_interface, ip_network

from ipmp.errors import ApplyError
from ipmp.linux.ops import (
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
from ipmp.linux.view import RT_TABLE_MAIN
from ipmp.model import (
    IFNAMSIZ,
    Family,
    IPAddress,
    KAddress,
    KernelState,
    KLink,
    KRoute,
    KRule,
)

__all__ = [
    "FakeKernel",
    "Managed",
    "kaddr",
    "kroute",
    "link_local_of",
    "mac_of",
    "make_kernel",
    "make_links",
    "managed",
]

#: The loopback link is index 1, as in a new network namespace; NICs follow.
LOOPBACK_INDEX = 1
FIRST_NIC_INDEX = 2
#: The value a sysctl has until something writes it (a new namespace's defaults).
SYSCTL_DEFAULT = "0"
#: IPv6 sysctls whose ``all`` value, when written, is copied to every link
#: (addrconf's fixups); the IPv4 ones are combined at use instead.
IPV6_ALL_PROPAGATES = frozenset({"forwarding", "disable_ipv6", "ignore_routes_with_linkdown"})


# --------------------------------------------------------------------------
# Building kernel states
# --------------------------------------------------------------------------


def mac_of(index: int) -> str:
    """A deterministic, locally administered unicast MAC for link ``index``."""
    return f"02:00:00:00:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"


def link_local_of(mac: str) -> IPv6Interface:
    """The EUI-64 link-local address the kernel gives a link with this MAC."""
    octets = [int(part, 16) for part in mac.split(":")]
    eui = [octets[0] ^ 0x02, *octets[1:3], 0xFF, 0xFE, *octets[3:6]]
    value = (0xFE80 << 112) | int.from_bytes(bytes(eui), "big")
    return IPv6Interface((value, 64))


def make_links(*names: str, up: bool = False, loopback: bool = True) -> tuple[KLink, ...]:
    """``lo`` (index 1, up) and one veth-like link per name, indexes from 2 in order."""
    links: list[KLink] = []
    if loopback:
        links.append(
            KLink("lo", LOOPBACK_INDEX, up=True, running=True, mtu=65536, mac="00:00:00:00:00:00",
                  loopback=True, multicast=False)
        )
    for offset, name in enumerate(names):
        index = FIRST_NIC_INDEX + offset
        links.append(KLink(name, index, up=up, running=up, mtu=1500, mac=mac_of(index), kind="veth"))
    return tuple(links)


def make_kernel(
    *names: str,
    up: bool = False,
    loopback: bool = True,
    addresses: Iterable[KAddress] = (),
    sysctls: Iterable[tuple[str, str]] = (),
) -> KernelState:
    """A kernel as a new namespace shows it: NICs named like the examples, nothing configured.

    Up links carry their link-local address, as the kernel gives them one.
    """
    links = make_links(*names, up=up, loopback=loopback)
    found: list[KAddress] = []
    if loopback:
        found.append(KAddress("lo", IPv4Interface("127.0.0.1/8"), label="lo", noprefixroute=False))
    for link in links:
        if link.up and not link.loopback and link.mac is not None:
            found.append(KAddress(link.name, link_local_of(link.mac), noprefixroute=False, kernel_owned=True))
    if loopback:
        found.append(KAddress("lo", IPv6Interface("::1/128"), noprefixroute=False))
    found.extend(addresses)
    return KernelState(links=links, addresses=tuple(found), sysctls=tuple(sysctls))


# --------------------------------------------------------------------------
# Comparing kernel states
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Managed:
    """The parts of a kernel state the toolkit manages, in comparable form."""

    links: frozenset[tuple[str, bool, int, bool, str | None]]
    addresses: frozenset[KAddress]
    routes: frozenset[KRoute]
    rules: frozenset[KRule]
    sysctls: frozenset[tuple[str, str]]


def managed(state: KernelState) -> Managed:
    """Links (admin state, MTU, ARP, MAC), addresses but the kernel's own, routes, rules, sysctls."""
    return Managed(
        links=frozenset((lk.name, lk.up, lk.mtu, lk.noarp, lk.mac) for lk in state.links),
        addresses=frozenset(a for a in state.addresses if not a.kernel_owned),
        routes=state.routes,
        rules=state.rules,
        sysctls=frozenset(state.sysctls),
    )


# --------------------------------------------------------------------------
# The fake kernel
# --------------------------------------------------------------------------


def _failure(op: Op, code: int, detail: str = "") -> ApplyError:
    reason = os.strerror(code)
    if detail:
        reason = f"{reason} ({detail})"
    return ApplyError(f"{command(op)}: {reason}", op=op, errno_=code)


def _same_subnet(a: KAddress, b: KAddress) -> bool:
    """The kernel's notion of one IPv4 subnet on a link: same mask, same network."""
    return (
        a.ifname == b.ifname
        and a.family is Family.INET
        and b.family is Family.INET
        and a.address.network == b.address.network
    )


class FakeKernel:
    """``apply.KernelIO`` over an in-memory kernel; see the module docstring for its rules."""

    def __init__(self, state: KernelState | None = None, *, fail_at: int | None = None) -> None:
        state = state if state is not None else make_kernel()
        self._links: dict[str, KLink] = {lk.name: lk for lk in state.links}
        self._carrier: dict[str, bool] = {lk.name: lk.running or not lk.up for lk in state.links}
        self._addresses: list[KAddress] = list(state.addresses)
        self._routes: set[KRoute] = set(state.routes)
        self._rules: set[KRule] = set(state.rules)
        self._sysctls: dict[str, str] = dict(state.sysctls)
        self.fail_at = fail_at
        #: Ops handed to ``execute`` since creation or ``reset`` (failed ones too).
        self.attempts = 0
        #: Ops that succeeded, in order.
        self.executed: list[Op] = []
        self.reads = 0

    # -- test controls -----------------------------------------------------

    def reset(self, fail_at: int | None = None) -> None:
        """Start counting ops from 0 again, with a new failure point (or none)."""
        self.fail_at = fail_at
        self.attempts = 0
        self.executed.clear()

    def set_carrier(self, name: str, carrier: bool) -> None:
        self._carrier[name] = carrier

    # -- KernelIO -----------------------------------------------------------

    async def read(self, sysctl_keys: Iterable[str] = ()) -> KernelState:
        self.reads += 1
        return self.state(sysctl_keys)

    async def execute(self, ops: Sequence[Op]) -> None:
        for op in ops:
            index = self.attempts
            self.attempts += 1
            if self.fail_at is not None and index == self.fail_at:
                raise _failure(op, errno.EIO, f"injected failure at op {index}")
            self._do(op)
            self.executed.append(op)

    # -- synchronous conveniences -------------------------------------------

    def state(self, sysctl_keys: Iterable[str] = ()) -> KernelState:
        """What ``read`` returns: links by index, IPv4 addresses then IPv6, primaries first."""
        links = tuple(
            replace(lk, running=lk.up and self._carrier.get(lk.name, True))
            for lk in sorted(self._links.values(), key=lambda lk: lk.index)
        )
        order = {lk.name: i for i, lk in enumerate(links)}
        v4 = [a for a in self._addresses if a.family is Family.INET]
        v6 = [a for a in self._addresses if a.family is Family.INET6]
        v4.sort(key=lambda a: (order.get(a.ifname, 0), self._is_secondary(a)))
        v6.sort(key=lambda a: order.get(a.ifname, 0))
        sysctls = tuple((k, v) for k in sysctl_keys if (v := self._sysctl(k)) is not None)
        return KernelState(
            links=links,
            addresses=(*v4, *v6),
            routes=frozenset(self._routes),
            rules=frozenset(self._rules),
            sysctls=sysctls,
        )

    def run(self, ops: Sequence[Op]) -> None:
        """``execute`` without an event loop."""
        asyncio.run(self.execute(ops))

    # -- sysctls ------------------------------------------------------------

    def _sysctl_exists(self, key: str) -> bool:
        if key in self._sysctls:
            return True
        parts = key.split("/")
        return (
            len(parts) == 5
            and parts[0] == "net"
            and parts[1] in ("ipv4", "ipv6")
            and parts[2] == "conf"
            and (parts[3] in ("all", "default") or parts[3] in self._links)
        )

    def _sysctl(self, key: str) -> str | None:
        if not self._sysctl_exists(key):
            return None
        return self._sysctls.get(key, SYSCTL_DEFAULT)

    def _promote_secondaries(self, ifname: str) -> bool:
        dev = self._sysctl(f"net/ipv4/conf/{ifname}/promote_secondaries") or "0"
        every = self._sysctl("net/ipv4/conf/all/promote_secondaries") or "0"
        return int(dev) > 0 or int(every) > 0

    def _keep_addr_on_down(self, ifname: str) -> bool:
        dev = int(self._sysctl(f"net/ipv6/conf/{ifname}/keep_addr_on_down") or "0")
        if dev != 0:
            return dev > 0
        return int(self._sysctl("net/ipv6/conf/all/keep_addr_on_down") or "0") > 0

    # -- addresses ----------------------------------------------------------

    def _is_secondary(self, a: KAddress) -> bool:
        """An IPv4 address is secondary when an earlier one of its link holds its subnet."""
        if a.family is not Family.INET:
            return False
        for other in self._addresses:
            if other is a:
                return False
            if _same_subnet(other, a):
                return True
        return False

    def _is_local(self, family: Family, ip: IPAddress) -> bool:
        return any(a.family is family and a.address.ip == ip for a in self._addresses)

    def _find_address(self, a: KAddress) -> KAddress | None:
        for held in self._addresses:
            if held.ifname == a.ifname and held.address == a.address and held.peer == a.peer:
                return held
        return None

    def _add_address(self, op: AddAddress) -> None:
        a = op.address
        if a.ifname not in self._links:
            raise _failure(op, errno.ENODEV)
        for held in self._addresses:
            if held.ifname != a.ifname or held.family is not a.family:
                continue
            if a.family is Family.INET6 and held.address.ip == a.address.ip:
                raise _failure(op, errno.EEXIST, "ipv6: address already assigned")
            if a.family is Family.INET and held.address == a.address and held.peer == a.peer:
                raise _failure(op, errno.EEXIST, "ipv4: Address already assigned")
        if a.family is Family.INET:
            if len(a.label) >= IFNAMSIZ:
                raise _failure(op, errno.ERANGE)
            stored = replace(a, label=a.label or a.ifname, kernel_owned=False)
        else:
            stored = replace(a, label="", broadcast=None, kernel_owned=False)
        self._addresses.append(stored)

    def _del_address(self, op: DelAddress) -> None:
        a = op.address
        if a.ifname not in self._links:
            raise _failure(op, errno.ENODEV)
        held = self._find_address(a)
        if held is None:
            raise _failure(op, errno.EADDRNOTAVAIL, "address not found")
        gone = [held]
        primary = a.family is Family.INET and not self._is_secondary(held)
        if primary and not self._promote_secondaries(a.ifname):
            gone += [o for o in self._addresses if o is not held and _same_subnet(o, held)]
        self._addresses = [o for o in self._addresses if all(o is not g for g in gone)]
        for g in gone:
            self._forget_source(g.family, g.address.ip)
        if a.family is Family.INET and not any(
            o.ifname == a.ifname and o.family is Family.INET for o in self._addresses
        ):
            # fib_disable_ip: a link without IPv4 addresses keeps no IPv4 route.
            self._routes = {r for r in self._routes if not (r.family is Family.INET and r.dev == a.ifname)}

    def _forget_source(self, family: Family, ip: IPAddress) -> None:
        """The kernel's reaction to a source address that is no longer local."""
        if self._is_local(family, ip):
            return
        kept: set[KRoute] = set()
        for r in self._routes:
            if r.family is family and r.src == ip:
                if family is Family.INET:
                    continue  # IPv4 deletes the route
                r = replace(r, src=None)  # IPv6 keeps it without a source
            kept.add(r)
        self._routes = kept

    # -- links ----------------------------------------------------------------

    def _set_link(self, op: SetLink) -> None:
        link = self._links.get(op.name)
        if link is None:
            raise _failure(op, errno.ENODEV)
        if op.mtu is not None and not 68 <= op.mtu <= 65535:
            raise _failure(op, errno.EINVAL)
        if op.mac is not None:
            octets = [int(p, 16) for p in op.mac.split(":")]
            if len(octets) != 6 or octets[0] & 1 or not any(octets):
                raise _failure(op, errno.EADDRNOTAVAIL)
        new = link
        if op.mtu is not None:
            new = replace(new, mtu=op.mtu)
        if op.noarp is not None:
            new = replace(new, noarp=op.noarp)
        if op.mac is not None:
            new = replace(new, mac=op.mac.lower())
        if op.up is not None:
            new = replace(new, up=op.up)
        if op.token is not None:
            new = replace(new, token=op.token if int(op.token) else None)
        self._links[op.name] = new
        if link.up and not new.up:
            self._link_down(op.name)
        elif new.up and not link.up:
            self._link_up(new)

    def _link_down(self, name: str) -> None:
        # Admin down deletes the link's routes in every table, both families.
        self._routes = {r for r in self._routes if r.dev != name}
        keep = self._keep_addr_on_down(name)
        self._addresses = [
            a
            for a in self._addresses
            if not (a.ifname == name and a.family is Family.INET6 and (a.kernel_owned or not keep))
        ]

    def _link_up(self, link: KLink) -> None:
        if link.loopback or link.mac is None:
            return
        ll = link_local_of(link.mac)
        if not any(a.ifname == link.name and a.address == ll for a in self._addresses):
            self._addresses.append(KAddress(link.name, ll, noprefixroute=False, kernel_owned=True))

    # -- routes and rules -------------------------------------------------------

    def _add_route(self, op: AddRoute) -> None:
        r = op.route
        link = self._links.get(r.dev)
        if link is None:
            raise _failure(op, errno.ENODEV)
        if not link.up:
            raise _failure(op, errno.ENETDOWN, "Device for nexthop is not up")
        if r.src is not None and not self._is_local(r.family, r.src):
            raise _failure(op, errno.EINVAL, "Invalid prefsrc address")
        if r.gateway is not None and not any(
            o.family is r.family
            and o.gateway is None
            and o.dev == r.dev
            and o.table in (r.table, RT_TABLE_MAIN)
            and r.gateway in o.dst
            for o in self._routes
        ):
            code = errno.ENETUNREACH if r.family is Family.INET else errno.EHOSTUNREACH
            raise _failure(op, code, "Nexthop has invalid gateway")
        for o in self._routes:
            if (o.family, o.table, o.dst, o.metric) == (r.family, r.table, r.dst, r.metric):
                raise _failure(op, errno.EEXIST)
        self._routes.add(r)

    def _del_route(self, op: DelRoute) -> None:
        r = op.route
        if r.dev not in self._links:
            raise _failure(op, errno.ENODEV)
        for o in self._routes:
            same = (o.family, o.table, o.dst, o.dev, o.gateway, o.metric) == (
                r.family, r.table, r.dst, r.dev, r.gateway, r.metric
            )
            # IPv6 matches a delete without looking at the source.
            if same and (r.src is None or o.src == r.src or r.family is Family.INET6):
                self._routes.discard(o)
                return
        raise _failure(op, errno.ESRCH)

    def _add_rule(self, op: AddRule) -> None:
        if op.rule in self._rules:
            raise _failure(op, errno.EEXIST)
        self._rules.add(op.rule)

    def _del_rule(self, op: DelRule) -> None:
        if op.rule not in self._rules:
            raise _failure(op, errno.ENOENT)
        self._rules.discard(op.rule)

    # -- dispatch ---------------------------------------------------------------

    def _do(self, op: Op) -> None:
        match op:
            case SetSysctl(key=key, value=value):
                if not self._sysctl_exists(key):
                    raise _failure(op, errno.ENOENT)
                value = " ".join(value.split())
                self._sysctls[key] = value
                prefix, _, name = key.rpartition("/")
                if prefix == "net/ipv6/conf/all" and name in IPV6_ALL_PROPAGATES:
                    for link in [*self._links, "default"]:
                        self._sysctls[f"net/ipv6/conf/{link}/{name}"] = value
                dev = prefix.rpartition("/")[2]
                if name == "forwarding" and dev in self._links:
                    # The kernel reports it with the link (IFLA_AF_SPEC).
                    family = Family.INET if prefix.startswith("net/ipv4/") else Family.INET6
                    lk = self._links[dev]
                    on = lk.forwarding | {family} if value != "0" else lk.forwarding - {family}
                    self._links[dev] = replace(lk, forwarding=on)
            case SetLink():
                self._set_link(op)
            case AddAddress():
                self._add_address(op)
            case DelAddress():
                self._del_address(op)
            case AddRoute():
                self._add_route(op)
            case DelRoute():
                self._del_route(op)
            case AddRule():
                self._add_rule(op)
            case DelRule():
                self._del_rule(op)


def kaddr(ifname: str, address: str, label: str = "", *, deprecated: bool = False) -> KAddress:
    """A toolkit-made address (``noprefixroute``), IPv4 broadcast left out."""
    iface = ip_interface(address)
    return KAddress(ifname, iface, label=label, deprecated=deprecated)


def kroute(
    dev: str,
    dst: str,
    *,
    table: int = RT_TABLE_MAIN,
    gateway: IPAddress | None = None,
    src: IPAddress | None = None,
    metric: int = 0,
) -> KRoute:
    net = ip_network(dst)
    return KRoute(Family(net.version), table, net, dev, gateway=gateway, src=src, metric=metric)
