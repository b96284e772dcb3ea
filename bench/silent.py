"""Silent failure detection at FDT 10 s, 1 s and 100 ms.

A silent failure (``Topology.fail_silent``'s method: the switch port leaves the
bridge, carrier stays up) can only be found by probes.  One in.mpathd runs on
a topology of IPMP groups (two NICs each, one /28 per group, see
``GroupPlan``).  A trial injects the failure into one NIC of a free group,
waits for the detection and the move, repairs the port and gives the group
back once the failback is done and has settled.

At FDT 1 s and 100 ms the trials are serial (one group): nothing else happens
in the daemon while a failure is being detected.  At FDT 10 s a serial run
would take 12 minutes, so the trials are *pipelined* over 10 groups with
injections 2.5 s apart; another group's move or failback may then happen while
a failure is being detected (each costs the loop tens of ms, small against a
1.4 s probe interval).  A fourth case, not a target, pipelines FDT 1 s over 6
groups with injections 0.5 s apart to show what concurrent moves do to
detection.

Stamps (CLOCK_MONOTONIC): ``t0`` right before the switch agent's RTM_NEWLINK
(IFLA_MASTER 0); ``detected`` when in.mpathd's "NIC failure detected on X"
line is read from its pipe; ``moved`` when the host agent receives
RTM_NEWADDR of X's data address on the survivor.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from bench.common import Dist, GroupPlan, Lab, Row, addr_on, lab, ms, say

NAME = "silent"


@dataclass
class Trial:
    group: int
    k: int  # which NIC of the group fails
    nic: str
    t0: float = 0.0
    mark_d: int = 0
    mark_h: int = 0
    detected: float | None = None
    moved: float | None = None
    repaired_at: float | None = None
    done_at: float | None = None


@dataclass
class Outcome:
    trials: list[Trial]
    wall_s: float
    raised: list[str]  # "Cannot meet requested failure detection time" lines
    false_failures: list[str]  # failure lines for NICs we had not failed
    group_failures: int  # "All Interfaces in group ... have failed" lines
    restores: int  # "restoring N kernel change(s) undone outside in.mpathd" lines
    aborted: str | None  # why the drill stopped early

    @property
    def detect_ms(self) -> list[float]:
        return [ms(t.detected - t.t0) for t in self.trials if t.detected is not None]

    @property
    def move_ms(self) -> list[float]:
        return [ms(t.moved - t.detected) for t in self.trials
                if t.moved is not None and t.detected is not None]

    @property
    def address_ms(self) -> list[float]:
        """Failure to the data address on the survivor (the daemon logs its detection after the move)."""
        return [ms(t.moved - t.t0) for t in self.trials if t.moved is not None]

    @property
    def failback_ms(self) -> list[float]:
        return [ms(t.done_at - t.repaired_at) for t in self.trials
                if t.done_at is not None and t.repaired_at is not None]

    @property
    def undetected(self) -> int:
        return sum(1 for t in self.trials if t.detected is None)

    def summary(self) -> str:
        parts = [f"{len(self.false_failures)} failures detected on NICs that had not failed",
                 f"{self.group_failures} 'All Interfaces in group' lines",
                 f"{self.restores} 'restoring ... undone outside in.mpathd' lines"]
        if self.undetected:
            parts.insert(0, f"{self.undetected} injected failures never detected")
        if self.aborted:
            parts.append(f"drill stopped early: {self.aborted}")
        return "; ".join(parts)


def _step(the_lab: Lab, plan: GroupPlan, tr: Trial) -> bool:
    """Advance one trial; True once it is over (failed back)."""
    daemon = the_lab.daemons[0]
    sw, host = the_lab.agents[0], the_lab.agents[1]
    other = plan.nic(tr.group, 1 - tr.k)
    data = plan.data(tr.group, tr.k)
    if tr.detected is None:
        hit = daemon.find_line(rf"NIC failure detected on {tr.nic}\b", tr.mark_d)
        if hit is not None:
            tr.detected = hit[0]
    if tr.moved is None:
        ev = host.find(addr_on(other, data), tr.mark_h)
        if ev is not None:
            tr.moved = float(ev["t"])
    if tr.repaired_at is None:
        if tr.detected is not None and tr.moved is not None:
            tr.mark_d, tr.mark_h = daemon.mark(), host.mark()
            port = the_lab.topo.port(tr.nic)
            tr.repaired_at = float(sw.command(f"master {port} {the_lab.topo.bridge}")["t0"])
        return False
    back = host.find(addr_on(tr.nic, data), tr.mark_h)
    line = daemon.find_line(rf"Successfully failed back to NIC {tr.nic}\b", tr.mark_d)
    if back is not None and line is not None:
        tr.done_at = float(back["t"])
        return True
    return False


def drill(the_lab: Lab, plan: GroupPlan, trials: int, spacing: float, fdt_ms: int,
          timeout: float | None = None, settle: float = 0.3) -> Outcome:
    """Run ``trials`` silent failures over the groups of ``plan`` (see the module doc).

    A new failure is injected at least ``spacing`` s after the previous one,
    into a group whose last trial failed back at least ``settle`` s ago.

    A trial that is not over after ``timeout`` stops the drill: every port
    still failed is repaired and what was measured so far is returned, with
    the reason.
    """
    topo = the_lab.topo
    daemon = the_lab.daemons[0]
    sw, host = the_lab.agents[0], the_lab.agents[1]
    limit = timeout if timeout is not None else 3 * fdt_ms / 1000 + 30
    free = list(range(plan.groups))
    free_at = [0.0] * plan.groups
    next_k = [0] * plan.groups
    active: list[Trial] = []
    done: list[Trial] = []
    aborted: str | None = None
    next_at = time.monotonic()
    started = time.monotonic()
    mark0 = daemon.mark()
    while len(done) < trials and aborted is None:
        now = time.monotonic()
        ready = [g for g in free if now >= free_at[g]]
        if ready and now >= next_at and len(done) + len(active) < trials:
            g = ready[0]
            free.remove(g)
            tr = Trial(g, next_k[g], plan.nic(g, next_k[g]))
            next_k[g] ^= 1
            tr.mark_d, tr.mark_h = daemon.mark(), host.mark()
            tr.t0 = float(sw.command(f"nomaster {topo.port(tr.nic)}")["t0"])
            active.append(tr)
            next_at = tr.t0 + spacing
        for tr in list(active):
            if _step(the_lab, plan, tr):
                active.remove(tr)
                done.append(tr)
                free.append(tr.group)
                free_at[tr.group] = time.monotonic() + settle
            elif now - tr.t0 > limit:
                aborted = (f"the trial on {tr.nic} was not over {limit:.0f} s after the injection "
                           f"(detected: {tr.detected is not None}, moved: {tr.moved is not None}, "
                           f"repaired: {tr.repaired_at is not None})")
                break
        time.sleep(0.005)
    for tr in active:
        if tr.repaired_at is None:
            sw.command(f"master {topo.port(tr.nic)} {topo.bridge}")
            tr.repaired_at = time.monotonic()
    wall = time.monotonic() - started
    with daemon.cond:
        lines = list(daemon.lines[mark0:])
    everything = done + active
    false: list[str] = []
    for stamp, line in lines:
        m = re.search(r"NIC failure detected on (\S+)", line)
        if m is None:
            continue
        ours = any(t.nic == m.group(1) and t.t0 <= stamp <= (t.repaired_at or math.inf) for t in everything)
        if not ours:
            false.append(line)
    if aborted is not None:
        say(f"drill: {aborted}; daemon log since the start of the drill:\n"
            + "\n".join(line for _, line in lines[-60:]))
    return Outcome(
        trials=everything,
        wall_s=wall,
        raised=[line for _, line in lines if "Cannot meet requested failure detection" in line],
        false_failures=false,
        group_failures=sum(1 for _, line in lines if "All Interfaces in group" in line),
        restores=sum(1 for _, line in lines if "undone outside in.mpathd" in line),
        aborted=aborted,
    )


def setup(the_lab: Lab) -> None:
    the_lab.boot()
    the_lab.start_daemon()
    the_lab.agent("switch")
    the_lab.agent("host", "addr")


# (FDT ms, groups, spacing between injections s, a target?)
CASES = ((10000, 10, 2.5, True), (1000, 1, 0.0, True), (100, 1, 0.0, True), (1000, 6, 0.5, False))


def run(quick: bool) -> list[Row]:
    trials = 6 if quick else 30
    rows: list[Row] = []
    for fdt_ms, groups, spacing, target in CASES:
        plan = GroupPlan(groups)
        how = "serial" if groups == 1 else f"over {groups} groups, injections >= {spacing} s apart"
        say(f"{NAME}: FDT {fdt_ms} ms, {trials} trials {how}")
        with lab(plan.nics, plan.files(fdt_ms), extra_router_addrs=plan.router_addrs()) as the_lab:
            setup(the_lab)
            out = drill(the_lab, plan, trials, spacing, fdt_ms)
            fdts = {g["fdt_ms"] for g in the_lab.daemons[0].query()["groups"].values()}
        det, move, fb = Dist.of(out.detect_ms), Dist.of(out.move_ms), Dist.of(out.failback_ms)
        say(f"{NAME}: FDT {fdt_ms}: detection {det.fmt()}; move {move.fmt()}; {out.wall_s:.0f} s")
        over = sum(1 for d in out.detect_ms if d > fdt_ms)
        met = (over == 0 and move.max <= 5 and det.n == trials and not out.false_failures
               and not out.group_failures)
        notes = [
            f"{det.n} trials {how} in {out.wall_s:.0f} s",
            f"failure -> 'NIC failure detected' line: {det.fmt()} (min {det.min:.1f}); "
            f"{over} of {det.n} above the FDT, {out.undetected} not detected",
            f"detection -> data address on the survivor: {move.fmt()}",
            f"failure -> data address on the survivor: {Dist.of(out.address_ms).fmt()}",
            f"(not a target) repair -> failed back: {fb.fmt(digits=0)}",
            f"group FDT at the end: {sorted(fdts)} ms; 'Cannot meet requested failure detection time' "
            f"lines: {len(out.raised)}",
            out.summary(),
        ]
        measured = (f"detect p50 {det.p50:.0f} / p99 {det.p99:.0f} / max {det.max:.0f} ms "
                    f"({over}/{det.n} > FDT); move p50 {move.p50:.2f} / p99 {move.p99:.2f} / "
                    f"max {move.max:.2f} ms")
        label = f"{fdt_ms / 1000:g} s" if fdt_ms >= 1000 else f"{fdt_ms} ms"
        if target:
            rows.append(Row(f"silent failure detection at FDT {label} ({det.n} trials, {how.split(',')[0]})",
                            "never above the FDT; move done <= 5 ms after detection", measured, met, notes))
        else:
            rows.append(Row(f"(not a target) silent failures at FDT {label}, {groups} groups failing "
                            f"concurrently ({det.n} trials, injections {spacing} s apart)",
                            "-", measured, None, notes))
    return rows
