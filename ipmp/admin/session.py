"""What one ``ifconfig`` command does, without the printing.

Each entry point reads the kernel and the state store under the store lock,
evaluates Solaris commands over the merged view, plans, applies (or only
plans, for ``--dry-run`` and ``--check``), and saves the store.  The command
line shells print what comes back and choose the exit status.  ``ipmp-boot``
reads the host and waits for DAD with the same functions
(``ipmp.admin.bootfiles``).

``ifconfig -a`` and the other status reads do not come through this module
at all (``ipmp.admin.status``): it may load the planner and the executor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ipmp.apply import KernelIO, apply_and_record, make_plan, sysctl_keys
from ipmp.config.commands import Command
from ipmp.config.evaluate import Outcome, evaluate
from ipmp.host import lookups
from ipmp.host.ifmap import canonical_name
from ipmp.host.state import Store, Stored
from ipmp.linux.ops import Plan
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Family, Interface, KernelState


def describe_state_changes(before: Config, after: Config, names: Sequence[str]) -> list[str]:
    """The state-store part of a change, as ``#`` lines for ``--dry-run``.

    Linux has no place for these IPMP facts; showing them next to the ``ip``
    commands tells a Solaris admin where each of their words went.
    """
    lines: list[str] = []
    for name in names:
        old = before.get(name) or Interface(name)
        new = after.get(name) or Interface(name)
        if old.group != new.group:
            left = f"# {name}: leaves group {old.group}"
            lines.append(f"# {name}: group {new.group} (state store)" if new.group else left)
        for attr in ("standby", "failed", "offline"):
            if getattr(old, attr) != getattr(new, attr):
                lines.append(f"# {name}: {'' if getattr(new, attr) else '-'}{attr}")
        for fam in (Family.INET, Family.INET6):
            if (fam in old.plumbed) != (fam in new.plumbed):
                verb = "plumbed" if fam in new.plumbed else "unplumbed"
                lines.append(f"# {name}: {fam.word} {verb}")
        olds = {(lg.family, lg.unit): lg for lg in old.logicals}
        for lg in new.logicals:
            prev = olds.get((lg.family, lg.unit))
            lname = lg.name(name)
            if lg.nofailover and (prev is None or not prev.nofailover):
                lines.append(f"# {lname}: -failover (test address; never moves)")
            if prev is not None and prev.nofailover and not lg.nofailover:
                lines.append(f"# {lname}: failover (data address)")
            newly_down = prev is None or prev.up or prev.address != lg.address
            if lg.address is not None and not lg.up and newly_down:
                lines.append(f"# {lname}: {lg.address} configured down (kept in the state store)")
    return lines


@dataclass
class Host:
    """The host as one command sees it, read under the store lock."""

    root: Path
    kernel: KernelState
    stored: Stored
    config: Config

    @property
    def store(self) -> Store:
        return Store(self.root)


async def read_host(kernel_io: KernelIO, root: Path) -> Host:
    """Read the kernel and the store and merge them (caller holds the lock)."""
    first = await kernel_io.read()
    kernel = await kernel_io.read(sysctl_keys([lk.name for lk in first.links]))
    stored = Store(root).load()
    return Host(root, kernel, stored, merge(kernel, stored.interfaces))


@dataclass
class CommandResult:
    outcome: Outcome
    plan: Plan = ()
    notes: list[str] = field(default_factory=list)
    config: Config | None = None  # the view after the command, for status output
    #: The kernel after the apply and the interfaces whose IPv6 the command
    #: touched: for ``settle_command``, once the store lock is let go.
    settle: tuple[KernelState, tuple[str, ...]] | None = None


async def run_command(kernel_io: KernelIO, host: Host, command: Command, *, dry_run: bool) -> CommandResult:
    """One ifconfig invocation: evaluate, apply, save.

    The interface may be named by any name the kernel knows for it (its
    Linux name or an altname); the command then acts on the view's name.
    """
    if command.ifname is not None:
        command = replace(command, ifname=canonical_name(host.kernel, command.ifname))
    env = lookups.read_environment(host.root)
    outcome = evaluate(host.config, command, env)
    if not outcome.touched:
        return CommandResult(outcome, config=outcome.config)
    scope = Scope(outcome.touched)
    routers = host.stored.defaultrouters
    names = sorted(scope.names)
    notes = describe_state_changes(host.config, outcome.config, names)
    if dry_run:
        plan = make_plan(host.kernel, outcome.config, scope, routers)
        return CommandResult(outcome, plan, notes, outcome.config)
    changed = tuple(i for n in names if (i := outcome.config.get(n)) is not None)
    applied = await apply_and_record(kernel_io, outcome.config, scope, routers,
                                     lambda _: host.store.save(host.stored.with_interfaces(changed)),
                                     before=host.kernel)
    stored = host.stored.with_interfaces(changed)
    inet6 = tuple(sorted(n for n, f in scope.pairs if f is Family.INET6))
    return CommandResult(outcome, applied.plan, notes, merge(applied.after, stored.interfaces),
                         settle=(applied.after, inet6))


async def settle_command(kernel_io: KernelIO, root: Path, result: CommandResult) -> CommandResult:
    """After the store lock is let go: wait for IPv6 DAD on what the command brought up.

    Up to DAD_WAIT seconds; held under the lock, that wait stalled every
    other ifconfig and in.mpathd's store writes (issue 20).  The store is
    read without the lock (its writes are atomic).
    """
    if result.settle is None:
        return result
    kernel, names = result.settle
    now = await settle_dad(kernel_io, kernel, names)
    if now is kernel:
        return result
    return replace(result, config=merge(now, Store(root).load().interfaces), settle=None)


#: How long a command that brought IPv6 up waits at most for the kernel's
#: duplicate address detection on the link-local (s).  Linux runs one probe
#: after a random delay of up to 1 s, then waits 1 s (dad_transmits,
#: retrans_time, rtr_solicit_delay defaults): 2 s at worst.
DAD_WAIT = 3.0
_DAD_POLL = 0.05


def _dad_pending(kernel: KernelState, names: Sequence[str]) -> bool:
    """Whether a running link of ``names`` has no usable link-local yet.

    The kernel makes the link-local when the link gets carrier (linkwatch
    may do that a moment after the link came up), then runs DAD on it.
    """
    for name in names:
        link = kernel.link(name)
        if link is None or not (link.up and link.running):
            continue
        ll = [a for a in kernel.addresses_of(name)
              if a.family is Family.INET6 and a.kernel_owned and a.address.ip.is_link_local]
        if not ll or any(a.tentative for a in ll):
            return True
    return False


async def settle_dad(kernel_io: KernelIO, kernel: KernelState, names: Sequence[str]) -> KernelState:
    """Wait (at most ``DAD_WAIT`` s) until no link-local of ``names`` is tentative.

    While DAD runs the link-local cannot be bound, so it is no usable test
    address and the view shows it without UP (Solaris sets UP on an IPv6
    address only once its DAD has succeeded [INF]).  A command that just
    brought IPv6 up waits for the outcome, so the status it prints, and the
    host ``ipmp-boot`` leaves to in.mpathd, show the link-local as it will
    stay.  Returns the last kernel read (``kernel`` itself when nothing was
    pending); a duplicate stays tentative and simply ends the wait.
    """
    if not _dad_pending(kernel, names):
        return kernel
    import asyncio  # here: a status command never gets this far

    keys = [k for k, _ in kernel.sysctls]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DAD_WAIT
    while _dad_pending(kernel, names) and loop.time() < deadline:
        await asyncio.sleep(_DAD_POLL)
        kernel = await kernel_io.read(keys)
    return kernel
