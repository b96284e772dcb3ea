"""What ``ipmp-boot`` does with the hostname files: every line a command, all or nothing.

The files of each interface are evaluated line by line from a clean slate
(``ipmp.config.bootsteps``), planned and applied under the store lock, as
Solaris' network/physical runs ``ifconfig`` once per line: a line with an
error is left out and reported, the others still apply.  A NIC missing at
boot has its data addresses moved to another member of its group (§6.5,
``ipmp.config.rescue``).  The shell (``ipmp.cli.boot``, through
``ipmp.admin.boot``) prints what comes back.

"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ipmp.admin.session import Host, describe_state_changes, read_host, settle_dad
from ipmp.apply import KernelIO, apply_and_record, make_plan
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
from ipmp.config.rescue import Rescue, rescue
from ipmp.errors import ApplyError, ConfigError, IpmpError, Position
from ipmp.host import hostfiles, lookups
from ipmp.host.ifmap import NameMap, canonical_name
from ipmp.host.state import Store
from ipmp.linux.ops import Op, Plan, SetSysctl
from ipmp.linux.ops import command as op_command
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Environment, Family, Interface, IPAddress, KernelState


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
    kernel_io: KernelIO, root: Path, *, dry_run: bool = False, only: str | None = None,
    skip: frozenset[str] = frozenset(),
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
    result = BootResult()
    env = lookups.read_environment(root)
    store = Store(root)
    with store.locked():
        host = await read_host(kernel_io, root)
        by_if = boot_files(host.kernel, root)
        if only is not None:
            only = canonical_name(host.kernel, only).partition(":")[0]
            by_if = {only: by_if[only]} if only in by_if else {}
        # NICs the persistent ipadm configuration configures too: refused by both (admin.ipadm).
        by_if = {name: files for name, files in by_if.items() if name not in skip}
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
    lines: list[str] = []
    for ifname, plan in result.plans.items():
        if plan:
            lines.append(f"# {ifname}")
            lines += [op_command(to_kernel(op) if to_kernel else op) for op in plan]
    return lines + result.notes


def _with_sysctls(kernel: KernelState, plan: Plan) -> KernelState:
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
