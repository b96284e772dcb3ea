"""A Solaris 11 configuration as the lab reads it: the ipadm script, the persistent file, what they make.

A Solaris 11 host is configured with ``ipadm`` (Oracle, "Configuring IPMP
Groups", https://docs.oracle.com/cd/E37838_01/html/E60991/gfbby.html), and
keeps the result in ``/etc/ipadm/ipadm.conf``.  A lab directory may hold
either or both:

* ``DIR/etc/ipadm/ipadm.conf`` (copied with the rest of ``etc``; the lab's
  ``ipmp-boot -R`` applies it, as at boot);
* a command script, ``DIR/ipadm.sh`` or the file given with ``--script``:
  one command per line, as ``examples/ipadm/*.sh`` are, made of the words
  of ``ipadm``, ``svccfg``, ``svcadm``, ``svcprop`` and ``ipmpstat``
  (``#`` comments and blank lines are skipped; a shell construct such as
  ``;``, ``|`` or ``&&`` is refused, since no shell runs the script).

The lab runs the script's commands itself in its host, with the real
``ipadm``; here they are only *planned*: the file's records (in the order
``ipmp-boot`` applies them, ``ipmp.config.ipadm_eval.db_steps``) and then the
script's changes are folded with the product's own evaluator
(``ipmp.config.ipadm_eval``) over a view holding the NICs they name, so
that the lab knows the NICs to create, the IPMP interfaces and their data
addresses, the test addresses and whether transitive probing is on
(``svccfg ... setprop config/transitive-probing=true`` then ``svcadm
refresh``, https://docs.oracle.com/cd/E37838_01/html/E60991/gldcc.html).

A script command that ``ipadm`` would refuse stops the plan with its line
and ``ipadm``'s own message; a record of the file that fails is left to
``ipmp-boot`` to report, as for a hostname file.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ipmp.config.ipadm_db import IpadmDb
from ipmp.config.ipadm_eval import db_steps, evaluate
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError, parse_argv
from ipmp.errors import IpmpError
from ipmp.host import ipadm_db, smf
from ipmp.lab.errors import LabError
from ipmp.model import Config, Environment, Interface

__all__ = ["SCRIPT_NAME", "ScriptLine", "Solaris11", "find_script", "fold", "parse_script", "read_solaris11"]

#: The script the lab looks for in DIR when ``--script`` is not given.
SCRIPT_NAME = "ipadm.sh"
#: The commands a script may hold, and whether each only reads.
_PROGRAMS = ("ipadm", "svccfg", "svcadm", "svcprop", "ipmpstat")
_READ_ONLY_IPADM = frozenset({"", "show-if", "show-addr", "show-ifprop"})
_SHELL_CHARS = frozenset("();<>|&")


@dataclass(frozen=True)
class ScriptLine:
    """One command of the script: its line number, its words (program first), whether it changes anything."""

    line: int
    words: tuple[str, ...]
    changes: bool

    @property
    def program(self) -> str:
        return self.words[0]

    @property
    def text(self) -> str:
        return shlex.join(self.words)


@dataclass(frozen=True)
class Solaris11:
    """What a Solaris 11 configuration makes: the view after it, and what the lab needs of it."""

    #: The NICs the file and the script name (``create-ip``), in order.
    nics: tuple[str, ...]
    #: The script's commands (empty when there is only the file).
    lines: tuple[ScriptLine, ...]
    #: Where the script was read ("" for none).
    script: str
    #: Transitive probing as the configuration leaves it (running value).
    transitive: bool
    #: Each NIC's first mention, for an error naming the file and line.
    origin: dict[str, str]


def find_script(source: Path, script: Path | None) -> Path | None:
    """The script to run: ``script`` when given, else ``source/ipadm.sh`` when it exists."""
    if script is not None:
        if not script.is_file():
            raise LabError(f"{script}: no such script")
        return script
    default = source / SCRIPT_NAME
    return default if default.is_file() else None


def parse_script(text: str, source: str) -> tuple[ScriptLine, ...]:
    """The script's commands; any line that is not one command of ours is refused with its position.

    Raises:
        LabError: ``FILE:LINE: message``.
    """
    out: list[ScriptLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            words = _words(raw)
        except ValueError as err:
            raise LabError(f"{source}:{number}: {err}") from None
        if not words:
            continue
        bad = [w for w in words if set(w) <= _SHELL_CHARS]
        if bad:
            raise LabError(f"{source}:{number}: {bad[0]!r}: one command per line, no shell constructs")
        program = words[0].rsplit("/", 1)[-1]
        if program not in _PROGRAMS:
            raise LabError(f"{source}:{number}: {words[0]}: not a command the lab runs "
                           f"({', '.join(_PROGRAMS)})")
        words[0] = program
        out.append(ScriptLine(number, tuple(words), _changes(words, source, number)))
    return tuple(out)


def _words(line: str) -> list[str]:
    """The line's words as sh splits them, with ``;``, ``|``, ``&&``, ``>`` ... as words of their own."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _changes(words: list[str], source: str, number: int) -> bool:
    if words[0] == "ipadm":
        try:
            command = parse_argv(words[1:])
        except IpadmError as err:
            raise LabError(f"{source}:{number}: {err.message}") from None
        return command.subcommand not in _READ_ONLY_IPADM
    return words[0] in ("svccfg", "svcadm")


def _created(lines: tuple[ScriptLine, ...]) -> list[str]:
    """The NICs a script plumbs (``create-ip``, ``create-if``), in order."""
    names: list[str] = []
    for ln in lines:
        if ln.program == "ipadm" and ln.changes:
            command = parse_argv(ln.words[1:])
            if command.subcommand in ("create-ip", "create-if") and command.operand not in names:
                names.append(command.operand)
    return names


def read_solaris11(source: Path, script: Path | None) -> tuple[Solaris11, IpadmDb] | None:
    """The Solaris 11 configuration under ``source`` (and ``script``), or None when there is none.

    Raises:
        LabError: an unreadable file or script, a line that is no command of ours.
    """
    try:
        db = ipadm_db.load(source)
    except IpmpError as err:
        raise LabError(str(err)) from None
    path = find_script(source, script)
    lines: tuple[ScriptLine, ...] = ()
    if path is not None:
        try:
            lines = parse_script(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as err:
            raise LabError(f"{path}: {getattr(err, 'strerror', None) or err}") from None
    if not db.interfaces and not lines:
        return None
    origin: dict[str, str] = {}
    for itf in db.interfaces:
        if not itf.ipmp:
            origin.setdefault(itf.name, f"{ipadm_db.db_path(source)}")
    for name in _created(lines):
        origin.setdefault(name, f"{path}")
    try:
        transitive = smf.read_property(source)
    except (OSError, UnicodeDecodeError, smf.SmfError):
        transitive = False
    return Solaris11(tuple(origin), lines, str(path or ""), transitive, origin), db


def fold(config: Config, s11: Solaris11, db: IpadmDb, env: Environment) -> tuple[Config, bool, list[str]]:
    """The view after the file's records and the script's changes; transitive probing; problems.

    ``config`` must already hold the NICs (``Solaris11.nics``).  A record of
    the file that fails is a problem (``ipmp-boot`` reports it); a script
    command that fails stops the plan.

    Raises:
        LabError: ``SCRIPT:LINE: ipadm: message``, or an svccfg/svcadm line
            this toolkit does not support.
    """
    config = _plumbable(config, s11.nics)
    problems: list[str] = []
    for step in db_steps(db):
        try:
            config = evaluate(config, step.command, env=env).config
        except IpadmError as err:
            problems.append(f"{step.position}: {err.message.removeprefix('ipadm: ')}")
    transitive = s11.transitive
    pending: bool | None = None
    for ln in s11.lines:
        where = f"{s11.script}:{ln.line}"
        if not ln.changes:
            continue
        if ln.program == "ipadm":
            command: IpadmCommand = parse_argv(ln.words[1:])
            try:
                config = evaluate(config, command, db=None, env=env).config
            except IpadmError as err:
                raise LabError(f"{where}: {err.message}") from None
        elif ln.program == "svccfg":
            if len(ln.words) < 5 or ln.words[1] != "-s" or ln.words[3] != "setprop" \
                    or not smf.is_ipmp_fmri(ln.words[2]):
                raise LabError(f"{where}: only 'svccfg -s svc:/network/ipmp setprop {smf.PROPERTY}=...'")
            try:
                pending = smf.parse_setprop(list(ln.words[4:]))
            except smf.SmfError as err:
                raise LabError(f"{where}: svccfg: {err}") from None
        else:  # svcadm: SMF takes the edited value over on refresh
            if ln.words[1:2] != ("refresh",) or len(ln.words) != 3 or not smf.is_ipmp_fmri(ln.words[2]):
                raise LabError(f"{where}: only 'svcadm refresh svc:/network/ipmp:default'")
            if pending is not None:
                transitive = pending
    return config, transitive, problems


def _plumbable(config: Config, nics: tuple[str, ...]) -> Config:
    """``config`` with a bare interface for each NIC it lacks (the lab creates them all)."""
    index = max((i.index for i in config.interfaces), default=0)
    for name in nics:
        if config.get(name) is None:
            index += 1
            config = config.with_interface(Interface(name, index=index))
    return config
