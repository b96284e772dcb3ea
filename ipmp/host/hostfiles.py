"""The boot files under an alternate root: hostname.<if>, hostname6.<if>, hosts, netmasks, defaultrouter.

Everything is read below a root directory (``-R DIR`` or ``IPMP_ROOT``,
default ``/``), so tests and the lab never touch the real ``/etc``.  This
module only reads files; the pure ``parse_*`` functions do the work and can
be fed text directly.

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

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import NamedTuple

from ipmp.config.commands import Command
from ipmp.config.parse import parse_words
from ipmp.errors import ParseError, Position

# root_path lives in ipmp.host.altroot (commands that need nothing else import it from there).
from ipmp.host.altroot import root_path
from ipmp.model import Environment, Family, IPAddress

__all__ = [
    "IMPLICIT_WORDS",
    "FileWarning",
    "HostnameCommand",
    "HostnameFile",
    "HostnameLine",
    "environment_warnings",
    "find_hostname_files",
    "hostname_lines",
    "parse_defaultrouter",
    "parse_hostname_commands",
    "parse_hostname_text",
    "parse_hosts",
    "parse_netmasks",
    "read_environment",
    "read_hostname_commands",
    "read_hostname_file",
    "root_path",
    "scan_hosts",
    "scan_netmasks",
]

#: What a single-line IPv4 hostname file gets appended (spec §6.3).
IMPLICIT_WORDS = "netmask + broadcast + up"

#: Bourne ``read`` strips IFS white space: space and tab (newline ends the line).
_READ_BLANKS = " \t"

#: Blanks between fields of hosts, netmasks and defaultrouter.  These are
#: read by C libraries (nss_files) rather than the shell; a stray ``\r`` from
#: a DOS editor is tolerated there.
_FIELD_RE = re.compile(r"[^ \t\r\f\v]+")

_HEX_MASK_RE = re.compile(r"0[xX]([0-9A-Fa-f]{1,8})")


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


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "surrogateescape")


def read_hostname_commands(path: Path, ifname: str, family: Family) -> tuple[HostnameCommand, ...]:
    """Read a hostname file into one ``HostnameCommand`` per command line.

    Raises:
        OSError: the file cannot be read (its lines are then unknown).
    """
    return parse_hostname_commands(_read_text(path), ifname, family, str(path))


def read_hostname_file(path: Path, ifname: str, family: Family) -> tuple[Command, ...]:
    """Read ``hostname.<if>`` (INET) or ``hostname6.<if>`` (INET6) into commands.

    Raises:
        ParseError: the first bad line, with ``file:line:col``.
        UnsupportedError: a Solaris keyword Linux cannot honour.
        OSError: the file cannot be read.
    """
    return parse_hostname_text(_read_text(path), ifname, family, str(path))


# --------------------------------------------------------------------------
# hosts, netmasks, defaultrouter
# --------------------------------------------------------------------------


class FileWarning(NamedTuple):
    """A line of hosts or netmasks that the lookups skip (or cannot use), and why.

    Printed as ``FILE:LINE:COL: warning: message``, the form of the errors.
    """

    position: Position
    message: str

    def __str__(self) -> str:
        return f"{self.position}: warning: {self.message}"


def _fields(
    data: str, *, comments_anywhere: bool, c_strings: bool = False
) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """Yield ``(line number, [(column, word), ...])`` for each non-empty line.

    ``c_strings``: the file is read by C code, for which a NUL byte ends the
    line's text (whatever follows it on that line is never seen).
    """
    for lineno, raw in enumerate(data.split("\n"), start=1):
        if c_strings:
            raw = raw.split("\0", 1)[0]
        line = raw.split("#", 1)[0] if comments_anywhere else raw
        words = [(m.start() + 1, m.group()) for m in _FIELD_RE.finditer(line)]
        if words:
            yield lineno, words


def _address(word: str) -> IPAddress | None:
    try:
        return ip_address(word)
    except ValueError:
        return None


def _inet_pton(word: str) -> IPAddress | None:
    """An address as glibc's ``inet_pton`` reads one: dotted quad or IPv6, nothing else.

    Python also takes an IPv6 scope (``fe80::1%eth0``), which inet_pton
    refuses: such a hosts line matches no lookup under glibc.
    """
    if "%" in word:
        return None
    return _address(word)


#: ``::1`` as an IPv4 lookup sees it (glibc maps it to the IPv4 loopback).
_LOOPBACK4 = IPv4Address("127.0.0.1")


def _as_ipv4(addr: IPv6Address) -> IPv4Address | None:
    """What an IPv4 lookup makes of an IPv6 hosts line (glibc files-hosts.c): the
    address inside a v4-mapped one, 127.0.0.1 for ``::1``, else nothing."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr == IPv6Address("::1"):
        return _LOOPBACK4
    return None


def scan_hosts(
    data: str, source: str = ""
) -> tuple[tuple[tuple[str, IPAddress], ...], tuple[FileWarning, ...]]:
    """``hosts(4)`` read as glibc's files backend reads it, and the lines it skips.

    nss_files (files-parse.c, files-hosts.c) reads each line as C text
    (a NUL byte ends it), cuts it at the first ``#`` anywhere, splits it on
    blanks (space, tab, CR, VT, FF) into ``address name [aliases...]``, and
    skips a line whose address ``inet_pton`` refuses or that has no name.
    An IPv4 lookup also takes an IPv6 line whose address is v4-mapped (as
    the IPv4 address inside) or ``::1`` (as 127.0.0.1).  The lookup then
    takes the first line, in file order, whose name or an alias equals the
    name without regard to ASCII case (``Environment.resolve``).

    Solaris (and glibc) skip a bad line without a word; here each skipped
    line is also returned as a warning, so that a typo does not go unseen.

    Returns:
        ``(name, address)`` for the canonical name and every alias of each
        line, in file order (an IPv6 line that an IPv4 lookup also matches
        gives an IPv4 pair right after its own), and the warnings.
    """
    entries, _, warnings = _scan_hosts_lines(data, source)
    return entries, warnings


def _scan_hosts_lines(
    data: str, source: str
) -> tuple[tuple[tuple[str, IPAddress], ...], tuple[int, ...], tuple[FileWarning, ...]]:
    """``scan_hosts``, with the line number of each entry (for ``Environment.hosts_origin``)."""
    entries: list[tuple[str, IPAddress]] = []
    lines: list[int] = []
    warnings: list[FileWarning] = []
    for lineno, words in _fields(data, comments_anywhere=True, c_strings=True):
        col, word = words[0]
        addr = _inet_pton(word)
        if addr is None:
            warnings.append(FileWarning(Position(source, lineno, col),
                                        f"hosts: {word}: not an IP address; line ignored"))
            continue
        if len(words) < 2:
            warnings.append(FileWarning(Position(source, lineno, col),
                                        f"hosts: {word}: no host name; line ignored"))
            continue
        names = [name for _, name in words[1:]]
        entries.extend((name, addr) for name in names)
        if isinstance(addr, IPv6Address) and (mapped := _as_ipv4(addr)) is not None:
            entries.extend((name, mapped) for name in names)
        lines.extend([lineno] * (len(entries) - len(lines)))
    return tuple(entries), tuple(lines), tuple(warnings)


def parse_hosts(data: str, source: str = "") -> tuple[tuple[str, IPAddress], ...]:
    """``scan_hosts`` without the warnings."""
    return scan_hosts(data, source)[0]


def _mask(word: str) -> IPv4Address | None:
    hexmatch = _HEX_MASK_RE.fullmatch(word)
    if hexmatch:
        return IPv4Address(int(hexmatch.group(1), 16))
    try:
        return IPv4Address(word)
    except ValueError:
        return None


def _contiguous(mask: IPv4Address) -> bool:
    host = ~int(mask) & 0xFFFFFFFF
    return host & (host + 1) == 0


def scan_netmasks(
    data: str, source: str = ""
) -> tuple[tuple[tuple[IPv4Address, IPv4Address], ...], tuple[FileWarning, ...]]:
    """``netmasks(4)``: ``network-number netmask``, mask dotted or ``0x`` hex; and the warnings.

    Solaris' files backend (nsswitch files/netmasks.c) compares the first
    word of each line with the masked address and never matches a line
    whose network number does not parse or that has nothing after it; such
    lines, and those whose mask does not parse, are skipped here, each with
    a warning.  Network numbers must be full dotted quads [INF: Solaris also
    takes shortened classful forms such as ``128.32``; we skip them rather
    than guess].

    A non-contiguous mask is kept, with a warning: the entry is valid for
    Solaris, but a Linux address carries a prefix length, so an interface
    whose ``netmask +`` finds it fails to configure (``mask_to_prefix``),
    and only that one.

    Returns:
        ``(network, mask)`` entries in file order, and the warnings.
    """
    entries: list[tuple[IPv4Address, IPv4Address]] = []
    warnings: list[FileWarning] = []
    for lineno, words in _fields(data, comments_anywhere=True, c_strings=True):
        col, word = words[0]
        try:
            network = IPv4Address(word)
        except ValueError:
            warnings.append(FileWarning(Position(source, lineno, col),
                                        f"netmasks: {word}: not an IPv4 network number; line ignored"))
            continue
        if len(words) != 2:
            where = words[2][0] if len(words) > 2 else col
            warnings.append(FileWarning(
                Position(source, lineno, where),
                f"netmasks: expected 'network-number netmask', got {len(words)} word(s); line ignored"))
            continue
        mcol, mword = words[1]
        mask = _mask(mword)
        if mask is None:
            warnings.append(FileWarning(Position(source, lineno, mcol),
                                        f"netmasks: {mword}: not a netmask; line ignored"))
            continue
        if not _contiguous(mask):
            warnings.append(FileWarning(Position(source, lineno, mcol),
                                        f"netmasks: {mword}: netmask is not contiguous; "
                                        "an interface that uses it fails to configure"))
        entries.append((network, mask))
    return tuple(entries), tuple(warnings)


def parse_netmasks(data: str, source: str = "") -> tuple[tuple[IPv4Address, IPv4Address], ...]:
    """``scan_netmasks`` without the warnings."""
    return scan_netmasks(data, source)[0]


def parse_defaultrouter(
    data: str, source: str = "", hosts: Sequence[tuple[str, IPAddress]] = ()
) -> tuple[IPAddress, ...]:
    """``defaultrouter(4)``: one router per line, an address or a name from hosts.

    As net-physical (``while read router rubbish``): only the first word of
    a line counts, and a line whose first word starts with ``#`` is a
    comment.  Names are looked up in ``hosts``, IPv4 first.
    """
    env = Environment(hosts=tuple(hosts))
    routers: list[IPAddress] = []
    for lineno, words in _fields(data, comments_anywhere=False):
        col, word = words[0]
        if word.startswith("#"):
            continue
        addr = _address(word)
        if addr is None:
            addr = env.resolve(word, Family.INET) or env.resolve(word, Family.INET6)
        if addr is None:
            raise ParseError(
                f"defaultrouter: {word}: not an address nor a name in the hosts file",
                Position(source, lineno, col),
            )
        routers.append(addr)
    return tuple(routers)


def _first_file(*candidates: Path) -> Path | None:
    for path in candidates:
        if path.is_file():
            return path
    return None


def read_environment(root: Path) -> Environment:
    """Read hosts, netmasks and defaultrouter under ``root``.

    ``etc/inet/hosts`` is preferred to ``etc/hosts`` and ``etc/inet/netmasks``
    to ``etc/netmasks`` (on Solaris the ``etc`` names are symlinks into
    ``etc/inet``).  Missing files give empty tables.  Lines the lookups skip
    are left out (``environment_warnings`` names them).

    Raises:
        ParseError: a bad defaultrouter line, with ``file:line:col``.
        OSError: a file exists but cannot be read.
    """
    return _scan_environment(root)[0]


def environment_warnings(root: Path) -> tuple[FileWarning, ...]:
    """The lines of hosts and netmasks under ``root`` that the lookups skip or cannot use.

    Raises:
        ParseError, OSError: as ``read_environment``.
    """
    return _scan_environment(root)[1]


def _scan_environment(root: Path) -> tuple[Environment, tuple[FileWarning, ...]]:
    etc = root / "etc"
    hosts: tuple[tuple[str, IPAddress], ...] = ()
    origin: tuple[tuple[str, int], ...] = ()
    netmasks: tuple[tuple[IPv4Address, IPv4Address], ...] = ()
    routers: tuple[IPAddress, ...] = ()
    warnings: tuple[FileWarning, ...] = ()
    path = _first_file(etc / "inet" / "hosts", etc / "hosts")
    if path is not None:
        hosts, lines, found = _scan_hosts_lines(_read_text(path), str(path))
        origin = tuple((str(path), line) for line in lines)
        warnings += found
    path = _first_file(etc / "inet" / "netmasks", etc / "netmasks")
    if path is not None:
        netmasks, found = scan_netmasks(_read_text(path), str(path))
        warnings += found
    path = _first_file(etc / "defaultrouter")
    if path is not None:
        routers = parse_defaultrouter(_read_text(path), str(path), hosts)
    env = Environment(hosts=hosts, netmasks=netmasks, defaultrouters=routers, hosts_origin=origin)
    return env, warnings
