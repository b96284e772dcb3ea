"""in.mpathd's body: one event loop, one entry that steps the pure ``Machine``.

Every source of news hands it to one entry, ``post``: probe replies read
where their socket is readable (``ipmp.mpathd.prober``), netlink link
changes and the carrier bits polled from /sys (``ipmp.mpathd.kernelpath``),
admin requests over the control socket, signals (through the loop's
``add_signal_handler``, as illumos in.mpathd writes them into a pipe "so
signals are processed synchronously"), and the clock (the loop's one timer,
which posts ``Due``).  ``post`` puts the event on the inbox and, unless
the machine is busy, takes the inbox in order: each event is stepped and
its effects carried out, in order, before the next is taken.  No step is
ever taken inside another (illumos asserts its timeouts never re-enter):
what comes meanwhile waits its turn on the inbox.

Most steps are a probe sent or a reply taken, whose effects need no await:
they are done right where the event came in, with no task round.  A step
whose effects include an apply (``Execute``), and a rescan, are awaited by
a job (``_start``); the inbox waits for the job and is taken again once it
is over.  At a failure the data path goes first: an apply's address and
rule changes, then the gratuitous ARPs, then the step's log lines and the
event streams (``_hold``, ``_release``), then the state store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from ipmp.host.ifmap import MapEntry, canonical_name, read_ifmap
from ipmp.kernel.execute import Kernel
from ipmp.kernel.watch import Watcher
from ipmp.mpathd import control, events, ipc, protocol, stats
from ipmp.mpathd.announce import Announcer
from ipmp.mpathd.keeper import STORE_LOCK_POLL, StoreKeeper
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.prober import Prober
from ipmp.mpathd.snapshot import to_wire
from ipmp.mpathd.steps import (
    AdminOffline,
    AdminUndoOffline,
    Announce,
    CloseProbe,
    Effect,
    Event,
    Execute,
    Log,
    OpenProbe,
    ReplyTo,
    SendProbe,
    StateChanged,
)
from ipmp.mpathd.wakeups import DUE, REPORT, STOP, Chore, Clock, Due, Item, Report, Turn

#: How long an admin request may wait for the machine (s).
REQUEST_TIMEOUT = 10.0


def _ifmap_entries(root: Path) -> tuple[MapEntry, ...]:
    """The well-formed lines of ``etc/ipmp/ifmap`` (ipmp-boot reports the others)."""
    try:
        return read_ifmap(root)[0]
    except OSError:
        return ()


def _now() -> float:
    return time.monotonic()


class Runtime(Clock):
    def __init__(self, root: Path, machine: Machine, log: Callable[[str, str], None]) -> None:
        super().__init__(machine)
        self.root = root
        self._log = log
        self.keeper = StoreKeeper(root, self.log)
        self.store = self.keeper.store
        self.prober = Prober(self.post, self.log, self._linux)
        # The one entry: what waits for its turn, whether a step's effects
        # (or a rescan) are still being carried out, and the job awaiting them.
        self._inbox: deque[Item] = deque()
        self._busy = False
        self._job: asyncio.Task[None] | None = None
        self._stepping = False
        # Set when the loop is over: stopped (None) or stopped by an exception.
        self._finished: asyncio.Future[None] | None = None
        self.pending: dict[int, asyncio.Future[ReplyTo]] = {}
        self.request_ids = itertools.count(1)
        self.stopping = asyncio.Event()
        self.announcer = Announcer()
        self.background: set[asyncio.Task[None]] = set()
        # Event streams (ipmpstat -p, integrations): work only while subscribed.
        self.broker = ipc.Broker(on_subscribe=self._on_subscribe)
        self.probe_tracker = events.ProbeTracker()
        self._state_changes: list[StateChanged] = []  # told by the machine, not yet published
        self._publish_failed = False
        # Log lines and a stream update kept back while an apply's data path goes first (``_hold``).
        self._held: list[Log] = []
        self._publish_held = False

    def log(self, level: str, message: str) -> None:
        self._log(level, message)

    # -- the loop --------------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        loop = self._aloop = asyncio.get_running_loop()
        finished = self._finished = loop.create_future()
        # The start-up is the first job: what comes before its rescan is over
        # (a request, a netlink message) waits on the inbox.
        self._busy = True
        watcher = self.watcher = Watcher()
        loop.add_reader(watcher.fileno(), self._on_netlink, watcher)
        server = await ipc.serve(control.socket_path(self.root), self._handle,
                                 log=lambda m: self.log("err", m), broker=self.broker)
        try:
            # Solaris names (etc/ipmp/ifmap), as read at start: the daemon's
            # messages, state and control requests use them.
            async with Kernel(_ifmap_entries(self.root)) as kernel:
                self._kernel = kernel
                # The first failover must not wait for pyroute2 to load (~0.2 s).
                await kernel.prepare_writes()
                # Put off while a command holds the store lock (a flock has no event to await).
                while not await self._resync():  # noqa: ASYNC110
                    await asyncio.sleep(STORE_LOCK_POLL)
                self._next_poll = self._next_store = _now()
                if ready is not None:
                    ready()
                self._busy = False
                self._drain()
                await finished
        finally:
            self._finished = None
            loop.remove_reader(watcher.fileno())
            watcher.close()
            server.close()  # removes the socket file, if it is still ours
            self.prober.close_all()
            for task in list(self.background):
                task.cancel()
            if self._job is not None:
                self._job.cancel()
            if self._timer is not None:
                self._timer.cancel()
            self.announcer.close()
            self._carriers.close()

    def post(self, item: Item) -> None:
        """The one entry: every event and request of the daemon comes in here.

        Taken now, in order after what waits, unless a step's effects or a
        rescan are still being carried out (then it waits its turn).
        """
        self._inbox.append(item)
        if not self._busy:
            self._drain()

    def rescan_soon(self) -> None:
        self.post(DUE)

    def _drain(self) -> None:
        """Take the inbox in order until it is empty or a job must be awaited; then arm the timer."""
        if self._finished is None or self._finished.done():
            return  # not running (yet), or over: nothing is stepped
        self._busy = True
        inbox = self._inbox
        try:
            while inbox:
                if self._take(inbox.popleft()):
                    return  # a job: it takes the inbox again when it is over (``_job_done``)
        except Exception as err:  # a step that failed: the daemon stops with it (run raises it)
            self._fail(err)
            return
        self._busy = False
        # ``_arm(self._wake_time())``, inlined: after every probe step.
        wake = self._polls_due
        deadline = self.machine.next_deadline()
        if deadline is not None and deadline + self._slack < wake:
            wake = deadline + self._slack
        if wake != self._timer_at:
            self._arm(wake)

    def _take(self, item: Item) -> bool:
        """Step the machine for one event, or do one of the runtime's own; True when a job was started."""
        if isinstance(item, Chore):
            return self._chore(item)
        effects = self._step(item)
        first = -1
        for i, effect in enumerate(effects):
            if type(effect) is not SendProbe and isinstance(effect, Execute):
                first = i
                break
        if first < 0:
            self._publish()
            for effect in effects:
                if type(effect) is SendProbe:  # nearly every effect of a probe step
                    self.prober.send(effect)
                else:
                    self._do_now(effect)
            return False
        # An apply: the data path first (``_hold``), then the rest in order, awaited.
        self._hold(effects[:first])
        self._start(self._effects(effects[first:]))
        return True

    def _chore(self, item: Chore) -> bool:
        kind = type(item)
        if kind is Due:
            self._on_due()
            return False
        if kind is Turn:
            return self._on_clock()
        if kind is Report:
            for line in stats.report(self.machine):
                self.log(line.level, line.message)
            return False
        # Stop: nothing more is taken.
        self.stopping.set()
        self._inbox.clear()
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(None)
        return True

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._aloop is not None
        self._job = self._aloop.create_task(work)
        self._job.add_done_callback(self._job_done)

    def _job_done(self, job: asyncio.Task[None]) -> None:
        self._job = None
        if job.cancelled():
            return
        err = job.exception()
        if err is not None:
            self._fail(err)
            return
        # An apply that failed, or that others' changes overlapped, wants a rescan now.
        self._polls_due = self._polls_at()
        self._drain()

    def _fail(self, err: BaseException) -> None:
        self._inbox.clear()
        if self._finished is not None and not self._finished.done():
            self._finished.set_exception(err)

    # -- effects -----------------------------------------------------------------------

    def _step(self, event: Event) -> list[Effect]:
        """The one place the machine is stepped; never inside another step (illumos asserts as much)."""
        if self._stepping:
            raise RuntimeError(f"in.mpathd stepped its machine inside a step, for {event!r}")
        self._stepping = True
        try:
            return self.machine.step(event)
        finally:
            self._stepping = False

    async def _feed(self, event: Event) -> None:
        """Within a job, the event its own work made (a rescan's ``Resync``, an apply's ``Executed``).

        Stepped at once, ahead of the inbox, and its effects carried out,
        awaited: the job is the step that is under way.
        """
        effects = self._step(event)
        if any(isinstance(effect, Execute) for effect in effects):
            await self._effects(effects)
            return
        self._publish()
        for effect in effects:
            self._do_now(effect)

    async def _effects(self, effects: Sequence[Effect]) -> None:
        """A step's effects, in order, with an apply's data path before the lines and streams.

        At a failure the addresses move, and the peers hear of it, before
        anything else is done: the log lines of the step that come before
        its apply (``The link has gone down``, ``NIC failure detected``) and
        the event streams wait until the apply is over (``_release``), then
        come in their order, before its own lines.
        """
        last = -1
        for i, effect in enumerate(effects):
            if isinstance(effect, Execute):
                last = i
        for i, effect in enumerate(effects):
            if isinstance(effect, Execute):
                await self._execute(effect)
            elif i < last:
                self._hold((effect,))
            else:
                self._do_now(effect)

    def _hold(self, effects: Sequence[Effect]) -> None:
        """Effects that come before an apply: log lines and the streams wait for it, the rest is done now."""
        self._publish_held = True
        for effect in effects:
            if isinstance(effect, Log):
                self._held.append(effect)
            else:
                self._do_now(effect)

    def _release(self) -> None:
        """What ``_hold`` kept back, once the apply it waited for is over."""
        held, self._held = self._held, []
        for line in held:
            self.log(line.level, line.message)
        if self._publish_held:
            self._publish_held = False
            self._publish()

    async def _do(self, fx: Effect) -> None:
        if isinstance(fx, Execute):
            await self._execute(fx)
        else:
            self._do_now(fx)

    def _do_now(self, fx: Effect) -> None:
        """An effect that needs no await (all but Execute)."""
        match fx:
            case SendProbe():
                self.prober.send(fx)
            case OpenProbe():
                link = self.kernel_state.link(fx.ifname)
                self.prober.open(fx, link.index if link is not None else 0)
            case CloseProbe():
                self.prober.close(fx.ifname, fx.family)
            case Log():
                self.log(fx.level, fx.message)
            case ReplyTo():
                fut = self.pending.pop(fx.request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(fx)
            case Announce():
                self._announce(fx.ifname, fx.addresses)
            case StateChanged():
                if self.broker.subscribers("events"):
                    self._state_changes.append(fx)
                    if not self._publish_held:  # else after the apply, as its log lines (``_release``)
                        self._publish()

    # -- event streams -----------------------------------------------------------------

    def _on_subscribe(self, topic: str) -> None:
        """A first subscriber: take the baseline its events are changes from."""
        with contextlib.suppress(Exception):  # else the first _publish takes it
            if topic == "probes" and not self.probe_tracker.active:
                self.probe_tracker.start(self.machine.phyints, now=_now(), wall=time.time(),
                                         generation=self.machine.generation)
            elif topic == "events" and self.broker.subscribers("events") == 1:
                # The first subscriber starts from the snapshot of its reply:
                # what the machine told before it is in there already.
                self._state_changes = []

    def _publish(self) -> None:
        """After a step: publish probe outcomes and state changes to the subscribers, if any."""
        try:
            if self.broker.subscribers("probes"):
                for doc in self.probe_tracker.changes(self.machine.phyints, now=_now(), wall=time.time(),
                                                      generation=self.machine.generation):
                    self.broker.publish("probes", doc)
            elif self.probe_tracker.active:
                self.probe_tracker.stop()
            # The machine's StateChanged effects of the steps so far (``_do_now``).
            changes, self._state_changes = self._state_changes, []
            if changes and self.broker.subscribers("events"):
                wall = time.time()
                for fx in changes:
                    for doc in events.state_changes(fx.before, fx.after, wall=wall):
                        self.broker.publish("events", doc)
        except Exception as err:  # publishing must never stop failure detection
            if not self._publish_failed:
                self._publish_failed = True
                self.log("err", f"cannot publish events: {err!r}")

    # -- control socket ------------------------------------------------------------------

    async def _handle(self, request: protocol.Request, peer: ipc.Peer) -> protocol.Reply:
        if request.op == "ping":
            return protocol.Reply()
        if request.op == "query":
            return protocol.Reply(data=to_wire(self.machine.snapshot()))
        if request.op == "subscribe":
            # The state the events that follow are changes from; clocks so
            # that a client can place the probes' monotonic send times.
            return protocol.Reply(data={"topic": request.topic, "now": _now(), "time": time.time(),
                                   "snapshot": to_wire(self.machine.snapshot())})
        rid = next(self.request_ids)
        fut: asyncio.Future[ReplyTo] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        # if_mpadm may name the NIC by any of its names (Linux name, altname).
        ifname = canonical_name(self.kernel_state, request.ifname)
        if request.op == "offline":
            self.post(AdminOffline(_now(), ifname, request.min_redundancy, rid))
        else:
            self.post(AdminUndoOffline(_now(), ifname, rid))
        try:
            result = await asyncio.wait_for(fut, REQUEST_TIMEOUT)
        except TimeoutError:
            self.pending.pop(rid, None)
            return protocol.Reply(mpathd_error=protocol.MPATHD_SYS_ERROR, sys_error=11)  # EAGAIN: busy
        return protocol.Reply(mpathd_error=result.mpathd_error, sys_error=result.sys_error)

    def stop(self) -> None:
        """SIGTERM and the like (``add_signal_handler``): the loop ends once what is under way is done."""
        self.post(STOP)

    def report_statistics(self) -> None:
        """SIGUSR1: the tables at LOG_DEBUG, the probe statistics at LOG_ERR (§2.10), in the loop's turn."""
        self.post(REPORT)
