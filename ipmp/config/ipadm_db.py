"""The persistent ``ipadm`` configuration: the text of ``/etc/ipadm/ipadm.conf``.

The format is libipadm's data store (illumos ``libipadm/common/ipadm_persist.c``,
``ipadm_nvlist2str``): one object per line, a series of ``name=value;``
pairs.  Names beginning with ``_`` are ipadm's own (``ipadm_ipmgmt.h``:
``_ifname``, ``_family``, ``_aobjname``, ``_ipv4addr``, ...); the others are
properties (``prefixlen``, ``standby``).  The lines this toolkit writes:

* an interface, one line per address family (``AF_INET`` 2, ``AF_INET6``
  26) and its class (``IPADMIF_CLASS_IP`` 0, ``IPADMIF_CLASS_IPMP`` 1)::

      _ifname=net0;_family=2;_ifclass=0;

* a member of an IPMP interface, one line per member in the order added
  (illumos ``i_ipadm_ipmpif_from_nvl`` matches an ``_underif`` value against
  one member name; ``ipmgmtd`` may also append members to one value,
  comma-separated, ``IPMGMT_APPEND``: both are read)::

      _ifname=ipmp0;_underif=net0;

* a static address and its prefix length, as ``ipmgmtd`` keeps them (the
  address as ``local,remote``; the prefix length an address property on a
  line of its own, merged back by ``i_ipadm_merge_prefixlen_from_nvl``)::

      _ifname=ipmp0;_aobjname=ipmp0/v4;_ipv4addr=192.0.2.10,;
      _ifname=ipmp0;_aobjname=ipmp0/v4;prefixlen=24;

* an interface property::

      _ifname=net2;_protocol=ip;standby=on;
      _ifname=ipmp0;_protocol=ip;allow-xprobe=on;

Oracle Solaris 11 writes the values with a type tag (``_family=string,2;``);
both forms are read.  A line this toolkit has no use for (a DHCP or addrconf
address, another property, a comment) is kept as it was when the file is
written again, so that a file copied from a Solaris host survives.  Only
lines that are not ``name=value;`` pairs at all are errors
(``FILE:LINE:COL``).

Pure module: no I/O.
"""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv6Interface, ip_address
from typing import NamedTuple

from ipmp.errors import ParseError, Position
from ipmp.model import Family, IPInterface

__all__ = [
    "AddAddress",
    "AddInterface",
    "AddMember",
    "DbEdit",
    "DbLine",
    "DeleteAddress",
    "DeleteInterface",
    "IpadmDb",
    "PersistentAddress",
    "PersistentInterface",
    "RemoveMember",
    "ResetProperty",
    "SetProperty",
    "apply_edits",
    "parse_db",
    "render_db",
]

#: The address families as libipadm stores them (Solaris ``AF_INET``, ``AF_INET6``).
AF_INET = 2
AF_INET6 = 26
_AF = {AF_INET: Family.INET, AF_INET6: Family.INET6}
_AF_NUMBER = {Family.INET: AF_INET, Family.INET6: AF_INET6}
#: libipadm ``ipadm_if_class_t``: an IP interface, an IPMP interface.
IPADMIF_CLASS_IP = 0
IPADMIF_CLASS_IPMP = 1
#: The type tags Oracle Solaris 11 puts before a value (``_family=string,2``).
_TYPE_TAGS = ("string,", "uint16,", "uint32,", "int32,", "boolean,")


class DbLine(NamedTuple):
    """One line of the file: its text as read (or as made), and its pairs."""

    #: The line without its newline, written back unchanged unless edited.
    text: str
    #: ``(name, value)`` pairs in order, type tags taken off; () for a
    #: comment or an empty line.
    pairs: tuple[tuple[str, str], ...]
    #: 1-based line number in the file read; 0 for a line made here.
    line: int = 0

    def get(self, name: str) -> str | None:
        for key, value in self.pairs:
            if key == name:
                return value
        return None

    @property
    def ifname(self) -> str:
        return self.get("_ifname") or ""


class PersistentInterface(NamedTuple):
    """An interface of the persistent configuration (``show-if`` PERSISTENT)."""

    #: The interface name (``net0``, ``ipmp0``).
    name: str
    #: The families that are persistent: ``show-if`` prints ``4`` and ``6``
    #: in the PERSISTENT column for them (``46--``).
    families: frozenset[Family]
    #: An IPMP interface (``create-ipmp``), not an IP interface (``create-ip``).
    ipmp: bool
    #: For an IPMP interface, its persistent members in the order they were
    #: added (``show-if`` OVER of a disabled interface, boot order).
    members: tuple[str, ...]
    #: Persistent interface properties as ``(protocol, name, value)``,
    #: e.g. ``("ip", "standby", "on")`` (``show-ifprop`` PERSISTENT).
    properties: tuple[tuple[str, str, str], ...]

    def property(self, name: str, protocol: str = "ip") -> str | None:
        for proto, key, value in self.properties:
            if key == name and proto == protocol:
                return value
        return None


class PersistentAddress(NamedTuple):
    """A static address of the persistent configuration (``show-addr`` persistent flag)."""

    #: The address object, ``ipmp0/v4``.
    addrobj: str
    #: The interface it is on (``ipmp0``: a data address; a member: a test address).
    ifname: str
    #: The address with its prefix length (the stored ``prefixlen``).
    address: IPInterface

    @property
    def family(self) -> Family:
        return Family(self.address.version)


class IpadmDb(NamedTuple):
    """The persistent configuration: the file's lines, and what they say."""

    #: Every line of the file in order, those not understood included.
    lines: tuple[DbLine, ...] = ()
    #: The file it was read from ("" when made here), for error positions.
    source: str = ""

    @property
    def interfaces(self) -> tuple[PersistentInterface, ...]:
        """The persistent interfaces in the order of their first line."""
        order: list[str] = []
        families: dict[str, set[Family]] = {}
        ipmp: dict[str, bool] = {}
        members: dict[str, list[str]] = {}
        props: dict[str, list[tuple[str, str, str]]] = {}
        for line in self.lines:
            name = line.ifname
            if not name or line.get("_aobjname") is not None:
                continue
            family = _family_of(line)
            if family is not None:
                if name not in families:
                    order.append(name)
                families.setdefault(name, set()).add(family)
                if line.get("_ifclass") == str(IPADMIF_CLASS_IPMP):
                    ipmp[name] = True
            for under in _members_of(line):
                if under not in members.setdefault(name, []):
                    members[name].append(under)
            proto = line.get("_protocol")
            if proto is not None:
                props.setdefault(name, []).extend(
                    (proto, k, v) for k, v in line.pairs if not k.startswith("_"))
        return tuple(
            PersistentInterface(n, frozenset(families[n]), ipmp.get(n, False), tuple(members.get(n, ())),
                                tuple(props.get(n, ())))
            for n in order
        )

    def interface(self, name: str) -> PersistentInterface | None:
        for itf in self.interfaces:
            if itf.name == name:
                return itf
        return None

    @property
    def addresses(self) -> tuple[PersistentAddress, ...]:
        """The persistent static addresses, in the order of their lines."""
        found: dict[str, tuple[str, str]] = {}
        prefix: dict[str, str] = {}
        for line in self.lines:
            obj = line.get("_aobjname")
            if obj is None:
                continue
            plen = line.get("prefixlen")
            if plen is not None:
                prefix[obj] = plen
            for key in ("_ipv4addr", "_ipv6addr"):
                value = line.get(key)
                if value is not None:
                    found[obj] = (line.ifname, value.partition(",")[0])
        out: list[PersistentAddress] = []
        for obj, (ifname, text) in found.items():
            address = _address(text, prefix.get(obj))
            if address is not None:
                out.append(PersistentAddress(obj, ifname, address))
        return tuple(out)

    def address(self, addrobj: str) -> PersistentAddress | None:
        for addr in self.addresses:
            if addr.addrobj == addrobj:
                return addr
        return None

    @property
    def unknown(self) -> tuple[DbLine, ...]:
        """Lines with pairs that no record above takes (kept, not applied)."""
        known = {"_ifname", "_family", "_ifclass", "_underif", "_aobjname", "_ipv4addr", "_ipv6addr",
                 "prefixlen", "_protocol"}
        return tuple(ln for ln in self.lines if ln.pairs and not _understood(ln, known))


def _understood(line: DbLine, known: set[str]) -> bool:
    """Whether the boot applies this line: our records' names only (of properties, ``standby``
    and the IPMP interface's ``allow-xprobe``)."""
    names = {k for k, _ in line.pairs}
    if "_ifname" not in names:
        return False
    if line.get("_protocol") is not None:
        return names - {"_ifname", "_protocol"} <= {"standby", "allow-xprobe"}
    return names <= known


def _family_of(line: DbLine) -> Family | None:
    value = line.get("_family")
    if value is None or not value.isdigit():
        return None
    return _AF.get(int(value))


def _members_of(line: DbLine) -> list[str]:
    value = line.get("_underif")
    return [v for v in value.split(",") if v] if value else []


def _address(text: str, prefixlen: str | None) -> IPInterface | None:
    try:
        ip = ip_address(text)
    except ValueError:
        return None  # a host name: libipadm resolves it at boot; kept, not applied here
    if prefixlen is None or not prefixlen.isdigit():
        return IPv4Interface(f"{ip}/32") if ip.version == 4 else IPv6Interface(f"{ip}/128")
    try:
        return IPv4Interface(f"{ip}/{prefixlen}") if ip.version == 4 else IPv6Interface(f"{ip}/{prefixlen}")
    except ValueError:
        return None


# --------------------------------------------------------------------------
# reading and writing
# --------------------------------------------------------------------------


def _strip_tag(value: str) -> str:
    for tag in _TYPE_TAGS:
        if value.startswith(tag):
            return value[len(tag):]
    return value


def parse_line(text: str, number: int, source: str) -> DbLine:
    """One line: ``name=value;`` pairs (``ipadm_str2nvlist``); ``#`` comments and blank lines kept.

    Raises:
        ParseError: a pair without ``=`` or with an empty name, at its column.
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return DbLine(text, (), number)
    pairs: list[tuple[str, str]] = []
    col = len(text) - len(text.lstrip()) + 1
    for part in text.strip().split(";"):
        if part.strip():
            name, eq, value = part.partition("=")
            if not eq or not name.strip():
                raise ParseError(f"expected name=value, found {part.strip()!r}",
                                 Position(source, number, col))
            if any(c.isspace() for c in name.strip()):
                raise ParseError(f"bad name {name.strip()!r}", Position(source, number, col))
            pairs.append((name.strip(), _strip_tag(value)))
        col += len(part) + 1
    return DbLine(text, tuple(pairs), number)


def parse_db(text: str, source: str = "") -> IpadmDb:
    """The file's text as an ``IpadmDb``.

    Raises:
        ParseError: ``FILE:LINE:COL`` of the first line that is no ``name=value;`` list.
    """
    return IpadmDb(tuple(parse_line(t, n, source) for n, t in enumerate(text.splitlines(), start=1)), source)


def render_db(db: IpadmDb) -> str:
    """The file's text: every line as it was read, or as an edit made it."""
    return "".join(line.text + "\n" for line in db.lines)


def _made(*pairs: tuple[str, str]) -> DbLine:
    return DbLine("".join(f"{k}={v};" for k, v in pairs), pairs)


# --------------------------------------------------------------------------
# edits: what a command changes in the file
# --------------------------------------------------------------------------


class AddInterface(NamedTuple):
    """``create-ip`` / ``create-ipmp``: the interface's family lines."""

    name: str
    ipmp: bool = False
    families: frozenset[Family] = frozenset({Family.INET, Family.INET6})


class DeleteInterface(NamedTuple):
    """``delete-ip`` / ``delete-ipmp``: every line of the interface, and its membership lines."""

    name: str


class AddMember(NamedTuple):
    ipmpif: str
    member: str


class RemoveMember(NamedTuple):
    ipmpif: str
    member: str


class AddAddress(NamedTuple):
    addrobj: str
    ifname: str
    address: IPInterface


class DeleteAddress(NamedTuple):
    addrobj: str


class SetProperty(NamedTuple):
    ifname: str
    protocol: str
    name: str
    value: str


class ResetProperty(NamedTuple):
    ifname: str
    protocol: str
    name: str


DbEdit = (AddInterface | DeleteInterface | AddMember | RemoveMember | AddAddress | DeleteAddress
          | SetProperty | ResetProperty)


def _edit(lines: list[DbLine], edit: DbEdit) -> list[DbLine]:
    match edit:
        case AddInterface(name, ipmp, families):
            have = {f for ln in lines if ln.ifname == name and ln.get("_aobjname") is None
                    and (f := _family_of(ln)) is not None}
            cls = IPADMIF_CLASS_IPMP if ipmp else IPADMIF_CLASS_IP
            return lines + [_made(("_ifname", name), ("_family", str(_AF_NUMBER[f])), ("_ifclass", str(cls)))
                            for f in sorted(families) if f not in have]
        case DeleteInterface(name):
            out: list[DbLine] = []
            for ln in lines:
                if ln.ifname == name and ln.pairs:
                    continue
                if name in _members_of(ln):
                    kept = _without_member(ln, name)
                    if kept is None:
                        continue
                    ln = kept
                out.append(ln)
            return out
        case AddMember(ipmpif, member):
            if any(ln.ifname == ipmpif and member in _members_of(ln) for ln in lines):
                return lines
            return [*lines, _made(("_ifname", ipmpif), ("_underif", member))]
        case RemoveMember(ipmpif, member):
            out = []
            for ln in lines:
                if ln.ifname == ipmpif and member in _members_of(ln):
                    kept = _without_member(ln, member)
                    if kept is None:
                        continue
                    ln = kept
                out.append(ln)
            return out
        case AddAddress(addrobj, ifname, address):
            lines = _edit(lines, DeleteAddress(addrobj))
            key = "_ipv4addr" if address.version == 4 else "_ipv6addr"
            return [
                *lines,
                _made(("_ifname", ifname), ("_aobjname", addrobj), (key, f"{address.ip},")),
                _made(("_ifname", ifname), ("_aobjname", addrobj),
                      ("prefixlen", str(address.network.prefixlen))),
            ]
        case DeleteAddress(addrobj):
            return [ln for ln in lines if ln.get("_aobjname") != addrobj]
        case SetProperty(ifname, protocol, name, value):
            lines = _edit(lines, ResetProperty(ifname, protocol, name))
            return [*lines, _made(("_ifname", ifname), ("_protocol", protocol), (name, value))]
        case ResetProperty(ifname, protocol, name):
            return [ln for ln in lines if not (ln.ifname == ifname and ln.get("_protocol") == protocol
                                               and ln.get(name) is not None)]
    raise AssertionError(edit)  # pragma: no cover - every edit is matched above


def _without_member(line: DbLine, member: str) -> DbLine | None:
    """The line without ``member`` in its ``_underif`` list; None when none is left."""
    rest = [m for m in _members_of(line) if m != member]
    if not rest:
        return None
    pairs = tuple((k, ",".join(rest) if k == "_underif" else v) for k, v in line.pairs)
    return _made(*pairs)


def apply_edits(db: IpadmDb, edits: tuple[DbEdit, ...]) -> IpadmDb:
    """The configuration with ``edits`` made, in order; untouched lines keep their text."""
    lines = list(db.lines)
    for edit in edits:
        lines = _edit(lines, edit)
    return IpadmDb(tuple(lines), db.source)
