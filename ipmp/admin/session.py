"""What ``ifconfig`` and ``ipmp-boot`` do, without the printing.

Each entry point reads the kernel and the state store under the store lock,
evaluates Solaris commands over the merged view, plans, applies (or only
plans, for ``--dry-run`` and ``--check``), and saves the store.  The command
line shells print what comes back and choose the exit status.

``ipmp.admin.apply`` (and the planner behind it) and ``ipmp.linux.ops`` are imported by
the functions that change or plan something, not here.  ``ifconfig -a`` and
the other status reads do not come through this module at all (``ipmp.admin.status``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ipmp.config.bootsteps import (
    LINE,
    PLUMB,
    UP,
    Evaluation,
    Step,
    boot_start,
    keep_on_failure,
    leave_held_elsewhere,
    refused_step,
    run_steps,
)
from ipmp.config.commands import Action, Command
from ipmp.config.evaluate import Outcome, evaluate
from ipmp.errors import ApplyError, ConfigError, IpmpError, Position
from ipmp.host import hostfiles
from ipmp.host.ifmap import NameMap, canonical_name
from ipmp.host.state import Store, Stored
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Environment, Family, Interface, IPAddress, KernelState

if TYPE_CHECKING:
    from ipmp.admin.apply import KernelIO
    from ipmp.config.rescue import Rescue
    from ipmp.linux.ops import Op, Plan


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
    from ipmp.admin.apply import sysctl_keys

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
    from ipmp.admin.apply import apply_and_record, make_plan

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
    #: The configured NICs that the files put in an IPMP group.
    grouped: set[str] = field(default_factory=set)

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


def boot_steps(ifname: str, files: Sequence[tuple[Family, Path]]) -> list[Step]:
    """§6.2: for each file, plumb, then each of its lines; IPv6 files end with ``inet6 up``.

    The physical interface's files come before its logical ones
    (``hostname.qfe0`` before ``hostname.qfe0:1``), IPv4 before IPv6.  A
    line that does not parse, or a file that cannot be read, is a step that
    fails when it is run: it costs that line (that file), not the others.
    """
    steps: list[Step] = []
    ordered = sorted(files, key=lambda fp: (":" in _file_ifname(fp[1]), fp[0], _file_ifname(fp[1])))
    for number, (family, path) in enumerate(ordered):
        # hostname.enp1s0f0:1 configures hme0:1 when the ifmap names it so.
        _, sep, unit = _file_ifname(path).partition(":")
        name = f"{ifname}{sep}{unit}"
        where = Position(str(path), 1, 1)
        plumb = Command(name, family, (Action("plumb", None, where, implicit=True),), where)
        steps.append(Step(PLUMB, family, where, number, plumb))
        try:
            lines = hostfiles.read_hostname_commands(path, name, family)
        except OSError as err:
            steps.append(Step(LINE, family, where, number, None, err))
        else:
            steps += [Step(LINE, family, line.position, number, line.command, line.error) for line in lines]
        if family is Family.INET6:
            up = Command(name, family, (Action("up", None, where, implicit=True),), where)
            steps.append(Step(UP, family, where, number, up))
    return steps


def boot_lines(
    current: Config, ifname: str, files: Sequence[tuple[Family, Path]], env: Environment
) -> Evaluation:
    """Evaluate one interface's boot files from a clean slate, line by line.

    A line that fails is left out and reported in ``failed``; the others
    still run (net_include.sh ``inet_process_hostname``).  Solaris' boot
    discards ifconfig's stdout (§6.2 step 4), so only the configuration is
    kept, with the data addresses another NIC holds for ``ifname`` left there.

    Raises:
        ConfigError: ``ifname`` is no interface of ``current``.
    """
    evaluated = run_steps(boot_start(current, ifname), boot_steps(ifname, files), env)
    return replace(evaluated, config=leave_held_elsewhere(evaluated.config, ifname))


def boot_config(
    current: Config, ifname: str, files: Sequence[tuple[Family, Path]], env: Environment
) -> Config:
    """``boot_lines`` that raises the first line's error (for callers that want all or nothing).

    Raises:
        ParseError, ConfigError: the first line that fails, with its position.
        OSError: a file cannot be read.
    """
    evaluated = boot_lines(current, ifname, files, env)
    if evaluated.failed:
        raise evaluated.failed[0].error
    return evaluated.config


async def boot(
    kernel_io: KernelIO, root: Path, *, dry_run: bool = False, only: str | None = None
) -> BootResult:
    """Apply every hostname file under ``root``; each line all or nothing.

    Each line is its own command, as network/physical runs them (``bootsteps``):
    a failing line is reported as ``FILE:LINE:COL: message`` and left out,
    the lines before and after it still apply, and so do the other
    interfaces.  A failing line takes nothing away (``keep_on_failure``).
    When the kernel refuses an interface's change and no single line asked
    for the refused operation, that interface is left as it was.

    ``only``: just that interface's files (``ifconfig --check IF``), named by
    any name the kernel knows for it.  A file may name its NIC by the Linux
    name or an altname too: it configures the interface of the view's name.
    """
    from ipmp.admin.apply import apply_and_record, make_plan

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
            before = host.config.get(ifname)
            if before is None:
                err = ConfigError(f"plumb: {ifname}: no such interface")
                for fam in families:
                    result.failures.append(BootFailure(ifname, fam, _located(err, files), "plumb"))
                missing.append((ifname, files))
                continue
            scope = Scope(frozenset((ifname, fam) for fam in (Family.INET, Family.INET6)
                                    if fam in families or _was_plumbed(host, ifname, fam)))
            steps = boot_steps(ifname, files)
            start, kernel_before = boot_start(host.config, ifname), host.kernel
            # Lines the kernel refused, by step: each is left out and the rest
            # applied again, as Solaris' next ifconfig runs after a failed one.
            refused: dict[int, Exception] = {}
            while True:
                evaluated = run_steps(start, steps, env, refused)
                desired = leave_held_elsewhere(evaluated.config, ifname)
                if evaluated.failed:
                    desired = keep_on_failure(desired, before, frozenset(f for _, f in scope.pairs))
                notes = describe_state_changes(host.config, desired, [ifname])
                failure: IpmpError | None = None
                try:
                    plan = await configure(desired, ifname, scope)
                except ApplyError as err:
                    # apply() has put the kernel back as it was.
                    culprit = _refused_line(kernel_io, err, evaluated, steps, kernel_before, scope,
                                            env.defaultrouters)
                    if culprit is not None:
                        refused[culprit] = err
                        continue
                    failure = err
                except IpmpError as err:
                    failure = err
                break
            result.notes += notes
            result.failures += [BootFailure(ifname, f.step.family, f.message, "configure")
                                for f in evaluated.failed]
            if failure is not None:
                # Nothing of it was applied (or it was taken back): the interface is as it was.
                for fam in families:
                    result.failures.append(BootFailure(ifname, fam, str(failure), "configure"))
                continue
            result.plans[ifname] = plan
            itf = desired.get(ifname)
            assert itf is not None
            if itf.group:
                result.grouped.add(ifname)
            for fam in families:
                if fam in itf.plumbed:
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
    from ipmp.config.rescue import rescue

    # All its addresses, also those a first boot rescued already; a line
    # that fails moves nothing, the others still do (ifparse runs per line).
    evaluated = run_steps(config.with_interface(Interface(ifname)), boot_steps(ifname, files), env
                          ).config.get(ifname)
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
    from ipmp.linux.ops import command as op_command

    lines: list[str] = []
    for ifname, plan in result.plans.items():
        if plan:
            lines.append(f"# {ifname}")
            lines += [op_command(to_kernel(op) if to_kernel else op) for op in plan]
    return lines + result.notes


def _with_sysctls(kernel: KernelState, plan: Plan) -> KernelState:
    from ipmp.linux.ops import SetSysctl

    values = dict(kernel.sysctls)
    values.update((op.key, op.value) for op in plan if isinstance(op, SetSysctl))
    return replace(kernel, sysctls=tuple(values.items()))


def _was_plumbed(host: Host, ifname: str, family: Family) -> bool:
    rec = host.stored.get(ifname)
    return rec is not None and family in rec.plumbed


def _if_order(config: Config, name: str) -> tuple[int, str]:
    itf = config.get(name)
    return (itf.index if itf else 1 << 30, name)


def _refused_line(
    kernel_io: KernelIO, err: ApplyError, evaluated: Evaluation, steps: Sequence[Step],
    before: KernelState, scope: Scope, routers: Sequence[IPAddress],
) -> int | None:
    """The step whose line asked for the op the kernel refused (``bootsteps.refused_step``)."""
    from ipmp.admin.apply import make_plan

    if err.op is None:
        return None
    (ifname,) = scope.names
    # The op as the kernel got it, with its Linux names (``NameMap.op``).
    names = getattr(kernel_io, "names", None)

    def asks_for(config: Config) -> bool:
        wanted = make_plan(before, leave_held_elsewhere(config, ifname), scope, routers)
        return any(op == err.op or (isinstance(names, NameMap) and names.op(op) == err.op) for op in wanted)

    return refused_step(evaluated, steps, asks_for)


def _located(err: IpmpError, files: Sequence[tuple[Family, Path]]) -> str:
    """``FILE:LINE:COL: message``; errors without a position name the file."""
    pos = getattr(err, "position", None)
    message = getattr(err, "message", str(err))
    # In a file the position says where; the program name adds nothing.
    message = message.removeprefix("ifconfig: ")
    if isinstance(pos, Position) and pos.source:
        return f"{pos}: {message}"
    return f"{files[0][1]}: {message}"
