"""in.mpathd's brain: a pure state machine (events in, effects out).

The runtime turns netlink messages, probe replies, admin requests and timers
into ``Event`` values and feeds them to ``Machine.step``; the machine returns
``Effect`` values (send a probe, apply a configuration, log, reply) and says
by ``next_deadline`` when it next needs a ``Tick``.  It never reads the clock
or touches a socket, so tests drive it with explicit times.  The event and
effect types are in ``steps.py``.

Glossary (the Solaris words): a *phyint* is a tracked NIC; an *instance* is
its IPv4 or IPv6 probing state (``probe.Instance``); a NIC is *probe-capable*
when an instance has a test address and targets; the *anonymous group* holds
group-less NICs when TRACK_INTERFACES_ONLY_WITH_GROUPS=no.

All phyint state changes go through ``_set_state``, checked against
``TRANSITIONS`` and a no-op when the state is unchanged (as ``phyint_chstate``).

The steps of a probe (its ``Tick``, its reply) cost the same with 2 NICs or
64: the wake-ups of the phyints are kept in a heap (``_wake``), a ``Tick``
looks only at the phyints it is due for, and a failed apply goes back
through undo records of the step, not a copy of every state taken before
each step.

Pure module: no I/O, no clock.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Address

from ipmp.model import Config, Family, Interface, IPAddress, Logical
from ipmp.mpathd import failover
from ipmp.mpathd.codes import MPATHD_MIN_RED_ERROR, MPATHD_SYS_ERROR
from ipmp.mpathd.probe import (
    MAXDEFERREDRTT,
    NUM_PROBE_FAILS,
    NUM_PROBE_REPAIRS,
    PROBE_STATS_COUNT,
    Instance,
    Probe,
    ProbeKind,
    Reply,
    SlotStatus,
    Target,
    TargetStatus,
    first_seq,
)
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

#: Probe interval = FDT / (NUM_PROBE_FAILS + 2): with a probe sent in the
#: second half of each interval, probe n-2 is overdue when probe n goes out,
#: so five losses plus two in flight fit in one FDT (mpd_main.c).
FDT_DIVISOR = NUM_PROBE_FAILS + 2
#: After raising the FDT, do not lower it for this long (s).
MIN_SETTLING_TIME = 60.0
#: The FDT is raised and lowered by this factor.
NEXT_FDT_MULTIPLE = 2
#: Lower the FDT when every CRTT is below interval / LOWER_FDT_TRIGGER.
LOWER_FDT_TRIGGER = 4
#: A slow target is an exception when the others are below interval / this.
EXCEPTION_FACTOR = 2
#: Link-flap damping: more link-ups than this in a minute hold the repair.
LINK_UP_PERMIN = 2
LINK_UP_WINDOW = 60.0


@dataclass(frozen=True)
class Timing:
    """Constants Solaris hard-codes; tests may shorten them (never by default)."""

    #: FAILURE_DETECTION_QP: no probe-based failure for 40 s after an instance
    #: appears (spanning-tree quiet time on switch ports).
    quiet_period: float = 40.0
    #: IF_SCAN_INTERVAL: full rescan of the kernel every 20 s.
    scan_interval: float = 20.0
    #: TESTADDR_CONF_TIME: wait before complaining about a missing test address.
    testaddr_conf_time: float = 20.0


class State(enum.Enum):
    """Phyint states (``pi_state``); NOTARGETS is reported, not kept (see ``reported_state``)."""

    RUNNING = "running"
    FAILED = "failed"
    OFFLINE = "offline"


#: The members the per-probe paths test, as plain names (see ``probe._UNACKED``).
_RUNNING = State.RUNNING
_FAILED = State.FAILED
_OFFLINE = State.OFFLINE
_MULTICAST = ProbeKind.MULTICAST
_RTT = ProbeKind.RTT
_ACCEPTED = Reply.ACCEPTED
_LATE = Reply.LATE
_ACTIVE = TargetStatus.ACTIVE

#: The only phyint state changes there are.
TRANSITIONS: frozenset[tuple[State, State]] = frozenset({
    (State.RUNNING, State.FAILED),  # NIC or group failure
    (State.FAILED, State.RUNNING),  # repair
    (State.RUNNING, State.OFFLINE),  # if_mpadm -d
    (State.FAILED, State.OFFLINE),  # if_mpadm -d of a failed NIC in a failed group
    (State.OFFLINE, State.RUNNING),  # if_mpadm -r, link up
    (State.OFFLINE, State.FAILED),  # if_mpadm -r, link down
})

#: ``pr_status`` numbers of the probe history, as the Solaris traces print them.
SLOT_STATUS_CODES = {SlotStatus.UNUSED: 0, SlotStatus.UNACKED: 1, SlotStatus.ACKED: 2, SlotStatus.LOST: 3}

#: errno of a refused admin request, as in.mpathd sets ``sys_error`` (the
#: libipmp numbers for replies are ``codes``'s).
EINVAL = 22


# -- state --------------------------------------------------------------------------


@dataclass
class Phyint:
    name: str
    group: str
    state: State
    link_up: bool
    since: float
    instances: dict[Family, Instance] = field(default_factory=dict)
    link_ups: list[float] = field(default_factory=list)
    repair_hold_until: float | None = None
    flap_logged: bool = False
    no_test_logged: bool = False
    #: When the NIC appeared: TESTADDR_CONF_TIME counts from here.
    appeared: float = 0.0
    #: Families whose test address duplicates another member's (§2.3).
    duplicate: set[Family] = field(default_factory=set)
    #: Families the group uses that this member lacks (logged once).
    inhomogeneous: set[Family] = field(default_factory=set)


@dataclass
class Group:
    name: str
    fdt_ms: int
    failed: bool = False
    #: After a group failure ends, the other members get one FDT to answer
    #: their probes again before invariant 2 moves their addresses away:
    #: members come back a little apart (neighbour entries, queued probes).
    settling_until: float | None = None
    #: Probe interval in seconds, computed in whole ms as Solaris does (1000
    #: -> 142 ms).  Kept with ``fdt_ms`` (``__setattr__``), which changes
    #: rarely, rather than computed at each of the reads every probe makes.
    interval: float = field(init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name == "fdt_ms":
            assert isinstance(value, int)
            object.__setattr__(self, "interval", (value // FDT_DIVISOR) / 1000.0)


def _of_group(name: str, group: str) -> str:
    return f"{name} of group {group}" if group else name


def select_test_address(itf: Interface, family: Family) -> Logical | None:
    """§2.3: NOFAILOVER and UP; IPv4 prefers DEPRECATED, IPv6 must be link-local.

    The IPv6 test address is the link-local marked ``-failover`` (§1); on
    Linux the kernel owns it and its NOFAILOVER lives in the state store on
    inet6 unit 0.  One whose DAD has not succeeded is skipped until it has.
    """
    best: Logical | None = None
    acceptable: Logical | None = None
    for lg in itf.logicals_of(family):
        if not (lg.nofailover and lg.up and lg.address is not None) or lg.tentative:
            continue  # a link-local still in DAD cannot be bound yet
        ip = lg.address.ip
        if family is Family.INET:
            if int(ip) == 0:
                continue
            if lg.deprecated and best is None:
                best = lg
            acceptable = lg
        else:
            if not ip.is_link_local:
                continue  # only link-local IPv6 addresses are test addresses
            if best is None:
                best = lg
    return best or acceptable


#: What a step may have to go back to: config, phyint states, group failed flags.
_Snapshot = tuple[Config, dict[str, tuple[State, float]], dict[str, bool]]


class Machine:
    """The daemon's state and its one ``step`` function."""

    def __init__(self, settings: Settings, timing: Timing = Timing(), seed: int = 0,
                 seq_secret: bytes | None = None) -> None:
        """``seed`` spreads the probe times; ``seq_secret`` (random in the daemon, at most
        64 bytes) makes the first sequence number of each probing instance
        (``probe.first_seq``); without it, one derived from ``seed``.
        """
        self.settings = settings
        self.timing = timing
        #: The probe interval of the user's FDT, in whole ms as Solaris computes it.
        self._user_interval = (settings.failure_detection_time_ms // FDT_DIVISOR) / 1000.0
        self.rng = random.Random(seed)
        self._seq_secret = seq_secret if seq_secret is not None else str(seed).encode()[:64]
        self._instances_made = 0  # the serial of the next probing instance (first_seq)
        self.config = Config()
        self.phyints: dict[str, Phyint] = {}
        self.groups: dict[str, Group] = {}
        self.routers: tuple[IPAddress, ...] = ()
        self.routers6: tuple[tuple[str, IPv6Address], ...] = ()
        self.last_raise = float("-inf")
        self.next_rescan: float | None = None
        self.started = False
        self.executing = False
        #: The change marker: bumped by every step that may have changed what
        #: ``snapshot`` reports, round-trip figures (``crtt_ms``) excepted, and
        #: by none of the many probe steps that only fill the probe ledgers.
        #: A reader that derives something from snapshots (the event streams)
        #: builds one again only when this moved.  Every step but a ``Tick``
        #: or a ``ProbeReplied`` bumps it (they are rare); those two bump it
        #: when they set ``_changed`` (a state, a group flag, a target, an
        #: FDT), make a new config, or move the probe verdict of a phyint
        #: they touched (``_verdicts_moved``).
        self.generation = 0
        self._changed = False
        # Whether each phyint's probes count as failed, as ``snapshot`` says it.
        self._failing: dict[str, bool] = {}
        self._fx: list[Effect] = []
        # What a failed Execute of this step goes back to: the config at the
        # start of the step, and the states and group flags as they were
        # before their first change in it (``_set_state``, ``_set_failed``).
        self._step_config = self.config
        self._undo_states: dict[str, tuple[State, float]] = {}
        self._undo_groups: dict[str, bool] = {}
        self._rollback: _Snapshot | None = None
        # Wake-ups (``_wake``): phyint name -> when, and a heap of (when, name)
        # holding stale entries, skipped where the dict disagrees.  A step
        # that sends one probe or takes one reply recomputes the phyints it
        # touched; anything else (or a change beyond one phyint) rebuilds all.
        self._wakes: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._touched: set[str] = set()
        self._resched_all = True
        self._settling_at: float | None = None
        # ``next_deadline()`` as computed last; forgotten where a wake-up, the
        # rescan or a settling time changes (``_reschedule``, ``_due``).
        self._deadline: float | None = None
        self._deadline_known = False

    # -- the API --------------------------------------------------------------------

    def step(self, event: Event) -> list[Effect]:
        fx = self._fx = []
        self._step_config = self.config
        if self._undo_states:
            self._undo_states = {}  # a new one: a pending rollback may hold the old
        if self._undo_groups:
            self._undo_groups = {}
        # The two events of every probe first; the others may change anything,
        # so every wake-up is computed again after them (``_reschedule``).
        if isinstance(event, ProbeReplied):
            if self._reply(event):
                self._touched.add(event.ifname)
        elif isinstance(event, Tick):
            self._tick(event.now)
        else:
            self._resched_all = True
            self._changed = True
            match event:
                case Resync():
                    self._resync(event)
                case LinkChanged():
                    self._link(event)
                case AdminOffline():
                    self._offline(event)
                case AdminUndoOffline():
                    self._undo_offline(event)
                case Executed():
                    self.executing = False
                    if event.ok:
                        # One move at a time: what else the invariants want comes now.
                        self._rebalance(event.now)
                    else:
                        self._log("err", f"failed to apply the new configuration: {event.error}")
                        self._roll_back()
        # Before ``_reschedule``, which forgets the phyints this step touched.
        if self._changed or self.config is not self._step_config or self._verdicts_moved():
            self.generation += 1
            if self._changed:
                self._changed = False
                self._failing = {name: self._losing(pi) for name, pi in self.phyints.items()}
        self._reschedule()
        return fx

    def next_deadline(self) -> float | None:
        """When the machine next needs a ``Tick``: the earliest wake-up of a phyint, group or rescan."""
        if self._deadline_known:
            return self._deadline  # the runtime asks after every step: most change nothing of it
        if self._resched_all:
            self._reschedule()
        heap, wakes = self._heap, self._wakes
        while heap and wakes.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # stale: that phyint's wake-up moved
        best = heap[0][0] if heap else None
        t = self.next_rescan
        if t is not None and (best is None or t < best):
            best = t
        t = self._settling_at
        if t is not None and (best is None or t < best):
            best = t
        self._deadline = best
        self._deadline_known = True
        return best

    def reported_state(self, name: str) -> str:
        """State for queries: NOTARGETS shows as "unknown" (§2.7)."""
        pi = self.phyints[name]
        if pi.state is State.RUNNING and pi.instances and not any(
            i.active_targets() for i in pi.instances.values()
        ):
            return "unknown"
        return {State.RUNNING: "ok", State.FAILED: "failed", State.OFFLINE: "offline"}[pi.state]

    # -- helpers -----------------------------------------------------------------------

    def _log(self, level: str, message: str) -> None:
        self._fx.append(Log(level, message))

    def _set_state(self, pi: Phyint, new: State, now: float) -> None:
        if pi.state is new:
            return
        if (pi.state, new) not in TRANSITIONS:
            raise AssertionError(f"illegal phyint transition {pi.state} -> {new} on {pi.name}")
        self._undo_states.setdefault(pi.name, (pi.state, pi.since))
        pi.state = new
        pi.since = now
        self._changed = True
        self._resched_all = True  # the state decides whether losses are judged (``_wake``)

    def _set_failed(self, grp: Group, failed: bool) -> None:
        self._undo_groups.setdefault(grp.name, grp.failed)
        grp.failed = failed
        self._changed = True

    @staticmethod
    def _losing(pi: Phyint) -> bool:
        """Whether ``snapshot`` reports the probes of ``pi`` as failed."""
        for inst in pi.instances.values():
            if inst.consecutive_losses() >= NUM_PROBE_FAILS:
                return True
        return False

    def _verdicts_moved(self) -> bool:
        """Whether a probe step changed a probe verdict of a phyint it touched.

        Only the phyints the step sent for, judged or took a reply of can
        have new losses or acknowledgements; a few slots each to look at.
        """
        moved = False
        for name in self._touched:
            pi = self.phyints.get(name)
            losing = pi is not None and self._losing(pi)
            if self._failing.get(name, False) != losing:
                self._failing[name] = losing
                moved = True
        return moved

    def _itf(self, name: str) -> Interface:
        itf = self.config.get(name)
        assert itf is not None
        return itf

    def _put(self, itf: Interface) -> None:
        self.config = self.config.with_interface(itf)

    def _execute(self, names: tuple[str, ...], success: tuple[Effect, ...] = (),
                 failure: tuple[Effect, ...] = ()) -> None:
        self.executing = True
        # This step's undo records, not copies: later changes of the step go back too.
        self._rollback = (self._step_config, self._undo_states, self._undo_groups)
        self._resched_all = True  # rare, and what it changes may reach beyond one phyint
        self._fx.append(Execute(self.config, names, success, failure))

    def _roll_back(self) -> None:
        """The kernel refused a change: the machine goes back to what it was before it."""
        if self._rollback is None:
            return
        config, states, groups = self._rollback
        self._rollback = None
        self.config = config
        for name, (state, since) in states.items():
            pi = self.phyints.get(name)
            if pi is not None:
                pi.state, pi.since = state, since
        for name, failed in groups.items():
            if name in self.groups:
                self.groups[name].failed = failed

    # -- wake-ups ----------------------------------------------------------------------

    def _wake(self, pi: Phyint) -> float | None:
        """When ``pi`` next needs a tick: a probe to send, a loss to judge, a held repair.

        Failure detection (§2.5, §2.7): a RUNNING NIC fails once
        NUM_PROBE_FAILS consecutive probes are unanswered, a probe being
        unanswered (LOST) once ``sent + CRTT`` has passed (the group
        interval without a CRTT).  mpd_probe.c looks at the outstanding
        probes only when it sends the next one, 0.5 to 1.5 probe intervals
        later, so the fifth loss was known that much after the rule held;
        with the send and loop delays the failure could come after the FDT.
        Decision: the probe whose loss may complete the run
        (``Instance.loss_deadline``) is judged at its own expiry.  The
        failure is declared as soon as the rule holds and never before: no
        probe is lost before its wait, as in Solaris.  Every other loss is
        still settled at the next probe, as mpd_probe.c does, which costs no
        wake-up.
        """
        wake = pi.repair_hold_until
        if pi.state is _OFFLINE or not pi.link_up:
            return wake  # what ``_tick`` skips must not wake it
        judging = pi.state is _RUNNING
        interval = -1.0
        for inst in pi.instances.values():
            t = inst.next_send
            if t is not None and (wake is None or t < wake):
                wake = t
            if judging and inst.order:
                if interval < 0:
                    interval = self._group(pi).interval
                t = inst.loss_deadline(interval)
                if t is not None and (wake is None or t < wake):
                    wake = t
        return wake

    def _reschedule(self) -> None:
        """Bring the wake-ups up to date after a step (see ``__init__``)."""
        if self._resched_all:
            self._resched_all = False
            self._deadline_known = False
            self._touched.clear()
            self._wakes = {}
            for name, pi in self.phyints.items():
                w = self._wake(pi)
                if w is not None:
                    self._wakes[name] = w
            self._heap = [(w, name) for name, w in self._wakes.items()]
            heapq.heapify(self._heap)
            settling = [g.settling_until for g in self.groups.values() if g.settling_until is not None]
            self._settling_at = min(settling) if settling else None
            return
        wakes = self._wakes
        for name in self._touched:
            touched = self.phyints.get(name)
            w = self._wake(touched) if touched is not None else None
            if w != wakes.get(name):
                self._deadline_known = False
                if w is None:
                    del wakes[name]
                else:
                    wakes[name] = w
                    heapq.heappush(self._heap, (w, name))
        self._touched.clear()
        if len(self._heap) > 4 * len(wakes) + 64:
            self._heap = [(w, name) for name, w in wakes.items()]  # drop the stale entries
            heapq.heapify(self._heap)

    def _due(self, now: float) -> list[Phyint]:
        """The phyints whose wake-up has come, earliest first (then by name)."""
        heap, wakes = self._heap, self._wakes
        names: list[str] = []
        while heap and heap[0][0] <= now:
            w, name = heapq.heappop(heap)
            if wakes.get(name) == w:
                del wakes[name]
                names.append(name)
        if not names:
            return []
        self._deadline_known = False
        self._touched.update(names)
        return [pi for name in names if (pi := self.phyints.get(name)) is not None]

    def _group(self, pi: Phyint) -> Group:
        grp = self.groups.get(pi.group)
        if grp is None:
            grp = Group(pi.group, self.settings.failure_detection_time_ms)
            self.groups[pi.group] = grp
        return grp

    def _members(self, pi: Phyint) -> list[Phyint]:
        if not pi.group:
            return [pi]
        return [p for p in self.phyints.values() if p.group == pi.group]

    def _usable(self, name: str) -> bool:
        pi = self.phyints.get(name)
        return pi is not None and pi.state is State.RUNNING and pi.link_up

    @staticmethod
    def _probe_capable(pi: Phyint) -> bool:
        return any(i.active_targets() for i in pi.instances.values())

    # -- resync ------------------------------------------------------------------------

    def _tracked(self, itf: Interface) -> bool:
        if itf.loopback or not itf.multicast or not itf.plumbed:
            return False
        return bool(itf.group) or not self.settings.track_interfaces_only_with_groups

    def _resync(self, ev: Resync) -> None:
        now = ev.now
        self.config = ev.config
        self.routers = ev.routers
        self.routers6 = ev.routers6
        first = not self.started
        self.started = True
        self.next_rescan = now + self.timing.scan_interval
        seen: set[str] = set()
        adopted_down: list[Phyint] = []
        for itf in ev.config.interfaces:
            if not self._tracked(itf):
                continue
            seen.add(itf.name)
            pi = self.phyints.get(itf.name)
            if pi is not None and pi.group != itf.group:
                self._forget(pi)  # a group change re-creates the phyint (§2.2)
                pi = None
            if pi is None:
                pi = self._adopt(itf, now)
                if not (itf.link_up and itf.running):
                    adopted_down.append(pi)
            self._select_tests(pi, itf, now)
        # Links found down are judged once every member is known, so that a
        # dead first NIC is not taken for a dead group (§2.2: the real link
        # state is applied after the phyint is created as RUNNING).
        for pi in adopted_down:
            self._link_down(pi, now)
        self._check_homogeneous()
        self._retry(now, skip=adopted_down)
        for name in [n for n in self.phyints if n not in seen]:
            self._forget(self.phyints[name])
            self._log("info", f"inet {name} has been removed from kernel")
        if first:
            # Peers may hold stale caches from before a restart: announce every
            # data address the daemon manages (linux-mapping.md, "Without GARP").
            for pi in self.phyints.values():
                addrs = tuple(lg.address.ip for lg in self._itf(pi.name).logicals
                              if lg.is_data and lg.up and not lg.kernel_owned and lg.address is not None)
                if addrs:
                    self._fx.append(Announce(pi.name, addrs))
        self._rebalance(now)

    def _adopt(self, itf: Interface, now: float) -> Phyint:
        """A NIC appears: start from the flags in the store (restart safety)."""
        state = State.OFFLINE if itf.offline else State.FAILED if itf.failed else State.RUNNING
        pi = Phyint(itf.name, itf.group, state, link_up=True, since=now, appeared=now)
        self.phyints[itf.name] = pi
        self._group(pi)
        if itf.group and self._group(pi).failed and state is State.RUNNING:
            # A NIC joining a failed group is failed at once (§2.2).
            self._set_state(pi, State.FAILED, now)
            self._put(replace(itf, failed=True))
            self._execute((itf.name,))
        return pi

    def _forget(self, pi: Phyint) -> None:
        for family in list(pi.instances):
            self._fx.append(CloseProbe(pi.name, family))
        del self.phyints[pi.name]

    def _select_tests(self, pi: Phyint, itf: Interface, now: float) -> None:
        had_any = bool(pi.instances)
        for family in (Family.INET, Family.INET6):
            lg = select_test_address(itf, family) if pi.state is not State.OFFLINE else None
            inst = pi.instances.get(family)
            address = lg.address.ip if lg is not None and lg.address is not None else None
            if inst is not None and (address is None or inst.test_address != address):
                del pi.instances[family]
                self._fx.append(CloseProbe(pi.name, family))
                inst = None
            if address is None or lg is None:
                continue
            if self._duplicate_test(pi, family, address):
                if inst is not None:
                    del pi.instances[family]
                    self._fx.append(CloseProbe(pi.name, family))
                continue
            if inst is None:
                inst = Instance(test_address=address, created_at=now,
                                snxt=first_seq(self._seq_secret, self._instances_made))
                self._instances_made += 1
                pi.instances[family] = inst
                self._fx.append(OpenProbe(pi.name, family, address))
                if pi.link_up:
                    inst.start(now, self._group(pi).interval, self.rng)
            self._targets(inst, itf, lg)
        if pi.state is State.OFFLINE:
            return
        if (not pi.instances and not pi.duplicate and now - pi.appeared >= self.timing.testaddr_conf_time
                and not pi.no_test_logged):
            pi.no_test_logged = True
            self._log("err", f"No test address configured on interface {pi.name}; "
                             "disabling probe-based failure detection on it")
        if pi.instances and pi.no_test_logged and not had_any:
            pi.no_test_logged = False
            self._log("err", f"Test address now configured on interface {pi.name}; "
                             "enabling probe-based failure detection on it")

    def _duplicate_test(self, pi: Phyint, family: Family, address: IPAddress) -> bool:
        """§2.3 ``check_addr_unique``: a test address another member probes from disables this one."""
        if not pi.group:
            return False  # not checked in the anonymous group
        dup = any(m is not pi and (i := m.instances.get(family)) is not None and i.test_address == address
                  for m in self._members(pi))
        if dup and family not in pi.duplicate:
            pi.duplicate.add(family)
            self._log("err", f"Test address {address} is not unique in group; disabling probe-based "
                             f"failure detection on {pi.name}")
        elif not dup and family in pi.duplicate:
            pi.duplicate.discard(family)
            self._log("err", f"Test address {address} is unique in group; enabling probe-based "
                             f"failure detection on {pi.name}")
        return dup

    def _check_homogeneous(self) -> None:
        """§2.12: a member missing a family the group uses may not take its addresses."""
        for pi in self.phyints.values():
            if not pi.group:
                continue
            itf = self._itf(pi.name)
            used = {f for m in self._members(pi) for f in self._itf(m.name).plumbed}
            missing = {f for f in used if f not in itf.plumbed}
            for family in sorted(missing - pi.inhomogeneous):
                version = "IPv4" if family is Family.INET else "IPv6"
                self._log("err", f"NIC {pi.name} of group {pi.group} is not plumbed for {version} and may "
                                 "affect failover capability")
            if pi.inhomogeneous and not missing:
                self._log("err", f"NIC {pi.name} is now consistent with group {pi.group} and failover "
                                 "capability is restored")
            pi.inhomogeneous = missing

    def _own_addresses(self) -> set[IPAddress]:
        # A link-local is the kernel's: Linux answers probes on it even while
        # the view shows it down (offline, DAD pending), so it never becomes
        # a target of another NIC of this host.
        return {lg.address.ip for itf in self.config.interfaces for lg in itf.logicals
                if lg.address is not None and (lg.up or lg.kernel_owned)}

    def _targets(self, inst: Instance, itf: Interface, lg: Logical) -> None:
        """Routers in the test subnet, or the point-to-point destination (§2.6)."""
        assert lg.address is not None
        if lg.destination is not None:
            inst.set_routers([lg.destination], inst.created_at)
            return
        own = self._own_addresses()
        subnet = lg.address.network
        candidates: list[IPAddress] = list(self.routers)
        if lg.address.version == 6:
            # IPv6: a router goes to the phyint its route leaves through and,
            # in a named group, to every member (§2.6).
            members = {itf.name} | {m.name for m in self.config.group_members(itf.group)}
            candidates += [gw for dev, gw in self.routers6 if dev in members]
        routers = [r for r in dict.fromkeys(candidates)
                   if r.version == lg.address.version and r in subnet and r not in own]
        inst.set_routers(routers, inst.created_at)

    # -- link state --------------------------------------------------------------------

    def _link(self, ev: LinkChanged) -> None:
        pi = self.phyints.get(ev.ifname)
        if pi is None or pi.link_up == ev.up:
            return
        if ev.up:
            self._link_up(pi, ev.now)
        else:
            self._link_down(pi, ev.now)

    def _link_down(self, pi: Phyint, now: float) -> None:
        pi.link_up = False
        self._log("err", f"The link has gone down on {pi.name}")
        for inst in pi.instances.values():
            inst.clear_history()
            inst.stop()
        # Link-down is judged at once, whatever the quiet period (§2.5).
        if pi.state is State.RUNNING:
            self._failure(pi, now, link_down=True)

    def _link_up(self, pi: Phyint, now: float) -> None:
        pi.link_up = True
        self._log("err", f"The link has come up on {pi.name}")
        pi.link_ups = [t for t in pi.link_ups if now - t < LINK_UP_WINDOW] + [now]
        for inst in pi.instances.values():
            inst.start(now, self._group(pi).interval, self.rng)
        if pi.state is State.FAILED and not self._probe_capable(pi):
            self._try_link_repair(pi, now)

    def _try_link_repair(self, pi: Phyint, now: float) -> None:
        """A link-only NIC repairs on link up, unless the link is flapping (§2.7)."""
        recent = [t for t in pi.link_ups if now - t < LINK_UP_WINDOW]
        if len(recent) > LINK_UP_PERMIN:
            pi.repair_hold_until = min(recent) + LINK_UP_WINDOW
            if not pi.flap_logged:
                pi.flap_logged = True
                self._log("err", f"The link has come up on {pi.name} more than {LINK_UP_PERMIN} times "
                                 "in the last minute; disabling failback until it stabilizes")
            return
        pi.repair_hold_until = None
        pi.flap_logged = False
        self._repaired(pi, now)

    # -- probes --------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        if self.next_rescan is not None and now >= self.next_rescan:
            # The runtime rereads the kernel now; the retry rules run here too,
            # so a change the kernel refused earlier is tried again.
            self.next_rescan = now + self.timing.scan_interval
            self._resched_all = True
            self._retry(now)
        if self._settling_at is not None and now >= self._settling_at:
            self._resched_all = True
            for grp in self.groups.values():
                if grp.settling_until is not None and now >= grp.settling_until:
                    grp.settling_until = None
                    self._rebalance(now)  # members still failing now give their addresses away
        # Only the phyints whose wake-up has come: nothing is due on the others.
        for pi in self._due(now):
            if pi.repair_hold_until is not None and now >= pi.repair_hold_until:
                pi.repair_hold_until = None
                if pi.state is State.FAILED and pi.link_up and not self._probe_capable(pi):
                    self._try_link_repair(pi, now)
            if pi.state is _OFFLINE or not pi.link_up:
                continue
            interval = self._group(pi).interval
            user_interval = self._user_interval
            ticked = False
            for family, inst in pi.instances.items():
                if inst.expire(now, interval):
                    ticked = True  # a loss may have completed the run: judge now (``_wake``)
                due = inst.next_send
                if due is None or now < due:  # not ``inst.due(now)``
                    continue
                ticked = True
                self._dead_targets(pi, inst, now)
                probe = inst.next_probe(now, user_interval, interval, self.rng)
                self._fx.append(SendProbe(pi.name, family, inst.test_address, probe.target, probe.seq,
                                          probe.kind))  # ``_send``
                if not inst.uses_routers and len(inst.active_targets()) == 1:
                    # One host target is not enough: keep discovering (§2.5 step 5).
                    self._send(pi, family, inst, Probe(ProbeKind.MULTICAST, None, 0))
            if ticked:
                self._judge(pi, now)

    def _send(self, pi: Phyint, family: Family, inst: Instance, probe: Probe) -> None:
        self._fx.append(SendProbe(pi.name, family, inst.test_address, probe.target, probe.seq, probe.kind))

    def _dead_targets(self, pi: Phyint, inst: Instance, now: float) -> None:
        """A target that lost NUM_PROBE_FAILS probes while others answer is dropped (§2.6)."""
        if pi.state is not _RUNNING:
            return
        dead = [t for t in inst.targets if t.status is _ACTIVE and t.consecutive_lost >= NUM_PROBE_FAILS]
        if not dead or inst.consecutive_losses() >= NUM_PROBE_FAILS:
            return
        self._changed = True  # the targets change
        for t in dead:
            inst.drop_dead_target(t, now)
            if not t.is_router:
                self._send(pi, Family(t.address.version), inst, Probe(ProbeKind.MULTICAST, None, 0))

    def _judge(self, pi: Phyint, now: float) -> None:
        if pi.state is _RUNNING:
            # failure_state() needs NUM_PROBE_FAILS losses on every probing
            # instance: without them on one at least, nothing to judge (most ticks).
            for inst in pi.instances.values():
                if inst.consecutive_losses() >= NUM_PROBE_FAILS:
                    break
            else:
                return
            if any(i.in_quiet_period(now, self.timing.quiet_period) for i in pi.instances.values()):
                return
            self._failure(pi, now, link_down=False)
        elif pi.state is _FAILED and pi.link_up:
            if any(i.consecutive_acks() >= NUM_PROBE_REPAIRS for i in pi.instances.values()):
                self._repaired(pi, now)

    def _reply(self, ev: ProbeReplied) -> bool:
        """A probe reply; False when it cannot have moved the phyint's wake-up or verdict (see below)."""
        pi = self.phyints.get(ev.ifname)
        if pi is None or not pi.link_up:
            return True  # replies while the link is down are ignored (§2.4)
        inst = pi.instances.get(ev.family)
        if inst is None:
            return True
        kind = ev.kind
        if kind is _MULTICAST:
            self._discovered(pi, ev.family, ev.source, ev.now)
            return True
        if kind is _RTT:
            t = inst.target(ev.source)
            if t is not None and t.crtt_ms is not None and t.crtt_with(ev.rtt_ms) < t.crtt_ms:
                t.fold(ev.rtt_ms)  # RTT-only replies may only lower the CRTT
            return True
        # Far from failing (at most the two pending probes could be lost on
        # top of the run) and not reported failing: the instance has no loss
        # deadline before this reply nor after it, and an acknowledgement
        # cannot make the verdict "failing", so the phyint's wake-up and
        # verdict stay (``_wake``, ``_verdicts_moved``).  Nearly every reply.
        settled = inst.consecutive_losses() + 2 < NUM_PROBE_FAILS and not self._failing.get(pi.name, False)
        verdict, slot = inst.on_reply(ev.seq, ev.source, ev.now)
        if verdict is _ACCEPTED or verdict is _LATE:
            assert slot is not None
            grp = self._group(pi)
            # An RTT sample counts only from a running NIC of a working group,
            # if not absurd, and, for a late reply, if no newer probe to that
            # target was answered already.
            if (pi.state is _RUNNING and not grp.failed
                    and ev.rtt_ms <= PROBE_STATS_COUNT * grp.interval * 1000
                    and (verdict is _ACCEPTED or not inst.newer_ack_to(slot))):
                t = inst.target(slot.target)  # the reply's source (not FAKE), as the slot holds it
                if t is not None:
                    self._rtt(pi, inst, t, ev.rtt_ms, ev.now, ev.family, grp)
            return verdict is _LATE or not settled  # a late reply shortens the run of losses
        if verdict is Reply.OUT_OF_WINDOW:
            self._log("debug", f"out of window probe seq {ev.seq} snxt {inst.snxt} on {pi.name} "
                               f"from {ev.source}")
            return True
        assert slot is not None  # FAKE or DUPLICATE
        what = "Fake probe reply" if verdict is Reply.FAKE else "Duplicate probe reply"
        self._log("debug", f"probe status {SLOT_STATUS_CODES[slot.status]} {what} seq {ev.seq} "
                           f"snxt {inst.snxt} on {pi.name} from {ev.source}")
        return True

    def _rtt(self, pi: Phyint, inst: Instance, t: Target, m: int, now: float, family: Family,
             grp: Group) -> None:
        """Fold an RTT sample of ``t`` (a reply of ``pi``'s, whose group is ``grp``)."""
        interval_ms = grp.interval * 1000
        # A sample that alone would push the CRTT above the interval is
        # suspect, also the first one after a reset (CRTT = 3 x sample):
        # at FDT 100 ms one scheduling hiccup would otherwise raise the FDT.
        if t.crtt_with(m) > interval_ms:
            if len(t.deferred_samples) < MAXDEFERREDRTT:
                t.deferred_samples.append(m)  # a suspect sample is deferred once
                return
            for sample in t.deferred_samples:  # the second suspect one: believe both
                t.fold(sample)
        t.deferred_samples.clear()
        t.fold(m)
        crtt = t.crtt_ms
        assert crtt is not None
        if crtt > interval_ms:
            others = [o for o in inst.active_targets() if o is not t]
            exception = len(inst.active_targets()) >= 4 and all(
                o.crtt_ms is not None and o.crtt_ms <= interval_ms / EXCEPTION_FACTOR for o in others
            )
            self._changed = True  # a target goes, or the group's FDT rises
            if exception:
                inst.drop_dead_target(t, now)
                return
            new_interval_ms = NEXT_FDT_MULTIPLE * crtt
            grp.fdt_ms = int(new_interval_ms * FDT_DIVISOR)
            self.last_raise = now
            self._resched_all = True  # every member's losses now wait the new interval
            if grp.name:
                self._log("err", f"Cannot meet requested failure detection time of "
                                 f"{self.settings.failure_detection_time_ms} ms on ({family.word} {pi.name}) "
                                 f"new failure detection time for group \"{grp.name}\" is {grp.fdt_ms} ms")
            return
        user_fdt = self.settings.failure_detection_time_ms
        # The cheap test first: the FDT is nearly always the user's.
        if (grp.fdt_ms > user_fdt and crtt < interval_ms / LOWER_FDT_TRIGGER
                and now - self.last_raise >= MIN_SETTLING_TIME and self._all_fast(grp, interval_ms)):
            grp.fdt_ms = max(grp.fdt_ms // NEXT_FDT_MULTIPLE, user_fdt)
            self._changed = True
            self._resched_all = True
            if grp.name:
                self._log("err", f"Improved failure detection time {grp.fdt_ms} ms on "
                                 f"({family.word} {pi.name}) for group \"{grp.name}\"")

    def _all_fast(self, grp: Group, interval_ms: float) -> bool:
        for pi in self.phyints.values():
            if pi.group != grp.name or pi.state is not State.RUNNING:
                continue
            for inst in pi.instances.values():
                for t in inst.active_targets():
                    if t.crtt_ms is None or t.crtt_ms > interval_ms / LOWER_FDT_TRIGGER:
                        return False
        return True

    def _discovered(self, pi: Phyint, family: Family, source: IPAddress, now: float) -> None:
        """A multicast discovery responder becomes a host target, group-wide (§2.6)."""
        if int(source) == 0 or source in self._own_addresses():
            return
        for member in self._members(pi):
            inst = member.instances.get(family)
            itf = self.config.get(member.name)
            if inst is None or itf is None:
                continue
            lg = select_test_address(itf, family)
            if lg is None or lg.address is None or source not in lg.address.network:
                continue
            if inst.add_host(source, now):
                self._changed = True  # a new target, of this member or another

    # -- failure and repair ------------------------------------------------------------

    def _failure(self, pi: Phyint, now: float, *, link_down: bool) -> None:
        """``failure_state``: nothing, a NIC failure, or a group failure (§2.7)."""
        first_loss: float | None = None
        if not link_down:
            capable = [i for i in pi.instances.values() if i.active_targets()]
            if not capable or any(i.consecutive_losses() < NUM_PROBE_FAILS for i in capable):
                return
            losses = [t for i in capable if (t := i.first_loss_time()) is not None]
            first_loss = min(losses) if losses else now
        grp = self._group(pi)
        others = [m for m in self._members(pi) if m is not pi]
        capable_members = [m for m in self._members(pi) if self._probe_capable(m)]
        if not pi.group or capable_members == [pi]:
            self._nic_failure(pi, now)
            return
        alive = [m for m in others if m.state is State.RUNNING and m.link_up and not grp.failed]
        if link_down:
            nic = bool(alive)
        else:
            assert first_loss is not None
            nic = any(
                (t := i.last_ack_time()) is not None and t > first_loss
                for m in alive for i in m.instances.values()
            ) or any(not self._probe_capable(m) for m in alive)
        if nic:
            self._nic_failure(pi, now)
        else:
            self._group_failure(grp, now)

    def _nic_failure(self, pi: Phyint, now: float) -> None:
        self._log("err", f"NIC failure detected on {_of_group(pi.name, pi.group)}")
        itf = self._itf(pi.name)
        was_inactive = itf.inactive
        self._set_state(pi, State.FAILED, now)
        for inst in pi.instances.values():
            inst.reset_rtts()
        self._put(replace(itf, failed=True, held_inactive=False))
        if pi.group and not itf.offline and not was_inactive and itf.hosts_data:
            if self._move_away(pi.name, log=True):
                return
        self._execute((pi.name,))

    def _move_away(self, name: str, *, log: bool, emptying_standby: bool = False,
                   reply: tuple[Effect, ...] = (), reply_fail: tuple[Effect, ...] = ()) -> bool:
        """Fail the data addresses of ``name`` over; False when there is nowhere to go."""
        dest = failover.choose_destination(self.config, name, usable=self._usable,
                                           emptying_standby=emptying_standby)
        if dest is None:
            return False
        self.config = failover.fail_over(self.config, name, dest)
        success: tuple[Effect, ...] = reply
        if log:
            success = (Log("err", f"Successfully failed over from NIC {name} to NIC {dest}"), *reply)
        self._execute((name, dest), success, reply_fail)
        return True

    def _group_failure(self, grp: Group, now: float) -> None:
        """All members lost their probes together: no failover (§2.7)."""
        self._log("err", f"All Interfaces in group {grp.name} have failed")
        self._set_failed(grp, True)
        names: list[str] = []
        for m in self.phyints.values():
            if m.group != grp.name or m.state is State.OFFLINE:
                continue
            if m.state is State.RUNNING:
                self._set_state(m, State.FAILED, now)
            for inst in m.instances.values():
                inst.reset_rtts()
                inst.flush_hosts()
            self._put(replace(self._itf(m.name), failed=True))
            names.append(m.name)
        self._execute(tuple(names))

    def _repaired(self, pi: Phyint, now: float) -> None:
        self._log("err", f"NIC repair detected on {_of_group(pi.name, pi.group)}")
        grp = self._group(pi)
        recovered: tuple[Effect, ...] = ()
        if grp.failed:
            self._set_failed(grp, False)
            grp.settling_until = now + grp.fdt_ms / 1000.0
            self._resched_all = True
            # Solaris logs this after the failback attempt of the repair.
            recovered = (Log("err", f"At least 1 interface ({pi.name}) of group {grp.name} has repaired"),)
        itf = self._itf(pi.name)
        if pi.state is not State.OFFLINE:
            self._set_state(pi, State.RUNNING, now)
        itf = replace(itf, failed=False)
        self._put(itf)
        alone = len(self._members(pi)) < 2
        if pi.state is State.OFFLINE or itf.standby or not pi.group or alone:
            self._fx.extend(recovered)
            self._execute((pi.name,))
            self._rebalance(now)
            return
        if self.settings.failback:
            # try_failback: a failback is tried from every other member, and
            # "Successfully failed back" is logged even when nothing had to
            # move (the NIC still had FAILED set when it was tried, §2.8).
            self._fail_back(pi.name, log=True, reply=recovered)
            return
        if not itf.hosts_data:
            # FAILBACK=no: the repaired NIC is held INACTIVE, a de-facto standby (§2.8).
            self._put(replace(itf, held_inactive=True))
        self._fx.extend(recovered)
        self._execute((pi.name,))
        self._rebalance(now)

    def _fail_back(self, name: str, *, log: bool, reply: tuple[Effect, ...] = (),
                   extra: Callable[[Config], Config] | None = None) -> None:
        names = {name} | {i.name for i in self.config.interfaces
                          if any(lg.home == name for lg in i.logicals)}
        self.config = failover.fail_back(self.config, name)
        if extra is not None:
            self.config = extra(self.config)
        success: tuple[Effect, ...] = reply
        if log:
            success = (Log("err", f"Successfully failed back to NIC {name}"), *reply)
        self._execute(tuple(sorted(names)), success, reply)

    def _retry(self, now: float, skip: list[Phyint] | None = None) -> None:
        """Judge again a link-down failure whose apply the kernel refused."""
        for pi in list(self.phyints.values()):
            if pi.state is State.RUNNING and not pi.link_up and pi not in (skip or ()):
                self._failure(pi, now, link_down=True)

    def _still_failing(self, pi: Phyint, now: float) -> bool:
        """Invariant 2's failure test: link down, or every probing instance still losing."""
        if not pi.link_up:
            return True
        grp = self._group(pi)
        if grp.settling_until is not None and now < grp.settling_until:
            return False  # the group has just recovered: give it the FDT to come back
        capable = [i for i in pi.instances.values() if i.active_targets()]
        return bool(capable) and all(i.consecutive_losses() >= NUM_PROBE_FAILS for i in capable)

    def _rebalance(self, now: float) -> None:
        """The retry invariants of every rescan (§2.7), while no group has failed.

        1. a FAILED or OFFLINE member that still hosts data addresses fails them over,
           and a STANDBY member holding its own data addresses gives them to an active one;
        2. (failback below covers a standby hosting addresses whose home is usable again);
        3. a RUNNING member whose addresses are elsewhere takes them back (FAILBACK=yes).
        """
        if self.executing:
            return
        for pi in list(self.phyints.values()):
            if not pi.group or self._group(pi).failed:
                continue
            itf = self._itf(pi.name)
            if itf.hosts_data and (pi.state is State.OFFLINE
                                   or (pi.state is State.FAILED and self._still_failing(pi, now))):
                if self._move_away(pi.name, log=pi.state is State.FAILED):
                    return
            if pi.state is State.RUNNING and failover.standby_to_empty(self.config, pi.name):
                # A standby that holds its own data addresses gives them to an
                # active member (Solaris kernel INACTIVE rule, invariant 1).
                if self._move_away(pi.name, log=False, emptying_standby=True):
                    return
            if (pi.state is State.RUNNING and pi.link_up and not itf.standby and self.settings.failback
                    and failover.addresses_elsewhere(self.config, pi.name)):
                self._fail_back(pi.name, log=False)
                return
        # Re-assert the FAILED flag where something else cleared it, and clear it
        # where it is left over on a running NIC (§2.7, end).
        for pi in self.phyints.values():
            itf = self._itf(pi.name)
            want = pi.state is State.FAILED
            if itf.failed != want:
                self._put(replace(itf, failed=want))
                self._execute((pi.name,))
                return

    # -- if_mpadm ------------------------------------------------------------------------

    def _offline(self, ev: AdminOffline) -> None:
        pi = self.phyints.get(ev.ifname)
        if pi is None or pi.state is State.OFFLINE:
            self._fx.append(ReplyTo(ev.request_id, MPATHD_SYS_ERROR, EINVAL))
            return
        grp = self._group(pi)
        if not pi.group:
            usable = 0
        elif grp.failed:
            usable = sum(1 for m in self._members(pi) if m.state is not State.OFFLINE)
        else:
            usable = sum(1 for m in self._members(pi) if m.state is State.RUNNING)
        if usable < ev.min_redundancy:
            self._fx.append(ReplyTo(ev.request_id, MPATHD_MIN_RED_ERROR))
            return
        itf = self._itf(pi.name)
        if itf.hosts_data:
            dest = failover.choose_destination(self.config, pi.name, usable=self._usable)
            if dest is None:
                self._fx.append(ReplyTo(ev.request_id, MPATHD_MIN_RED_ERROR))
                return
            self.config = failover.fail_over(self.config, pi.name, dest)
            names: tuple[str, ...] = (pi.name, dest)
            done = f"Successfully failed over from NIC {pi.name} to NIC {dest}"
            logs: tuple[Effect, ...] = (Log("err", done),)
        else:
            names, logs = (pi.name,), ()
        # if_mpadm -d downs every logical of the NIC, test addresses too (§5);
        # here it is part of the same apply, so it is all or nothing.  The
        # kernel's IPv6 link-local stays in the kernel; only its UP flag (in
        # the store) goes, so it is no test address until if_mpadm -r.
        itf = self._itf(pi.name)
        self._put(replace(itf, offline=True, held_inactive=False,
                          logicals=tuple(replace(lg, up=False) for lg in itf.logicals)))
        self._set_state(pi, State.OFFLINE, ev.now)
        for family in list(pi.instances):
            self._fx.append(CloseProbe(pi.name, family))
        pi.instances.clear()
        ok = ReplyTo(ev.request_id)
        fail = ReplyTo(ev.request_id, MPATHD_SYS_ERROR, 5)  # EIO: the apply failed
        self._execute(names, (*logs, ok), (fail,))

    def _undo_offline(self, ev: AdminUndoOffline) -> None:
        pi = self.phyints.get(ev.ifname)
        if pi is None or pi.state is not State.OFFLINE:
            self._fx.append(ReplyTo(ev.request_id, MPATHD_SYS_ERROR, EINVAL))
            return
        self._set_state(pi, State.RUNNING if pi.link_up else State.FAILED, ev.now)

        def reattach(config: Config) -> Config:
            itf = config.get(pi.name)
            assert itf is not None
            # if_mpadm -r brings up the test addresses only (§5).
            logicals = tuple(replace(lg, up=True) if lg.nofailover and lg.address is not None else lg
                             for lg in itf.logicals)
            return config.with_interface(replace(itf, offline=False, failed=not pi.link_up,
                                                 logicals=logicals))

        ok = ReplyTo(ev.request_id)
        if pi.link_up:
            # -r always fails back, whatever FAILBACK says (§2.9).
            self._fail_back(pi.name, log=True, reply=(ok,), extra=reattach)
        else:
            self.config = reattach(self.config)
            self._execute((pi.name,), (ok,), (ok,))
        itf = self._itf(pi.name)
        self._select_tests(pi, itf, ev.now)

    # -- queries -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """The daemon's view for queries (``ipmpstat``, ``if_mpadm``), JSON-ready.

        Group state follows Solaris 11's ipmpstat: ``ok`` when every member is
        usable, ``failed`` when none is, ``degraded`` in between.  ``probe`` is
        ``ok``/``failed`` while probing, ``unknown`` without targets and
        ``disabled`` without a test address; ``active`` means the interface
        carries data addresses now.
        """
        groups: dict[str, object] = {}
        for name, grp in self.groups.items():
            members = [p for p in self.phyints.values() if p.group == name]
            if not members:
                continue
            usable = [p for p in members if p.state is State.RUNNING and p.link_up]
            if grp.failed or not usable:
                state = "failed"
            elif len(usable) < len(members):
                state = "degraded"
            else:
                state = "ok"
            groups[name] = {"state": state, "fdt_ms": grp.fdt_ms,
                            "members": sorted(p.name for p in members)}
        interfaces: dict[str, object] = {}
        addresses: list[dict[str, object]] = []
        for name, pi in sorted(self.phyints.items()):
            itf = self._itf(name)
            if not pi.instances:
                probe = "disabled"
            elif not self._probe_capable(pi):
                probe = "unknown"
            elif any(i.consecutive_losses() >= NUM_PROBE_FAILS for i in pi.instances.values()):
                probe = "failed"
            else:
                probe = "ok"
            interfaces[name] = {
                "group": pi.group,
                "state": self.reported_state(name),
                "type": "standby" if itf.standby else "normal",
                "link": "up" if pi.link_up else "down",
                "probe": probe,
                "active": itf.hosts_data,
                "standby": itf.standby,
                "inactive": itf.inactive,
                "failed": itf.failed,
                "offline": itf.offline,
                "probes": {f.word: {"test_address": str(i.test_address),
                                    "targets": [str(t.address) for t in i.active_targets()],
                                    "mode": "routes" if i.uses_routers else "multicast",
                                    "crtt_ms": {str(t.address): t.crtt_ms for t in i.active_targets()}}
                           for f, i in pi.instances.items()},
            }
            for lg in itf.logicals:
                if not lg.is_data or lg.kernel_owned or lg.address is None:
                    continue
                addresses.append({"address": str(lg.address), "family": lg.family.word,
                                  "interface": lg.name(name), "home": lg.home or name,
                                  "group": pi.group, "up": lg.up})
        return {"v": 1, "fdt_ms": self.settings.failure_detection_time_ms,
                "failback": self.settings.failback, "groups": groups,
                "interfaces": interfaces, "addresses": addresses}
