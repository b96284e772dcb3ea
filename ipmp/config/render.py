"""The Solaris ``ifconfig`` status output, computed from a ``model.Config``.

Solaris 10 ``ifconfig`` prints one block per logical interface (one lifreq of
``SIOCGLIFCONF``): a header line with the flag word, MTU and index, the
address line, optionally ``groupname`` and ``ether`` (reference §4.6).  The
flag word and the MTU of a logical are ``ipmp.config.flagword``'s; a group
with an IPMP interface is shown the Solaris 11 way (``ipmp.config.s11_view``).

The order (``solaris_order``), from the illumos source (S-KIP = the
pre-Clearview ``usr/src/uts/common/inet/ip/ip_if.c``, S-IFC =
``.../usr.sbin/ifconfig/ifconfig.c``): ``ifconfig -a`` prints the lifreqs of
one ``SIOCGLIFCONF`` (S-IFC ``foreachinterface``, no sorting), which
``ip_sioctl_get_lifconf`` fills by walking the IPv4 ill list and then the
IPv6 one with ``ill_first``/``ill_next``.  Each list holds one ``ill_if_t``
per interface *type* (the name without its trailing digits, ``ce`` of
``ce10``), appended at the tail when the first ill of that type is plumbed
(``ill_glist_insert``: "link the structure in the back to maintain order of
configuration for ifconfig output"), and each type keeps its ills in an AVL
tree by instance number, lowest first (``ill_compare_ppa``); an ill's ipifs
are in unit order (``ipif_insert``).  So a real host printed ``ce5``,
``ce6``, ``ce6:1``, ``ce6:2``, ``ce10`` although ``ce10`` had index 2.

Pure module: no I/O, no clock.  Errors (an unknown interface, an unplumbed
family) are the caller's business; here a selection that matches nothing
simply renders as ``""``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv6Address

from ipmp.config.flagword import flags_of, format_flags, mtu_of
from ipmp.config.s11_view import ipmp_logicals, member_logicals, s11_flags, s11_groups
from ipmp.model import IFF, Config, Family, Interface, Logical

__all__ = [
    "format_ether",
    "render",
    "solaris_order",
]


def format_ether(mac: str) -> str:
    """A MAC as Solaris prints it: lowercase hex bytes without leading zeros.

    ``08:00:20:A1:B2:C3`` becomes ``8:0:20:a1:b2:c3`` (reference §4.6, the
    ``ether`` line).  Text that is not colon/hyphen separated hex is only
    lowercased ([INF]: the kernel always hands us hex bytes).
    """
    parts = mac.replace("-", ":").split(":")
    try:
        values = [int(part, 16) for part in parts]
    except ValueError:
        return mac.lower()
    if any(not 0 <= v <= 0xFF for v in values):
        return mac.lower()
    return ":".join(f"{v:x}" for v in values)


def _inet_line(flags: IFF, logical: Logical) -> str:
    """``\\tinet <addr> [--> <dst> ]netmask <hex> [broadcast <b>]`` (reference §4.6)."""
    address = logical.address
    # A logical without an address is 0.0.0.0 with mask 0 in Solaris, which
    # ``%x`` prints as ``0``: ``inet 0.0.0.0 netmask 0 ``.
    if isinstance(address, IPv4Interface):
        local = str(address.ip)
        mask = int(address.netmask)
    else:
        local = "0.0.0.0"
        mask = 0
    line = f"\tinet {local} "
    if flags & IFF.POINTOPOINT:
        # Solaris ``in_status`` prints the destination whenever POINTOPOINT
        # is set, 0.0.0.0 when none was configured [INF].
        dst = logical.destination if isinstance(logical.destination, IPv4Address) else IPv4Address(0)
        line += f"--> {dst} "
    line += f"netmask {mask:x} "
    if flags & IFF.BROADCAST and isinstance(address, IPv4Interface):
        # Without an explicit broadcast the kernel uses the default one
        # (host part all ones, reference §4.3 "broadcast +").  Solaris prints
        # it only when non-zero and with no trailing space (the real-host
        # example of §4.6 ends the line right after the address).
        bcast = logical.broadcast if logical.broadcast is not None else address.network.broadcast_address
        if int(bcast) != 0:
            line += f"broadcast {bcast}"
    return line + "\n"


#: The prefix length Solaris gives the link-local address it makes itself.
LINK_LOCAL_PREFIXLEN = 10


def _inet6_line(flags: IFF, logical: Logical) -> str:
    """``\\tinet6 <addr>/<plen> [--> <dst> ]`` with its trailing space (reference §4.6).

    Decision: the kernel's own link-local prints as ``/10``, as on Solaris
    (§4.6, "link-local prefix length is 10"; the S10 test-address example
    shows ``fe80::a00:20ff:feb9:17fa/10``), although Linux holds it as
    ``/64`` with a ``fe80::/64`` route.  ``ifconfig`` output is the Solaris
    view: scripts and admins reading it expect what Solaris prints, and
    nothing here depends on the link-local's prefix (the test subnet of an
    IPv6 test address is the link, probes are pinned to the NIC).  Every
    other address prints with its own prefix length.  ``ip -6 addr`` still
    shows the kernel's ``/64``.
    """
    address = logical.address
    if address is not None and address.version == 6:
        plen = address.network.prefixlen
        if logical.kernel_owned and address.ip.is_link_local:
            plen = LINK_LOCAL_PREFIXLEN
        line = f"\tinet6 {address.ip}/{plen} "
    else:
        # [INF] An IPv6 slot without an address shows the unspecified
        # address with prefix length 0, as Solaris ``in6_status`` would print
        # an all-zero lifr_addr/lifr_addrlen.
        line = "\tinet6 ::/0 "
    if flags & IFF.POINTOPOINT:
        dst = logical.destination if isinstance(logical.destination, IPv6Address) else IPv6Address(0)
        line += f"--> {dst} "
    return line + "\n"


def _block(interface: Interface, logical: Logical, flags: IFF, *, show_ether: bool) -> str:
    """The status text of one logical interface (one Solaris lifreq) with its flag word."""
    header = f"{logical.name(interface.name)}: {format_flags(flags)} "
    # Solaris prints ``metric`` only when non-zero, ``index`` always.
    if interface.metric:
        header += f"metric {interface.metric} "
    header += f"mtu {mtu_of(interface, logical)} index {interface.index}\n"
    body = _inet_line(flags, logical) if logical.family is Family.INET else _inet6_line(flags, logical)
    text = header + body
    if logical.unit == 0:
        # The group is a phyint property shown only on unit 0, both families,
        # only when set (reference §4.5, §4.6).
        if interface.group:
            text += f"\tgroupname {interface.group}\n"
        # ``ether`` only on unit 0 (the DLPI open of ``hme0:1`` fails
        # silently), never for VIRTUAL interfaces such as the loopback, and
        # only when the NIC has a hardware address (reference §4.6), which an
        # IPMP interface has not (s11_view).  Solaris prints it for the
        # IPv6 unit 0 as well.
        if show_ether and not interface.loopback and not interface.ipmp and interface.mac:
            text += f"\tether {format_ether(interface.mac)} \n"
    return text


def _split_ppa(name: str) -> tuple[str, int | None]:
    """``ce10`` -> (``ce``, 10): the interface type and instance (ppa) of a name.

    Solaris takes the rightmost digits of a name as the ppa (S-KIP
    ``ill_get_ppa_ptr``).  A Linux name without trailing digits is a type of
    its own with no instance.
    """
    stem = name.rstrip("0123456789")
    digits = name[len(stem):]
    return stem, int(digits) if digits else None


def solaris_order(interfaces: Iterable[Interface]) -> list[Interface]:
    """``interfaces`` in the order of one family's ill list (see the module docstring).

    Types come in the order their first ill was plumbed, instances of a
    type by ascending number.  Decision [INF]: Linux keeps no plumbing
    order, so a type ranks by the lowest interface index among its
    members: indexes grow as links are created, the loopback (index 1)
    comes first as lo0 does (network/loopback plumbs it before any NIC),
    and the NICs of one driver, created together, stay together.  This
    differs from Solaris only when a type's first member was removed and a
    newer type was plumbed before the type's oldest remaining member.
    """
    members = list(interfaces)
    rank: dict[str, int] = {}
    for itf in members:
        kind = _split_ppa(itf.name)[0]
        rank[kind] = min(rank.get(kind, itf.index), itf.index)

    def key(itf: Interface) -> tuple[int, str, int, int]:
        kind, ppa = _split_ppa(itf.name)
        return (rank[kind], kind, -1 if ppa is None else ppa, itf.index)

    return sorted(members, key=key)


def _selected(
    config: Config,
    *,
    ifname: str | None,
    unit: int | None,
    family: Family | None,
    only_up: bool,
    only_down: bool,
) -> Iterator[tuple[Interface, Logical, IFF]]:
    """The (interface, logical, flags) to print, in Solaris ``SIOCGLIFCONF`` order.

    All IPv4 entries come before all IPv6 entries; within a family the
    interfaces come in ``solaris_order`` (each family's ill list is its own,
    so the order is computed over the interfaces plumbed for it), each with
    its logicals in unit order (reference §4.6 "Ordering").  Interfaces of a
    group with an IPMP interface are shown the Solaris 11 way (s11_view).
    """
    interfaces = config.interfaces
    if ifname is not None:
        interfaces = tuple(i for i in interfaces if i.name == ifname)
    s11 = s11_groups(config)
    families = (Family.INET, Family.INET6) if family is None else (family,)
    for fam in families:
        # IPv4 status skips IPv6 entries and vice versa; a NIC not plumbed
        # for a family has no lifreq in it.
        for interface in solaris_order(i for i in interfaces if fam in i.plumbed):
            solaris11 = interface.group in s11
            if interface.ipmp:
                logicals = ipmp_logicals(config, interface, fam)
            elif solaris11:
                logicals = member_logicals(interface, fam)
            else:
                logicals = interface.logicals_of(fam)
            for logical in logicals:
                if unit is not None and logical.unit != unit:
                    continue
                flags = s11_flags(interface, logical) if solaris11 else flags_of(interface, logical)
                up = bool(flags & IFF.UP)
                # ``-au`` lists only UP logicals, ``-ad`` only those not UP.
                if only_up and not up:
                    continue
                if only_down and up:
                    continue
                yield interface, logical, flags


def render(
    config: Config,
    *,
    ifname: str | None = None,
    unit: int | None = None,
    family: Family | None = None,
    only_up: bool = False,
    only_down: bool = False,
    show_ether: bool = True,
) -> str:
    """The text of ``ifconfig [-a[u|d]] | IF[:N]] [inet|inet6]``.

    ``ifname=None`` is ``ifconfig -a``; ``ifname`` (the physical name, e.g.
    ``hme0``) alone shows all its logicals, IPv4 first; with ``unit`` only
    that logical (both families, as ``ifconfig hme0:1`` does).  Giving a
    ``family`` restricts to it and hides the ``ether`` lines (Solaris prints
    ``ether`` only when no address family was named, reference §4.6).
    ``show_ether=False`` hides them too (Solaris hides them from non-root).
    Returns ``""`` when nothing matches; the caller turns that into the
    Solaris error.
    """
    ether = show_ether and family is None
    return "".join(
        _block(interface, logical, flags, show_ether=ether)
        for interface, logical, flags in _selected(
            config,
            ifname=ifname,
            unit=unit,
            family=family,
            only_up=only_up,
            only_down=only_down,
        )
    )
