"""ipmp-lab's pure parts: what it builds for some files, what a drill expects, the picture, the CLI guard."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ipmp.cli.lab import cli
from ipmp.lab.drill import STEP_KINDS, LogTail, Rules, World, plan_steps, svg
from ipmp.lab.lab import LabError, NetworkPlan, plan_network, validate_name
from ipmp.lab.logwrap import format_line, parse_line

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hostname.files"


def example(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root)
    return root


# -- plan_network ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "nics"),
    [
        ("active-active", ["qfe0", "qfe1"]),
        ("active-standby", ["qfe0", "qfe1"]),
        ("link-only", ["bge0", "bge1"]),
        ("single-line", ["hme0"]),
        ("test-on-unit0", ["ce0", "ce1"]),
    ],
)
def test_every_example_gets_its_nics_the_default_router_and_a_free_peer(name: str, nics: list[str]) -> None:
    plan = plan_network(EXAMPLES / name)
    assert list(plan.names) == nics
    assert plan.router4 == "192.0.2.1/24" and plan.router_from_files
    assert plan.peer4 == "192.0.2.254/24"
    assert plan.problems == ()
    assert plan.router6 is None and plan.peer6 is None


def test_the_plan_knows_groups_standby_test_and_data_addresses() -> None:
    plan = plan_network(EXAMPLES / "active-standby")
    qfe0, qfe1 = plan.nics
    assert (qfe0.group, qfe0.standby, qfe0.data_addresses, qfe0.test_addresses) == (
        "prod", False, ("192.0.2.100/24",), ("192.0.2.10/24",)
    )
    assert (qfe1.standby, qfe1.data_addresses, qfe1.test_addresses) == (True, (), ("192.0.2.11/24",))
    assert NetworkPlan.from_json(plan.to_json()) == plan


def test_without_defaultrouter_the_router_takes_the_lowest_free_address(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "defaultrouter").unlink()
    plan = plan_network(root)
    # 192.0.2.1 is still named "router" in hosts, so it is not free.
    assert plan.router4 == "192.0.2.2/24" and not plan.router_from_files
    assert plan.peer4 == "192.0.2.254/24"


def test_a_default_router_off_the_files_subnets_is_refused(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "defaultrouter").write_text("198.51.100.1\n")
    with pytest.raises(LabError, match="on none of the subnets"):
        plan_network(root)


def test_no_hostname_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    with pytest.raises(LabError, match="no hostname"):
        plan_network(tmp_path)
    with pytest.raises(LabError, match="no etc directory"):
        plan_network(tmp_path / "nowhere")


def test_a_bad_file_is_left_for_ipmp_boot_to_report(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "hostname.qfe1").write_text("myhost-2 group prod up frobnicate\n")
    plan = plan_network(root)
    assert list(plan.names) == ["qfe0", "qfe1"]  # the NIC is still built
    assert len(plan.problems) == 1 and "frobnicate" in plan.problems[0]


def test_a_logical_interface_file_names_its_nic_once(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "hostname.qfe1:2").write_text("192.0.2.102 netmask + broadcast + up\n")
    plan = plan_network(root)
    assert list(plan.names) == ["qfe0", "qfe1"]
    assert "192.0.2.102/24" in plan.nic("qfe1").data_addresses
    assert plan.peer4 == "192.0.2.254/24"


@pytest.mark.parametrize("bad", ["", "..", "a/b", "x" * 41, "-x"])
def test_lab_names_are_checked(bad: str) -> None:
    with pytest.raises(LabError):
        validate_name(bad)


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


# -- the command line ---------------------------------------------------------------------


def test_without_root_every_command_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for args in (["status"], ["up", str(EXAMPLES / "active-active")], ["down"], ["exec", "--", "true"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, args
        assert result.output == "ipmp-lab: must be run as root: it creates network namespaces (try sudo)\n"


def test_help_needs_no_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["drill", "--help"])
    assert result.exit_code == 0
    assert "--fdt" in result.output and "--svg" in result.output


def test_labs_never_live_under_the_real_etc_or_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipmp.lab.lab import create

    monkeypatch.setenv("IPMP_LAB_DIR", "/run/ipmp-lab-never")
    with pytest.raises(LabError, match="never live under the real /run"):
        create("x", EXAMPLES / "active-active")
    assert not Path("/run/ipmp-lab-never").exists()
