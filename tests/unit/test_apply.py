"""apply(): read -> plan -> execute -> verify -> revert, on the fake kernel."""

from __future__ import annotations

import asyncio
import errno
from dataclasses import replace
from pathlib import Path

import pytest

from ipmp import apply as apply_module
from ipmp.admin.bootfiles import boot_config
from ipmp.apply import Applied, apply, make_plan, sysctl_keys
from ipmp.errors import ApplyError
from ipmp.host import lookups
from ipmp.linux.ops import Op, Plan, SetSysctl, command
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Environment, Family, KernelState
from tests.fakes import FakeKernel, make_kernel, managed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hostname.files" / "active-active"
NAMES = ["qfe0", "qfe1"]
KEYS = sysctl_keys(NAMES)
BOTH = Scope(frozenset((n, f) for n in NAMES for f in (Family.INET, Family.INET6)))


def active_active(config: Config, names: list[str]) -> tuple[Config, Environment]:
    env = lookups.read_environment(EXAMPLE)
    for name in names:
        config = boot_config(config, name, [(Family.INET, EXAMPLE / "etc" / f"hostname.{name}")], env)
    return config, env


def go(
    kernel: FakeKernel, config: Config, scope: Scope, env: Environment, *, dry_run: bool = False
) -> Applied:
    return asyncio.run(apply(kernel, config, scope, env.defaultrouters, dry_run=dry_run))


@pytest.fixture
def fresh() -> KernelState:
    return make_kernel(*NAMES)


def test_apply_executes_the_plan_and_a_second_apply_does_nothing(fresh: KernelState) -> None:
    config, env = active_active(merge(fresh, ()), NAMES)
    kernel = FakeKernel(fresh)
    expected = make_plan(kernel.state(KEYS), config, BOTH, env.defaultrouters)
    applied = go(kernel, config, BOTH, env)
    assert applied.plan == expected
    assert len(applied.plan) > 20
    assert kernel.executed == list(applied.plan)
    assert applied.after == kernel.state(KEYS)
    ours = {str(a.address) for a in applied.after.addresses if a.ifname in NAMES and a.family is Family.INET}
    assert ours == {"192.0.2.100/24", "192.0.2.10/24", "192.0.2.101/24", "192.0.2.11/24"}
    kernel.reset()
    again = go(kernel, config, BOTH, env)
    assert again.plan == ()
    assert kernel.executed == []
    assert again.after == applied.after


def test_apply_uses_the_before_state_it_is_given(fresh: KernelState) -> None:
    config, env = active_active(merge(fresh, ()), NAMES)
    kernel = FakeKernel(fresh)
    before = kernel.state(KEYS)
    reads = kernel.reads
    applied = asyncio.run(apply(kernel, config, BOTH, env.defaultrouters, before=before))
    assert applied.plan
    assert kernel.reads == reads + 1  # only the read-back


def boot_plan(fresh: KernelState) -> tuple[Config, Environment, Plan]:
    config, env = active_active(merge(fresh, ()), NAMES)
    return config, env, make_plan(FakeKernel(fresh).state(KEYS), config, BOTH, env.defaultrouters)


def plan_indexes() -> list[int]:
    fresh = make_kernel(*NAMES)
    return list(range(len(boot_plan(fresh)[2])))


@pytest.mark.parametrize("index", plan_indexes())
def test_a_failure_at_any_op_restores_the_before_state(fresh: KernelState, index: int) -> None:
    config, env, plan = boot_plan(fresh)
    kernel = FakeKernel(fresh, fail_at=index)
    before = managed(kernel.state(KEYS))
    with pytest.raises(ApplyError) as info:
        go(kernel, config, BOTH, env)
    failed: Op = plan[index]
    assert info.value.op == failed
    assert info.value.errno_ == errno.EIO
    assert str(info.value).startswith(command(failed) + ": ")
    assert kernel.executed[:index] == list(plan[:index])
    assert managed(kernel.state(KEYS)) == before


def test_a_failure_on_the_second_nic_leaves_the_first_alone(fresh: KernelState) -> None:
    first, env = active_active(merge(fresh, ()), ["qfe0"])
    kernel = FakeKernel(fresh)
    qfe0 = Scope(frozenset({("qfe0", Family.INET)}))
    go(kernel, first, qfe0, env)
    configured = managed(kernel.state(KEYS))
    second, _ = active_active(merge(kernel.state(KEYS), ()), ["qfe1"])
    qfe1 = Scope(frozenset({("qfe1", Family.INET)}))
    plan = make_plan(kernel.state(KEYS), second, qfe1, env.defaultrouters)
    assert plan and all("qfe0" not in command(op) for op in plan)
    for index in range(len(plan)):
        kernel.reset(fail_at=index)
        with pytest.raises(ApplyError):
            go(kernel, second, qfe1, env)
        assert managed(kernel.state(KEYS)) == configured


class LazyKernel(FakeKernel):
    """A kernel that says yes to rp_filter writes and keeps the old value."""

    async def execute(self, ops: object) -> None:
        assert isinstance(ops, (list, tuple))
        keep = [op for op in ops if not (isinstance(op, SetSysctl) and op.key.endswith("qfe1/rp_filter"))]
        await super().execute(keep)


def test_verification_failure_reverts_and_names_what_is_left(
    fresh: KernelState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_module, "VERIFY_PAUSE", 0.0)
    config, env = active_active(merge(fresh, ()), NAMES)
    kernel = LazyKernel(fresh)
    before = managed(kernel.state(KEYS))
    with pytest.raises(ApplyError) as info:
        go(kernel, config, BOTH, env)
    assert info.value.op == SetSysctl("net/ipv4/conf/qfe1/rp_filter", "2")
    assert str(info.value) == (
        "the kernel did not take the configuration; still to do: sysctl -w net.ipv4.conf.qfe1.rp_filter=2"
    )
    assert managed(kernel.state(KEYS)) == before


def test_dry_run_changes_nothing(fresh: KernelState) -> None:
    config, env = active_active(merge(fresh, ()), NAMES)
    kernel = FakeKernel(fresh)
    before = kernel.state(KEYS)
    applied = go(kernel, config, BOTH, env, dry_run=True)
    assert applied.plan == make_plan(before, config, BOTH, env.defaultrouters)
    assert applied.plan
    assert applied.after == before
    assert kernel.executed == []
    assert kernel.attempts == 0
    assert kernel.state(KEYS) == before


def test_apply_and_record_takes_the_change_back_when_it_cannot_be_recorded(fresh: KernelState) -> None:
    from ipmp.apply import apply_and_record
    from ipmp.errors import StateError

    config, env = active_active(merge(fresh, ()), NAMES)
    kernel = FakeKernel(fresh)
    before = kernel.state(KEYS)

    def full(_: Applied) -> None:
        raise StateError("run/ipmp/state.json: No space left on device")

    taken_back = "No space left on device: cannot record the change, so it was taken back"
    with pytest.raises(StateError, match=taken_back):
        asyncio.run(apply_and_record(kernel, config, BOTH, env.defaultrouters, full, before=before))
    assert kernel.executed, "the change was made first"
    assert kernel.state(KEYS) == before
    recorded: list[Applied] = []
    applied = asyncio.run(apply_and_record(kernel, config, BOTH, env.defaultrouters, recorded.append,
                                           before=before))
    assert recorded == [applied] and applied.after == kernel.state(KEYS) != before


def test_the_daemons_plan_keeps_the_mac_and_mtu_an_admin_set_after_its_read(fresh: KernelState) -> None:
    """in.mpathd plans from a Config read earlier; a MAC or MTU changed since must stay (it sets neither)."""
    config, env = active_active(merge(fresh, ()), NAMES)
    kernel = FakeKernel(fresh)
    go(kernel, config, BOTH, env)
    now = kernel.state(KEYS)
    changed = replace(now, links=tuple(replace(link, mac="02:00:00:00:99:99", mtu=1400)
                                       if link.name == "qfe1" else link for link in now.links))
    ifconfig_plan = make_plan(changed, config, BOTH, env.defaultrouters)
    assert [command(op) for op in ifconfig_plan] == [
        f"ip link set dev qfe1 address {next(i.mac for i in config.interfaces if i.name == 'qfe1')} mtu 1500"]
    assert make_plan(changed, config, BOTH, env.defaultrouters, keep_link_identity=True) == ()
