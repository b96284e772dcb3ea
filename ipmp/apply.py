"""read -> plan -> execute -> verify -> revert: the one way the toolkit changes the host.

Used by ``ifconfig``, ``ipmp-boot`` and in.mpathd (its failovers, failbacks and
rescans: ``ipmp.mpathd.kernelpath``).  The caller holds the state-store lock
across the whole call, so that two commands never interleave.

Verification follows nmstate's habit: read the kernel back and check that
nothing of the plan is left to do, retrying a few times for the kernel to
settle; on any failure the plan ``diff(after, before)`` is executed and an
``ApplyError`` names the operation that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ipmp.errors import ApplyError, StateError
from ipmp.linux.desired import desired_kernel
from ipmp.linux.ops import Op, Plan, command
from ipmp.linux.plan import data_path_length, diff
from ipmp.linux.view import Scope, nic_sysctl_keys
from ipmp.model import Config, Family, IPAddress, KernelState

#: Verification retries and the pause between them (seconds).
VERIFY_TRIES = 5
VERIFY_PAUSE = 0.05


class KernelIO(Protocol):
    """What apply needs of ``ipmp.kernel.execute.Kernel``."""

    async def read(self, sysctl_keys: Sequence[str] = ()) -> KernelState: ...

    async def execute(self, ops: Sequence[Op]) -> None: ...


def sysctl_keys(names: Sequence[str]) -> list[str]:
    """Every sysctl a plan may set, for these interface names."""
    return [key for name in names for key in nic_sysctl_keys(name)]


@dataclass(frozen=True)
class Applied:
    plan: Plan
    after: KernelState


def make_plan(
    current: KernelState, desired: Config, scope: Scope, defaultrouters: Sequence[IPAddress],
    *, keep_link_identity: bool = False,
) -> Plan:
    """The operations that take ``current`` to ``desired`` within ``scope``.

    ``keep_link_identity``: the hardware address and the MTU are the kernel's
    as read now, whatever ``desired`` says.  in.mpathd sets neither (Solaris
    in.mpathd changes flags and addresses, never a link's identity), and its
    ``desired`` may have been read before an admin changed one: planning from
    it would change the MAC or the MTU back behind the admin's back.
    """
    want = desired_kernel(desired, scope, current, defaultrouters)
    if keep_link_identity:
        now = {link.name: link for link in current.links}
        want = replace(want, links=tuple(
            replace(link, mac=now[link.name].mac, mtu=now[link.name].mtu) if link.name in now else link
            for link in want.links))
    return diff(current, want, scope)


async def apply(
    kernel: KernelIO,
    desired: Config,
    scope: Scope,
    defaultrouters: Sequence[IPAddress] = (),
    *,
    before: KernelState | None = None,
    dry_run: bool = False,
    executed: Callable[[Plan], None] | None = None,
    keep_link_identity: bool = False,
) -> Applied:
    """Make the kernel match ``desired`` within ``scope``, or leave it as it was.

    ``executed`` is called as soon as the data path of the plan is in the
    kernel (addresses and rules, ``plan.data_path_length``), before the rest
    and the read-back: the daemon sends its gratuitous ARPs there, since the
    moved addresses work from that moment and every millisecond is a lost packet.
    """
    keys = sysctl_keys(sorted(scope.names))
    if before is None:
        before = await kernel.read(keys)
    plan = make_plan(before, desired, scope, defaultrouters, keep_link_identity=keep_link_identity)
    if dry_run or not plan:
        return Applied(plan, before)
    try:
        if executed is None:
            await kernel.execute(plan)
        else:
            cut = data_path_length(plan)
            await kernel.execute(plan[:cut])
            executed(plan)
            await kernel.execute(plan[cut:])
        after = await kernel.read(keys)
        for _ in range(VERIFY_TRIES):
            left = make_plan(after, desired, scope, defaultrouters, keep_link_identity=keep_link_identity)
            if not left:
                return Applied(plan, after)
            import asyncio  # here: a status command never gets this far

            await asyncio.sleep(VERIFY_PAUSE)
            after = await kernel.read(keys)
        raise ApplyError(
            "the kernel did not take the configuration; still to do: "
            + "; ".join(command(op) for op in left),
            op=left[0],
        )
    except ApplyError as err:
        await revert(kernel, before, scope, keys)
        raise err from None


async def apply_and_record(
    kernel: KernelIO,
    desired: Config,
    scope: Scope,
    defaultrouters: Sequence[IPAddress],
    record: Callable[[Applied], None],
    *,
    before: KernelState,
) -> Applied:
    """``apply``, then ``record`` what was done (the state store); all or nothing.

    The store holds what Linux has no flag for (group, standby, each
    address's home): a kernel change the store does not know of is a
    change in.mpathd and the next ifconfig misread.  So a command whose
    record fails (``run`` full or read-only) takes its kernel change back
    and fails (``StateError``), as it would have had the kernel refused.
    """
    applied = await apply(kernel, desired, scope, defaultrouters, before=before)
    try:
        record(applied)
    except StateError as err:
        if applied.plan:
            await revert(kernel, before, scope, sysctl_keys(sorted(scope.names)))
        raise StateError(f"{err}: cannot record the change, so it was taken back") from None
    return applied


async def revert(kernel: KernelIO, before: KernelState, scope: Scope, keys: Sequence[str]) -> None:
    """Take the kernel back to ``before`` within ``scope``; best effort, op by op."""
    for _ in range(3):
        now = await kernel.read(keys)
        back = diff(now, before, scope)
        if not back:
            return
        for op in back:
            try:
                await kernel.execute((op,))
            except ApplyError:
                continue  # the next pass re-reads and tries what is left


def full_scope(config: Config, names: Sequence[str]) -> Scope:
    """Both families of each named interface that is, or is to be, plumbed for them."""
    pairs = set()
    for name in names:
        itf = config.get(name)
        if itf is None:
            continue
        for family in (Family.INET, Family.INET6):
            pairs.add((name, family))
    return Scope(frozenset(pairs))
