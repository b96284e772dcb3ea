"""Carry plan operations out: ``Kernel``, one rtnetlink request per op, in the current namespace.

It talks to the network namespace of the current process; callers that need
another namespace run the whole process in it (``ip netns exec``).  pyroute2
is never given ``netns=``: that forks a helper per socket (13 ms against
2.4 ms, linux-mapping.md Q2).

Address, route and rule ops are requests of our own (``ipmp.kernel.request``)
and sysctls plain procfs writes (``ipmp.kernel.sysctl``); only link ops go
through pyroute2, which is imported when a ``Kernel`` first writes a link.
Everything pyroute2 hands back is untyped; it is turned into ``ipmp.model``
values or an ``ApplyError`` right here, so no ``Any`` leaves this module.

Solaris names (``ipmp.host.ifmap``): a ``Kernel`` given the map's entries reads
every mapped link under its Solaris name (``ipmp.kernel.read``), and
``execute`` turns each op back into Linux names (sysctl paths and ``/sys``
know no altname).

May import: ``ipmp.model``, ``ipmp.linux.ops``, ``ipmp.errors``, ``ipmp.host.ifmap``,
``ipmp.kernel.*``, pyroute2 (deferred).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv6Address
from types import TracebackType
from typing import Any

from ipmp.errors import ApplyError
from ipmp.host.ifmap import MapEntry, NameMap
from ipmp.kernel.decode import IFF_NOARP, IFF_UP
from ipmp.kernel.read import Dumper, linux_links, read, routers6
from ipmp.kernel.request import Requester, encode_request, ifindex
from ipmp.kernel.sysctl import write_sysctl
from ipmp.linux.ops import Op, SetLink, SetSysctl, command
from ipmp.model import KernelState, KLink

__all__ = ["Done", "Kernel"]

#: Called with the position of each op of a plan once it succeeded.
Done = Callable[[int], None]


def _link_args(op: SetLink) -> dict[str, object]:
    """A link op as pyroute2's keyword arguments for ``link("set", ...)``."""
    flags = change = 0
    for value, bit in ((op.up, IFF_UP), (op.noarp, IFF_NOARP)):
        if value is not None:
            change |= bit
            flags |= bit if value else 0
    args: dict[str, object] = {"index": ifindex(op.name), "flags": flags, "change": change}
    if op.mtu is not None:
        args["mtu"] = op.mtu
    if op.mac is not None:
        args["address"] = op.mac
    if op.token is not None:
        # ``ip token set``: IFLA_INET6_TOKEN in the link's AF_INET6 nest
        # (the kernel keeps its low 64 bits, ``inet6_set_iftoken``).
        args["IFLA_AF_SPEC"] = {"attrs": [["AF_INET6", {"attrs": [["IFLA_INET6_TOKEN", str(op.token)]]}]]}
    return args


def _failure(op: Op, code: int, detail: str = "") -> ApplyError:
    reason = os.strerror(code) if code else "failed"
    if detail and detail != reason:
        reason = f"{reason} ({detail})"
    return ApplyError(f"{command(op)}: {reason}", op=op, errno_=code)


class Kernel:
    """One rtnetlink request socket in the current network namespace.

    Use as ``async with Kernel() as kernel:``.  Requests go one at a time;
    the socket joins no multicast group, so no events pile up in it
    (listening for events is the daemon's business, on its own socket).

    ``ifmap``: the entries of ``etc/ipmp/ifmap``; each read checks them
    against the links and names the mapped ones by their Solaris names
    (``names`` is that translation), and ``execute`` translates back.
    """

    def __init__(self, ifmap: Sequence[MapEntry] = ()) -> None:
        self._ipr: Any = None
        self._dumper: Dumper | None = None
        self._requester: Requester | None = None
        self._ifmap = tuple(ifmap)
        #: The translation of the last read (``ifmap`` checked against its links).
        self.names = NameMap()

    async def __aenter__(self) -> Kernel:
        self._dumper = Dumper()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ipr, self._ipr = self._ipr, None
        dumper, self._dumper = self._dumper, None
        requester, self._requester = self._requester, None
        if dumper is not None:
            dumper.close()
        if requester is not None:
            requester.close()
        if ipr is not None:
            ipr.close()

    def _requests(self) -> Requester:
        """The socket for address, route and rule requests, opened on first use."""
        if self._dumper is None:
            raise RuntimeError("Kernel used outside 'async with'")
        if self._requester is None:
            self._requester = Requester()
        return self._requester

    @property
    def _sock(self) -> Any:
        """The pyroute2 socket for link writes, opened (and pyroute2 imported) on first use."""
        if self._dumper is None:
            raise RuntimeError("Kernel used outside 'async with'")
        if self._ipr is None:
            # Deferred: importing pyroute2 takes about 0.2 s, and a Kernel that
            # writes no link (an address move) must not pay it.
            from pyroute2 import AsyncIPRoute

            # ext_ack: the kernel then says *why* (e.g. "Nexthop has invalid
            # gateway"), and the reason goes into ApplyError's message.
            self._ipr = AsyncIPRoute(groups=0, ext_ack=True)
        return self._ipr

    async def prepare_writes(self) -> None:
        """Open the write sockets now rather than at the first ``execute``.

        For the daemon: importing pyroute2 (link ops) takes about 0.2 s and
        its first request another millisecond, which a failover must not
        wait for.  The request is a read of the loopback link (index 1 in
        every namespace); its failure only means the first write pays instead.
        """
        from pyroute2 import NetlinkError  # deferred: see ``_sock``

        self._requests()
        with contextlib.suppress(NetlinkError, OSError):
            await self._sock.link("get", index=1)

    @property
    def _dump(self) -> Dumper:
        if self._dumper is None:
            raise RuntimeError("Kernel used outside 'async with'")
        return self._dumper

    async def read(self, sysctl_keys: Iterable[str] = ()) -> KernelState:
        """Read links, addresses, the toolkit's routes and rules, and sysctls.

        Args:
            sysctl_keys: paths below ``/proc/sys`` with ``/`` separators
                (``net/ipv4/conf/nic0/rp_filter``); a key the kernel does not
                have is left out of the result.

        Returns:
            Links by index; addresses in kernel order (per link, the primary
            IPv4 address first); routes in every table and rules of both
            families whose protocol is ``RTPROT_IPMP``.
        """
        state, self.names = read(self._dump, self._ifmap, self.names, sysctl_keys)
        return state

    async def routers6(self) -> tuple[tuple[str, IPv6Address], ...]:
        """The IPv6 routers of the main routing table, for in.mpathd's probe targets.

        Solaris reads the whole routing table and takes the next hop of every
        route that has one; for IPv6 the target goes to the phyint of the
        route's outgoing interface (solaris-ipmp.md §2.6).  On Linux those are
        the routes the kernel learnt from router advertisements and static
        ones (``ip -6 route add default via fe80::1 dev nic0``), whatever
        their protocol; ``read`` returns only the toolkit's own.  Only
        link-local next hops count: an IPv6 test address is link-local and a
        target must be in its subnet (§2.3).

        Returns:
            ``(interface, next hop)`` pairs without repeats, in table order.
        """
        found, self.names = routers6(self._dump, self._ifmap, self.names)
        return found

    async def execute(self, ops: Sequence[Op], *, done: Done | None = None) -> None:
        """Carry out ``ops`` in order, one kernel request each.

        Args:
            ops: the plan.
            done: called with the position of each op once it succeeded.

        Raises:
            ApplyError: on the first op that fails, naming it as an ``ip``
                command with the kernel's reason.  The ops before it stay
                done; reverting them is the caller's job.
        """
        for i, op in enumerate(ops):
            # The kernel's names: sysctl paths know no altname.
            op = self.names.op(op)
            try:
                await self._execute_one(op)
            except OSError as exc:
                raise _failure(op, exc.errno or 0, exc.strerror or "") from exc
            except ValueError as exc:
                # pyroute2 or the key check refused a value before anything
                # reached the kernel: a failed op like any other.
                raise _failure(op, errno.EINVAL, str(exc)) from exc
            if done is not None:
                done(i)

    async def linux_links(self) -> list[KLink]:
        """Every link by index under its Linux name, with its altnames as the kernel has them."""
        return linux_links(self._dump)

    async def add_altname(self, ifname: str, altname: str) -> None:
        """``ip link property add dev IFNAME altname ALTNAME``; raises ``ApplyError``."""
        from pyroute2 import NetlinkError  # deferred: see ``_sock``

        what = shlex.join(["ip", "link", "property", "add", "dev", ifname, "altname", altname])
        try:
            await self._sock.link("property_add", index=ifindex(ifname), altname=[altname])
        except NetlinkError as exc:
            detail = str(exc.args[1]) if len(exc.args) > 1 and exc.args[1] else ""
            reason = os.strerror(int(exc.code))
            raise ApplyError(f"{what}: {reason}" + (f" ({detail})" if detail and detail != reason else ""),
                             errno_=int(exc.code)) from exc
        except OSError as exc:
            raise ApplyError(f"{what}: {exc.strerror or 'failed'}", errno_=exc.errno or 0) from exc

    async def _execute_one(self, op: Op) -> None:
        """One op; OSError(errno, the kernel's reason) if the kernel refused it."""
        request = encode_request(op)
        if request is not None:
            await self._requests().send(request)
            return
        match op:
            case SetSysctl(key=key, value=value):
                write_sysctl(key, value)
            case SetLink():
                from pyroute2 import NetlinkError  # deferred: see ``_sock``

                try:
                    await self._sock.link("set", **_link_args(op))
                except NetlinkError as exc:
                    detail = str(exc.args[1]) if len(exc.args) > 1 and exc.args[1] else ""
                    code = int(exc.code)
                    raise OSError(code, detail or os.strerror(code)) from exc
