"""What the kernel must hold for a ``Config``: links, addresses, the routing recipe, the sysctls.

The recipe of linux-mapping.md ("Working recipe"), summed up in
``ipmp.linux.view``: every address with ``noprefixroute``, one routing table
per NIC with a rule per address, main-table subnet routes whose source is a
data address, the recipe's sysctls on each NIC.  The planner
(``ipmp.linux.plan``) turns the difference from the kernel into operations.
Not on the read path of ``ifconfig -a``, which only merges.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_network

from ipmp.linux.view import (
    ROUTE_METRIC_BASE,
    ROUTER_METRIC_STEP,
    RT_TABLE_MAIN,
    RULE_PREF_DATA,
    RULE_PREF_TEST,
    Scope,
    nic_sysctls,
    subnet_of,
    table_of,
)
from ipmp.model import (
    Config,
    Family,
    Interface,
    IPAddress,
    IPNetwork,
    KAddress,
    KernelState,
    KLink,
    KRoute,
    KRule,
    Logical,
)

__all__ = ["desired_kernel", "kaddress_of", "routes_and_rules", "sysctls_for"]


def kaddress_of(itf: Interface, lg: Logical, current: KernelState) -> KAddress:
    """The kernel address a logical interface stands for.

    A test address (NOFAILOVER) is also ``preferred_lft 0``, so IPv6 never
    picks it as a source (linux-mapping.md Q5).  An address the toolkit did
    not add keeps its own ``noprefixroute`` choice, so adopting a host's
    existing address never takes its kernel route away.
    """
    assert lg.address is not None
    is_ptp = lg.destination is not None
    noprefixroute = not is_ptp
    for ka in current.addresses_of(itf.name):
        if ka.address == lg.address and ka.peer == lg.destination:
            noprefixroute = ka.noprefixroute
            break
    return KAddress(
        ifname=itf.name,
        address=lg.address,
        label=lg.name(itf.name) if lg.family is Family.INET else "",
        broadcast=lg.broadcast if lg.family is Family.INET else None,
        peer=lg.destination,
        deprecated=lg.deprecated or lg.nofailover,
        noprefixroute=noprefixroute,
    )


def _up_addresses(itf: Interface, family: Family) -> list[Logical]:
    return [
        lg
        for lg in itf.logicals_of(family)
        if lg.up and lg.address is not None and not lg.kernel_owned
    ]


def routes_and_rules(
    itf: Interface, family: Family, defaultrouters: Sequence[IPAddress]
) -> tuple[set[KRoute], set[KRule]]:
    """The recipe's routes and rules for one NIC and family (nothing when the link is down)."""
    routes: set[KRoute] = set()
    rules: set[KRule] = set()
    if not itf.link_up or itf.loopback or itf.index == 0:
        return routes, rules
    table = table_of(itf.index)
    metric = ROUTE_METRIC_BASE + itf.index
    logicals = _up_addresses(itf, family)
    subnets: dict[IPNetwork, list[Logical]] = {}
    for lg in logicals:
        assert lg.address is not None
        rules.add(KRule(family, RULE_PREF_TEST if lg.nofailover else RULE_PREF_DATA, lg.address.ip, table))
        if lg.destination is not None or lg.address.network.prefixlen == lg.address.max_prefixlen:
            continue  # point-to-point and host addresses have no subnet route
        subnets.setdefault(subnet_of(lg.address), []).append(lg)
    data_src: dict[IPNetwork, IPAddress] = {}
    # A subnet's routes carry the MTU of its lowest unit (ifconfig ``mtu`` on
    # a logical): Solaris gives each unit's subnet route its ``ipif_mtu``
    # and the first unit's route is the one found (``ipif_up_done``).
    mtus = {subnet: itf.route_mtu(members[0]) for subnet, members in subnets.items()}
    for subnet, members in subnets.items():
        routes.add(KRoute(family, table, subnet, itf.name, mtu=mtus[subnet]))
        data = [lg for lg in members if lg.is_data]
        if data:
            src = data[0].address
            assert src is not None
            data_src[subnet] = src.ip
            routes.add(KRoute(family, RT_TABLE_MAIN, subnet, itf.name, src=src.ip, metric=metric,
                              mtu=mtus[subnet]))
    # One default route per router, however many subnets hold it, and the
    # n-th router of the file n steps of metric behind the first: the kernel
    # refuses a second route with the same table, destination and metric.
    default = ip_network("0.0.0.0/0" if family is Family.INET else "::/0")
    routers = [r for r in dict.fromkeys(defaultrouters) if r.version == family]
    for n, router in enumerate(routers):
        holders = [s for s in subnets if router in s]
        if not holders:
            continue
        step = n * ROUTER_METRIC_STEP
        mtu = mtus[holders[0]]  # the router is reached through that subnet's route
        routes.add(KRoute(family, table, default, itf.name, gateway=router, metric=step, mtu=mtu))
        via = next((data_src[s] for s in holders if s in data_src), None)
        if via is not None:
            routes.add(KRoute(family, RT_TABLE_MAIN, default, itf.name, gateway=router, src=via,
                              metric=metric + step, mtu=mtu))
    return routes, rules


def sysctls_for(itf: Interface, family: Family) -> list[tuple[str, str]]:
    if itf.loopback:
        return []
    return nic_sysctls(itf.name, family, grouped=bool(itf.group))


def desired_kernel(
    config: Config, scope: Scope, current: KernelState, defaultrouters: Sequence[IPAddress] = ()
) -> KernelState:
    """What the kernel must hold, for the interfaces and families in ``scope``."""
    links: list[KLink] = []
    addresses: list[KAddress] = []
    routes: set[KRoute] = set()
    rules: set[KRule] = set()
    sysctls: list[tuple[str, str]] = []
    for itf in config.interfaces:
        if itf.name not in scope.names or itf.ipmp:
            # An IPMP interface has no Linux link: the addresses it can hold
            # are on its members (Logical.ipmp_unit), the rest held nowhere.
            continue
        cur = current.link(itf.name)
        links.append(
            KLink(
                name=itf.name,
                index=itf.index,
                up=itf.link_up,
                running=cur.running if cur else False,
                mtu=itf.mtu,
                mac=itf.mac,
                noarp=itf.noarp,
                loopback=itf.loopback,
                pointopoint=itf.pointopoint,
                multicast=itf.multicast,
                kind=cur.kind if cur else "",
                forwarding=itf.router,
                token=itf.token,
            )
        )
        for family in (Family.INET, Family.INET6):
            if not scope.covers(itf.name, family):
                continue
            for lg in _up_addresses(itf, family):
                addresses.append(kaddress_of(itf, lg, current))
            r, u = routes_and_rules(itf, family, defaultrouters)
            routes |= r
            rules |= u
            if family in itf.plumbed:
                sysctls.extend(sysctls_for(itf, family))
    return KernelState(
        links=tuple(links),
        addresses=tuple(addresses),
        routes=frozenset(routes),
        rules=frozenset(rules),
        sysctls=tuple(sysctls),
    )
