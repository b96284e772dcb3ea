"""What one ``ipadm`` command that changes something does, without the printing; and its boot.

``change`` reads the kernel and the state store under the store lock (as
``ipmp.admin.session`` does for ``ifconfig``), evaluates the command
(``ipmp.config.ipadm_eval``), applies the new view through ``ipmp.apply``
(all or nothing: a kernel refusal puts everything back), saves the store
and then the persistent configuration (``ipmp.host.ipadm_db``), unless
``-t``.  If the persistent configuration cannot be written, the store and
the kernel are put back and the command fails: a change that a reboot
would silently lose is worse than none.  After a group gains a member,
in.mpathd is started unless one answers (ifconfig's §4.5 rule; none under
``SUNW_NO_MPATHD``).  A running in.mpathd needs no message: it rescans the
kernel and the store (``mpathd.tracking``).

``boot_db`` is ``ipmp-boot``'s first step: the persistent configuration
applied as the ``ipadm`` commands that made it, each line a command whose
error is reported as ``FILE:LINE:COL`` and left out, the rest applied at
once.  Solaris 11 has no hostname files; a NIC that both configure is
refused by both (``conflicts``), rather than configured twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from ipmp.admin.bootfiles import BootFailure, BootResult
from ipmp.admin.session import Host, read_host, settle_dad
from ipmp.apply import KernelIO, apply_and_record, make_plan
from ipmp.config.ipadm_db import apply_edits
from ipmp.config.ipadm_eval import IpadmOutcome, db_steps, evaluate
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError
from ipmp.errors import IpmpError
from ipmp.host import ipadm_db, lookups
from ipmp.host.ifmap import canonical_name, usable_entries
from ipmp.host.state import Store
from ipmp.linux.ops import Plan
from ipmp.linux.view import Scope
from ipmp.model import Config, Family, Interface, KernelState

__all__ = ["IpadmResult", "boot_db", "change"]


class IpadmResult(NamedTuple):
    """What the shell prints and the exit status."""

    stdout: tuple[str, ...]
    stderr: tuple[str, ...]
    status: int


def _canonical(kernel: KernelState, command: IpadmCommand) -> IpadmCommand:
    """Interfaces named by their Linux name or an altname act on the view's name."""
    ifname, slash, rest = command.operand.partition("/")
    operand = canonical_name(kernel, ifname) + slash + rest if ifname else command.operand
    interfaces = tuple(",".join(canonical_name(kernel, n) for n in item.split(","))
                       for item in command.interfaces)
    return command._replace(operand=operand, interfaces=interfaces)


def _dynamic_nics(kernel: KernelState) -> frozenset[str]:
    """NICs holding an IPv4 address the kernel keeps with a lifetime (a DHCP client's lease)."""
    return frozenset(a.ifname for a in kernel.addresses if a.dynamic)


def _changed(before: Config, after: Config) -> tuple[Interface, ...]:
    """Every interface the command changed; a deleted one unplumbed, so the store drops it."""
    out = [i for i in after.interfaces if before.get(i.name) != i]
    out += [replace(i, plumbed=frozenset()) for i in before.interfaces if after.get(i.name) is None]
    return tuple(out)


async def run_change(
    kernel_io: KernelIO, host: Host, command: IpadmCommand
) -> tuple[IpadmOutcome, KernelState]:
    """Evaluate and apply ``command`` on ``host`` (the caller holds the store lock).

    Raises:
        IpadmError: refused; ApplyError, StateError, ParseError: nothing was changed.
    """
    root = host.root
    command = _canonical(host.kernel, command)
    db = ipadm_db.load(root)
    env = lookups.read_environment(root)
    outcome = evaluate(host.config, command, db=db, env=env, managed=_dynamic_nics(host.kernel))
    changed = _changed(host.config, outcome.config)
    if not changed and not outcome.edits:
        return outcome, host.kernel
    store = host.store
    stored = host.stored.with_interfaces(changed)
    new_db = apply_edits(db, outcome.edits)

    def record(_: object) -> None:
        store.save(stored)
        if new_db != db:
            try:
                ipadm_db.save(root, new_db)
            except IpmpError:
                store.save(host.stored)
                raise

    applied = await apply_and_record(kernel_io, outcome.config, Scope(outcome.touched),
                                     host.stored.defaultrouters, record, before=host.kernel)
    return outcome, applied.after


async def change_async(root: str | Path, command: IpadmCommand) -> IpadmResult:
    from ipmp.kernel.execute import Kernel  # here: the evaluator's tests need no pyroute2

    base = Path(root)
    try:
        async with Kernel(usable_entries(base)) as kernel:
            with Store(base).locked(exclusive=True):
                host = await read_host(kernel, base)
                outcome, after = await run_change(kernel, host, command)
            inet6 = sorted({n for n, f in outcome.touched if f is Family.INET6})
            if after is not host.kernel and inet6:
                await settle_dad(kernel, after, inet6)
    except IpadmError as err:
        return IpadmResult((), (err.message,), err.status)
    except (IpmpError, OSError) as err:
        return IpadmResult((), (f"ipadm: {err}",), 1)
    if outcome.start_mpathd and "SUNW_NO_MPATHD" not in os.environ:
        from ipmp.admin.command import start_mpathd  # only after a member joined a group

        start_mpathd(base)
    return IpadmResult(outcome.stdout, outcome.stderr, 0)


def change(root: str, command: IpadmCommand) -> IpadmResult:
    """One ``ipadm`` command that changes something, start to end."""
    import asyncio  # the write path only

    return asyncio.run(change_async(root, command))


# --------------------------------------------------------------------------
# ipmp-boot
# --------------------------------------------------------------------------


@dataclass
class DbBoot:
    """What the persistent configuration's boot did (or, for a dry run, would do)."""

    failures: list[BootFailure] = field(default_factory=list)
    plan: Plan = ()
    #: The NICs it configured.
    configured: list[str] = field(default_factory=list)
    #: NICs it left alone because hostname files configure them too.
    conflicts: frozenset[str] = frozenset()


def _reset(config: Config, names: set[str]) -> Config:
    """The interfaces the file configures, as the boot finds them (``evaluate.reset_interface``)."""
    from ipmp.config.evaluate import reset_interface

    items = []
    for itf in config.interfaces:
        if itf.name in names:
            if itf.ipmp:
                continue
            itf = reset_interface(itf)
        items.append(itf)
    return Config(tuple(items))


async def boot_db(kernel_io: KernelIO, root: Path, *, dry_run: bool, hostname_nics: frozenset[str]) -> DbBoot:
    """Apply ``etc/ipadm/ipadm.conf``: each line a command; a failing one reported and left out."""
    result = DbBoot()
    try:
        db = ipadm_db.load(root)
    except IpmpError as err:
        result.failures.append(BootFailure("ipadm.conf", Family.INET, str(err), "configure"))
        return result
    if not db.interfaces:
        return result
    with Store(root).locked():
        host = await read_host(kernel_io, root)
        db_names = {i.name for i in db.interfaces}
        result.conflicts = frozenset(n for n in db_names if n in hostname_nics)
        config = _reset(host.config, db_names - result.conflicts)
        skip = set(result.conflicts)
        # Read once: every step evaluates against the same hosts/netmasks files.
        env = lookups.read_environment(root)
        for step in db_steps(db):
            if step.ifname in skip or step.command.operand.partition("/")[0] in skip:
                if step.ifname in result.conflicts and step.command.subcommand == "create-ip":
                    result.failures.append(BootFailure(
                        step.ifname, Family.INET,
                        f"{step.position}: {step.ifname} is configured by hostname files too: "
                        f"neither configures it (remove one of the two)", "configure"))
                continue
            try:
                config = evaluate(config, step.command, env=env).config
            except IpadmError as err:
                result.failures.append(BootFailure(step.ifname, Family.INET,
                                                   f"{step.position}: {err.message.removeprefix('ipadm: ')}",
                                                   "configure"))
                if step.command.subcommand in ("create-ip", "create-ipmp"):
                    skip.add(step.ifname)
        names = {i.name for i in config.interfaces if i.name in db_names and not i.ipmp} - result.conflicts
        scope = Scope(frozenset((n, f) for n in names for f in (Family.INET, Family.INET6)))
        result.configured = sorted(n for n in names if (i := config.get(n)) is not None and i.plumbed)
        if dry_run:
            result.plan = make_plan(host.kernel, config, scope, host.stored.defaultrouters)
            return result
        stored = host.stored.with_interfaces(_changed(host.config, config))
        applied = await apply_and_record(kernel_io, config, scope, host.stored.defaultrouters,
                                         lambda _: host.store.save(stored), before=host.kernel)
        result.plan = applied.plan
    return result


def add_to(boot: BootResult, db: DbBoot) -> None:
    """The persistent configuration's boot in ``ipmp-boot``'s result (printed with the files')."""
    boot.failures[:0] = db.failures
    if db.plan:
        boot.plans = {"etc/ipadm/ipadm.conf": db.plan, **boot.plans}
    for name in db.configured:
        for fam in (Family.INET, Family.INET6):
            names = boot.configured.setdefault(fam, [])
            if name not in names:
                names.append(name)
