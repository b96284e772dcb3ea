"""``ipmp-boot``: the boot-time loader of ``/etc/hostname.*`` (Solaris network/physical).

Applies every ``hostname.<if>`` and ``hostname6.<if>`` under the root, one
interface at a time, each line of a file a command of its own and all or
nothing, as Solaris' network/physical runs them: a line with an error is
reported as ``FILE:LINE:COL: message`` and left out, the lines before and
after it still apply, the other interfaces still come up, and the exit
status is 1.  A failing line takes nothing away that the interface holds.

Before any of that (Linux extensions, in this order):

1. ``etc/ipmp/ifmap`` (``ipmp.host.ifmap``) is checked against the kernel; any bad
   line is reported as ``FILE:LINE:COL: message`` and nothing at all is
   done (exit 1).  Otherwise each NIC gets its Solaris name as an altname.
2. NetworkManager and systemd-networkd are asked whether they manage a NIC
   that a hostname file configures (``ipmp.host.coexist``); if so ipmp-boot
   refuses (exit 1, nothing changed) and says what to do, or with
   ``--take-over`` writes the drop-ins that make them let go and says where.
3. After the boot, ``etc/sysctl.d/90-ipmp.conf`` gets the recipe's sysctls
   for the configured NICs, so a reboot keeps them (per NIC only; the
   ``conf.all`` lines an older version wrote are dropped).

Lines of the hosts and netmasks files that the lookups skip (as glibc and
Solaris skip them, silently) are named on stderr as ``FILE:LINE:COL:
warning: message``; they change nothing else, exit status included.
``--check`` leaves them out: its standard error is for errors only.

``--check`` prints nothing and exits 0 when the kernel matches the files;
otherwise it prints the plan a boot would carry out (the missing altnames
too) and exits 1.  No "ok"/"changed" word is printed: the exit status is the
verdict, as with ``diff`` and ``git diff --exit-code``.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ipmp import __version__
from ipmp.host.ifmap import NameMap

if TYPE_CHECKING:
    from ipmp.admin.session import BootResult
    from ipmp.host.coexist import Managed


def _family_word(value: int) -> str:
    return "IPv4" if value == 4 else "IPv6"


@dataclass
class _Run:
    """Everything one ipmp-boot did or would do."""

    result: BootResult | None = None
    ifmap_errors: list[str] = field(default_factory=list)
    names: NameMap = field(default_factory=NameMap)
    #: (Linux name, Solaris name) altnames added, or to add.
    altnames: tuple[tuple[str, str], ...] = ()
    managed: list[Managed] = field(default_factory=list)
    refused: bool = False
    #: What --take-over wrote (or would write), as lines to print.
    took_over: list[str] = field(default_factory=list)
    #: Why a service still manages a NIC after --take-over had it read the drop-ins: nothing configured.
    not_released: list[str] = field(default_factory=list)
    sysctl_note: str | None = None
    #: Skipped lines of hosts and netmasks (``hostfiles.FileWarning``), as lines to print.
    file_warnings: list[str] = field(default_factory=list)


async def _boot(root: Path, dry_run: bool, take_over: bool) -> _Run:
    from ipmp.admin.session import boot, boot_files
    from ipmp.errors import IpmpError
    from ipmp.host import coexist, hostfiles, ifmap
    from ipmp.kernel.netlink import Kernel

    run = _Run()
    try:
        run.file_warnings = [str(w) for w in hostfiles.environment_warnings(root)]
    except (IpmpError, OSError):
        pass  # the boot reads these files too, and reports the error where it always has
    entries, errors = ifmap.read_ifmap(root)
    async with Kernel(entries) as kernel:
        links = await kernel.linux_links()
        errors += ifmap.check_ifmap(entries, links)
        # A NIC of the map that Linux does not have (yet: a late driver, a removed card) is
        # a NIC missing at boot, not a bad map: said, and then its files fail to plumb and
        # its data addresses are moved (§6.5).  Refusing the whole map left every NIC
        # unconfigured for want of one (seen on a real boot, tests/vm/test_boot_order.py).
        known = {name for link in links for name in (link.name, *link.altnames)}
        absent = {e.linux_position for e in entries if e.linux not in known}
        if errors and all(e.position in absent for e in errors):
            run.file_warnings += [str(e) for e in errors]
            errors = ()
        if errors:
            ordered = sorted(errors, key=lambda e: e.position.line if e.position else 0)
            run.ifmap_errors = [str(e) for e in ordered]
            return run
        view = await kernel.read()
        run.names = kernel.names
        nics = {kernel.names.linux(name): link.index
                for name in boot_files(view, root) if (link := view.link(name)) is not None}
        run.managed = coexist.detect(nics, root=root)
        if run.managed and not take_over:
            run.refused = True
            return run
        for managed in run.managed:
            run.took_over += _take_over(root, managed, write=not dry_run)
        if run.managed and not dry_run:
            # Before any address: NetworkManager flushes a device it lets go of (coexist.hand_over).
            lines, run.not_released = coexist.hand_over(run.managed, nics, root=root)
            run.took_over += lines
            if run.not_released:
                return run
        run.altnames = ifmap.missing_altnames(entries, links)
        if not dry_run:
            for linux, solaris in run.altnames:
                await kernel.add_altname(linux, solaris)
        run.result = await boot(kernel, root, dry_run=dry_run)
        run.names = kernel.names
        grouped = _grouped(run.result)
        run.sysctl_note = _persist_sysctls(root, run.result, kernel.names, grouped, write=not dry_run)
    return run


def _take_over(root: Path, managed: Managed, *, write: bool) -> list[str]:
    """Write (or, for --dry-run, name) the drop-ins that make ``managed`` let go."""
    from ipmp.host import coexist

    if managed.service in coexist.FILE_BASED:  # ifupdown, netplan
        return coexist.take_over_files(root, managed, write=write)
    return coexist.take_over_service(root, managed, write=write)


def _grouped(result: BootResult) -> frozenset[str]:
    """The configured NICs that their files put in an IPMP group (they get rp_filter=2).

    As the boot (or ``--dry-run``, which records nothing) left them, line
    by line: the group of the lines that worked, or the one kept because
    the line that sets it failed (``bootsteps.keep_on_failure``).
    """
    return frozenset(result.grouped)


def _persist_sysctls(
    root: Path, result: BootResult, names: NameMap, grouped: frozenset[str], *, write: bool
) -> str | None:
    """Write ``etc/sysctl.d/90-ipmp.conf`` for the configured NICs; a ``#`` note for --dry-run.

    With nothing configured the file keeps its NICs, but loses the
    ``conf.all`` lines an older version wrote: those loosened every
    interface of the host, and an upgrade must take them away.
    """
    from ipmp.host import coexist
    from ipmp.model import Family

    families: dict[str, set[Family]] = {}
    for family, configured in sorted(result.configured.items()):
        for name in configured:
            families.setdefault(name, set()).add(family)
    path = root / coexist.SYSCTL_DROPIN
    try:
        old: str | None = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        old = None
    if families:
        text = coexist.sysctl_dropin([coexist.DropinNic(names.linux(n), frozenset(f), n in grouped)
                                      for n, f in families.items()])
    elif old is not None:
        text = coexist.without_host_wide(old)
    else:
        return None
    if write:
        coexist.write_text(path, text)
        return None
    return None if old == text else f"# would write {path} (the sysctls above, for the next boot)"


def _refusal(root: Path, run: _Run) -> list[str]:
    from ipmp.host import coexist

    lines: list[str] = []
    for managed in run.managed:
        named = ", ".join(n if run.names.view(n) == n else f"{n} ({run.names.view(n)})" for n in managed.nics)
        if managed.service in coexist.FILE_BASED:  # ifupdown, netplan
            lines += coexist.refusal_lines(root, managed, named)
            continue
        files = ", ".join(str(p) for p in managed.dropins(root))
        lines.append(f"ipmp-boot: {managed.service} manages {named}, which the hostname files configure: "
                     "it would undo in.mpathd's address moves.  Nothing was changed.")
        lines.append(f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over': it writes {files}, runs "
                     f"'{managed.reload}' and waits until {managed.service} lets go, then configures them.")
        release = managed.release()
        if release is not None:
            lines.append(f"ipmp-boot: or, until {managed.service} restarts: {release}")
    return lines


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-R", "--root", "root", metavar="DIR", default=None,
              help="Alternate root: read DIR/etc, keep state in DIR/run/ipmp (default: $IPMP_ROOT or /).")
@click.option("--dry-run", "-n", is_flag=True, help="Print the plan as ip commands; change nothing.")
@click.option("--check", is_flag=True,
              help="Compare the files with the kernel: print what would change; exit 0 in sync, 1 if not.")
@click.option("--take-over", is_flag=True,
              help="If NetworkManager or systemd-networkd manages a configured NIC, write the drop-in "
                   "that makes it let go (instead of refusing).")
@click.version_option(__version__, prog_name="ipmp-boot")
def cli(root: str | None, dry_run: bool, check: bool, take_over: bool) -> None:
    """Configure the interfaces of /etc/hostname.<if> and /etc/hostname6.<if>."""
    from ipmp.admin.session import plan_lines
    from ipmp.errors import IpmpError
    from ipmp.host.altroot import root_path

    base = root_path(root)
    try:
        run = asyncio.run(_boot(base, dry_run or check, take_over))
    except (IpmpError, OSError) as err:
        click.echo(f"ipmp-boot: {err}", err=True)
        sys.exit(1)
    if not check:
        for line in run.file_warnings:
            click.echo(line, err=True)
    if run.ifmap_errors:
        for line in run.ifmap_errors:
            click.echo(line, err=True)
        click.echo(f"Failed to apply the interface map {base / 'etc/ipmp/ifmap'}: nothing was configured",
                   err=True)
        sys.exit(1)
    if run.refused:
        for line in _refusal(base, run):
            click.echo(line, err=True)
        sys.exit(1)
    if run.not_released:
        for line in run.took_over:
            click.echo(line)
        for line in run.not_released:
            click.echo(line, err=True)
        sys.exit(1)
    result = run.result
    assert result is not None
    for line in run.took_over:
        click.echo(line)
    if dry_run or check:
        if run.altnames:
            click.echo("# etc/ipmp/ifmap")
            for linux, solaris in run.altnames:
                click.echo(f"ip link property add dev {linux} altname {solaris}")
        for line in plan_lines(result, run.names.op):
            click.echo(line)
        if dry_run and run.sysctl_note:
            click.echo(run.sysctl_note)
    else:
        # Solaris' network/physical prints these and discards ifconfig's own
        # stdout ("Created new logical interface ...", §6.2 step 4).
        for fam, names in sorted(result.configured.items()):
            click.echo(f"configuring {_family_word(fam)} interfaces: {' '.join(names)}.")
        # §6.5, after the interfaces as in network/physical (--dry-run shows the plan instead).
        from ipmp.config.rescue import console_line

        for fam in sorted({r.family for r in result.rescues}):
            click.echo(console_line(fam, [r for r in result.rescues if r.family == fam]))
    for failure in result.failures:
        click.echo(failure.message, err=True)
    by_kind: dict[tuple[str, int], list[str]] = {}
    for failure in result.failures:
        names = by_kind.setdefault((failure.kind, int(failure.family)), [])
        if failure.ifname not in names:
            names.append(failure.ifname)
    for (kind, fam_value), failed in sorted(by_kind.items()):
        what = "plumb" if kind == "plumb" else "configure"
        # Solaris printed only the first name (a word-splitting quirk); we list them all.
        click.echo(f"Failed to {what} {_family_word(fam_value)} interface(s): {' '.join(failed)}", err=True)
    if result.failures:
        sys.exit(1)
    # A service that still manages a configured NIC is drift too: it will undo things.
    if check and (run.altnames or run.managed or not result.in_sync):
        sys.exit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
