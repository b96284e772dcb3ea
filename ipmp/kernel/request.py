"""Address, route and rule ops as rtnetlink requests of our own, and the socket that sends them.

These are the writes of a failover's address moves: they are encoded here
(``encode_request``) and sent on a plain NETLINK_ROUTE socket
(``Requester``), not through pyroute2 (see ``Requester`` for why); only link
ops go through pyroute2 (``execute``).

Kernel quirks handled here (each one measured on kernel 6.18):

* An IPv4 route without a gateway must have scope link, as ``ip route add``
  gives it; with scope universe the kernel refuses any later gateway route
  that should resolve through it.  A delete uses scope "nowhere" (any), as
  ``ip route del`` does, because the kernel otherwise matches the scope
  exactly.
* IPv6 has no route metric 0: a route of metric 0 is sent as
  ``IP6_RT_PRIO_USER`` (1024), which ``decode`` reads back as 0.

May import: ``ipmp.model``, ``ipmp.linux.ops``, ``ipmp.kernel.decode``, asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import struct
from typing import Final

from ipmp.kernel.decode import (
    AF,
    FIB_RULE_HDR,
    HOST_PREFIX,
    I32,
    IFA_F_NODAD,
    IFA_F_NOPREFIXROUTE,
    IFADDRMSG,
    INFINITY_LIFE_TIME,
    IP6_RT_PRIO_USER,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSGHDR,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTATTR,
    RTMSG,
    U32,
    asciiz,
    attrs,
)
from ipmp.linux.ops import AddAddress, AddRoute, AddRule, DelAddress, DelRoute, DelRule, Op
from ipmp.model import RTPROT_IPMP, Family, KAddress, KRoute, KRule

__all__ = ["REQUEST_TIMEOUT", "Request", "Requester", "decode_ack", "encode_request", "ifindex"]


def ifindex(name: str) -> int:
    """The ifindex of ``name`` in this namespace: one ioctl, no netlink round trip."""
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        # CPython raises this without an errno.
        raise OSError(errno.ENODEV, f"no link named {name}") from exc


# Message types and flags, from <linux/rtnetlink.h> and <linux/netlink.h>.
_RTM_NEWADDR: Final = 20
_RTM_DELADDR: Final = 21
_RTM_NEWROUTE: Final = 24
_RTM_DELROUTE: Final = 25
_RTM_NEWRULE: Final = 32
_RTM_DELRULE: Final = 33
_NLM_F_EXCL: Final = 0x200
_NLM_F_CREATE: Final = 0x400
#: ``add`` fails when the object exists, ``del`` when it does not: the flags
#: pyroute2 ("create", "req") and ``ip`` send.
_FLAGS_ADD: Final = NLM_F_REQUEST | NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
_FLAGS_DEL: Final = NLM_F_REQUEST | NLM_F_ACK
# Socket options and ack flags (<linux/netlink.h>): the kernel says why a
# request failed (extended ack) and does not echo the request back.
_SOL_NETLINK: Final = 270
_NETLINK_CAP_ACK: Final = 10
_NETLINK_EXT_ACK: Final = 11
_NLM_F_CAPPED: Final = 0x100
_NLM_F_ACK_TLVS: Final = 0x200
_NLMSGERR_ATTR_MSG: Final = 1
# Attribute numbers and values (<linux/if_addr.h>, <linux/rtnetlink.h>, <linux/fib_rules.h>).
_IFA_ADDRESS: Final = 1
_IFA_LOCAL: Final = 2
_IFA_LABEL: Final = 3
_IFA_BROADCAST: Final = 4
_IFA_CACHEINFO: Final = 6
_IFA_FLAGS: Final = 8
_RTA_DST: Final = 1
_RTA_OIF: Final = 4
_RTA_GATEWAY: Final = 5
_RTA_PRIORITY: Final = 6
_RTA_PREFSRC: Final = 7
_RTA_METRICS: Final = 8
_RTA_TABLE: Final = 15
_RTAX_MTU: Final = 2
_FRA_SRC: Final = 2
_FRA_PRIORITY: Final = 6
_FRA_TABLE: Final = 15
_FRA_PROTOCOL: Final = 21
_RTN_UNICAST: Final = 1
_FR_ACT_TO_TBL: Final = 1
_RT_TABLE_COMPAT: Final = 252
# struct ifa_cacheinfo: preferred, valid, cstamp, tstamp.
_CACHEINFO: Final = struct.Struct("=IIII")
#: How long a request waits for its answer at most (s).  rtnetlink answers
#: within the send(2) that carries the request; this only bounds the wait
#: should that ever not hold, so that an apply never hangs the daemon.
REQUEST_TIMEOUT: Final = 5.0
_ACK_SIZE: Final = 1 << 13

#: One rtnetlink request: message type, flags and body (header and attributes).
Request = tuple[int, int, bytes]


def _rta(kind: int, payload: bytes) -> bytes:
    size = RTATTR.size + len(payload)
    return RTATTR.pack(size, kind) + payload + bytes(-size % 4)


def _u32_rta(kind: int, value: int) -> bytes:
    return _rta(kind, U32.pack(value))


def _address_request(a: KAddress, *, add: bool) -> Request:
    """RTM_NEWADDR / RTM_DELADDR, as ``ip addr add`` / ``ip addr del`` send them.

    IFA_LOCAL goes with every IPv4 address (``ip`` adds it; the kernel
    matches a delete on it) and with a point-to-point one; the flags travel
    in IFA_FLAGS (NOPREFIXROUTE does not fit the 8-bit header field).

    127.0.0.0/8 is added with host scope, as Linux gives it whatever adds it
    (the kernel's own 127.0.0.1, ``inet_set_ifa`` for ioctl ifconfig,
    iproute2's default scope).  The kernel refuses a second address of a
    subnet with another scope than the first ("ipv4: Invalid scope value",
    ``__inet_insert_ifa``), so ``lo0 addif 127.0.0.2/8`` needs it.  An IPv6
    address's scope comes from the address itself, and a delete matches
    without one.  The scope is no part of ``KAddress``: it follows from the
    address, so an address read back compares equal to the one added.
    """
    header, _fields = IFADDRMSG
    host = add and a.family is Family.INET and a.address.ip.is_loopback
    scope = RT_SCOPE_HOST if host else RT_SCOPE_UNIVERSE
    body = [header.pack(AF[a.family], a.address.network.prefixlen, 0, scope, ifindex(a.ifname))]
    body.append(_rta(_IFA_ADDRESS, (a.peer if a.peer is not None else a.address.ip).packed))
    if a.peer is not None or a.family is Family.INET:
        body.append(_rta(_IFA_LOCAL, a.address.ip.packed))
    if add:
        flags = IFA_F_NOPREFIXROUTE if a.noprefixroute else 0
        if a.family is Family.INET6:
            # The address is already proven on this link; DAD would leave it
            # tentative (unbindable) for 1-2 s (linux-mapping.md, Q6).
            flags |= IFA_F_NODAD
        if flags:
            body.append(_u32_rta(_IFA_FLAGS, flags))
        if a.family is Family.INET:
            if a.label:
                body.append(_rta(_IFA_LABEL, a.label.encode() + b"\0"))
            if a.broadcast is not None:
                body.append(_rta(_IFA_BROADCAST, a.broadcast.packed))
        if a.deprecated:
            body.append(_rta(_IFA_CACHEINFO, _CACHEINFO.pack(0, INFINITY_LIFE_TIME, 0, 0)))
    return (_RTM_NEWADDR, _FLAGS_ADD, b"".join(body)) if add else (_RTM_DELADDR, _FLAGS_DEL, b"".join(body))


def _route_request(r: KRoute, *, add: bool) -> Request:
    """RTM_NEWROUTE / RTM_DELROUTE, as ``ip route add`` / ``del`` send them (scopes: module docstring)."""
    metric = r.metric
    if r.family is Family.INET6 and metric == 0:
        metric = IP6_RT_PRIO_USER
    if add:
        scope = RT_SCOPE_LINK if r.family is Family.INET and r.gateway is None else RT_SCOPE_UNIVERSE
        kind = _RTN_UNICAST
    else:
        scope, kind = RT_SCOPE_NOWHERE, 0  # a delete matches any scope and type, as ``ip route del``
    # The header's table field is 8 bits: RTA_TABLE carries the real id.
    table = r.table if 0 < r.table < 255 else RT_TABLE_MAIN
    header, _fields = RTMSG
    body = [header.pack(AF[r.family], r.dst.prefixlen, 0, 0, table, RTPROT_IPMP, scope, kind, 0),
            _u32_rta(_RTA_OIF, ifindex(r.dev)), _u32_rta(_RTA_TABLE, r.table),
            _u32_rta(_RTA_PRIORITY, metric)]
    if r.dst.prefixlen:
        body.append(_rta(_RTA_DST, r.dst.network_address.packed))
    if r.gateway is not None:
        body.append(_rta(_RTA_GATEWAY, r.gateway.packed))
    if r.src is not None:
        body.append(_rta(_RTA_PREFSRC, r.src.packed))
    if add and r.mtu:
        body.append(_rta(_RTA_METRICS, _u32_rta(_RTAX_MTU, r.mtu)))
    return (_RTM_NEWROUTE, _FLAGS_ADD, b"".join(body)) if add else (_RTM_DELROUTE, _FLAGS_DEL, b"".join(body))


def _rule_request(r: KRule, *, add: bool) -> Request:
    """RTM_NEWRULE / RTM_DELRULE for ``from <host> lookup <table>``, as ``ip rule`` sends them."""
    header, _fields = FIB_RULE_HDR
    table = r.table if 0 <= r.table <= 255 else _RT_TABLE_COMPAT  # FRA_TABLE has the real id
    body = b"".join((header.pack(AF[r.family], 0, HOST_PREFIX[r.family], 0, table, 0, 0, _FR_ACT_TO_TBL, 0),
                     _u32_rta(_FRA_PRIORITY, r.priority), _rta(_FRA_SRC, r.src.packed),
                     _u32_rta(_FRA_TABLE, r.table), _rta(_FRA_PROTOCOL, bytes((RTPROT_IPMP,)))))
    return (_RTM_NEWRULE, _FLAGS_ADD, body) if add else (_RTM_DELRULE, _FLAGS_DEL, body)


def encode_request(op: Op) -> Request | None:
    """The rtnetlink request of an address, route or rule op; None for the other ops.

    Raises:
        OSError: ENODEV when the op names a link this namespace does not have.
    """
    match op:
        case AddAddress(address=a):
            return _address_request(a, add=True)
        case DelAddress(address=a):
            return _address_request(a, add=False)
        case AddRoute(route=r):
            return _route_request(r, add=True)
        case DelRoute(route=r):
            return _route_request(r, add=False)
        case AddRule(rule=r):
            return _rule_request(r, add=True)
        case DelRule(rule=r):
            return _rule_request(r, add=False)
    return None


def decode_ack(data: bytes, seq: int) -> tuple[int, str] | None:
    """The answer to request ``seq`` in ``data``: (errno, the kernel's reason or ""); None if absent.

    errno 0 is success.  The reason is the extended ack's NLMSGERR_ATTR_MSG,
    found after ``struct nlmsgerr`` (the error and the request's header, or
    the whole request when the kernel did not cap the echo).
    """
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, mtype, flags, mseq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            break
        end = min(offset + length, len(data))
        start = offset + NLMSGHDR.size
        if mseq == seq and mtype == NLMSG_ERROR and start + 4 <= end:
            code = -int(I32.unpack_from(data, start)[0])
            reason = ""
            if code and flags & _NLM_F_ACK_TLVS and start + 4 + NLMSGHDR.size <= end:
                echoed = NLMSGHDR.size if flags & _NLM_F_CAPPED else U32.unpack_from(data, start + 4)[0]
                text = attrs(data, start + 4 + ((echoed + 3) & ~3), end).get(_NLMSGERR_ATTR_MSG)
                if text is not None:
                    reason = asciiz(text)
            return code, reason
        offset += (length + 3) & ~3
    return None


class Requester:
    """A plain NETLINK_ROUTE socket that sends one request at a time and reads its answer.

    pyroute2 spends about 0.3-0.7 ms of Python per request (argument filters,
    message objects, its own event-loop protocol) where the request itself
    takes the kernel microseconds; on an emulated CPU that is tens of
    milliseconds of outage per address move.  The socket joins no multicast
    group, so nothing but answers arrives on it.
    """

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                             socket.NETLINK_ROUTE)
        try:
            for option in (_NETLINK_EXT_ACK, _NETLINK_CAP_ACK):
                with contextlib.suppress(OSError):  # older kernels: no reason, or the request echoed
                    sock.setsockopt(_SOL_NETLINK, option, 1)
            sock.bind((0, 0))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    async def send(self, request: Request) -> None:
        """Send ``request`` and wait for its answer; OSError(errno, reason) if the kernel refused it."""
        kind, flags, body = request
        self._seq = self._seq % 0xFFFFFFFF + 1
        seq = self._seq
        self.sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body)
        while True:
            try:
                data = self.sock.recv(_ACK_SIZE)
            except BlockingIOError:
                data = await self._wait()
            answer = decode_ack(data, seq)
            if answer is None:
                continue  # the late answer of an earlier request that timed out
            code, reason = answer
            if code:
                raise OSError(code, reason or os.strerror(code))
            return

    async def _wait(self) -> bytes:
        try:
            return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, _ACK_SIZE),
                                          REQUEST_TIMEOUT)
        except TimeoutError:
            raise OSError(errno.ETIMEDOUT, "no answer from the kernel") from None


