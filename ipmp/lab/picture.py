"""The picture of a drill: its report's timeline drawn as a standalone SVG document."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["svg", "write_svg"]

_STATE_COLOURS = {"ok": "#4caf50", "failed": "#e53935", "offline": "#9e9e9e"}
_FAULT_COLOURS = {"link": "#000000", "silent": "#6d4c41", "down": "#000000"}
_NIC_COLOURS = ("#1e88e5", "#8e24aa", "#fb8c00", "#00897b", "#6d4c41", "#3949ab", "#c0ca33", "#d81b60")


def svg(report: dict[str, Any]) -> str:
    """The drill's timeline as a standalone SVG document.

    One lane per interface (the daemon's view: ok, failed, offline), one
    lane per data address (which NIC holds it; red ticks where the peer's
    pings were lost), the steps as numbered bands, and a legend.
    """
    tl = report["timeline"]
    steps = report["steps"]
    nics = [n["name"] for n in report["lab"]["nics"]]
    addresses = list(tl["addresses"])
    end = max(float(tl["end"]), 0.001)
    left, right, width = 170, 20, 1100
    plot = width - left - right
    lane, gap = 22, 8
    top = 60
    rows = len(nics) + 1 + len(addresses)
    plot_h = rows * (lane + gap) + 10
    legend_y = top + plot_h + 40
    legend_rows = (len(steps) + 2) // 3
    height = legend_y + 40 + legend_rows * 16 + 20

    def x(t: float) -> float:
        return left + plot * max(0.0, min(float(t), end)) / end

    out: list[str] = []
    add = out.append
    add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">')
    add(f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>')
    verdict = "all steps behaved" if report["ok"] else "SOME STEPS MISBEHAVED"
    add(f'<text x="{left}" y="22" font-size="15" font-weight="bold">'
        f'{escape("ipmp-lab drill: " + Path(str(report["source"])).name)}</text>')
    subtitle = f"FDT {report['fdt_ms']} ms, {verdict}"
    add(f'<text x="{left}" y="40" fill="#555">{escape(subtitle)}</text>')
    # Step bands, alternating shades, numbered at the top.
    for i, st in enumerate(steps, start=1):
        x0, x1 = x(st["t_start"]), x(st["t_end"])
        fill = "#f3f3f3" if i % 2 else "#e8eef7"
        if not st["ok"]:
            fill = "#fde0dc"
        tip = escape(f"{i}. {st['title']}")
        add(f'<rect x="{x0:.1f}" y="{top - 12}" width="{max(x1 - x0, 1):.1f}" height="{plot_h + 12}" '
            f'fill="{fill}"><title>{tip}</title></rect>')
        add(f'<text x="{(x0 + x1) / 2:.1f}" y="{top - 2}" text-anchor="middle" font-size="10">{i}</text>')
        xi = x(st["t_inject"])
        add(f'<line x1="{xi:.1f}" y1="{top - 12}" x2="{xi:.1f}" y2="{top + plot_h}" stroke="#333" '
            f'stroke-dasharray="2,2" stroke-width="0.8"/>')
    colour = {nic: _NIC_COLOURS[i % len(_NIC_COLOURS)] for i, nic in enumerate(nics)}
    faults = tl.get("faults", {})
    y = top + 4

    def fault_strips(target: str, y: float) -> None:
        # What the drill did to the wire, under what the daemon made of it.
        for t0, t1, kind in faults.get(target, ()):
            fill = _FAULT_COLOURS.get(kind, "#000")
            add(f'<rect x="{x(t0):.1f}" y="{y + lane - 5}" width="{max(x(t1) - x(t0), 1):.1f}" height="5" '
                f'fill="{fill}"><title>{escape(f"{target}: {kind} failure injected")}</title></rect>')

    for nic in nics:
        add(f'<text x="{left - 8}" y="{y + lane * 0.7:.1f}" text-anchor="end">{escape(nic)}</text>')
        for t0, t1, state in tl["interfaces"].get(nic, ()):
            fill = _STATE_COLOURS.get(state, "#ccc")
            add(f'<rect x="{x(t0):.1f}" y="{y}" width="{max(x(t1) - x(t0), 0.5):.1f}" height="{lane}" '
                f'fill="{fill}"><title>{escape(f"{nic} {state}")}</title></rect>')
        fault_strips(nic, y)
        y += lane + gap
    add(f'<text x="{left - 8}" y="{y + lane * 0.7:.1f}" text-anchor="end">router</text>')
    add(f'<rect x="{left}" y="{y + lane - 5}" width="{plot}" height="5" fill="#c8e6c9"/>')
    fault_strips("router", y)
    y += lane + gap
    for address in addresses:
        add(f'<text x="{left - 8}" y="{y + lane * 0.7:.1f}" text-anchor="end">{escape(address)}</text>')
        for t0, t1, holder in tl["addresses"][address]:
            fill = colour.get(holder, "#bbb") if holder else "#fff"
            tip = escape(f"{address} on {holder or 'no interface'}")
            w = max(x(t1) - x(t0), 0.5)
            add(f'<rect x="{x(t0):.1f}" y="{y + 4}" width="{w:.1f}" height="{lane - 8}" '
                f'fill="{fill}" fill-opacity="0.75" stroke="#999" stroke-width="0.3">'
                f'<title>{tip}</title></rect>')
            if x(t1) - x(t0) > 34 and holder:
                add(f'<text x="{x(t0) + 3:.1f}" y="{y + lane * 0.68:.1f}" font-size="10" fill="white">'
                    f'{escape(holder)}</text>')
        for t0, t1, count in tl["losses"].get(address, ()):
            add(f'<rect x="{x(t0):.1f}" y="{y}" width="{max(x(t1) - x(t0), 1.5):.1f}" height="{lane}" '
                f'fill="#d50000"><title>{escape(f"{count} pings to {address} lost")}</title></rect>')
        y += lane + gap
    # Time axis.
    axis_y = top + plot_h
    add(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="#333"/>')
    tick = next(s for s in (1, 2, 5, 10, 20, 30, 60, 120, 300) if end / s <= 15)
    t = 0
    while t <= end:
        add(f'<line x1="{x(t):.1f}" y1="{axis_y}" x2="{x(t):.1f}" y2="{axis_y + 5}" stroke="#333"/>')
        add(f'<text x="{x(t):.1f}" y="{axis_y + 18}" text-anchor="middle" font-size="10">{t} s</text>')
        t += tick
    # Legend: colours, then the numbered steps in three columns.
    lx = left
    for label, fill in (("ok", _STATE_COLOURS["ok"]), ("failed", _STATE_COLOURS["failed"]),
                        ("offline", _STATE_COLOURS["offline"]), ("pings lost", "#d50000"),
                        ("link failure / router down", "#000000"), ("silent failure", "#6d4c41"),
                        *((f"on {n}", colour[n]) for n in nics)):
        add(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="{fill}"/>')
        add(f'<text x="{lx + 16}" y="{legend_y}">{escape(label)}</text>')
        lx += 30 + 7 * len(label)
    col_w = plot // 3
    for i, st in enumerate(steps):
        cx = left + (i // legend_rows) * col_w if legend_rows else left
        cy = legend_y + 24 + (i % legend_rows) * 16
        mark = "" if st["ok"] else "  ✗"
        label = escape(f"{i + 1}. {st['title']}{mark}")
        add(f'<text x="{cx}" y="{cy}" font-size="11">{label}</text>')
    add("</svg>")
    return "\n".join(out) + "\n"


def write_svg(report: dict[str, Any], path: Path) -> None:
    path.write_text(svg(report), encoding="utf-8")
