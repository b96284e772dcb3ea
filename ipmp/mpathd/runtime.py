"""in.mpathd's body: an asyncio loop around the pure ``Machine``.

It turns I/O into events (netlink link changes and "something changed", the
carrier bit polled directly, probe replies, admin requests over the control
socket, the clock) and effects into I/O (probe packets, applies through the
same ``apply`` as ``ifconfig``, gratuitous ARP / unsolicited NA, syslog lines,
replies).  Effects are carried out in order, one at a time, so the kernel sees
address moves in sequence.

One task runs the loop: polls, rescans and every apply.  While it sleeps
with nothing to do, a probe reply or a due probe is stepped right where it
comes in (the socket's reader, the timer: ``_direct``), and only an apply
wakes the task; so a probe costs no task round, and the timer is moved only
when the machine's deadline changes.  Carrier and store polls that find
nothing new are done by the timer too (``_quiet_polls``).

At a failure the data path goes first: an apply's address and rule changes,
then the gratuitous ARPs, then the step's log lines and the event streams
(``_hold``, ``_release``), then the state store.  The writes go out on a
plain rtnetlink socket (``netlink.Requester``), not through pyroute2, and
the plan starts from the kernel copy the daemon keeps and the
store it read last, unless netlink or the store's file said they changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import select
import sys
import syslog
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, Protocol

from ipmp.admin.apply import Applied, apply, make_plan, sysctl_keys
from ipmp.errors import ApplyError, IpmpError, StateError
from ipmp.host import sdnotify
from ipmp.host.ifmap import MapEntry, canonical_name, read_ifmap
from ipmp.host.state import Store, Stored, StoreLock
from ipmp.kernel.netlink import CarrierReader, Kernel, LinkEvent, Watcher
from ipmp.linux.ops import AddAddress, Plan
from ipmp.linux.view import Scope, expected
from ipmp.model import Config, Family, Interface, IPAddress, KernelState
from ipmp.mpathd import events, icmp, ipc, stats
from ipmp.mpathd.announce import ANNOUNCE_COUNT, ANNOUNCE_SPACING, Announcer
from ipmp.mpathd.machine import FDT_DIVISOR, Machine
from ipmp.mpathd.probe import ProbeKind
from ipmp.mpathd.steps import (
    AdminOffline,
    AdminUndoOffline,
    Announce,
    CloseProbe,
    Effect,
    Event,
    Execute,
    Executed,
    LinkChanged,
    Log,
    OpenProbe,
    ProbeReplied,
    ReplyTo,
    Resync,
    SendProbe,
    Tick,
)

#: How often the carrier bit and the state store are looked at (s).  The
#: kernel's netlink events are immediate on veth but batched up to 1 s on
#: physical NICs; a 50 ms poll of /sys bounds link detection there.
POLL_INTERVAL = 0.05
#: How often the state store's mtime is looked at (s): ifconfig and
#: ipmp-boot changes (a group, a flag) reach the daemon within this.
STORE_POLL_INTERVAL = 0.5
#: Link kinds whose carrier changes the kernel reports at once (linkwatch
#: treats stacked devices, whose iflink is another link, and bonding/team
#: ports as urgent): no polling needed for them.
URGENT_KINDS = frozenset({"veth", "macvlan", "ipvlan", "vlan", "bond", "team"})
#: How long an admin request may wait for the machine (s).
REQUEST_TIMEOUT = 10.0
#: How long an apply waits at most for the state store's lock, held by a
#: command of root's (ifconfig, ipmp-boot) that is changing the kernel, and
#: how often it looks (s).  The wait is an asyncio sleep: probes and the
#: control socket go on.  Only root can hold that lock (``ipmp.host.state``); a
#: command holds it for milliseconds (its IPv6 DAD wait is outside it).
#: Past the wait the apply goes ahead without the lock and the store write
#: waits instead: a data address is never left on a dead NIC for a lock.
STORE_LOCK_WAIT = 0.5
STORE_LOCK_POLL = 0.01
#: How long a rescan waits at most for a command that holds the lock before
#: it reads without it (s): reading the kernel between a command's apply and
#: its store write would "restore" what the command just did.
RESYNC_LOCK_PATIENCE = 2.0
#: At most one "cannot record" line in this long (s) while the state store
#: cannot be written; the write is tried again at every store poll.
STORE_COMPLAINT_INTERVAL = 60.0
#: WATCHDOG=1 is sent this many times per systemd watchdog period
#: (sd_watchdog_enabled(3) advises at least twice; a slow machine gets slack).
WATCHDOG_FEEDS_PER_PERIOD = 4
#: How late the loop may wake for the machine's deadline, as a fraction of
#: the probe interval and at most TIMER_SLACK_MAX (s): deadlines that close
#: together are met by one wake-up and one Tick (probes go out at random
#: points of their intervals anyway; a loss is judged that much after its
#: wait at most).  in.mpathd's own timer counts whole milliseconds.
TIMER_SLACK_DIVISOR = 16
TIMER_SLACK_MAX = 0.002

#: ``ProbeKind`` by value, for the replies (an enum call costs a lookup and an exception).
_PROBE_KINDS: dict[int, ProbeKind] = {int(kind): kind for kind in ProbeKind}

#: All-hosts groups for target discovery (§2.6).
MULTICAST: dict[Family, IPAddress] = {
    Family.INET: IPv4Address("224.0.0.1"),
    Family.INET6: IPv6Address("ff02::1"),
}


class SyslogBackend(Protocol):
    """What ``Logger`` uses of the ``syslog`` module (tests pass a stand-in)."""

    LOG_PID: int
    LOG_DAEMON: int
    LOG_ERR: int
    LOG_INFO: int
    LOG_DEBUG: int

    def openlog(self, ident: str, logoption: int, facility: int) -> None: ...

    def syslog(self, priority: int, message: str) -> None: ...


class Logger:
    """syslog (facility daemon, ident in.mpathd, pid) or, in debug mode, stderr.

    Through syslog the messages reach ``/dev/log``, where syslogd or the
    systemd journal reads them: level ``err`` is LOG_ERR (every state change,
    with the Solaris 10 texts), ``info`` LOG_INFO, ``debug`` LOG_DEBUG (only
    with ``debug``).  On stderr each message is one flushed line.
    """

    def __init__(self, *, to_stderr: bool, debug: bool, backend: SyslogBackend | Any = syslog) -> None:
        self.to_stderr = to_stderr
        self.debug = debug
        self.backend: SyslogBackend = backend
        if not to_stderr:
            backend.openlog("in.mpathd", backend.LOG_PID, backend.LOG_DAEMON)

    def __call__(self, level: str, message: str) -> None:
        if level == "debug" and not self.debug:
            return
        if not self.to_stderr:
            b = self.backend
            prio = {"err": b.LOG_ERR, "info": b.LOG_INFO}.get(level, b.LOG_DEBUG)
            # syslog() encodes strictly: an undecodable byte of a hostname file
            # (a group name read with surrogateescape) must not stop the daemon.
            b.syslog(prio, message.encode("utf-8", "backslashreplace").decode("utf-8"))
            return
        print(message, file=sys.stderr, flush=True)


@dataclass
class _Probe:
    sock: icmp.ProbeSocket
    #: Random id and token key of this socket's probes (``icmp`` says why not illumos's id).
    key: icmp.ProbeKey


def _ifmap_entries(root: Path) -> tuple[MapEntry, ...]:
    """The well-formed lines of ``etc/ipmp/ifmap`` (ipmp-boot reports the others)."""
    try:
        return read_ifmap(root)[0]
    except OSError:
        return ()


def _now() -> float:
    return time.monotonic()


#: Put on the queue only to wake the loop task, which then does what is due
#: at that moment (a ``Tick`` with the time of then, polls, a resync).
_WAKE = Tick(-1.0)


class _Events(asyncio.Queue[Event]):
    """The loop task's queue, whose ``put_nowait`` may step the machine at once.

    While the task sleeps with nothing queued, an event is handed to
    ``direct`` (``Runtime._direct``) rather than waking the task: nearly
    every event is one probe reply or one due probe, and a round of the
    task (a future, a task step, the loop's own checks) costs more than
    the machine step itself.  ``direct`` says False when the event must
    wait its turn in the queue.
    """

    def __init__(self) -> None:
        super().__init__()
        self.direct: Callable[[Event], bool] | None = None

    def put_nowait(self, item: Event) -> None:
        if item is _WAKE or self.direct is None or not self.direct(item):
            super().put_nowait(item)


def _stamp_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


class Runtime:
    def __init__(self, root: Path, machine: Machine, log: Logger) -> None:
        self.root = root
        self.machine = machine
        self.log = log
        self.store = Store(root)
        queue = _Events()
        queue.direct = self._direct
        self.queue: asyncio.Queue[Event] = queue
        self.probes: dict[tuple[str, Family], _Probe] = {}
        self.pending: dict[int, asyncio.Future[ReplyTo]] = {}
        self.request_ids = itertools.count(1)
        self.kernel_state = KernelState()
        self.links: dict[str, bool] = {}
        # The store file as the polls last saw it (``_store_version``): a new one wants a rescan.
        self._store_seen: tuple[int, int, int] | None = None
        self.stopping = asyncio.Event()
        self.announcer = Announcer()
        self.background: set[asyncio.Task[None]] = set()
        self._kernel: Kernel | None = None
        self.watcher: Watcher | None = None
        self._resync_wanted = False
        # While an apply runs, netlink's "something changed" is mostly the
        # apply's own doing: noted, and looked at once the apply is over.
        self._applying = False
        self._changed_meanwhile = False
        self._polled_names: list[str] | None = None
        # Their carrier files, kept open while the polled NICs stay the same (``_polled``).
        self._carriers = CarrierReader()
        # The loop's one timer, moved only when the time it should fire changes.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        # The task sleeps with nothing to do: events may be stepped at once
        # (``_direct``), which leaves to the task the effects that must be
        # awaited (``_backlog``) and an exception to raise (``_crash``).
        self._idle = False
        self._backlog: list[Effect] = []
        self._crash: Exception | None = None
        # When the task's own polls (carriers, the store) are next due; the
        # earlier of the two, as the task left it when it went to sleep.
        self._next_poll = self._next_store = 0.0
        self._polls_due = 0.0
        interval = machine.settings.failure_detection_time_ms // FDT_DIVISOR / 1000.0
        self._slack = min(TIMER_SLACK_MAX, interval / TIMER_SLACK_DIVISOR)
        # The sysctls asked of the kernel in the reads behind kernel_state
        # (a key the kernel lacks is asked but not in the result).
        self._sysctls_asked: frozenset[str] = frozenset()
        # What the state store does not have yet, because it could not be
        # written (read-only or full run, or a command held the lock): by
        # NIC, written at the next store poll that can; rescans see it.
        self._unsaved: dict[str, Interface] = {}
        self._store_failures = 0
        self._store_complained_at: float | None = None
        # The last store read that worked (a store that cannot be read is
        # complained of and this is used instead), and the file it was read from.
        self._stored = Stored()
        self._stored_version: tuple[int, int, int] | None = (-1, -1, -1)
        # A rescan put off while a command held the store lock: not before
        # this, and since when it has been put off.
        self._resync_not_before = 0.0
        self._resync_put_off_since: float | None = None
        # systemd's watchdog (WatchdogSec=): fed by the loop task itself, so
        # that a loop stuck anywhere (a blocking call, an await that never
        # ends) stops feeding it and systemd restarts the daemon.
        period = sdnotify.watchdog_period()
        self._watchdog_every = period / WATCHDOG_FEEDS_PER_PERIOD if period else None
        self._watchdog_next = 0.0
        # Event streams (ipmpstat -p, integrations): work only while subscribed.
        self.broker = ipc.Broker(on_subscribe=self._on_subscribe)
        self.probe_tracker = events.ProbeTracker()
        self._view: events.View | None = None
        self._publish_failed = False
        # Log lines and a stream update kept back while an apply's data path goes first (``_hold``).
        self._held: list[Log] = []
        self._publish_held = False

    # -- the loop --------------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        loop = self._aloop = asyncio.get_running_loop()
        watcher = self.watcher = Watcher()
        loop.add_reader(watcher.fileno(), self._on_netlink, watcher)
        server = await ipc.serve(ipc.socket_path(self.root), self._handle, log=lambda m: self.log("err", m),
                                 broker=self.broker)
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
                if ready is not None:
                    ready()
                await self._loop()
        finally:
            loop.remove_reader(watcher.fileno())
            watcher.close()
            server.close()  # removes the socket file, if it is still ours
            for probe in self.probes.values():
                with contextlib.suppress(OSError):
                    loop.remove_reader(probe.sock.fileno())
                probe.sock.close()
            for task in list(self.background):
                task.cancel()
            if self._timer is not None:
                self._timer.cancel()
            self.announcer.close()
            self._carriers.close()

    async def _loop(self) -> None:
        queue = self.queue
        self._next_poll = self._next_store = _now()
        while True:
            if self._crash is not None:
                raise self._crash  # from a step taken outside the task (_direct)
            if self._backlog:  # even when stopping: the machine counts on these
                backlog, self._backlog = self._backlog, []
                await self._effects(backlog)
            if self.stopping.is_set():
                return
            self._feed_watchdog()
            # Every queued event before the clock's work: a reply already read
            # acknowledges its probe before that probe's wait is judged.
            while not queue.empty():
                event = queue.get_nowait()
                if event is not _WAKE:
                    await self._feed(event)
            now = _now()
            polled = self._polled()
            if polled and now >= self._next_poll:
                self._next_poll = now + POLL_INTERVAL
                await self._poll_carriers(now, polled)
            if now >= self._next_store:
                self._next_store = now + STORE_POLL_INTERVAL
                self._flush_store()
                self._poll_store()
            rescan = self.machine.next_rescan
            rescan_due = rescan is not None and now >= rescan
            if now >= self._resync_not_before and (self._resync_wanted or rescan_due):
                self._resync_wanted = False
                await self._resync()
            deadline = self.machine.next_deadline()
            now = _now()
            if deadline is not None and now >= deadline:
                await self._feed(Tick(now))
                continue
            if not queue.empty() or self._backlog or self._resync_due(now):
                continue
            # One future per sleep (the queue's) and a timer moved only when
            # the wake-up time changes; meanwhile events go to _direct.
            self._polls_due = self._polls_at()
            self._arm(self._wake_time())
            self._idle = True
            event = await queue.get()
            self._idle = False
            if event is not _WAKE:
                await self._feed(event)

    def _polls_at(self) -> float:
        """When the task must next run: its polls (carriers, the store), a rescan put off, the watchdog."""
        due = min(self._next_poll, self._next_store) if self._polled() else self._next_store
        if self._resync_wanted:
            due = min(due, self._resync_not_before)
        if self._watchdog_every is not None:
            due = min(due, self._watchdog_next)
        return due

    def _resync_due(self, now: float) -> bool:
        return self._resync_wanted and now >= self._resync_not_before

    def _feed_watchdog(self) -> None:
        if self._watchdog_every is None:
            return
        now = _now()
        if now >= self._watchdog_next:
            self._watchdog_next = now + self._watchdog_every
            sdnotify.notify("WATCHDOG=1")

    def _wake_time(self) -> float:
        """The next wake-up of the loop: the machine's deadline (with the slack) or the task's next poll."""
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

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = _now()
        rescan = self.machine.next_rescan
        # The machine's deadline (a probe to send, a loss to judge): a Tick
        # stepped here.  Polls that find nothing to do are done here too
        # (``_quiet_polls``); the rest, and rescans, are the task's.
        if rescan is None or now < rescan:
            if now < self._polls_due:
                if self._direct(Tick(now)):
                    return
            elif self._idle and self._quiet_polls(now):
                self._polls_due = self._polls_at()
                deadline = self.machine.next_deadline()
                if deadline is not None and now >= deadline:
                    if self._direct(Tick(now)):
                        return
                else:
                    self._arm(self._wake_time())
                    return
        self.queue.put_nowait(_WAKE)

    def _quiet_polls(self, now: float) -> bool:
        """Do the task's polls that are due, if none finds anything to do; False (nothing done) if one would.

        Physical NICs have their carrier read every POLL_INTERVAL: a round of
        the loop task for each (a future, a task step, the loop's own work)
        cost many times the reads, on a daemon that mostly sleeps.  When a
        read finds a change, the task is woken and polls again itself.  The
        watchdog stays the task's: it must stop being fed when the task is stuck.
        """
        if self._unsaved or self._resync_wanted or self._backlog or self._crash is not None:
            return False
        if self._watchdog_every is not None and now >= self._watchdog_next:
            return False
        if not self.queue.empty() or self.stopping.is_set():
            return False
        store = now >= self._next_store
        if store and self._store_version() != self._store_seen:
            return False
        polled = self._polled()
        carriers = bool(polled) and now >= self._next_poll
        if carriers:
            phyints, links = self.machine.phyints, self.links
            for name in polled:
                if name in phyints:
                    up = self._carriers(self._linux(name))
                    if up is None or links.get(name) != up:
                        return False  # a NIC gone, or a change
            self._next_poll = now + POLL_INTERVAL
        if store:
            self._next_store = now + STORE_POLL_INTERVAL
        return True

    def _direct(self, event: Event) -> bool:
        """Step the machine for ``event`` here and now, if the loop task has nothing to do first.

        The task sleeps, nothing is queued, no resync is pending: what the
        task would do next is exactly this step.  Effects run as the task
        runs them, in order; the first that must be awaited (an Execute)
        and the ones after it go to the task, which takes the events that
        come meanwhile after them.
        """
        if not self._idle or self._resync_wanted or not self.queue.empty():
            return False
        self._idle = False
        try:
            effects = self.machine.step(event)
            cut = -1
            for i, effect in enumerate(effects):
                if type(effect) is not SendProbe and isinstance(effect, Execute):
                    cut = i
                    break
            if cut < 0:
                self._publish()
                for effect in effects:
                    if type(effect) is SendProbe:  # nearly every effect of a probe step
                        self._send(effect)
                    else:
                        self._do_now(effect)
                self._idle = True
                # ``_arm(self._wake_time())``, inlined: after every probe step.
                wake = self._polls_due
                deadline = self.machine.next_deadline()
                if deadline is not None and deadline + self._slack < wake:
                    wake = deadline + self._slack
                if wake != self._timer_at:
                    self._arm(wake)
                return True
            # An apply: the data path first (``_hold``), the task carries it out.
            self._hold(effects[:cut])
            self._backlog = effects[cut:]
        except Exception as err:  # the task raises it, as if it had taken the step
            self._crash = err
        self.queue.put_nowait(_WAKE)
        return True

    def _polled(self) -> list[str]:
        """Tracked NICs whose carrier events the kernel may batch (physical NICs).

        Kept until the kernel is read again or the tracked NICs change
        (``_resync``, ``_execute``): the loop asks at every wake-up.
        """
        if self._polled_names is None:
            self._carriers.forget()  # the names may be other NICs' now
            links = {lk.name: lk for lk in self.kernel_state.links}
            self._polled_names = [name for name in self.machine.phyints
                                  if (lk := links.get(name)) is None or lk.kind not in URGENT_KINDS]
        return self._polled_names

    async def _poll_carriers(self, now: float, names: list[str]) -> None:
        """The carrier bits, read directly (one small read per NIC)."""
        for name in names:
            if name not in self.machine.phyints:
                continue
            up = self._carriers(self._linux(name))  # /sys knows only the Linux name
            if up is None:
                self._resync_wanted = True
                continue
            if self.links.get(name) != up:
                self.links[name] = up
                await self._feed(LinkChanged(now, name, up))

    def _poll_store(self) -> None:
        version = self._store_version()
        if version != self._store_seen:
            # ifconfig or ipmp-boot changed the store (a group, a flag, an address).
            self._store_seen = version
            self._resync_wanted = True

    def _drop_own_notifications(self) -> None:
        """After an apply, the kernel's notifications of our own changes are old news.

        ``applied.after`` was read after them; rereading everything before
        the step's other moves (a full resync, tens of ms with many NICs)
        would only delay them.  Link events still count, and a change seen
        during the apply leads to one resync once they are done (``_execute``).
        """
        if self.watcher is not None:
            links, _ = self.watcher.read()
            self._take_link_events(links)

    def _on_netlink(self, watcher: Watcher) -> None:
        links, changed = watcher.read()
        self._take_link_events(links)
        if not changed:
            return
        if self._applying:
            # Most likely the apply's own change: one resync after it
            # (``_execute``), not before the rest of its plan and the moves
            # queued behind it.
            self._changed_meanwhile = True
            return
        self._resync_wanted = True
        self.queue.put_nowait(_WAKE)  # the resync is the loop task's

    def _take_link_events(self, links: list[LinkEvent]) -> None:
        now = _now()
        for ev in links:
            if ev.gone:
                self._resync_wanted = True
                continue
            if self._kernel is not None:
                ev.name = self._kernel.names.view(ev.name)
            if ev.name in self.machine.phyints and self.links.get(ev.name) != ev.up:
                self.links[ev.name] = ev.up
                self.queue.put_nowait(LinkChanged(now, ev.name, ev.up))
        if self._resync_wanted:
            self.queue.put_nowait(_WAKE)  # the resync is the loop task's

    async def _feed(self, event: Event) -> None:
        effects = self.machine.step(event)
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
        the event streams' snapshot wait until the apply is over
        (``_release``), then come in their order, before its own lines.
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

    # -- event streams -----------------------------------------------------------------

    def _on_subscribe(self, topic: str) -> None:
        """A first subscriber: take the baseline its events are changes from."""
        with contextlib.suppress(Exception):  # else the first _publish takes it
            if topic == "probes" and not self.probe_tracker.active:
                self.probe_tracker.start(self.machine.phyints, now=_now(), wall=time.time(),
                                         generation=self.machine.generation)
            elif topic == "events" and self._view is None:
                self._view = events.view_of(self.machine.snapshot(), self.machine.generation)

    def _publish(self) -> None:
        """After a step: publish probe outcomes and state changes to the subscribers, if any."""
        try:
            if self.broker.subscribers("probes"):
                for doc in self.probe_tracker.changes(self.machine.phyints, now=_now(), wall=time.time(),
                                                      generation=self.machine.generation):
                    self.broker.publish("probes", doc)
            elif self.probe_tracker.active:
                self.probe_tracker.stop()
            if self.broker.subscribers("events"):
                # A snapshot only when the machine says something changed: most
                # steps are probes that change nothing a state event is about.
                generation = self.machine.generation
                if self._view is None or self._view.generation != generation:
                    view = events.view_of(self.machine.snapshot(), generation)
                    if self._view is not None:
                        for doc in events.state_changes(self._view, view, wall=time.time()):
                            self.broker.publish("events", doc)
                    self._view = view
            else:
                self._view = None
        except Exception as err:  # publishing must never stop failure detection
            if not self._publish_failed:
                self._publish_failed = True
                self.log("err", f"cannot publish events: {err!r}")

    # -- effects ----------------------------------------------------------------------

    async def _do(self, fx: Effect) -> None:
        if isinstance(fx, Execute):
            await self._execute(fx)
        else:
            self._do_now(fx)

    def _do_now(self, fx: Effect) -> None:
        """An effect that needs no await (all but Execute)."""
        match fx:
            case SendProbe():
                self._send(fx)
            case OpenProbe():
                self._open(fx)
            case CloseProbe():
                self._close(fx.ifname, fx.family)
            case Log():
                self.log(fx.level, fx.message)
            case ReplyTo():
                fut = self.pending.pop(fx.request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(fx)
            case Announce():
                self._announce(fx.ifname, fx.addresses)

    def _send(self, fx: SendProbe) -> None:
        probe = self.probes.get((fx.ifname, fx.family))
        if probe is None:
            return
        target = fx.target if fx.target is not None else MULTICAST[fx.family]
        data = icmp.encode_echo(fx.family, probe.key, fx.seq, _stamp_ms(), int(fx.kind))
        try:
            probe.sock.send(target, data)
        except OSError as err:
            self.log("debug", f"probe send on {fx.ifname} to {target}: {err.strerror}")

    def _linux(self, name: str) -> str:
        """The kernel's own name of a NIC the daemon knows by its Solaris name (sockets, /sys)."""
        return self._kernel.names.linux(name) if self._kernel is not None else name

    def _open(self, fx: OpenProbe) -> None:
        self._close(fx.ifname, fx.family)
        link = self.kernel_state.link(fx.ifname)
        index = link.index if link is not None else 0
        try:
            sock = icmp.ProbeSocket(self._linux(fx.ifname), fx.source, ifindex=index or None)
        except OSError as err:
            self.log("err", f"cannot open probe socket on {fx.ifname} ({fx.source}): {err.strerror}")
            return
        # A new id and key per socket, unique among this daemon's sockets: the
        # replies to one socket's probes are never taken for another's.
        probe = _Probe(sock, icmp.new_probe_key({p.key.ident for p in self.probes.values()}))
        self.probes[(fx.ifname, fx.family)] = probe
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_probe, fx.ifname, fx.family, probe)

    def _close(self, ifname: str, family: Family) -> None:
        probe = self.probes.pop((ifname, family), None)
        if probe is None:
            return
        with contextlib.suppress(OSError, ValueError):
            asyncio.get_running_loop().remove_reader(probe.sock.fileno())
        probe.sock.close()

    def _on_probe(self, ifname: str, family: Family, probe: _Probe) -> None:
        now = _now()
        stamp = int(now * 1000) & 0xFFFFFFFF  # ``_stamp_ms()`` of this instant
        wall_ns = time.time_ns()
        try:
            packets = probe.sock.receive()
        except OSError:
            return
        for data, source, arrived_ns in packets:
            # None: another socket's probe, someone else's ping, or a reply
            # without this socket's token (a forgery): ignored alike.
            reply = icmp.decode_echo_reply(family, data, source, key=probe.key)
            if reply is None:
                continue
            if isinstance(reply, icmp.BadReply):
                self.log("info", reply.message(ifname))
                continue
            kind = _PROBE_KINDS.get(reply.probe_type)  # ``ProbeKind(...)``, without its exception
            if kind is None:
                continue
            rtt = (stamp - reply.timestamp_ms) & 0xFFFFFFFF
            if arrived_ns:
                # The time the reply waited in the socket for the loop is not
                # part of its round trip.  The kernel stamps CLOCK_REALTIME: a
                # step of that clock makes the wait negative or too long, so it
                # is bounded by [0, rtt].
                waited = (wall_ns - arrived_ns) // 1_000_000
                rtt -= min(max(waited, 0), rtt)
            self.queue.put_nowait(ProbeReplied(now, ifname, family, reply.seq, reply.source, rtt, kind))

    def _announce(self, ifname: str, addresses: tuple[IPAddress, ...]) -> None:
        link = self.kernel_state.link(ifname)
        if link is None or link.mac is None or not addresses:
            return
        # The first round goes out now, the rest of the burst (3 in all, 20 ms
        # apart: linux-mapping.md Q4) from a task.
        for address in addresses:
            try:
                self.announcer.send(self._linux(ifname), link.mac, address)
            except OSError as err:
                self.log("info", f"cannot announce {address} on {ifname}: {err.strerror}")
        task = asyncio.get_running_loop().create_task(self._burst(ifname, link.mac, addresses))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _burst(self, ifname: str, mac: str, addresses: tuple[IPAddress, ...]) -> None:
        try:
            await asyncio.sleep(ANNOUNCE_SPACING)
            await self.announcer.burst(self._linux(ifname), mac, addresses, count=ANNOUNCE_COUNT - 1)
        except OSError as err:
            self.log("info", f"cannot announce {', '.join(map(str, addresses))} on {ifname}: {err.strerror}")

    async def _execute(self, fx: Execute) -> None:
        assert self._kernel is not None
        names = sorted(set(fx.names))
        ok = True
        error = ""
        lock = await self._store_lock()
        try:
            routers = self._routers()
            keys = sysctl_keys(names)
            scope = self._scope(fx.config, names)
            self._applying = True
            try:
                applied = await self._apply(fx.config, scope, routers, keys)
            except (ApplyError, IpmpError) as err:
                ok, error = False, str(err)
            else:
                # With the NICs holding addresses homed on these: after a crash
                # between a kernel change and its save, that home is known only
                # from this config, and a save of the home NIC alone drops it.
                homed = {i.name for i in fx.config.interfaces if any(lg.home in names for lg in i.logicals)}
                for name in sorted(set(names) | homed):
                    if (itf := fx.config.get(name)) is not None:
                        self._unsaved[name] = itf
                # The read-back has the sysctls of these NICs only; the
                # others' are as they were (the plan touched none of them).
                after = applied.after
                fresh = {k for k, _ in after.sysctls}
                self.kernel_state = replace(after, sysctls=after.sysctls + tuple(
                    kv for kv in self.kernel_state.sysctls if kv[0] not in fresh))
                self._sysctls_asked = self._sysctls_asked | set(keys)
                self._polled_names = None
                self._drop_own_notifications()
            finally:
                self._applying = False
            # What waited for the data path, if the plan had none (``_data_path_done``).
            self._release()
            if lock is not None:
                self._flush_store(lock)
        finally:
            self._release()
            if lock is not None:
                lock.release()
        for effect in fx.success if ok else fx.failure:
            await self._do(effect)
        await self._feed(Executed(_now(), ok, error))
        if not ok or self._changed_meanwhile:
            # Someone else may have changed the kernel while the apply ran:
            # reread it, as after any change notification.
            self._changed_meanwhile = False
            self._resync_wanted = True

    # -- the state store -------------------------------------------------------------------
    # The daemon never blocks on it and never stops for it (issue 20): the
    # lock is taken without waiting (a bounded, polled wait for an apply),
    # a read that fails falls back on the last good one, and a write that
    # fails is kept in memory (``_unsaved``) and tried again, while failure
    # detection and failover go on from the machine's own state.

    async def _store_lock(self) -> StoreLock | None:
        """The store lock for an apply, waited for at most STORE_LOCK_WAIT; None to go on without it."""
        deadline = _now() + STORE_LOCK_WAIT
        while True:
            try:
                lock = self.store.try_lock()
            except StateError:
                return None  # cannot even be opened: the write will say so
            if lock is not None:
                return lock
            if _now() >= deadline:
                self.log("debug", f"the state store lock is still held after {STORE_LOCK_WAIT:g} s: "
                                  "applying without it, recording later")
                return None
            await asyncio.sleep(STORE_LOCK_POLL)

    def _routers(self) -> tuple[IPAddress, ...]:
        """The default routers for an apply: from the last store read, unless the file is another since.

        A stat, not a read and a parse of the whole store, before the data
        path of a move.  Every save replaces the file (a new inode), so the
        inode, size and mtime tell a new version even within one tick of a
        coarse clock; only the routers are taken from the copy (a move's
        layout comes from the machine, never from a kept store).
        """
        if self._store_version() != self._stored_version:
            return self._load_store().defaultrouters
        return self._stored.defaultrouters

    def _store_version(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.store.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _load_store(self) -> Stored:
        """The store as written, with what the daemon could not write yet; the last good read on error."""
        version = self._store_version()  # before the read: a newer file reads again next time
        try:
            self._stored = self.store.load()
            self._stored_version = version
        except StateError as err:
            self._store_trouble(f"cannot read the state store: {err}")
        if self._unsaved:
            return self._stored.with_interfaces(tuple(self._unsaved.values()))
        return self._stored

    def _flush_store(self, held: StoreLock | None = None) -> None:
        """Write what the store does not have yet (under ``held``, or a lock taken without waiting)."""
        if not self._unsaved:
            return
        try:
            lock = held if held is not None else self.store.try_lock()
            if lock is None:
                return  # a command of root's holds it: the next store poll
            try:
                stored = self.store.load().with_interfaces(tuple(self._unsaved.values()))
                self.store.save(stored)
            finally:
                if held is None:
                    lock.release()
        except StateError as err:
            self._store_trouble(f"cannot record the state of {', '.join(sorted(self._unsaved))}: {err}")
            return
        self._stored = stored
        self._stored_version = self._store_seen = self._store_version()
        self._unsaved.clear()
        if self._store_failures:
            self.log("err", f"recorded the state in {self.store.path} again after "
                            f"{self._store_failures} failed attempt(s)")
            self._store_failures = 0
            self._store_complained_at = None

    def _store_trouble(self, message: str) -> None:
        """Log a store failure, once per STORE_COMPLAINT_INTERVAL (a full disk must not flood the journal)."""
        self._store_failures += 1
        now = _now()
        if self._store_complained_at is None or now - self._store_complained_at >= STORE_COMPLAINT_INTERVAL:
            self._store_complained_at = now
            self.log("err", f"{message}; failure detection and failover go on from memory, "
                            f"the store is tried again every {STORE_POLL_INTERVAL:g} s")

    async def _current_kernel(self, keys: list[str], *, fresh: bool = False) -> KernelState:
        """The kernel an apply plans from: the cached read if it is current, else a new read.

        The cached read is current unless netlink said something changed
        since; on a failover that saves a kernel dump (milliseconds, tens of
        them with many NICs).  Only the sysctls of the NICs applied go in:
        the plan compares no others.
        """
        assert self._kernel is not None
        watcher = self.watcher
        if watcher is not None and select.select([watcher.fileno()], [], [], 0)[0]:
            # Changes announced but not read yet (the loop was busy) would
            # be planned over from a stale copy: take them in first.
            self._on_netlink(watcher)
        if fresh or self._resync_wanted or not self._sysctls_asked.issuperset(keys):
            return await self._kernel.read(keys)
        known = dict(self.kernel_state.sysctls)
        return replace(self.kernel_state, sysctls=tuple((k, known[k]) for k in keys if k in known))

    async def _apply(self, config: Config, scope: Scope, routers: Sequence[IPAddress],
                     keys: list[str]) -> Applied:
        """Apply ``config`` to the kernel; a failed apply is tried once more from a new read.

        Decision (bug 8 in RELIABILITY.md): another actor may change the
        kernel between the read a plan starts from and the apply (``ip rule
        flush`` while we restore).  The plan then misses work and the
        read-back fails, and netlink cannot tell their notifications from
        the ones of our own changes.  ``apply`` has already put the kernel
        back; one more try from a fresh read settles it.  A genuine failure
        (an address in use elsewhere, a NIC removed) fails the second time
        too, at the cost of one more apply and revert (milliseconds), and
        only then is it reported (in.mpathd's "failed to apply" line).
        """
        assert self._kernel is not None
        before = await self._current_kernel(keys)
        try:
            return await apply(self._kernel, config, scope, routers, before=before,
                               executed=self._data_path_done)
        except ApplyError as err:
            self.log("debug", f"apply failed, trying once more from a new kernel read: {err}")
        before = await self._current_kernel(keys, fresh=True)
        return await apply(self._kernel, config, scope, routers, before=before, executed=self._data_path_done)

    def _data_path_done(self, plan: Plan) -> None:
        """The plan's addresses and rules are in the kernel: announce the moves, then what waited for them."""
        self._announce_moves(plan)
        self._release()

    def _announce_moves(self, plan: Plan) -> None:
        """Gratuitous ARP / unsolicited NA for every address the plan added."""
        moved: dict[str, list[IPAddress]] = {}
        for op in plan:
            if isinstance(op, AddAddress):
                moved.setdefault(op.address.ifname, []).append(op.address.address.ip)
        for ifname, addrs in moved.items():
            self._announce(ifname, tuple(addrs))

    @staticmethod
    def _scope(config: Config, names: list[str]) -> Scope:
        pairs = set()
        for name in names:
            itf = config.get(name)
            for family in itf.plumbed if itf is not None else ():
                pairs.add((name, family))
        return Scope(frozenset(pairs))

    # -- resync ------------------------------------------------------------------------

    async def _resync(self) -> bool:
        """Read kernel and store, tell the machine, and restore what others undid.

        False when it was put off: a command of root's holds the store lock
        and is between its kernel change and its store write, and a read
        now would "restore" what it just did.  ``_resync_wanted`` is then
        set again, for STORE_LOCK_POLL later; after RESYNC_LOCK_PATIENCE
        the rescan reads without the lock.
        """
        assert self._kernel is not None
        try:
            lock = self.store.try_lock(exclusive=False)
        except StateError:
            lock = None  # cannot be opened (run read-only or full): read without it
        else:
            if lock is None:
                now = _now()
                if self._resync_put_off_since is None:
                    self._resync_put_off_since = now
                if now - self._resync_put_off_since < RESYNC_LOCK_PATIENCE:
                    self._resync_wanted = True
                    self._resync_not_before = now + STORE_LOCK_POLL
                    return False
                self.log("debug", f"rescanning without the store lock, held for {RESYNC_LOCK_PATIENCE:g} s")
        self._resync_put_off_since = None
        names = [lk.name for lk in self.kernel_state.links]
        try:
            if not names:
                names = [lk.name for lk in (await self._kernel.read()).links]
            keys = sysctl_keys(names)
            kernel = await self._kernel.read(keys)
            if {lk.name for lk in kernel.links} - set(names):
                # A new link: read again with its sysctls (rare; one dump otherwise).
                keys = sysctl_keys([lk.name for lk in kernel.links])
                kernel = await self._kernel.read(keys)
            self._sysctls_asked = frozenset(keys)
            stored = self._load_store()
            self._store_seen = self._store_version()
        finally:
            if lock is not None:
                lock.release()
        self.kernel_state = kernel
        config = expected(kernel, stored.interfaces)
        routers = list(stored.defaultrouters)
        for route in kernel.routes:
            if route.gateway is not None and route.gateway not in routers:
                routers.append(route.gateway)
        # IPv6 routers are the kernel's (router advertisements, static
        # routes), with the link each one is on (§2.6).
        routers6 = await self._kernel.routers6()
        # ``links`` is what the machine was told (or, for a NIC it does not
        # track, what was seen last).  A carrier change this read sees before
        # its netlink event was read is told to the machine here: the event,
        # once read, equals ``links`` and is dropped, and a Resync carries no
        # link change of a tracked NIC, so the machine would never hear of it
        # (a failover or a repair lost for good; seen by bench/failover.py).
        now = _now()
        missed: list[LinkChanged] = []
        for link in kernel.links:
            up = link.up and link.running
            if link.name in self.machine.phyints and self.links.get(link.name) != up:
                missed.append(LinkChanged(now, link.name, up))
            self.links[link.name] = up
        await self._feed(Resync(now, config, tuple(routers), routers6))
        for change in missed:
            if change.ifname in self.machine.phyints:
                await self._feed(change)
        self._polled_names = None  # new links, or other NICs tracked
        if self.machine.executing:
            return True
        tracked = sorted(self.machine.phyints)
        if not tracked:
            return True
        scope = self._scope(self.machine.config, tracked)
        plan = make_plan(kernel, self.machine.config, scope, stored.defaultrouters)
        if plan:
            # Someone deleted an address, flushed rules or downed a NIC behind
            # our back: put it back, as in.mpathd's rescan does.
            self.log("err", f"restoring {len(plan)} kernel change(s) undone outside in.mpathd on "
                            f"{', '.join(tracked)}")
            await self._execute(Execute(self.machine.config, tuple(tracked)))
        return True

    # -- control socket ------------------------------------------------------------------

    async def _handle(self, request: ipc.Request, peer: ipc.Peer) -> ipc.Reply:
        if request.op == "ping":
            return ipc.Reply()
        if request.op == "query":
            return ipc.Reply(data=self.machine.snapshot())
        if request.op == "subscribe":
            # The state the events that follow are changes from; clocks so
            # that a client can place the probes' monotonic send times.
            return ipc.Reply(data={"topic": request.topic, "now": _now(), "time": time.time(),
                                   "snapshot": self.machine.snapshot()})
        rid = next(self.request_ids)
        fut: asyncio.Future[ReplyTo] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        # if_mpadm may name the NIC by any of its names (Linux name, altname).
        ifname = canonical_name(self.kernel_state, request.ifname)
        if request.op == "offline":
            self.queue.put_nowait(AdminOffline(_now(), ifname, request.min_redundancy, rid))
        else:
            self.queue.put_nowait(AdminUndoOffline(_now(), ifname, rid))
        try:
            result = await asyncio.wait_for(fut, REQUEST_TIMEOUT)
        except TimeoutError:
            self.pending.pop(rid, None)
            return ipc.Reply(mpathd_error=ipc.MPATHD_SYS_ERROR, sys_error=11)  # EAGAIN: busy
        return ipc.Reply(mpathd_error=result.mpathd_error, sys_error=result.sys_error)

    def stop(self) -> None:
        self.stopping.set()
        self.queue.put_nowait(_WAKE)

    def report_statistics(self) -> None:
        """SIGUSR1: the tables at LOG_DEBUG, the probe statistics at LOG_ERR (§2.10)."""
        for line in stats.report(self.machine):
            self.log(line.level, line.message)

