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
   that a hostname file or ``etc/ipadm/ipadm.conf`` configures
   (``ipmp.host.coexist``); if so ipmp-boot
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

import click

from ipmp import __version__
from ipmp.admin.boot import refusal_lines, run_boot
from ipmp.admin.bootfiles import plan_lines
from ipmp.config.rescue import console_line
from ipmp.errors import IpmpError
from ipmp.host.altroot import root_path


def _family_word(value: int) -> str:
    return "IPv4" if value == 4 else "IPv6"


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
    base = root_path(root)
    try:
        run = asyncio.run(run_boot(base, dry_run or check, take_over))
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
        for line in refusal_lines(base, run):
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
