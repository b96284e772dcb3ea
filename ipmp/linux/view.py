"""The Solaris view of the Linux kernel: ``merge`` of the kernel and the state store into a ``Config``.

``merge`` builds what ``ifconfig -a`` shows from the kernel plus the state
store; ``ipmp.linux.desired`` derives what the kernel must hold for a
``Config``.  The numbers and sysctls of the routing recipe of
linux-mapping.md ("Working recipe") are defined here, for both:

* every address the toolkit adds carries ``noprefixroute``: the toolkit owns
  the routes, so a test address can never become the source of unbound
  traffic (IPv4 picks the source from the route, not from DEPRECATED);
* one routing table per NIC (``IPMP_TABLE_BASE + ifindex``) holding the NIC's
  subnets and default routes, and a rule ``from <address> lookup <table>`` for
  every address, so replies to an address leave through the NIC that holds it
  and probes from a test address leave through its own NIC even when failed;
* main-table subnet routes whose ``src`` is a data address, one per NIC that
  holds a data address in the subnet (distinct metrics), so unbound sockets
  pick a data address;
* the sysctls the recipe relies on, set on each NIC it configures and never
  on ``all``: the NIC's own value is enough for every one of them (see
  ``NIC_SYSCTLS4``), while an ``all`` value would change every interface of
  the host, those the toolkit was never given too.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from ipaddress import IPv4Interface, IPv6Interface, ip_network
from typing import NamedTuple

from ipmp.model import (
    Config,
    Family,
    Interface,
    IPInterface,
    IPNetwork,
    KAddress,
    KernelState,
    KLink,
    KRoute,
    Logical,
)

#: Per-NIC routing tables are numbered from here (table = base + ifindex).
IPMP_TABLE_BASE = 1000
#: Main table the kernel uses for unbound lookups.
RT_TABLE_MAIN = 254
#: Rule priorities: test addresses first (they never move), then data
#: addresses; both before the kernel's ``main`` rule at 32766.
RULE_PREF_TEST = 100
RULE_PREF_DATA = 200
#: Main-table routes get metric base + ifindex so that two NICs in one subnet
#: never clash (the kernel refuses two IPv4 routes with equal dst and metric).
ROUTE_METRIC_BASE = 100
#: The n-th default router of a family gets n steps more metric than the
#: first (which the file prefers).  The step is above 1024, the metric the
#: kernel stores for an IPv6 route added with 0, so the order holds for both
#: families, and above any ROUTE_METRIC_BASE + ifindex in use.
ROUTER_METRIC_STEP = 1 << 16

#: Per-NIC IPv4 sysctls (linux-mapping.md, "Working recipe" and Q6): answer
#: ARP only for addresses on the asking NIC and announce from them (no ARP
#: flux), loose reverse-path filter (strict turns stale peer caches into
#: outages after failback), keep secondaries when the primary goes, skip
#: routes through a NIC without carrier.
#:
#: Only the NIC's own value is written, never ``conf/all``: the kernel
#: combines the two per key (include/linux/inetdevice.h, ip-sysctl.rst) and
#: for each of these the NIC's value alone gets the behaviour the recipe
#: needs, whatever ``all`` holds -- rp_filter, arp_ignore and arp_announce
#: take the maximum of the two, promote_secondaries and
#: ignore_routes_with_linkdown the logical or.  A write to ``all`` would
#: change every interface of the host instead: rp_filter=2 there made each
#: of them loose, the NICs the toolkit was never given too.
NIC_SYSCTLS4: tuple[tuple[str, str], ...] = (
    ("arp_ignore", "1"),
    ("arp_announce", "2"),
    ("rp_filter", "2"),
    ("promote_secondaries", "1"),
    ("ignore_routes_with_linkdown", "1"),
)
#: Of ``NIC_SYSCTLS4``, those only the members of an IPMP group get.  Loose
#: reverse-path filtering is for addresses that move: after a failover or
#: failback a peer with a stale neighbour entry still sends to the other
#: member's MAC, and probe replies may come in on another member; strict
#: mode drops both (linux-mapping.md Q4).  A NIC outside any group keeps
#: its addresses, so it keeps the administrator's rp_filter.
GROUP_ONLY_SYSCTLS4: frozenset[str] = frozenset({"rp_filter"})
#: Per-NIC IPv6 sysctls: admin-down must not flush the addresses we manage;
#: no routes through a NIC without carrier.  IPv6 reads only the NIC's
#: value of ignore_routes_with_linkdown, and a write to ``conf/all`` is
#: copied onto every link of the host and into ``default`` (addrconf), so
#: ``all`` is never written here either.
NIC_SYSCTLS6: tuple[tuple[str, str], ...] = (
    ("keep_addr_on_down", "1"),
    ("ignore_routes_with_linkdown", "1"),
)


def nic_sysctls(name: str, family: Family, *, grouped: bool) -> list[tuple[str, str]]:
    """The recipe's sysctls of one NIC and family; ``grouped``: the NIC is in an IPMP group."""
    if family is Family.INET:
        return [(f"net/ipv4/conf/{name}/{k}", v) for k, v in NIC_SYSCTLS4
                if grouped or k not in GROUP_ONLY_SYSCTLS4]
    return [(f"net/ipv6/conf/{name}/{k}", v) for k, v in NIC_SYSCTLS6]


def nic_sysctl_keys(name: str) -> list[str]:
    """Every sysctl the recipe may set on NIC ``name``, whatever its group and families."""
    return [k for family in (Family.INET, Family.INET6) for k, _ in nic_sysctls(name, family, grouped=True)]


def table_of(index: int) -> int:
    return IPMP_TABLE_BASE + index


class Scope(NamedTuple):
    """What a plan may touch: (interface, family) pairs.

    A NamedTuple: this module is on the read path of ``ifconfig -a``, which
    never makes a Scope, and a dataclass costs ~1 ms to create at import.
    """

    pairs: frozenset[tuple[str, Family]]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n for n, _ in self.pairs)

    def covers(self, ifname: str, family: Family) -> bool:
        return (ifname, family) in self.pairs


def subnet_of(address: IPv4Interface | IPv6Interface) -> IPNetwork:
    return ip_network(address.network)


# --------------------------------------------------------------------------
# kernel + store -> Solaris view
# --------------------------------------------------------------------------


def _label_unit(label: str, ifname: str) -> int | None:
    if label == ifname:
        return 0
    head, sep, tail = label.rpartition(":")
    if sep and head == ifname and tail.isdigit():
        return int(tail)
    return None


def _take_unit(wanted: int | None, used: set[int]) -> int:
    if wanted is not None and wanted not in used:
        used.add(wanted)
        return wanted
    unit = 0 if 0 not in used else 1
    while unit in used:
        unit += 1
    used.add(unit)
    return unit


class _Elsewhere(NamedTuple):
    """Where the kernel and the store put each address, host-wide.

    A daemon killed between its kernel change and its store write leaves an
    address in the kernel on one NIC while the store still files it under
    another; the store's record then says whose address it is (its home).
    """

    kernel: dict[tuple[Family, IPInterface], str]
    stored: dict[tuple[Family, IPInterface], tuple[str, Logical]]

    @classmethod
    def of(cls, kernel: KernelState, records: Iterable[Interface]) -> _Elsewhere:
        return cls(
            {(a.family, a.address): a.ifname for a in kernel.addresses if not a.kernel_owned},
            {(lg.family, lg.address): (itf.name, lg) for itf in records for lg in itf.logicals
             if lg.address is not None and lg.up and not lg.kernel_owned},
        )

    def moved_record(self, ifname: str, family: Family, address: IPInterface) -> Logical | None:
        """The store's record of an address the kernel holds on ``ifname`` but the store files elsewhere."""
        found = self.stored.get((family, address))
        if found is None or found[0] == ifname:
            return None
        owner, lg = found
        return replace(lg, home=lg.home or owner, home_unit=lg.home_unit if lg.home else lg.unit)

    def on_other_link(self, ifname: str, family: Family, address: IPInterface) -> bool:
        held = self.kernel.get((family, address))
        return held is not None and held != ifname


def _logicals_of_family(
    link: KLink, family: Family, kaddrs: Sequence[KAddress], stored: Interface | None,
    elsewhere: _Elsewhere | None = None,
) -> list[Logical]:
    """Rebuild one family's logical interfaces: the kernel is the truth for up addresses."""
    records = [lg for lg in (stored.logicals if stored else ()) if lg.family == family]
    by_address = {lg.address: lg for lg in records if lg.address is not None and lg.up}
    used: set[int] = set()
    out: list[Logical] = []
    pending: list[tuple[KAddress, Logical | None]] = []
    for ka in kaddrs:
        if ka.family != family:
            continue
        if ka.kernel_owned:
            # IPv6 link-local is unit 0 of inet6 (Solaris: the link-local is the
            # physical interface's own address); keep the stored flags on it.
            rec0 = next((lg for lg in records if lg.unit == 0), None)
            if family is Family.INET6 and 0 not in used and ka.address.ip.is_link_local:
                used.add(0)
                base = rec0 if rec0 is not None else Logical(family, 0)
                # UP is the stored flag, as on Solaris where IFF_UP is the
                # administrator's (``inet6 plumb`` alone leaves the link-local
                # down, ``inet6 up`` and if_mpadm -r bring it up); link state
                # shows as RUNNING.  Without a record it follows the link.
                up = rec0.up if rec0 is not None else link.up
                out.append(replace(base, address=ka.address, up=up, kernel_owned=True,
                                   tentative=ka.tentative))
            continue
        rec = by_address.get(ka.address)
        if rec is None and elsewhere is not None:
            rec = elsewhere.moved_record(link.name, family, ka.address)
        pending.append((ka, rec))
    # Labels decide IPv4 units first, so that a label never loses its unit
    # to an address read before it.
    for ka, rec in sorted(pending, key=lambda p: _label_unit(p[0].label, link.name) is None):
        wanted = _label_unit(ka.label, link.name) if family is Family.INET else None
        if wanted is None and rec is not None:
            wanted = rec.unit
        unit = _take_unit(wanted, used)
        if rec is not None:
            out.append(replace(rec, unit=unit, address=ka.address, up=True, broadcast=ka.broadcast,
                               destination=ka.peer))
        else:
            out.append(Logical(family, unit, ka.address, up=True, broadcast=ka.broadcast,
                               destination=ka.peer, deprecated=ka.deprecated))
    # Down logicals and the address-less unit 0 exist only in the store.
    for rec in records:
        if rec.up and rec.address is not None:
            if (rec.unit == 0 and 0 not in used and elsewhere is not None
                    and elsewhere.on_other_link(link.name, family, rec.address)):
                # Unit 0's data address sits on another NIC: the Solaris
                # placeholder (0.0.0.0, NOFAILOVER, down) stands in for it.
                used.add(0)
                out.append(Logical(family, 0, None, up=False, deprecated=rec.deprecated, nofailover=True))
            continue  # up but gone from the kernel: the kernel wins
        if rec.unit in used and rec.address is None:
            continue
        # A down logical keeps its address only here; an address-less unit 0
        # may be UP (Solaris allows ``ifconfig hme0 up`` on 0.0.0.0).
        out.append(replace(rec, unit=_take_unit(rec.unit, used), up=rec.up if rec.address is None else False))
    return sorted(out, key=lambda lg: lg.unit)


def merge(kernel: KernelState, stored: Iterable[Interface]) -> Config:
    """The Solaris view of the host: kernel facts plus the state store's IPMP facts."""
    records = {i.name: i for i in stored}
    elsewhere = _Elsewhere.of(kernel, records.values())
    # Solaris shows lo0's inet6 block only where IPv6 is plumbed at all.
    ipv6_in_use = any(Family.INET6 in rec.plumbed for rec in records.values())
    interfaces: list[Interface] = []
    for link in kernel.links:
        rec = records.get(link.name)
        kaddrs = kernel.addresses_of(link.name)
        plumbed = set(rec.plumbed) if rec else set()
        if any(a.family is Family.INET for a in kaddrs):
            plumbed.add(Family.INET)
        if any(a.family is Family.INET6 and not a.kernel_owned for a in kaddrs) and (
            ipv6_in_use or not link.loopback
        ):
            plumbed.add(Family.INET6)
        logicals: list[Logical] = []
        for family in (Family.INET, Family.INET6):
            if family not in plumbed:
                continue
            fam = _logicals_of_family(link, family, kaddrs, rec, elsewhere)
            fam = _route_mtus(fam, link, kernel.routes, rec)
            if not any(lg.unit == 0 for lg in fam):
                fam.insert(0, Logical(family, 0))
            logicals.extend(fam)
        base = rec if rec is not None else Interface(link.name)
        interfaces.append(
            replace(
                base,
                index=link.index,
                plumbed=frozenset(plumbed),
                link_up=link.up,
                running=link.running,
                mtu=link.mtu,
                mac=link.mac,
                noarp=link.noarp,
                loopback=link.loopback,
                pointopoint=link.pointopoint,
                multicast=link.multicast,
                logicals=tuple(logicals),
                router=link.forwarding,
                token=link.token,
            )
        )
    interfaces.extend(_ipmp_interfaces(kernel, records.values(), interfaces))
    return Config(tuple(interfaces))


def _ipmp_interfaces(
    kernel: KernelState, records: Iterable[Interface], nics: Sequence[Interface]
) -> list[Interface]:
    """The Solaris 11 IPMP interfaces: records of the store alone, no Linux link.

    Solaris 11 shows an IPMP interface RUNNING while one of its members is
    usable (illumos ``ipmp_ill_activate`` marks the group link up with its
    first active member, ``ipmp_ill_deactivate`` down with its last); its MTU
    is the smallest of its members' (``ipmp_illgrp_refresh_mtu``), 1500 with
    none.  Its index is the one the toolkit gave it, kept unless a Linux link
    took that number since.
    """
    taken = {link.index for link in kernel.links}
    out: list[Interface] = []
    for rec in records:
        if not rec.ipmp or kernel.link(rec.name) is not None:
            continue
        members = [n for n in nics if n.group == rec.group and not n.ipmp]
        usable = [m for m in members if m.running and not (m.failed or m.offline or m.inactive)]
        index = rec.index
        if index == 0 or index in taken:
            index = max(taken | {i.index for i in out} | {0}) + 1
        taken.add(index)
        out.append(replace(rec, index=index, link_up=True, running=bool(usable),
                           mtu=min((m.mtu for m in members), default=1500), mac=None))
    return out


def _route_mtus(
    logicals: list[Logical], link: KLink, routes: Iterable[KRoute], stored: Interface | None
) -> list[Logical]:
    """A unit's own MTU read back from the kernel, for addresses the store has no record of.

    The store keeps each unit's MTU (``ifconfig IF:N mtu N``); the kernel
    holds it as the ``mtu`` of the subnet route in the NIC's table of the
    unit that owns that subnet (its lowest unit, ``routes_and_rules``).
    When the store lost the record, that route says what it was.
    """
    table = table_of(link.index)
    found = {r.dst: r.mtu for r in routes
             if r.mtu and r.table == table and r.dev == link.name and r.gateway is None}
    if not found:
        return logicals
    known = {lg.address for lg in stored.logicals} if stored is not None else set()
    seen: set[IPNetwork] = set()
    out: list[Logical] = []
    for lg in logicals:
        if lg.up and lg.address is not None and not lg.kernel_owned and lg.destination is None:
            subnet = subnet_of(lg.address)
            if subnet not in seen and lg.mtu is None and lg.address not in known and subnet in found:
                lg = replace(lg, mtu=found[subnet])
            seen.add(subnet)
        out.append(lg)
    return out


def expected(kernel: KernelState, stored: Iterable[Interface]) -> Config:
    """What the host should look like: ``merge``, plus the UP addresses the store
    holds but the kernel lost (deleted behind the toolkit's back).

    ``merge`` believes the kernel; the daemon uses this view instead, so that
    its next apply puts such an address back (in.mpathd's rescan restores).
    """
    records = list(stored)
    config = merge(kernel, records)
    for rec in records:
        itf = config.get(rec.name)
        if itf is None:
            continue
        for lg in rec.logicals:
            if not lg.up or lg.address is None or lg.kernel_owned:
                continue
            if lg.family is Family.INET6 and lg.address.ip.is_link_local:
                continue  # the kernel's own link-local (an older store kept its address)
            if any(x.family == lg.family and x.address == lg.address for x in itf.logicals):
                continue
            if any(a.address == lg.address for a in kernel.addresses):
                continue  # the kernel has it on another NIC: merge filed it there
            taken = itf.logical(lg.family, lg.unit)
            if taken is not None and taken.address is not None:
                lg = replace(lg, unit=itf.free_unit(lg.family))
            itf = itf.with_logical(lg)
        config = config.with_interface(itf)
    return config


def is_managed_address(ka: KAddress, scope: Scope) -> bool:
    return not ka.kernel_owned and scope.covers(ka.ifname, ka.family)


__all__ = [
    "GROUP_ONLY_SYSCTLS4",
    "IPMP_TABLE_BASE",
    "NIC_SYSCTLS4",
    "NIC_SYSCTLS6",
    "RT_TABLE_MAIN",
    "Scope",
    "is_managed_address",
    "merge",
    "nic_sysctl_keys",
    "nic_sysctls",
    "subnet_of",
    "table_of",
]
