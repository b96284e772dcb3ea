"""Solaris 11: which member each data address of an IPMP interface is bound to.

Pure module: no I/O, no clock, no logging; it imports only ``ipmp.model``.

The one home of these rules: in.mpathd (``ipmp.mpathd.actions``) asks them
with its own idea of a usable member (RUNNING and link up, as it tracks
them), ``ipadm`` (``ipmp.config.ipadm_eval``), which has no daemon, with
the kernel's (``kernel_usable``).

In Solaris 11 (Clearview) the data addresses belong to the IPMP interface
(``ipmp0``, ``ipmp0:1``) and never move off it; the kernel *binds* each UP
one to an active member for inbound traffic and re-binds it when the set of
active members changes.  Linux has no IPMP interface, so a bound address is
held by its member as an ordinary address (``Logical.ipmp_unit``, see
``ipmp.model``), and a re-bind is an address move through the daemon's usual
apply.  The rules are the kernel's, illumos ``usr/src/uts/common/inet/ip/ipmp.c``:

* ``ipmp_ill_is_active``: a member carries data traffic unless it is
  FAILED, OFFLINE or INACTIVE (``active_members``; in.mpathd decides
  INACTIVE, ``mpd_probe.c`` ``phyint_transition_to_running`` and
  ``phyint_standby_refresh_inactive``).
* ``ipmp_ill_deactivate``: a member that stops being active gives its
  addresses away one by one, each to the active member with the fewest
  (``ipmp_illgrp_min_ill``); with no active member they stay unbound.
* ``ipmp_ill_activate``: the first member to become active binds every
  unbound UP data address; a later one takes addresses from the member with
  the most (``ipmp_illgrp_max_ill``) until ``own + 1 >= max``.
* ``ipmp_illgrp_add_ipif``: an address brought up while a member is active
  is bound to the one with the fewest.

There is no home and no failback of an address: FAILBACK only decides
whether a repaired member becomes active again (in.mpathd(8), Solaris 11.4).
Counts are per address family, as the kernel keeps one illgrp per family.

Decisions where Linux or this model leave room [INF]:

* Ties go to the first member in ``Config`` order (kernel index order).
  The kernel's list (``ig_actif``) is in activation order, which lives as
  long as the group in the kernel; the daemon here may restart with no
  record of it, and index order is stable and visible in ``ipmpstat -i``.
* The kernel's per-member list of bound addresses is newest first, and
  ``ipmp_ill_activate`` takes the newest; the model keeps no bind time, so
  a member's addresses count as bound in the order of their units there
  (a re-bound address takes the lowest free unit), and within one re-bind
  the order they arrived in.
* With no active member the kernel leaves the addresses UP on the IPMP
  interface, unbound, and sockets bound to them live on.  Linux needs a
  link to hold an address: removing it would break every socket bound to
  it and the routes through it, for no gain since nothing can carry the
  traffic anyway.  So an address with nowhere to go stays on the member
  that held it (*parked*): it counts as unbound, and the first member to
  become active takes it, as ``ipmp_ill_activate`` takes the unbound ones.
  Addresses that no member held yet stay on the IPMP interface's record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from ipmp.model import Config, Family, Interface, Logical

__all__ = [
    "activate_another",
    "active_members",
    "bound_logicals",
    "changed_members",
    "families",
    "holding",
    "is_ipmp_data",
    "kernel_usable",
    "leave",
    "rebind",
]


def families(itf: Interface) -> frozenset[Family]:
    """The families plumbed on ``itf`` (a logical of a family implies it is plumbed)."""
    return itf.plumbed | frozenset(lg.family for lg in itf.logicals)


def is_ipmp_data(lg: Logical) -> bool:
    """An UP data address of the IPMP interface, as held by a member (``ipmp_ipif_is_up_dataaddr``).

    Test addresses (NOFAILOVER) are never bound; a down data address is not
    bound either and stays where it is.
    """
    return lg.ipmp_unit is not None and lg.is_data and lg.up and not lg.kernel_owned


def bound_logicals(itf: Interface, family: Family) -> tuple[Logical, ...]:
    """The IPMP interface's data addresses ``itf`` holds in ``family``, oldest bind first (module doc)."""
    return tuple(lg for lg in itf.logicals_of(family) if is_ipmp_data(lg))


def holding(config: Config, group: str) -> frozenset[str]:
    """The members of ``group`` that hold any of its IPMP interface's data addresses."""
    return frozenset(m.name for m in config.group_members(group)
                     if any(is_ipmp_data(lg) for lg in m.logicals))


def _unbound_on_record(record: Interface, family: Family) -> tuple[Logical, ...]:
    """The UP data addresses no member holds yet, in the IPMP interface's unit order.

    ``ipmp_ill_activate`` walks the IPMP ill's ipif list, which is unit order.
    """
    return tuple(lg for lg in record.logicals_of(family) if lg.is_data and lg.up and not lg.kernel_owned)


def _functioning(itf: Interface, usable: Callable[[str], bool]) -> bool:
    # in.mpathd ``phyint_is_functioning``: running (per the daemon) and not offline.
    return usable(itf.name) and not itf.failed and not itf.offline


def kernel_usable(config: Config) -> Callable[[str], bool]:
    """Usable as the kernel alone judges a member, for a caller with no daemon (``ipadm``).

    illumos ``ipmp_ill_is_active`` asks only that the member has an UP
    logical interface (``ill_ipif_up_count``) and is not FAILED, OFFLINE or
    INACTIVE; it does not look at RUNNING, since in.mpathd sets FAILED
    whenever RUNNING is cleared ("This allows the link flapping logic to be
    just in in.mpathd").  FAILED and OFFLINE (``Interface.failed``,
    ``offline``: in.mpathd's, from the state store) and INACTIVE (STANDBY,
    FAILBACK=no) are judged by ``active_members`` itself.
    """
    def usable(name: str) -> bool:
        itf = config.get(name)
        return itf is not None and any(lg.up for lg in itf.logicals)
    return usable


def active_members(config: Config, group: str, usable: Callable[[str], bool]) -> tuple[str, ...]:
    """The members of ``group`` that carry data traffic, in group order (``ipmp_ill_is_active``).

    A member is active when it is functioning (``usable``: the daemon's
    RUNNING and link up; not FAILED, not OFFLINE) and not INACTIVE.  A
    non-STANDBY member is INACTIVE only when held so (FAILBACK=no after a
    repair, ``held_inactive``), unless no other member is active (in.mpathd
    ``phyint_transition_to_running`` case 3: "unless the group was failed").
    STANDBY members are brought in until there are as many active members as
    non-STANDBY ones, and at least one (``phyint_standby_refresh_inactive``);
    a standby already carrying addresses is kept before another is taken, so
    that the choice does not flap.
    """
    members = config.group_members(group)
    functioning = [m for m in members if _functioning(m, usable)]
    active = [m for m in functioning if not m.standby and not m.held_inactive]
    wanted = max(1, sum(1 for m in members if not m.standby))
    standbys = sorted((m for m in functioning if m.standby),
                      key=lambda m: not any(is_ipmp_data(lg) for lg in m.logicals))
    while standbys and len(active) < wanted:
        active.append(standbys.pop(0))
    if not active:
        active = [m for m in functioning if m.held_inactive][-1:]  # as ``activate_another``
    chosen = {m.name for m in active}
    return tuple(m.name for m in members if m.name in chosen)


def activate_another(config: Config, group: str, failed: str, usable: Callable[[str], bool]) -> str | None:
    """The held member that takes the place of a failed active one (in.mpathd ``phyint_activate_another``).

    in.mpathd clears INACTIVE on a functioning INACTIVE member: the first
    STANDBY one, else the last one in group order.  A standby needs no
    release here (``active_members`` brings standbys in by count), so this
    returns a held non-standby member only when no standby is available,
    else None.
    """
    chosen: Interface | None = None
    for m in config.group_members(group):
        if m.name == failed or not _functioning(m, usable):
            continue
        if m.standby:
            if not any(is_ipmp_data(lg) for lg in m.logicals):
                return None  # an INACTIVE standby takes the place
            continue
        if m.held_inactive:
            chosen = m
    return chosen.name if chosen is not None else None


class _Family:
    """One family's binding while it is being worked out: who holds what, in bind order."""

    def __init__(self, config: Config, group: str, family: Family) -> None:
        self.family = family
        self.order = [m.name for m in config.group_members(group) if family in families(m)]
        self.held: dict[str, list[Logical]] = {
            m.name: list(bound_logicals(m, family))
            for m in config.group_members(group) if m.name in self.order
        }
        record = config.ipmp_interface(group)
        self.record = list(_unbound_on_record(record, family)) if record is not None else []

    def count(self, name: str) -> int:
        return len(self.held[name])

    def min_ill(self, actif: Sequence[str]) -> str | None:
        """``ipmp_illgrp_min_ill``: the fewest; ties to the first."""
        best: str | None = None
        for name in actif:
            if best is None or self.count(name) < self.count(best):
                best = name
        return best

    def max_ill(self, actif: Sequence[str]) -> str | None:
        """``ipmp_illgrp_max_ill``: the most; ties to the first."""
        best: str | None = None
        for name in actif:
            if best is None or self.count(name) > self.count(best):
                best = name
        return best


def rebind(config: Config, group: str, before: Iterable[str], after: Iterable[str]) -> Config:
    """``group``'s IPMP data addresses re-bound as the active members went from ``before`` to ``after``.

    The kernel's order of work is kept: members that stopped being active
    are deactivated first (their addresses, and any held by a member that
    is not active, each go to the staying member with the fewest), then
    addresses not bound yet go to the member with the fewest
    (``ipmp_illgrp_add_ipif``), then the members that became active are
    activated in group order (the first of them, with nobody staying, takes
    every unbound address; the others take from the member with the most).
    Without an IPMP interface for ``group`` the config is returned as is.
    Members in ``after`` lose their INACTIVE hold: they are active.
    """
    if not group or config.ipmp_interface(group) is None:
        return config
    was, now = set(before), set(after)
    out = config
    for name in now:
        itf = out.get(name)
        if itf is not None and itf.held_inactive:
            out = out.with_interface(replace(itf, held_inactive=False))
    for family in (Family.INET, Family.INET6):
        out = _rebind_family(out, group, family, was, now)
    return out


def _rebind_family(config: Config, group: str, family: Family, was: set[str], now: set[str]) -> Config:
    fam = _Family(config, group, family)
    staying = [n for n in fam.order if n in was and n in now]
    joining = [n for n in fam.order if n in now and n not in was]
    # Unbound: the addresses of members that are not active now (deactivated,
    # or parked there while nobody was active), then those of the record.
    pool: list[Logical] = []
    for name in fam.order:
        if name not in now:
            pool.extend(fam.held[name])
            fam.held[name] = []
    pool.extend(fam.record)
    if staying:
        for lg in pool:
            dest = fam.min_ill(staying)
            assert dest is not None
            fam.held[dest].append(lg)
        pool = []
    actif = list(staying)
    for name in joining:
        if not actif:
            fam.held[name].extend(pool)  # the first active member: "add 'em all"
            pool = []
        else:
            while True:
                most = fam.max_ill(actif)
                assert most is not None
                if fam.count(name) + 1 >= fam.count(most):
                    break
                fam.held[name].append(fam.held[most].pop())  # the newest bound there
        actif.append(name)
    # Nobody active: what is left in the pool stays where it is (parked, module doc).
    return _materialize(config, group, family, fam)


def _materialize(config: Config, group: str, family: Family, fam: _Family) -> Config:
    """Turn the worked-out binding into interfaces: each moved address leaves its holder and
    lands on its new member at the lowest free unit, keeping its IPMP unit and address object."""
    where: dict[int, str] = {}
    for itf in config.interfaces:
        if itf.group != group:
            continue
        for lg in itf.logicals_of(family):
            where[id(lg)] = itf.name
    moving: list[tuple[Logical, str, str]] = []
    for name in fam.order:
        for lg in fam.held[name]:
            source = where[id(lg)]
            if source != name:
                moving.append((lg, source, name))
    out = config
    for lg, source, _ in moving:
        src = out.get(source)
        assert src is not None
        src = src.without_logical(lg.family, lg.unit)
        if src.ipmp and lg.unit == 0:
            # The IPMP interface keeps its unit 0, address-less (as ``ipadm`` leaves it).
            src = src.with_logical(Logical(lg.family, 0))
        out = out.with_interface(src)
    for lg, source, dest in moving:
        dst = out.get(dest)
        assert dst is not None
        src_itf = config.get(source)
        assert src_itf is not None
        # On the record an address's unit is its unit on the IPMP interface.
        ipmp_unit = lg.unit if src_itf.ipmp and lg.ipmp_unit is None else lg.ipmp_unit
        out = out.with_interface(dst.with_logical(
            replace(lg, unit=dst.free_unit(family), ipmp_unit=ipmp_unit, home="", home_unit=None)))
    return out


def leave(config: Config, group: str, name: str, usable: Callable[[str], bool]) -> Config:
    """Member ``name`` leaving ``group``: its data addresses re-bound before it goes.

    The kernel deactivates a member that leaves its group
    (``ipmp_ill_leave_illgrp`` -> ``ipmp_ill_deactivate``): each of its
    addresses goes to the active member with the fewest.  With no active
    member left they are unbound: they cannot stay parked on an interface
    that is no longer a member, so they go back to the IPMP interface's
    record (out of the kernel), as the kernel leaves them on the IPMP ill.
    ``name`` still has its group in the result; the caller takes it out.
    """
    itf = config.get(name)
    if config.ipmp_interface(group) is None or itf is None or itf.group != group:
        return config
    before = active_members(config, group, usable)
    gone = config.with_interface(replace(itf, group=""))
    out = rebind(config, group, before, active_members(gone, group, usable))
    itf, record = out.get(name), out.ipmp_interface(group)
    assert itf is not None and record is not None
    for lg in itf.logicals:
        if lg.ipmp_unit is not None:
            itf = itf.without_logical(lg.family, lg.unit)
            record = record.with_logical(
                replace(lg, unit=lg.ipmp_unit, ipmp_unit=None, home="", home_unit=None))
    return out.with_interface(itf).with_interface(record)


def changed_members(old: Config, new: Config) -> frozenset[str]:
    """The interfaces whose record differs between ``old`` and ``new`` (what an apply must cover)."""
    names = {i.name for i in old.interfaces} | {i.name for i in new.interfaces}
    return frozenset(n for n in names if old.get(n) != new.get(n))
