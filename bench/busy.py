"""in.mpathd at FDT 100 ms with 8 NICs: CPU.

The setup of ``bench.idle`` (4 groups of 2 NICs, one /28 and router address
per group) with FAILURE_DETECTION_TIME=100: every NIC sends a probe every
100/7 ms, so the daemon handles about 560 probes and as many replies a second.
Nothing fails during the window.
"""

from __future__ import annotations

from bench.common import Row
from bench.idle import measure

NAME = "busy"


def run(quick: bool) -> list[Row]:
    window = 10.0 if quick else 30.0
    sample, _pid, _ = measure(4, 100, window, NAME)
    notes = [f"CPU over {sample.wall:.0f} s: {sample.percent:.1f} % of a core; per 5 s window: "
             + ", ".join(f"{w:.1f}" for w in sample.windows),
             f"VmRSS {sample.rss_mib:.1f} MiB, VmHWM {sample.hwm_mib:.1f} MiB"]
    return [Row("`in.mpathd` at FDT 100 ms with 8 NICs", "<= 15 % of a core",
                f"CPU {sample.percent:.1f} % (RSS {sample.rss_mib:.1f} MiB)", sample.percent <= 15, notes)]
