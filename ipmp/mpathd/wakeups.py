"""When in.mpathd's loop wakes and what it does then: the machine's deadline, polls, rescans, the watchdog.

The loop has one timer, armed (``_arm``) when the inbox is empty for the
earliest of the machine's deadline (with a slack) and the runtime's own
work: the carrier poll of NICs whose netlink events the kernel may batch,
the state store poll, a rescan put off, systemd's watchdog.  When it fires it
posts ``Due`` to the one entry, which does that work in its turn.  The
other ``Chore`` items are the signals' (``Stop``, ``Report``).

A part of ``Runtime`` (``ipmp.mpathd.runtime``), which owns the inbox.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from ipmp.host import sdnotify
from ipmp.mpathd.keeper import STORE_POLL_INTERVAL
from ipmp.mpathd.kernelpath import POLL_INTERVAL, KernelPath
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import FDT_DIVISOR
from ipmp.mpathd.steps import Event, Tick

#: WATCHDOG=1 is sent this many times per systemd watchdog period
#: (sd_watchdog_enabled(3) advises at least twice; a slow machine gets slack).
WATCHDOG_FEEDS_PER_PERIOD = 4
#: How late the loop may wake for the machine's deadline, as a fraction of
#: the probe interval and at most TIMER_SLACK_MAX (s): deadlines that close
#: together are met by one wake-up and one Tick (probes go out at random
#: points of their intervals anyway; a loss is judged that much after its
#: wait at most).  in.mpathd's own timer counts whole milliseconds.  With
#: 64 NICs at FDT 1 s (320+ probes a second) a 10 ms cap halves the wake-ups
#: of a 2 ms one, and the replies of the probes sent together are read in
#: one turn of the loop too (bench ``scale``); below FDT 320 ms the divisor
#: decides, as before.
TIMER_SLACK_DIVISOR = 16
TIMER_SLACK_MAX = 0.010


class Chore:
    """What the one entry takes besides the machine's events: the runtime's own work."""


class Due(Chore):
    """The clock: the loop's timer fired; do what is due now (polls, a rescan, the machine's deadline)."""


class Stop(Chore):
    """SIGTERM, SIGINT, SIGQUIT, SIGHUP (then re-executed), or adopt mode with nothing to track."""


class Report(Chore):
    """SIGUSR1: log the tables and the probe statistics (§2.10)."""


class Turn(Chore):
    """After ``Due``'s polls and what they found: a rescan if one is wanted, else a ``Tick`` if due."""


DUE, STOP, REPORT, TURN = Due(), Stop(), Report(), Turn()

#: What the one entry takes: the machine's events and the runtime's own.
Item = Event | Chore


def _now() -> float:
    return time.monotonic()


class Clock(KernelPath):
    """The loop's timer and the work it brings: the part of ``Runtime`` that keeps time."""

    _inbox: deque[Item]

    def __init__(self, machine: Machine) -> None:
        super().__init__()
        self.machine = machine
        # The loop's one timer, moved only when the time it should fire changes.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        # When the polls (carriers, the store) are next due; the earlier of
        # the two (with a rescan put off and the watchdog), as last armed.
        self._next_poll = self._next_store = 0.0
        self._polls_due = 0.0
        interval = machine.settings.failure_detection_time_ms // FDT_DIVISOR / 1000.0
        self._slack = min(TIMER_SLACK_MAX, interval / TIMER_SLACK_DIVISOR)
        # systemd's watchdog (WatchdogSec=): fed by the entry when the clock
        # is taken (``Due``), so that a loop stuck anywhere (a blocking call,
        # a job whose await never ends) stops feeding it and systemd restarts
        # the daemon.
        period = sdnotify.watchdog_period()
        self._watchdog_every = period / WATCHDOG_FEEDS_PER_PERIOD if period else None
        self._watchdog_next = 0.0

    # What the runtime gives this part.

    def post(self, item: Item) -> None:
        raise NotImplementedError

    def _take(self, item: Item) -> bool:
        raise NotImplementedError

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        raise NotImplementedError

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.post(DUE)

    def _on_due(self) -> None:
        """The clock's work: the watchdog, the polls if due, then (``Turn``) a rescan or a Tick.

        The polls' news goes on the front of the inbox: a carrier loss read
        now is stepped before anything else.  The ``Turn`` goes on the back:
        its Tick judges the probes at *now*, so every reply that came in
        before now is stepped first.  Replies wait on the inbox while a job
        (an apply, a rescan) runs; judged ahead of them, their probes would
        count as lost on every NIC at once — a group failure made by the
        daemon's own delay, not by the network.
        """
        now = _now()
        follow: list[Item] = []
        if self._watchdog_every is not None and now >= self._watchdog_next:
            self._watchdog_next = now + self._watchdog_every
            sdnotify.notify("WATCHDOG=1")
        if now >= self._polls_due:
            inbox, self._inbox = self._inbox, deque()  # what the carriers poll posts lands here
            try:
                polled = self._polled()
                if polled and now >= self._next_poll:
                    self._next_poll = now + POLL_INTERVAL
                    self._poll_carriers(now, polled)
                if now >= self._next_store:
                    self._next_store = now + STORE_POLL_INTERVAL
                    self.keeper.flush()
                    self._poll_store()
            finally:
                follow.extend(self._inbox)
                self._inbox = inbox
            self._polls_due = self._polls_at()
        self._inbox.extendleft(reversed(follow))
        self._inbox.append(TURN)

    def _on_clock(self) -> bool:
        now = _now()
        rescan = self.machine.next_rescan
        if now >= self._resync_not_before and (self._resync_wanted or (rescan is not None and now >= rescan)):
            self._resync_wanted = False
            self._start(self._rescan())
            return True
        deadline = self.machine.next_deadline()
        if deadline is not None and now >= deadline:
            return self._take(Tick(now))
        return False

    async def _rescan(self) -> None:
        await self._resync()
        # What a rescan leaves due (a Tick it put off, a rescan put off again) is looked at once
        # what came in during the rescan (probe replies among it) has been stepped (``_on_due``).
        self._polls_due = self._polls_at()
        self._inbox.append(TURN)

    def _poll_store(self) -> None:
        if self.keeper.poll():
            # ifconfig or ipmp-boot changed the store (a group, a flag, an address).
            self._resync_wanted = True

    def _polls_at(self) -> float:
        """When the clock's own work is next due: polls, a rescan put off, the watchdog."""
        due = min(self._next_poll, self._next_store) if self._polled() else self._next_store
        if self._resync_wanted:
            due = min(due, self._resync_not_before)
        if self._watchdog_every is not None:
            due = min(due, self._watchdog_next)
        return due

    def _wake_time(self) -> float:
        """The next wake-up of the loop: the machine's deadline (with the slack) or the next polls."""
        wake = self._polls_due
        deadline = self.machine.next_deadline()
        if deadline is not None and deadline + self._slack < wake:
            return deadline + self._slack
        return wake

    def _arm(self, wake: float) -> None:
        if self._timer_at == wake:
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self._aloop is not None
        self._timer = self._aloop.call_at(wake, self._on_timer)
        self._timer_at = wake
