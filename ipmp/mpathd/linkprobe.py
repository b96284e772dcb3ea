"""Transitive probes on the wire: one AF_PACKET socket per NIC of a group that probes transitively.

The socket is bound to the NIC and to our EtherType only (``transitive``:
0x88B5), non-blocking, read where the daemon's loop finds it readable, like
the ICMP sockets of ``prober``.  Each one does two jobs:

* an alternate's ``SendProbe`` to a link address goes out as a request to
  that member's MAC; a reply that carries this socket's random token, comes
  from that member's MAC and names it as the sender is posted as a
  ``ProbeReplied`` for the alternate's ledger (IPv4 instance);
* a request from another member of the same group, to this NIC's MAC, is
  answered at once.  Frames from a MAC outside the group, to another MAC,
  or that are not ours are dropped unread (no reflector for strangers), and
  the answers are rate-limited (``REPLY_BURST`` per second), so a flood
  with forged source MACs costs little and stalls nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ipmp.model import Family
from ipmp.mpathd import transitive
from ipmp.mpathd.probe import ProbeKind
from ipmp.mpathd.steps import Event, ProbeReplied, SendProbe

#: At most this many frames read per readable turn (the rest wait for the next turn).
READ_BATCH = 64
#: Answers per second and socket: a member sends one request per probe interval.
REPLY_BURST = 200
_PACKET_HOST = 0  # linux/if_packet.h: a frame addressed to this NIC


def _stamp_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


@dataclass
class _Link:
    sock: socket.socket
    ifindex: int
    mac: bytes
    #: The other members' MAC -> ifindex: the only frames taken or answered.
    peers: dict[bytes, int]
    token: bytes = field(default_factory=lambda: os.urandom(transitive.TOKEN_LEN))
    #: ``peers`` the other way (ifindex -> MAC): each probe sent looks its destination up here.
    macs: dict[int, bytes] = field(init=False)
    window: float = 0.0
    answered: int = 0

    def __post_init__(self) -> None:
        self.set_peers(self.peers)

    def set_peers(self, peers: dict[bytes, int]) -> None:
        self.peers = peers
        self.macs = {index: mac for mac, index in peers.items()}


class LinkProber:
    """The link-layer sockets by NIC (Solaris name); ``sync`` keeps them to the groups' members."""

    def __init__(self, post: Callable[[Event], None], log: Callable[[str, str], None],
                 linux: Callable[[str], str]) -> None:
        self.post = post
        self.log = log
        self.linux = linux
        self.links: dict[str, _Link] = {}

    def sync(self, members: dict[str, tuple[int, bytes, dict[bytes, int]]]) -> None:
        """Open a socket on each NIC of ``members`` (``transitive.members``), close the others."""
        for name in [n for n in self.links if n not in members]:
            self.close(name)
        for name, (ifindex, mac, peers) in members.items():
            link = self.links.get(name)
            if link is not None and link.ifindex == ifindex and link.mac == mac:
                link.set_peers(peers)
                continue
            self.close(name)
            self._open(name, ifindex, mac, peers)

    def _open(self, name: str, ifindex: int, mac: bytes, peers: dict[bytes, int]) -> None:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(transitive.ETHERTYPE))
        except OSError as err:
            self.log("err", f"cannot open transitive probe socket on {name}: {err.strerror}")
            return
        try:
            sock.setblocking(False)
            sock.bind((self.linux(name), transitive.ETHERTYPE))
        except OSError as err:
            sock.close()
            self.log("err", f"cannot open transitive probe socket on {name}: {err.strerror}")
            return
        link = _Link(sock, ifindex, mac, peers)
        self.links[name] = link
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, name, link)

    def close(self, name: str) -> None:
        link = self.links.pop(name, None)
        if link is None:
            return
        with contextlib.suppress(OSError, ValueError, RuntimeError):  # RuntimeError: no running loop
            asyncio.get_running_loop().remove_reader(link.sock.fileno())
        link.sock.close()

    def close_all(self) -> None:
        for name in list(self.links):
            self.close(name)

    def send(self, fx: SendProbe) -> None:
        """A transitive probe of the alternate ``fx.ifname`` to the member ``fx.target`` names."""
        link = self.links.get(fx.ifname)
        if link is None or not transitive.is_link_address(fx.target):
            return
        assert fx.target is not None
        target = transitive.link_ifindex(fx.target)
        dst = link.macs.get(target)
        if dst is None:
            return
        frame = transitive.Frame(dst, link.mac, transitive.FrameKind.REQUEST, fx.seq, link.ifindex, target,
                                 _stamp_ms(), link.token)
        try:
            link.sock.send(transitive.encode_frame(frame))
        except OSError as err:
            self.log("debug", f"transitive probe send on {fx.ifname}: {err.strerror}")

    def _on_readable(self, name: str, link: _Link) -> None:
        now = time.monotonic()
        for _ in range(READ_BATCH):
            try:
                data, address = link.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if address[2] != _PACKET_HOST:
                continue
            frame = transitive.decode_frame(data)
            if frame is None or frame.dst != link.mac or frame.target != link.ifindex:
                continue  # not ours, or not for this NIC
            sender = link.peers.get(frame.src)
            if sender is None or sender != frame.sender:
                continue  # from outside the group: never answered, never believed
            if frame.kind is transitive.FrameKind.REQUEST:
                self._answer(link, frame, now)
            elif frame.token == link.token:
                rtt = (_stamp_ms() - frame.stamp) & 0xFFFFFFFF
                self.post(ProbeReplied(now, name, Family.INET, frame.seq, transitive.link_address(sender),
                                       rtt, ProbeKind.UNICAST))

    def _answer(self, link: _Link, frame: transitive.Frame, now: float) -> None:
        if now - link.window >= 1.0:
            link.window, link.answered = now, 0
        if link.answered >= REPLY_BURST:
            return
        link.answered += 1
        reply = transitive.Frame(frame.src, link.mac, transitive.FrameKind.REPLY, frame.seq, link.ifindex,
                                 frame.sender, frame.stamp, frame.token)
        with contextlib.suppress(OSError):
            link.sock.send(transitive.encode_frame(reply))
