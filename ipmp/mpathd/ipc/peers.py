"""Who a control client is and what it may ask: ``SO_PEERCRED`` and the privileged commands.

Solaris (§2.11): in.mpathd listened only to peers on a reserved source port
(i.e. root) and refused every command from an unprivileged port, queries
included; libipmp users were all root.  Here authorisation comes from
``SO_PEERCRED``: ``ping`` and ``query`` (and ``subscribe``) for everyone,
``offline`` and ``undo_offline`` for uid 0 only.  Our ``ipmpstat`` runs as
anyone, so queries are open.  A peer whose credentials cannot be read is
uid -1: never root, so its privileged commands are refused.

``authorised`` and ``refusal_line`` are pure; ``peer_of`` asks the kernel.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from ipmp.mpathd.protocol import PRIVILEGED_OPS, Request


@dataclass(frozen=True, slots=True)
class Peer:
    """The client process, from ``SO_PEERCRED`` (-1 when unknown)."""

    pid: int
    uid: int
    gid: int


def authorised(request: Request, peer: Peer) -> bool:
    """Whether ``peer`` may run ``request``: state changes need uid 0, questions do not."""
    return request.op not in PRIVILEGED_OPS or peer.uid == 0


def refusal_line(peer: Peer) -> str:
    """The log line for a refused client.

    Modelled on in.mpathd's ``Attempt to connect from addr %s port %d``, with
    the credentials a Unix socket has in place of address and port:
    ``Attempt to connect from pid %d uid %d``.
    """
    return f"Attempt to connect from pid {peer.pid} uid {peer.uid}"


def is_root(peer: Peer) -> bool:
    """Whether ``peer`` is served even when MAX_UNPRIVILEGED others are (``server``)."""
    return peer.uid == 0


def peer_of(sock: socket.socket) -> Peer:
    """The peer of a connected Unix socket (uid -1 when the kernel does not say)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
    except (OSError, AttributeError, struct.error):
        return Peer(-1, -1, -1)  # unknown: privileged commands are refused
    return Peer(pid, uid, gid)
