"""The rows of each ``ipmpstat`` mode: Solaris 11 columns on our model (§7.2).

Pure: ``mode_rows`` turns the daemon's ``Snapshot`` (the records of
``ipmp.mpathd.snapshot``) into one typed record per output line, with its
text (the columns) and its ``--json`` object; ``ipmp.admin.ipmpstat``
selects the fields and lays the lines out.  No I/O, no name lookups, no
clock.

Mapping of Solaris 11 columns onto the Solaris 10 address-migration model
(Solaris 11 data addresses live on an IPMP meta-interface; ours live on the
NICs and move between them):

``-g``
    GROUP: the group name (there is no IPMP interface; Solaris shows its
    name, which defaults to the group name).  GROUPNAME: the group name.
    STATE: the daemon's ``ok``/``degraded``/``failed``.  FDT: the group's
    failure detection time as ``%.2fs``; empty when no member has
    probe-based detection enabled (every PROBE ``disabled``; Solaris: FDT 0).
    INTERFACES: members by name, active ones first, then ``(...)`` the
    usable ones that are not active, then ``[...]`` the unusable ones.
    Only named groups are listed (the anonymous group of
    ``TRACK_INTERFACES_ONLY_WITH_GROUPS=no`` has no row).
``-i``
    One row per interface the daemon tracks, named groups in name order
    with their members in name order, then anonymous-group interfaces
    (GROUP ``--``).  ACTIVE: ``yes`` when the NIC carries data addresses
    now (the daemon's ``active``) and is usable; on Linux a NIC without data
    addresses carries no data traffic (Solaris 10 also spread outbound
    traffic over such NICs; Linux does not).  LINK, PROBE, STATE: the
    daemon's words.  FLAGS, seven letters, ``-`` when clear:
    ``i`` INACTIVE; ``s`` STANDBY; ``m`` and ``b`` the group's IPv4
    multicast/broadcast receiver, ``M`` its IPv6 multicast receiver (see
    below); ``d`` never (the snapshot has no "interface down" fact: our
    NICs are always up); ``h`` offlined because another member has its
    hardware address (only in a group with a Solaris 11 IPMP interface:
    Solaris 10 in.mpathd tolerates duplicates, §8.12).
``-a``
    One row per data address (test and kernel-made link-local addresses
    are not data addresses), ordered by group, then home interface, then
    the daemon's order.  ADDRESS: the address without its prefix length.
    STATE: ``up`` when the address is up, the NIC holding it now is usable
    and its group has not failed; ``down`` otherwise (an address of a
    failed group is ``down``: nothing carries it).  GROUP: the group name.
    INBOUND: the NIC holding the address now (after a failover, the
    surviving NIC; its physical name, ``qfe0`` for ``qfe0:2``); empty when
    down.  OUTBOUND: the same NIC (Linux sends from the NIC that has the
    address); empty when down.
``-t``
    One row per probed address family (IPv4 row when IPv4 probes or when
    neither family does, IPv6 row when IPv6 probes), interfaces in the
    ``-i`` order.  MODE: ``routes``/``multicast`` from the daemon,
    ``disabled`` without a test address.  TESTADDR: the test address, empty
    when disabled.  TARGETS: the active targets in firing order.

(``-p`` prints the daemon's probe events as they come, not rows of a
snapshot: ``ipmp.admin.ipmpstat``.)

"Usable" NIC: STATE ``ok`` or ``unknown``, link not down, neither FAILED
nor OFFLINE; the daemon's ``degraded`` group state uses the same test.

Broadcast/multicast receiver (FLAGS ``m``/``b``/``M``): Solaris 10 nominates
one member per group, preferring members that are not FAILED, INACTIVE or
OFFLINE, never an OFFLINE one (§1, point 8).  Linux has no such nomination,
so we show the one that rule would pick: the first usable, not INACTIVE
member by name, else the first usable INACTIVE one, else none.  A family
counts for a group when a member probes with it or a data address of the
group has it (Solaris 10 wants every member plumbed alike).  Anonymous-group
interfaces get no letter.

A group with a Solaris 11 IPMP interface (``ipadm create-ipmp``; the
snapshot's ``GroupState.interface``) is shown as Solaris 11 shows it
(illumos ``ipmpstat.c``): GROUP in ``-g``, ``-i`` and ``-a`` is the IPMP
interface's name (``gr_ifname``), GROUPNAME the group's (``gr_name``).  A
member is active (``-i`` ACTIVE, ``-g`` INTERFACES) when it is usable and
not INACTIVE, whether or not an address is bound to it (``ipmp_ill_is_active``).
``-a`` lists the IPMP interface's data addresses: STATE ``up`` when the
address is (``IFF_UP``), INBOUND the member it is bound to, empty while it
is bound to none; OUTBOUND that member only.  Solaris 11 sends from every
active member (``sfunc_addr_outbound``); Linux sends an address's traffic
from the link that holds it, a deliberate difference.  The m/b/M receiver
is the daemon's nominee (``GroupState.cast``): the first member to become
active, kept until it stops being active, with no fail-back (illumos
``ipmp.c`` ``ipmp_illgrp_set_cast``).

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# ``ipmpstat -i`` is run in loops by scripts: no ``typing`` at run time (type
# checkers treat any name ``TYPE_CHECKING`` as true), and the records use the
# ``typing.NamedTuple`` syntax on ``collections.namedtuple`` (``NamedTuple``).
from ipmp.admin.ofmt import normalise_mode
from ipmp.mpathd.snapshot import AddressState, InterfaceState, NamedTuple, Snapshot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "Row",
    "mode_rows",
]


# The records of this module are NamedTuples, not dataclasses: each
# dataclass costs about as much to create at import as all ten NamedTuples
# together, and ``ipmpstat -i`` is run in loops by scripts (the typed
# syntax without importing ``typing``: see above).


#: FLAGS letter positions (§7.2): i s m b M d h.
_NFLAGS: Final = 7
_FLAG_INACTIVE, _FLAG_STANDBY, _FLAG_MCAST4, _FLAG_BCAST4, _FLAG_MCAST6 = range(5)


# -- the snapshot ---------------------------------------------------------------------


def _interfaces(snapshot: Snapshot) -> list[InterfaceState]:
    """Tracked interfaces: named groups by name, members by name, then anonymous ones."""
    return sorted(snapshot.interfaces.values(), key=lambda itf: (itf.group == "", itf.group, itf.name))


def _holder(addr: AddressState) -> str:
    """The NIC holding ``addr`` now: ``qfe0`` for ``qfe0:2``."""
    return addr.interface.partition(":")[0]


def _addresses(snapshot: Snapshot) -> list[AddressState]:
    # Stable: within one home, the daemon's (logical unit) order.
    return sorted(snapshot.addresses, key=lambda a: (a.group == "", a.group, a.home or _holder(a)))


def _s11(snapshot: Snapshot, group: str) -> bool:
    """Whether ``group`` has a Solaris 11 IPMP interface (module doc)."""
    state = snapshot.groups.get(group) if group else None
    return state is not None and bool(state.interface)


def _group_name(snapshot: Snapshot, group: str) -> str:
    """The GROUP column: the IPMP interface's name in Solaris 11 (``gr_ifname``), else the group's."""
    state = snapshot.groups.get(group) if group else None
    return state.interface if state is not None and state.interface else group


def _active(snapshot: Snapshot, itf: InterfaceState) -> bool:
    """ACTIVE: carries data addresses; Solaris 11: usable and not INACTIVE (``ipmp_ill_is_active``)."""
    if _s11(snapshot, itf.group):
        return itf.usable and not itf.inactive
    return itf.carries_data


def _nominees(members: Sequence[InterfaceState], families: set[str]) -> dict[str, str]:
    """Family word -> the member that would receive its broadcast/multicast (module doc)."""
    ranked = [m for m in members if m.usable and not m.inactive] + \
             [m for m in members if m.usable and m.inactive]
    if not ranked:
        return {}
    return {family: ranked[0].name for family in families}


def _flags(itf: InterfaceState, nominees: Mapping[str, str]) -> str:
    letters = ["-"] * _NFLAGS
    if itf.inactive:
        letters[_FLAG_INACTIVE] = "i"
    if itf.standby:
        letters[_FLAG_STANDBY] = "s"
    if nominees.get("inet") == itf.name:
        letters[_FLAG_MCAST4] = "m"
        letters[_FLAG_BCAST4] = "b"
    if nominees.get("inet6") == itf.name:
        letters[_FLAG_MCAST6] = "M"
    if itf.hwaddrdup:  # offlined for a duplicate hardware address (Solaris 11 ipmpstat.c)
        letters[_NFLAGS - 1] = "h"
    return "".join(letters)


# -- rows: one typed record per output line, shared by text and JSON ---------------


class _GroupRow(NamedTuple):
    name: str
    state: str
    fdt_ms: int | None
    active: tuple[str, ...]
    inactive: tuple[str, ...]
    unusable: tuple[str, ...]
    interface: str = ""  # Solaris 11: the IPMP interface; "" shows the group's name

    def text(self) -> dict[str, str]:
        parts = list(self.active)
        if self.inactive:
            parts.append("(" + " ".join(self.inactive) + ")")
        if self.unusable:
            parts.append("[" + " ".join(self.unusable) + "]")
        fdt = f"{self.fdt_ms / 1000:.2f}s" if self.fdt_ms else ""
        return {"GROUP": self.interface or self.name, "GROUPNAME": self.name, "STATE": self.state, "FDT": fdt,
                "INTERFACES": " ".join(parts)}

    def json(self) -> dict[str, object]:
        return {"group": self.interface or self.name, "groupname": self.name, "state": self.state,
                "fdt": self.fdt_ms / 1000 if self.fdt_ms else None,
                "interfaces": {"active": list(self.active), "inactive": list(self.inactive),
                               "unusable": list(self.unusable)}}


class _InterfaceRow(NamedTuple):
    name: str
    active: bool
    group: str
    flags: str
    link: str
    probe: str
    state: str

    def text(self) -> dict[str, str]:
        return {"INTERFACE": self.name, "ACTIVE": "yes" if self.active else "no", "GROUP": self.group,
                "FLAGS": self.flags, "LINK": self.link, "PROBE": self.probe, "STATE": self.state}

    def json(self) -> dict[str, object]:
        return {"interface": self.name, "active": self.active, "group": self.group or None,
                "flags": self.flags, "link": self.link, "probe": self.probe, "state": self.state}


class _AddressRow(NamedTuple):
    address: str
    family: str
    up: bool
    group: str
    inbound: str
    outbound: tuple[str, ...]

    def text(self) -> dict[str, str]:
        return {"ADDRESS": self.address, "STATE": "up" if self.up else "down", "GROUP": self.group,
                "INBOUND": self.inbound, "OUTBOUND": " ".join(self.outbound)}

    def json(self) -> dict[str, object]:
        return {"address": self.address, "family": self.family, "state": "up" if self.up else "down",
                "group": self.group or None, "inbound": self.inbound or None,
                "outbound": list(self.outbound)}


class _TargetRow(NamedTuple):
    name: str
    family: str
    mode: str
    testaddr: str
    targets: tuple[str, ...]

    def text(self) -> dict[str, str]:
        return {"INTERFACE": self.name, "MODE": self.mode, "TESTADDR": self.testaddr,
                "TARGETS": " ".join(self.targets)}

    def json(self) -> dict[str, object]:
        return {"interface": self.name, "family": self.family, "mode": self.mode,
                "testaddr": self.testaddr or None, "targets": list(self.targets)}


Row = _GroupRow | _InterfaceRow | _AddressRow | _TargetRow


def _group_rows(snapshot: Snapshot) -> list[_GroupRow]:
    interfaces = _interfaces(snapshot)
    rows: list[_GroupRow] = []
    for name, group in sorted(snapshot.groups.items()):
        if not name:
            continue  # the anonymous group has no row
        members = [itf for itf in interfaces if itf.group == name]
        probing = any(itf.probe not in ("", "disabled") for itf in members)
        active = [m for m in members if _active(snapshot, m)]
        rows.append(_GroupRow(
            name=name, state=group.state, fdt_ms=group.fdt_ms if probing else None,
            active=tuple(m.name for m in active),
            inactive=tuple(m.name for m in members if m.usable and m not in active),
            unusable=tuple(m.name for m in members if not m.usable),
            interface=group.interface,
        ))
    return rows


def _interface_rows(snapshot: Snapshot) -> list[_InterfaceRow]:
    interfaces = _interfaces(snapshot)
    families: dict[str, set[str]] = {}
    for itf in interfaces:
        families.setdefault(itf.group, set()).update(itf.probes)
    for addr in snapshot.addresses:
        if addr.family:
            families.setdefault(addr.group, set()).add(addr.family)
    nominees: dict[str, dict[str, str]] = {
        group: _nominees([itf for itf in interfaces if itf.group == group], fams)
        for group, fams in families.items() if group
    }
    for group, fams in families.items():
        state = snapshot.groups.get(group) if group else None
        if state is not None and state.interface:
            # Solaris 11: the daemon's nominee, no fail-back (module doc).
            nominees[group] = {family: state.cast for family in fams} if state.cast else {}
    return [
        _InterfaceRow(name=itf.name, active=_active(snapshot, itf), group=_group_name(snapshot, itf.group),
                      flags=_flags(itf, nominees.get(itf.group, {})), link=itf.link, probe=itf.probe,
                      state=itf.state)
        for itf in interfaces
    ]


def _address_rows(snapshot: Snapshot) -> list[_AddressRow]:
    interfaces = snapshot.interfaces
    rows: list[_AddressRow] = []
    for addr in _addresses(snapshot):
        holder_name = _holder(addr)
        holder = interfaces.get(holder_name)
        group = snapshot.groups.get(addr.group) if addr.group else None
        if group is not None and group.interface:
            # Solaris 11: the address is the IPMP interface's and up as it
            # is; INBOUND the active member it is bound to (module doc).
            # A down address is bound to no member (``ipmp_ipif_is_up_dataaddr``).
            bound = holder_name if addr.up and holder is not None and _active(snapshot, holder) else ""
            rows.append(_AddressRow(address=addr.address.partition("/")[0], family=addr.family, up=addr.up,
                                    group=group.interface, inbound=bound, outbound=(bound,) if bound else ()))
            continue
        group_failed = group is not None and group.state == "failed"
        up = addr.up and not group_failed and (holder is None or holder.usable)
        nic = holder_name if up else ""
        rows.append(_AddressRow(address=addr.address.partition("/")[0], family=addr.family, up=up,
                                group=addr.group, inbound=nic, outbound=(nic,) if nic else ()))
    return rows


def _target_rows(snapshot: Snapshot) -> list[_TargetRow]:
    rows: list[_TargetRow] = []
    for itf in _interfaces(snapshot):
        # Solaris: the IPv4 row when IPv4 probes or neither family does (so a
        # MODE of "disabled" shows), the IPv6 row only when IPv6 probes.
        families = [f for f in ("inet", "inet6") if f in itf.probes] or ["inet"]
        for family in families:
            info = itf.probes.get(family)
            if info is None:
                rows.append(_TargetRow(itf.name, family, "disabled", "", ()))
            else:
                rows.append(_TargetRow(itf.name, family, info.mode, info.test_address.partition("/")[0],
                                       info.targets))
    return rows


def mode_rows(snapshot: Snapshot, mode: str) -> Sequence[Row]:
    """The rows of ``mode`` (``"g"``, ``"i"``, ``"a"``, ``"t"``; ``"-g"`` and ``"group"`` also do).

    Raises:
        ValueError: an unknown mode, or ``"p"``.
    """
    letter = normalise_mode(mode)
    if letter == "g":
        return _group_rows(snapshot)
    if letter == "i":
        return _interface_rows(snapshot)
    if letter == "a":
        return _address_rows(snapshot)
    if letter == "t":
        return _target_rows(snapshot)
    raise ValueError("probe mode (-p) is a live event stream, not a snapshot view")
