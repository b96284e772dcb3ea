"""What in.mpathd publishes: probe outcomes and state changes, derived from the machine."""

from __future__ import annotations

import json
import random
from ipaddress import IPv4Address
from typing import Any

from ipmp.model import Family
from ipmp.mpathd.events import EVENT_NAMES, ProbeTracker, reported_of, state_changes
from ipmp.mpathd.phyint import Phyint, State
from ipmp.mpathd.probe import Instance
from ipmp.mpathd.snapshot import from_wire
from ipmp.mpathd.steps import MemberState, Reported, StateChanged
from tests.unit.mpathd_sim import ROUTER1, ROUTER2, Sim, make_group

WALL = 1_700_000_000.0


class Published:
    """The runtime's publishing around a simulated machine: after every step, its StateChanged effects."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.tracker = ProbeTracker()
        self.subscribed = False
        self.probes: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        step = sim.machine.step

        def stepped(event: Any) -> Any:
            effects = step(event)
            self.collect(effects)
            return effects

        sim.machine.step = stepped  # type: ignore[method-assign]

    def subscribe(self) -> None:
        self.tracker.start(self.sim.machine.phyints, now=self.sim.now, wall=WALL + self.sim.now)
        self.subscribed = True

    def collect(self, effects: list[Any]) -> None:
        now = self.sim.now
        if self.tracker.active:
            self.probes += self.tracker.changes(self.sim.machine.phyints, now=now, wall=WALL + now)
        if self.subscribed:
            for fx in effects:
                if isinstance(fx, StateChanged):
                    self.states += json.loads(json.dumps(state_changes(fx.before, fx.after, wall=WALL + now)))


def started(count: int = 2) -> tuple[Sim, Published]:
    sim = Sim(make_group(count))
    pub = Published(sim)
    sim.start()
    sim.advance(3.0)
    return sim, pub


def settled(sim: Sim) -> set[tuple[str, int]]:
    return {(name, seq) for name, pi in sim.machine.phyints.items() for inst in pi.instances.values()
            for seq, slot in inst.history.items() if slot.status.value in ("acked", "lost")}


def test_acknowledged_probes_are_published_from_the_subscription_on() -> None:
    sim, pub = started()
    before = settled(sim)
    assert before and pub.probes == []  # nothing is tracked before a subscriber
    pub.subscribe()
    start = sim.now
    sim.advance(2.0)
    events = pub.probes
    assert len(events) >= 2 * 2 / 0.1 * 0.8  # FDT 700 ms: a probe per NIC every 100 ms
    assert not {(e["interface"], e["probe"]) for e in events} & before
    for e in events:
        assert e["event"] in EVENT_NAMES
        assert e["state"] == "acked" and e["family"] == "inet" and e["group"] == "prod"
        assert e["target"] in (str(ROUTER1), str(ROUTER2))
        assert e["netrtt_ms"] == e["rtt_ms"] == 1.0  # the simulated network answers in 1 ms
        assert e["rttavg_ms"] is not None and e["crtt_ms"] is not None and e["rttdev_ms"] is not None
        assert e["sent"] >= start - 0.2 and abs(e["time"] - (WALL + e["sent"])) < 1e-5
    for name in ("qfe0", "qfe1"):
        seqs = [e["probe"] for e in events if e["interface"] == name]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    json.dumps(events)  # JSON-ready


def test_lost_probes_and_the_state_changes_of_a_silent_failure_and_its_repair() -> None:
    sim, pub = started()
    sim.advance(2.0)  # past the quiet period
    pub.subscribe()
    sim.silent("qfe0")
    sim.run_until_log("NIC failure detected on qfe0", 5.0)
    lost = [e for e in pub.probes if e["interface"] == "qfe0" and e["state"] == "lost"]
    assert len(lost) >= 5
    assert all(e["netrtt_ms"] is None and e["rtt_ms"] is None for e in lost)
    assert all(e["state"] == "acked" for e in pub.probes if e["interface"] == "qfe1")
    changes = [(e["event"], e.get("interface") or e.get("group"), e.get("previous_state"), e["state"])
               for e in pub.states]
    assert changes == [("if_change", "qfe0", "ok", "failed"), ("group_state", "prod", "ok", "degraded")]
    failed = pub.states[0]
    assert failed["group"] == "prod" and failed["type"] == failed["previous_type"] == "normal"
    assert failed["time"] >= WALL
    pub.states.clear()
    sim.silent("qfe0", False)
    sim.run_until_log("NIC repair detected on qfe0", 10.0)
    sim.advance(0.5)
    assert [(e["event"], e["state"]) for e in pub.states] == [("if_change", "ok"), ("group_state", "ok")]


def test_offline_is_an_interface_change() -> None:
    sim, pub = started()
    pub.subscribe()
    reply = sim.offline("qfe1")
    assert reply is not None and reply.mpathd_error == 0
    sim.advance(0.5)
    assert [(e["event"], e.get("interface"), e["state"]) for e in pub.states] == [
        ("if_change", "qfe1", "offline"), ("group_state", None, "degraded")]


def test_a_late_reply_reports_the_probe_again_and_a_new_instance_starts_afresh() -> None:
    rng = random.Random(1)
    inst = Instance(test_address=IPv4Address("192.0.2.10"), created_at=0.0)
    inst.set_routers([ROUTER1], 0.0)
    inst.start(0.0, 0.1, rng)
    pi = Phyint("qfe0", "prod", State.RUNNING, link_up=True, since=0.0)
    pi.instances[Family.INET] = inst
    phyints = {"qfe0": pi}
    tracker = ProbeTracker()
    tracker.start(phyints)
    first = inst.next_probe(0.0, 0.1, 0.1, rng)
    assert tracker.changes(phyints, now=0.0, wall=WALL) == []  # sent, not settled
    inst.expire(1.0, 0.1)  # no CRTT yet: lost after one interval
    [lost] = tracker.changes(phyints, now=1.0, wall=WALL)
    assert (lost["probe"], lost["state"], lost["rttavg_ms"]) == (first.seq, "lost", None)
    assert tracker.changes(phyints, now=1.0, wall=WALL) == []  # reported once
    inst.on_reply(first.seq, ROUTER1, 1.5)
    [late] = tracker.changes(phyints, now=1.6, wall=WALL)
    assert (late["probe"], late["state"]) == (first.seq, "acked")
    assert (late["netrtt_ms"], late["rtt_ms"]) == (1500.0, 1600.0)
    # The test address changed: a new instance, whose sequence numbers start again.
    fresh = Instance(test_address=IPv4Address("192.0.2.20"), created_at=2.0)
    fresh.set_routers([ROUTER1], 2.0)
    fresh.start(2.0, 0.1, rng)
    pi.instances[Family.INET] = fresh
    again = fresh.next_probe(2.0, 0.1, 0.1, rng)
    fresh.on_reply(again.seq, ROUTER1, 2.01)
    assert again.seq == first.seq
    [ack] = tracker.changes(phyints, now=2.01, wall=WALL)
    assert (ack["probe"], ack["state"]) == (again.seq, "acked")
    tracker.stop()
    assert not tracker.active


def member(group: str, state: str = "ok", type_: str = "normal") -> dict[str, Any]:
    return {"group": group, "state": state, "type": type_, "link": "up", "probe": "ok", "active": True}


def view_of(doc: dict[str, Any]) -> Reported:
    """The reported states of a snapshot as it travels on the wire."""
    return reported_of(from_wire(doc))


def test_state_changes_order_groups_around_their_members() -> None:
    before = view_of({"groups": {"old": {"state": "ok"}, "prod": {"state": "ok"}, "": {"state": "ok"}},
                      "interfaces": {"a": member("old"), "b": member("prod"), "c": member("prod"),
                                     "d": member("")}})
    after = view_of({"groups": {"new": {"state": "ok"}, "prod": {"state": "failed"}},
                     "interfaces": {"a": member("new"), "b": member("prod", "failed", "standby"),
                                    "c": member("prod", "failed"), "e": member("new")}})
    got = [(e["event"], e.get("op"), e.get("interface"), e["group"]) for e in
           state_changes(before, after, wall=WALL)]
    assert got == [
        ("group_change", "add", None, "new"),
        ("group_member_change", "remove", "a", "old"),
        ("group_member_change", "remove", "d", ""),
        ("group_member_change", "add", "a", "new"),
        ("if_change", None, "b", "prod"),
        ("if_change", None, "c", "prod"),
        ("group_member_change", "add", "e", "new"),
        ("group_state", None, None, "prod"),
        ("group_change", "remove", None, "old"),
    ]
    assert state_changes(after, after, wall=WALL) == []
    junk = MemberState("", "", "", "", "", False)  # decoded defensively (``from_wire``)
    assert view_of({"groups": [], "interfaces": {"x": 3}}) == Reported(members={"x": junk})
