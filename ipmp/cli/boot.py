"""``ipmp-boot``: the boot-time loader of ``/etc/hostname.*`` (Solaris network/physical).

Applies every ``hostname.<if>`` and ``hostname6.<if>`` under the root, one
interface at a time and each all or nothing: an interface whose file has an
error is reported as ``FILE:LINE:COL: message`` and left exactly as it was,
the others still come up, and the exit status is 1.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ipmp import __version__


def _family_word(value: int) -> str:
    return "IPv4" if value == 4 else "IPv6"


async def _boot(root: Path, dry_run: bool) -> object:
    from ipmp.netlink import Kernel
    from ipmp.session import boot

    async with Kernel() as kernel:
        return await boot(kernel, root, dry_run=dry_run)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-R", "--root", "root", metavar="DIR", default=None,
              help="Alternate root: read DIR/etc, keep state in DIR/run/ipmp (default: $IPMP_ROOT or /).")
@click.option("--dry-run", "-n", is_flag=True, help="Print the plan as ip commands; change nothing.")
@click.option("--check", is_flag=True,
              help="Compare the files with the kernel: print what would change; exit 0 in sync, 1 if not.")
@click.version_option(__version__, prog_name="ipmp-boot")
def cli(root: str | None, dry_run: bool, check: bool) -> None:
    """Configure the interfaces of /etc/hostname.<if> and /etc/hostname6.<if>."""
    from ipmp.errors import IpmpError
    from ipmp.hostfiles import root_path
    from ipmp.ops import command
    from ipmp.session import BootResult

    try:
        result = asyncio.run(_boot(root_path(root), dry_run or check))
    except IpmpError as err:
        click.echo(f"ipmp-boot: {err}", err=True)
        sys.exit(1)
    assert isinstance(result, BootResult)
    if dry_run or check:
        for ifname, plan in result.plans.items():
            if plan:
                click.echo(f"# {ifname}")
                for op in plan:
                    click.echo(command(op))
        for note in result.notes:
            click.echo(note)
    else:
        # Solaris' network/physical prints these and discards ifconfig's own
        # stdout ("Created new logical interface ...", §6.2 step 4).
        for fam, names in sorted(result.configured.items()):
            click.echo(f"configuring {_family_word(fam)} interfaces: {' '.join(names)}.")
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
    if check and not result.in_sync:
        sys.exit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
