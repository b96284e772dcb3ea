"""``ipmpstat`` output from in.mpathd's query snapshot: Solaris 11 layout, our model (§7.2).

Pure: ``render`` and ``render_json`` turn the dict ``Machine.snapshot()``
returns (and ``control.call(root, Request("query")).data`` carries) into text.
No I/O, no name lookups, no clock.  ``ipmp.cli.ipmpstat`` does the rest.

Layout rules, all Solaris 11 ``ipmpstat`` / libinetutil ``ofmt`` (§7.2):

* Modes ``-a`` (addresses), ``-g`` (groups), ``-i`` (interfaces), ``-t``
  (probe targets); each has a fixed field table (name, width).  ``-p``
  (probe events) has a table too, but no snapshot rendering: it is a live
  stream, one line per event, laid out by ``ProbeFormatter``.
* Default fields: the table in order while the cumulative width stays within
  80 columns (``-p`` loses RTTDEV; every other mode shows all fields).
  ``-o all`` (any case) is every field; ``-o a,b`` picks and orders fields,
  names compared case-insensitively (ASCII, as ``strcasecmp``), empty names
  between commas skipped, repeats allowed.
* Human output: a header of field names, repeated every ``page_rows`` lines
  (terminal height, 24 when stdout is not a terminal; the count includes
  header lines, so a 24-line page is one header and 23 rows).  No rows, no
  header.  Each field but the last is left-justified to its width (the
  width includes the gap to the next column); a value that does not fit is
  printed with one space after it and the excess is taken back from the
  padding of the following fields; the last field is never padded.  An
  empty value prints as ``--``.
* Parsable output (``-P``, needs ``-o``, not ``all``): no header, values
  joined by ``:``, an empty value prints as nothing, and ``:`` and ``\\``
  inside a value are escaped with ``\\`` (an IPv6 ``fe80::1`` prints as
  ``fe80\\:\\:1``), except when only one field is selected.

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

# ``ipmpstat -i`` is run in loops by scripts, and ``typing`` (with
# ``contextlib`` and ``warnings``) was about a tenth of its start-up: type
# checkers see ``typing.NamedTuple`` (they treat any name ``TYPE_CHECKING``
# as true), the interpreter the class syntax below on
# ``collections.namedtuple``.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final, NamedTuple
else:
    from collections import namedtuple

    class _NamedTupleType(type):
        """``typing.NamedTuple``'s class syntax: the annotated names are the fields, in order.

        A field with a value has that default (only the last ones may);
        methods, properties and the docstring go on the namedtuple class.
        """

        def __new__(mcs, name, bases, namespace):
            if not bases:
                return super().__new__(mcs, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f in namespace for f in fields[: len(fields) - len(defaults)]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            cls = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            for key, value in namespace.items():
                if key not in fields and key not in ("__module__", "__qualname__", "__annotations__"):
                    setattr(cls, key, value)
            cls.__qualname__ = namespace["__qualname__"]
            return cls

    class NamedTuple(metaclass=_NamedTupleType):
        """The base the records name; they become ``collections.namedtuple`` classes."""

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
# syntax without importing ``typing``: see above).


class Field(NamedTuple):
    """One output field: its name (as in the header) and column width."""

    name: str
    width: int


#: Field tables, Solaris 11 ``ipmpstat.c`` order and widths (§7.2).
FIELDS: Final[Mapping[str, tuple[Field, ...]]] = {
    "a": (Field("ADDRESS", 26), Field("STATE", 7), Field("GROUP", 12), Field("INBOUND", 12),
          Field("OUTBOUND", 23)),
    "g": (Field("GROUP", 12), Field("GROUPNAME", 12), Field("STATE", 10), Field("FDT", 10),
          Field("INTERFACES", 30)),
    "i": (Field("INTERFACE", 12), Field("ACTIVE", 8), Field("GROUP", 12), Field("FLAGS", 10),
          Field("LINK", 10), Field("PROBE", 10), Field("STATE", 10)),
    "p": (Field("TIME", 10), Field("INTERFACE", 12), Field("PROBE", 7), Field("NETRTT", 10),
          Field("RTT", 10), Field("RTTAVG", 10), Field("TARGET", 20), Field("RTTDEV", 10)),
    "t": (Field("INTERFACE", 12), Field("MODE", 10), Field("TESTADDR", 20), Field("TARGETS", 38)),
}
MODES: Final = tuple(FIELDS)
#: The default field set stops before the field that would pass this width.
MAX_COLUMNS: Final = 80
#: Lines per page (header included) when the terminal height is unknown.
PAGE_ROWS: Final = 24
#: What an empty value prints as, in human output.
EMPTY: Final = "--"

#: ofmt_strerror texts (§7.2), without the ``ipmpstat: `` prefix.
MSG_NO_FIELDS: Final = "no valid output fields"
MSG_PARSABLE_NONE: Final = "output fields must be specified in parsable mode"
MSG_PARSABLE_ALL: Final = "output field `all' invalid in parsable mode"

_MODE_NAMES: Final = {"a": "address", "g": "group", "i": "interface", "p": "probe", "t": "target"}
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
#: FLAGS letter positions (§7.2): i s m b M d h.
_NFLAGS: Final = 7
_FLAG_INACTIVE, _FLAG_STANDBY, _FLAG_MCAST4, _FLAG_BCAST4, _FLAG_MCAST6 = range(5)


class FieldError(ValueError):
    """A fatal ``-o``/``-P`` problem; ``str()`` is the Solaris message."""


def normalise_mode(mode: str) -> str:
    """``"-g"``, ``"g"`` or ``"group"`` -> ``"g"``.

    Raises:
        ValueError: not one of the five modes.
    """
    word = mode[1:] if mode.startswith("-") else mode
    for letter, name in _MODE_NAMES.items():
        if word in (letter, name):
            return letter
    raise ValueError(f"unknown ipmpstat mode {mode!r}")


def _fold(name: str) -> str:
    """strcasecmp's folding: ASCII letters only (``\\u212a`` is no ``k``)."""
    return name.translate(_ASCII_LOWER)


# -- field selection (ofmt_open) ---------------------------------------------------


class Selection(NamedTuple):
    """The fields to print, and the names ``-o`` gave that match none."""

    fields: tuple[Field, ...]
    unknown: tuple[str, ...] = ()

    @property
    def warning(self) -> str | None:
        """The human-mode warning for ``unknown`` (printed as ``ipmpstat: warning: ...``)."""
        return _bad_fields(self.unknown, parsable=False) if self.unknown else None


def _bad_fields(names: Sequence[str], *, parsable: bool) -> str:
    # ofmt: a warning in human mode, an error in parsable mode; singular or plural.
    head = "unknown output field" if parsable else "ignoring unknown output field"
    plural = "s" if len(names) > 1 else ""
    return f"{head}{plural}:" + "".join(f" `{name}'" for name in names)


def select_fields(mode: str, spec: str | None, *, parsable: bool = False) -> Selection:
    """The fields ``-o spec`` selects (``spec`` None: no ``-o``).

    Raises:
        FieldError: ``-P`` without ``-o`` or with ``all``, no valid name at
            all, or (``-P`` only) any unknown name.
    """
    table = FIELDS[normalise_mode(mode)]
    if parsable and not spec:
        # Parsable output must name its fields: the default set may grow.
        raise FieldError(MSG_PARSABLE_NONE)
    if spec is not None and _fold(spec) == "all":
        if parsable:
            raise FieldError(MSG_PARSABLE_ALL)
        return Selection(table)
    if spec is None:
        chosen: list[Field] = []
        columns = 0
        for field in table:
            columns += field.width
            if columns > MAX_COLUMNS:
                break
            chosen.append(field)
        return Selection(tuple(chosen))
    by_name = {_fold(field.name): field for field in table}
    picked: list[Field] = []
    unknown: list[str] = []
    for name in spec.split(","):
        if not name:
            continue  # strtok: ",," and a trailing comma name nothing
        match = by_name.get(_fold(name))
        if match is None:
            unknown.append(name)
        else:
            picked.append(match)
    if not picked:
        raise FieldError(MSG_NO_FIELDS)
    if unknown and parsable:
        # A script must not silently get fewer columns than it asked for.
        raise FieldError(_bad_fields(unknown, parsable=True))
    return Selection(tuple(picked), tuple(unknown))


# -- the snapshot, read defensively -------------------------------------------------


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


class _Itf(NamedTuple):
    name: str
    group: str
    state: str
    link: str
    probe: str
    active: bool
    standby: bool
    inactive: bool
    failed: bool
    offline: bool
    probes: Mapping[str, Mapping[str, Any]]

    @property
    def usable(self) -> bool:
        """Could carry data now: the test behind the daemon's "degraded"."""
        return (self.state in ("ok", "unknown") and self.link != "down"
                and not self.failed and not self.offline)

    @property
    def carries_data(self) -> bool:
        return self.active and self.usable


def _interfaces(snapshot: Mapping[str, Any]) -> list[_Itf]:
    """Tracked interfaces: named groups by name, members by name, then anonymous ones."""
    out: list[_Itf] = []
    for name, raw in _map(snapshot.get("interfaces")).items():
        doc = _map(raw)
        probes = {family: _map(info) for family, info in _map(doc.get("probes")).items()}
        out.append(_Itf(
            name=str(name), group=_text(doc.get("group")), state=_text(doc.get("state")),
            link=_text(doc.get("link")), probe=_text(doc.get("probe")),
            active=doc.get("active") is True, standby=doc.get("standby") is True,
            inactive=doc.get("inactive") is True, failed=doc.get("failed") is True,
            offline=doc.get("offline") is True, probes=probes,
        ))
    out.sort(key=lambda itf: (itf.group == "", itf.group, itf.name))
    return out


class _Addr(NamedTuple):
    address: str
    family: str
    holder: str
    home: str
    group: str
    up: bool


def _addresses(snapshot: Mapping[str, Any]) -> list[_Addr]:
    raw = snapshot.get("addresses")
    out: list[_Addr] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        doc = _map(item)
        holder = _text(doc.get("interface")).partition(":")[0]
        out.append(_Addr(
            address=_text(doc.get("address")).partition("/")[0], family=_text(doc.get("family")),
            holder=holder, home=_text(doc.get("home")) or holder, group=_text(doc.get("group")),
            up=doc.get("up") is True,
        ))
    # Stable: within one home, the daemon's (logical unit) order.
    out.sort(key=lambda a: (a.group == "", a.group, a.home))
    return out


def _group_states(snapshot: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(name): _map(doc) for name, doc in _map(snapshot.get("groups")).items() if name}


def _nominees(members: Sequence[_Itf], families: set[str]) -> dict[str, str]:
    """Family word -> the member that would receive its broadcast/multicast (module doc)."""
    ranked = [m for m in members if m.usable and not m.inactive] + \
             [m for m in members if m.usable and m.inactive]
    if not ranked:
        return {}
    return {family: ranked[0].name for family in families}


def _flags(itf: _Itf, nominees: Mapping[str, str]) -> str:
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


def _group_rows(snapshot: Mapping[str, Any]) -> list[_GroupRow]:
    interfaces = _interfaces(snapshot)
    rows: list[_GroupRow] = []
    for name, doc in sorted(_group_states(snapshot).items()):
        members = [itf for itf in interfaces if itf.group == name]
        fdt = doc.get("fdt_ms")
        probing = any(itf.probe not in ("", "disabled") for itf in members)
        rows.append(_GroupRow(
            name=name, state=_text(doc.get("state")),
            fdt_ms=fdt if isinstance(fdt, int) and not isinstance(fdt, bool) and probing else None,
            active=tuple(m.name for m in members if m.carries_data),
            inactive=tuple(m.name for m in members if m.usable and not m.carries_data),
            unusable=tuple(m.name for m in members if not m.usable),
        ))
    return rows


def _interface_rows(snapshot: Mapping[str, Any]) -> list[_InterfaceRow]:
    interfaces = _interfaces(snapshot)
    families: dict[str, set[str]] = {}
    for itf in interfaces:
        families.setdefault(itf.group, set()).update(itf.probes)
    for addr in _addresses(snapshot):
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


def _address_rows(snapshot: Mapping[str, Any]) -> list[_AddressRow]:
    interfaces = {itf.name: itf for itf in _interfaces(snapshot)}
    groups = _group_states(snapshot)
    rows: list[_AddressRow] = []
    for addr in _addresses(snapshot):
        holder = interfaces.get(addr.holder)
        group_failed = _text(groups.get(addr.group, {}).get("state")) == "failed"
        up = addr.up and not group_failed and (holder is None or holder.usable)
        nic = addr.holder if up else ""
        rows.append(_AddressRow(address=addr.address, family=addr.family, up=up, group=addr.group,
                                inbound=nic, outbound=(nic,) if nic else ()))
    return rows


def _target_rows(snapshot: Mapping[str, Any]) -> list[_TargetRow]:
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
                rows.append(_TargetRow(itf.name, family, _text(info.get("mode")),
                                       _text(info.get("test_address")).partition("/")[0],
                                       tuple(_strings(info.get("targets")))))
    return rows


def _rows(snapshot: Mapping[str, Any], mode: str) -> Sequence[_Row]:
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


def probing_enabled(snapshot: Mapping[str, Any]) -> bool:
    """Whether any interface has probe-based failure detection (Solaris ``-p`` pre-check)."""
    return any(itf.probe not in ("", "disabled") for itf in _interfaces(snapshot))


# -- text layout (ofmt_print) -------------------------------------------------------


class Cell(NamedTuple):
    """Where one field's value sits in a line: ``line.text[start:end] == value``."""

    field: str
    value: str
    start: int
    end: int


class Line(NamedTuple):
    """One output line, without its newline; ``cells`` is empty for a header."""

    text: str
    header: bool = False
    cells: tuple[Cell, ...] = ()


def _human(fields: Sequence[Field], values: Sequence[str]) -> tuple[str, tuple[Cell, ...]]:
    out: list[str] = []
    cells: list[Cell] = []
    pos = 0
    overflow = 0
    for i, (field, value) in enumerate(zip(fields, values, strict=True)):
        if i == len(fields) - 1:
            piece = value  # the last field is never padded
        elif len(value) + overflow >= field.width:
            # Too wide (with what earlier fields already overran): one space,
            # and the following fields give back the excess from their padding.
            overflow += len(value) - field.width + 1
            piece = value + " "
        else:
            width = field.width
            if overflow:
                give_back = min(overflow, width - len(value))
                overflow -= give_back
                width -= give_back
            piece = value.ljust(width)
        cells.append(Cell(field.name, value, pos, pos + len(value)))
        out.append(piece)
        pos += len(piece)
    return "".join(out), tuple(cells)


def _parsable(fields: Sequence[Field], values: Sequence[str]) -> tuple[str, tuple[Cell, ...]]:
    escape = len(fields) > 1  # a lone field is printed as it is
    cells: list[Cell] = []
    pieces: list[str] = []
    pos = 0
    for field, value in zip(fields, values, strict=True):
        piece = value.replace("\\", "\\\\").replace(":", "\\:") if escape else value
        if pieces:
            pos += 1  # the ':' separator
        cells.append(Cell(field.name, piece, pos, pos + len(piece)))
        pieces.append(piece)
        pos += len(piece)
    return ":".join(pieces), tuple(cells)


def _selection(mode: str, fields: Sequence[str] | None, parsable: bool) -> tuple[Field, ...]:
    spec = None if fields is None else ",".join(fields)
    selection = select_fields(mode, spec, parsable=parsable)
    if selection.unknown:
        # render is strict; the CLI warns and passes only the known names.
        raise FieldError(_bad_fields(selection.unknown, parsable=True))
    return selection.fields


def render_lines(
    snapshot: Mapping[str, Any],
    mode: str,
    *,
    fields: Sequence[str] | None = None,
    parsable: bool = False,
    numeric: bool = False,
    page_rows: int = PAGE_ROWS,
) -> list[Line]:
    """``render`` with the position of every value, for colouring."""
    del numeric  # addresses are always numeric (module doc)
    chosen = _selection(mode, fields, parsable)
    rows = _rows(snapshot, mode)
    page = page_rows if page_rows > 0 else PAGE_ROWS
    header = Line(_human(chosen, [f.name for f in chosen])[0], header=True)
    lines: list[Line] = []
    printed = 0  # ofmt's row counter: header lines count too
    for row in rows:
        text = row.text()
        values = [text[f.name] for f in chosen]
        if parsable:
            text_line, cells = _parsable(chosen, values)
            lines.append(Line(text_line, cells=cells))
            continue
        if printed % page == 0:
            lines.append(header)
            printed += 1
        printed += 1
        text_line, cells = _human(chosen, [v or EMPTY for v in values])
        lines.append(Line(text_line, cells=cells))
    return lines


def render(
    snapshot: Mapping[str, Any],
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


def render_json(snapshot: Mapping[str, Any], mode: str) -> str:
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
    doc = {"mode": _MODE_NAMES[normalise_mode(mode)], "rows": [row.json() for row in rows]}
    return json.dumps(doc, indent=2)


# -- probe events (-p) -----------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ms_text(value: object) -> str:
    number = _number(value)
    return "" if number is None else f"{number:.2f}ms"


def _probe_time(event: Mapping[str, Any], start: float) -> float | None:
    sent = _number(event.get("sent"))
    return None if sent is None else sent - start


def probe_row(event: Mapping[str, Any], start: float) -> dict[str, str]:
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


def probe_json(event: Mapping[str, Any], start: float) -> dict[str, object]:
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
        self.fields = _selection("p", fields, parsable)
        self.parsable = parsable
        self.page = page_rows if page_rows > 0 else PAGE_ROWS
        self.start = start
        self._printed = 0

    def lines(self, event: Mapping[str, Any]) -> list[Line]:
        """The lines for ``event``: its row, after a header when one is due."""
        text = probe_row(event, self.start)
        values = [text[f.name] for f in self.fields]
        if self.parsable:
            row, cells = _parsable(self.fields, values)
            return [Line(row, cells=cells)]
        out: list[Line] = []
        if self._printed % self.page == 0:
            out.append(Line(_human(self.fields, [f.name for f in self.fields])[0], header=True))
            self._printed += 1
        self._printed += 1
        row, cells = _human(self.fields, [v or EMPTY for v in values])
        out.append(Line(row, cells=cells))
        return out
