"""The hosts, netmasks and defaultrouter files under the root: the lookups ``ifconfig`` makes.

Read as the C libraries read them (nss_files: fields split on blanks, ``#``
comments anywhere), into the ``Environment`` the evaluator resolves host
names, ``netmask +`` and the default routers with.  Lines the lookups skip
are named as ``FileWarning`` values (``ipmp-boot`` prints them).  The
``scan_*`` and ``parse_*`` functions are pure and can be fed text directly;
``read_environment`` reads the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import NamedTuple

from ipmp.errors import ParseError, Position
from ipmp.host.hostfiles import read_text
from ipmp.model import Environment, Family, IPAddress

__all__ = [
    "FileWarning",
    "environment_warnings",
    "parse_defaultrouter",
    "parse_hosts",
    "parse_netmasks",
    "read_environment",
    "scan_hosts",
    "scan_netmasks",
]

#: Blanks between fields of hosts, netmasks and defaultrouter.  These are
#: read by C libraries (nss_files) rather than the shell; a stray ``\r`` from
#: a DOS editor is tolerated there.
_FIELD_RE = re.compile(r"[^ \t\r\f\v]+")

_HEX_MASK_RE = re.compile(r"0[xX]([0-9A-Fa-f]{1,8})")


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
        hosts, lines, found = _scan_hosts_lines(read_text(path), str(path))
        origin = tuple((str(path), line) for line in lines)
        warnings += found
    path = _first_file(etc / "inet" / "netmasks", etc / "netmasks")
    if path is not None:
        netmasks, found = scan_netmasks(read_text(path), str(path))
        warnings += found
    path = _first_file(etc / "defaultrouter")
    if path is not None:
        routers = parse_defaultrouter(read_text(path), str(path), hosts)
    env = Environment(hosts=hosts, netmasks=netmasks, defaultrouters=routers, hosts_origin=origin)
    return env, warnings
