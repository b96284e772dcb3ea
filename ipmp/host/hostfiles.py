"""The hostname files under an alternate root: hostname.<if> and hostname6.<if> to ifconfig commands.

Everything is read below a root directory (``-R DIR`` or ``IPMP_ROOT``,
default ``/``), so tests and the lab never touch the real ``/etc``.  This
module only reads files; the pure ``parse_*`` functions do the work and can
be fed text directly.  The hosts, netmasks and defaultrouter files, which
the commands' words are resolved with, are ``ipmp.host.lookups``'.

How a hostname file becomes ifconfig commands (spec §6.3, S10
``net_include.sh`` ``inet_process_hostname``/``inet6_process_hostname``):

* Lines are read as the Bourne shell ``read`` builtin without ``-r`` reads
  them: leading and trailing blanks are stripped, a backslash at the end of
  a line joins the next line, any other backslash is removed and keeps the
  next character literally.
* Each line is run as ``ifconfig <if> inet <line>`` (``inet6`` for
  ``hostname6.<if>``), split on blanks with no quote processing: ``group ""``
  in a file is a group literally named ``""``.  Each line is a command of
  its own: one that fails does not stop the next (``$* $ifcmds ||
  retval=$?``), so ``parse_hostname_commands`` gives a bad line back with
  its error instead of raising.
* IPv4: a file with a single non-blank line gets ``netmask + broadcast + up``
  appended (those actions are marked ``implicit``).  With several lines each
  is run as written.  Blank lines before the first command are ignored, but
  a blank line *after* the only command makes the file "multi-line", so the
  implicit words are not added (the script runs the pending line as soon as
  it reads the next one).  An empty file gives no commands: the interface is
  plumbed and left unconfigured.
* IPv6: every non-blank line is one command; nothing is appended (the boot
  loader runs ``ifconfig <if> inet6 up`` afterwards).

EXTENSION (not in Solaris, whose script passes a ``#`` line to ifconfig,
where it fails as a bad address): a line whose first non-blank character is
``#`` is a comment.  It is dropped entirely, so it does not count for the
single/multi-line rule, and it ends at its newline: a trailing backslash on
a comment line does not swallow the next line.  A ``#`` is only special where
a command line starts: not on a line continued from the previous one, not
after other words, and ``\\#`` keeps it a word.

Decisions on points the Solaris sources leave open [INF]:

* A last line without a newline is used.  The Bourne ``while read`` loop
  drops it (``read`` fails at end of file), which silently leaves a
  one-line file created with ``printf`` unconfigured; we do not copy that.
  The same holds for a backslash on the very last line: it is dropped.
* An escaped character's column is the column of its backslash.
* Words are not glob-expanded (the script's unquoted ``$ifcmds`` would
  expand ``*`` against the current directory, a latent Solaris bug).
* A carriage return is not a blank for ``read``, so CRLF files give words
  ending in ``\\r``, which ifconfig then rejects, as on Solaris.
* Files are decoded as UTF-8; undecodable bytes are kept with
  ``surrogateescape`` and are rejected later as bad names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ipmp.config.commands import Command
from ipmp.config.parse import parse_words
from ipmp.errors import ParseError, Position

# root_path lives in ipmp.host.altroot (commands that need nothing else import it from there).
from ipmp.host.altroot import root_path
from ipmp.model import Family

__all__ = [
    "IMPLICIT_WORDS",
    "HostnameCommand",
    "HostnameFile",
    "HostnameLine",
    "find_hostname_files",
    "hostname_lines",
    "parse_hostname_commands",
    "parse_hostname_text",
    "read_hostname_commands",
    "read_hostname_file",
    "root_path",
]

#: What a single-line IPv4 hostname file gets appended (spec §6.3).
IMPLICIT_WORDS = "netmask + broadcast + up"

#: Bourne ``read`` strips IFS white space: space and tab (newline ends the line).
_READ_BLANKS = " \t"



# --------------------------------------------------------------------------
# hostname.<if> / hostname6.<if>
# --------------------------------------------------------------------------


class HostnameFile(NamedTuple):
    """One boot file: the interface it configures, its family, its path."""

    ifname: str
    family: Family
    path: Path


_PREFIXES: tuple[tuple[Family, str], ...] = ((Family.INET, "hostname."), (Family.INET6, "hostname6."))


def _interface_part(name: str, prefix: str, family: Family) -> str | None:
    """The interface named by a file name, or None if the boot script skips it.

    Solaris (net-physical) globs ``/etc/hostname.*[0-9]`` and splits the
    names on ``.`` (and IFS blanks): the part after ``hostname`` is the
    interface only if nothing else follows it.
    """
    if not name.startswith(prefix):
        return None
    ifname = name[len(prefix) :]
    # The glob: at least one character, the last one a digit; this is what
    # leaves hostname.hme0.bak and editor backups (hostname.hme0~) alone.
    if not ifname or ifname[-1] not in "0123456789":
        return None
    # An extra dot (hostname.hme0.1) makes the script skip the name; so does
    # a blank, which the script's IFS split would also cut the name on [INF].
    if "." in ifname or any(c.isspace() for c in ifname):
        return None
    # The S10 script ignores hostname.xx0 "for some unknown historical
    # reason"; only the IPv4 list has that rule.
    if family is Family.INET and ifname == "xx0":
        return None
    return ifname


def find_hostname_files(root: Path) -> list[HostnameFile]:
    """Every ``etc/hostname.<if>`` and ``etc/hostname6.<if>`` the boot script would use.

    Returns:
        IPv4 files first, then IPv6 (the script plumbs and configures them in
        that order), each sorted by file name as the shell glob sorts them.
        Directories and other non-files are skipped.
    """
    etc = root / "etc"
    try:
        names = sorted(entry.name for entry in etc.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    found: list[HostnameFile] = []
    for family, prefix in _PREFIXES:
        for name in names:
            ifname = _interface_part(name, prefix, family)
            if ifname is None:
                continue
            path = etc / name
            if path.is_file():
                found.append(HostnameFile(ifname, family, path))
    return found


@dataclass(frozen=True, slots=True)
class HostnameLine:
    """One command line of a hostname file, after the shell's ``read``.

    ``line_map`` gives the physical ``(line, column)`` of every character of
    ``text``; ``implicit_from`` is the offset where the appended
    ``netmask + broadcast + up`` starts, or None.
    """

    text: str
    line_map: tuple[tuple[int, int], ...]
    implicit_from: int | None = None

    @property
    def line(self) -> int:
        return self.line_map[0][0] if self.line_map else 0


# NamedTuples, not dataclasses: a dataclass costs about a millisecond to
# create at import, and every ifconfig start imports this module.
class _Char(NamedTuple):
    char: str
    escaped: bool
    line: int
    col: int


class _Read(NamedTuple):
    """What one ``read`` returns: the value, and where each character came from."""

    chars: tuple[_Char, ...]

    @property
    def text(self) -> str:
        return "".join(c.char for c in self.chars)

    @property
    def end(self) -> tuple[int, int]:
        """The position just after the value's last character (for implicit words)."""
        last = self.chars[-1]
        return (last.line, last.col + (2 if last.escaped else 1))


def _physical_lines(data: str) -> list[str]:
    lines = data.split("\n")
    # A final newline ends the last line rather than starting an empty one.
    # Without one, the unterminated tail is still a line [INF, see docstring].
    if lines[-1] == "":
        lines.pop()
    return lines


def _is_comment(line: str) -> bool:
    return line.lstrip(_READ_BLANKS).startswith("#")


def _read_lines(data: str) -> Iterator[_Read]:
    """Emulate ``while read line`` (Bourne, no ``-r``) over ``data``, plus comments."""
    lines = _physical_lines(data)
    index = 0
    while index < len(lines):
        if _is_comment(lines[index]):
            index += 1  # EXTENSION: comment lines vanish, continuation and all
            continue
        chars: list[_Char] = []
        while True:
            line, lineno = lines[index], index + 1
            index += 1
            continued = False
            col = 0
            while col < len(line):
                char = line[col]
                if char != "\\":
                    chars.append(_Char(char, False, lineno, col + 1))
                    col += 1
                elif col + 1 < len(line):
                    # "\x" keeps x literally; the backslash goes.
                    chars.append(_Char(line[col + 1], True, lineno, col + 1))
                    col += 2
                else:
                    # Backslash-newline: the next physical line continues
                    # this one, with nothing in between.  At the very end
                    # of the file there is nothing to join; it is dropped.
                    continued = index < len(lines)
                    col += 1
            if not continued:
                break
        # read strips unescaped leading and trailing IFS blanks; escaped
        # ones stay in the value.
        start, stop = 0, len(chars)
        while start < stop and not chars[start].escaped and chars[start].char in _READ_BLANKS:
            start += 1
        while stop > start and not chars[stop - 1].escaped and chars[stop - 1].char in _READ_BLANKS:
            stop -= 1
        yield _Read(tuple(chars[start:stop]))


def _line(read: _Read, implicit: bool = False) -> HostnameLine:
    text = read.text
    line_map = tuple((c.line, c.col) for c in read.chars)
    if not implicit:
        return HostnameLine(text, line_map)
    suffix = " " + IMPLICIT_WORDS
    return HostnameLine(text + suffix, line_map + (read.end,) * len(suffix), len(text) + 1)


def hostname_lines(data: str, family: Family) -> tuple[HostnameLine, ...]:
    """The lines ifconfig runs for a hostname file's contents (spec §6.3).

    For INET this follows ``inet_process_hostname``: each line is run when
    the next one has been read, so a line is run "as given" exactly when
    another ``read`` succeeded after it, even a blank one.  Only the last
    line of a file in which nothing was run before gets the implicit words.
    """
    reads = list(_read_lines(data))
    if family is Family.INET6:
        # inet6_process_hostname: every non-empty line, nothing appended.
        return tuple(_line(r) for r in reads if r.text)
    result: list[HostnameLine] = []
    pending: _Read | None = None
    multiple = False
    for read in reads:
        if pending is not None and pending.text:  # [ -n "$ifcmds" ]
            result.append(_line(pending))
            multiple = True
        pending = read
    if pending is None or not pending.text:
        # Empty file, only blank lines, or a trailing blank line after the
        # last command (already run above, without implicit words).
        return tuple(result)
    result.append(_line(pending, implicit=not multiple))
    return tuple(result)


def parse_hostname_line(line: HostnameLine, *, ifname: str, family: Family, source: str = "") -> Command:
    """Parse one line from ``hostname_lines`` as ``ifconfig <ifname> <family> <line>``."""
    return parse_words(
        line.text,
        ifname=ifname,
        family=family,
        source=source,
        line_map=line.line_map,
        implicit_from=line.implicit_from,
    )


def parse_hostname_text(data: str, ifname: str, family: Family, source: str = "") -> tuple[Command, ...]:
    """Parse a hostname file's contents; raises on the first bad line."""
    return tuple(
        parse_hostname_line(line, ifname=ifname, family=family, source=source)
        for line in hostname_lines(data, family)
    )


class HostnameCommand(NamedTuple):
    """One command line of a hostname file: what it parses to, or why it does not.

    The boot runs every line as a command of its own (net_include.sh
    ``inet_process_hostname``: ``$* $ifcmds || retval=$?`` for each line),
    so a line that does not parse costs that line only.  ``position`` is
    where the line starts.
    """

    position: Position
    command: Command | None
    error: ParseError | None


def parse_hostname_commands(
    data: str, ifname: str, family: Family, source: str = ""
) -> tuple[HostnameCommand, ...]:
    """``parse_hostname_text``, line by line: a bad line is returned with its error, not raised."""
    found: list[HostnameCommand] = []
    for line in hostname_lines(data, family):
        start = line.line_map[0] if line.line_map else (1, 1)
        where = Position(source, start[0], start[1])
        try:
            command = parse_hostname_line(line, ifname=ifname, family=family, source=source)
        except ParseError as err:  # UnsupportedError too
            found.append(HostnameCommand(where, None, err))
        else:
            found.append(HostnameCommand(where, command, None))
    return tuple(found)


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "surrogateescape")


def read_hostname_commands(path: Path, ifname: str, family: Family) -> tuple[HostnameCommand, ...]:
    """Read a hostname file into one ``HostnameCommand`` per command line.

    Raises:
        OSError: the file cannot be read (its lines are then unknown).
    """
    return parse_hostname_commands(read_text(path), ifname, family, str(path))


def read_hostname_file(path: Path, ifname: str, family: Family) -> tuple[Command, ...]:
    """Read ``hostname.<if>`` (INET) or ``hostname6.<if>`` (INET6) into commands.

    Raises:
        ParseError: the first bad line, with ``file:line:col``.
        UnsupportedError: a Solaris keyword Linux cannot honour.
        OSError: the file cannot be read.
    """
    return parse_hostname_text(read_text(path), ifname, family, str(path))
