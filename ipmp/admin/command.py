"""What one ``ifconfig`` that changes (or plans) something does, and ``ifconfig --check IF``.

A change opens the kernel, takes the store lock (exclusive unless it only
plans), runs the command (``ipmp.admin.session``), lets the lock go and only
then waits for IPv6 DAD; ``--check IF`` plans a boot of IF's hostname files
(``ipmp.admin.bootfiles``).  After ``group NAME`` Solaris ifconfig starts
in.mpathd (§4.5): ``start_mpathd``.  The shell (``ipmp.cli.ifconfig``)
prints what comes back and chooses the exit status; a read without action
words never comes here (``ipmp.admin.status``).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ipmp.admin.bootfiles import BootResult, boot, boot_files
from ipmp.admin.session import CommandResult, read_host, run_command, settle_command
from ipmp.config.commands import Command
from ipmp.errors import ConfigError
from ipmp.host.ifmap import NameMap, canonical_name, missing_altnames, usable_entries
from ipmp.host.state import Store
from ipmp.kernel.execute import Kernel
from ipmp.mpathd import control
from ipmp.program import ROOT_CWD, python_module


async def change(command: Command, root: Path, dry_run: bool) -> tuple[CommandResult, NameMap]:
    """Run ``command`` (plan it only, for ``dry_run``); the result and the kernel's names.

    Raises:
        ConfigError, ApplyError: the command is refused, or the kernel refused
            it (and was put back as it was).
    """
    exclusive = bool(command.actions) and not dry_run
    async with Kernel(usable_entries(root)) as kernel:
        with Store(root).locked(exclusive=exclusive):
            host = await read_host(kernel, root)
            result = await run_command(kernel, host, command, dry_run=dry_run)
        result = await settle_command(kernel, root, result)
    return result, kernel.names


@dataclass
class Check:
    """What ``ifconfig --check IF`` found: the boot IF's files would do, and the altnames it lacks."""

    result: BootResult
    names: NameMap
    #: (Linux name, Solaris name) altnames the map gives IF and the kernel lacks.
    altnames: list[tuple[str, str]] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.altnames and not self.result.failures and self.result.in_sync


async def check(ifname: str, root: Path) -> Check:
    """``--check IF``: IF's hostname files against the kernel, planned, nothing changed.

    Raises:
        ConfigError: IF has no hostname file under the root.
    """
    entries = usable_entries(root)
    async with Kernel(entries) as kernel:
        view = await kernel.read()
        name = canonical_name(view, ifname).partition(":")[0]
        if name not in boot_files(view, root):
            raise ConfigError(f"--check: {ifname}: no hostname file under {root / 'etc'}")
        linux = kernel.names.linux(name)
        links = await kernel.linux_links()
        altnames = [(lx, sol) for lx, sol in missing_altnames(entries, links) if lx == linux]
        result = await boot(kernel, root, dry_run=True, only=name)
    return Check(result, kernel.names, altnames)


def start_mpathd(root: str | Path) -> None:
    """§4.5: after ``group NAME``, start in.mpathd unless one answers; do not wait."""
    if control.is_running(root):
        return
    env = dict(os.environ, IPMP_ROOT=str(root))
    subprocess.Popen(
        python_module("ipmp.cli.in_mpathd"),
        cwd=ROOT_CWD,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
