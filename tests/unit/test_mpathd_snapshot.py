"""The typed boundaries of the machine: its ``Snapshot`` and the JSON of it, its ``StateChanged`` effect."""

from __future__ import annotations

import json
from typing import Any

from ipmp.mpathd import events
from ipmp.mpathd.snapshot import SNAPSHOT_VERSION, InterfaceState, Snapshot, from_wire, to_wire
from ipmp.mpathd.steps import Effect, Execute, Reported, StateChanged
from tests.unit.mpathd_sim import Sim, make_group


def started(count: int = 3) -> Sim:
    sim = Sim(make_group(count, standby=[count - 1]), quiet_period=0.5)
    sim.start()
    sim.advance(3.0)
    return sim


def told(effects: list[Effect]) -> list[StateChanged]:
    return [fx for fx in effects if isinstance(fx, StateChanged)]


def test_the_wire_document_decodes_into_the_same_snapshot() -> None:
    sim = started()
    sim.offline("qfe0")
    sim.advance(1.0)
    snapshot = sim.machine.snapshot()
    wire = json.loads(json.dumps(to_wire(snapshot)))
    assert from_wire(wire) == snapshot
    assert isinstance(snapshot.interfaces["qfe1"], InterfaceState)
    assert snapshot.interfaces["qfe0"].state == "offline"


def test_the_wire_layout_is_the_one_clients_read() -> None:
    # ipmpstat, the lab and scripts read these keys, in this order (version 1).
    wire: dict[str, Any] = to_wire(started().machine.snapshot())
    assert list(wire) == ["v", "fdt_ms", "failback", "groups", "interfaces", "addresses"]
    assert wire["v"] == SNAPSHOT_VERSION == 1
    assert list(wire["groups"]["prod"]) == ["state", "fdt_ms", "members", "interface", "cast"]
    qfe0 = wire["interfaces"]["qfe0"]
    assert list(qfe0) == ["group", "state", "type", "link", "probe", "active", "standby", "inactive",
                          "failed", "offline", "hwaddrdup", "probes"]
    assert list(qfe0["probes"]["inet"]) == ["test_address", "targets", "mode", "crtt_ms"]
    assert isinstance(qfe0["probes"]["inet"]["targets"], list)
    assert list(wire["addresses"][0]) == ["address", "family", "interface", "home", "group", "up"]


def test_from_wire_never_raises() -> None:
    junk: object
    for junk in (None, 3, [], {"groups": 1, "interfaces": [], "addresses": {}},
                 {"groups": {"g": None}, "interfaces": {"x": {"probes": {"inet": 1}, "active": "yes"}},
                  "addresses": [None, {"up": 1}]}):
        snapshot = from_wire(junk)
        assert isinstance(snapshot, Snapshot)
    odd = from_wire({"interfaces": {"x": {"probes": {"inet": 1}, "active": "yes"}}})
    assert odd.interfaces["x"].active is False and odd.interfaces["x"].probes["inet"].targets == ()


def test_a_failure_is_told_once_first_in_its_step_before_the_apply() -> None:
    sim = started()
    effects: list[list[Effect]] = []
    step = sim.machine.step

    def stepped(event: Any) -> list[Effect]:
        out = step(event)
        effects.append(out)
        return out

    sim.machine.step = stepped  # type: ignore[method-assign]
    sim.link("qfe1", False)
    sim.advance(0.1)
    [fail] = [fx for fx in effects if any(isinstance(e, Execute) for e in fx)][:1]
    # First in the list: a runtime that holds what comes before the apply holds it too.
    assert isinstance(fail[0], StateChanged)
    docs = events.state_changes(fail[0].before, fail[0].after, wall=0.0)
    assert [(d["event"], d.get("interface"), d["state"]) for d in docs] == [
        ("if_change", "qfe1", "failed"), ("group_state", None, "degraded")]
    assert sum(len(told(fx)) for fx in effects) >= 1
    # Nothing else changed: the later steps tell nothing more about qfe1.
    later = [c for fx in effects[effects.index(fail) + 1:] for c in told(fx)]
    assert all(c.before.members["qfe1"].state == c.after.members["qfe1"].state for c in later)


def test_a_refused_apply_is_told_and_so_is_its_rollback() -> None:
    sim = started()
    sim.fail_executes = 1
    changes: list[StateChanged] = []
    step = sim.machine.step

    def stepped(event: Any) -> list[Effect]:
        out = step(event)
        changes.extend(told(out))
        return out

    sim.machine.step = stepped  # type: ignore[method-assign]
    sim.offline("qfe0")
    states = [(c.before.members["qfe0"].state, c.after.members["qfe0"].state) for c in changes
              if c.before.members["qfe0"] != c.after.members["qfe0"]]
    assert states[:2] == [("ok", "offline"), ("offline", "ok")]


def test_quiet_probe_steps_tell_nothing() -> None:
    sim = started()
    changes: list[StateChanged] = []
    step = sim.machine.step

    def stepped(event: Any) -> list[Effect]:
        out = step(event)
        changes.extend(told(out))
        return out

    sim.machine.step = stepped  # type: ignore[method-assign]
    sim.advance(10.0)
    assert len(sim.sent) > 100 and changes == []


def test_a_new_machine_tells_its_groups_and_members_as_they_appear() -> None:
    sim = Sim(make_group(2), quiet_period=0.5)
    effects: list[Effect] = []
    step = sim.machine.step

    def stepped(event: Any) -> list[Effect]:
        out = step(event)
        effects.extend(out)
        return out

    sim.machine.step = stepped  # type: ignore[method-assign]
    sim.start()
    [change, *_] = told(effects)
    assert change.before == Reported()
    docs = events.state_changes(change.before, change.after, wall=0.0)
    assert [(d["event"], d.get("op"), d.get("interface") or d["group"]) for d in docs] == [
        ("group_change", "add", "prod"), ("group_member_change", "add", "qfe0"),
        ("group_member_change", "add", "qfe1")]
