"""The Solaris ``ifconfig`` status output, computed from a ``model.Config``.

Solaris 10 ``ifconfig`` prints one block per logical interface (one lifreq of
``SIOCGLIFCONF``): a header line with the flag word, MTU and index, the
address line, optionally ``groupname`` and ``ether`` (reference §4.6).  The
flag word merges the logical's own flags with the phyint flags of its NIC
(FAILED, STANDBY, INACTIVE, OFFLINE, RUNNING, ...), which Solaris shows on
every logical of the NIC in both families (reference §1, IFF_PHYINT_FLAGS).

Three Solaris facts, each from the illumos source (S-KIP = the pre-Clearview
``usr/src/uts/common/inet/ip/ip_if.c``, S-IFC = ``.../usr.sbin/ifconfig/ifconfig.c``):

* Order (``solaris_order``): ``ifconfig -a`` prints the lifreqs of one
  ``SIOCGLIFCONF`` (S-IFC ``foreachinterface``, no sorting), which
  ``ip_sioctl_get_lifconf`` fills by walking the IPv4 ill list and then the
  IPv6 one with ``ill_first``/``ill_next``.  Each list holds one ``ill_if_t``
  per interface *type* (the name without its trailing digits, ``ce`` of
  ``ce10``), appended at the tail when the first ill of that type is plumbed
  (``ill_glist_insert``: "link the structure in the back to maintain order of
  configuration for ifconfig output"), and each type keeps its ills in an AVL
  tree by instance number, lowest first (``ill_compare_ppa``); an ill's ipifs
  are in unit order (``ipif_insert``).  So a real host printed ``ce5``,
  ``ce6``, ``ce6:1``, ``ce6:2``, ``ce10`` although ``ce10`` had index 2.
* The failover placeholder (``mtu_of``): ``ipif_move`` builds the unit 0 it
  leaves behind from ``ipif_zero`` and never sets its ``ipif_mtu``;
  ``SIOCGLIFMTU`` returns ``ipif_mtu`` (``ip_sioctl_get_mtu``), so it prints
  ``mtu 0`` (Oracle's Solaris 10 IP Services guide, "What Happens During
  Interface Failover", example 30-2, shows ``hme0: flags=19000842<...> mtu 0``).
* The loopback (``flags_of``, ``mtu_of``): ``ill_lookup_on_name`` makes
  ``lo0`` with ``ILLF_MULTICAST``, LOOPBACK and VIRTUAL, and an MTU of
  ``IP_LOOPBACK_MTU`` (8192) plus room for an IP and a TCP header: 8232 for
  IPv4, 8252 for IPv6.  The Linux ``lo`` is named ``lo0`` at the kernel
  boundary (``ifmap.NameMap``).

Pure module: no I/O, no clock.  Errors (an unknown interface, an unplumbed
family) are the caller's business; here a selection that matches nothing
simply renders as ``""``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv6Address

from ipmp.model import FLAG_NAMES, IFF, Config, Family, Interface, Logical

__all__ = [
    "LINUX_LOOPBACK_MTU",
    "LOOPBACK_MTU4",
    "LOOPBACK_MTU6",
    "flags_of",
    "format_ether",
    "format_flags",
    "is_placeholder",
    "mtu_of",
    "render",
    "solaris_order",
]

#: ``IP_LOOPBACK_MTU`` (illumos ``inet/ip_if.h``): 8 KiB.
IP_LOOPBACK_MTU = 8 * 1024
#: What Solaris ``lo0`` shows: ``ill_lookup_on_name`` adds an IP header
#: (20 bytes for IPv4, 40 for IPv6) and 20 for TCP to IP_LOOPBACK_MTU.
LOOPBACK_MTU4 = IP_LOOPBACK_MTU + 20 + 20
LOOPBACK_MTU6 = IP_LOOPBACK_MTU + 40 + 20
#: The MTU Linux gives ``lo`` (``drivers/net/loopback.c``: 64 KiB since 3.5).
LINUX_LOOPBACK_MTU = 64 * 1024


def is_placeholder(logical: Logical) -> bool:
    """The unit-0 slot left behind when unit 0's data address failed over.

    Solaris (S-KIP ``ipif_move``) leaves address 0.0.0.0 at unit 0 with the
    old flags plus NOFAILOVER, minus UP and DUPLICATE; the model represents
    it as unit 0, no address, ``nofailover`` set (reference §1, mechanics 3).
    Its DEPRECATED is the moved address's: a standby emptied of a
    deprecated data address shows ``flags=69040842<BROADCAST,RUNNING,
    MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>``.

    [INF] The model has no bit for the kernel's ``ipif_replace_zero``: a
    unit 0 without an address that the administrator marked ``-failover``
    is drawn as a placeholder too (never UP, ``mtu 0``).
    """
    return logical.unit == 0 and logical.address is None and logical.nofailover


def flags_of(interface: Interface, logical: Logical) -> IFF:
    """The Solaris flag word of ``logical`` on ``interface``.

    Phyint flags (LOOPBACK, RUNNING, FAILED, STANDBY, INACTIVE, OFFLINE,
    VIRTUAL) come from the interface and so appear on every logical of the
    NIC, IPv4 and IPv6 alike (reference §1 "Phyint flags").
    """
    flags = IFF(0)
    v4 = logical.family is Family.INET

    # UP is per logical.  The failover placeholder can never be UP: Solaris
    # refuses any flag change on it (EINVAL), so its UP was cleared for good
    # when the data address left (reference §1, mechanics 3).
    # [INF] A link-local whose DAD has not succeeded is not UP either: Solaris
    # brings an IPv6 address up only once DAD has passed.
    if logical.up and not is_placeholder(logical) and not logical.tentative:
        flags |= IFF.UP

    # BROADCAST is kernel-owned and IPv4-only; Solaris sets it on every IPv4
    # ill that is neither loopback nor point-to-point (an Ethernet-like link),
    # including the placeholder (reference §4.6 failure example
    # ``flags=19000802<BROADCAST,...>``).
    if v4 and not interface.loopback and not interface.pointopoint:
        flags |= IFF.BROADCAST

    if interface.loopback:
        # Solaris lo0 is LOOPBACK and VIRTUAL (``ipif_allocate``: no hardware
        # address on an IRE_LOOPBACK ill) and MULTICAST (``ill_lookup_on_name``
        # sets ILLF_MULTICAST), in both families: ``flags=2001000849`` and
        # ``flags=2002000849``.  Linux ``lo`` has no IFF_MULTICAST; every
        # parser of Solaris output expects lo0's word, so the kernel's flag
        # does not decide here.
        flags |= IFF.LOOPBACK | IFF.VIRTUAL | IFF.MULTICAST

    if interface.pointopoint:
        flags |= IFF.POINTOPOINT

    # RUNNING is the phyint's link state (reference §4.7 "phyint; link up");
    # on Linux both carrier and the administrative state must hold.
    if interface.link_up and interface.running:
        flags |= IFF.RUNNING

    if interface.noarp and not interface.loopback:
        # [INF] Linux sets IFF_NOARP on ``lo``; Solaris lo0 shows no NOARP, so
        # loopback never gets it.  Solaris prints NOARP only on IPv4 ills
        # (IPv6 uses neighbour discovery); a Linux IFF_NOARP link also does no
        # neighbour discovery for IPv6, which Solaris spells NONUD (as on its
        # IPv6 point-to-point tunnels).
        flags |= IFF.NOARP if v4 else IFF.NONUD

    if interface.multicast:
        flags |= IFF.MULTICAST

    flags |= IFF.IPV4 if v4 else IFF.IPV6

    if logical.deprecated:
        flags |= IFF.DEPRECATED
    if logical.nofailover:
        flags |= IFF.NOFAILOVER

    if interface.failed:
        flags |= IFF.FAILED
    if interface.standby:
        flags |= IFF.STANDBY
    # Interface.inactive already encodes the S10 kernel rules (STANDBY, not
    # FAILED/OFFLINE, no usable data address); FAILED and INACTIVE exclude
    # each other (reference §1, kernel INACTIVE rules).
    if interface.inactive:
        flags |= IFF.INACTIVE
    if interface.offline:
        flags |= IFF.OFFLINE
    # ROUTER is the ill's (per family): the NIC's forwarding sysctl; never
    # on the loopback (``ill_forward_set`` refuses it there), whatever Linux
    # holds for ``lo``.  FIXEDMTU marks a unit given its own MTU (``ip_sioctl_mtu``).
    if logical.family in interface.router and not interface.loopback:
        flags |= IFF.ROUTER
    if logical.mtu is not None:
        flags |= IFF.FIXEDMTU
    return flags


def mtu_of(interface: Interface, logical: Logical) -> int:
    """The ``mtu`` Solaris prints for ``logical``: its ipif's MTU (``SIOCGLIFMTU``).

    * The failover placeholder: 0.  ``ipif_move`` (S-KIP) makes it from
      ``ipif_zero`` and never sets ``ipif_mtu``; the Solaris 10 IP Services
      guide's example 30-2 shows ``hme0: ... mtu 0 index 2`` /
      ``inet 0.0.0.0 netmask 0``.  A unit 0 that was simply never given an
      address (``ifconfig hme0 plumb``) is an ordinary ipif with the link's
      MTU (``ipif_allocate``).
    * The loopback with Linux's own MTU: what Solaris lo0 shows (8232 for
      IPv4, 8252 for IPv6, ``ill_lookup_on_name``).  An MTU the
      administrator chose is shown as it is.
    * Otherwise the unit's own (``ifconfig IF:N mtu N``), at most the
      link's, or the link's (``Interface.logical_mtu``).
    """
    if is_placeholder(logical):
        return 0
    if interface.loopback and interface.mtu == LINUX_LOOPBACK_MTU:
        return LOOPBACK_MTU4 if logical.family is Family.INET else LOOPBACK_MTU6
    return interface.logical_mtu(logical)


#: FLAG_NAMES with plain int bits: ``IFF & IFF`` builds a new enum member per
#: test, which for 39 bits per block was most of the time ``render`` took.
_FLAG_BITS: tuple[tuple[int, str], ...] = tuple((int(bit), name) for bit, name in FLAG_NAMES)


def format_flags(flags: IFF) -> str:
    """``flags=<hex><NAMES>`` as Solaris ``print_flags`` writes it.

    The value is ``%llx`` (lowercase, no ``0x``, no padding); the names of the
    set bits follow in ascending bit order, comma-separated, in angle
    brackets, and the brackets are left out when no known bit is set
    (reference §4.6).  Bits without a name still count in the hex value.
    """
    value = int(flags)
    names = [name for bit, name in _FLAG_BITS if value & bit]
    text = f"flags={value:x}"
    if names:
        text += "<" + ",".join(names) + ">"
    return text


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


def _block(interface: Interface, logical: Logical, *, show_ether: bool) -> str:
    """The status text of one logical interface (one Solaris lifreq)."""
    flags = flags_of(interface, logical)
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
        # only when the NIC has a hardware address (reference §4.6).  Solaris
        # prints it for the IPv6 unit 0 as well.
        if show_ether and not interface.loopback and interface.mac:
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
) -> Iterator[tuple[Interface, Logical]]:
    """The (interface, logical) pairs to print, in Solaris ``SIOCGLIFCONF`` order.

    All IPv4 entries come before all IPv6 entries; within a family the
    interfaces come in ``solaris_order`` (each family's ill list is its own,
    so the order is computed over the interfaces plumbed for it), each with
    its logicals in unit order (reference §4.6 "Ordering").
    """
    interfaces = config.interfaces
    if ifname is not None:
        interfaces = tuple(i for i in interfaces if i.name == ifname)
    families = (Family.INET, Family.INET6) if family is None else (family,)
    for fam in families:
        # IPv4 status skips IPv6 entries and vice versa; a NIC not plumbed
        # for a family has no lifreq in it.
        for interface in solaris_order(i for i in interfaces if fam in i.plumbed):
            for logical in interface.logicals_of(fam):
                if unit is not None and logical.unit != unit:
                    continue
                up = bool(flags_of(interface, logical) & IFF.UP)
                # ``-au`` lists only UP logicals, ``-ad`` only those not UP.
                if only_up and not up:
                    continue
                if only_down and up:
                    continue
                yield interface, logical


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
        _block(interface, logical, show_ether=ether)
        for interface, logical in _selected(
            config,
            ifname=ifname,
            unit=unit,
            family=family,
            only_up=only_up,
            only_down=only_down,
        )
    )
