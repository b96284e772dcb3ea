"""diff(current, desired) -> Plan: the kernel changes that turn one state into the other.

The one ordering rule of the toolkit lives here:

1. sysctls (promote_secondaries must be 1 before any primary address goes,
   or the kernel deletes the secondaries with it: linux-mapping.md Q6), the
   forwarding of ``router`` and the IPv6 token;
2. links that stay or come up (an address needs an up link for its routes);
3. routes that go, before their addresses, except the IPv4 routes the kernel
   deletes by itself with their address (a second delete would fail);
4. addresses that go, then addresses that come, unit 0 first (the first IPv4
   address of a subnet is the kernel's primary), then rules that go and come:
   this is the data path, and a failover is done when it is;
5. routes that come (subnet routes before default routes, whose gateway
   must be reachable);
6. promote_secondaries turned off (only a revert does that): after the
   addresses, for the reason of 1 — the kernel's primary of a subnet may be
   an address added after the one ``_address_order`` deletes last;
7. links that go down, last.

Only what ``scope`` covers is compared: a plan never touches an interface or
family it was not asked about.

Pure module: no I/O.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from ipmp.linux.ops import (
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelRoute,
    DelRule,
    Op,
    Plan,
    SetLink,
    SetSysctl,
)
from ipmp.linux.view import Scope, is_managed_address, table_of
from ipmp.model import LOCALHOST, Family, KAddress, KernelState, KLink, KRoute, KRule


def _link_changes(cur: KLink, want: KLink) -> SetLink | None:
    up = want.up if cur.up != want.up else None
    mtu = want.mtu if cur.mtu != want.mtu else None
    noarp = want.noarp if cur.noarp != want.noarp else None
    mac = want.mac if want.mac is not None and cur.mac != want.mac else None
    if up is None and mtu is None and noarp is None and mac is None:
        return None
    return SetLink(want.name, up=up, mtu=mtu, noarp=noarp, mac=mac)


#: The sysctl directory of each family's per-NIC settings.
_CONF: dict[Family, str] = {Family.INET: "net/ipv4/conf", Family.INET6: "net/ipv6/conf"}
#: Clears the IPv6 token (``ip token set ::``).
_NO_TOKEN = IPv6Address(0)


def _ill_changes(cur: KLink, want: KLink, scope: Scope) -> list[Op]:
    """The per-family link settings of ``ifconfig``: ROUTER and the IPv6 token.

    ROUTER is the NIC's ``forwarding`` sysctl of that family; the token is
    ``ip token``, which only IPv6 has.  Each changes only for a family in
    ``scope``, and is compared with the kernel's own value: a forwarding
    switched on by the host's sysctl.conf stays as it is.
    """
    ops: list[Op] = []
    for family in (Family.INET, Family.INET6):
        on = family in want.forwarding
        if scope.covers(want.name, family) and on != (family in cur.forwarding):
            ops.append(SetSysctl(f"{_CONF[family]}/{want.name}/forwarding", "1" if on else "0"))
    if scope.covers(want.name, Family.INET6) and want.token != cur.token:
        ops.append(SetLink(want.name, token=want.token or _NO_TOKEN))
    return ops


def _address_order(a: KAddress) -> tuple[str, int, int, str, str]:
    label_unit = 0
    if a.label and ":" in a.label:
        tail = a.label.rpartition(":")[2]
        label_unit = int(tail) if tail.isdigit() else 0
    return (a.ifname, int(a.family), label_unit, a.label, str(a.address))


def _route_order(r: KRoute) -> tuple[int, int, int, str, str]:
    # Subnet routes (longer prefixes) before default routes.
    return (int(r.family), -r.dst.prefixlen, r.table, r.dev, str(r))


def _route_in_scope(r: KRoute, scope: Scope) -> bool:
    return scope.covers(r.dev, r.family)


def diff(current: KernelState, desired: KernelState, scope: Scope) -> Plan:
    """The operations that take ``current`` to ``desired`` within ``scope``."""
    early: list[Op] = []
    demote: list[Op] = []
    late: list[Op] = []

    # 1./6. sysctls: desired lists every key it needs.
    for key, value in desired.sysctls:
        if current.sysctl(key) != value:
            (demote if _demotes(key, value) else early).append(SetSysctl(key, value))

    # 2./7. links
    for want in desired.links:
        cur = current.link(want.name)
        if cur is None:
            continue  # the caller has already refused a missing interface
        early += _ill_changes(cur, want, scope)
        change = _link_changes(cur, want)
        if change is None:
            continue
        if change.up is False:
            late.append(change)
        else:
            early.append(change)

    # 3.-5. rules, routes, addresses
    # The names first: a cheap test that leaves out nearly everything when a
    # failover's scope is two NICs of many.
    names = scope.names
    cur_addrs = {a for a in current.addresses if a.ifname in names and is_managed_address(a, scope)}
    want_addrs = {a for a in desired.addresses if a.ifname in names and is_managed_address(a, scope)}
    # A NIC's table holds rules of both families; only the families in scope count.
    # The desired links count too: a NIC deleted in the middle of an apply is
    # gone from ``current``, but the revert must still take its rules away.
    scope_tables = {
        table_of(link.index): link.name
        for link in (*current.links, *desired.links)
        if link.name in names and link.index
    }
    in_scope_addresses = {(a.family, a.address.ip) for a in cur_addrs | want_addrs}

    def rule_in_scope(rule: KRule) -> bool:
        if (rule.family, rule.src) in in_scope_addresses:
            return True
        name = scope_tables.get(rule.table)
        return name is not None and scope.covers(name, rule.family)

    cur_rules = {r for r in current.rules if rule_in_scope(r)}
    want_rules = {r for r in desired.rules if rule_in_scope(r)}
    cur_routes = {r for r in current.routes if r.dev in names and _route_in_scope(r, scope)}
    want_routes = {r for r in desired.routes if r.dev in names and _route_in_scope(r, scope)}

    gone_addrs = cur_addrs - want_addrs
    gone_addrs -= _localhost_kept(current, gone_addrs, want_addrs)
    # The kernel deletes a route whose src address is deleted, even when the
    # same address is added again at once: such routes go and come explicitly.
    gone_ips = {(a.family, a.address.ip) for a in gone_addrs}
    # And when a NIC's last IPv4 address goes, the kernel flushes every IPv4
    # route through it, in every table (fib_disable_ip), even if addresses
    # come back in the same plan.
    emptied = {
        name
        for name in names
        if scope.covers(name, Family.INET)
        and (mine := {a for a in current.addresses if a.ifname == name and a.family is Family.INET})
        and mine <= gone_addrs
    }
    orphaned = {
        r
        for r in cur_routes & want_routes
        if (r.src is not None and (r.family, r.src) in gone_ips)
        or (r.family is Family.INET and r.dev in emptied)
    }
    routes_out = (cur_routes - want_routes) | orphaned
    routes_in = (want_routes - cur_routes) | orphaned
    # IPv4 routes the kernel deletes by itself when their address goes: no
    # explicit delete (it would fail ESRCH), and the move of an address is
    # not held up by them.  IPv6 keeps such a route (it only clears the
    # src), so IPv6 routes are always deleted explicitly, before the address.
    implicit = {
        r for r in routes_out
        if r.family is Family.INET and ((r.family, r.src) in gone_ips or r.dev in emptied)
    }

    ops: list[Op] = list(early)
    ops += [DelRoute(r) for r in sorted(routes_out - implicit, key=_route_order, reverse=True)]
    # The data path first: addresses, then the rules that route their
    # replies; apply() announces the moved addresses right after these.
    ops += [DelAddress(a) for a in sorted(gone_addrs, key=_address_order, reverse=True)]
    ops += [AddAddress(a) for a in sorted(want_addrs - cur_addrs, key=_address_order)]
    ops += [DelRule(r) for r in sorted(cur_rules - want_rules)]
    ops += [AddRule(r) for r in sorted(want_rules - cur_rules)]
    ops += [AddRoute(r) for r in sorted(routes_in, key=_route_order)]
    ops += demote
    ops += late
    return tuple(ops)


def _localhost_kept(current: KernelState, gone: set[KAddress], wanted: set[KAddress]) -> set[KAddress]:
    """The 127.0.0.1 and ``::1`` of the loopback that a plan leaves where they are.

    ``ifconfig`` refuses a command that takes them away (``evaluate``), but a
    boot that no longer plumbs a family of lo0 would plan it, and Linux,
    unlike Solaris, cannot do without them: no plan deletes them, unless it
    puts the same address back (another prefix length).
    """
    if not gone:
        return set()
    loopbacks = {link.name for link in current.links if link.loopback}
    back = {(a.ifname, a.address.ip) for a in wanted}
    return {a for a in gone
            if a.ifname in loopbacks and a.address.ip in LOCALHOST and (a.ifname, a.address.ip) not in back}


def _demotes(key: str, value: str) -> bool:
    """Whether setting ``key`` to ``value`` turns promote_secondaries off."""
    return key.endswith("/promote_secondaries") and value.strip() in ("", "0")


def data_path_length(plan: Plan) -> int:
    """How many leading ops carry the data path (up to the last address or rule change).

    After them the moved addresses answer and their replies leave through
    the right NIC; what follows is routing for unbound traffic.
    """
    last = 0
    for i, op in enumerate(plan):
        if isinstance(op, (AddAddress, DelAddress, AddRule, DelRule)):
            last = i + 1
    return last
