"""``ipadm show-if``, ``show-addr``, ``show-ifprop`` and the bare ``ipadm`` listing.

The tables are made from the Solaris view of the host (a ``Config``, the
same one ``ifconfig -a`` prints) and the persistent configuration (an
``IpadmDb``, ``/etc/ipadm/ipadm.conf``): rows of strings
(``ipmp.admin.ipadm_rows``, which also says what the model maps to), laid
out by the ``ofmt`` functions ``ipmpstat`` uses (``ipmp.admin.ofmt``: a
value as wide as its column pushes the rest of the line right, later
padding absorbs it, the last column is unpadded, an empty value prints
``--``; parsable output joins the values with ``:`` and escapes ``:`` and
``\\`` when more than one field is printed).

Field names and widths are those of the Solaris 11 ``ipadm.c``
(``show_if_fields``, ``show_addr_fields``, ``intfprop_fields``); the
default field sets are its ``def_fields_str`` (``show-if``:
IFNAME,CLASS,STATE,ACTIVE,OVER; ``show-addr``: ADDROBJ,TYPE,STATE,ADDR)
and, for ``show-ifprop``, every field (Oracle's examples show POSSIBLE).
The bare listing of Solaris 11.3 and 11.4 (ipadm(8),
https://docs.oracle.com/cd/E88353_01/html/E72487/ipadm-8.html) has NAME,
CLASS/TYPE, STATE, UNDER and ADDR.

``read_host`` is the only function here that does I/O: the read path of
``ifconfig -a`` (``ipmp.kernel.read`` without pyroute2, the state store
under its shared lock, ``ipmp.linux.view.merge``), and the persistent file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ipmp.admin.ipadm_rows import addr_rows, if_rows, ifprop_rows, listing_rows
from ipmp.admin.ofmt import (
    EMPTY,
    MSG_PARSABLE_ALL,
    MSG_PARSABLE_NONE,
    Field,
    FieldError,
    Selection,
    human_line,
    parsable_line,
    pick_fields,
)
from ipmp.config.ipadm_options import PROG
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError
from ipmp.host.ifmap import usable_entries
from ipmp.host.ipadm_db import load
from ipmp.host.state import Store
from ipmp.kernel.read import read_state
from ipmp.linux.view import merge

if TYPE_CHECKING:
    from ipmp.config.ipadm_db import IpadmDb
    from ipmp.model import Config

__all__ = [
    "ADDR_FIELDS",
    "IFPROP_FIELDS",
    "IF_FIELDS",
    "LISTING_FIELDS",
    "Output",
    "read_host",
    "render_table",
    "select",
    "show",
]

#: Solaris 11 ipadm.c ``show_if_fields``: (name, width).
IF_FIELDS = (Field("IFNAME", 11), Field("CLASS", 9), Field("STATE", 9), Field("ACTIVE", 7),
             Field("CURRENT", 14), Field("PERSISTENT", 11), Field("OVER", 44))
#: Solaris 11 ipadm.c ``show_addr_fields`` (without the DHCP lease fields of ``-d``).
ADDR_FIELDS = (Field("ADDROBJ", 18), Field("TYPE", 9), Field("STATE", 13), Field("CURRENT", 8),
               Field("PERSISTENT", 11), Field("ADDR", 46))
#: Solaris 11 ipadm.c ``intfprop_fields``.
IFPROP_FIELDS = (Field("IFNAME", 12), Field("PROPERTY", 16), Field("PROTO", 6), Field("PERM", 5),
                 Field("CURRENT", 11), Field("PERSISTENT", 11), Field("DEFAULT", 11),
                 Field("POSSIBLE", 16))
#: The bare ``ipadm`` listing of Solaris 11.3/11.4 (ipadm(8) example): not
#: selectable, no parsable form.
LISTING_FIELDS = (Field("NAME", 18), Field("CLASS/TYPE", 11), Field("STATE", 13), Field("UNDER", 11),
                  Field("ADDR", 46))

#: ``def_fields_str`` of ``do_show_if`` and ``do_show_addr``.
_IF_DEFAULT = ("ifname", "class", "state", "active", "over")
_ADDR_DEFAULT = ("addrobj", "type", "state", "addr")


class Output(NamedTuple):
    """What a show printed: stdout lines, stderr lines, the exit status."""

    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    status: int = 0


# -- field selection (ofmt_open, as ipadm_ofmt_check reports it) ---------------------------


def select(table: Sequence[Field], spec: Sequence[str] | None, default: Sequence[str] | None,
           parsable: bool) -> Selection:
    """The fields ``-o`` names (``default`` when none; None: every field).

    Raises:
        FieldError: what ``ipadm_ofmt_check`` makes fatal: any error in
            parsable mode, no valid field at all.
    """
    names = spec if spec is not None else default
    if names is None:
        if parsable:
            raise FieldError(MSG_PARSABLE_NONE)
        return Selection(tuple(table))
    if [n.lower() for n in names] == ["all"]:
        if parsable:
            raise FieldError(MSG_PARSABLE_ALL)
        return Selection(tuple(table))
    return pick_fields(table, names, parsable=parsable)


def render_table(fields: Sequence[Field], rows: Sequence[Mapping[str, str]], parsable: bool) -> list[str]:
    """The lines of a table: a header and the rows, or the parsable rows."""
    lines: list[str] = []
    if not parsable and rows:
        lines.append(human_line(fields, [f.name for f in fields])[0])
    for row in rows:
        values = [row.get(f.name, "") for f in fields]
        if parsable:
            lines.append(parsable_line(fields, values)[0])
        else:
            lines.append(human_line(fields, [v or EMPTY for v in values])[0])
    return lines


# -- one show command ---------------------------------------------------------------------------


def show(config: Config, db: IpadmDb, command: IpadmCommand) -> Output:
    """The output of a ``show-*`` command, or of the bare ``ipadm``, on this view of the host.

    Raises:
        IpadmError: the errors ``ipadm.c`` dies with (fields, operands).
    """
    if command.subcommand == "":
        return Output(tuple(render_table(LISTING_FIELDS, listing_rows(config, db), False)))
    plans: Mapping[str, tuple[Sequence[Field], Sequence[str] | None]] = {
        "show-if": (IF_FIELDS, _IF_DEFAULT),
        "show-addr": (ADDR_FIELDS, _ADDR_DEFAULT),
        "show-ifprop": (IFPROP_FIELDS, None),
    }
    if command.subcommand not in plans:
        raise ValueError(f"not a show subcommand: {command.subcommand!r}")
    table, default = plans[command.subcommand]
    try:
        selection = select(table, command.fields, default, command.parsable)
    except FieldError as err:
        raise IpadmError(f"{PROG}: {err}") from None
    stderr = [f"{PROG}: warning: {selection.warning}"] if selection.warning else []
    status = 0
    makers: Mapping[str, Callable[[], list[dict[str, str]]]] = {
        "show-if": lambda: if_rows(config, db, command.operand),
        "show-addr": lambda: addr_rows(config, db, command.operand),
    }
    if command.subcommand == "show-ifprop":
        rows, warnings = ifprop_rows(config, db, command)
        stderr.extend(warnings)
        status = 1 if warnings else 0
    else:
        rows = makers[command.subcommand]()
    return Output(tuple(render_table(selection.fields, rows, command.parsable)), tuple(stderr), status)


# -- the host -----------------------------------------------------------------------------------


def read_host(root: str) -> tuple[Config, IpadmDb]:
    """The host as ``ifconfig -a`` reads it, and the persistent configuration.

    The kernel and the state store are read under the store's shared lock,
    as ``ipmp.admin.status`` does, so that a read never sees a change half
    applied; no pyroute2, no event loop (the read path: tests/unit/test_startup.py).
    """
    store = Store(root)
    with store.locked(exclusive=False):
        kernel, _names = read_state((), usable_entries(root))
        stored = store.load()
    return merge(kernel, stored.interfaces), load(root)
