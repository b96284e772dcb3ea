"""ipmpstat's output fields and line layout: Solaris 11 ``ipmpstat`` on libinetutil ``ofmt``.

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

Pure: strings in, strings out.  No ``typing`` or ``dataclasses`` at run time
(``ipmpstat -i`` is run in loops by scripts): the records use the
``typing.NamedTuple`` syntax on ``collections.namedtuple``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ipmp.mpathd.snapshot import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "EMPTY",
    "FIELDS",
    "MAX_COLUMNS",
    "MODES",
    "MODE_NAMES",
    "MSG_NO_FIELDS",
    "MSG_PARSABLE_ALL",
    "MSG_PARSABLE_NONE",
    "PAGE_ROWS",
    "Cell",
    "Field",
    "FieldError",
    "Line",
    "Selection",
    "human_line",
    "normalise_mode",
    "parsable_line",
    "pick_fields",
    "select_fields",
    "strict_selection",
]


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

MODE_NAMES: Final = {"a": "address", "g": "group", "i": "interface", "p": "probe", "t": "target"}
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class FieldError(ValueError):
    """A fatal ``-o``/``-P`` problem; ``str()`` is the Solaris message."""


def normalise_mode(mode: str) -> str:
    """``"-g"``, ``"g"`` or ``"group"`` -> ``"g"``.

    Raises:
        ValueError: not one of the five modes.
    """
    word = mode[1:] if mode.startswith("-") else mode
    for letter, name in MODE_NAMES.items():
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
    return pick_fields(table, spec.split(","), parsable=parsable)


def pick_fields(table: Sequence[Field], names: Sequence[str], *, parsable: bool) -> Selection:
    """The fields of ``table`` that ``names`` name (case-insensitively), as ``ofmt_open`` matches them.

    Raises:
        FieldError: no valid name at all, or (``parsable``) any unknown name.
    """
    by_name = {_fold(field.name): field for field in table}
    picked: list[Field] = []
    unknown: list[str] = []
    for name in names:
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


def human_line(fields: Sequence[Field], values: Sequence[str]) -> tuple[str, tuple[Cell, ...]]:
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


def parsable_line(fields: Sequence[Field], values: Sequence[str]) -> tuple[str, tuple[Cell, ...]]:
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


def strict_selection(mode: str, fields: Sequence[str] | None, parsable: bool) -> tuple[Field, ...]:
    spec = None if fields is None else ",".join(fields)
    selection = select_fields(mode, spec, parsable=parsable)
    if selection.unknown:
        # render is strict; the CLI warns and passes only the known names.
        raise FieldError(_bad_fields(selection.unknown, parsable=True))
    return selection.fields
