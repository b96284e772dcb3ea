"""The per-uid budget of the log lines a control client's own requests cause.

Complaints: the log lines a client's own request causes (a malformed
request, a refused command, a reply it did not take, a handler that failed
on it) are rate-limited per uid, not per connection or pid, which cost
nothing to change: COMPLAINT_BURST lines per COMPLAINT_INTERVAL seconds,
then the rest are counted and logged as one line when the interval ends.
journald drops a service's lines past its rate limit (RateLimitBurst=10000
per RateLimitIntervalSec=30s by default), "NIC failure detected" included,
so a local user must not be able to spend that budget: 10,000 bad requests
from one user make at most COMPLAINT_BURST + 1 lines a minute.  Root has a
bucket of its own under the same bound: root could stop the daemon anyway,
but a root script looping on a bad request must not push failover lines
out either, and no user's flood can hide root's complaints.

``Complaints`` is the pure budget (``now`` is passed in); ``Complainer``
runs it on the event loop's clock and logs through the ``log`` callable it
is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ipmp.mpathd.ipc.peers import Peer

#: Complaint lines (see the module text) logged per uid per COMPLAINT_INTERVAL
#: seconds; the rest are counted into one line at the end of the interval.
COMPLAINT_BURST: Final = 5
COMPLAINT_INTERVAL: Final = 60.0


@dataclass(slots=True)
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


class Complaints:
    """The per-uid budget of complaint lines (see the module text).  Pure: ``now`` is passed in.

    A uid's window opens with its first complaint and lasts ``interval``
    seconds; in it ``burst`` lines are logged and the rest counted.  Each
    call returns the lines to log now: ``complain`` the complaint itself,
    or nothing, after the count of an earlier window not reported yet;
    ``due`` the counts of the windows that have ended (the caller calls it
    at ``next_due``), ``flush`` every count still held (at exit).
    """

    def __init__(self, *, burst: int = COMPLAINT_BURST, interval: float = COMPLAINT_INTERVAL) -> None:
        self.burst = burst
        self.interval = interval
        self._windows: dict[int, _Window] = {}

    @staticmethod
    def summary(uid: int, count: int) -> str:
        return f"{count} more complaints from uid {uid} suppressed"

    def complain(self, uid: int, line: str, now: float) -> list[str]:
        out: list[str] = []
        window = self._windows.get(uid)
        if window is not None and now >= window.start + self.interval:
            if window.suppressed:
                out.append(self.summary(uid, window.suppressed))
            window = None
        if window is None:
            if len(self._windows) >= 64:
                # Forget the quiet uids whose windows are over: the table
                # holds the uids heard from in the last interval, no more.
                self._windows = {u: w for u, w in self._windows.items()
                                 if w.suppressed or now < w.start + self.interval}
            window = self._windows[uid] = _Window(now)
        if window.logged < self.burst:
            window.logged += 1
            out.append(line)
        else:
            window.suppressed += 1
        return out

    def next_due(self) -> float | None:
        """When the first window with complaints held back ends."""
        ends = [w.start + self.interval for w in self._windows.values() if w.suppressed]
        return min(ends) if ends else None

    def due(self, now: float) -> list[str]:
        """The counts of the windows that have ended; those windows are forgotten."""
        out: list[str] = []
        for uid, window in list(self._windows.items()):
            if now >= window.start + self.interval:
                if window.suppressed:
                    out.append(self.summary(uid, window.suppressed))
                del self._windows[uid]
        return out

    def flush(self) -> list[str]:
        """Every count held back, whatever its window; everything is forgotten."""
        out = [self.summary(uid, w.suppressed) for uid, w in self._windows.items() if w.suppressed]
        self._windows = {}
        return out


class Complainer:
    """``Complaints`` on the event loop's clock, logging through ``log``, with a timer for the counts."""

    def __init__(self, log: Callable[[str], None], limits: Complaints | None = None) -> None:
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._limits = limits if limits is not None else Complaints()
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, peer: Peer, line: str) -> None:
        for text in self._limits.complain(peer.uid, line, self._loop.time()):
            self._log(text)
        self._arm()

    def _arm(self) -> None:
        at = self._limits.next_due()
        if at is not None and self._timer is None:
            # Windows open in time order: none can end before this one.
            self._timer = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        for text in self._limits.due(self._loop.time()):
            self._log(text)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for text in self._limits.flush():
            self._log(text)

