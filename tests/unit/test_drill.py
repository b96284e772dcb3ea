"""The drill's pure parts: its script, what each step expects, its log reader, timeline and picture."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ipmp.lab.logwrap import format_line, parse_line
from ipmp.lab.observe import AddressEvent, LogTail
from ipmp.lab.picture import svg
from ipmp.lab.plan import plan_network
from ipmp.lab.rules import Rules, World
from ipmp.lab.script import STEP_KINDS, plan_steps
from ipmp.lab.timeline import Recorder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hostname.files"


# -- the drill's script and expectations ----------------------------------------------


def test_the_active_active_script() -> None:
    steps, notes = plan_steps(plan_network(EXAMPLES / "active-active"))
    assert [(s.kind, s.nic) for s in steps] == [
        ("baseline", None),
        ("link-fail", "qfe0"), ("link-repair", "qfe0"), ("silent-fail", "qfe0"), ("silent-repair", "qfe0"),
        ("link-fail", "qfe1"), ("link-repair", "qfe1"), ("silent-fail", "qfe1"), ("silent-repair", "qfe1"),
        ("offline", "qfe0"), ("undo-offline", "qfe0"), ("offline", "qfe1"),
        ("refuse-offline", "qfe0"), ("undo-offline", "qfe1"),
        ("router-down", None), ("router-up", None),
    ]
    assert {s.kind for s in steps} == set(STEP_KINDS)
    assert notes == []


def test_link_only_and_ungrouped_nics_skip_what_cannot_be_detected() -> None:
    steps, notes = plan_steps(plan_network(EXAMPLES / "link-only"))
    assert not {"silent-fail", "router-down"} & {s.kind for s in steps}
    assert any("no test address" in n for n in notes)
    steps, notes = plan_steps(plan_network(EXAMPLES / "single-line"))
    assert [s.kind for s in steps] == ["baseline"]
    assert any("no group" in n for n in notes)


def rules_for(name: str, placement: dict[str, set[str]] | None = None) -> tuple[World, Rules]:
    plan = plan_network(EXAMPLES / name)
    world = World.of(plan)
    where = placement if placement is not None else {a: {home} for a, home in world.homes().items()}
    return world, Rules(world, lambda a: set(where.get(a, set())), 0.7)


def same(patterns: list[str], messages: list[str]) -> bool:
    """The expected message patterns match these daemon lines one for one, in order."""
    if len(patterns) != len(messages):
        return False
    return all(re.fullmatch(p, m) for p, m in zip(patterns, messages, strict=True))


def test_a_link_failure_expects_detection_and_a_failover_to_the_other_nic() -> None:
    _, rules = rules_for("active-active")
    e = rules.failure("qfe0", link=True)
    assert same(e.messages, [
        "The link has gone down on qfe0",
        "NIC failure detected on qfe0 of group prod",
        "Successfully failed over from NIC qfe0 to NIC qfe1",
    ])
    assert not re.fullmatch(e.messages[2], "Successfully failed over from NIC qfe0 to NIC qfe0")
    assert e.placement["192.0.2.100"] == {"qfe1"} and e.moving == {"192.0.2.100"}
    assert e.placement["192.0.2.101"] == {"qfe1"}


def test_a_repair_expects_the_failback_message_even_with_nothing_to_move() -> None:
    # S10 do_failback logs whenever it attempted a failback while FAILED is set.
    world, rules = rules_for("test-on-unit0")
    world.nics["ce1"].state = "failed"
    e = rules.repair("ce1", link=False)
    assert same(e.messages, ["NIC repair detected on ce1 of group accgrp",
                             "Successfully failed back to NIC ce1"])
    assert e.moving == set()


def test_a_standby_repair_only_clears_failed() -> None:
    world, rules = rules_for("active-standby")
    world.nics["qfe1"].state = "failed"
    assert same(rules.repair("qfe1", link=False).messages, ["NIC repair detected on qfe1 of group prod"])


def test_offlining_the_last_usable_nic_is_refused() -> None:
    world, rules = rules_for("active-active", {"192.0.2.100": {"qfe0"}, "192.0.2.101": {"qfe0"}})
    world.nics["qfe1"].state = "offline"
    e = rules.offline("qfe0")
    assert e.rc == 1 and e.stderr is not None and e.stderr.startswith("Offline failed")
    assert e.messages == [] and e.moving == set()


def test_a_router_outage_is_a_group_failure_and_its_end_two_repairs() -> None:
    world, rules = rules_for("active-active")
    down = rules.router_down()
    assert same(down.messages, ["All Interfaces in group prod have failed"]) and down.moving == set()
    world.on_message("All Interfaces in group prod have failed")
    up = rules.router_up()
    assert same(up.messages, [
        "NIC repair detected on qfe0 of group prod",
        "Successfully failed back to NIC qfe0",
        "NIC repair detected on qfe1 of group prod",
        "Successfully failed back to NIC qfe1",
        "At least 1 interface (qfe1) of group prod has repaired",
    ])
    assert up.moving == set()


# -- the log and the picture ---------------------------------------------------------------


def test_log_lines_round_trip_and_are_read_incrementally(tmp_path: Path) -> None:
    assert parse_line(format_line("NIC failure detected on qfe0 of group prod", 12.5)) == (
        12.5, "NIC failure detected on qfe0 of group prod"
    )
    log = tmp_path / "mpathd.log"
    log.write_text(format_line("# started pid 1: in.mpathd", 1.0) + format_line("one", 2.0) + "3.0 x tw")
    tail = LogTail(log)
    assert tail.poll() == [(2.0, "one")]  # the wrapper's own line is skipped, the half line waits
    with log.open("a") as f:
        f.write("o\n")
    assert tail.poll() == [(3.0, "two")]


def test_the_timeline_follows_the_daemon_for_states_and_the_kernel_for_addresses() -> None:
    plan = plan_network(EXAMPLES / "active-active")
    record = Recorder(t0=100.0)
    record.fault("qfe0", "link", True, at=101.0)
    record.admin.append((103.0, "qfe1", "offline"))
    log = [(99.0, "before the drill"), (101.2, "NIC failure detected on qfe0 of group prod"),
           (102.0, "NIC repair detected on qfe0 of group prod")]
    moves = [AddressEvent(101.3, "192.0.2.100", "qfe1", True),
             AddressEvent(101.3, "192.0.2.100", "qfe0", False)]
    tl = record.timeline(104.0, log, plan, {"192.0.2.100": "qfe0"}, moves)
    assert tl["interfaces"]["qfe0"] == [[0.0, 1.2, "ok"], [1.2, 2.0, "failed"], [2.0, 4.0, "ok"]]
    assert tl["interfaces"]["qfe1"] == [[0.0, 3.0, "ok"], [3.0, 4.0, "offline"]]
    assert tl["addresses"]["192.0.2.100"] == [[0.0, 1.3, "qfe0"], [1.3, 4.0, "qfe1"]]
    assert tl["faults"] == {"qfe0": [[1.0, 4.0, "link"]]}  # still open at the end
    assert tl["events"][0]["text"] == "NIC failure detected on qfe0 of group prod"


def tiny_report() -> dict[str, Any]:
    step = {
        "kind": "link-fail", "interface": "qfe0", "title": "qfe0: link <failure> & co", "ok": False,
        "problems": ["x"], "t_start": 0.0, "t_inject": 0.3, "t_end": 1.5,
    }
    return {
        "source": "/x/active-active", "fdt_ms": 700, "ok": False,
        "lab": {"nics": [{"name": "qfe0"}, {"name": "qfe1"}]},
        "steps": [step],
        "timeline": {
            "end": 2.0,
            "interfaces": {"qfe0": [[0.0, 0.31, "ok"], [0.31, 2.0, "failed"]], "qfe1": [[0.0, 2.0, "ok"]]},
            "addresses": {"192.0.2.100": [[0.0, 0.33, "qfe0"], [0.33, 2.0, "qfe1"]]},
            "losses": {"192.0.2.100": [[0.3, 0.32, 3]]},
            "faults": {"qfe0": [[0.3, 2.0, "link"]]},
        },
    }


def test_the_picture_is_well_formed_svg_with_a_lane_per_nic_and_address() -> None:
    doc = svg(tiny_report())
    tree = ET.fromstring(doc)
    assert tree.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in tree.iter("{http://www.w3.org/2000/svg}text")]
    assert {"qfe0", "qfe1", "router", "192.0.2.100"} <= set(texts)
    assert "1. qfe0: link <failure> & co  ✗" in texts  # escaped in the file, intact once parsed
