"""The in.mpathd control protocol, the daemon's side: authorisation, limits, streams, the server.

Solaris (§2.11): ``if_mpadm``, ``ifconfig`` and libipmp talk to in.mpathd over
TCP on 127.0.0.1:5999, one request per connection, raw C structs; only peers
on a reserved source port (i.e. root) are listened to.  Here a Unix stream
socket open to everyone carries one JSON line each way (the wire format is
``ipmp.mpathd.protocol``), and the peer's credentials decide.  The daemon
closes after its reply, as in.mpathd does, except on a ``subscribe``
stream.  Each module has one job:

* ``peers``: who the client is (``SO_PEERCRED``) and what it may ask;
* ``complaints``: the per-uid budget of the log lines clients cause;
* ``instance``: one daemon per root (the lock file, the stale socket, bind);
* ``broker``: the event streams' fan-out and their slots;
* ``turns``: privileged first, the order in which handlers start;
* ``connection``: one connection, from its request to its last line;
* ``server``: the listening socket, its accept path, and ``serve``.

The codec and the blocking client are ``ipmp.mpathd.protocol`` and
``ipmp.mpathd.control``, which import no asyncio, so that the commands
scripts run in loops do not load the event loop (issue 15, point 7); this
package loads asyncio, and re-exports the names of its own modules that the
daemon, its tests and the bench use.  The codec's names are
``ipmp.mpathd.protocol``'s and the client's ``ipmp.mpathd.control``'s: the
server re-exports neither.
"""

from __future__ import annotations

from ipmp.mpathd.ipc.broker import (
    MAX_SUBSCRIBERS,
    MAX_SUBSCRIBERS_PER_UID,
    MAX_UNPRIVILEGED_SUBSCRIBERS,
    QUEUE_LIMIT,
    Broker,
    SubscribersFull,
    Subscription,
)
from ipmp.mpathd.ipc.complaints import COMPLAINT_BURST, COMPLAINT_INTERVAL, Complaints
from ipmp.mpathd.ipc.connection import (
    MAX_REQUEST,
    READ_TIMEOUT,
    STREAM_IDLE_CHECK,
    STREAM_IDLE_TIMEOUT,
    Handler,
)
from ipmp.mpathd.ipc.instance import DaemonRunning, lock_path
from ipmp.mpathd.ipc.peers import Peer, authorised, refusal_line
from ipmp.mpathd.ipc.server import BACKLOG, MAX_UNPRIVILEGED, TURN_AWAY_LOG_INTERVAL, serve

__all__ = [
    "BACKLOG",
    "COMPLAINT_BURST",
    "COMPLAINT_INTERVAL",
    "MAX_REQUEST",
    "MAX_SUBSCRIBERS",
    "MAX_SUBSCRIBERS_PER_UID",
    "MAX_UNPRIVILEGED",
    "MAX_UNPRIVILEGED_SUBSCRIBERS",
    "QUEUE_LIMIT",
    "READ_TIMEOUT",
    "STREAM_IDLE_CHECK",
    "STREAM_IDLE_TIMEOUT",
    "TURN_AWAY_LOG_INTERVAL",
    "Broker",
    "Complaints",
    "DaemonRunning",
    "Handler",
    "Peer",
    "SubscribersFull",
    "Subscription",
    "authorised",
    "lock_path",
    "refusal_line",
    "serve",
]
