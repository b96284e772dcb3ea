"""Regression tests for the product bugs found by the reliability suite (issue 7).

Each names the test that found it; the real-kernel reproduction stays there.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from ipmp.admin.bootfiles import boot_config
from ipmp.apply import make_plan, sysctl_keys
from ipmp.host import lookups
from ipmp.host.state import Stored
from ipmp.linux.ops import DelRule
from ipmp.linux.plan import diff
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Environment, Family, KernelState
from ipmp.mpathd.failover import fail_over
from ipmp.mpathd.logger import Logger
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import Timing
from ipmp.mpathd.runtime import Runtime
from ipmp.mpathd.settings import Settings
from ipmp.mpathd.steps import Execute
from tests.fakes import FakeKernel, make_kernel
from tests.unit.mpathd_sim import placement
from tests.unit.test_machine import started

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hostname.files" / "active-active"
NAMES = ["qfe0", "qfe1"]
BOTH = Scope(frozenset((n, f) for n in NAMES for f in (Family.INET, Family.INET6)))


def _booted() -> tuple[KernelState, Environment, Config]:
    """A fresh kernel with qfe0 and qfe1, and the boot configuration of the active-active example."""
    fresh = make_kernel(*NAMES)
    env = lookups.read_environment(EXAMPLE)
    config = merge(fresh, ())
    for name in NAMES:
        config = boot_config(config, name, [(Family.INET, EXAMPLE / "etc" / f"hostname.{name}")], env)
    return fresh, env, config


def _without_link(state: KernelState, name: str) -> KernelState:
    """What the kernel holds after ``ip link del NAME``: its addresses and routes go, rules stay."""
    return replace(
        state,
        links=tuple(lk for lk in state.links if lk.name != name),
        addresses=tuple(a for a in state.addresses if a.ifname != name),
        routes=frozenset(r for r in state.routes if r.dev != name),
        sysctls=tuple((k, v) for k, v in state.sysctls if f"/{name}/" not in k),
    )


def test_revert_takes_away_the_rules_of_a_nic_deleted_mid_apply() -> None:
    """tests/netns/test_apply_faults.py::test_a_nic_removed_mid_apply_fails_and_the_rest_is_reverted.

    The rules of a NIC's table were in scope only while the NIC was in the
    kernel, so a revert after the NIC vanished left ``from <addr> lookup
    <its table>`` rules behind for good.
    """
    fresh, env, config = _booted()
    kernel = FakeKernel(fresh)
    keys = sysctl_keys(NAMES)
    before = kernel.state(keys)
    kernel.run(make_plan(before, config, BOTH, env.defaultrouters))
    applied = kernel.state(keys)
    qfe1_table = 1000 + next(lk.index for lk in applied.links if lk.name == "qfe1")
    orphans = {r for r in applied.rules if r.table == qfe1_table}
    assert len(orphans) == 2  # data and test address

    back = diff(_without_link(applied, "qfe1"), before, BOTH)

    assert {op.rule for op in back if isinstance(op, DelRule)} == {r for r in applied.rules}


def test_recovery_from_a_group_failure_moves_nothing_when_members_come_back_a_little_apart() -> None:
    """Regression (found by ``make flap``): after a group failure the first member to
    repair cleared it and invariant 2 at once moved the addresses of a member whose
    probes were 0.3 s behind; the group now gets one FDT to settle (Group.settling_until)."""
    sim = started(2)
    before = placement(sim.truth)
    sim.router_down()
    sim.advance(3.0)
    sim.silent("qfe1")  # its first answers come a little later than qfe0's
    sim.router_down(False)
    first = sim.run_until_log("has repaired", 5.0)
    sim.run_until(first.time + 0.3)
    sim.silent("qfe1", False)
    sim.advance(3.0)
    assert not sim.lines("Successfully failed over"), sim.messages()
    assert placement(sim.truth) == before


def test_an_apply_planned_from_a_copy_someone_changed_is_tried_again_from_a_new_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bug 8, found by ``make soak`` (tests/netns/test_soak.py): the rules were
    flushed between in.mpathd's cached kernel read and its apply of a failover;
    the plan missed them, the read-back failed and the daemon logged "failed to
    apply the new configuration".  A failed apply is now tried once more from a
    new read (``Runtime._apply``)."""
    fresh, env, config = _booted()
    kernel = FakeKernel(fresh)
    keys = sysctl_keys(NAMES)
    kernel.run(make_plan(kernel.state(keys), config, BOTH, env.defaultrouters))
    runtime = Runtime(tmp_path, Machine(Settings(), Timing()), Logger(to_stderr=True, debug=True))
    runtime.store.save(Stored(config.interfaces, env.defaultrouters))  # as ipmp-boot leaves it
    runtime._kernel = kernel  # type: ignore[assignment]  # the fake stands for ipmp.kernel.execute.Kernel
    runtime.kernel_state = kernel.state(keys)  # the daemon's copy, current when read
    runtime._sysctls_asked = frozenset(keys)
    runtime._announce_moves = lambda plan: None  # type: ignore[method-assign]  # no NIC to send on
    assert kernel.state(keys).rules
    kernel.run([DelRule(r) for r in kernel.state(keys).rules])  # another actor: ip rule flush

    moved = fail_over(config, "qfe0", "qfe1")
    asyncio.run(runtime._execute(Execute(moved, tuple(NAMES))))

    assert not make_plan(kernel.state(keys), moved, BOTH, env.defaultrouters)
    assert runtime.kernel_state.rules == kernel.state(keys).rules
    assert "failed to apply" not in capsys.readouterr().err
