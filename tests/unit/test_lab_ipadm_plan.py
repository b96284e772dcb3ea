"""ipmp-lab and Solaris 11: a lab planned from an ipadm script or ipadm.conf; the drill's re-binding rules."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ipmp.lab.errors import LabError
from ipmp.lab.ipadmplan import parse_script
from ipmp.lab.plan import NetworkPlan, plan_network
from ipmp.lab.rebind import final_problems, spread_problems
from ipmp.lab.rules import Rules, World
from ipmp.lab.script import plan_steps

REPO = Path(__file__).resolve().parents[2]
IPADM = REPO / "examples" / "ipadm"
HOSTNAME_FILES = REPO / "examples" / "hostname.files"


def lab_dir(tmp_path: Path, script: str) -> Path:
    """A lab directory holding only ``examples/ipadm/<script>`` as its ipadm.sh."""
    root = tmp_path / script.removesuffix(".sh")
    root.mkdir()
    shutil.copyfile(IPADM / script, root / "ipadm.sh")
    return root


# -- the plan ------------------------------------------------------------------------------


def test_active_active_plans_the_script_nics_the_ipmp_interface_and_a_router(tmp_path: Path) -> None:
    plan = plan_network(lab_dir(tmp_path, "active-active.sh"))
    assert plan.names == ("net0", "net1")
    assert [(n.group, n.test_addresses, n.data_addresses) for n in plan.nics] == [("ipmp0", (), ())] * 2
    (ipmp0,) = plan.ipmp
    assert (ipmp0.name, ipmp0.group) == ("ipmp0", "ipmp0")
    # The data addresses belong to the IPMP interface, never to a member (no home).
    assert ipmp0.data_addresses == ("192.0.2.10/24", "192.0.2.11/24")
    assert plan.router4 == "192.0.2.1/24" and not plan.router_from_files
    assert plan.peer4 == "192.0.2.254/24"
    assert not plan.transitive and plan.problems == ()
    assert plan.script.endswith("ipadm.sh")
    assert NetworkPlan.from_json(plan.to_json()) == plan


def test_test_addresses_standby_and_transitive_probing_are_planned(tmp_path: Path) -> None:
    plan = plan_network(lab_dir(tmp_path, "test-addresses.sh"))
    assert [n.test_addresses for n in plan.nics] == [("192.0.2.20/24",), ("192.0.2.21/24",)]
    assert plan.ipmp[0].data_addresses == ("192.0.2.10/24",)
    standby = plan_network(lab_dir(tmp_path, "active-standby.sh"))
    assert [n.standby for n in standby.nics] == [False, False, True]
    transitive = plan_network(lab_dir(tmp_path, "transitive.sh"))
    assert transitive.transitive
    assert all(transitive.probed(n) for n in transitive.nics)
    # No test address and transitive probing off: only links are watched.
    assert not any(standby.probed(n) for n in standby.nics)


def test_script_option_wins_over_dir_ipadm_sh(tmp_path: Path) -> None:
    root = lab_dir(tmp_path, "active-active.sh")
    plan = plan_network(root, IPADM / "test-addresses.sh")
    assert plan.ipmp[0].data_addresses == ("192.0.2.10/24",)
    assert plan.script == str(IPADM / "test-addresses.sh")


def test_the_persistent_file_alone_is_planned_from_its_records(tmp_path: Path) -> None:
    root = tmp_path / "s11"
    (root / "etc" / "ipadm").mkdir(parents=True)
    # Oracle Solaris 11 writes type tags; illumos does not: both are read.
    (root / "etc" / "ipadm" / "ipadm.conf").write_text(
        "_ifname=net0;_family=string,2;_ifclass=0;\n"
        "_ifname=net1;_family=2;_ifclass=0;\n"
        "_ifname=ipmp0;_family=2;_ifclass=1;\n"
        "_ifname=ipmp0;_underif=net0;\n"
        "_ifname=ipmp0;_underif=net1;\n"
        "_ifname=ipmp0;_aobjname=ipmp0/v4;_ipv4addr=198.51.100.10,;\n"
        "_ifname=ipmp0;_aobjname=ipmp0/v4;prefixlen=24;\n"
    )
    plan = plan_network(root)
    assert plan.names == ("net0", "net1")
    assert plan.ipmp[0].data_addresses == ("198.51.100.10/24",)
    assert plan.router4 == "198.51.100.1/24" and plan.script == ""


def test_a_nic_configured_by_hostname_files_and_ipadm_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "both"
    shutil.copytree(HOSTNAME_FILES / "active-active", root)
    (root / "ipadm.sh").write_text("ipadm create-ip qfe1\nipadm create-ipmp -i qfe1 ipmp0\n")
    with pytest.raises(LabError, match=r"qfe1 is configured both by .*hostname\.qfe1.* and by ipadm "
                                       r"\(.*ipadm\.sh\).*one way or the other"):
        plan_network(root)
    (root / "ipadm.sh").unlink()
    (root / "etc" / "ipadm").mkdir()
    (root / "etc" / "ipadm" / "ipadm.conf").write_text("_ifname=qfe0;_family=2;_ifclass=0;\n")
    with pytest.raises(LabError, match=r"qfe0 is configured both .* by ipadm \(.*ipadm\.conf\)"):
        plan_network(root)


def test_hostname_files_and_ipadm_for_different_nics_make_one_lab(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    shutil.copytree(HOSTNAME_FILES / "active-active", root)
    (root / "ipadm.sh").write_text("ipadm create-ip net0\n"
                                   "ipadm create-addr -T static -a 192.0.2.30/24 net0\n")
    plan = plan_network(root)
    assert plan.names == ("qfe0", "qfe1", "net0")
    assert plan.nic("net0").data_addresses == ("192.0.2.30/24",)


@pytest.mark.parametrize(("text", "message"), [
    ("ipadm create-ip net0; ipadm create-ip net1\n", r"s\.sh:1: ';': one command per line"),
    ("\n# comment\nifconfig net0 plumb\n", r"s\.sh:3: ifconfig: not a command the lab runs"),
    ("ipadm create-ip net0\nipadm frobnicate\n", r"s\.sh:2: ipadm: unknown subcommand 'frobnicate'"),
    ("ipadm create-ip net0\nipadm create-addr -T static -a 192.0.2.10/24 ipmp9\n",
     r"s\.sh:2: ipadm: cannot create address.*"),
    ("ipadm create-ip net0\nsvccfg -s svc:/network/dhcp setprop a=b\n", r"s\.sh:2: only 'svccfg -s"),
])
def test_a_bad_script_line_is_refused_with_its_position(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "s.sh").write_text(text)
    with pytest.raises(LabError, match=message):
        plan_network(tmp_path, tmp_path / "s.sh")


def test_script_lines_know_what_changes_and_what_only_reads() -> None:
    lines = parse_script((IPADM / "active-active.sh").read_text(), "aa.sh")
    assert [ln.changes for ln in lines] == [True] * 5 + [False] * 4
    assert lines[5].text == "ipadm show-if -p -o ifname,class,over"
    assert [ln.line for ln in lines][:2] == [1, 2]
    assert "/usr/sbin/ipadm" not in parse_script("/usr/sbin/ipadm show-addr\n", "x")[0].words


def test_nothing_to_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"no etc directory .*ipadm\.conf or .*ipadm\.sh"):
        plan_network(tmp_path)


# -- the drill's script and the Solaris 11 rules ---------------------------------------------


def test_the_drill_script_of_each_solaris11_example(tmp_path: Path) -> None:
    kinds = {name: [s.kind for s in plan_steps(plan_network(lab_dir(tmp_path, name)))[0]]
             for name in ("active-active.sh", "test-addresses.sh", "transitive.sh")}
    assert "silent-fail" not in kinds["active-active.sh"] and "router-down" not in kinds["active-active.sh"]
    assert "silent-fail" in kinds["test-addresses.sh"] and "router-down" in kinds["test-addresses.sh"]
    # Transitive probing finds silent failures; a router outage has no Solaris rule to check.
    assert "silent-fail" in kinds["transitive.sh"] and "router-down" not in kinds["transitive.sh"]
    _, notes = plan_steps(plan_network(tmp_path / "transitive"))
    assert any("transitive probing only" in n for n in notes)


def s11_rules(tmp_path: Path, script: str, where: dict[str, set[str]]) -> tuple[World, Rules]:
    world = World.of(plan_network(lab_dir(tmp_path, script)))
    return world, Rules(world, lambda a: set(where.get(a, set())), 0.7)


def test_a_failed_member_s_addresses_are_rebound_without_a_failover_message(tmp_path: Path) -> None:
    where = {"192.0.2.10": {"net0"}, "192.0.2.11": {"net1"}}
    _, rules = s11_rules(tmp_path, "active-active.sh", where)
    e = rules.failure("net0", link=True)
    lines = ["The link has gone down on net0", "IP interface failure detected on net0 of group ipmp0"]
    assert len(e.messages) == 2 and all(re.fullmatch(p, m) for p, m in zip(e.messages, lines, strict=True))
    assert not any("Successfully" in m for m in e.messages)
    assert e.placement == {"192.0.2.10": {"net1"}, "192.0.2.11": {"net1"}}
    assert e.moving == {"192.0.2.10"}
    assert e.spread == [(("net1",), 4, [2])]
    assert any("fewest" in n for n in e.notes)


def test_a_repaired_member_takes_its_share_not_its_old_addresses(tmp_path: Path) -> None:
    # net0 failed earlier: both addresses are on net1.  Either may come back:
    # there is no home, only "own + 1 >= max" (ipmp_ill_activate).
    where = {"192.0.2.10": {"net1"}, "192.0.2.11": {"net1"}}
    world, rules = s11_rules(tmp_path, "active-active.sh", where)
    world.nics["net0"].state = "failed"
    e = rules.repair("net0", link=True)
    assert re.fullmatch(e.messages[-1], "IP interface repair detected on net0 of group ipmp0")
    assert not any("failed back" in m for m in e.messages)
    assert e.placement == {"192.0.2.10": {"net0", "net1"}, "192.0.2.11": {"net0", "net1"}}
    assert e.spread == [(("net0", "net1"), 4, [1, 1])]
    # The kernel's count rule, checked against what the kernel shows:
    assert spread_problems(e, lambda a: {"net1"}, ["192.0.2.10", "192.0.2.11"])
    assert not spread_problems(e, lambda a: {"net0"} if a == "192.0.2.11" else {"net1"},
                               ["192.0.2.10", "192.0.2.11"])


def test_three_members_deal_to_the_fewest_one_by_one(tmp_path: Path) -> None:
    script = tmp_path / "three.sh"
    script.write_text("ipadm create-ip net0\nipadm create-ip net1\nipadm create-ip net2\n"
                      "ipadm create-ipmp -i net0,net1,net2 ipmp0\n"
                      + "".join(f"ipadm create-addr -T static -a 192.0.2.{10 + k}/24 ipmp0\n"
                                for k in range(5)))
    world = World.of(plan_network(tmp_path, script))
    # net0 holds 3, net1 1, net2 1; net0 fails: its three go 1 to each, then 1 more.
    where = {"192.0.2.10": {"net0"}, "192.0.2.11": {"net0"}, "192.0.2.12": {"net0"},
             "192.0.2.13": {"net1"}, "192.0.2.14": {"net2"}}
    e = Rules(world, lambda a: set(where[a]), 0.7).failure("net0", link=True)
    assert e.spread == [(("net1", "net2"), 4, [2, 3])]
    assert e.placement["192.0.2.13"] == {"net1"} and e.placement["192.0.2.10"] == {"net1", "net2"}


def test_offline_of_the_last_active_member_holding_addresses_is_refused(tmp_path: Path) -> None:
    where = {"192.0.2.10": {"net0"}, "192.0.2.11": {"net0"}}
    world, rules = s11_rules(tmp_path, "active-active.sh", where)
    world.nics["net1"].state = "offline"
    e = rules.offline("net0")
    assert e.rc == 1 and e.stderr is not None and "no other functional interface" in e.stderr
    world.nics["net1"].state = "ok"
    assert rules.offline("net0").rc == 0


def test_after_a_group_failure_the_first_repaired_member_takes_every_parked_address(tmp_path: Path) -> None:
    where = {"192.0.2.10": {"net0"}}
    world, rules = s11_rules(tmp_path, "test-addresses.sh", where)
    for s in world.nics.values():
        s.state = "failed"
    world.group_failed["ipmp0"] = True
    e = rules.router_up()
    assert [m for m in e.messages if re.fullmatch(m, "IP interface repair detected on net1 of group ipmp0")]
    assert e.placement["192.0.2.10"] == {"net0", "net1"}  # whichever repair comes first
    assert e.spread == [(("net0", "net1"), 4, [0, 1])]


def test_the_end_of_a_drill_wants_balance_not_a_home(tmp_path: Path) -> None:
    world, _ = s11_rules(tmp_path, "active-active.sh", {})
    assert not final_problems(world, lambda a: {"net1"} if a == "192.0.2.10" else {"net0"})
    problems = final_problems(world, lambda a: {"net1"})
    assert problems and "not balanced" in problems[0]
