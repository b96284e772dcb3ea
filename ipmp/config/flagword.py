"""The flag word and MTU Solaris ``ifconfig`` shows for one logical interface.

The flag word merges the logical's own flags with the phyint flags of its
NIC (FAILED, STANDBY, INACTIVE, OFFLINE, RUNNING, ...), which Solaris shows
on every logical of the NIC in both families (reference §1,
IFF_PHYINT_FLAGS).  ``ipmp.config.render`` lays the blocks out with them;
the Solaris 11 view adds its bits on top (``ipmp.config.s11_view``).

Two Solaris facts, each from the illumos source (S-KIP = the pre-Clearview
``usr/src/uts/common/inet/ip/ip_if.c``):

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

Pure module: no I/O, no clock.
"""

from __future__ import annotations

from ipmp.model import FLAG_NAMES, IFF, Family, Interface, Logical

__all__ = [
    "LINUX_LOOPBACK_MTU",
    "LOOPBACK_MTU4",
    "LOOPBACK_MTU6",
    "flags_of",
    "format_flags",
    "is_placeholder",
    "mtu_of",
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
