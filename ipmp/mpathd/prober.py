"""in.mpathd's probe sockets: probes out, replies in as ``ProbeReplied`` events.

One raw ICMP / ICMPv6 socket per NIC and family with a test address
(``icmp.ProbeSocket``), each with its own random id and token key.  A reply
is read where the event loop finds the socket readable, vetted
(``icmp.decode_echo_reply``: a forgery, another socket's probe or someone
else's ping is dropped), and handed to the daemon's one entry (``post``),
which steps the machine for it in its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ipmp.model import Family, IPAddress
from ipmp.mpathd import icmp, transitive
from ipmp.mpathd.linkprobe import LinkProber
from ipmp.mpathd.probe import ProbeKind
from ipmp.mpathd.steps import Event, OpenProbe, ProbeReplied, SendProbe

#: ``ProbeKind`` by value, for the replies (an enum call costs a lookup and an exception).
_PROBE_KINDS: dict[int, ProbeKind] = {int(kind): kind for kind in ProbeKind}

#: All-hosts groups for target discovery (§2.6).
MULTICAST: dict[Family, IPAddress] = {
    Family.INET: IPv4Address("224.0.0.1"),
    Family.INET6: IPv6Address("ff02::1"),
}


def _stamp_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


@dataclass
class _Probe:
    sock: icmp.ProbeSocket
    #: Random id and token key of this socket's probes (``icmp`` says why not illumos's id).
    key: icmp.ProbeKey


class Prober:
    """The open probe sockets, by (NIC, family): ``OpenProbe``, ``CloseProbe`` and ``SendProbe`` done.

    ``post`` is the daemon's one entry for events; ``linux`` gives the
    kernel's own name of a NIC the daemon knows by its Solaris name (the
    socket is bound to that device).
    """

    def __init__(self, post: Callable[[Event], None], log: Callable[[str, str], None],
                 linux: Callable[[str], str]) -> None:
        self.post = post
        self.log = log
        self.linux = linux
        self.probes: dict[tuple[str, Family], _Probe] = {}
        #: Transitive probes (link layer): their sockets follow the groups (``LinkProber.sync``).
        self.link = LinkProber(post, log, linux)

    def open(self, fx: OpenProbe, ifindex: int) -> None:
        self.close(fx.ifname, fx.family)
        if transitive.is_link_address(fx.source):
            return  # an alternate's ledger: its link-layer socket is ``self.link``'s
        try:
            sock = icmp.ProbeSocket(self.linux(fx.ifname), fx.source, ifindex=ifindex or None)
        except OSError as err:
            self.log("err", f"cannot open probe socket on {fx.ifname} ({fx.source}): {err.strerror}")
            return
        # A new id and key per socket, unique among this daemon's sockets: the
        # replies to one socket's probes are never taken for another's.
        probe = _Probe(sock, icmp.new_probe_key({p.key.ident for p in self.probes.values()}))
        self.probes[(fx.ifname, fx.family)] = probe
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, fx.ifname, fx.family, probe)

    def close(self, ifname: str, family: Family) -> None:
        probe = self.probes.pop((ifname, family), None)
        if probe is None:
            return
        with contextlib.suppress(OSError, ValueError, RuntimeError):  # RuntimeError: no running loop
            asyncio.get_running_loop().remove_reader(probe.sock.fileno())
        probe.sock.close()

    def close_all(self) -> None:
        for ifname, family in list(self.probes):
            self.close(ifname, family)
        self.link.close_all()

    def send(self, fx: SendProbe) -> None:
        probe = self.probes.get((fx.ifname, fx.family))
        if probe is None:
            self.link.send(fx)  # no ICMP socket: a transitive probe, or nothing to send from
            return
        target = fx.target if fx.target is not None else MULTICAST[fx.family]
        data = icmp.encode_echo(fx.family, probe.key, fx.seq, _stamp_ms(), int(fx.kind))
        try:
            probe.sock.send(target, data)
        except OSError as err:
            self.log("debug", f"probe send on {fx.ifname} to {target}: {err.strerror}")

    def _on_readable(self, ifname: str, family: Family, probe: _Probe) -> None:
        """Read what the socket holds now (the reader must not stay readable) and post the replies.

        One datagram first: nearly always the only one (one reply per probe),
        and asking the kernel whether another waits costs a system call per
        reply; one left behind keeps the socket readable for the loop's next
        turn.  A datagram that is no reply of ours (a forgery, someone else's
        ping) has the socket drained at once: a flood costs one turn, not
        one per packet.
        """
        now = time.monotonic()
        stamp = int(now * 1000) & 0xFFFFFFFF  # ``_stamp_ms()`` of this instant
        wall_ns = time.time_ns()
        try:
            if self._take(ifname, family, probe, probe.sock.receive(1), now, stamp, wall_ns):
                return
            self._take(ifname, family, probe, probe.sock.receive(), now, stamp, wall_ns)
        except OSError:
            return

    def _take(self, ifname: str, family: Family, probe: _Probe, packets: list[tuple[bytes, IPAddress, int]],
              now: float, stamp: int, wall_ns: int) -> bool:
        """Post the replies among ``packets``; False if any was not one."""
        good = True
        for data, source, arrived_ns in packets:
            # None: another socket's probe, someone else's ping, or a reply
            # without this socket's token (a forgery): ignored alike.
            reply = icmp.decode_echo_reply(family, data, source, key=probe.key)
            if reply is None:
                good = False
                continue
            if isinstance(reply, icmp.BadReply):
                good = False
                self.log("info", reply.message(ifname))
                continue
            kind = _PROBE_KINDS.get(reply.probe_type)  # ``ProbeKind(...)``, without its exception
            if kind is None:
                good = False
                continue
            rtt = (stamp - reply.timestamp_ms) & 0xFFFFFFFF
            if arrived_ns:
                # The time the reply waited in the socket for the loop is not
                # part of its round trip.  The kernel stamps CLOCK_REALTIME: a
                # step of that clock makes the wait negative or too long, so it
                # is bounded by [0, rtt].
                waited = (wall_ns - arrived_ns) // 1_000_000
                rtt -= min(max(waited, 0), rtt)
            self.post(ProbeReplied(now, ifname, family, reply.seq, reply.source, rtt, kind))
        return good
