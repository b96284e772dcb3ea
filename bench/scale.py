"""Scale: in.mpathd with 64 NICs in 32 groups at FDT 1 s.

``GroupPlan(32)``: 32 /28 subnets, each with its own router address and two
NICs.  After the daemon tracks every NIC, its CPU is sampled over a quiet
window (nothing fails); then one NIC of every group fails silently in turn
(the pipelined drill of ``bench.silent``, injections 0.5 s apart) and every
detection is checked against the FDT.
"""

from __future__ import annotations

import time

from bench.common import Dist, GroupPlan, Row, lab, sample_cpu, say
from bench.silent import drill, setup

NAME = "scale"
GROUPS = 32
FDT_MS = 1000
SETTLE = 5.0


def run(quick: bool) -> list[Row]:
    window = 10.0 if quick else 30.0
    trials = 8 if quick else GROUPS
    plan = GroupPlan(GROUPS)
    say(f"{NAME}: {len(plan.nics)} NICs in {GROUPS} groups at FDT {FDT_MS} ms")
    with lab(plan.nics, plan.files(FDT_MS), extra_router_addrs=plan.router_addrs()) as the_lab:
        t = time.monotonic()
        setup(the_lab)
        daemon = the_lab.daemons[0]
        say(f"{NAME}: booted and tracking after {time.monotonic() - t:.1f} s; settling {SETTLE:.0f} s")
        time.sleep(SETTLE)
        quiet_mark = daemon.mark()
        sample = sample_cpu(daemon.pid, window)
        with daemon.cond:
            during = [line for _, line in daemon.lines[quiet_mark:]]
        say(f"{NAME}: CPU {sample.percent:.1f} % (windows {', '.join(f'{w:.1f}' for w in sample.windows)}); "
            f"RSS {sample.rss_mib:.1f} MiB")
        out = drill(the_lab, plan, trials, 0.5, FDT_MS)
        fdts = sorted({g["fdt_ms"] for g in daemon.query()["groups"].values()})
        with daemon.cond:
            raised = sum(1 for _, line in daemon.lines if "Cannot meet requested failure detection" in line)
    quiet_failures = [line for line in during if "NIC failure detected" in line or "All Interfaces" in line]
    det, move = Dist.of(out.detect_ms), Dist.of(out.move_ms)
    over = sum(1 for d in out.detect_ms if d > FDT_MS)
    say(f"{NAME}: detection {det.fmt()}, {over} above the FDT; move {move.fmt()}")
    met = (sample.percent <= 5 and over == 0 and det.n == trials and not out.false_failures
           and not quiet_failures and not out.group_failures)
    notes = [
        f"CPU over a quiet {sample.wall:.0f} s window: {sample.percent:.1f} % of a core; per 5 s window: "
        + ", ".join(f"{w:.1f}" for w in sample.windows) + f"; VmRSS {sample.rss_mib:.1f} MiB",
        f"{det.n} silent failures (one NIC per group, injections 0.5 s apart): detection {det.fmt()}; "
        f"{over} above the FDT",
        f"detection -> data address on the survivor: {move.fmt()}",
        f"while nothing failed (the CPU window): {len(quiet_failures)} failure lines"
        + (f", e.g. {quiet_failures[0]!r}" if quiet_failures else ""),
        f"group FDTs at the end: {fdts} ms; 'Cannot meet requested failure detection time' lines since "
        f"the start: {raised}",
        out.summary(),
    ]
    measured = (f"CPU {sample.percent:.1f} %; detection p50 {det.p50:.0f} / max {det.max:.0f} ms, "
                f"{over}/{det.n} above the FDT"
                + (f", {out.undetected} never detected as a NIC failure" if out.undetected else "")
                + (f", {out.group_failures} 'All Interfaces in group' verdicts with one NIC up"
                   if out.group_failures else "")
                + (f", {len(out.false_failures)} failures of healthy NICs" if out.false_failures else "")
                + (" (drill stopped early)" if out.aborted else ""))
    return [Row("scale: 64 NICs in 32 groups at FDT 1 s", "<= 5 % of a core, every failure detected within "
                "the FDT", measured, met, notes)]
