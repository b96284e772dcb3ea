"""``ipmp-boot``: the boot-time loader of ``/etc/hostname.*`` (Solaris network/physical).

Applies every ``hostname.<if>`` and ``hostname6.<if>`` under the root, one
interface at a time and each all or nothing: an interface whose file has an
error is reported as ``FILE:LINE:COL: message`` and left exactly as it was,
the others still come up, and the exit status is 1.

Before any of that (Linux extensions, in this order):

1. ``etc/ipmp/ifmap`` (``ipmp.ifmap``) is checked against the kernel; any bad
   line is reported as ``FILE:LINE:COL: message`` and nothing at all is
   done (exit 1).  Otherwise each NIC gets its Solaris name as an altname.
2. NetworkManager and systemd-networkd are asked whether they manage a NIC
   that a hostname file configures (``ipmp.coexist``); if so ipmp-boot
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
from ipmp.ifmap import NameMap

if TYPE_CHECKING:
    from ipmp.coexist import Managed
    from ipmp.model import KernelState
    from ipmp.session import BootResult


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
    sysctl_note: str | None = None
    #: Skipped lines of hosts and netmasks (``hostfiles.FileWarning``), as lines to print.
    file_warnings: list[str] = field(default_factory=list)


async def _boot(root: Path, dry_run: bool, take_over: bool) -> _Run:
    from ipmp import coexist, hostfiles, ifmap
    from ipmp.errors import IpmpError
    from ipmp.netlink import Kernel
    from ipmp.session import boot, boot_files

    run = _Run()
    try:
        run.file_warnings = [str(w) for w in hostfiles.environment_warnings(root)]
    except (IpmpError, OSError):
        pass  # the boot reads these files too, and reports the error where it always has
    entries, errors = ifmap.read_ifmap(root)
    async with Kernel(entries) as kernel:
        links = await kernel.linux_links()
        errors += ifmap.check_ifmap(entries, links)
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
        run.altnames = ifmap.missing_altnames(entries, links)
        if not dry_run:
            for linux, solaris in run.altnames:
                await kernel.add_altname(linux, solaris)
        run.result = await boot(kernel, root, dry_run=dry_run)
        run.names = kernel.names
        grouped = _grouped(root, view, run.result)
        run.sysctl_note = _persist_sysctls(root, run.result, kernel.names, grouped, write=not dry_run)
    return run


def _take_over(root: Path, managed: Managed, *, write: bool) -> list[str]:
    """Write (or, for --dry-run, name) the drop-ins that make ``managed`` let go."""
    from ipmp import coexist

    if managed.service in coexist.FILE_BASED:  # ifupdown, netplan
        return coexist.take_over_files(root, managed, write=write)
    lines: list[str] = []
    nics = " ".join(managed.nics)
    for path in managed.dropins(root):
        if managed.service == coexist.NETWORKMANAGER:
            try:
                old = path.read_text(encoding="utf-8")
            except (FileNotFoundError, NotADirectoryError):
                old = ""
            text = coexist.nm_dropin(managed.nics, old)
        else:
            text = coexist.networkd_dropin(path.stem.removeprefix("10-ipmp-"))
        if not write:
            try:
                same = path.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            lines.append(f"# --take-over: {path} is written; {managed.service} has not read it yet" if same
                         else f"# --take-over: would write {path} ({managed.service} lets go of {nics})")
        elif coexist.write_text(path, text):
            lines.append(f"ipmp-boot: wrote {path}: {managed.service} lets go of {nics} "
                         f"once it reads it ('{managed.reload}')")
        else:
            lines.append(f"ipmp-boot: {path} already marks {nics} unmanaged; {managed.service} "
                         f"has not read it yet: run '{managed.reload}'")
    return lines


def _grouped(root: Path, view: KernelState, result: BootResult) -> frozenset[str]:
    """The configured NICs that their files put in an IPMP group (they get rp_filter=2).

    The files are evaluated again, as the boot evaluated them, so that
    ``--dry-run`` (which records nothing) and a boot agree.  A NIC whose
    files no longer evaluate (edited meanwhile) counts as grouped: a loose
    filter too many never breaks a failover, one too few can.
    """
    from ipmp import hostfiles
    from ipmp.errors import IpmpError
    from ipmp.session import boot_config, boot_files
    from ipmp.view import merge

    configured = {name for names in result.configured.values() for name in names}
    if not configured:
        return frozenset()
    start = merge(view, ())
    files = boot_files(view, root)
    grouped: set[str] = set()
    try:
        env = hostfiles.read_environment(root)
    except (IpmpError, OSError):
        return frozenset(configured)
    for name in configured:
        try:
            itf = boot_config(start, name, files.get(name, []), env).get(name)
        except (IpmpError, OSError):
            itf = None
        if itf is None or itf.group:
            grouped.add(name)
    return frozenset(grouped)


def _persist_sysctls(
    root: Path, result: BootResult, names: NameMap, grouped: frozenset[str], *, write: bool
) -> str | None:
    """Write ``etc/sysctl.d/90-ipmp.conf`` for the configured NICs; a ``#`` note for --dry-run.

    With nothing configured the file keeps its NICs, but loses the
    ``conf.all`` lines an older version wrote: those loosened every
    interface of the host, and an upgrade must take them away.
    """
    from ipmp import coexist
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
    from ipmp import coexist

    lines: list[str] = []
    for managed in run.managed:
        named = ", ".join(n if run.names.view(n) == n else f"{n} ({run.names.view(n)})" for n in managed.nics)
        if managed.service in coexist.FILE_BASED:  # ifupdown, netplan
            lines += coexist.refusal_lines(root, managed, named)
            continue
        files = ", ".join(str(p) for p in managed.dropins(root))
        lines.append(f"ipmp-boot: {managed.service} manages {named}, which the hostname files configure: "
                     "it would undo in.mpathd's address moves.  Nothing was changed.")
        lines.append(f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over' (it writes {files}), "
                     f"then '{managed.reload}'.")
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
    from ipmp.errors import IpmpError
    from ipmp.hostfiles import root_path
    from ipmp.session import plan_lines

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
        from ipmp.rescue import console_line

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
