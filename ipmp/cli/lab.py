"""``ipmp-lab``: a sandbox of network namespaces built from Solaris boot files.

::

    ipmp-lab up DIR                 build the lab for DIR/etc/hostname.* and start in.mpathd
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
:mod:`ipmp.lab.lab` and :mod:`ipmp.lab.drill`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ipmp import __version__

if TYPE_CHECKING:
    from ipmp.lab.lab import Lab

PROG = "ipmp-lab"
F = TypeVar("F", bound=Callable[..., Any])

_NAME_HELP = "Which lab (default: 'default'; several labs can exist at once)."


def _fail(message: str, status: int = 1) -> NoReturn:
    click.echo(f"{PROG}: {message}", err=True)
    sys.exit(status)


def _guard() -> None:
    from ipmp.lab.lab import check_privileges

    problem = check_privileges()
    if problem is not None:
        _fail(problem)


def _name(ctx: click.Context, own: str | None, default: str = "default") -> str:
    from ipmp.lab.lab import LabError, validate_name

    chosen = own or (ctx.obj if isinstance(ctx.obj, str) else None) or default
    try:
        return validate_name(chosen)
    except LabError as err:
        _fail(str(err))


def name_option(f: F) -> F:
    return click.option("--name", "-n", "own_name", metavar="NAME", default=None, help=_NAME_HELP)(f)


def drill_name_option(f: F) -> F:
    return click.option("--name", "-n", "own_name", metavar="NAME", default=None,
                        help="Name of the drill's lab (default: 'drill').")(f)


def _report_error(err: BaseException) -> NoReturn:
    from ipmp.lab.lab import LabError

    if isinstance(err, KeyboardInterrupt):
        click.echo(f"{PROG}: interrupted; what this command created has been removed", err=True)
        sys.exit(130)
    assert isinstance(err, LabError)
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
@name_option
@click.pass_context
def up(ctx: click.Context, directory: Path, fdt_ms: int | None, quiet_period: float | None,
       own_name: str | None) -> None:
    """Build a lab from DIRECTORY/etc (hostname.*, hosts, netmasks, defaultrouter) and start in.mpathd."""
    from ipmp.lab.lab import LabError, create, interrupt_on_signals

    _guard()
    name = _name(ctx, own_name)
    try:
        with interrupt_on_signals():
            lab = create(name, directory, fdt_ms=fdt_ms, quiet_period=quiet_period,
                         progress=lambda text: click.echo(f"{PROG}: {text}"))
    except (LabError, KeyboardInterrupt) as err:
        _report_error(err)
    with lab:
        _print_lab(lab, built=True)
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
    from ipmp.lab.lab import Lab, LabError

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
    from ipmp.lab.lab import Lab, LabError

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
    from ipmp.lab.lab import Lab, LabError

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
    from ipmp.lab.lab import Lab, LabError

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
    from ipmp.lab.lab import Lab, LabError, list_labs

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
    from ipmp.lab.lab import LabError, interrupt_on_signals
    from ipmp.lab.lab import down as lab_down

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
@drill_name_option
@click.pass_context
def drill(ctx: click.Context, directory: Path, fdt_ms: int, quiet_period: float | None,
          json_path: Path | None, svg_path: Path | None, own_name: str | None) -> None:
    """Build a lab from DIRECTORY, fail and repair everything while a peer pings, report, remove the lab.

    Exit status 1 when a step misbehaves: an address lost, a failover that
    should not have happened, an expected in.mpathd message missing, an
    if_mpadm result other than Solaris'.
    """
    from ipmp.lab.drill import run_drill, write_svg
    from ipmp.lab.lab import LabError, interrupt_on_signals

    _guard()
    name = _name(ctx, own_name, default="drill")
    view = DrillView()
    try:
        with interrupt_on_signals():
            report = run_drill(name, directory, fdt_ms=fdt_ms, quiet_period=quiet_period, observer=view)
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


# -- the drill's live display and summary ---------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


class DrillView:
    """Live progress of a drill on the terminal (plain lines when not a terminal), then a table."""

    def __init__(self) -> None:
        from rich.console import Console

        # Off a terminal rich would wrap at 80 columns; a log file has room.
        self.console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        self._status: Any = None

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def phase(self, text: str) -> None:
        from rich.markup import escape

        self._stop_status()
        self.console.print(f"[dim]{PROG}:[/dim] {escape(text)}")

    def step_started(self, index: int, total: int, title: str) -> None:
        from rich.markup import escape

        self._stop_status()
        self.console.print(f"[bold][{index}/{total}] {escape(title)}[/bold]")
        if self.console.is_terminal:
            self._status = self.console.status(f"{escape(title)} ...")
            self._status.start()

    def message(self, t_ms: float, text: str) -> None:
        from rich.markup import escape

        lower = text.lower()
        style = "green" if "repair" in lower or "back" in lower else "red" if "fail" in lower else "cyan"
        self.console.print(f"    [dim]{t_ms:+7.0f} ms[/dim]  [{style}]{escape(text)}[/{style}]")

    def step_finished(self, result: dict[str, Any]) -> None:
        from rich.markup import escape

        self._stop_status()
        mark = "[green]ok[/green]" if result["ok"] else "[bold red]MISBEHAVED[/bold red]"
        pings = result["pings"]
        self.console.print(
            f"    {mark}  detection {_ms(result['detection_ms'])}, move {_ms(result['move_ms'])}, "
            f"pings lost {pings['lost']}/{pings['sent']}"
        )
        cmd = result.get("command")
        if cmd and cmd["stderr"].strip():
            for line in cmd["stderr"].strip().splitlines():
                self.console.print(f"    [dim]{escape(' '.join(cmd['argv']))}:[/dim] {escape(line)}")
        for problem in result["problems"]:
            self.console.print(f"    [red]! {escape(problem)}[/red]")

    def close(self) -> None:
        self._stop_status()

    def summary(self, report: dict[str, Any]) -> None:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"ipmp-lab drill: {escape(str(report['source']))} (FDT {report['fdt_ms']} ms)")
        table.add_column("#", justify="right")
        table.add_column("step")
        table.add_column("detect", justify="right")
        table.add_column("move", justify="right")
        table.add_column("lost", justify="right")
        table.add_column("in.mpathd messages (ms after the fault)")
        table.add_column("result")
        for i, st in enumerate(report["steps"], start=1):
            msgs = "\n".join(f"{m['t_ms']:+.0f} {escape(m['text'])}" for m in st["messages"]) or "-"
            cmd = st.get("command")
            if cmd:
                msgs = f"{escape(' '.join(cmd['argv']))}: exit {cmd['exit']}\n{msgs}"
            problems = escape("; ".join(st["problems"]))
            result = "[green]ok[/green]" if st["ok"] else f"[red]{problems}[/red]"
            pings = st["pings"]
            lost = f"{pings['lost']}" + (f" ({pings['max_gap_ms']:.0f} ms)" if pings["lost"] else "")
            table.add_row(str(i), escape(st["title"]), _ms(st["detection_ms"]), _ms(st["move_ms"]), lost,
                          msgs, result)
        self.console.print(table)
        for note in report.get("notes", ()):
            self.console.print(f"[dim]note: {escape(note)}[/dim]")
        for problem in report.get("final_problems", ()):
            self.console.print(f"[red]! {escape(problem)}[/red]")
        for note in report.get("cleanup_notes", ()):
            self.console.print(f"[yellow]cleanup: {escape(note)}[/yellow]")
        bad = sum(1 for st in report["steps"] if not st["ok"])
        verdict = ("[green]every step behaved[/green]" if report["ok"]
                   else f"[bold red]{bad} step(s) misbehaved[/bold red]")
        self.console.print(f"{verdict}; drill {report['duration_s']:.1f} s, total {report['total_s']:.1f} s "
                           f"(lab removed)")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
