"""The machine's change marker, ``Machine.generation``.

The machine reports its states (``StateChanged``) and the probe tracker
lists the instances again only when the generation moved (at 64 NICs a
snapshot on every probe step cost the daemon half a core).  So the
marker must move on every step that changes what ``snapshot()`` shows (its
round-trip figures excepted), or a state event is lost; and it must stay
put on the probe steps of a quiet group, or nothing was saved.  Every step
of the simulator goes through ``Checked``, which compares the snapshots
before and after it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import invariant

from ipmp.model import Config
from ipmp.mpathd import events
from ipmp.mpathd.snapshot import to_wire
from ipmp.mpathd.steps import Effect, Event, StateChanged
from tests.unit.mpathd_sim import ROUTERS, Sim, make_group
from tests.unit.test_machine_stateful import MpathdMachine


def visible(typed: Any) -> dict[str, Any]:
    """The snapshot without the round-trip figures, which move with every reply."""
    snapshot: dict[str, Any] = to_wire(typed)
    out = dict(snapshot)
    out["interfaces"] = {
        name: {**doc, "probes": {f: {k: v for k, v in p.items() if k != "crtt_ms"}
                                 for f, p in doc["probes"].items()}}
        for name, doc in snapshot["interfaces"].items()
    }
    return out


class Checked:
    """Wraps ``sim.machine.step``: records every step that changed the snapshot but not the generation."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.machine = sim.machine
        self.missed: list[str] = []
        self.bumps: Counter[str] = Counter()
        self.steps: Counter[str] = Counter()
        self._step = sim.machine.step
        self._generation = self.machine.generation
        self._seen = visible(self.machine.snapshot())
        sim.machine.step = self.step  # type: ignore[method-assign]

    def step(self, event: Event) -> list[Effect]:
        effects = self._step(event)
        kind = type(event).__name__
        seen = visible(self.machine.snapshot())
        self.steps[kind] += 1
        if self.machine.generation != self._generation:
            assert self.machine.generation > self._generation
            self.bumps[kind] += 1
        elif seen != self._seen:
            self.missed.append(f"{kind} at {self.sim.now:.3f}: the snapshot changed, the generation did not")
        self._generation = self.machine.generation
        self._seen = seen
        return effects


def started(config: Config | None = None, **kwargs: Any) -> tuple[Sim, Checked]:
    sim = Sim(config if config is not None else make_group(2), quiet_period=0.5, **kwargs)
    checked = Checked(sim)
    sim.start()
    return sim, checked


def test_a_quiet_group_keeps_its_generation() -> None:
    sim, checked = started(scan_interval=1000.0)
    sim.advance(5.0)  # targets found, the quiet period over
    before = sim.machine.generation
    steps = sum(checked.steps.values())
    sim.advance(30.0)
    probe_steps = sum(checked.steps.values()) - steps
    assert probe_steps > 300  # two NICs probing at FDT 700 ms: ~10 a second, with replies
    assert sim.machine.generation == before, checked.bumps
    assert checked.missed == []


def test_every_visible_change_moves_the_generation() -> None:
    # FDT 700 ms: a silent NIC fails and repairs, a link goes and comes back,
    # the routers die (probes fail, group failure) and return, if_mpadm.
    sim, checked = started(make_group(3))
    sim.advance(3.0)
    sim.silent("qfe0")
    sim.advance(3.0)
    sim.silent("qfe0", False)
    sim.advance(10.0)
    sim.link("qfe1", False)
    sim.advance(2.0)
    sim.link("qfe1", True)
    sim.advance(5.0)
    sim.router_down()
    sim.advance(3.0)
    sim.router_down(False)
    sim.advance(10.0)
    assert sim.offline("qfe2") is not None
    sim.advance(1.0)
    assert sim.undo_offline("qfe2") is not None
    sim.advance(5.0)
    assert checked.missed == []
    # Failures and repairs were found by probes: Ticks and replies moved it.
    assert checked.bumps["Tick"] > 0 and checked.bumps["ProbeReplied"] > 0, checked.bumps
    failures = [line for line in sim.messages() if line.startswith("NIC failure detected")]
    assert len(failures) >= 2


def targets(sim: Sim, name: str) -> list[str]:
    return sorted(sim.machine.snapshot().interfaces[name].probes["inet"].targets)


def test_targets_found_and_dropped_move_the_generation() -> None:
    # No routers: targets come from multicast discovery (a reply adds a host
    # target, on every member).  Then one of the two targets stops answering
    # while the other does: it is dropped as dead (§2.6), a Tick's doing.
    hosts = (ROUTERS[0], ROUTERS[1])
    sim, checked = started(make_group(2), routers=())
    sim.net.hosts = hosts
    sim.advance(3.0)
    assert targets(sim, "qfe0") == targets(sim, "qfe1") == sorted(map(str, hosts))
    sim.net.dead_targets.add(ROUTERS[0])
    sim.advance(5.0)
    assert targets(sim, "qfe0") == [str(ROUTERS[1])]
    assert checked.missed == []


def test_a_raised_failure_detection_time_moves_the_generation() -> None:
    # Round trips over the probe interval (100 ms at FDT 700 ms) raise the
    # group's FDT, which the snapshot shows, on a reply (§2.6).
    sim, checked = started(make_group(2))
    sim.advance(3.0)
    sim.net.nic("qfe0").rtt_ms = 90
    sim.net.nic("qfe1").rtt_ms = 90
    sim.advance(5.0)
    fdt_ms = sim.machine.snapshot().groups["prod"].fdt_ms
    assert fdt_ms is not None and fdt_ms > 700
    assert checked.missed == []


def test_state_events_from_changed_generations_only_are_the_events_of_every_step() -> None:
    # What the runtime publishes (the machine's StateChanged effects, made
    # only when the generation moved) against a snapshot after every step:
    # the same events.
    sim = Sim(make_group(3), quiet_period=0.5)
    every: list[dict[str, Any]] = []
    told: list[dict[str, Any]] = []
    last = events.reported_of(sim.machine.snapshot())
    builds = 0
    step = sim.machine.step

    def stepped(event: Event) -> list[Effect]:
        nonlocal builds, last
        effects = step(event)
        now = events.reported_of(sim.machine.snapshot())
        every.extend(events.state_changes(last, now, wall=sim.now))
        last = now
        for fx in effects:
            if isinstance(fx, StateChanged):
                builds += 1
                told.extend(events.state_changes(fx.before, fx.after, wall=sim.now))
        return effects

    sim.machine.step = stepped  # type: ignore[method-assign]
    sim.start()
    sim.advance(3.0)
    sim.silent("qfe1")
    sim.advance(3.0)
    sim.silent("qfe1", False)
    sim.advance(10.0)
    sim.link("qfe2", False)
    sim.advance(1.0)
    sim.link("qfe2", True)
    sim.advance(10.0)
    assert sim.offline("qfe0") is not None
    sim.advance(2.0)
    assert every == told
    assert {e["event"] for e in every} >= {"if_change", "group_state", "group_member_change"}
    assert builds < len(sim.sent) / 10, (builds, len(sim.sent))  # a snapshot for a few steps in a hundred


def test_probe_events_with_the_generation_are_those_without() -> None:
    # The tracker skips the listing of instances while the generation stays:
    # across failures, offline (instances closed) and undo (new ones) it
    # reports what a full look at every step reports.
    sim = Sim(make_group(3), quiet_period=0.5)
    full, quick = events.ProbeTracker(), events.ProbeTracker()
    out: dict[str, list[dict[str, Any]]] = {"full": [], "quick": []}
    step = sim.machine.step

    def stepped(event: Event) -> list[Effect]:
        effects = step(event)
        m = sim.machine
        out["full"] += full.changes(m.phyints, now=sim.now, wall=sim.now)
        out["quick"] += quick.changes(m.phyints, now=sim.now, wall=sim.now, generation=m.generation)
        return effects

    sim.machine.step = stepped  # type: ignore[method-assign]
    sim.start()
    full.start(sim.machine.phyints, now=sim.now, wall=sim.now)
    quick.start(sim.machine.phyints, now=sim.now, wall=sim.now, generation=sim.machine.generation)
    sim.advance(3.0)
    sim.silent("qfe1")
    sim.advance(3.0)
    sim.silent("qfe1", False)
    sim.advance(8.0)
    assert sim.offline("qfe2") is not None
    sim.advance(2.0)
    assert sim.undo_offline("qfe2") is not None
    sim.advance(3.0)
    sim.link("qfe0", False)
    sim.advance(1.0)
    sim.link("qfe0", True)
    sim.advance(3.0)
    assert out["quick"] == out["full"]
    assert {e["state"] for e in out["full"]} == {"acked", "lost"}
    assert {e["interface"] for e in out["full"] if e["time"] > sim.now - 2.0} == {"qfe0", "qfe1", "qfe2"}


class GenerationMachine(MpathdMachine):
    """The stateful test's random worlds, with every step checked as above."""

    checked: Checked | None = None

    @invariant()
    def the_generation_moved_with_every_visible_change(self) -> None:
        if self.checked is None or self.checked.sim is not self.sim:
            self.checked = Checked(self.sim)
        assert self.checked.missed == []


GenerationMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, phases=[Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_generation_under_random_worlds = GenerationMachine.TestCase
