"""What a drill step must do to the data addresses of a Solaris 11 IPMP interface.

In Solaris 11 the data addresses belong to the IPMP interface and the
kernel binds each to an active member; the drill checks the re-binding
against the kernel's rules (illumos ``usr/src/uts/common/inet/ip/ipmp.c``),
written here on their own, as counts, so that the product's binding code is
judged, never used as its own oracle:

* ``ipmp_ill_deactivate``: a member that stops being active gives its
  addresses away one by one, each to the staying active member with the
  fewest (``ipmp_illgrp_min_ill``); with none active they stay unbound;
* ``ipmp_ill_activate``: a member that becomes active takes every unbound
  address when it is the only active one, else takes addresses from the
  member with the most (``ipmp_illgrp_max_ill``) until ``own + 1 >= max``.

There is no failback "home": a repaired member takes its share, whichever
addresses those are.  Which member wins a tie is the kernel's list order,
which the drill does not predict: it checks where each address may be
(``Expect.placement``) and how many each active member holds
(``Expect.spread``, compared as sorted counts per address family).

Active members (``ipmp_ill_is_active``, in.mpathd
``phyint_standby_refresh_inactive``): functioning members that are neither
STANDBY nor held INACTIVE (FAILBACK=no after a repair), then standbys, as
many as there are non-standby members, at least one.

Pure: a world and a view of the kernel in, expectations out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Types only: rules imports this module (no cycle at run time).
    from ipmp.lab.rules import Expect, NicState, World

__all__ = ["active", "expect_rebind", "final_problems", "group_addresses", "spread_problems"]

Where = Callable[[str], set[str]]


def group_addresses(world: World, group: str) -> list[str]:
    """The bare data addresses of ``group``'s IPMP interface."""
    itf = world.plan.ipmp_interface(group)
    if itf is None:
        return []
    return [str(ipaddress.ip_interface(a).ip) for a in itf.data_addresses]


def active(world: World, group: str, where: Where, gone: Collection[str] = (),
           back: Collection[str] = ()) -> list[str]:
    """The active members of ``group`` once ``gone`` stopped and ``back`` started functioning."""
    members = world.members_of(group)
    addresses = group_addresses(world, group)

    def functioning(s: NicState) -> bool:
        name = s.plan.name
        return name not in gone and (name in back or world.usable(s))

    up = [s for s in members if functioning(s)]
    chosen = [s for s in up if not s.plan.standby and not s.held]
    wanted = max(1, sum(1 for s in members if not s.plan.standby))
    # A standby already carrying addresses is kept before another is taken.
    standbys = sorted((s for s in up if s.plan.standby),
                      key=lambda s: not any(s.plan.name in where(a) for a in addresses))
    while standbys and len(chosen) < wanted:
        chosen.append(standbys.pop(0))
    if not chosen:
        chosen = [s for s in up if s.held][-1:]  # in.mpathd activates a held one rather than none
    names = {s.plan.name for s in chosen}
    return [s.plan.name for s in members if s.plan.name in names]


def expect_rebind(world: World, where: Where, group: str, e: Expect, *,
                  gone: Collection[str] = (), back: Collection[str] = ()) -> None:
    """Add to ``e`` where ``group``'s addresses may be, and the counts, after members change.

    ``gone``: members that stop functioning (failed, offline); ``back``:
    members that function again (repaired, back online).
    """
    before = active(world, group, where)
    after = active(world, group, where, gone, back)
    addresses = group_addresses(world, group)
    for version in (4, 6):
        mine = [a for a in addresses if ipaddress.ip_address(a).version == version]
        if mine:
            _family(world, where, group, e, mine, before, after)
    joined = [n for n in after if n not in before]
    left = [n for n in before if n not in after]
    if joined or left:
        e.notes.append(
            "Solaris 11 re-binding (illumos ipmp.c): "
            + "; ".join([*(f"{n} deactivated: its addresses go one by one to the active member "
                           "with the fewest" for n in left),
                         *(f"{n} activated: it takes addresses from the member with the most "
                           "until own + 1 >= max" for n in joined)])
            + "; no failback home")


def _family(world: World, where: Where, group: str, e: Expect, mine: list[str],
            before: list[str], after: list[str]) -> None:
    order = [s.plan.name for s in world.members_of(group)]
    held: dict[str, list[str]] = {n: [] for n in order}
    unbound: list[str] = []
    for a in mine:
        holders = [n for n in order if n in where(a)]
        if holders:
            held[holders[0]].append(a)
        else:
            unbound.append(a)
    # Deactivation first (the kernel's order of work), then activation.  The
    # pool: what members leaving hold, and what is parked on a member that was
    # not active (nobody was: the addresses stayed where they were, unbound).
    out = [n for n in order if n not in after or n not in before]
    pool = [a for n in out for a in held[n]] + unbound
    for n in out:
        held[n] = []
    staying = [n for n in order if n in before and n in after]
    counts = {n: len(held[n]) for n in order}
    allowed: dict[str, set[str]] = {}
    if staying:
        for a in pool:
            least = min(counts[n] for n in staying)
            counts[next(n for n in staying if counts[n] == least)] += 1
            allowed[a] = set(staying)
        pool = []
    actif = list(staying)
    joining = [n for n in order if n in after and n not in before]
    for n in joining:
        if not actif:
            # The first to become active takes every unbound address; which of
            # several that is depends on which repair the daemon saw first.
            counts[n] += len(pool)
            for a in pool:
                allowed[a] = set(joining)
            pool = []
        else:
            while True:
                most = max(counts[m] for m in actif)
                if counts[n] + 1 >= most:
                    break
                giver = next(m for m in actif if counts[m] == most)
                counts[giver] -= 1
                counts[n] += 1
                # Any address of a member with the most may be the one taken.
                for m in actif:
                    if counts[m] + 1 >= most:
                        for a in held[m]:
                            allowed.setdefault(a, {m}).add(n)
        actif.append(n)
    for a in pool:
        allowed[a] = where(a) or set()  # nobody active: it stays where it is (unbound)
    for a, nics in allowed.items():
        e.placement[a] = nics
        e.watch.add(a)
        if not where(a) & nics:
            e.moving.add(a)
    if actif:
        e.spread.append((tuple(n for n in order if n in actif), ipaddress.ip_address(mine[0]).version,
                         sorted(counts[n] for n in actif)))


def spread_problems(e: Expect, where: Where, addresses: list[str]) -> list[str]:
    """How the active members' counts differ from the kernel's rule (sorted counts per family)."""
    problems = []
    for members, version, wanted in e.spread:
        mine = [a for a in addresses if ipaddress.ip_address(a).version == version]
        have = {m: sum(1 for a in mine if m in where(a)) for m in members}
        if sorted(have.values()) != wanted:
            shown = ", ".join(f"{m} {c}" for m, c in have.items())
            problems.append(f"IPv{version} data addresses per active member: {shown}; "
                            f"the kernel's rule gives counts {wanted}")
    return problems


def final_problems(world: World, where: Where) -> list[str]:
    """At the end of a drill: each IPMP data address on one active member, the counts balanced.

    Solaris 11 has no home to come back to; once every member is back,
    ``ipmp_ill_activate`` leaves the active members' counts within one of
    each other (illumos ``ipmp.c``).
    """
    problems = []
    for itf in world.plan.ipmp:
        actif = active(world, itf.group, where)
        mine = group_addresses(world, itf.group)
        for address in mine:
            now = where(address)
            if len(now) != 1 or not now <= set(actif):
                problems.append(f"at the end {address} is on {', '.join(sorted(now)) or 'no interface'}, "
                                f"not on one active member of {itf.name} ({', '.join(actif)})")
        for version in (4, 6):
            of_version = [a for a in mine if ipaddress.ip_address(a).version == version]
            counts = [sum(1 for a in of_version if m in where(a)) for m in actif]
            if of_version and counts and max(counts) - min(counts) > 1:
                problems.append(f"at the end the IPv{version} addresses of {itf.name} are not balanced "
                                f"over {', '.join(actif)}: {counts}")
    return problems
