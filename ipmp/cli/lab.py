"""``ipmp-lab``: a sandbox of network namespaces built from Solaris boot files.

::

    ipmp-lab up DIR                 build the lab for DIR/etc/hostname.* and start in.mpathd
    ipmp-lab up [--script FILE] DIR ... or for DIR/etc/ipadm/ipadm.conf and an ipadm script
    ipmp-lab fail IF --link|--silent
    ipmp-lab repair IF
    ipmp-lab router down|up
    ipmp-lab exec -- COMMAND...     e.g. ifconfig -a, if_mpadm -d qfe0 (in the lab's host)
    ipmp-lab status
    ipmp-lab down
    ipmp-lab drill DIR              up, a scripted failover drill with traffic, report, down

``--name NAME`` (before or after the command) selects one of several labs;
the default is ``default`` (``drill`` for a drill).  Everything needs root.
This module only parses arguments and prints: the work is in
:mod:`ipmp.lab.updown` (up, down), :mod:`ipmp.lab.lab` (everything done to a
lab that exists) and :mod:`ipmp.lab.drill`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ipmp import __version__
from ipmp.lab.drill import run_drill
from ipmp.lab.errors import LabError
from ipmp.lab.lab import Lab, check_privileges
from ipmp.lab.picture import write_svg
from ipmp.lab.procs import interrupt_on_signals
from ipmp.lab.store import validate_name
from ipmp.lab.updown import create, list_labs
from ipmp.lab.updown import down as lab_down

PROG = "ipmp-lab"
F = TypeVar("F", bound=Callable[..., Any])

_NAME_HELP = "Which lab (default: 'default'; several labs can exist at once)."


def _fail(message: str, status: int = 1) -> NoReturn:
    click.echo(f"{PROG}: {message}", err=True)
    sys.exit(status)


def _guard() -> None:
    problem = check_privileges()
    if problem is not None:
        _fail(problem)


def _name(ctx: click.Context, own: str | None, default: str = "default") -> str:
    chosen = own or (ctx.obj if isinstance(ctx.obj, str) else None) or default
    try:
        return validate_name(chosen)
    except LabError as err:
        _fail(str(err))


_SCRIPT_HELP = ("A Solaris 11 ipadm command script to run in the lab's host after the boot "
                "(default: DIR/ipadm.sh when it exists).")


def script_option(f: F) -> F:
    return click.option("--script", "script", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        metavar="FILE", default=None, help=_SCRIPT_HELP)(f)


def name_option(f: F) -> F:
    return click.option("--name", "-n", "own_name", metavar="NAME", default=None, help=_NAME_HELP)(f)


def drill_name_option(f: F) -> F:
    return click.option("--name", "-n", "own_name", metavar="NAME", default=None,
                        help="Name of the drill's lab (default: 'drill').")(f)


def _report_error(err: LabError | KeyboardInterrupt) -> NoReturn:
    if isinstance(err, KeyboardInterrupt):
        click.echo(f"{PROG}: interrupted; what this command created has been removed", err=True)
        sys.exit(130)
    click.echo(f"{PROG}: {err}", err=True)
    for note in getattr(err, "__notes__", ()):
        click.echo(note, err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--name", "-n", "name", metavar="NAME", envvar="IPMP_LAB_NAME", default=None, help=_NAME_HELP)
@click.version_option(__version__, prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context, name: str | None) -> None:
    """A sandbox of network namespaces for Solaris IPMP configurations.

    Labs live in $IPMP_LAB_DIR (default: a private directory under the
    system's temporary directory); nothing outside the lab's namespaces and
    that directory is touched.
    """
    ctx.obj = name


# -- up ----------------------------------------------------------------------------


@cli.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--fdt", "fdt_ms", type=click.IntRange(min=100), metavar="MS", default=None,
              help="FAILURE_DETECTION_TIME for the lab's in.mpathd (default: DIR/etc/default/mpathd).")
@click.option("--quiet-period", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", default=None,
              help="Shorten in.mpathd's 40 s start-up quiet period (test setting).")
@script_option
@name_option
@click.pass_context
def up(ctx: click.Context, directory: Path, fdt_ms: int | None, quiet_period: float | None,
       script: Path | None, own_name: str | None) -> None:
    """Build a lab from DIRECTORY/etc (hostname.*, ipadm/ipadm.conf, hosts, netmasks, defaultrouter)
    and an ipadm script, and start in.mpathd."""
    _guard()
    name = _name(ctx, own_name)
    try:
        with interrupt_on_signals():
            lab = create(name, directory, script=script, fdt_ms=fdt_ms, quiet_period=quiet_period,
                         progress=lambda text: click.echo(f"{PROG}: {text}"))
    except (LabError, KeyboardInterrupt) as err:
        _report_error(err)
    with lab:
        _print_lab(lab, built=True)
        if lab.script_output:
            click.echo(f"\n{lab.script_output}")
        ifconfig = lab.run(["ifconfig", "-a"])
        click.echo("\n$ ifconfig -a   (in the lab's host)")
        click.echo((ifconfig.stdout + ifconfig.stderr).rstrip())
        hint = "" if name == "default" else f" --name {name}"
        first = lab.network.names[0]
        click.echo(f"\nTry: ipmp-lab{hint} fail {first} --link; ipmp-lab{hint} exec -- ifconfig -a; "
                   f"ipmp-lab{hint} repair {first}; ipmp-lab{hint} down")


def _print_lab(lab: Lab, *, built: bool) -> None:
    info = lab.status()
    ns = info["namespaces"]
    click.echo(f"lab {info['name']!r}: {info['status']}"
               + ("" if built else f" (since {info['created']})"))
    click.echo(f"  source     {info['source']}")
    click.echo(f"  root       {info['root']}")
    missing = [v["name"] for v in ns.values() if not v["exists"]]
    click.echo(f"  namespaces {', '.join(v['name'] for v in ns.values())}"
               + (f"  MISSING: {', '.join(missing)}" if missing else ""))
    for nic in info["nics"]:
        group = f"group {nic['group']}" if nic["group"] else "no group"
        extra = ", standby" if nic["standby"] else ""
        fault = f"  [{nic['fault']} failure injected]" if nic["fault"] else ""
        addrs = ", ".join([*nic["data_addresses"], *(f"{a} (test)" for a in nic["test_addresses"])])
        click.echo(f"  {nic['name']:<10} {group}{extra}; {addrs or 'no address'}; "
                   f"switch port {nic['port']}, {nic['mac']}{fault}")
    for itf in info["ipmp_interfaces"]:
        # Solaris 11: no home member; in.mpathd binds each to an active member (illumos ipmp.c).
        probing = ", transitive probing" if info["transitive_probing"] else ""
        click.echo(f"  {itf['name']:<10} IPMP interface of group {itf['group']}{probing}; "
                   f"{', '.join(itf['data_addresses']) or 'no address'} (bound to its active members)")
    if info["script"]:
        click.echo(f"  script     {info['script']}")
    router = info["router"]
    origin = "defaultrouter" if router["from_defaultrouter"] else "chosen by the lab"
    state = "  [DOWN]" if router["down"] else ""
    click.echo(f"  router     {', '.join(router['addresses']) or '-'} ({origin}; answers probes){state}")
    click.echo(f"  peer       {', '.join(info['peer']['addresses']) or '-'} (a client on the link)")
    daemon = info["daemon"]
    if daemon is None:
        click.echo("  in.mpathd  not started")
    else:
        click.echo(f"  in.mpathd  pid {daemon['pid']} ({'running' if daemon['running'] else 'NOT RUNNING'}),"
                   f" log {info['log']}")
    if built and lab.boot_output:
        click.echo("  ipmp-boot  " + lab.boot_output.strip().replace("\n", "\n             "))


# -- faults --------------------------------------------------------------------------


@cli.command()
@click.argument("interface")
@click.option("--link", "how", flag_value="link", help="Carrier loss: the switch port goes down.")
@click.option("--silent", "how", flag_value="silent",
              help="Silent failure: carrier stays up, no frame passes (probe-based detection only).")
@name_option
@click.pass_context
def fail(ctx: click.Context, interface: str, how: str | None, own_name: str | None) -> None:
    """Inject a failure on INTERFACE (a host NIC of the lab)."""
    _guard()
    if how is None:
        _fail("fail: say how: --link or --silent")
    try:
        with Lab.open(_name(ctx, own_name)) as lab:
            click.echo(lab.fail(interface, "link" if how == "link" else "silent"))
    except LabError as err:
        _report_error(err)


@cli.command()
@click.argument("interface")
@name_option
@click.pass_context
def repair(ctx: click.Context, interface: str, own_name: str | None) -> None:
    """Undo any failure injected on INTERFACE."""
    _guard()
    try:
        with Lab.open(_name(ctx, own_name)) as lab:
            click.echo(lab.repair(interface))
    except LabError as err:
        _report_error(err)


@cli.command()
@click.argument("state", type=click.Choice(["down", "up"]))
@name_option
@click.pass_context
def router(ctx: click.Context, state: str, own_name: str | None) -> None:
    """Take the router off the link (down) or bring it back (up); host NICs keep carrier."""
    _guard()
    try:
        with Lab.open(_name(ctx, own_name)) as lab:
            click.echo(lab.router(state == "up"))
    except LabError as err:
        _report_error(err)


# -- exec ----------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@name_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec(ctx: click.Context, own_name: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND in the lab's host, with IPMP_ROOT set to the lab root.

    This package's commands come first in PATH: ``ipmp-lab exec -- ifconfig -a``,
    ``ipmp-lab exec -- if_mpadm -d qfe0``.  Exits with COMMAND's status.
    """
    _guard()
    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    try:
        lab = Lab.open(_name(ctx, own_name), mode="check")
        status = lab.exec(argv)
    except LabError as err:
        _report_error(err)
    sys.exit(status if status >= 0 else 128 - status)


# -- status / down ---------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@name_option
@click.pass_context
def status(ctx: click.Context, as_json: bool, own_name: str | None) -> None:
    """Show one lab (with --name) or every lab."""
    _guard()
    chosen = own_name or (ctx.obj if isinstance(ctx.obj, str) else None)
    try:
        labs = [Lab.open(_name(ctx, own_name), mode="none")] if chosen else list_labs()
    except LabError as err:
        _report_error(err)
    if as_json:
        click.echo(json.dumps([lab.status() for lab in labs], indent=2))
        return
    if not labs:
        click.echo("no labs")
        return
    for i, lab in enumerate(labs):
        if i:
            click.echo()
        _print_lab(lab, built=False)
        messages = lab.status()["messages"]
        if messages:
            click.echo("  last in.mpathd messages:")
            for text in messages[-5:]:
                click.echo(f"    {text}")


@cli.command()
@name_option
@click.pass_context
def down(ctx: click.Context, own_name: str | None) -> None:
    """Remove the lab: its processes, namespaces (and so every link), and its directory."""
    _guard()
    name = _name(ctx, own_name)
    try:
        with interrupt_on_signals():
            notes = lab_down(name)
    except (LabError, KeyboardInterrupt) as err:
        _report_error(err)
    for note in notes:
        click.echo(f"{PROG}: note: {note}", err=True)
    click.echo(f"lab {name!r} removed")


# -- drill ---------------------------------------------------------------------------


@cli.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--fdt", "fdt_ms", type=click.IntRange(min=100), metavar="MS", default=1000, show_default=True,
              help="FAILURE_DETECTION_TIME for the drill.")
@click.option("--quiet-period", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", default=None,
              help="in.mpathd's start-up quiet period (default: 2 x FDT, at least 1 s).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report as JSON to this file.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the timeline (interface states, address moves, lost pings) as SVG.")
@script_option
@drill_name_option
@click.pass_context
def drill(ctx: click.Context, directory: Path, fdt_ms: int, quiet_period: float | None,
          json_path: Path | None, svg_path: Path | None, script: Path | None, own_name: str | None) -> None:
    """Build a lab from DIRECTORY, fail and repair everything while a peer pings, report, remove the lab.

    Exit status 1 when a step misbehaves: an address lost, a failover that
    should not have happened, an expected in.mpathd message missing, an
    if_mpadm result other than Solaris'.
    """
    # Deferred: rich costs more to load than every other command of ipmp-lab
    # needs; only the drill's live display uses it.
    from ipmp.cli.drillview import DrillView

    _guard()
    name = _name(ctx, own_name, default="drill")
    view = DrillView()
    try:
        with interrupt_on_signals():
            report = run_drill(name, directory, script=script, fdt_ms=fdt_ms, quiet_period=quiet_period,
                               observer=view)
    except (LabError, KeyboardInterrupt) as err:
        view.close()
        _report_error(err)
    view.close()
    view.summary(report)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"report: {json_path}")
    if svg_path is not None:
        write_svg(report, svg_path)
        click.echo(f"timeline: {svg_path}")
    sys.exit(0 if report["ok"] else 1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
