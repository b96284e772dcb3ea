"""Read the kernel's state: a raw rtnetlink dump turned into a ``KernelState``.

Reads never touch pyroute2 (or an event loop): links, addresses, routes and
rules come from a plain blocking NETLINK_ROUTE socket (``Dumper``), decoded
by ``ipmp.kernel.decode``, because ``import pyroute2`` alone costs more than
``ifconfig -a`` may take.  This is the whole read path of ``ifconfig``:
nothing here loads what only a change needs.

Solaris names (``ipmp.host.ifmap``): given the map's entries, a read names
every mapped link, its addresses' labels, its routes and its sysctls by the
Solaris name, and returns the translation it used (``NameMap``).  Without
entries nothing is renamed.

May import: ``ipmp.model``, ``ipmp.host.ifmap``, ``ipmp.kernel.decode``, ``ipmp.kernel.sysctl``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from ipaddress import IPv6Address

from ipmp.host.ifmap import MapEntry, NameMap
from ipmp.kernel.decode import (
    AF_INET6,
    AF_UNSPEC,
    RT_TABLE_MAIN,
    Message,
    address,
    dump_messages,
    dump_request,
    family_of,
    link,
    next_hops6,
    route,
    rule,
)
from ipmp.kernel.sysctl import read_sysctl
from ipmp.model import RTPROT_IPMP, Family, KAddress, KernelState, KLink, KRoute, KRule

__all__ = ["Dumper", "SysctlKeys", "linux_links", "read", "read_state", "routers6"]

#: Sysctl keys to read, or a function that makes them from the links' names.
SysctlKeys = Iterable[str] | Callable[[list[str]], Iterable[str]]


class Dumper:
    """A plain blocking NETLINK_ROUTE socket that only dumps: no pyroute2, no event loop."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0
        self._buf = bytearray(1 << 17)

    def close(self) -> None:
        self.sock.close()

    def dump(self, kind: str, family: int = AF_UNSPEC) -> Iterator[Message]:
        """Every message of one dump (``link``, ``addr``, ``route``, ``rule``)."""
        self._seq += 1
        seq = self._seq
        self.sock.send(dump_request(kind, seq, family))
        view = memoryview(self._buf)
        while True:
            size = self.sock.recv_into(self._buf)
            messages, end = dump_messages(bytes(view[:size]), seq, kind)
            yield from messages
            if end is not None:
                if end:
                    raise OSError(end, os.strerror(end))
                return


def linux_links(dump: Dumper) -> list[KLink]:
    """Every link by index under its Linux name, with its altnames as the kernel has them."""
    return sorted([link(m) for m in dump.dump("link")], key=lambda lk: lk.index)


def _links(dump: Dumper, ifmap: Sequence[MapEntry], names: NameMap) -> tuple[list[KLink], NameMap]:
    """Every link, by index, named as the view names it (``ifmap``, the loopback as lo0), and that naming."""
    raw = linux_links(dump)
    names = NameMap.of(ifmap, raw)
    return [names.link(lk) for lk in raw], names


def read(dump: Dumper, ifmap: Sequence[MapEntry], names: NameMap,
         sysctl_keys: SysctlKeys) -> tuple[KernelState, NameMap]:
    """``Kernel.read`` on a dump socket; ``sysctl_keys`` may be a function of the link names."""
    links, names = _links(dump, ifmap, names)
    by_index = {lk.index: lk.name for lk in links}
    linux = {lk.index: names.linux(lk.name) for lk in links}
    addresses: list[KAddress] = []
    for m in dump.dump("addr"):
        family = family_of(m)
        index = m.field("index")
        ifname = by_index.get(index)
        # A link that appeared after the link dump is seen on the next read.
        if family is not None and ifname is not None:
            ka = address(m, ifname, family)
            if ka.label and names:
                ka = replace(ka, label=names.label(ka.label, linux[index]))
            addresses.append(ka)
    routes: set[KRoute] = set()
    for m in dump.dump("route"):
        family = family_of(m)
        # The header field first: most routes are not ours.
        if family is not None and m.field("proto") == RTPROT_IPMP:
            routes.add(route(m, family, by_index))
    rules: set[KRule] = set()
    for m in dump.dump("rule"):
        family = family_of(m)
        if family is not None and m.num("FRA_PROTOCOL") == RTPROT_IPMP:
            found = rule(m, family)
            if found is not None:
                rules.add(found)
    keys = sysctl_keys([lk.name for lk in links]) if callable(sysctl_keys) else sysctl_keys
    sysctls = tuple((k, v) for k in keys if (v := read_sysctl(names.sysctl_key(k))) is not None)
    state = KernelState(
        links=tuple(links),
        addresses=tuple(addresses),
        routes=frozenset(routes),
        rules=frozenset(rules),
        sysctls=sysctls,
    )
    return state, names


def routers6(dump: Dumper, ifmap: Sequence[MapEntry],
             names: NameMap) -> tuple[tuple[tuple[str, IPv6Address], ...], NameMap]:
    """``Kernel.routers6`` on a dump socket."""
    links, names = _links(dump, ifmap, names)
    by_index = {lk.index: lk.name for lk in links}
    found: dict[tuple[str, IPv6Address], None] = {}
    for m in dump.dump("route", AF_INET6):
        if family_of(m) is not Family.INET6:
            continue
        if m.num("RTA_TABLE", m.field("table")) != RT_TABLE_MAIN:
            continue
        for hop in next_hops6(m, by_index):
            found.setdefault(hop, None)
    return tuple(found), names


def read_state(sysctl_keys: SysctlKeys = (), ifmap: Sequence[MapEntry] = ()) -> tuple[KernelState, NameMap]:
    """``Kernel(ifmap).read(...)`` without an event loop (and without pyroute2).

    Args:
        sysctl_keys: as for ``Kernel.read``, or a function that makes them
            from the view's link names (one dump instead of two).
        ifmap: the entries of ``etc/ipmp/ifmap``.

    Returns:
        The state and the name translation it was read with (``Kernel.names``).
    """
    dump = Dumper()
    try:
        return read(dump, tuple(ifmap), NameMap(), sysctl_keys)
    finally:
        dump.close()
