"""Addresses of NICs missing at boot, rescued onto another member of their group (§6.5).

Solaris' network/physical (``move_addresses``): a NIC that has hostname
files but fails to plumb, and whose files put it in a group, does not take
its data addresses down with it.  The script picks an *alternate*: a plumbed
member of the same group, a STANDBY one preferred, and recreates the missing
NIC's failover-able addresses there with ``ifconfig <alt> -standby addif``
(``ifparse -f`` keeps only the addresses without ``-failover``).  The
console says::

    moving addresses from failed IPv4 interfaces: hme1 (moved to qfe0).
    moving addresses from failed IPv4 interfaces: hme1 (couldn't move, no alternative interface).

Decisions where the script is silent or Linux differs:

* The group is the one the files leave the NIC in (the evaluator's
  answer: the last ``group`` word wins, as in the script).
* Each rescued address remembers the missing NIC as its home, as a failed
  over address does: once that NIC is configured into the group and
  running, in.mpathd gives the addresses back (§2.7 invariant 3; Solaris
  documents the same for a NIC plumbed later by DR).
* The alternate loses STANDBY, as the script's ``-standby`` does, so that
  ``ifconfig -a`` reads as it would on Solaris.
* Addresses that are down in the files are moved down: the script replays
  the commands, ``up`` or not.
* A missing NIC without a group, or without data addresses, is left alone
  and not mentioned (the script only looks at group members).

Pure: configurations in, configurations out; ``ipmp.admin.session`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ipmp.model import Config, Family, Interface, Logical


@dataclass(frozen=True)
class Rescue:
    """What happened to one missing NIC's addresses of one family."""

    ifname: str
    family: Family
    #: The member that took the addresses; None: no alternative interface.
    alternate: str | None
    addresses: tuple[Logical, ...]

    @property
    def text(self) -> str:
        """This NIC's part of the console line."""
        if self.alternate is None:
            return f"{self.ifname} (couldn't move, no alternative interface)"
        return f"{self.ifname} (moved to {self.alternate})"


def console_line(family: Family, rescues: list[Rescue]) -> str:
    """``moving addresses from failed IPv4 interfaces: hme1 (moved to qfe0).``"""
    word = "IPv4" if family is Family.INET else "IPv6"
    return f"moving addresses from failed {word} interfaces: {' '.join(r.text for r in rescues)}."


def movable(missing: Interface, family: Family) -> tuple[Logical, ...]:
    """The failover-able addresses of ``missing`` (what ``ifparse -f`` keeps)."""
    return tuple(lg for lg in missing.logicals_of(family) if lg.is_data)


def alternate(config: Config, group: str, family: Family, missing: str) -> Interface | None:
    """A plumbed member of ``group`` for ``family``, a STANDBY one preferred, then
    the lowest interface index (the order the boot configured them in)."""
    members = [itf for itf in config.group_members(group)
               if itf.name != missing and family in itf.plumbed and not itf.offline]
    members.sort(key=lambda itf: (not itf.standby, itf.index, itf.name))
    return members[0] if members else None


def rescue(config: Config, missing: Interface, family: Family) -> tuple[Rescue, Config] | None:
    """Move the data addresses of ``missing`` (as its boot files would have
    configured it) onto an alternate in ``config``.

    Returns None when there is nothing to rescue (no group, no data
    addresses); else the rescue and the new configuration (``config``
    unchanged when no alternative interface exists).
    """
    addresses = movable(missing, family)
    if not missing.group or not addresses:
        return None
    # A boot run again finds the addresses already rescued (reset_interface
    # keeps them where they are): nothing more to move, but the holder's
    # files made it STANDBY again.
    holders = [itf for itf in config.interfaces for lg in itf.logicals_of(family)
               if lg.home == missing.name and lg.address is not None]
    if holders:
        return (Rescue(missing.name, family, holders[0].name, addresses),
                config.with_interface(replace(holders[0], standby=False)))
    alt = alternate(config, missing.group, family, missing.name)
    if alt is None:
        return Rescue(missing.name, family, None, addresses), config
    taken = replace(alt, standby=False)  # the script's "-standby"
    for lg in addresses:
        taken = taken.with_logical(replace(lg, unit=taken.free_unit(family), home=missing.name,
                                           home_unit=lg.unit))
    return Rescue(missing.name, family, alt.name, addresses), config.with_interface(taken)
