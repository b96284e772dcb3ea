"""What ``ifconfig`` and ``ipmp-boot`` do, without the printing.

Each entry point reads the kernel and the state store under the store lock,
evaluates Solaris commands over the merged view, plans, applies (or only
plans, for ``--dry-run`` and ``--check``), and saves the store.  The command
line shells print what comes back and choose the exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ipmp import hostfiles
from ipmp.apply import KernelIO, apply, make_plan, sysctl_keys
from ipmp.commands import Action, Command
from ipmp.errors import ApplyError, ConfigError, IpmpError, ParseError, Position
from ipmp.evaluate import Outcome, evaluate, reset_interface
from ipmp.model import Config, Environment, Family, Interface, KernelState
from ipmp.ops import Plan, SetSysctl
from ipmp.state import Store, Stored
from ipmp.view import Scope, merge


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


async def run_command(kernel_io: KernelIO, host: Host, command: Command, *, dry_run: bool) -> CommandResult:
    """One ifconfig invocation: evaluate, apply, save."""
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
    applied = await apply(kernel_io, outcome.config, scope, routers, before=host.kernel)
    changed = tuple(i for n in names if (i := outcome.config.get(n)) is not None)
    host.store.save(host.stored.with_interfaces(changed))
    after = merge(applied.after, host.store.load().interfaces)
    return CommandResult(outcome, applied.plan, notes, after)


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

    @property
    def in_sync(self) -> bool:
        return not any(self.plans.values()) and not self.notes


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
        name = _file_ifname(path)
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
    config = current.with_interface(reset_interface(itf))
    for command in _boot_commands(ifname, files):
        config = evaluate(config, command, env).config
    return config


async def boot(kernel_io: KernelIO, root: Path, *, dry_run: bool = False) -> BootResult:
    """Apply every hostname file under ``root``; each interface all or nothing."""
    result = BootResult()
    env = hostfiles.read_environment(root)
    by_if: dict[str, list[tuple[Family, Path]]] = {}
    for ifname, family, path in hostfiles.find_hostname_files(root):
        # Files of logical interfaces (hostname.qfe0:1) belong to their NIC.
        by_if.setdefault(ifname.partition(":")[0], []).append((family, path))
    store = Store(root)
    with store.locked():
        host = await read_host(kernel_io, root)
        stored = replace(host.stored, defaultrouters=env.defaultrouters)
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
                continue
            scope = Scope(frozenset((ifname, fam) for fam in (Family.INET, Family.INET6)
                                    if fam in families or _was_plumbed(host, ifname, fam)))
            result.notes += describe_state_changes(host.config, desired, [ifname])
            try:
                if dry_run:
                    plan = make_plan(host.kernel, desired, scope, env.defaultrouters)
                    # Later interfaces see the host-wide sysctls as already set.
                    host.kernel = _with_sysctls(host.kernel, plan)
                else:
                    applied = await apply(kernel_io, desired, scope, env.defaultrouters, before=host.kernel)
                    plan = applied.plan
                    itf = desired.get(ifname)
                    assert itf is not None
                    stored = stored.with_interfaces((itf,))
                    store.save(stored)
                    host = Host(root, applied.after, stored, merge(applied.after, stored.interfaces))
            except (ApplyError, IpmpError) as err:
                for fam in families:
                    result.failures.append(BootFailure(ifname, fam, str(err), "configure"))
                continue
            result.plans[ifname] = plan
            for fam in families:
                result.configured.setdefault(fam, []).append(ifname)
        if not dry_run:
            store.save(stored)
    return result


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


def _located(err: IpmpError, files: Sequence[tuple[Family, Path]]) -> str:
    """``FILE:LINE:COL: message``; errors without a position name the file."""
    pos = getattr(err, "position", None)
    message = getattr(err, "message", str(err))
    # In a file the position says where; the program name adds nothing.
    message = message.removeprefix("ifconfig: ")
    if isinstance(pos, Position) and pos.source:
        return f"{pos}: {message}"
    return f"{files[0][1]}: {message}"
