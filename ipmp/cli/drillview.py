"""The drill's live display on the terminal (plain lines when not a terminal), and its summary table.

Printing only: the drill itself is :mod:`ipmp.lab.drill`, which reports its
progress to an observer; this is that observer for ``ipmp-lab drill``.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

__all__ = ["DrillView"]

PROG = "ipmp-lab"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


class DrillView:
    """Live progress of a drill on the terminal (plain lines when not a terminal), then a table."""

    def __init__(self) -> None:
        # Off a terminal rich would wrap at 80 columns; a log file has room.
        self.console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        self._status: Status | None = None

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def phase(self, text: str) -> None:
        self._stop_status()
        self.console.print(f"[dim]{PROG}:[/dim] {escape(text)}")

    def step_started(self, index: int, total: int, title: str) -> None:
        self._stop_status()
        self.console.print(f"[bold][{index}/{total}] {escape(title)}[/bold]")
        if self.console.is_terminal:
            self._status = self.console.status(f"{escape(title)} ...")
            self._status.start()

    def message(self, t_ms: float, text: str) -> None:
        lower = text.lower()
        style = "green" if "repair" in lower or "back" in lower else "red" if "fail" in lower else "cyan"
        self.console.print(f"    [dim]{t_ms:+7.0f} ms[/dim]  [{style}]{escape(text)}[/{style}]")

    def step_finished(self, result: dict[str, Any]) -> None:
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
            for moved in st.get("rebound", ()):
                msgs += f"\nrebound {escape(moved)}"  # Solaris 11: re-bound, no failback home
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
