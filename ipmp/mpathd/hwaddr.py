"""Duplicate hardware addresses in a group: which member goes offline, which comes back.

Clearview in.mpathd (Solaris 11, illumos ``mpd_tables.c``) keeps at most one
member of a group online per hardware address: two NICs answering for one
MAC on one link confuse every switch and every peer's ARP cache, so IPMP
could not tell which NIC a frame reached.  Solaris 10 only documented the
requirement (``local-mac-address?=true`` on SPARC) and tolerated duplicates;
so does this daemon for a Solaris 10 group (reference §7.1, §8.12).  The
rule therefore applies to a group that has a Solaris 11 IPMP interface
(``Config.ipmp_interface``), never to the anonymous group
(``phyint_lookup_hwaddr`` returns nothing there).

The rules, as illumos applies them:

- ``phyint_lookup_hwaddr(pi, online_only)``: another member of the group
  with the same hardware address.  Members offline by the admin
  (``if_mpadm -d``) never count; members offlined for a duplicate count
  unless ``online_only``.
- A NIC that joins a group where an online member has its address is
  offlined (``phyint_inst_init_from_k``): the member that was there first
  stays.  At start-up the NICs join in the kernel's order.
- A NIC whose address changes (``phyint_link_notify``, DL_NOTE_PHYS_ADDR):
  if its old address was duplicated, the one offlined for it (itself, or
  the other) is brought back when its address is now unique; if its new
  address duplicates another member's, it is offlined itself, even if it
  was there first.
- A member that leaves the group (``phyint_delete``) or is offlined by the
  admin (``phyint_offline``) lets the member offlined as its duplicate come
  back.
- Bringing one back (``phyint_undo_offline``) checks again against the
  online members: still duplicated, it stays offline (the admin's
  ``if_mpadm -r`` is refused with IPMP_EHWADDRDUP and the interface is
  flagged as a duplicate from then on).
- After a restart the state store says OFFLINE only: a member adopted
  OFFLINE while an online member has its address is taken for a
  duplicate, as illumos's start-up offlines such a NIC again
  (``phyint_inst_init_from_k``), so it comes back once unique.

Joins, leaves and the rule starting to hold are one sweep over the group in
the order the members joined (``to_offline``, ``to_bring_back``); only an
address change is judged on its own (``offline_on_change``), because there
the member that changed goes, not the newest.

The log lines are illumos's, verbatim (``OFFLINING``, ``ONLINING``).  The
functions here decide; ``Tracking`` and ``Machine`` carry the verdicts out
through the same chokepoints as an ``if_mpadm`` offline.

Pure module: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ipmp.model import Config
from ipmp.mpathd.phyint import Phyint, State

__all__ = [
    "OFFLINING",
    "ONLINING",
    "applies",
    "lookup_hwaddr",
    "normalize",
    "offline_on_change",
    "parse_mac",
    "to_bring_back",
    "to_offline",
]

#: ``phyint_offline`` (mpd_tables.c), when ``pi_hwaddrdup`` is set.
OFFLINING = "IP interface {name} has a hardware address which is not unique in group {group}; offlining"
#: ``phyint_undo_offline`` (mpd_tables.c), when ``pi_hwaddrdup`` was set.
ONLINING = "IP interface {name} now has a unique hardware address in group {group}; onlining"


_HEX = frozenset("0123456789abcdefABCDEF")


def parse_mac(mac: str) -> bytes:
    """``"02:00:00:00:01:02"`` -> 6 bytes; ValueError for anything else."""
    parts = mac.split(":")
    # Explicit digit check: int(p, 16) alone would also take "+f" or " f".
    if len(parts) != 6 or not all(1 <= len(p) <= 2 and all(c in _HEX for c in p) for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def normalize(mac: str | None) -> str | None:
    """One spelling per address (the kernel prints lower case; a store or a test may not)."""
    return mac.lower() if mac else None


def applies(config: Config, group: str) -> bool:
    """Whether the duplicate rule holds for ``group``: a named group with a Solaris 11 IPMP interface."""
    return bool(group) and config.ipmp_interface(group) is not None


def lookup_hwaddr(pi: Phyint, members: Iterable[Phyint], *, online_only: bool,
                  hwaddr: str | None = None) -> Phyint | None:
    """``phyint_lookup_hwaddr``: another member of ``pi``'s group with its hardware address.

    ``hwaddr`` stands for ``pi``'s own when given (its old address, when it
    has just changed).  A NIC without a hardware address duplicates nothing.
    """
    mine = normalize(hwaddr if hwaddr is not None else pi.hwaddr)
    if not pi.group or mine is None:
        return None
    for other in members:
        if other is pi or other.group != pi.group:
            continue
        # An admin's offline never counts: brought back, it is checked then.
        if other.state is State.OFFLINE and (online_only or not other.hwaddrdup):
            continue
        if normalize(other.hwaddr) == mine:
            return other
    return None


def offline_on_change(pi: Phyint, members: Sequence[Phyint]) -> bool:
    """``phyint_link_notify``: whether ``pi``, whose address just changed, must be offlined.

    Its new address duplicates another member's (online, or offlined as a
    duplicate) and it is not offlined for a duplicate already.  What its
    old address held back comes back through ``to_bring_back``: the member
    offlined as a duplicate of it, or ``pi`` itself.
    """
    return not pi.hwaddrdup and lookup_hwaddr(pi, members, online_only=False) is not None


def to_offline(members: Sequence[Phyint]) -> list[Phyint]:
    """Members that joined after an online member with their address (``phyint_inst_init_from_k``).

    ``members`` in the order they joined; each one still online that
    duplicates an earlier online one goes, the earlier one stays.  After
    the address changes are dealt with, only a join (or the rule starting
    to hold for the group) leaves two online members with one address.
    """
    kept: dict[str, Phyint] = {}
    out: list[Phyint] = []
    for pi in members:
        mac = normalize(pi.hwaddr)
        if pi.state is State.OFFLINE or mac is None:
            continue
        if mac in kept:
            out.append(pi)
        else:
            kept[mac] = pi
    return out


def to_bring_back(members: Sequence[Phyint], *, rule: bool) -> list[Phyint]:
    """Members offlined for a duplicate whose address no online member has now.

    In the order given (the order they joined), each one brought back
    counting as online for the next (``phyint_undo_offline`` checks against
    the online members only).  Without the rule (the group lost its IPMP
    interface, or the NIC left for a Solaris 10 group), every one comes back.
    """
    online = {normalize(pi.hwaddr) for pi in members if pi.state is not State.OFFLINE} - {None}
    out: list[Phyint] = []
    for pi in members:
        if not (pi.hwaddrdup and pi.state is State.OFFLINE):
            continue
        mac = normalize(pi.hwaddr)
        if rule and mac is not None and mac in online:
            continue
        out.append(pi)
        if mac is not None:
            online.add(mac)
    return out
