"""What ``ifconfig`` and ``ipmp-boot`` do, without the printing.

Each entry point reads the kernel and the state store under the store lock,
evaluates Solaris commands over the merged view, plans, applies (or only
plans, for ``--dry-run`` and ``--check``), and saves the store.  The command
line shells print what comes back and choose the exit status.

``ipmp.apply`` (and the planner behind it) and ``ipmp.ops`` are imported by
the functions that change or plan something, not here: ``ifconfig -a`` and
the other status reads come through this module and need none of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ipmp import hostfiles
from ipmp.commands import Action, Command
from ipmp.errors import ApplyError, ConfigError, IpmpError, ParseError, Position
from ipmp.evaluate import Outcome, evaluate, reset_interface
from ipmp.ifmap import MapEntry, canonical_name
from ipmp.model import Config, Environment, Family, Interface, KernelState, Logical
from ipmp.state import Store, Stored
from ipmp.view import Scope, merge

if TYPE_CHECKING:
    from ipmp.apply import KernelIO
    from ipmp.ops import Op, Plan
    from ipmp.rescue import Rescue


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
    from ipmp.apply import sysctl_keys

    first = await kernel_io.read()
    kernel = await kernel_io.read(sysctl_keys([lk.name for lk in first.links]))
    stored = Store(root).load()
    return Host(root, kernel, stored, merge(kernel, stored.interfaces))


def read_host_sync(root: Path, ifmap: Sequence[MapEntry] = ()) -> Host:
    """``read_host`` without an event loop or pyroute2, for commands that change nothing.

    The kernel state carries no sysctls: only planning reads them, and a
    command that turns out to change something (``show_command`` returns
    None) must be run on a ``read_host`` view anyway.
    """
    from ipmp.netlink import read_state

    kernel, _names = read_state((), ifmap)
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
    from ipmp.apply import apply_and_record, make_plan

    if command.ifname is not None:
        command = replace(command, ifname=canonical_name(host.kernel, command.ifname))
    env = hostfiles.read_environment(host.root)
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


def show_command(host: Host, command: Command) -> CommandResult | None:
    """``run_command`` for a command that only shows: None if it turns out to touch anything."""
    if command.ifname is not None:
        command = replace(command, ifname=canonical_name(host.kernel, command.ifname))
    outcome = evaluate(host.config, command, hostfiles.read_environment(host.root))
    if outcome.touched:
        return None
    return CommandResult(outcome, config=outcome.config)


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


# -- boot ------------------------------------------------------------------------


@dataclass
class BootFailure:
    ifname: str
    family: Family
    message: str
    kind: str  # "configure" or "plumb"


@dataclass
class BootResult:
    configured: dict[Family, list[str]] = field(default_factory=dict)
    failures: list[BootFailure] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Addresses of NICs missing at boot, moved to another member (§6.5).
    rescues: list[Rescue] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not any(self.plans.values()) and not self.notes


def boot_files(kernel: KernelState, root: Path) -> dict[str, list[tuple[Family, Path]]]:
    """The hostname files under ``root`` by the view name of the NIC they configure."""
    by_if: dict[str, list[tuple[Family, Path]]] = {}
    for ifname, family, path in hostfiles.find_hostname_files(root):
        # Files of logical interfaces (hostname.qfe0:1) belong to their NIC.
        name = canonical_name(kernel, ifname.partition(":")[0])
        by_if.setdefault(name, []).append((family, path))
    return by_if


def _file_ifname(path: Path) -> str:
    """``hostname.qfe0:1`` -> ``qfe0:1`` (a file may configure a logical interface, §6.1)."""
    return path.name.split(".", 1)[1]


def _boot_commands(
    ifname: str, files: Sequence[tuple[Family, Path]]
) -> list[Command]:
    """§6.2: plumb, then each file's lines; IPv6 files end with ``inet6 up``.

    The physical interface's files come before its logical ones
    (``hostname.qfe0`` before ``hostname.qfe0:1``), IPv4 before IPv6.
    """
    commands: list[Command] = []
    ordered = sorted(files, key=lambda fp: (":" in _file_ifname(fp[1]), fp[0], _file_ifname(fp[1])))
    for family, path in ordered:
        # hostname.enp1s0f0:1 configures hme0:1 when the ifmap names it so.
        _, sep, unit = _file_ifname(path).partition(":")
        name = f"{ifname}{sep}{unit}"
        where = Position(str(path), 1, 1)
        commands.append(Command(name, family, (Action("plumb", None, where, implicit=True),), where))
        commands.extend(hostfiles.read_hostname_file(path, name, family))
        if family is Family.INET6:
            commands.append(Command(name, family, (Action("up", None, where, implicit=True),), where))
    return commands


def boot_config(
    current: Config, ifname: str, files: Sequence[tuple[Family, Path]], env: Environment
) -> Config:
    """Evaluate one interface's boot files from a clean slate; raises on the first error.

    Solaris' boot discards ifconfig's stdout (§6.2 step 4), so only the
    configuration is kept.
    """
    itf = current.get(ifname)
    if itf is None:
        raise ConfigError(f"plumb: {ifname}: no such interface")
    evaluated = _evaluate_files(current.with_interface(reset_interface(itf)), ifname, files, env)
    return _leave_held_elsewhere(evaluated, ifname)


def _evaluate_files(
    config: Config, ifname: str, files: Sequence[tuple[Family, Path]], env: Environment
) -> Config:
    for command in _boot_commands(ifname, files):
        config = evaluate(config, command, env).config
    return config


def _leave_held_elsewhere(config: Config, ifname: str) -> Config:
    """Data addresses of ``ifname`` that another NIC holds for it stay there.

    They were failed over, or rescued at boot (§6.5), and carry ``ifname`` as
    their home: in.mpathd gives them back once ``ifname`` runs in the group
    (§2.7 invariant 3).  Adding them here too would put one address on two
    NICs.  Unit 0 keeps the placeholder a failover leaves (0.0.0.0, §1).
    """
    itf = config.get(ifname)
    assert itf is not None
    held = {(lg.family, lg.address.ip) for other in config.interfaces if other.name != ifname
            for lg in other.logicals if lg.home == ifname and lg.address is not None}
    for lg in itf.logicals:
        if (lg.address is not None and lg.is_data and lg.home in ("", ifname)
                and (lg.family, lg.address.ip) in held):
            itf = (itf.with_logical(Logical(lg.family, 0, None, deprecated=lg.deprecated, nofailover=True))
                   if lg.unit == 0 else itf.without_logical(lg.family, lg.unit))
    return config.with_interface(itf)


async def boot(
    kernel_io: KernelIO, root: Path, *, dry_run: bool = False, only: str | None = None
) -> BootResult:
    """Apply every hostname file under ``root``; each interface all or nothing.

    ``only``: just that interface's files (``ifconfig --check IF``), named by
    any name the kernel knows for it.  A file may name its NIC by the Linux
    name or an altname too: it configures the interface of the view's name.
    """
    from ipmp.apply import apply_and_record, make_plan

    result = BootResult()
    env = hostfiles.read_environment(root)
    store = Store(root)
    with store.locked():
        host = await read_host(kernel_io, root)
        by_if = boot_files(host.kernel, root)
        if only is not None:
            only = canonical_name(host.kernel, only).partition(":")[0]
            by_if = {only: by_if[only]} if only in by_if else {}
        stored = replace(host.stored, defaultrouters=env.defaultrouters)

        async def configure(desired: Config, ifname: str, scope: Scope) -> Plan:
            """Plan or apply ``desired`` for ``scope``; keeps ``host`` and the store current."""
            nonlocal host, stored
            if dry_run:
                plan = make_plan(host.kernel, desired, scope, env.defaultrouters)
                # What a plan sets, later plans see as set (the kernel read is not redone).
                host = replace(host, kernel=_with_sysctls(host.kernel, plan), config=desired)
                return plan
            itf = desired.get(ifname)
            assert itf is not None
            recorded = stored.with_interfaces((itf,))
            applied = await apply_and_record(kernel_io, desired, scope, env.defaultrouters,
                                             lambda _: store.save(recorded), before=host.kernel)
            stored = recorded
            host = Host(root, applied.after, stored, merge(applied.after, stored.interfaces))
            return applied.plan

        missing: list[tuple[str, list[tuple[Family, Path]]]] = []
        for ifname, files in sorted(by_if.items(), key=lambda kv: _if_order(host.config, kv[0])):
            families = sorted({f for f, _ in files})
            try:
                if host.config.get(ifname) is None:
                    raise ConfigError(f"plumb: {ifname}: no such interface")
                desired = boot_config(host.config, ifname, files, env)
            except (ParseError, ConfigError) as err:
                kind = "plumb" if host.config.get(ifname) is None else "configure"
                for fam in families:
                    result.failures.append(BootFailure(ifname, fam, _located(err, files), kind))
                if kind == "plumb":
                    missing.append((ifname, files))
                continue
            scope = Scope(frozenset((ifname, fam) for fam in (Family.INET, Family.INET6)
                                    if fam in families or _was_plumbed(host, ifname, fam)))
            result.notes += describe_state_changes(host.config, desired, [ifname])
            try:
                plan = await configure(desired, ifname, scope)
            except (ApplyError, IpmpError) as err:
                for fam in families:
                    result.failures.append(BootFailure(ifname, fam, str(err), "configure"))
                continue
            result.plans[ifname] = plan
            for fam in families:
                result.configured.setdefault(fam, []).append(ifname)
        for ifname, files in missing:
            await _rescue(ifname, files, env, host.config, result, configure)
        if not dry_run:
            store.save(stored)
    if not dry_run:
        # One wait for every link brought up, not one per interface; after
        # the lock is let go, so that in.mpathd and ifconfig need not wait too.
        await settle_dad(kernel_io, host.kernel, result.configured.get(Family.INET6, []))
    return result


async def _rescue(
    ifname: str, files: Sequence[tuple[Family, Path]], env: Environment, config: Config, result: BootResult,
    configure: Callable[[Config, str, Scope], Awaitable[Plan]],
) -> None:
    """§6.5: the data addresses of the missing NIC ``ifname`` onto another member of its group.

    What its files would have configured is found by evaluating them on a
    stand-in for the NIC (no kernel link behind it).  A failure here is
    reported with the rescue ("couldn't move"); the files' own errors were
    already reported as the plumb failure.
    """
    from ipmp.rescue import rescue

    try:
        # All its addresses, also those a first boot rescued already.
        evaluated = _evaluate_files(config.with_interface(Interface(ifname)), ifname, files, env).get(ifname)
    except (ParseError, ConfigError):
        return
    assert evaluated is not None
    for family in sorted({f for f, _ in files}):
        found = rescue(config, evaluated, family)
        if found is None:
            continue
        done, desired = found
        if done.alternate is not None:
            try:
                plan = await configure(desired, done.alternate, Scope(frozenset({(done.alternate, family)})))
            except (ApplyError, IpmpError) as err:
                result.failures.append(BootFailure(ifname, family, f"moving addresses: {err}", "configure"))
                done = replace(done, alternate=None)
            else:
                result.plans[f"{done.alternate} (addresses of {ifname})"] = plan
                config = desired
        result.rescues.append(done)


def plan_lines(result: BootResult, to_kernel: Callable[[Op], Op] | None = None) -> list[str]:
    """What ``--dry-run`` and ``--check`` print: ``# IF``, then its plan as commands, then the notes.

    ``to_kernel`` turns an op into the names the kernel knows
    (``NameMap.op``), so the printed commands run as they are.
    """
    from ipmp.ops import command as op_command

    lines: list[str] = []
    for ifname, plan in result.plans.items():
        if plan:
            lines.append(f"# {ifname}")
            lines += [op_command(to_kernel(op) if to_kernel else op) for op in plan]
    return lines + result.notes


def _with_sysctls(kernel: KernelState, plan: Plan) -> KernelState:
    from ipmp.ops import SetSysctl

    values = dict(kernel.sysctls)
    values.update((op.key, op.value) for op in plan if isinstance(op, SetSysctl))
    return replace(kernel, sysctls=tuple(values.items()))


def _was_plumbed(host: Host, ifname: str, family: Family) -> bool:
    rec = host.stored.get(ifname)
    return rec is not None and family in rec.plumbed


def _if_order(config: Config, name: str) -> tuple[int, str]:
    itf = config.get(name)
    return (itf.index if itf else 1 << 30, name)


def _located(err: IpmpError, files: Sequence[tuple[Family, Path]]) -> str:
    """``FILE:LINE:COL: message``; errors without a position name the file."""
    pos = getattr(err, "position", None)
    message = getattr(err, "message", str(err))
    # In a file the position says where; the program name adds nothing.
    message = message.removeprefix("ifconfig: ")
    if isinstance(pos, Position) and pos.source:
        return f"{pos}: {message}"
    return f"{files[0][1]}: {message}"
