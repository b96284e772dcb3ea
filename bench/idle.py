"""in.mpathd idle with 8 NICs in 4 groups at FDT 10 s: RSS and CPU.

Four groups of two NICs (``GroupPlan``: one /28 per group, test and data
address on each NIC, each group probing its own router address), booted with
ipmp-boot; once the daemon tracks every NIC and a short settling time has
passed, its utime+stime (/proc/PID/stat) is sampled over a window and its
VmRSS (/proc/PID/status) read at the end.  Nothing fails during the window.
"""

from __future__ import annotations

import time

from bench.common import CpuSample, GroupPlan, Row, lab, sample_cpu, say

NAME = "idle"
SETTLE = 3.0


def measure(groups: int, fdt_ms: int, window: float, tag: str) -> tuple[CpuSample, int, float]:
    """Boot ``groups`` groups of 2 NICs, start in.mpathd, sample it; (sample, pid, boot+settle s)."""
    plan = GroupPlan(groups)
    say(f"{tag}: {len(plan.nics)} NICs in {groups} groups at FDT {fdt_ms} ms, {window:.0f} s window")
    with lab(plan.nics, plan.files(fdt_ms), extra_router_addrs=plan.router_addrs()) as the_lab:
        t = time.monotonic()
        the_lab.boot()
        daemon = the_lab.start_daemon()
        time.sleep(SETTLE)
        ready = time.monotonic() - t
        sample = sample_cpu(daemon.pid, window)
        fdts = sorted({g["fdt_ms"] for g in daemon.query()["groups"].values()})
        if fdts != [fdt_ms]:
            say(f"{tag}: group FDTs changed during the run: {fdts}")
    say(f"{tag}: CPU {sample.percent:.2f} % (windows {', '.join(f'{w:.2f}' for w in sample.windows)}); "
        f"RSS {sample.rss_mib:.1f} MiB (peak {sample.hwm_mib:.1f})")
    return sample, daemon.pid, ready


def run(quick: bool) -> list[Row]:
    window = 10.0 if quick else 40.0
    sample, _pid, _ = measure(4, 10000, window, NAME)
    met = sample.rss_mib <= 45 and sample.percent <= 0.5
    notes = [f"CPU over {sample.wall:.0f} s: {sample.percent:.2f} % of a core; per 5 s window: "
             + ", ".join(f"{w:.2f}" for w in sample.windows),
             f"VmRSS {sample.rss_mib:.1f} MiB, VmHWM {sample.hwm_mib:.1f} MiB"]
    return [Row("`in.mpathd` idle, 8 NICs in 4 groups, FDT 10 s: RSS / CPU", "<= 45 MiB / <= 0.5 % of a core",
                f"RSS {sample.rss_mib:.1f} MiB / CPU {sample.percent:.2f} %", met, notes)]
