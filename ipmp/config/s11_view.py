"""The Solaris 11 view in ``ifconfig`` output: a group with an IPMP interface.

It applies only to a group that has an IPMP interface (``ipadm
create-ipmp``, ``Config.ipmp_interface``); a group made by hostname files
or ``ifconfig group`` keeps the Solaris 10 output of
``ipmp.config.render``, byte for byte:

* The IPMP interface (``ipmp0``) has its own blocks, placed by its index as
  any other interface type: unit N shows the data address whose
  ``Logical.ipmp_unit`` is N wherever it is bound (a member in the kernel,
  or the record itself while no member can hold it); a unit 0 without one
  shows ``inet 0.0.0.0 netmask 0``.  Its flags add IFF_IPMP, and FAILED
  while no member is usable (illumos ``net/if.h``: on an IPMP interface
  IFF_FAILED means the group failed; ``ipmp_ill_activate`` marks the group
  link up with its first active member).  It has no ``ether`` line: it has
  no hardware address of its own (illumos ``ipmp_stub``: an IPMP interface
  sits on ``ipmpstub0``, whose address is not the members').
* A member does not show the data addresses it holds for the IPMP
  interface: in Solaris 11 they are the IPMP interface's (Oracle "How IPMP
  Works", https://docs.oracle.com/cd/E37838_01/html/E60991/gfbby.html: the
  underlying interfaces host only test addresses).  A member without an
  address of its own shows unit 0 UP on ``0.0.0.0`` with mask ``ff000000``
  (``::/0`` for IPv6): Solaris brings an underlying interface up so that
  it can carry the group's traffic (illumos ``ipmp_ill_is_active`` wants an
  UP ipif on an active member).
* PHYSRUNNING (Oracle Solaris 11 only, in.mpathd(8) of 11.4: the link state
  in.mpathd reads) on every member whose link is up, and on the IPMP
  interface while it is RUNNING; NOLINKLOCAL (illumos ``net/if.h``
  0x20000000000, no name in ``ifconfig``'s table, so in the hex only) on the
  IPv6 blocks: libipadm ``i_ipadm_plumb_if`` sets it on every IPv6
  interface ``ipadm`` plumbs, the IPMP interface and its members alike
  ([INF] a Solaris 11 group's members are ``ipadm create-ip`` ones).

Pure module: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

from ipmp.config.flagword import flags_of, is_placeholder
from ipmp.model import IFF, Config, Family, Interface, Logical

__all__ = [
    "ipmp_logicals",
    "member_logicals",
    "s11_flags",
    "s11_groups",
]

#: What a member without an address of its own shows at unit 0 in the
#: Solaris 11 view: UP on 0.0.0.0 with the class A mask Solaris gives
#: INADDR_ANY, no broadcast (issue "Members without addresses are UP on
#: 0.0.0.0/8 and ::/0").
_ANY4 = IPv4Interface("0.0.0.0/8")


def s11_groups(config: Config) -> frozenset[str]:
    """The groups shown the Solaris 11 way: those that have an IPMP interface."""
    return frozenset(i.group for i in config.interfaces if i.ipmp and i.group)


def ipmp_logicals(config: Config, interface: Interface, family: Family) -> tuple[Logical, ...]:
    """The logicals of the IPMP interface ``interface`` in ``family``, by unit (module doc).

    Unit N is the data address with ``ipmp_unit`` N: bound to a member (held
    there in the kernel) or still the record's own.  A bound one wins over a
    stale record entry of the same unit.  Unit 0 always exists (an ill has
    its ipif zero): without a data address it is ``0.0.0.0``, not UP.
    """
    units: dict[int, Logical] = {}
    for lg in interface.logicals_of(family):
        unit = lg.unit if lg.ipmp_unit is None else lg.ipmp_unit
        units[unit] = replace(lg, unit=unit, home="", home_unit=None)
    for member in config.group_members(interface.group):
        for lg in member.logicals_of(family):
            if lg.ipmp_unit is not None:
                units[lg.ipmp_unit] = replace(lg, unit=lg.ipmp_unit, home="", home_unit=None)
    if 0 not in units:
        units[0] = Logical(family, 0)
    return tuple(units[u] for u in sorted(units))


def member_logicals(interface: Interface, family: Family) -> tuple[Logical, ...]:
    """The logicals a member of a Solaris 11 group shows in ``family`` (module doc).

    Its own addresses only (test addresses, the kernel's link-local), and a
    unit 0 UP on ``0.0.0.0/8`` (``::/0``) when it has no address there.  A
    unit 0 the administrator made ``-failover`` without an address stays as
    it is (``is_placeholder``).
    """
    own = [lg for lg in interface.logicals_of(family) if lg.ipmp_unit is None]
    zero = next((lg for lg in own if lg.unit == 0), None)
    if zero is None or (zero.address is None and not is_placeholder(zero)):
        if family is Family.INET:
            unspecified = Logical(family, 0, _ANY4, up=True, broadcast=IPv4Address(0))
        else:
            unspecified = Logical(family, 0, None, up=True)
        own = [unspecified, *(lg for lg in own if lg.unit != 0)]
    return tuple(own)


def s11_flags(interface: Interface, logical: Logical) -> IFF:
    """The flag word of ``logical`` on ``interface`` in the Solaris 11 view (module doc)."""
    flags = flags_of(interface, logical)
    if interface.ipmp:
        flags |= IFF.IPMP
        if flags & IFF.RUNNING:
            flags |= IFF.PHYSRUNNING
        else:
            # illumos ``net/if.h``: IFF_FAILED on an IPMP interface is the
            # group's failure (no member usable).
            flags |= IFF.FAILED
    elif flags & IFF.RUNNING:
        flags |= IFF.PHYSRUNNING
    if logical.family is Family.INET6:
        flags |= IFF.NOLINKLOCAL
    return flags
