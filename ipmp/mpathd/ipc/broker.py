"""The event streams' fan-out: ``Broker`` publishes, each ``Subscription`` queues for one client.

Streams (our addition; Solaris published the same facts as sysevents, §2.11):
``{"v": 1, "op": "subscribe", "topic": "probes"}`` (or ``"events"``) is
answered with an ordinary reply, and then the connection stays open and the
daemon writes one event line per published event until the client closes::

    {"v": 1, "topic": "probes", "event": "probe", "interface": "hme0", ...}

``subscribe`` is open to everyone, like ``query``.  A subscriber gets a
bounded queue (QUEUE_LIMIT lines); one that falls that far behind, or does
not take a line within WRITE_TIMEOUT seconds, is dropped (after an
``{"event": "overflow"}`` line when the queue is what overflowed).

Stream slots: at most MAX_SUBSCRIBERS streams are served at once, of which
non-root users together hold at most MAX_UNPRIVILEGED_SUBSCRIBERS and one
uid at most MAX_SUBSCRIBERS_PER_UID per topic; the others are root's, so
root is never refused while it holds fewer than MAX_SUBSCRIBERS -
MAX_UNPRIVILEGED_SUBSCRIBERS.  One more is refused with MPATHD_SYS_ERROR /
EAGAIN, without a log line.

``Broker`` is the publishing side (the server writes the lines out:
``ipmp.mpathd.ipc.connection``), ``ipmp.mpathd.control.subscribe`` the
blocking client.  Every other op keeps one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from ipmp.mpathd.protocol import TOPICS, IpcError, encode_event

#: Event lines queued for one subscriber before it is dropped as too slow.
QUEUE_LIMIT: Final = 1024
#: Streams served at once (the socket is world-writable: bound the cost).
MAX_SUBSCRIBERS: Final = 32
#: Of these, the most non-root users may hold together: the rest are root's
#: alone, so that no local user can take the streams root's tools need.
MAX_UNPRIVILEGED_SUBSCRIBERS: Final = 16
#: Streams of one topic one non-root uid may hold (a pid is cheap to change,
#: a uid is not): a user cannot take every unprivileged slot either.
MAX_SUBSCRIBERS_PER_UID: Final = 2


class SubscribersFull(IpcError, RuntimeError):
    """No stream slot is left for the peer (see ``Broker.subscribe``)."""


class Subscription:
    """One subscriber's queue of encoded event lines (bounded; see ``Broker``)."""

    def __init__(self, broker: Broker, topic: str, limit: int, *, uid: int = 0,
                 privileged: bool = True) -> None:
        self.topic = topic
        #: Whose slot this is (``Broker.subscribe``).
        self.uid = uid
        self.privileged = privileged
        self.closed = False
        #: Set when the queue overflowed: the subscriber was too slow.
        self.overflowed = False
        self._broker = broker
        #: The most lines queued before the subscriber counts as too slow.
        self.limit = limit
        self._lines: deque[bytes] = deque()
        self._wake = asyncio.Event()

    def push(self, line: bytes) -> None:
        """Queue a line; a full queue closes the subscription instead."""
        if self.closed:
            return
        if len(self._lines) >= self.limit:
            self.overflowed = True
            self._lines.clear()
            self.close()
            return
        self._lines.append(line)
        self._wake.set()

    async def get(self) -> bytes | None:
        """The next line; None once closed and drained."""
        while not self._lines:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        return self._lines.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._broker._discard(self)
        self._wake.set()

    def __len__(self) -> int:
        return len(self._lines)


class Broker:
    """Fan-out of published events to the subscribers of each topic.

    ``publish`` never blocks and never fails on a subscriber's account: a
    subscriber whose queue holds ``queue_limit`` lines is closed (its
    ``overflowed`` set).  ``on_subscribe(topic)`` runs as a subscriber is
    added, before anything is published to it: the publisher takes its
    baseline there, so that the first events are changes from then on.
    Slots: ``max_subscribers`` in all, of which unprivileged subscribers
    hold at most ``max_unprivileged``, one uid at most ``per_uid`` per topic.
    Pure asyncio, no I/O: the server writes the lines out.
    """

    def __init__(self, *, max_subscribers: int = MAX_SUBSCRIBERS,
                 max_unprivileged: int = MAX_UNPRIVILEGED_SUBSCRIBERS, per_uid: int = MAX_SUBSCRIBERS_PER_UID,
                 queue_limit: int = QUEUE_LIMIT, on_subscribe: Callable[[str], None] | None = None) -> None:
        self.max_subscribers = max_subscribers
        self.max_unprivileged = min(max_unprivileged, max_subscribers)
        self.per_uid = per_uid
        self.queue_limit = queue_limit
        self.on_subscribe = on_subscribe
        self._subs: dict[str, list[Subscription]] = {topic: [] for topic in TOPICS}

    def subscribers(self, topic: str) -> int:
        return len(self._subs.get(topic, ()))

    def subscribe(self, topic: str, *, uid: int = 0, privileged: bool = True) -> Subscription:
        """A new subscription to ``topic`` (one of TOPICS) for a peer of ``uid``.

        A privileged peer (root) is refused only when every slot is taken,
        which unprivileged ones alone cannot do.

        Raises:
            SubscribersFull: no slot left for this peer.
            ValueError: an unknown topic.
        """
        if topic not in self._subs:
            raise ValueError(f"unknown topic {topic!r}")
        everyone = [sub for subs in self._subs.values() for sub in subs]
        if len(everyone) >= self.max_subscribers:
            raise SubscribersFull(f"{self.max_subscribers} streams are open already")
        if not privileged:
            if sum(1 for sub in everyone if not sub.privileged) >= self.max_unprivileged:
                raise SubscribersFull(f"{self.max_unprivileged} unprivileged streams are open already")
            if sum(1 for sub in self._subs[topic] if not sub.privileged and sub.uid == uid) >= self.per_uid:
                raise SubscribersFull(f"uid {uid} holds {self.per_uid} {topic} streams already")
        sub = Subscription(self, topic, self.queue_limit, uid=uid, privileged=privileged)
        self._subs[topic].append(sub)
        if self.on_subscribe is not None:
            self.on_subscribe(topic)
        return sub

    def publish(self, topic: str, doc: Mapping[str, Any]) -> None:
        """Queue ``doc`` (an event object with at least ``"event"``) for every subscriber of ``topic``.

        Raises:
            TypeError, ValueError: ``doc`` is not JSON-serialisable.
        """
        subs = self._subs.get(topic)
        if not subs:
            return
        line = encode_event(topic, doc)
        for sub in list(subs):
            sub.push(line)

    def close(self) -> None:
        """End every subscription (the daemon is stopping)."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()

    def _discard(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs[sub.topic].remove(sub)

