"""``ipmpstat``: IPMP status from in.mpathd, as Solaris 11 shows it (§7.2).

Usage, messages and exit status are Solaris 11's ``ipmpstat``::

    ipmpstat [-n] [-o field[,...] [-P]] -a|-g|-i|-p|-t

Exactly one mode: ``-a`` data addresses, ``-g`` groups, ``-i`` interfaces,
``-t`` probe targets, ``-p`` probe events.  ``-o`` selects and orders
fields (``all`` for every one), ``-P`` prints them machine-parsable, ``-n``
asks for numeric addresses.  What each column means in our
address-migration model is in ``ipmp.admin.ipmpstat``.  Exit status 0, or 1 with a
message on stderr; anyone may run it (queries are open, §2.11).

Option handling follows Solaris (``getopt`` with ``nPo:agipt``, in order):
a second mode letter is fatal at once (``only one output format may be
specified``); a bad option prints the libc diagnostic and the usage text;
an operand or no mode prints the usage text.  Then ``-o``/``-P`` are
checked (an unknown field name is a warning, fatal with ``-P``), and only
then is the daemon asked: ``cannot contact in.mpathd(1M) -- is IPMP in
use?`` when it does not answer.

Output is plain text, identical whether or not stdout is a terminal, except
that on a terminal the state words of STATE, LINK and PROBE are coloured
(ok/up green, degraded/offline yellow, failed/down red; ``NO_COLOR``
honoured).  Like Solaris, the header repeats every terminal-height lines,
every 24 lines when stdout is not a terminal.

``-p`` checks what Solaris checks (fields, daemon, ``probe-based failure
detection is disabled``), then subscribes to the daemon's ``probes`` stream
and prints one line per probe acknowledged or lost, flushed at once, until
interrupted (Ctrl-C: exit status 130, as a Solaris ipmpstat killed by
SIGINT).  The header repeats as for the other modes.

Differences from Solaris:

* ``-p`` needs no privilege (Solaris: ``insufficient privileges for -p``):
  the stream is open to everyone, as queries are.  When the daemon goes
  away (a SIGHUP restart) ipmpstat reconnects for RECONNECT_TIMEOUT
  seconds before it gives up with ``cannot contact in.mpathd(1M) -- is
  IPMP in use?``; when the daemon dropped it for reading too slowly it
  warns (``warning: probe events were lost``) and reconnects.
* ``-n`` has no effect: addresses are always printed numerically.

Extensions: ``--json`` (anywhere among the options; not with ``-o`` or
``-P``) prints one JSON object (``ipmp.admin.ipmpstat.render_json``), or with
``-p`` one compact JSON object per line and event
(``ipmp.admin.ipmpstat.probe_json``); ``--version`` (alone); ``-R DIR`` for an
alternate root (default ``$IPMP_ROOT``, else ``/``), as every ipmp command
has.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ipmp import __version__
from ipmp.admin.ipmpstat import PAGE_ROWS, FieldError, ProbeFormatter, select_fields
from ipmp.cli.getopt import getopt
from ipmp.mpathd.snapshot import SNAPSHOT_VERSION, Snapshot, from_wire

# Scripts call ``ipmpstat -i`` in loops: this path loads no ``typing``,
# ``pathlib``, ``contextlib`` or ``dataclasses`` at run time (issue 15,
# point 7; tests/unit/test_startup.py).  Type checkers treat any name
# ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import TextIO

    from ipmp.admin.ipmpstat import Line
    from ipmp.mpathd.control import Reply

PROG = "ipmpstat"
#: Solaris ``ipmpstat.c`` getopt string (less the test-only ``-L``), plus our ``-R``.
OPTSTRING = "nPo:agiptR:"
MODE_LETTERS = ("a", "g", "i", "p", "t")
JSON_OPTION = "--json"
#: Every option the command accepts (the man page must document each).
OPTIONS = (*(f"-{c}" for c in OPTSTRING if c != ":"), JSON_OPTION, "--version")

#: Solaris usage text, verbatim (tabs included).
USAGE = (
    "usage: ipmpstat [-n] [-o <field> [-P]] -a|-g|-i|-p|-t\n"
    "\n"
    "  output modes:\t -a  display IPMP data address information\n"
    "\t\t -g  display IPMP group information\n"
    "\t\t -i  display IPMP-related IP interface information\n"
    "\t\t -p  display IPMP probe information\n"
    "\t\t -t  display IPMP target information\n"
    "\n"
    "       options:\t -n  display IP addresses numerically\n"
    "\t\t -o  display only the specified fields, in order\n"
    "\t\t -P  display using parsable output mode\n"
)
MSG_ONE_FORMAT = "only one output format may be specified"
MSG_NO_DAEMON = "cannot contact in.mpathd(1M) -- is IPMP in use?"
#: Solaris ``die_ipmperr(err, "cannot snapshot IPMP state")``: the IPMP error text follows.
MSG_SNAPSHOT = "cannot snapshot IPMP state: {}"
MSG_PROBING_DISABLED = "probe-based failure detection is disabled"
MSG_SUBSCRIBE = "cannot subscribe to probe events: {}"
MSG_EVENTS_LOST = "warning: probe events were lost (output too slow); reconnecting"
#: -p: how long to keep trying to reconnect when the daemon went away (s).
RECONNECT_TIMEOUT = 10.0
RECONNECT_INTERVAL = 0.2
MSG_JSON_CONFLICT = "--json cannot be combined with -o or -P"

#: Colours for the state words, by field; the text itself never changes.
COLOURS: dict[str, dict[str, str]] = {
    field: {"ok": "green", "up": "green", "degraded": "yellow", "offline": "yellow",
            "failed": "red", "down": "red"}
    for field in ("STATE", "LINK", "PROBE")
}


class _Die(Exception):
    """``ipmpstat: <message>`` on stderr, exit 1 (Solaris ``die``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Usage(Exception):
    """Optional diagnostic line, then the usage text; exit 1."""

    def __init__(self, diagnostic: str = "") -> None:
        super().__init__(diagnostic)
        self.diagnostic = diagnostic


def _getopt(args: Sequence[str]) -> Iterator[tuple[str, str]]:
    """POSIX getopt over OPTSTRING, plus ``--json``: (letter, argument) pairs.

    A bad option yields ("?", Solaris libc diagnostic) and ends the scan; the
    first operand ends it too, yielding ("", operand) so that the caller can
    refuse it (ipmpstat takes none).
    """
    return getopt(args, OPTSTRING, PROG, long_flags=frozenset({JSON_OPTION}), operands=True)


def _query(root: str) -> Snapshot:
    """The daemon's snapshot (Solaris: ping in.mpathd, then take an MI_QUERY snapshot)."""
    from ipmp.mpathd import control

    try:
        reply = control.call(root, control.Request("query"))
    except control.NotRunning:
        raise _Die(MSG_NO_DAEMON) from None
    except (control.SendFailed, control.ReadFailed) as exc:
        raise _Die(MSG_SNAPSHOT.format(_lost(exc))) from None
    if not reply.ok:
        raise _Die(MSG_SNAPSHOT.format(_reason(reply)))
    version = reply.data.get("v")
    if type(version) is not int or version != SNAPSHOT_VERSION:  # the layout this ipmpstat reads
        raise _Die(MSG_SNAPSHOT.format(control.errmsg(control.IPMP_EPROTO)))
    return from_wire(reply.data)


def _clock() -> float:
    """CLOCK_MONOTONIC, the clock of the daemon's ``sent`` times (system-wide)."""
    return time.monotonic()


def _reason(reply: Reply) -> str:
    """The text of an error reply, for ``_query`` and ``-p``."""
    from ipmp.mpathd import control

    if reply.mpathd_error == control.MPATHD_SYS_ERROR and reply.sys_error:
        return os.strerror(reply.sys_error)
    return control.errmsg(reply.mpathd_error)


def _lost(exc: OSError) -> str:
    """The text of an exchange that broke off: the errno's, else libipmp's IPMP_EPROTO."""
    from ipmp.mpathd import control

    return exc.strerror if exc.errno and exc.strerror else control.errmsg(control.IPMP_EPROTO)


def _probe_stream(root: str, formatter: ProbeFormatter | None, out: TextIO, err: TextIO,
                  *, start: float) -> int:
    """``-p``: print the daemon's probe events until interrupted (``formatter`` None: ``--json``).

    ``start``: the monotonic time TIME counts from.  Returns only through an
    exception (``_Die``, KeyboardInterrupt, BrokenPipeError).
    """
    from ipmp.admin.ipmpstat import probe_json
    from ipmp.mpathd import control

    lost_at: float | None = None  # when the stream ended, while trying to get it back
    while True:
        try:
            stream = control.subscribe(root, "probes")
        except control.NotRunning:
            if lost_at is None or time.monotonic() - lost_at > RECONNECT_TIMEOUT:
                raise _Die(MSG_NO_DAEMON) from None
            time.sleep(RECONNECT_INTERVAL)
            continue
        except (control.SendFailed, control.ReadFailed) as exc:
            raise _Die(MSG_SUBSCRIBE.format(_lost(exc))) from None
        with stream:
            if not stream.reply.ok:
                raise _Die(MSG_SUBSCRIBE.format(_reason(stream.reply)))
            lost_at = None
            try:
                for event in stream:
                    kind = event.get("event")
                    if kind == "overflow":
                        print(f"{PROG}: {MSG_EVENTS_LOST}", file=err)
                        break
                    if kind != "probe":
                        continue
                    if formatter is None:
                        out.write(json.dumps(probe_json(event, start), separators=(",", ":")) + "\n")
                    else:
                        out.write("".join(line.text + "\n" for line in formatter.lines(event)))
                    out.flush()
            except control.ReadFailed:
                pass  # a broken stream is a lost one
        lost_at = time.monotonic()


def _page_rows(out: TextIO) -> int:
    """Terminal height of stdout, else 24 (ofmt: ``TIOCGWINSZ`` failed or gave 0)."""
    try:
        rows = os.get_terminal_size(out.fileno()).lines
    except (AttributeError, ValueError, OSError):
        return PAGE_ROWS
    return rows if rows > 0 else PAGE_ROWS


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def emit(lines: Sequence[Line], out: TextIO, *, colour: bool) -> None:
    """Write the lines; with ``colour``, through rich with the state words styled."""
    if not colour:
        out.write("".join(line.text + "\n" for line in lines))
        return
    from rich.console import Console
    from rich.text import Text

    # soft_wrap: never wrap or crop; a Text is never parsed for markup.
    console = Console(file=out, highlight=False, soft_wrap=True, emoji=False)
    for line in lines:
        text = Text(line.text)
        for cell in line.cells:
            style = COLOURS.get(cell.field, {}).get(cell.value)
            if style:
                text.stylize(style, cell.start, cell.end)
        console.print(text)


def _run(args: Sequence[str], out: TextIO, err: TextIO) -> int:
    from ipmp.admin import ipmpstat
    from ipmp.host.altroot import root_dir

    mode = ""
    spec: str | None = None
    parsable = False
    as_json = False
    root_arg: str | None = None
    for letter, value in _getopt(args):
        # Solaris checks for a second mode before anything else about the option.
        if mode and letter in MODE_LETTERS:
            raise _Die(MSG_ONE_FORMAT)
        if letter == "?":
            raise _Usage(value)
        if letter == "":
            raise _Usage()  # ipmpstat takes no operands
        if letter in MODE_LETTERS:
            mode = letter
        elif letter == "o":
            spec = value
        elif letter == "P":
            parsable = True
        elif letter == "R":
            root_arg = value
        elif letter == JSON_OPTION:
            as_json = True
        # -n: addresses are always numeric.
    if not mode:
        raise _Usage()
    if as_json and (spec is not None or parsable):
        raise _Die(MSG_JSON_CONFLICT)
    names: list[str] | None = None
    if not as_json:
        try:
            selection = select_fields(mode, spec, parsable=parsable)
        except FieldError as exc:
            raise _Die(str(exc)) from None
        if selection.warning:
            print(f"{PROG}: warning: {selection.warning}", file=err)
        names = [field.name for field in selection.fields]
    root = root_dir(root_arg)
    snapshot = _query(root)
    if mode == "p":
        if not ipmpstat.probing_enabled(snapshot):
            raise _Die(MSG_PROBING_DISABLED)
        start = _clock()  # TIME 0.00s (Solaris: when ipmpstat started waiting)
        formatter = None if as_json else ipmpstat.ProbeFormatter(
            names, parsable=parsable, page_rows=_page_rows(out), start=start)
        return _probe_stream(root, formatter, out, err, start=start)
    if as_json:
        out.write(ipmpstat.render_json(snapshot, mode) + "\n")
        return 0
    lines = ipmpstat.render_lines(snapshot, mode, fields=names, parsable=parsable,
                                  page_rows=_page_rows(out))
    emit(lines, out, colour=not parsable and _isatty(out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ipmpstat``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        print(f"{PROG} (ipmp) {__version__}")
        return 0
    try:
        status = _run(args, sys.stdout, sys.stderr)
        sys.stdout.flush()
        return status
    except _Die as failure:
        print(f"{PROG}: {failure.message}", file=sys.stderr)
        return 1
    except _Usage as usage:
        if usage.diagnostic:
            print(usage.diagnostic, file=sys.stderr)
        sys.stderr.write(USAGE)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `ipmpstat -i | head -1`: the reader left.  Keep Python from
        # complaining again when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
