"""in.mpathd's SIGUSR1 report (``ipmp.mpathd.stats``, spec §2.10), on the simulated machine."""

from __future__ import annotations

import re

from ipmp.model import Family
from ipmp.mpathd import stats
from ipmp.mpathd.probe import ProbeKind
from ipmp.mpathd.steps import Log, ProbeReplied, Tick
from tests.unit.test_machine import started, unicast

NUMBERS = ("sent", "acks received", "lost", "valid unacknowledged", "ambiguous")
PATTERNS = {
    "sent": r"^Number of probes sent (\d+)$",
    "acks received": r"^Number of probe acks received (\d+)$",
    "lost": r"^Number of probes/acks lost (\d+)$",
    "valid unacknowledged": r"^Number of valid unacknowledged probes (\d+)$",
    "ambiguous": r"^Number of ambiguous probe acks received (\d+)$",
}
MISSED = re.compile(r"^Missed sending total of (\d+) probes spread over (\d+) occurrences$")


def blocks(report: list[Log]) -> dict[str, dict[str, int]]:
    """The "Probe stats on (inet qfe0)" blocks, by their heading's "(family if)"."""
    out: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in report:
        if m := re.match(r"^Probe stats on \((\w+ \w+)\)$", line.message):
            assert line.level == "err"
            current = out.setdefault(m.group(1), {})
            continue
        for key, pattern in PATTERNS.items():
            if current is not None and (m := re.match(pattern, line.message)):
                assert line.level == "err"
                current[key] = int(m.group(1))
    return out


def missed(report: list[Log]) -> tuple[int, int]:
    found = [m for line in report if (m := MISSED.match(line.message))]
    assert len(found) == 1, [line.message for line in report]
    return int(found[0].group(1)), int(found[0].group(2))


def test_the_report_has_the_solaris_order_and_levels() -> None:
    sim = started(2)
    report = stats.report(sim.machine)
    assert report[0] == Log("debug", "Printing configuration:")
    levels = [line.level for line in report]
    first_err = levels.index("err")
    assert set(levels[:first_err]) == {"debug"} and set(levels[first_err:]) == {"err"}
    assert MISSED.match(report[first_err].message)
    assert any(line.message.startswith("Phyint instance: inet qfe0 state ok group ") for line in report)
    assert any(line.message.startswith("Target on inet qfe1 addr ") for line in report)
    assert list(blocks(report)) == ["inet qfe0", "inet qfe1"]
    for block in blocks(report).values():
        assert tuple(block) == NUMBERS


def test_every_probe_sent_is_acknowledged_lost_or_still_waiting() -> None:
    sim = started(2)
    sim.silent("qfe0")
    sim.advance(3.0)
    by_nic = blocks(stats.report(sim.machine))
    healthy, silent = by_nic["inet qfe1"], by_nic["inet qfe0"]
    for block in (healthy, silent):
        assert block["sent"] > 10
        assert block["sent"] == block["acks received"] + block["lost"] + block["valid unacknowledged"]
    assert healthy["lost"] == 0
    assert silent["lost"] >= 3 * 7 - 2  # three FDTs of 7 probes, the last two may still wait
    assert (silent["sent"], healthy["sent"]) == (len(unicast(sim, "qfe0")), len(unicast(sim, "qfe1")))


def test_a_late_daemon_counts_the_probes_it_skipped() -> None:
    sim = started(2)
    assert missed(stats.report(sim.machine)) == (0, 0)
    interval = sim.machine.groups[sim.machine.phyints["qfe0"].group].interval
    sim.now += 10 * interval  # the daemon was stopped for ten probe intervals
    sim.feed(Tick(sim.now))
    probes, times = missed(stats.report(sim.machine))
    assert times == 2  # once on each NIC
    assert 2 * 8 <= probes <= 2 * 11


def test_a_reply_outside_the_window_is_an_ambiguous_ack() -> None:
    sim = started(2)
    inst = sim.machine.phyints["qfe0"].instances[Family.INET]
    target = inst.active_targets()[0].address
    far = (inst.snxt + 1000) % 65536
    sim.feed(ProbeReplied(sim.now, "qfe0", Family.INET, far, target, 1, ProbeKind.UNICAST))
    by_nic = blocks(stats.report(sim.machine))
    assert by_nic["inet qfe0"]["ambiguous"] == 1
    assert by_nic["inet qfe1"]["ambiguous"] == 0
