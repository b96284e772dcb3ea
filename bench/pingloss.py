"""Pings lost at 100/s on link failover and failback.

Root: ``examples/hostname.files/active-active``.  The peer pings both data
addresses (192.0.2.100 on qfe0, .101 on qfe1) every 10 ms with
``ipmp.lab.pinger`` for the whole run.  Trials alternate between the NICs:
cut the carrier (switch agent), wait for the move and the peer's neighbour
update, hold the failure for a while, restore the carrier, wait for the
failback and the peer's update, settle.

Per trial and direction, the moving address's lost echoes are counted in the
window from the carrier change to the next one (both less one ping interval,
so that an echo in flight at a change is counted for that change); "after the move" counts the
lost echoes that were *sent* after the peer's neighbour entry already had the
new MAC (send times from the pinger's fixed schedule, one clock).  The
address that does not move must lose nothing.
"""

from __future__ import annotations

import time

from bench.common import Lab, Row, lab, mpathd_conf, neigh_is, say
from ipmp.lab.pingreport import PingReport, TargetStats

NAME = "pingloss"
FDT_MS = 500  # paces the probe-based repair; link failover itself ignores it
NICS = ("qfe0", "qfe1")
DATA = {"qfe0": "192.0.2.100", "qfe1": "192.0.2.101"}
INTERVAL = 0.01
HOLD = 0.3  # failure held this long after the peer is updated
SETTLE = 0.3  # after the failback
MARGIN = 0.01  # windows start this long before their carrier change (one ping interval)


def _lost_seqs(stats: TargetStats) -> list[int]:
    return [s for r in stats.lost_ranges for s in range(r.first, r.last + 1)]


def _sent_at(report: PingReport, seq: int) -> float:
    return report.start_monotonic + seq * report.interval


def _count(report: PingReport, addr: str, start: float, end: float, after: float) -> tuple[int, int]:
    """(lost echoes sent in [start, end), of which sent at or after ``after``)."""
    lost = [_sent_at(report, s) for s in _lost_seqs(report[addr])]
    window = [t for t in lost if start <= t < end]
    return len(window), sum(1 for t in window if t >= after)


def _steps(the_lab: Lab, trials: int) -> list[tuple[str, float, float, float]]:
    """Run the trials; per step: ("failover:NIC" or "failback:NIC", t_change, t_peer_updated, t_settled)."""
    topo = the_lab.topo
    daemon = the_lab.daemons[0]
    sw, peer = the_lab.agents
    steps: list[tuple[str, float, float, float]] = []
    for k in range(trials):
        nic, survivor = NICS[k % 2], NICS[1 - k % 2]
        data, port = DATA[nic], topo.port(nic)
        mp, md = peer.mark(), daemon.mark()
        t_cut = float(sw.command(f"down {port}")["t0"])
        ev = peer.wait(neigh_is(data, topo.macs[survivor]), mp, 5.0)
        daemon.wait_line(rf"Successfully failed over from NIC {nic}\b", md, 5.0)
        time.sleep(HOLD)
        mp, md = peer.mark(), daemon.mark()
        t_up = float(sw.command(f"up {port}")["t0"])
        steps.append((f"failover:{nic}", t_cut, float(ev["t"]), t_up))
        back = peer.wait(neigh_is(data, topo.macs[nic]), mp, 30.0)
        daemon.wait_line(rf"Successfully failed back to NIC {nic}\b", md, 5.0)
        time.sleep(SETTLE)
        steps.append((f"failback:{nic}", t_up, float(back["t"]), time.monotonic()))
    return steps


def run(quick: bool) -> list[Row]:
    trials = 6 if quick else 20
    with lab(NICS, {"etc/default/mpathd": mpathd_conf(FDT_MS)}, example="active-active") as the_lab:
        the_lab.boot()
        the_lab.start_daemon()
        the_lab.agent("switch")
        the_lab.agent("peer", "neigh")
        say(f"{NAME}: {trials} link failover/failback pairs with the peer pinging at 100/s")
        job = the_lab.topo.start_ping("peer", list(DATA.values()), interval=INTERVAL, timeout=1.0)
        try:
            time.sleep(0.5)  # the peer resolves both addresses
            steps = _steps(the_lab, trials)
            time.sleep(0.2)
            report = job.stop()
        finally:
            job.kill()
    per: dict[str, list[tuple[int, int, int]]] = {"failover": [], "failback": []}
    stray: dict[str, list[str]] = {"failover": [], "failback": []}
    # A step's window runs from MARGIN before its carrier change to MARGIN before
    # the next one: an echo still in flight when the carrier changes belongs to
    # that change, not to the previous window.
    for i, (name, t_change, t_done, _t_end) in enumerate(steps):
        kind, nic = name.split(":")
        moving = DATA[nic]
        staying = DATA[NICS[1 - NICS.index(nic)]]
        start = t_change - MARGIN
        end = steps[i + 1][1] - MARGIN if i + 1 < len(steps) else report.end_monotonic
        lost, after = _count(report, moving, start, end, t_done)
        other, _ = _count(report, staying, start, end, t_done)
        per[kind].append((lost, after, other))
        if other:
            offsets = [round((_sent_at(report, s) - t_change) * 1000) for s in _lost_seqs(report[staying])
                       if start <= _sent_at(report, s) < end]
            stray[kind].append(f"{staying} at {offsets} ms")
    rows: list[Row] = []
    for kind in ("failover", "failback"):
        vals = per[kind]
        losses = sorted(v[0] for v in vals)
        worst_after = max(v[1] for v in vals)
        other = sum(v[2] for v in vals)
        hist = {n: losses.count(n) for n in sorted(set(losses))}
        met = max(losses) <= 1 and worst_after == 0
        say(f"{NAME}: {kind}: lost per trial {hist}; after the move {worst_after}; other address {other}")
        notes = [f"{len(vals)} {kind}s at 100 pings/s to each data address; lost per {kind} "
                 f"(count: trials) {hist}",
                 f"lost echoes sent after the peer's entry had the new MAC: max {worst_after} per trial",
                 f"the address that did not move lost {other} in all these windows"
                 + (f" ({', '.join(stray[kind])} from the carrier change)" if stray[kind] else ""),
                 f"pinger: {report.rounds} rounds, worst send lag {report.max_send_lag_ms:.1f} ms"]
        measured = (f"max {max(losses)} lost per {kind} (median {losses[len(losses) // 2]}); "
                    f"max {worst_after} after the move")
        rows.append(Row(f"pings lost at 100/s on link {kind} ({len(vals)} trials)",
                        "<= 1, 0 after the move completes", measured, met, notes))
    return rows
