"""apply() under faults on the real kernel: a dual-stack boot plan, failed at every op and for real.

``test_ifconfig.py`` injects a failure at every op of an IPv4 plan.  Here the
plan is the boot of a dual-stack active-active host (IPv4 data and test
addresses, an IPv6 data address per NIC, IPv4 and IPv6 default routers):
about 50 operations of every kind -- sysctls, links, addresses, routes and
rules of both families.  After every failure the namespace is read back
with iproute2 (``kernelsnap``, not the product's own reader) and must equal
the reading taken before, route for route and sysctl for sysctl.

The real failures, each met by the kernel rather than injected:

* a route another actor already holds (the same table, destination and
  metric on another device: EEXIST) -- through ``ipmp-boot`` too, where only
  the line that needs the route fails and the rest still comes up;
* the very address the plan is about to add, added by another actor between
  the read and the add (EEXIST on the address);
* a NIC deleted in the middle of the apply (ENODEV on what follows).

Only the fixtures' namespaces and documentation addresses are used.
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from kernelsnap import differences, snapshot
from labhost import BIN, MakeTopology, copy_example

from ipmp.lab.topology import Topology

HERE = Path(__file__).resolve().parent
INJECT = HERE / "apply_inject.py"
NICS = ("qfe0", "qfe1")
V6 = {"qfe0": "2001:db8::100", "qfe1": "2001:db8::101"}


def dual_stack_root(tmp_path: Path) -> Path:
    """active-active plus an IPv6 data address per NIC and an IPv6 default router."""
    root = copy_example("active-active", tmp_path)
    etc = root / "etc"
    for nic, address in V6.items():
        # Solaris style: the link-local is the NIC's IPv6 test address.
        (etc / f"hostname6.{nic}").write_text(f"-failover group prod up\naddif {address}/64 up\n")
    (etc / "defaultrouter").write_text("192.0.2.1\n2001:db8::1\n")
    return root


def inject(topo: Topology, root: Path, mode: str, *args: str) -> dict[str, Any]:
    argv = [sys.executable, str(INJECT), str(root), mode, *args]
    proc = topo.run("host", argv, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def assert_reverted(result: dict[str, Any], run: dict[str, Any]) -> None:
    diff = differences(result["before"], run["after"])
    k = run["k"]
    where = result["plan"][k] if 0 <= k < len(result["plan"]) else "-"
    assert not diff, f"not reverted after a failure at op {k} ({where}):\n" + "\n".join(diff)


def index_of(plan: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(plan) if line.startswith(prefix))


def test_failure_at_every_op_of_a_dual_stack_plan_is_reverted(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    root = dual_stack_root(tmp_path)
    topo = make_topology(nics=NICS)
    result = inject(topo, root, "every")
    plan = result["plan"]
    assert len(plan) >= 40, plan
    for kind in ("sysctl -w net.ipv4.", "sysctl -w net.ipv6.", "ip link set dev ", "ip -4 addr add ",
                 "ip -6 addr add ", "ip -4 route add ", "ip -6 route add default ", "ip -4 rule add ",
                 "ip -6 rule add "):
        assert any(line.startswith(kind) for line in plan), (kind, plan)
    assert len(result["runs"]) == len(plan)
    for run in result["runs"]:
        assert run["first_call"] == len(plan), run["k"]
        assert run["failed_at"] == plan[run["k"]], run["k"]
        assert run["errno"] == errno.EIO
        assert_reverted(result, run)
    # And the plan itself is good: applied for real, nothing is left to do.
    assert result["left"] == []


@pytest.mark.parametrize(
    ("family", "occupied"),
    [
        # qfe1's main-table subnet route (metric 100 + its index 3) is taken through lo.
        ("-4", ["192.0.2.0/24", "dev", "lo", "metric", "103"]),
        # qfe0's IPv6 default route in the main table, taken through lo.
        ("-6", ["default", "dev", "lo", "metric", "102"]),
    ],
    ids=["ipv4-subnet-route", "ipv6-default-route"],
)
def test_a_route_already_held_elsewhere_fails_the_apply_and_it_is_reverted(
    make_topology: MakeTopology, tmp_path: Path, family: str, occupied: list[str]
) -> None:
    root = dual_stack_root(tmp_path)
    topo = make_topology(nics=NICS)
    topo.ip("host", "link", "set", "dev", "lo", "up")
    topo.ip("host", family, "route", "add", *occupied)
    result = inject(topo, root, "once")
    (run,) = result["runs"]
    assert run["errno"] == errno.EEXIST, run
    assert run["failed_at"] is not None and run["failed_at"].startswith(f"ip {family} route add "), run
    assert_reverted(result, run)


def test_ipmp_boot_with_a_route_held_elsewhere_costs_only_the_line_that_needs_it(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    """Through the real command: the kernel refuses qfe1's IPv4 line; its other lines and qfe0 come up.

    Each line is its own command (net_include.sh ``inet_process_hostname``):
    the refused line is taken back whole and named, qfe1's hostname6 lines
    still run, as they would after a failed ``ifconfig`` on Solaris.
    """
    root = dual_stack_root(tmp_path)
    topo = make_topology(nics=NICS)
    topo.ip("host", "link", "set", "dev", "lo", "up")
    topo.ip("host", "-4", "route", "add", "192.0.2.0/24", "dev", "lo", "metric", "103")
    before = snapshot(lambda *a: topo.ip_json("host", *a))
    proc = topo.run("host", ["env", "SUNW_NO_MPATHD=1", str(BIN / "ipmp-boot"), "-R", str(root)], check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    located, failed = proc.stderr.splitlines()
    assert located.startswith(f"{root / 'etc' / 'hostname.qfe1'}:1:1: ip -4 route add 192.0.2.0/24 "), located
    assert "File exists" in located, located
    assert failed == "Failed to configure IPv4 interface(s): qfe1"
    after = snapshot(lambda *a: topo.ip_json("host", *a))
    changed = differences(before, after)
    # Nothing of qfe1's IPv4 line is left; the other actor's route is untouched.
    assert not [line for line in changed if "192.0.2.101" in line or "192.0.2.11\"" in line
                or ('"qfe1"' in line and '"inet"' in line) or '"dev": "lo"' in line], "\n".join(changed)
    # qfe0 carries both families' data addresses, qfe1 its IPv6 one; the peer reaches them.
    report = topo.ping("peer", ["192.0.2.100", V6["qfe0"], V6["qfe1"]], count=3, interval=0.05)
    assert all(report[ip].received == 3 for ip in ("192.0.2.100", V6["qfe0"], V6["qfe1"])), report
    # --check still wants qfe1's IPv4 line, and nothing else.
    check = topo.run("host", ["env", "SUNW_NO_MPATHD=1", str(BIN / "ipmp-boot"), "-R", str(root), "--check"],
                     check=False)
    assert check.returncode == 1
    lines = [ln for ln in check.stdout.splitlines() if ln.startswith("ip ") or ln.startswith("sysctl ")]
    assert lines and all(ln.startswith("ip -4 ") and ("qfe1" in ln or "1003" in ln or "192.0.2.101" in ln
                                                       or "192.0.2.11 " in ln) for ln in lines), check.stdout


@pytest.mark.parametrize("which", ["ip -4 addr add 192.0.2.101/", "ip -6 addr add 2001:db8::100/"])
def test_an_address_added_by_another_actor_mid_apply_is_met_and_reverted(
    make_topology: MakeTopology, tmp_path: Path, which: str
) -> None:
    root = dual_stack_root(tmp_path)
    topo = make_topology(nics=NICS)
    plan = inject(topo, root, "plan")["plan"]
    k = index_of(plan, which)
    result = inject(topo, root, "race", str(k))
    assert result["plan"] == plan
    (run,) = result["runs"]
    assert run["failed_at"] == plan[k], run
    assert run["errno"] == errno.EEXIST, run
    # apply() restores its before-state: the other actor's copy goes too, so
    # the address is on no NIC rather than twice.
    assert_reverted(result, run)


@pytest.mark.parametrize("at", ["first-qfe1-op", "after-qfe1-rules-and-routes"])
def test_a_nic_removed_mid_apply_fails_and_the_rest_is_reverted(
    make_topology: MakeTopology, tmp_path: Path, at: str
) -> None:
    root = dual_stack_root(tmp_path)
    topo = make_topology(nics=NICS)
    plan = inject(topo, root, "plan")["plan"]
    first = min(i for i, line in enumerate(plan) if "qfe1" in line)
    k = first if at == "first-qfe1-op" else index_of(plan, "ip -6 rule add pref 200 from 2001:db8::101")
    result = inject(topo, root, "vanish", str(k), "qfe1")
    (run,) = result["runs"]
    # ENODEV for links, addresses and routes, ENOENT for its sysctls; when
    # only device-less ops (rules) were left, the verification catches it.
    assert run["errno"] in (errno.ENODEV, errno.ENOENT, 0), run
    assert run["failed_at"] is not None and "qfe1" in run["failed_at"], run
    # Everything but qfe1 itself is as before; qfe1 is gone with its sysctls,
    # and nothing of it is left behind -- in particular not its rules, which
    # the kernel keeps when a device goes (they name a table, not a device).
    diff = differences(result["before"], run["after"])
    assert diff, "qfe1 was deleted"
    assert all("qfe1" in line for line in diff), "\n".join(diff)
    assert all(line.startswith("- ") or line.endswith("=None") for line in diff), "\n".join(diff)


def test_an_apply_planned_from_a_copy_another_actor_changed_is_tried_again(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    """Bug 8 (RELIABILITY.md), deterministic: the rules are flushed after in.mpathd's
    kernel copy was taken and before its failover apply; the plan from the copy
    misses them, the read-back fails, and one more try from a fresh read must
    leave the failover complete, with no "failed to apply"."""
    root = copy_example("active-active", tmp_path)
    topo = make_topology(nics=NICS)
    boot = topo.run("host", ["env", "SUNW_NO_MPATHD=1", str(BIN / "ipmp-boot"), "-R", str(root)], check=False)
    assert boot.returncode == 0, boot.stderr
    proc = topo.run("host", [sys.executable, str(HERE / "stale_apply.py"), str(root)], check=False,
                    timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    log = "\n".join(result["log"])
    assert any(line.startswith("apply failed, trying once more") for line in result["log"]), log
    assert "failed to apply" not in log, log
    assert result["left"] == [], result
    assert any("from 192.0.2.100 lookup" in rule for rule in result["rules"]), result["rules"]


def test_a_revert_deletes_a_subnet_whose_primary_it_put_back_without_losing_the_rest(
    make_topology: MakeTopology,
) -> None:
    """Bug 9 (RELIABILITY.md) on the real kernel: with promote_secondaries off on the
    host, a revert to the fresh kernel must delete every address of a subnet whose
    primary is not unit 0, and leave the namespace as it was."""
    topo = make_topology(nics=NICS)
    proc = topo.run("host", [sys.executable, str(HERE / "revert_primary.py")], check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["primary_before_revert"] == "192.0.2.11", result  # the case of bug 9
    assert result["error"] == "", result
    assert result["left"] == [], result
