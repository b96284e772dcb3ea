"""Long outages on the real kernel: a NIC whose carrier flaps at 20 Hz, and a router that dies.

Both run for ``IPMP_FLAP_SECONDS`` / ``IPMP_OUTAGE_SECONDS`` (5 s in CI;
``make flap`` runs them for 60 s) while the peer pings every data address
100 times a second and the layout is checked twice a second.

Flapping (``flap``): the switch-side port of one NIC goes down and up every
25 ms, driven by one ``ip -batch`` process fed on a timer.  What the
damping rules of in.mpathd allow, counted from its "Successfully failed
over/back" lines:

* a NIC with probe targets (active-active): one failover at the first
  carrier loss, and no failback while it flaps -- a repair needs
  NUM_PROBE_REPAIRS (10) probes answered in a row, which a 25 ms link never
  gives; after the flapping it is repaired and fails back once;
* a link-only NIC (no test addresses): a repair on each of its first
  LINK_UP_PERMIN (2) link-ups, then "more than 2 times in the last minute"
  holds the repair -- at most 3 failovers and 2 failbacks while it flaps;
  the hold ends a minute after the last burst of link-ups (only the 60 s run
  waits for that final failback).

Router death (``outage``): every NIC loses its probe targets at once, which
is a group failure: "All Interfaces in group prod have failed", no failover,
every address stays where it is (the peer, on the same link, keeps reaching
them), and the repair is clean.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
from invariants import holders, layout_problems, plan_left, rule_problems
from mpathd_harness import Layout, MakeLab, MpathdLab, figures, start_ping, wait_for

from ipmp.lab.topology import Topology

D0, D1 = "192.0.2.100", "192.0.2.101"
FLAP_SECONDS = float(os.environ.get("IPMP_FLAP_SECONDS", "5"))
OUTAGE_SECONDS = float(os.environ.get("IPMP_OUTAGE_SECONDS", "5"))
FLAP_HZ = 20.0
FAILOVER = "^Successfully failed over from NIC "
FAILBACK = "^Successfully failed back to NIC "
FLAPPING = ("^The link has come up on {nic} more than 2 times in the last minute; "
            "disabling failback until it stabilizes$")

NICS = {"active-active": ("qfe0", "qfe1"), "link-only": ("bge0", "bge1")}


@pytest.fixture
def lab_nics() -> dict[str, tuple[str, str]]:
    """The host NICs of each example, for ``make_lab`` (conftest.py)."""
    return NICS


class Flapper:
    """Carrier of one host NIC down and up at ``hz`` from the switch side, for ``seconds``.

    One ``ip -force -batch -`` in the switch namespace reads the commands from
    a pipe as they are written, so each toggle costs no process start.
    """

    def __init__(self, topo: Topology, nic: str, hz: float, seconds: float) -> None:
        self.port = topo.port(nic)
        self.proc = topo.popen("switch", ["ip", "-force", "-batch", "-"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.hz = hz
        self.seconds = seconds
        self.toggles = 0
        self.started = time.monotonic()
        self.ended: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"flap-{nic}", daemon=True)
        self._thread.start()

    def _write(self, state: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"link set dev {self.port} {state}\n".encode())
        self.proc.stdin.flush()

    def _run(self) -> None:
        half = 0.5 / self.hz
        t = self.started
        try:
            while t + 2 * half <= self.started + self.seconds:
                for state in ("down", "up"):
                    self._write(state)
                    self.toggles += 1
                    t += half
                    time.sleep(max(0.0, t - time.monotonic()))
        finally:
            self._write("up")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.ended = time.monotonic()

    def join(self) -> None:
        self._thread.join(self.seconds + 30)
        self.proc.wait(30)


def watch(lab: MpathdLab, data: tuple[str, ...], until: Callable[[], bool], *,
          usable: set[str] | None = None) -> int:
    """Check twice a second until ``until()``: no address ever on two NICs (or off ``usable``)."""
    checks = 0
    while not until():
        held = holders(lab.topo)
        for address in data:
            nics = held.get(address, [])
            assert len(nics) <= 1, f"{address} on {nics} at the same time"
            if usable is not None:
                assert nics and nics[0] in usable, f"{address} on {nics}, usable: {usable}"
        checks += 1
        time.sleep(0.5)
    return checks


def settled(lab: MpathdLab, layout: Layout) -> bool:
    return layout.lifs == lab.layout().lifs


@pytest.mark.parametrize("example", ["active-active", "link-only"])
def test_carrier_flapping_at_20hz_moves_no_more_than_damping_allows(
    make_lab: MakeLab, example: str
) -> None:
    lab = make_lab(example)
    topo = lab.topo
    nic, other = NICS[example]
    d = lab.start()
    before = lab.layout()
    home = {D0: nic, D1: other}
    assert {a: before.nic_of(a) for a in home} == home, before.text
    with start_ping(topo, D0, D1) as job:
        t0 = time.monotonic()
        flapper = Flapper(topo, nic, FLAP_HZ, FLAP_SECONDS)
        checks = watch(lab, (D0, D1), lambda: flapper.ended is not None)
        flapper.join()
        assert flapper.ended is not None
        t_end = flapper.ended
        during = d.matching(FAILOVER, since=t0), d.matching(FAILBACK, since=t0)
        downs = len(d.matching(f"^The link has gone down on {nic}$", since=t0))
        if example == "active-active":
            # Probes repair it once the link holds; then the boot layout again.
            back = d.wait_line(FAILBACK + f"{nic}$", since=t_end, timeout=15)
            lay = lab.wait_layout(lambda lay: lay.lifs == before.lifs, "the boot layout again", timeout=10)
        else:
            assert len(d.matching(FLAPPING.format(nic=nic), since=t0)) == 1, d.text()
            if FLAP_SECONDS >= 60:
                # The hold ends when no more than 2 link-ups are left in the last minute.
                back = d.wait_line(FAILBACK + f"{nic}$", since=t_end, timeout=90)
                lay = lab.wait_layout(lambda lay: lay.lifs == before.lifs, "the boot layout", timeout=10)
            else:
                back = None
                lay = lab.wait_layout(lambda lay: "FAILED" in lay.nic_flags(nic) and lay.nic_of(D0) == other,
                                      f"{D0} held on {other} while {nic} is damped")
        t_settled = time.monotonic()
        wait_for(lambda: time.monotonic() >= t_settled + 0.5, 5.0, "pings after the flapping")
        report = job.stop()
    overs, backs = during[0], [b for b in during[1] if b.t <= t_end]
    holder = lay.nic_of(D0)
    assert holder is not None
    assert topo.neighbour_mac("peer", D0) == topo.macs[holder]
    assert layout_problems(topo, (D0, D1)) == []
    assert rule_problems(topo, (D0, D1), ()) == []
    assert plan_left(topo, lab.root, topo.nics) == []
    figures(f"flap_{example}", seconds=FLAP_SECONDS, toggles=flapper.toggles, link_downs_logged=downs,
            failovers=len(overs), failbacks_during=len(backs),
            failback_after_s=(back.t - t_end) if back is not None else -1.0,
            lost_d0=report[D0].lost, lost_d1=report[D1].lost, layout_checks=checks)
    assert downs >= 2, d.text()
    if example == "active-active":
        assert (len(overs), len(backs)) == (1, 0), d.text()
    else:
        assert len(overs) <= 3 and len(backs) <= 2, d.text()
    assert not d.matching("Traceback|failed to apply|All Interfaces"), d.text()
    # D1 never moves; D0 is gone only while it moves (each move ~20 echoes at most).
    assert report[D1].lost <= 5, report[D1].lost_ranges
    assert report[D0].lost <= 20 * (len(overs) + len(backs) + 1), report[D0].lost_ranges


def test_router_death_is_one_group_failure_without_any_move(make_lab: MakeLab) -> None:
    lab = make_lab("active-active")
    topo = lab.topo
    d = lab.start()
    before = lab.layout()
    home = {"qfe0", "qfe1"}
    with start_ping(topo, D0, D1) as job:
        t0 = time.monotonic()
        topo.router_down()
        failed = d.wait_line("^All Interfaces in group prod have failed$", since=t0, timeout=10)
        end = t0 + OUTAGE_SECONDS
        checks = watch(lab, (D0, D1), lambda: time.monotonic() >= end, usable=home)
        assert layout_problems(topo, (D0, D1)) == []
        assert holders(topo)[D0] == ["qfe0"] and holders(topo)[D1] == ["qfe1"]
        t1 = time.monotonic()
        topo.router_up()
        repaired = d.wait_line(r"^At least 1 interface \((qfe0|qfe1)\) of group prod has repaired$",
                               since=t1, timeout=15)
        lay = lab.wait_layout(lambda lay: lay.lifs == before.lifs, "both NICs repaired", timeout=15)
        report = job.stop()
    figures("group_failure", outage_s=OUTAGE_SECONDS, detect_s=failed.t - t0, repair_s=repaired.t - t1,
            lost_d0=report[D0].lost, lost_d1=report[D1].lost, layout_checks=checks)
    assert lay.lifs == before.lifs
    assert len(d.matching("^All Interfaces in group prod have failed$", since=t0)) == 1, d.text()
    assert not d.matching("^(NIC failure detected|Successfully failed over)", since=t0), d.text()
    assert not d.matching("Traceback|failed to apply"), d.text()
    assert plan_left(topo, lab.root, topo.nics) == []
    # The peer is on the host's own link: a dead router costs it nothing.
    assert report[D0].lost == 0 and report[D1].lost == 0, (report[D0].lost_ranges, report[D1].lost_ranges)
