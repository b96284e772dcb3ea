"""Privileged first: the order in which the control server's request handlers may start.

The handlers of unprivileged requests run one at a time, in the order their
requests were read, and none starts while a root connection waits for its
answer (from its accept until its handler has answered); in a batch of
accepts root's connections are set up first (``ipmp.mpathd.ipc.server``).
The loop is cooperative, so root waits for at most the one unprivileged
handler already running, however many were queued before it: a flood of
local users' queries cannot keep if_mpadm from the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable


class Turns:
    """The turns of the handlers (see the module text).

    ``root_arrived`` counts a root connection as waiting (its returned
    release, idempotent, ends that); ``unprivileged`` admits one
    unprivileged handler at a time, in the order asked, and none while a
    root connection waits.

    A turn is given at the end of a loop iteration (a timer due at once
    runs after the iteration's I/O callbacks), never straight away: a root
    connection accepted in that iteration is counted before the next
    unprivileged handler may start, and a batch of requests read in one
    iteration does not run its handlers back to back in it.
    """

    def __init__(self) -> None:
        self._root = 0
        self._running = False
        self._granting = False
        self._queue: deque[asyncio.Future[None]] = deque()

    def root_arrived(self) -> Callable[[], None]:
        self._root += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._root -= 1
                self._next()

        return release

    @contextlib.asynccontextmanager
    async def unprivileged(self) -> AsyncIterator[None]:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        self._next()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._done()  # granted, then cancelled before it could start
            raise
        try:
            yield
        finally:
            self._done()

    def _done(self) -> None:
        self._running = False
        self._next()

    def _next(self) -> None:
        if not self._granting and not self._running and not self._root and self._queue:
            self._granting = True
            asyncio.get_running_loop().call_later(0, self._grant)

    def _grant(self) -> None:
        self._granting = False
        while not self._running and not self._root and self._queue:
            turn = self._queue.popleft()
            if not turn.done():  # else its task was cancelled while waiting
                self._running = True
                turn.set_result(None)


def no_release() -> None:
    """The release of a connection that was never counted as root's."""
