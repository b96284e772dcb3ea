"""``ipmpstat`` output from in.mpathd's query snapshot: Solaris 11 layout, our model (§7.2).

Pure: ``render`` and ``render_json`` turn the daemon's ``Snapshot`` (the
records of ``ipmp.mpathd.snapshot``, which ``from_wire`` makes of what
``control.call(root, Request("query")).data`` carries) into text.  No I/O,
no name lookups, no clock.  ``ipmp.cli.ipmpstat`` does the rest.  The
field tables, ``-o``/``-P`` and the line layout are ``ipmp.admin.ofmt``'s.

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
    NICs are always up); ``h`` never (Solaris 10 in.mpathd tolerates
    duplicate hardware addresses, §8.12, so nothing is offlined for one).
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
``-p``
    One row per ``probe`` event of the daemon's ``probes`` stream
    (``ipmp.mpathd.events``): a probe acknowledged or declared lost.
    TIME: when the probe was sent, in seconds relative to ``start`` (when
    ipmpstat started; negative for a probe sent before), ``%.2fs``.
    INTERFACE, PROBE (the ICMP sequence number), TARGET.  NETRTT: from
    sending to the moment the daemon read the reply; RTT: to the moment it
    had processed it; RTTAVG and RTTDEV: the target's smoothed round-trip
    time and mean deviation after this probe; all ``%.2fms``.  A lost
    probe has no NETRTT or RTT.

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

Not reproduced: ``-n`` changes nothing, since we print addresses
numerically always (Solaris resolves names with ``getnameinfo`` without
``-n``); Solaris answers ``-o ""`` and more names than the table has with
``Not enough space`` (an artefact of its allocation), we treat the first as
"no valid output fields" and allow the second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

# ``ipmpstat -i`` is run in loops by scripts: no ``typing`` at run time (type
# checkers treat any name ``TYPE_CHECKING`` as true), and the records use the
# ``typing.NamedTuple`` syntax on ``collections.namedtuple`` (``NamedTuple``).
from ipmp.admin.ofmt import (
    EMPTY,
    FIELDS,
    MAX_COLUMNS,
    MODE_NAMES,
    MODES,
    MSG_NO_FIELDS,
    MSG_PARSABLE_ALL,
    MSG_PARSABLE_NONE,
    PAGE_ROWS,
    Cell,
    Field,
    FieldError,
    Line,
    Selection,
    human_line,
    normalise_mode,
    parsable_line,
    select_fields,
    strict_selection,
)
from ipmp.mpathd.snapshot import AddressState, InterfaceState, NamedTuple, Snapshot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "EMPTY",
    "FIELDS",
    "MAX_COLUMNS",
    "MODES",
    "MSG_NO_FIELDS",
    "MSG_PARSABLE_ALL",
    "MSG_PARSABLE_NONE",
    "PAGE_ROWS",
    "Cell",
    "Field",
    "FieldError",
    "Line",
    "ProbeFormatter",
    "Selection",
    "normalise_mode",
    "probe_json",
    "probe_row",
    "probing_enabled",
    "render",
    "render_json",
    "render_lines",
    "select_fields",
]


# The records of this module are NamedTuples, not dataclasses: each
# dataclass costs about as much to create at import as all ten NamedTuples
# together, and ``ipmpstat -i`` is run in loops by scripts (the typed
# syntax without importing ``typing``: see above).  The layout names of
# ``ofmt`` are exported here too: the CLI and the tests know them from here.


#: FLAGS letter positions (§7.2): i s m b M d h.
_NFLAGS: Final = 7
_FLAG_INACTIVE, _FLAG_STANDBY, _FLAG_MCAST4, _FLAG_BCAST4, _FLAG_MCAST6 = range(5)


# -- the snapshot ---------------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _interfaces(snapshot: Snapshot) -> list[InterfaceState]:
    """Tracked interfaces: named groups by name, members by name, then anonymous ones."""
    return sorted(snapshot.interfaces.values(), key=lambda itf: (itf.group == "", itf.group, itf.name))


def _holder(addr: AddressState) -> str:
    """The NIC holding ``addr`` now: ``qfe0`` for ``qfe0:2``."""
    return addr.interface.partition(":")[0]


def _addresses(snapshot: Snapshot) -> list[AddressState]:
    # Stable: within one home, the daemon's (logical unit) order.
    return sorted(snapshot.addresses, key=lambda a: (a.group == "", a.group, a.home or _holder(a)))


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
    return "".join(letters)


# -- rows: one typed record per output line, shared by text and JSON ---------------


class _GroupRow(NamedTuple):
    name: str
    state: str
    fdt_ms: int | None
    active: tuple[str, ...]
    inactive: tuple[str, ...]
    unusable: tuple[str, ...]

    def text(self) -> dict[str, str]:
        parts = list(self.active)
        if self.inactive:
            parts.append("(" + " ".join(self.inactive) + ")")
        if self.unusable:
            parts.append("[" + " ".join(self.unusable) + "]")
        fdt = f"{self.fdt_ms / 1000:.2f}s" if self.fdt_ms else ""
        return {"GROUP": self.name, "GROUPNAME": self.name, "STATE": self.state, "FDT": fdt,
                "INTERFACES": " ".join(parts)}

    def json(self) -> dict[str, object]:
        return {"group": self.name, "groupname": self.name, "state": self.state,
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


_Row = _GroupRow | _InterfaceRow | _AddressRow | _TargetRow


def _group_rows(snapshot: Snapshot) -> list[_GroupRow]:
    interfaces = _interfaces(snapshot)
    rows: list[_GroupRow] = []
    for name, group in sorted(snapshot.groups.items()):
        if not name:
            continue  # the anonymous group has no row
        members = [itf for itf in interfaces if itf.group == name]
        probing = any(itf.probe not in ("", "disabled") for itf in members)
        rows.append(_GroupRow(
            name=name, state=group.state, fdt_ms=group.fdt_ms if probing else None,
            active=tuple(m.name for m in members if m.carries_data),
            inactive=tuple(m.name for m in members if m.usable and not m.carries_data),
            unusable=tuple(m.name for m in members if not m.usable),
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
    return [
        _InterfaceRow(name=itf.name, active=itf.carries_data, group=itf.group,
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


def _rows(snapshot: Snapshot, mode: str) -> Sequence[_Row]:
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


def probing_enabled(snapshot: Snapshot) -> bool:
    """Whether any interface has probe-based failure detection (Solaris ``-p`` pre-check)."""
    return any(itf.probe not in ("", "disabled") for itf in _interfaces(snapshot))


def render_lines(
    snapshot: Snapshot,
    mode: str,
    *,
    fields: Sequence[str] | None = None,
    parsable: bool = False,
    numeric: bool = False,
    page_rows: int = PAGE_ROWS,
) -> list[Line]:
    """``render`` with the position of every value, for colouring."""
    del numeric  # addresses are always numeric (module doc)
    chosen = strict_selection(mode, fields, parsable)
    rows = _rows(snapshot, mode)
    page = page_rows if page_rows > 0 else PAGE_ROWS
    header = Line(human_line(chosen, [f.name for f in chosen])[0], header=True)
    lines: list[Line] = []
    printed = 0  # ofmt's row counter: header lines count too
    for row in rows:
        text = row.text()
        values = [text[f.name] for f in chosen]
        if parsable:
            text_line, cells = parsable_line(chosen, values)
            lines.append(Line(text_line, cells=cells))
            continue
        if printed % page == 0:
            lines.append(header)
            printed += 1
        printed += 1
        text_line, cells = human_line(chosen, [v or EMPTY for v in values])
        lines.append(Line(text_line, cells=cells))
    return lines


def render(
    snapshot: Snapshot,
    mode: str,
    *,
    fields: Sequence[str] | None = None,
    parsable: bool = False,
    numeric: bool = False,
    page_rows: int = PAGE_ROWS,
) -> list[str]:
    """The lines ``ipmpstat -<mode>`` prints for ``snapshot``, without newlines.

    ``mode``: ``"a"``, ``"g"``, ``"i"`` or ``"t"`` (``"-g"`` and ``"group"``
    also do).  ``fields``: field names (any case, ``["all"]`` for all),
    None for the default set.  ``parsable``: ``-P``.  ``numeric``: ``-n``,
    accepted and without effect.  ``page_rows``: lines per page for the
    header repeat.

    Raises:
        FieldError: a bad selection (unknown names are errors here, in
            either mode: the CLI warns about them and drops them first).
        ValueError: an unknown mode, or ``"p"``.
    """
    return [line.text for line in render_lines(snapshot, mode, fields=fields, parsable=parsable,
                                               numeric=numeric, page_rows=page_rows)]


def render_json(snapshot: Snapshot, mode: str) -> str:
    """The ``--json`` extension: one JSON object, every field of the mode.

    ``{"mode": "group", "rows": [...]}``; a row's keys are the field names
    in lower case, in column order, with typed values: ``null`` for empty,
    booleans for ``active``, seconds for ``fdt``, lists for ``targets``,
    ``outbound`` and the three ``interfaces`` classes (``active``,
    ``inactive``, ``unusable``); ``-a`` and ``-t`` rows add ``family``
    (``inet``/``inet6``).  No trailing newline.

    Raises:
        ValueError: an unknown mode, or ``"p"``.
    """
    rows = _rows(snapshot, mode)
    doc = {"mode": MODE_NAMES[normalise_mode(mode)], "rows": [row.json() for row in rows]}
    return json.dumps(doc, indent=2)


# -- probe events (-p) -----------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ms_text(value: object) -> str:
    number = _number(value)
    return "" if number is None else f"{number:.2f}ms"


def _probe_time(event: Mapping[str, object], start: float) -> float | None:
    sent = _number(event.get("sent"))
    return None if sent is None else sent - start


def probe_row(event: Mapping[str, object], start: float) -> dict[str, str]:
    """The text of every ``-p`` field for one probe event; ``start``: monotonic seconds at start."""
    when = _probe_time(event, start)
    probe = event.get("probe")
    return {
        "TIME": "" if when is None else f"{when:.2f}s",
        "INTERFACE": _text(event.get("interface")),
        "PROBE": str(probe) if isinstance(probe, int) and not isinstance(probe, bool) else "",
        "NETRTT": _ms_text(event.get("netrtt_ms")),
        "RTT": _ms_text(event.get("rtt_ms")),
        "RTTAVG": _ms_text(event.get("rttavg_ms")),
        "TARGET": _text(event.get("target")),
        "RTTDEV": _ms_text(event.get("rttdev_ms")),
    }


def probe_json(event: Mapping[str, object], start: float) -> dict[str, object]:
    """The ``--json`` object of one probe event: the ``-p`` fields in lower case, typed.

    ``time`` in seconds, the round-trip times in milliseconds, ``null``
    when empty; ``state`` (``acked``/``lost``), ``family`` and ``group``
    follow.
    """
    when = _probe_time(event, start)
    probe = event.get("probe")
    return {
        "time": None if when is None else round(when, 6),
        "interface": _text(event.get("interface")),
        "probe": probe if isinstance(probe, int) and not isinstance(probe, bool) else None,
        "netrtt": _number(event.get("netrtt_ms")),
        "rtt": _number(event.get("rtt_ms")),
        "rttavg": _number(event.get("rttavg_ms")),
        "target": _text(event.get("target")) or None,
        "rttdev": _number(event.get("rttdev_ms")),
        "state": _text(event.get("state")) or None,
        "family": _text(event.get("family")) or None,
        "group": _text(event.get("group")) or None,
    }


class ProbeFormatter:
    """``ipmpstat -p`` output, one event at a time.

    Same layout rules as ``render_lines``: a header before the first row and
    again every ``page_rows`` lines (none with ``parsable``), ``--`` for an
    empty value, ``-P`` escaping.

    Raises (from the constructor):
        FieldError: a bad field selection.
    """

    def __init__(self, fields: Sequence[str] | None = None, *, parsable: bool = False,
                 page_rows: int = PAGE_ROWS, start: float = 0.0) -> None:
        self.fields = strict_selection("p", fields, parsable)
        self.parsable = parsable
        self.page = page_rows if page_rows > 0 else PAGE_ROWS
        self.start = start
        self._printed = 0

    def lines(self, event: Mapping[str, object]) -> list[Line]:
        """The lines for ``event``: its row, after a header when one is due."""
        text = probe_row(event, self.start)
        values = [text[f.name] for f in self.fields]
        if self.parsable:
            row, cells = parsable_line(self.fields, values)
            return [Line(row, cells=cells)]
        out: list[Line] = []
        if self._printed % self.page == 0:
            out.append(Line(human_line(self.fields, [f.name for f in self.fields])[0], header=True))
            self._printed += 1
        self._printed += 1
        row, cells = human_line(self.fields, [v or EMPTY for v in values])
        out.append(Line(row, cells=cells))
        return out
