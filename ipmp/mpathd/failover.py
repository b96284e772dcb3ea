"""Where data addresses go: the failover/failback placement policy over a ``Config``.

Pure module: no I/O, no clock, no logging; it imports only ``ipmp.model``
and ``ipmp.config.binding`` (``families``, shared with the Solaris 11 rules).
The daemon decides *when* (failure, repair, offline, the rescan invariants of
§2.7); this module decides *where* and computes the resulting ``Config``,
which the daemon turns into a plan of address moves.

What Solaris splits between in.mpathd and the kernel, reproduced here:

* ``choose_destination`` is in.mpathd's ``get_failover_dst`` (§2.8).
* ``fail_over`` / ``fail_back`` are the kernel's ``SIOCLIFFAILOVER`` /
  ``SIOCLIFFAILBACK`` (``ipif_move_all``, ``ill_move``; §1 "Address
  migration mechanics"): which logical interfaces move, which unit they get,
  the unit-0 placeholder, the remembered original interface and unit.
* The kernel INACTIVE rules (§1) that follow a move: a failover or failback
  *to* a NIC clears INACTIVE on it (``held_inactive`` here; a STANDBY NIC's
  INACTIVE is computed by ``Interface.inactive`` from what it hosts).

Vocabulary: the *home* of an address is the physical interface it belongs to
(Solaris: the original interface index); ``Logical.home == ""`` means "this
interface", ``Logical.home_unit`` its unit there.

Decisions where Solaris leaves room [INF]:

* Member order is ``Config`` order (kernel index order).  in.mpathd walks its
  group list newest-first; "newest" has no meaning that survives a restart
  here, index order is stable and visible in ``ifconfig -a``.
* When a standby is being emptied (§2.7 invariant 1), STANDBY members are
  not eligible at all.  This is what the illumos comment on
  ``get_failover_dst`` and §2.7 ("to a non-standby member") say; the 2006
  code only skipped the standby *preference* and let an INACTIVE standby win
  the fewest-addresses count, moving addresses from one standby to another.
* Down data addresses move too: ``ipif_move_all`` moves every non-NOFAILOVER
  logical interface whatever its UP flag, so ``ifconfig hme0:2 up`` after a
  failure brings the address up where it can be used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from ipmp.config.binding import families
from ipmp.model import Config, Family, Interface, Logical

__all__ = [
    "addresses_elsewhere",
    "choose_destination",
    "data_count",
    "fail_back",
    "fail_over",
    "families",
    "hosted_foreign",
    "is_movable",
    "is_placeholder",
    "movable_logicals",
    "standby_to_empty",
]


# --------------------------------------------------------------------------
# What moves
# --------------------------------------------------------------------------


def _is_link_local(lg: Logical) -> bool:
    return lg.family is Family.INET6 and lg.address is not None and lg.address.ip.is_link_local


def is_movable(lg: Logical) -> bool:
    """Whether failover moves this logical interface (§1 mechanics 1-2).

    Data addresses move; NOFAILOVER (test addresses, placeholders) never
    does, and neither does an IPv6 link-local address, NOFAILOVER or not:
    it belongs to the link.  ``kernel_owned`` is checked as well because the
    state store does not keep that bit and a link-local may come back
    without it; the address test covers that case.
    """
    return lg.is_data and not lg.kernel_owned and not _is_link_local(lg)


def movable_logicals(itf: Interface) -> tuple[Logical, ...]:
    """The logical interfaces a failover from ``itf`` would move, IPv4 first, by unit.

    A data address of a Solaris 11 IPMP interface (``ipmp_unit``) is never
    failed over: it has no home, the kernel re-binds it (``binding``).
    """
    return tuple(lg for lg in sorted(itf.logicals, key=lambda x: (x.family, x.unit))
                 if is_movable(lg) and lg.ipmp_unit is None)


def is_placeholder(lg: Logical) -> bool:
    """The unit-0 slot a failover leaves behind (§1 mechanics 3).

    Solaris (``ipif_move`` in the pre-Clearview ``ip_if.c``) gives this
    "replacement ipif" address 0.0.0.0, the moved address's flags plus
    NOFAILOVER, minus UP, and marks it ``ipif_replace_zero``.  The model has
    no such mark [INF]: an address-less, down unit 0 with NOFAILOVER stands
    for it (``flagword.is_placeholder`` draws the same slot).
    """
    return lg.unit == 0 and lg.address is None and not lg.up and lg.nofailover


def _replaceable(itf: Interface, family: Family, *, failback: bool) -> bool:
    """Whether a returning address takes unit 0 of ``family`` on ``itf`` (``IPIF_REPL_CHECK``).

    The kernel's test (``ip_if.h``): unit 0 is the replacement a failover
    left, or, on a failback only, any IPv4 unit 0 that is down with address
    0.0.0.0 (``ipif_move``'s comment: "When DR pulls out the NIC and
    re-plumbs the interface, we might just have a zero address plumbed on
    the ipif with zero id").  Any other unit 0 stays where it is.
    """
    lg = itf.logical(family, 0)
    if lg is None or lg.address is not None or lg.up:
        return False
    return lg.nofailover or (failback and family is Family.INET)


def data_count(itf: Interface) -> int:
    """UP data logical interfaces hosted, both families (in.mpathd ``logint_upcount``).

    NOFAILOVER logicals and the kernel's IPv6 link-local do not count
    (§2.8, 2nd choice).  Addresses that failed over to ``itf`` count: they
    are traffic it carries.
    """
    return sum(1 for lg in itf.logicals if lg.up and is_movable(lg))


def addresses_elsewhere(config: Config, home: str) -> bool:
    """Whether some address whose home is ``home`` sits on another interface.

    False means the NIC has all its addresses back (in.mpathd ``pi_full``):
    §2.7 retry invariant 3 repeats the failback while this is true.
    """
    return any(lg.home == home for itf in config.interfaces if itf.name != home for lg in itf.logicals)


def hosted_foreign(config: Config, name: str) -> bool:
    """Whether ``name`` hosts addresses that belong to another interface.

    A STANDBY NIC hosting foreign addresses is active; once they have failed
    back it is empty and INACTIVE again (§1 kernel INACTIVE rules).
    """
    itf = config.get(name)
    return itf is not None and any(lg.home not in ("", name) for lg in itf.logicals)


def standby_to_empty(config: Config, name: str) -> bool:
    """Whether ``name`` is a standby that holds only its own data addresses (§2.7 invariant 1).

    The Solaris kernel marks such a NIC INACTIVE ("hosts only its own
    addresses") and in.mpathd then fails those addresses over to a
    non-standby member (``emptying_standby=True``).  ``Interface.inactive``
    is False while any data address is up on the NIC, so this is the test
    the rescan wants.  A standby carrying other NICs' addresses is active
    and keeps them until they fail back.
    """
    itf = config.get(name)
    if itf is None or not itf.standby or itf.failed or itf.offline:
        return False
    return bool(movable_logicals(itf)) and not hosted_foreign(config, name)


# --------------------------------------------------------------------------
# Where it goes
# --------------------------------------------------------------------------


def choose_destination(
    config: Config,
    source: str,
    *,
    usable: Callable[[str], bool],
    emptying_standby: bool = False,
) -> str | None:
    """The member that should receive ``source``'s data addresses (§2.8).

    Args:
        config: the current view.
        source: the interface to empty.
        usable: whether a member can carry traffic now; the daemon passes
            "state RUNNING and link up" (in.mpathd's ``PI_RUNNING`` test).
        emptying_standby: the source is an INACTIVE standby being emptied
            (§2.7 invariant 1, in.mpathd ``FAILOVER_TO_NONSTANDBY``): STANDBY
            members are then not eligible.

    Returns:
        the member's name, or None when there is none (the caller reports
        EMINRED, "minimum failover redundancy not met", and the addresses
        stay put).  The anonymous group (no group name) never has one.
    """
    src = config.get(source)
    if src is None or not src.group:
        return None
    needed = families(src)
    fewest: Interface | None = None
    for itf in config.group_members(src.group):
        # Excluded: itself, OFFLINE members, and members missing a family the
        # source has plumbed (the kernel refuses to move an IPv6 address to a
        # NIC without IPv6; §2.8 "IPv4/IPv6 homogeneity").
        if itf.name == source or itf.offline or not needed <= families(itf):
            continue
        if not usable(itf.name):
            continue
        if itf.standby or itf.inactive:
            if emptying_standby:
                if itf.standby:
                    continue
            else:
                # 1st choice: the first standby or INACTIVE member.
                return itf.name
        # 2nd choice: fewest UP data addresses; ties go to the first seen.
        if fewest is None or data_count(itf) < data_count(fewest):
            fewest = itf
    return fewest.name if fewest is not None else None


def _arrive_home(itf: Interface, lg: Logical, unit: int | None = None) -> Interface:
    """Put an address back on its home NIC: at ``unit`` when given, else its old
    unit if free, else the lowest free one.  Whatever was at that unit (the
    placeholder) is replaced."""
    if unit is None:
        want = lg.home_unit
        unit = want if want is not None and itf.logical(lg.family, want) is None else itf.free_unit(lg.family)
    return itf.with_logical(replace(lg, unit=unit, home="", home_unit=None))


def _arrive_away(itf: Interface, lg: Logical, source: str) -> Interface:
    """Put an address on a foreign NIC at its lowest free unit, remembering where it came from.

    An address that had already moved keeps its first home and unit: it
    always fails back to its original NIC (§1 mechanics 4).
    """
    home, home_unit = (lg.home, lg.home_unit) if lg.home else (source, lg.unit)
    return itf.with_logical(replace(lg, unit=itf.free_unit(lg.family), home=home, home_unit=home_unit))


def _placeholder(lg: Logical) -> Logical:
    # Solaris: address 0.0.0.0, the old flags plus NOFAILOVER, minus UP.
    return Logical(lg.family, 0, None, up=False, deprecated=lg.deprecated, nofailover=True)


def fail_over(config: Config, source: str, destination: str) -> Config:
    """Move every data address of ``source`` to ``destination`` (``SIOCLIFFAILOVER``).

    Both families move in one step.  Each address takes the lowest free unit
    of its family on the destination (``hme0:1`` becomes ``qfe0:2``) and
    remembers its home; a data address at unit 0 leaves a placeholder there.
    An address whose home is the destination goes home instead (old unit if
    free), as a failback would put it.  When anything moved, the destination
    is no longer held INACTIVE.  Nothing to move: the config is returned
    unchanged.

    Raises:
        ValueError: an unknown interface, ``source == destination``, or a
            destination without a family that has to move.
    """
    src = config.get(source)
    dst = config.get(destination)
    if src is None or dst is None:
        raise ValueError(f"unknown interface {source if src is None else destination}")
    if source == destination:
        raise ValueError(f"cannot fail {source} over to itself")
    moving = movable_logicals(src)
    if not moving:
        return config
    missing = {lg.family for lg in moving} - families(dst)
    if missing:
        # The kernel refuses too (ill_move); choose_destination never picks such a member.
        words = " and ".join(sorted(f.word for f in missing))
        raise ValueError(f"{destination} is not plumbed for {words}")
    for lg in moving:
        src = src.without_logical(lg.family, lg.unit)
        if lg.unit == 0:
            src = src.with_logical(_placeholder(lg))
    # Addresses going home land first, so they get their old units back.
    dst = _land_home(dst, (lg for lg in moving if lg.home == destination), failback=False)
    for lg in moving:
        if lg.home != destination:
            dst = _arrive_away(dst, lg, source)
    dst = replace(dst, held_inactive=False)
    return config.with_interface(src).with_interface(dst)


def fail_back(config: Config, home: str) -> Config:
    """Bring back every address whose home is ``home`` from the other members (``SIOCLIFFAILBACK``).

    Each returns to its old unit if free (unit 0 consumes the placeholder),
    else to the lowest free unit, and forgets its home.  Like in.mpathd's
    ``do_failback`` this pulls from every member of the group, not only the
    one failed over to, and skips a member that has a family plumbed which
    ``home`` lacks: the kernel would refuse, and the failback is partial
    (EFBPARTIAL; ``addresses_elsewhere`` stays true).  An interface in the
    anonymous group has nothing to take back.  A failback to a NIC clears
    its INACTIVE hold.

    Raises:
        ValueError: ``home`` is unknown.
    """
    target = config.get(home)
    if target is None:
        raise ValueError(f"unknown interface {home}")
    if not target.group:
        return config
    have = families(target)
    returning: list[Logical] = []
    sources: list[Interface] = []
    for itf in config.group_members(target.group):
        if itf.name == home or not families(itf) <= have:
            continue
        mine = [lg for lg in itf.logicals if lg.home == home]
        if not mine:
            continue
        emptied = itf
        for lg in mine:
            emptied = emptied.without_logical(lg.family, lg.unit)
        sources.append(emptied)
        returning.extend(mine)
    if not returning:
        return config
    target = _land_home(target, returning, failback=True)
    target = replace(target, held_inactive=False)
    out = config
    for itf in (*sources, target):
        out = out.with_interface(itf)
    return out


def _land_home(target: Interface, returning: Iterable[Logical], *, failback: bool) -> Interface:
    """Place addresses back on their home NIC (``failback``: a failback, else a failover home).

    Unit 0 first, as the kernel does it (``ipif_move``): when unit 0 of a
    family is replaceable (``_replaceable``), the first address of that
    family to come home takes unit 0, whatever unit it had, and the
    placeholder is gone; the kernel sets the placeholder's id aside so that
    ``ipif_get_id`` hands out 0.  "First" is the order the kernel moves
    them in: the members in group order, each one's logical interfaces by
    unit (``ipif_move_all``), which is the order ``returning`` comes in;
    the address that left unit 0 is normally that first one, having taken
    the lowest free unit when it left.

    The rest in two passes, so that an address that may take its old unit
    is never pushed aside by one that lands on "the lowest free unit": first
    those whose old unit is free (the first claimant wins a contested unit),
    then the others.  Decision: on a failover home as on a failback the old
    unit is tried (the kernel tries it on a failback only); it keeps the
    configuration the hostname files made.
    """
    arrivals = list(returning)
    placed: set[int] = set()
    for family in (Family.INET, Family.INET6):
        if not _replaceable(target, family, failback=failback):
            continue
        first_home = next((i for i, lg in enumerate(arrivals) if lg.family is family), None)
        if first_home is not None:
            target = _arrive_home(target, arrivals[first_home], unit=0)
            placed.add(first_home)
    first: list[Logical] = []
    rest: list[Logical] = []
    claimed: set[tuple[Family, int]] = set()
    for lg in sorted((lg for i, lg in enumerate(arrivals) if i not in placed), key=_home_order):
        unit = lg.home_unit
        if unit is not None and (lg.family, unit) not in claimed and target.logical(lg.family, unit) is None:
            claimed.add((lg.family, unit))
            first.append(lg)
        else:
            rest.append(lg)
    for lg in (*first, *rest):
        target = _arrive_home(target, lg)
    return target


def _home_order(lg: Logical) -> tuple[int, int]:
    return (lg.family, -1 if lg.home_unit is None else lg.home_unit)
