"""A deterministic simulator around the pure in.mpathd state machine.

The harness plays every part the runtime and the world play for
``ipmp.mpathd.machine.Machine``, with simulated time only:

* the clock: ``run_until`` jumps from one deadline to the next
  (``Machine.next_deadline``, replies in flight, scripted events) and feeds
  ``Tick`` events at exactly the deadline;
* the network: every ``SendProbe`` is answered (or not) by a per-NIC model
  (healthy, silently failed, link down, loss rate, round-trip time, routers
  that are down) with a ``ProbeReplied`` event after the round trip;
* the kernel: an ``Execute`` effect is applied by taking its ``config`` as the
  new truth (link flags stay those of the network model), its ``success``
  effects are carried out, ``Executed(ok=True)`` is fed and, once the step is
  done, a ``Resync`` with the truth follows, as the runtime's netlink watcher
  makes it; a failure can be injected (``fail_executes``);
* the rescan: a ``Resync`` whenever ``Machine.next_rescan`` is reached.

It records log lines, probes, replies to admin requests, executes and phyint
state changes, each with its simulated time, for the tests to inspect.
No sockets, no sleeps, no root.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface

from ipmp.model import Config, Family, Interface, IPAddress, Logical
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import State, Timing
from ipmp.mpathd.settings import Settings
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

GROUP = "prod"
PREFIX = 24
#: The routers of the test subnet (probe targets).
ROUTER1 = IPv4Address("192.0.2.1")
ROUTER2 = IPv4Address("192.0.2.2")
ROUTERS: tuple[IPAddress, ...] = (ROUTER1, ROUTER2)


def nic_name(n: int) -> str:
    return f"qfe{n}"


def data_ip(n: int, j: int = 0) -> IPv4Address:
    """The j-th data address of qfe<n>: 192.0.2.100+n (then +10 per extra address)."""
    return IPv4Address(f"192.0.2.{100 + n + 10 * j}")


def test_ip(n: int) -> IPv4Address:
    """The test address of qfe<n>: 192.0.2.10+n."""
    return IPv4Address(f"192.0.2.{10 + n}")


test_ip.__test__ = False  # type: ignore[attr-defined]


def make_nic(
    n: int,
    *,
    index: int | None = None,
    data: int = 1,
    test: bool = True,
    standby: bool = False,
    group: str = GROUP,
    link_up: bool = True,
) -> Interface:
    """qfe<n>, plumbed for IPv4: data addresses at units 0.., then the test address.

    The first data address is unit 0 (``qfe0``), as a hostname file makes it;
    the test address (NOFAILOVER, DEPRECATED) follows at the next unit
    (``addif ... deprecated -failover up``).  Without data addresses unit 0
    is an address-less placeholder and the test address takes unit 1.
    """
    logicals: list[Logical] = []
    unit = 0
    for j in range(data):
        logicals.append(Logical(Family.INET, unit, IPv4Interface(f"{data_ip(n, j)}/{PREFIX}"), up=True))
        unit += 1
    if not logicals:
        logicals.append(Logical(Family.INET, 0))
        unit = 1
    if test:
        logicals.append(Logical(Family.INET, unit, IPv4Interface(f"{test_ip(n)}/{PREFIX}"), up=True,
                                deprecated=True, nofailover=True))
    return Interface(
        nic_name(n),
        index=index if index is not None else n + 2,
        plumbed=frozenset({Family.INET}),
        link_up=link_up,
        running=link_up,
        group=group,
        standby=standby,
        logicals=tuple(logicals),
    )


def make_group(
    count: int = 2,
    *,
    standby: Iterable[int] = (),
    link_only: bool = False,
    data: Sequence[int] | None = None,
    group: str = GROUP,
) -> Config:
    """A group of ``count`` NICs qfe0..; standby NICs get no data address by default."""
    stand = set(standby)
    nics: list[Interface] = []
    for n in range(count):
        k = data[n] if data is not None else (0 if n in stand else 1)
        nics.append(make_nic(n, data=k, test=not link_only, standby=n in stand, group=group))
    return Config(tuple(nics))


# -- network model ------------------------------------------------------------------


HEALTHY = "healthy"
SILENT = "silent"


@dataclass
class NicNet:
    """What the world does with one NIC's probes."""

    mode: str = HEALTHY  # HEALTHY or SILENT (transmits, nothing comes back)
    link: bool = True
    loss: float = 0.0  # probability that a reply is lost
    rtt_ms: int = 1


@dataclass
class Network:
    nics: dict[str, NicNet] = field(default_factory=dict)
    #: Targets that do not answer anybody (a router that is down).
    dead_targets: set[IPAddress] = field(default_factory=set)
    #: Per (NIC, target) round-trip time, overriding ``NicNet.rtt_ms``.
    rtt: dict[tuple[str, IPAddress], int] = field(default_factory=dict)
    #: Hosts that answer all-hosts multicast discovery.
    hosts: tuple[IPAddress, ...] = ()

    def nic(self, name: str) -> NicNet:
        return self.nics.setdefault(name, NicNet())


# -- records ------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    time: float
    level: str
    message: str


@dataclass(frozen=True)
class Sent:
    time: float
    probe: SendProbe


@dataclass(frozen=True)
class Applied:
    time: float
    execute: Execute
    ok: bool
    before: Config
    cause: str  # the class name of the event whose step produced it
    group_failed: bool  # some group was failed before that step
    still_failed: bool  # ... and still is when the execute is carried out


@dataclass(frozen=True)
class Change:
    time: float
    name: str
    old: State
    new: State


class Stuck(Exception):
    """The machine keeps asking for a Tick at a time that has passed."""


class Sim:
    """A Machine, a network, a kernel and a clock."""

    def __init__(
        self,
        config: Config,
        *,
        fdt_ms: int = 700,
        failback: bool = True,
        quiet_period: float = 1.0,
        scan_interval: float = 20.0,
        seed: int = 7,
        routers: Sequence[IPAddress] = ROUTERS,
        start: float = 100.0,
        net_seed: int = 11,
    ) -> None:
        self.settings = Settings(failure_detection_time_ms=fdt_ms, failback=failback)
        self.timing = Timing(quiet_period=quiet_period, scan_interval=scan_interval)
        self.machine = Machine(self.settings, self.timing, seed=seed)
        self.now = start
        self.routers = tuple(routers)
        self.net = Network()
        for itf in config.interfaces:
            self.net.nic(itf.name).link = itf.link_up and itf.running
        self.truth = self._with_links(config)
        self.rng = random.Random(net_seed)
        self.logs: list[LogLine] = []
        self.sent: list[Sent] = []
        self.replies: dict[int, ReplyTo] = {}
        self.applied: list[Applied] = []
        self.changes: list[Change] = []
        self.opened: list[tuple[float, OpenProbe]] = []
        self.closed: list[tuple[float, CloseProbe]] = []
        self.announced: list[tuple[float, Announce]] = []
        self.fail_executes = 0
        self.auto_reply = True
        self._pending: list[tuple[float, int, Event]] = []
        self._count = itertools.count()
        self._request_ids = itertools.count(1)
        self._resync_wanted = False
        self._depth = 0

    # -- the world ---------------------------------------------------------------------

    def _with_links(self, config: Config) -> Config:
        out = config
        for itf in config.interfaces:
            up = self.net.nic(itf.name).link
            if itf.link_up != up or itf.running != up:
                out = out.with_interface(replace(itf, link_up=up, running=up))
        return out

    def start(self) -> None:
        self.feed(Resync(self.now, self.truth, self.routers))

    def feed(self, event: Event) -> list[Effect]:
        """One machine step; its effects are carried out like the runtime does."""
        before = {n: p.state for n, p in self.machine.phyints.items()}
        group_failed = any(g.failed for g in self.machine.groups.values())
        self._depth += 1
        try:
            effects = self.machine.step(event)
            for name, pi in self.machine.phyints.items():
                old = before.get(name)
                if old is not None and old is not pi.state:
                    self.changes.append(Change(self.now, name, old, pi.state))
            for fx in effects:
                self._do(fx, type(event).__name__, group_failed)
        finally:
            self._depth -= 1
        if self._depth == 0:
            self._after_step()
        return effects

    def _after_step(self) -> None:
        rounds = 0
        while self._resync_wanted:
            rounds += 1
            if rounds > 50:
                raise Stuck("resync loop: every resync leads to another execute")
            self._resync_wanted = False
            self._depth += 1
            try:
                self._resync()
            finally:
                self._depth -= 1

    def _resync(self) -> None:
        self.truth = self._with_links(self.truth)
        before = {n: p.state for n, p in self.machine.phyints.items()}
        group_failed = any(g.failed for g in self.machine.groups.values())
        effects = self.machine.step(Resync(self.now, self.truth, self.routers))
        for name, pi in self.machine.phyints.items():
            old = before.get(name)
            if old is not None and old is not pi.state:
                self.changes.append(Change(self.now, name, old, pi.state))
        for fx in effects:
            self._do(fx, "Resync", group_failed)
        # The runtime restores what differs between the kernel and the machine's view.
        if not self.machine.executing and kernel_view(self.machine.config) != kernel_view(self.truth):
            tracked = tuple(sorted(self.machine.phyints))
            self._do(Execute(self.machine.config, tracked), "Resync", group_failed)

    def _do(self, fx: Effect, cause: str, group_failed: bool) -> None:
        match fx:
            case SendProbe():
                self.sent.append(Sent(self.now, fx))
                if self.auto_reply:
                    self._answer(fx)
            case Log():
                self.logs.append(LogLine(self.now, fx.level, fx.message))
            case ReplyTo():
                self.replies[fx.request_id] = fx
            case Execute():
                self._execute(fx, cause, group_failed)
            case OpenProbe():
                self.opened.append((self.now, fx))
            case CloseProbe():
                self.closed.append((self.now, fx))
            case Announce():
                self.announced.append((self.now, fx))

    def _execute(self, fx: Execute, cause: str, group_failed: bool) -> None:
        ok = self.fail_executes == 0
        if not ok:
            self.fail_executes -= 1
        still = group_failed and any(g.failed for g in self.machine.groups.values())
        self.applied.append(Applied(self.now, fx, ok, self.truth, cause, group_failed, still))
        if ok:
            self.truth = self._with_links(fx.config)
        for effect in fx.success if ok else fx.failure:
            self._do(effect, cause, group_failed)
        self.feed(Executed(self.now, ok, "" if ok else "injected failure"))
        self._resync_wanted = True

    def _answer(self, fx: SendProbe) -> None:
        nic = self.net.nic(fx.ifname)
        if not nic.link or nic.mode != HEALTHY:
            return
        responders = [fx.target] if fx.target is not None else list(self.net.hosts)
        for source in responders:
            if source in self.net.dead_targets:
                continue
            if nic.loss and self.rng.random() < nic.loss:
                continue
            rtt = self.net.rtt.get((fx.ifname, source), nic.rtt_ms)
            at = self.now + rtt / 1000.0
            self.schedule(at, ProbeReplied(at, fx.ifname, fx.family, fx.seq, source, rtt, fx.kind))

    def schedule(self, at: float, event: Event) -> None:
        heapq.heappush(self._pending, (at, next(self._count), event))

    # -- the clock ---------------------------------------------------------------------

    def run_until(self, end: float) -> None:
        """Advance to ``end``, feeding replies, rescans and ticks in time order."""
        same = 0
        last = self.now
        while True:
            times = [t for t in (self.machine.next_deadline(),) if t is not None]
            if self._pending:
                times.append(self._pending[0][0])
            nxt = min(times) if times else end
            if nxt > end:
                break
            self.now = max(self.now, nxt)
            same = same + 1 if self.now == last else 0
            last = self.now
            if same > 200:
                raise Stuck(f"no progress at t={self.now}")
            while self._pending and self._pending[0][0] <= self.now:
                _, _, event = heapq.heappop(self._pending)
                self.feed(event)
            rescan = self.machine.next_rescan
            if rescan is not None and self.now >= rescan:
                self._resync_wanted = True
                self._after_step()
            deadline = self.machine.next_deadline()
            if deadline is not None and self.now >= deadline:
                self.feed(Tick(self.now))
            if not times:
                break
        self.now = max(self.now, end)

    def advance(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until_log(self, text: str, limit: float) -> LogLine:
        """Advance until a log line containing ``text`` appears (at most ``limit`` s)."""
        seen = len(self.logs)
        end = self.now + limit
        step = 0.01
        while self.now < end:
            self.run_until(min(end, self.now + step))
            for line in self.logs[seen:]:
                if text in line.message:
                    return line
            seen = len(self.logs)
        raise AssertionError(f"no log line with {text!r} within {limit} s; got {self.messages()}")

    # -- the operator and the world ------------------------------------------------------

    def link(self, name: str, up: bool) -> None:
        self.net.nic(name).link = up
        self.truth = self._with_links(self.truth)
        self.feed(LinkChanged(self.now, name, up))

    def plug(self, itf: Interface) -> None:
        """A NIC appears or changes (plumb, addif, group): the kernel changes and a resync follows."""
        self.net.nic(itf.name).link = itf.link_up and itf.running
        self.truth = self._with_links(self.truth.with_interface(itf))
        self._resync_wanted = True
        self._after_step()

    def silent(self, name: str, silent: bool = True) -> None:
        self.net.nic(name).mode = SILENT if silent else HEALTHY

    def router_down(self, down: bool = True) -> None:
        if down:
            self.net.dead_targets |= set(self.routers)
        else:
            self.net.dead_targets -= set(self.routers)

    def offline(self, name: str, min_redundancy: int = 1) -> ReplyTo | None:
        rid = next(self._request_ids)
        self.feed(AdminOffline(self.now, name, min_redundancy, rid))
        return self.replies.get(rid)

    def undo_offline(self, name: str) -> ReplyTo | None:
        rid = next(self._request_ids)
        self.feed(AdminUndoOffline(self.now, name, rid))
        return self.replies.get(rid)

    # -- queries -----------------------------------------------------------------------

    def messages(self, level: str | None = None) -> list[str]:
        return [ln.message for ln in self.logs if level is None or ln.level == level]

    def lines(self, text: str) -> list[LogLine]:
        return [ln for ln in self.logs if text in ln.message]

    def probes(self, name: str, since: float = float("-inf"), until: float = float("inf")) -> list[Sent]:
        return [s for s in self.sent if s.probe.ifname == name and since <= s.time <= until]

    def state(self, name: str) -> State:
        return self.machine.phyints[name].state

    def itf(self, name: str) -> Interface:
        itf = self.truth.get(name)
        assert itf is not None
        return itf

    def where(self, ip: IPAddress) -> list[tuple[str, Logical]]:
        """Every (interface, logical) of the truth that holds ``ip``."""
        return [(itf.name, lg) for itf in self.truth.interfaces for lg in itf.logicals
                if lg.address is not None and lg.address.ip == ip]

    def home_of(self, ip: IPAddress) -> str:
        found = self.where(ip)
        assert len(found) == 1, f"{ip} is on {found}"
        return found[0][0]


def kernel_view(config: Config) -> frozenset[tuple[str, str]]:
    """What the Linux kernel would hold: the UP addresses per interface."""
    return frozenset((itf.name, str(lg.address)) for itf in config.interfaces for lg in itf.logicals
                     if lg.up and lg.address is not None and not lg.kernel_owned)


def placement(config: Config) -> dict[str, str]:
    """Data address -> interface holding it."""
    out: dict[str, str] = {}
    for itf in config.interfaces:
        for lg in itf.logicals:
            if lg.is_data and lg.address is not None:
                out[str(lg.address.ip)] = itf.name
    return out
