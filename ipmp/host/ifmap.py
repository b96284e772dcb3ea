"""Solaris interface names on Linux NICs: ``etc/ipmp/ifmap`` and the name translation.

A Solaris host's files say ``hme0``; the Linux NIC is ``enp1s0f0``.  Nothing
is renamed.  The map file pairs the names, one pair a line::

    # solaris  linux
    hme0       enp1s0f0
    hme1       enp1s0f1   # right-hand port

``ipmp-boot`` validates the whole file against the kernel before it changes
anything, then gives each NIC its Solaris name as a Linux *alternative name*
(``ip link property add dev enp1s0f0 altname hme0``, kernel 5.5+), so ``ip``,
``ping -I``, ``tcpdump -i`` and sockets (``SO_BINDTODEVICE``) accept it too.

Two views, one boundary.  The Solaris view (``Config``, ``Interface.name``,
the state store, in.mpathd, ``ifconfig -a``) uses the Solaris name of a mapped
NIC and the Linux name of any other; ``ipmp.kernel`` reads links,
addresses, routes and sysctls into that view and turns every operation back
into Linux names (``NameMap``).  A name given on a command line may be any
name the kernel knows for the link (its name or any altname):
``canonical_name`` turns it into the view name.

Decisions (measured on kernel 6.18):

* A Solaris name is a letter, then letters, digits or ``_``, ending in a
  digit (the boot files are found by the glob ``hostname.*[0-9]``), and at
  most 12 characters.  The kernel takes altnames of up to 127 bytes and
  checks little else (it accepted ``a/b``, ``.`` and ``qfe0:1``; only
  iproute2 refuses blanks), so the limit is ours: the IPv4 label of logical
  interface ``NAME:N`` must fit Linux's IFNAMSIZ - 1 = 15 characters, and 12
  leaves room for units up to 99 (the evaluator refuses longer labels).
* IPv4 labels use the Solaris name (``hme0:1`` on ``enp1s0f0``): the kernel
  accepts any label on any link (``ip addr add ... dev enp1s0f0 label
  hme0:1`` and even ``label foo:1`` succeed), so the label needs no
  translation and ``ip addr`` shows the Solaris logical name.  A label that
  starts with the Linux name (the kernel's default, or one made before the
  map existed) reads as the Solaris name, so mapping a configured host does
  not churn its addresses.
* Sysctls and ``/sys/class/net`` know only the Linux name; keys are
  translated both ways.
* The loopback is ``lo0`` in the Solaris view, with or without a map: the
  link the kernel flags IFF_LOOPBACK (Linux ``lo``) is named as illumos
  names it (``ipif_loopback_name`` in ``ip_if.c``), so ``ifconfig -a`` shows
  ``lo0`` as every parser of Solaris output expects, and commands take it
  (``ifconfig lo0``; ``lo`` still works: it is the link's Linux name).  No
  altname is added: the name lives in the view only.
  A map line may name the loopback only as ``lo0``, and ``lo0`` only the
  loopback; a host with another link already called ``lo0`` keeps ``lo``.
* A line maps a NIC that exists (by its name or an altname) to a name no
  other link has; the same Solaris name or NIC twice is an error.  The
  tools other than ``ipmp-boot`` use every line that is valid and ignore the
  rest (``ipmp-boot --check`` reports them), so a typo never takes names
  away from a running host.

Pure module apart from ``read_ifmap``: no other I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ipmp.errors import ParseError, Position
from ipmp.host.altroot import root_file
from ipmp.model import IFNAMSIZ, KAddress, KernelState, KLink, KRoute

if TYPE_CHECKING:
    from pathlib import Path

    from ipmp.linux.ops import Op

__all__ = [
    "IFMAP",
    "LOOPBACK",
    "MAX_SOLARIS_NAME",
    "MapEntry",
    "NameMap",
    "canonical_name",
    "check_ifmap",
    "parse_ifmap",
    "read_ifmap",
]

#: The map file, below the root (a string: ``ifconfig -a`` reads it without ``pathlib``).
IFMAP = "etc/ipmp/ifmap"
#: The loopback's Solaris name (illumos ``ipif_loopback_name``, ``ip_if.c``).
LOOPBACK = "lo0"
#: ``NAME:99`` must fit an IPv4 label (IFNAMSIZ - 1 = 15 characters).
MAX_SOLARIS_NAME = IFNAMSIZ - 1 - len(":99")

_SOLARIS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*[0-9]")
_WORD_RE = re.compile(r"[^ \t\r\f\v]+")


@dataclass(frozen=True)
class MapEntry:
    """One line of the map: ``solaris linux``, with where each word was."""

    solaris: str
    linux: str
    position: Position  # the Solaris name's
    linux_col: int = 0

    @property
    def linux_position(self) -> Position:
        return Position(self.position.source, self.position.line, self.linux_col)


def parse_ifmap(text: str, source: str = "") -> tuple[tuple[MapEntry, ...], tuple[ParseError, ...]]:
    """Parse the map file's text; the errors are those of the lines alone.

    ``#`` starts a comment anywhere on a line; blank lines are ignored.
    Returns every well-formed entry and an error for every other line.
    """
    entries: list[MapEntry] = []
    errors: list[ParseError] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0]
        words = [(m.start() + 1, m.group()) for m in _WORD_RE.finditer(line)]
        if not words:
            continue
        col, solaris = words[0]
        where = Position(source, lineno, col)
        if len(words) != 2:
            at = Position(source, lineno, words[2][0]) if len(words) > 2 else where
            errors.append(ParseError(
                f"ifmap: expected 'solaris-name linux-name', got {len(words)} word(s)", at))
            continue
        problem = solaris_name_problem(solaris)
        if problem is not None:
            errors.append(ParseError(f"ifmap: {problem}", where))
            continue
        entries.append(MapEntry(solaris, words[1][1], where, words[1][0]))
    return tuple(entries), tuple(errors)


def solaris_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Solaris interface name of the map, or None."""
    if not _SOLARIS_RE.fullmatch(name):
        return (f"{name}: not a Solaris interface name (a letter, then letters, digits "
                "or '_', ending in the instance number)")
    if len(name) > MAX_SOLARIS_NAME:
        return (f"{name}: Solaris name too long: at most {MAX_SOLARIS_NAME} characters, so that "
                f"the logical interface label {name}:N fits Linux's {IFNAMSIZ - 1}")
    return None


def _owners(links: Iterable[KLink]) -> dict[str, KLink]:
    """Every name the kernel resolves (names and altnames) -> its link."""
    owners: dict[str, KLink] = {}
    for link in links:
        for name in (link.name, *link.altnames):
            owners.setdefault(name, link)
    return owners


def _check(entries: Sequence[MapEntry], links: Sequence[KLink]) -> list[tuple[MapEntry, ParseError | None]]:
    owners = _owners(links)
    by_solaris: dict[str, MapEntry] = {}
    by_index: dict[int, MapEntry] = {}
    out: list[tuple[MapEntry, ParseError | None]] = []
    for entry in entries:
        link = owners.get(entry.linux)
        error: ParseError | None = None
        if link is None:
            error = ParseError(f"ifmap: {entry.linux}: no such Linux interface", entry.linux_position)
        elif (first := by_solaris.get(entry.solaris)) is not None:
            error = ParseError(f"ifmap: {entry.solaris}: mapped already, on line {first.position.line}",
                               entry.position)
        elif (first := by_index.get(link.index)) is not None:
            error = ParseError(f"ifmap: {entry.linux}: already mapped to {first.solaris}, on line "
                               f"{first.position.line}", entry.linux_position)
        elif (other := owners.get(entry.solaris)) is not None and other.index != link.index:
            error = ParseError(f"ifmap: {entry.solaris}: already a name of Linux interface {other.name}",
                               entry.position)
        elif link.loopback and entry.solaris != LOOPBACK:
            error = ParseError(f"ifmap: {entry.linux}: the loopback is always {LOOPBACK}",
                               entry.linux_position)
        elif entry.solaris == LOOPBACK and not link.loopback:
            error = ParseError(f"ifmap: {LOOPBACK}: the loopback's name, not a NIC's", entry.position)
        if error is None and link is not None:
            by_solaris[entry.solaris] = entry
            by_index[link.index] = entry
        out.append((entry, error))
    return out


def check_ifmap(entries: Sequence[MapEntry], links: Sequence[KLink]) -> tuple[ParseError, ...]:
    """The errors of well-formed entries against the kernel's links (Linux names and altnames)."""
    return tuple(err for _, err in _check(entries, links) if err is not None)


def read_ifmap(root: str | Path) -> tuple[tuple[MapEntry, ...], tuple[ParseError, ...]]:
    """Read ``<root>/etc/ipmp/ifmap``; no file is an empty map.

    Raises:
        OSError: the file exists but cannot be read.
    """
    path = root_file(root, IFMAP)
    try:
        with open(path, "rb") as fh:
            data = fh.read().decode("utf-8", "surrogateescape")
    except (FileNotFoundError, NotADirectoryError):
        return (), ()
    return parse_ifmap(data, path)


def usable_entries(root: str | Path) -> tuple[MapEntry, ...]:
    """The map's well-formed lines, for the commands (ipmp-boot reports the bad ones).

    A map that cannot be read is no map: ``ifconfig`` still works on the
    Linux names.
    """
    try:
        return read_ifmap(root)[0]
    except OSError:
        return ()


# --------------------------------------------------------------------------
# The translation at the kernel boundary
# --------------------------------------------------------------------------


class NameMap:
    """Linux name <-> view name for the mapped links; every other name maps to itself."""

    def __init__(self, solaris_of: Mapping[str, str] | None = None) -> None:
        self._view = dict(solaris_of or {})
        self._linux = {v: k for k, v in self._view.items()}

    @classmethod
    def of(cls, entries: Sequence[MapEntry], links: Sequence[KLink]) -> NameMap:
        """The valid entries of the map, and the loopback as lo0, for links read with their Linux names."""
        owners = _owners(links)
        pairs: dict[str, str] = {}
        for entry, error in _check(entries, links):
            link = owners.get(entry.linux)
            if error is None and link is not None and entry.solaris != link.name:
                pairs[link.name] = entry.solaris
        # Not when another link already answers to lo0: two links with
        # one name would make every command on it ambiguous.
        holder = owners.get(LOOPBACK)
        for link in links:
            if link.loopback and link.name != LOOPBACK and (holder is None or holder.index == link.index):
                pairs.setdefault(link.name, LOOPBACK)
        return cls(pairs)

    def __bool__(self) -> bool:
        return bool(self._view)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NameMap) and self._view == other._view

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._view.items())))

    def __repr__(self) -> str:
        return f"NameMap({self._view!r})"

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """``(linux, solaris)`` for every mapped link."""
        return tuple(sorted(self._view.items()))

    def view(self, linux: str) -> str:
        return self._view.get(linux, linux)

    def linux(self, view: str) -> str:
        return self._linux.get(view, view)

    def link(self, link: KLink) -> KLink:
        """A link read with its Linux name, named as the view names it.

        ``altnames`` then holds every other name the kernel resolves for it,
        the Linux name first.
        """
        view = self.view(link.name)
        if view == link.name:
            return link
        others = (link.name, *(a for a in link.altnames if a != view))
        return replace(link, name=view, altnames=others)

    def label(self, label: str, linux: str) -> str:
        """An IPv4 label read from ``linux``: a Linux-name prefix reads as the view name."""
        view = self.view(linux)
        if view == linux:
            return label
        if label == linux:
            return view
        head, sep, tail = label.rpartition(":")
        if sep and head == linux:
            return f"{view}:{tail}"
        return label

    def sysctl_key(self, key: str) -> str:
        """``net/ipv4/conf/hme0/rp_filter`` -> ``net/ipv4/conf/enp1s0f0/rp_filter``."""
        parts = key.split("/")
        if len(parts) > 4 and parts[0] == "net" and parts[2] in ("conf", "neigh"):
            name = "/".join(parts[3:-1])
            linux = self.linux(name)
            if linux != name:
                return "/".join([*parts[:3], linux, parts[-1]])
        return key

    def _address(self, a: KAddress) -> KAddress:
        return replace(a, ifname=self.linux(a.ifname))

    def _route(self, r: KRoute) -> KRoute:
        return replace(r, dev=self.linux(r.dev))

    def op(self, op: Op) -> Op:
        """An operation of the view, with the Linux names the kernel wants."""
        # Here, not at the top: status reads (``ifconfig -a``) use the map
        # but never an operation, and need not import them.
        from ipmp.linux.ops import (
            AddAddress,
            AddRoute,
            AddRule,
            DelAddress,
            DelRoute,
            DelRule,
            SetLink,
            SetSysctl,
        )

        if not self._view:
            return op
        match op:
            case SetSysctl(key=key):
                return replace(op, key=self.sysctl_key(key))
            case SetLink(name=name):
                return replace(op, name=self.linux(name))
            case AddAddress(address=a):
                return AddAddress(self._address(a))
            case DelAddress(address=a):
                return DelAddress(self._address(a))
            case AddRoute(route=r):
                return AddRoute(self._route(r))
            case DelRoute(route=r):
                return DelRoute(self._route(r))
            case AddRule() | DelRule():
                return op
        return op

    def ops(self, ops: Iterable[Op]) -> tuple[Op, ...]:
        return tuple(self.op(op) for op in ops)


def missing_altnames(entries: Sequence[MapEntry], links: Sequence[KLink]) -> tuple[tuple[str, str], ...]:
    """``(linux, solaris)`` for every valid entry whose Solaris name the kernel lacks.

    ``links`` as the kernel names them (Linux names; altnames as read).
    """
    owners = _owners(links)
    out: list[tuple[str, str]] = []
    for entry, error in _check(entries, links):
        link = owners.get(entry.linux)
        if error is not None or link is None or link.loopback:
            continue  # the loopback's lo0 is the view's alone (see the module docstring)
        if entry.solaris != link.name and entry.solaris not in link.altnames:
            out.append((link.name, entry.solaris))
    return tuple(out)


def canonical_name(kernel: KernelState, name: str) -> str:
    """The view name of the link the kernel knows as ``name`` (any of its names).

    ``enp1s0f0:2`` -> ``hme0:2`` when enp1s0f0 is mapped to hme0; a name no
    link has is returned as given (the caller reports it).
    """
    base, sep, unit = name.partition(":")
    if kernel.link(base) is not None:
        return name
    for link in kernel.links:
        if base in link.altnames:
            return f"{link.name}{sep}{unit}"
    return name
