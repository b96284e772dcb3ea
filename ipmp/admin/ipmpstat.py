"""``ipmpstat`` output from in.mpathd's query snapshot: Solaris 11 layout, our model (§7.2).

Pure: ``render`` and ``render_json`` turn the daemon's ``Snapshot`` (the
records of ``ipmp.mpathd.snapshot``, which ``from_wire`` makes of what
``control.call(root, Request("query")).data`` carries) into text.  No I/O,
no name lookups, no clock.  ``ipmp.cli.ipmpstat`` does the rest.  The
rows of each mode, and what each column means on our model, are
``ipmp.admin.ipmpstat_rows``'s; the field tables, ``-o``/``-P`` and the
line layout are ``ipmp.admin.ofmt``'s.  Here: the selection of fields,
the header repeat, the JSON document, and the probe events of ``-p``:

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

Not reproduced: ``-n`` changes nothing, since we print addresses
numerically always (Solaris resolves names with ``getnameinfo`` without
``-n``); Solaris answers ``-o ""`` and more names than the table has with
``Not enough space`` (an artefact of its allocation), we treat the first as
"no valid output fields" and allow the second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ipmp.admin.ipmpstat_rows import mode_rows
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
from ipmp.mpathd.snapshot import Snapshot

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


# The layout names of ``ofmt`` are exported here too: the CLI and the tests
# know them from here.


def probing_enabled(snapshot: Snapshot) -> bool:
    """Whether any interface has probe-based failure detection (Solaris ``-p`` pre-check)."""
    return any(itf.probe not in ("", "disabled") for itf in snapshot.interfaces.values())


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
    rows = mode_rows(snapshot, mode)
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
    rows = mode_rows(snapshot, mode)
    doc = {"mode": MODE_NAMES[normalise_mode(mode)], "rows": [row.json() for row in rows]}
    return json.dumps(doc, indent=2)


# -- probe events (-p) -----------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


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
