"""The parsed form of an ifconfig invocation or a hostname-file line.

The parser produces these; the evaluator gives them meaning.  Words stay text
(host names are resolved by the evaluator, which knows the hosts file), and
every word keeps its position for error messages.

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipmp.errors import Position
from ipmp.model import Family


@dataclass(frozen=True)
class Action:
    """One command word with its argument.

    ``keyword`` is a word of ``keywords.KEYWORDS``, or ``"address"`` for a bare
    word that is not a keyword (Solaris: the first one sets the address, the
    second the point-to-point destination).  ``implicit`` marks the
    ``netmask + broadcast + up`` that a single-line hostname file gets.
    """

    keyword: str
    argument: str | None
    position: Position
    argument_position: Position | None = None
    implicit: bool = False


@dataclass(frozen=True)
class Command:
    """``ifconfig IF[:N] [inet|inet6] actions`` or ``ifconfig -aXX [inet|inet6] actions``.

    ``ifname`` is the name as written (``qfe0`` or ``qfe0:2``), None in the
    ``-a`` form.  ``all_letters`` holds the letters of ``-a...`` (``"au4"``).
    ``family`` is the explicit family word, None when none was given (which
    means inet for commands, and "both" for status output).
    """

    ifname: str | None
    family: Family | None
    actions: tuple[Action, ...]
    position: Position
    all_letters: str | None = None
