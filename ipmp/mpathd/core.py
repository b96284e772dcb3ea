"""The machine's state and its chokepoints: the one place each kind of change goes through.

``Core`` holds what in.mpathd knows (the configuration as the daemon wants
it, the phyints, the groups, the routers) and the helpers every job of the
machine shares: ``_set_state`` (every phyint state change, checked against
``TRANSITIONS``, a no-op when unchanged, as ``phyint_chstate``),
``_set_failed`` (a group's failed flag), ``_execute`` (an apply, with the
undo records a refused one goes back through), and the wake-ups.

The jobs are layered on it, each a class of its own module: ``Actions``
(failover, failback, the retry invariants), ``Detection`` (link state and
probe verdicts), ``Tracking`` (the kernel read: which NICs, test addresses,
targets) and ``Machine`` (the step, admin requests, queries).

The steps of a probe (its ``Tick``, its reply) cost the same with 2 NICs or
64: the wake-ups of the phyints are kept in a heap (``_wake``), a ``Tick``
looks only at the phyints it is due for, and a failed apply goes back
through undo records of the step, not a copy of every state taken before
each step.

Pure module: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import random
from ipaddress import IPv6Address

from ipmp.model import Config, Interface, IPAddress
from ipmp.mpathd.phyint import FDT_DIVISOR, TRANSITIONS, Group, Phyint, State, Timing
from ipmp.mpathd.probe import NUM_PROBE_FAILS
from ipmp.mpathd.settings import Settings
from ipmp.mpathd.steps import Effect, Execute, Log

__all__ = ["Core"]

#: The members the per-probe paths test, as plain names (see ``probe._UNACKED``).
_RUNNING = State.RUNNING
_OFFLINE = State.OFFLINE

#: What a step may have to go back to: config, phyint states, group failed flags.
_Rollback = tuple[Config, dict[str, tuple[State, float]], dict[str, bool]]

#: Solaris's own timing (tests pass shorter ones).
_DEFAULT_TIMING = Timing()


class Core:
    """The daemon's state, its chokepoints and its wake-ups (module doc)."""

    def __init__(self, settings: Settings, timing: Timing = _DEFAULT_TIMING, seed: int = 0,
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
        self._rollback: _Rollback | None = None
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

    def _own_addresses(self) -> set[IPAddress]:
        # A link-local is the kernel's: Linux answers probes on it even while
        # the view shows it down (offline, DAD pending), so it never becomes
        # a target of another NIC of this host.
        return {lg.address.ip for itf in self.config.interfaces for lg in itf.logicals
                if lg.address is not None and (lg.up or lg.kernel_owned)}

