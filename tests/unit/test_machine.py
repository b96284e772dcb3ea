"""in.mpathd's state machine driven by event sequences with explicit times (§2.2-2.9).

Every test runs the pure ``Machine`` inside the simulator of ``mpathd_sim``:
simulated time, a scripted network, Execute effects applied to a ``Config``
that stands for the kernel.  Times in the assertions are simulated seconds.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest

from ipmp.model import Config, Family, Logical
from ipmp.mpathd import core as core_mod
from ipmp.mpathd import phyint as phyint_mod
from ipmp.mpathd.codes import MPATHD_MIN_RED_ERROR, MPATHD_SUCCESS, MPATHD_SYS_ERROR
from ipmp.mpathd.events import ProbeTracker
from ipmp.mpathd.machine import EINVAL, Machine
from ipmp.mpathd.phyint import TRANSITIONS, State, Timing
from ipmp.mpathd.probe import (
    PROBE_STATS_COUNT,
    SEQ_MOD,
    ProbeKind,
    Reply,
    SlotStatus,
    Target,
    TargetStatus,
    first_seq,
)
from ipmp.mpathd.settings import Settings
from ipmp.mpathd.steps import Execute, ProbeReplied, Resync, Tick
from tests.unit.mpathd_sim import (
    GROUP,
    ROUTER1,
    ROUTER2,
    ROUTERS,
    Sim,
    data_ip,
    kernel_view,
    make_group,
    make_nic,
    placement,
    test_ip,
)

V4 = Family.INET
FDTS = [700, 10000]


def interval(fdt_ms: int) -> float:
    return fdt_ms / 7 / 1000.0


def started(count: int = 2, *, fdt_ms: int = 700, warmup: float | None = None,
            standby: tuple[int, ...] | list[int] = (), link_only: bool = False, failback: bool = True,
            quiet_period: float = 1.0) -> Sim:
    """A running group whose NICs have had time to get acknowledged probes."""
    sim = Sim(make_group(count, standby=standby, link_only=link_only), fdt_ms=fdt_ms, failback=failback,
              quiet_period=quiet_period)
    sim.start()
    sim.advance(warmup if warmup is not None else 3 * fdt_ms / 1000.0)
    return sim


def unicast(sim: Sim, name: str, since: float = float("-inf"), until: float = float("inf")) -> list[float]:
    return [s.time for s in sim.probes(name, since, until) if s.probe.kind is ProbeKind.UNICAST]


def logical_of(sim: Sim, ip: IPv4Address) -> tuple[str, Logical]:
    found = sim.where(ip)
    assert len(found) == 1, f"{ip} is on {found}"
    return found[0]


# -- probing (§2.4, §2.5) --------------------------------------------------------------


@pytest.mark.parametrize("fdt_ms", FDTS)
def test_probe_interval_is_fdt_over_7_and_probes_land_in_the_second_half(fdt_ms: int) -> None:
    sim = Sim(make_group(2), fdt_ms=fdt_ms)
    sim.start()
    sim.advance(40 * interval(fdt_ms))
    times = unicast(sim, "qfe0")
    assert len(times) >= 35
    i = interval(fdt_ms)
    t0 = times[0]
    for k, t in enumerate(times[1:], start=1):
        slack = k * 0.001  # Solaris computes the interval in whole ms
        assert (k - 0.5) * i - slack <= t - t0 <= k * i + slack, (k, t - t0)
    # Not all at one end of the window: the point is random in the second half.
    offsets = [(t - t0) / i - k for k, t in enumerate(times[1:], start=1)]
    assert min(offsets) < -0.3 and max(offsets) > -0.2


def test_probe_interval_is_whole_milliseconds() -> None:
    """Regression: the interval was FDT/7 as a float (1000 ms gave 142.857 ms, not 142)."""
    sim = Sim(make_group(2), fdt_ms=1000)
    sim.start()
    sim.advance(16.0)
    times = unicast(sim, "qfe0")
    assert len(times) > 100
    t0 = times[0]
    for k, t in enumerate(times[1:101], start=1):
        # probe k goes out in the second half of interval k of 142 ms
        assert (k - 0.5) * 0.142 - 1e-9 <= t - t0 <= k * 0.142 + 1e-9, (k, t - t0)


def test_sequence_numbers_increase_and_targets_round_robin() -> None:
    sim = started(2)
    probes = [s.probe for s in sim.probes("qfe0") if s.probe.kind is ProbeKind.UNICAST]
    assert len(probes) >= 15
    first = probes[0].seq  # random (issue 20): see the sequence number tests below
    assert [p.seq for p in probes] == [(first + k) % SEQ_MOD for k in range(len(probes))]
    assert all(p.source == test_ip(0) and p.family is V4 for p in probes)
    targets = [p.target for p in probes]
    assert set(targets) == set(ROUTERS)
    assert all(a != b for a, b in itertools.pairwise(targets))
    # qfe1 has its own sequence and its own rotation.
    seqs1 = [s.probe.seq for s in sim.probes("qfe1") if s.probe.kind is ProbeKind.UNICAST]
    assert seqs1 == [(seqs1[0] + k) % SEQ_MOD for k in range(len(seqs1))]
    assert seqs1[0] != first


def test_no_probes_while_the_link_is_down() -> None:
    sim = started(2)
    sim.link("qfe0", False)
    down = sim.now
    sim.advance(2.0)
    assert unicast(sim, "qfe0", since=down) == []
    assert unicast(sim, "qfe1", since=down)
    sim.link("qfe0", True)
    up = sim.now
    sim.advance(1.0)
    assert len(unicast(sim, "qfe0", since=up)) >= 8


def test_replies_while_the_link_is_down_are_ignored() -> None:
    sim = started(2)
    last = sim.probes("qfe0")[-1].probe
    inst = sim.machine.phyints["qfe0"].instances[V4]
    sim.link("qfe0", False)
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, last.seq, last.target or ROUTER1, 1, ProbeKind.UNICAST))
    assert inst.history == {}  # link down cleared the history; nothing was recorded
    assert sim.state("qfe0") is State.FAILED


def test_no_probes_while_offline() -> None:
    sim = started(2)
    reply = sim.offline("qfe0")
    assert reply is not None and reply.mpathd_error == MPATHD_SUCCESS
    off = sim.now
    sim.advance(3.0)
    assert sim.probes("qfe0", since=off) == []
    assert any(c.ifname == "qfe0" for _, c in sim.closed)


# -- failure and repair (§2.7, §2.8) -------------------------------------------------------


@pytest.mark.parametrize("fdt_ms", FDTS)
def test_silent_failure_is_detected_within_fdt_and_fails_over(fdt_ms: int) -> None:
    sim = started(2, fdt_ms=fdt_ms)
    i = interval(fdt_ms)
    last_acked = unicast(sim, "qfe0")[-1]
    sim.silent("qfe0")
    t = sim.now
    line = sim.run_until_log("NIC failure detected", 2 * fdt_ms / 1000.0)
    assert line.message == f"NIC failure detected on qfe0 of group {GROUP}"
    assert line.time - t <= fdt_ms / 1000.0
    assert line.time - last_acked >= 5 * i
    lost = unicast(sim, "qfe0", since=t, until=line.time)
    # Five unanswered probes, judged when the fifth one's wait is over (its
    # target's CRTT: 3 ms for 1 ms round trips), not when a sixth is sent.
    assert len(lost) == 5
    assert 0.0 < line.time - lost[-1] <= 0.003 + 1e-9
    assert sim.messages()[-1] == "Successfully failed over from NIC qfe0 to NIC qfe1"
    assert sim.state("qfe0") is State.FAILED and sim.itf("qfe0").failed
    # The data address took qfe1's lowest free unit and remembers its home.
    name, lg = logical_of(sim, data_ip(0))
    assert (name, lg.unit, lg.home, lg.home_unit, lg.up) == ("qfe1", 2, "qfe0", 0, True)
    # The test address stays, and a placeholder is left at unit 0.
    name, lg = logical_of(sim, test_ip(0))
    assert (name, lg.unit, lg.up, lg.nofailover) == ("qfe0", 1, True, True)
    unit0 = sim.itf("qfe0").logical(V4, 0)
    assert unit0 is not None and unit0.address is None and not unit0.up and unit0.nofailover
    # Only one failure, and qfe0 keeps probing while failed.
    sim.advance(3 * fdt_ms / 1000.0)
    assert len(sim.lines("NIC failure detected")) == 1
    assert unicast(sim, "qfe0", since=line.time)


@pytest.mark.parametrize("fdt_ms", FDTS)
def test_repair_after_ten_acknowledged_probes_fails_back(fdt_ms: int) -> None:
    sim = started(2, fdt_ms=fdt_ms)
    sim.silent("qfe0")
    sim.run_until_log("Successfully failed over", 2 * fdt_ms / 1000.0)
    sim.advance(fdt_ms / 1000.0)
    sim.silent("qfe0", False)
    t = sim.now
    line = sim.run_until_log("NIC repair detected", 3 * fdt_ms / 1000.0)
    assert line.message == f"NIC repair detected on qfe0 of group {GROUP}"
    answered = [p for p in unicast(sim, "qfe0", since=t) if p < line.time]
    assert 10 <= len(answered) <= 11
    assert sim.messages()[-1] == "Successfully failed back to NIC qfe0"
    name, lg = logical_of(sim, data_ip(0))
    assert (name, lg.unit, lg.home, lg.home_unit, lg.up) == ("qfe0", 0, "", None, True)
    assert sim.state("qfe0") is State.RUNNING and not sim.itf("qfe0").failed
    assert [lg.unit for lg in sim.itf("qfe1").logicals] == [0, 1]


def test_a_crtt_of_zero_waits_the_group_interval() -> None:
    """mpd_probe.c takes a CRTT of 0 (replies within the millisecond) for none."""
    sim = Sim(make_group(2))
    for name in ("qfe0", "qfe1"):
        sim.net.nic(name).rtt_ms = 0
    sim.start()
    sim.advance(2.1)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    assert {t.crtt_ms for t in inst.targets} == {0}
    sim.silent("qfe0")
    t = sim.now
    line = sim.run_until_log("NIC failure detected on qfe0", 1.4)
    lost = unicast(sim, "qfe0", since=t, until=line.time)
    # The fifth unanswered probe is lost one group interval (700 // 7 ms) after it went out.
    assert line.time == pytest.approx(lost[4] + 0.1)


def test_only_a_loss_that_can_fail_the_nic_is_judged_at_its_expiry() -> None:
    """Other losses are settled when the next probe goes out, as in Solaris: no wake-up for them."""
    sim = started(2)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    other = sim.machine.phyints["qfe1"].instances[V4]
    sim.silent("qfe0")
    sim.run_until(inst.next_send)  # the first probe nobody answers
    for lost in range(1, 5):
        sim.run_until(inst.next_send - 1e-6)  # just before the next probe
        assert inst.history[inst.order[-1]].status is SlotStatus.UNACKED  # its wait is over, not yet judged
        assert inst.consecutive_losses() == lost - 1
        assert sim.machine.next_deadline() == min(inst.next_send, other.next_send)
        sim.run_until(inst.next_send)  # the next probe goes out: the one before is LOST now
        assert inst.consecutive_losses() == lost
    # Four in a row: the fifth probe's loss would fail the NIC, so its expiry is a deadline.
    fifth = inst.history[inst.order[-1]]
    expiry = fifth.sent_at + inst.wait(fifth, 0.1)
    assert expiry - fifth.sent_at == pytest.approx(0.003)  # the CRTT of 1 ms round trips
    assert sim.machine.next_deadline() == min(expiry, other.next_send)
    line = sim.run_until_log("NIC failure detected on qfe0", 1.0)
    assert line.time == expiry and fifth.status is SlotStatus.LOST


def test_repair_keeps_every_router_target() -> None:
    """Regression: losses counted during the failure made the first ack after a
    repair mark every other router DEAD for 60 s."""
    sim = started(2)
    sim.silent("qfe0")
    sim.run_until_log("Successfully failed over", 2.0)
    sim.advance(0.5)
    sim.silent("qfe0", False)
    sim.run_until_log("NIC repair detected", 3.0)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    assert [t.status for t in inst.targets] == [TargetStatus.ACTIVE, TargetStatus.ACTIVE]
    t = sim.now
    sim.advance(1.0)
    assert {s.probe.target for s in sim.probes("qfe0", since=t)} == set(ROUTERS)


def test_failback_no_leaves_the_repaired_nic_inactive_and_first_choice() -> None:
    sim = started(3, failback=False)
    sim.silent("qfe0")
    sim.run_until_log("Successfully failed over from NIC qfe0 to NIC qfe1", 2.0)
    sim.silent("qfe0", False)
    sim.run_until_log("NIC repair detected on qfe0", 3.0)
    sim.advance(2.0)
    assert not sim.lines("failed back")
    assert sim.home_of(data_ip(0)) == "qfe1"
    q0 = sim.itf("qfe0")
    assert q0.inactive and not q0.failed and sim.state("qfe0") is State.RUNNING
    # The next failover goes to the INACTIVE NIC, and it is active again.
    sim.silent("qfe2")
    sim.run_until_log("NIC failure detected on qfe2", 2.0)
    assert sim.messages()[-1] == "Successfully failed over from NIC qfe2 to NIC qfe0"
    assert sim.home_of(data_ip(2)) == "qfe0"
    assert sim.home_of(data_ip(0)) == "qfe1"
    assert not sim.itf("qfe0").inactive


def test_failback_no_with_standby_member_prefers_standby() -> None:
    sim = started(3, standby=[2], failback=False)
    assert sim.itf("qfe2").inactive
    sim.silent("qfe0")
    sim.run_until_log("NIC failure detected on qfe0", 2.0)
    assert sim.messages()[-1] == "Successfully failed over from NIC qfe0 to NIC qfe2"


def test_standby_takes_the_addresses_and_gives_them_back() -> None:
    sim = started(2, standby=[1])
    q1 = sim.itf("qfe1")
    assert q1.standby and q1.inactive and placement(sim.truth) == {str(data_ip(0)): "qfe0"}
    sim.silent("qfe0")
    sim.run_until_log("NIC failure detected on qfe0", 2.0)
    assert sim.messages()[-1] == "Successfully failed over from NIC qfe0 to NIC qfe1"
    assert sim.home_of(data_ip(0)) == "qfe1"
    assert not sim.itf("qfe1").inactive
    sim.silent("qfe0", False)
    sim.run_until_log("NIC repair detected on qfe0", 3.0)
    assert sim.messages()[-1] == "Successfully failed back to NIC qfe0"
    assert sim.home_of(data_ip(0)) == "qfe0"
    assert sim.itf("qfe1").inactive


def test_a_standby_holding_its_own_data_address_gives_it_to_an_active_member() -> None:
    # Kernel INACTIVE rule + invariant 1: a STANDBY hosting only its own
    # addresses is emptied to a non-standby member, and is then the first choice.
    cfg = Config((make_nic(0), make_nic(1, data=1, standby=True), make_nic(2, data=0)))
    sim = Sim(cfg)
    sim.start()
    assert sim.home_of(data_ip(1)) == "qfe2"
    assert not sim.lines("Successfully")
    assert sim.itf("qfe1").inactive
    sim.advance(2.0)
    sim.silent("qfe0")
    sim.run_until_log("NIC failure detected on qfe0", 2.0)
    assert sim.messages()[-1] == "Successfully failed over from NIC qfe0 to NIC qfe1"


def test_a_failed_standby_is_inactive_again_after_its_repair() -> None:
    sim = started(2, standby=[1])
    sim.silent("qfe1")
    sim.run_until_log("NIC failure detected on qfe1", 2.0)
    assert not sim.lines("Successfully")  # nothing to move
    assert sim.itf("qfe1").failed and not sim.itf("qfe1").inactive
    sim.silent("qfe1", False)
    sim.run_until_log("NIC repair detected on qfe1", 3.0)
    assert not sim.lines("failed back")
    assert sim.itf("qfe1").inactive and not sim.itf("qfe1").failed
    assert placement(sim.truth) == {str(data_ip(0)): "qfe0"}


# -- link state (§2.7) ---------------------------------------------------------------------


def test_link_down_fails_at_once_even_in_the_quiet_period() -> None:
    sim = started(2, quiet_period=40.0, warmup=0.5)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    assert inst.in_quiet_period(sim.now, 40.0) or inst.quiet_over
    sim.link("qfe0", False)
    assert sim.messages()[-3:] == [
        "The link has gone down on qfe0",
        f"NIC failure detected on qfe0 of group {GROUP}",
        "Successfully failed over from NIC qfe0 to NIC qfe1",
    ]
    assert {ln.time for ln in sim.logs[-3:]} == {sim.now}
    assert sim.home_of(data_ip(0)) == "qfe1"
    sim.link("qfe0", True)
    assert sim.messages()[-1] == "The link has come up on qfe0"
    assert sim.state("qfe0") is State.FAILED  # probe-capable: repair needs ten acks
    sim.run_until_log("NIC repair detected on qfe0", 2.0)
    assert sim.home_of(data_ip(0)) == "qfe0"


def test_link_only_group_fails_over_on_link_down_and_back_on_link_up() -> None:
    sim = started(2, link_only=True)
    assert sim.machine.phyints["qfe0"].instances == {}
    assert sim.sent == []
    sim.link("qfe0", False)
    assert sim.messages() == [
        "The link has gone down on qfe0",
        f"NIC failure detected on qfe0 of group {GROUP}",
        "Successfully failed over from NIC qfe0 to NIC qfe1",
    ]
    assert sim.home_of(data_ip(0)) == "qfe1"
    sim.advance(1.0)
    sim.link("qfe0", True)
    assert sim.messages()[3:] == [
        "The link has come up on qfe0",
        f"NIC repair detected on qfe0 of group {GROUP}",
        "Successfully failed back to NIC qfe0",
    ]
    assert sim.home_of(data_ip(0)) == "qfe0"
    assert sim.state("qfe0") is State.RUNNING


def test_link_flapping_holds_the_repair_for_a_minute_after_the_oldest_link_up() -> None:
    sim = started(2, link_only=True, warmup=1.0)
    ups: list[float] = []
    for _ in range(2):
        sim.link("qfe0", False)
        sim.advance(1.0)
        sim.link("qfe0", True)
        ups.append(sim.now)
        sim.advance(1.0)
    assert len(sim.lines("NIC repair detected")) == 2
    sim.link("qfe0", False)
    sim.advance(1.0)
    sim.link("qfe0", True)
    assert sim.messages()[-2:] == [
        "The link has come up on qfe0",
        "The link has come up on qfe0 more than 2 times in the last minute; "
        "disabling failback until it stabilizes",
    ]
    assert sim.state("qfe0") is State.FAILED
    assert sim.home_of(data_ip(0)) == "qfe1"
    sim.run_until(ups[0] + 60.0 - 0.001)
    assert len(sim.lines("NIC repair detected")) == 2
    assert sim.home_of(data_ip(0)) == "qfe1"
    line = sim.run_until_log("NIC repair detected on qfe0", 1.0)
    assert line.time == pytest.approx(ups[0] + 60.0)
    assert sim.messages()[-1] == "Successfully failed back to NIC qfe0"
    assert len(sim.lines("more than 2 times")) == 1


def test_two_link_ups_in_a_minute_do_not_hold_the_repair() -> None:
    sim = started(2, link_only=True, warmup=1.0)
    for _ in range(2):
        sim.link("qfe0", False)
        sim.link("qfe0", True)
        assert sim.messages()[-1] == "Successfully failed back to NIC qfe0"
    assert not sim.lines("more than")


def test_link_down_of_the_last_member_is_a_group_failure() -> None:
    sim = started(2, link_only=True)
    sim.link("qfe1", False)
    sim.link("qfe0", False)
    assert sim.messages()[-2:] == ["The link has gone down on qfe0",
                                   f"All Interfaces in group {GROUP} have failed"]
    assert sim.home_of(data_ip(0)) == "qfe0"
    sim.link("qfe0", True)
    assert f"At least 1 interface (qfe0) of group {GROUP} has repaired" in sim.messages()


@pytest.mark.parametrize("link_only", [False, True])
def test_a_nic_whose_link_is_down_at_start_fails_over(link_only: bool) -> None:
    """Regression: the first NIC found with its link down at start was judged before
    the others were adopted: a group failure instead of a NIC failure and failover."""
    cfg = Config((make_nic(0, link_up=False, test=not link_only), make_nic(1, test=not link_only)))
    sim = Sim(cfg)
    sim.start()
    assert sim.messages()[:3] == [
        "The link has gone down on qfe0",
        f"NIC failure detected on qfe0 of group {GROUP}",
        "Successfully failed over from NIC qfe0 to NIC qfe1",
    ]
    assert sim.state("qfe1") is State.RUNNING
    assert sim.home_of(data_ip(0)) == "qfe1"


def test_a_nic_whose_link_is_down_at_start_later_in_the_list_fails_over() -> None:
    cfg = Config((make_nic(0), make_nic(1, link_up=False)))
    sim = Sim(cfg)
    sim.start()
    assert sim.messages() == [
        "The link has gone down on qfe1",
        f"NIC failure detected on qfe1 of group {GROUP}",
        "Successfully failed over from NIC qfe1 to NIC qfe0",
    ]
    assert sim.home_of(data_ip(1)) == "qfe0"


def test_a_nic_joining_a_failed_group_is_failed_at_once() -> None:
    sim = started(2)
    sim.router_down()
    sim.run_until_log("All Interfaces", 2.0)
    sim.plug(make_nic(2))
    assert sim.state("qfe2") is State.FAILED
    assert sim.machine.config.get("qfe2") is not None
    assert sim.machine.config.get("qfe2").failed  # type: ignore[union-attr]
    sim.router_down(False)
    sim.advance(3.0)
    assert all(sim.state(n) is State.RUNNING for n in ("qfe0", "qfe1", "qfe2"))


def test_a_nic_joining_a_failed_group_gets_the_failed_flag_written() -> None:
    """Regression: the FAILED flag was set in the machine's view only, and reached
    the store/kernel at the next rescan."""
    sim = started(2)
    sim.router_down()
    sim.run_until_log("All Interfaces", 2.0)
    sim.plug(make_nic(2))
    assert sim.itf("qfe2").failed


def test_a_missing_test_address_is_reported_once_after_twenty_seconds() -> None:
    sim = Sim(make_group(2, link_only=True))
    sim.start()
    sim.advance(19.9)
    assert not sim.lines("No test address")
    sim.advance(30.0)
    assert [(ln.time, ln.message) for ln in sim.lines("No test address")] == [
        (120.0, f"No test address configured on interface {n}; disabling probe-based failure detection on it")
        for n in ("qfe0", "qfe1")]
    q0 = sim.itf("qfe0").with_logical(Logical(V4, 1, IPv4Interface(f"{test_ip(0)}/24"), up=True,
                                                deprecated=True, nofailover=True))
    sim.plug(q0)
    assert sim.messages()[-1] == ("Test address now configured on interface qfe0; "
                                  "enabling probe-based failure detection on it")
    t = sim.now
    sim.advance(1.0)
    assert unicast(sim, "qfe0", since=t)


def test_a_missing_test_address_is_timed_from_the_nics_appearance() -> None:
    """Regression: TESTADDR_CONF_TIME was counted from the last state change."""
    sim = Sim(make_group(2, link_only=True))
    sim.start()
    sim.advance(10.0)
    sim.link("qfe0", False)
    sim.link("qfe0", True)  # qfe0 failed and repaired at 110
    sim.advance(11.0)
    assert not sim.lines("No test address")
    sim.plug(sim.itf("qfe1"))  # something makes the daemon rescan at 121
    assert {ln.message.split()[6].rstrip(";") for ln in sim.lines("No test address")} == {"qfe0", "qfe1"}


def test_a_duplicate_test_address_disables_probing_on_the_duplicate() -> None:
    """Regression: there was no check_addr_unique at all (§2.3)."""
    q1 = make_nic(1)
    q1 = q1.with_logical(replace(q1.logicals[1], address=IPv4Interface(f"{test_ip(0)}/24")))
    sim = Sim(Config((make_nic(0), q1)))
    sim.start()
    sim.advance(2.0)
    assert any(m.startswith(f"Test address {test_ip(0)} is not unique in group; disabling probe-based "
                            "failure detection on ") for m in sim.messages())
    assert not (sim.probes("qfe0") and sim.probes("qfe1"))


def test_a_late_tick_skips_the_missed_probes() -> None:
    sim = started(2)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    due = inst.next_send
    assert due is not None
    sent = len(sim.probes("qfe0"))
    sim.now = due + 10 * interval(700)  # the daemon was asleep for ten intervals
    sim.feed(Tick(sim.now))
    assert len(sim.probes("qfe0")) == sent + 1
    assert inst.missed_total >= 9
    assert inst.next_send is not None and sim.now < inst.next_send <= sim.now + 2 * interval(700)


# -- quiet period (§2.5) ---------------------------------------------------------------------


def test_losses_in_the_quiet_period_do_not_fail_the_nic() -> None:
    sim = Sim(make_group(2), quiet_period=5.0)
    sim.silent("qfe0")  # never answers, from the start
    sim.start()
    sim.run_until(sim.now + 5.0 - 0.01)
    assert not sim.lines("NIC failure")
    assert sim.home_of(data_ip(0)) == "qfe0"
    assert sim.machine.phyints["qfe0"].instances[V4].consecutive_losses() >= 5
    line = sim.run_until_log("NIC failure detected on qfe0", 0.5)
    assert line.time >= 105.0


def test_an_ack_of_one_of_the_last_two_probes_ends_the_quiet_period() -> None:
    sim = Sim(make_group(2), quiet_period=40.0)
    sim.start()
    sim.advance(1.0)
    assert sim.machine.phyints["qfe0"].instances[V4].quiet_over
    sim.silent("qfe0")
    t = sim.now
    line = sim.run_until_log("NIC failure detected on qfe0", 2.0)
    assert line.time - t <= 0.7


def test_only_an_ack_of_the_last_two_probes_ends_the_quiet_period() -> None:
    sim = Sim(make_group(2), quiet_period=40.0)
    sim.silent("qfe0")  # the test answers for qfe0
    sim.start()
    sim.advance(0.6)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    assert len(inst.order) >= 4 and not inst.quiet_over
    old = inst.history[inst.order[-3]]
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, old.seq, old.target, 1, ProbeKind.UNICAST))
    assert old.status is SlotStatus.ACKED
    assert not inst.quiet_over and inst.in_quiet_period(sim.now, 40.0)
    recent = inst.history[inst.order[-2]]
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, recent.seq, recent.target, 1, ProbeKind.UNICAST))
    assert inst.quiet_over and not inst.in_quiet_period(sim.now, 40.0)
    # From now on losses count: five of them fail the NIC long before 40 s.
    line = sim.run_until_log("NIC failure detected on qfe0", 1.0)
    assert line.time < 102.0


# -- group failure (§2.7) ------------------------------------------------------------------


def test_group_failure_logs_once_moves_nothing_and_fails_every_member() -> None:
    sim = started(3)
    before = placement(sim.truth)
    executes = len(sim.applied)
    sim.router_down()
    sim.advance(3.0)
    assert sim.lines("All Interfaces")[0].message == f"All Interfaces in group {GROUP} have failed"
    assert len(sim.lines("All Interfaces")) == 1
    assert not sim.lines("NIC failure detected")
    assert not sim.lines("Successfully")
    assert placement(sim.truth) == before
    for ap in sim.applied[executes:]:
        assert placement(ap.execute.config) == before
    assert all(sim.state(n) is State.FAILED and sim.itf(n).failed for n in ("qfe0", "qfe1", "qfe2"))
    assert sim.machine.groups[GROUP].failed
    group = sim.machine.snapshot().groups[GROUP]
    assert (group.state, group.members) == ("failed", ("qfe0", "qfe1", "qfe2"))


@pytest.mark.parametrize("offset_ms", range(0, 100, 7))
def test_a_router_death_with_replies_in_flight_is_a_group_failure(offset_ms: int) -> None:
    """Regression (the peers bench under an emulated CPU): replies to probes sent just
    before the router died arrive after it.  mpd_probe.c compares the other members'
    last success with the time the first probe was *declared lost* (``pf_tff`` =
    ``pr_time_lost``, send + CRTT); compared with its send time, such a reply counted as
    "after the first loss" and a NIC was failed over instead of a group failure."""
    sim = Sim(make_group(2), fdt_ms=700, quiet_period=1.0)
    for name in ("qfe0", "qfe1"):
        sim.net.nic(name).rtt_ms = 60  # most of the 100 ms probe interval
    sim.start()
    sim.advance(2.1 + offset_ms / 1000.0)  # every phase of the two NICs' probes
    before = placement(sim.truth)
    sim.router_down()
    sim.advance(3.0)
    assert not sim.lines("NIC failure detected"), [ln.message for ln in sim.lines("")]
    assert sim.lines("All Interfaces")
    assert placement(sim.truth) == before


def test_group_recovery_is_announced_by_the_first_repaired_member() -> None:
    sim = started(2)
    before = placement(sim.truth)
    sim.router_down()
    sim.advance(2.0)
    sim.router_down(False)
    line = sim.run_until_log("has repaired", 3.0)
    first = sim.lines("NIC repair detected")[0].message.split()[4]
    assert line.message == f"At least 1 interface ({first}) of group {GROUP} has repaired"
    sim.advance(3.0)
    assert len(sim.lines("has repaired")) == 1
    assert all(sim.state(n) is State.RUNNING for n in ("qfe0", "qfe1"))
    assert placement(sim.truth) == before
    assert sim.machine.snapshot().groups[GROUP].state == "ok"


def test_group_recovery_does_not_bounce_addresses_of_members_that_answer_again() -> None:
    """Regression: invariant 2 moved a FAILED member's addresses without its failure
    test, bouncing those of members about to repair after a group failure."""
    sim = started(2)
    sim.router_down()
    sim.advance(2.0)
    sim.router_down(False)
    sim.advance(3.0)
    assert not sim.lines("Successfully failed over")
    assert all(placement(ap.execute.config) == placement(ap.before) for ap in sim.applied)
    # Each repair still tries a failback, and says so as Solaris does (§2.8).
    assert {ln.message for ln in sim.lines("Successfully failed back")} == {
        "Successfully failed back to NIC qfe0", "Successfully failed back to NIC qfe1"}


def test_a_failed_member_that_still_fails_is_emptied_after_group_recovery() -> None:
    # The legitimate side of invariant 2: qfe0 stays broken, qfe1 comes back.
    sim = started(2)
    sim.router_down()
    sim.advance(2.0)
    sim.silent("qfe0")
    sim.router_down(False)
    sim.run_until_log("At least 1 interface (qfe1)", 3.0)
    sim.advance(1.0)
    assert sim.home_of(data_ip(0)) == "qfe1"
    assert sim.state("qfe0") is State.FAILED


# -- offline (§2.9) ------------------------------------------------------------------------


def test_offline_moves_the_addresses_and_downs_every_logical() -> None:
    sim = started(2)
    reply = sim.offline("qfe0")
    assert reply is not None and (reply.mpathd_error, reply.sys_error) == (MPATHD_SUCCESS, 0)
    assert sim.messages()[-1] == "Successfully failed over from NIC qfe0 to NIC qfe1"
    assert sim.state("qfe0") is State.OFFLINE
    q0 = sim.itf("qfe0")
    assert q0.offline and not q0.failed
    assert all(not lg.up for lg in q0.logicals)
    assert sim.home_of(data_ip(0)) == "qfe1"
    name, lg = logical_of(sim, test_ip(0))
    assert name == "qfe0" and lg.unit == 1 and not lg.up
    assert sim.machine.snapshot().interfaces["qfe0"].state == "offline"


def test_offline_of_the_last_usable_nic_is_refused() -> None:
    sim = started(2)
    assert sim.offline("qfe0") is not None
    before = placement(sim.truth)
    reply = sim.offline("qfe1")
    assert reply is not None and reply.mpathd_error == MPATHD_MIN_RED_ERROR == 2
    assert sim.state("qfe1") is State.RUNNING
    assert placement(sim.truth) == before
    assert all(lg.up for lg in sim.itf("qfe1").logicals)


def test_offline_refused_when_the_only_other_member_has_failed() -> None:
    sim = started(2)
    sim.silent("qfe1")
    sim.run_until_log("Successfully failed over from NIC qfe1 to NIC qfe0", 2.0)
    reply = sim.offline("qfe0")
    assert reply is not None and reply.mpathd_error == MPATHD_MIN_RED_ERROR
    assert sim.state("qfe0") is State.RUNNING


def test_offline_of_a_failed_nic_that_hosts_nothing_succeeds() -> None:
    sim = started(2)
    sim.silent("qfe0")
    sim.run_until_log("Successfully failed over", 2.0)
    reply = sim.offline("qfe0")
    assert reply is not None and reply.mpathd_error == MPATHD_SUCCESS
    assert sim.state("qfe0") is State.OFFLINE


def test_offline_of_an_untracked_nic_is_einval() -> None:
    sim = started(2)
    reply = sim.offline("qfe9")
    assert reply is not None and (reply.mpathd_error, reply.sys_error) == (MPATHD_SYS_ERROR, EINVAL)


def test_undo_offline_fails_back_even_with_failback_no() -> None:
    sim = started(2, failback=False)
    sim.offline("qfe0")
    sim.advance(1.0)
    reply = sim.undo_offline("qfe0")
    assert reply is not None and (reply.mpathd_error, reply.sys_error) == (MPATHD_SUCCESS, 0)
    assert sim.messages()[-1] == "Successfully failed back to NIC qfe0"
    assert sim.state("qfe0") is State.RUNNING
    q0 = sim.itf("qfe0")
    assert not q0.offline and not q0.failed
    name, lg = logical_of(sim, data_ip(0))
    assert (name, lg.unit, lg.up) == ("qfe0", 0, True)
    name, lg = logical_of(sim, test_ip(0))
    assert (name, lg.unit, lg.up) == ("qfe0", 1, True)
    t = sim.now
    sim.advance(1.0)
    assert len(unicast(sim, "qfe0", since=t)) >= 8
    assert not sim.lines("NIC failure")


def test_undo_offline_with_the_link_down_leaves_the_nic_failed_until_it_repairs() -> None:
    sim = started(2)
    sim.offline("qfe0")
    sim.link("qfe0", False)
    reply = sim.undo_offline("qfe0")
    assert reply is not None and reply.mpathd_error == MPATHD_SUCCESS
    assert sim.state("qfe0") is State.FAILED
    assert sim.itf("qfe0").failed and not sim.itf("qfe0").offline
    assert sim.home_of(data_ip(0)) == "qfe1"
    sim.link("qfe0", True)
    sim.run_until_log("Successfully failed back to NIC qfe0", 3.0)
    assert sim.home_of(data_ip(0)) == "qfe0"


@pytest.mark.parametrize("name", ["qfe0", "qfe9"])
def test_undo_offline_of_a_nic_that_is_not_offline_is_einval(name: str) -> None:
    sim = started(2)
    before = sim.truth
    reply = sim.undo_offline(name)
    assert reply is not None and (reply.mpathd_error, reply.sys_error) == (MPATHD_SYS_ERROR, EINVAL)
    assert sim.truth == before


# -- replies (§2.5 "Reply handling") --------------------------------------------------------


def _silenced(sim: Sim) -> None:
    """qfe0 stops answering by itself; the test answers for it."""
    sim.silent("qfe0")


def test_a_late_reply_flips_a_lost_probe_to_acked() -> None:
    sim = started(2)
    _silenced(sim)
    sim.advance(0.35)  # three or four losses: not yet a failure
    inst = sim.machine.phyints["qfe0"].instances[V4]
    settled = [inst.history[q] for q in inst.order if inst.history[q].status is not SlotStatus.UNACKED]
    slot = settled[-1]  # the newest probe given up on
    before = slot.status
    assert before is SlotStatus.LOST
    assert inst.consecutive_losses() >= 3
    lost, acked = inst.lost_total, inst.acked_total
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, slot.seq, slot.target, 2, ProbeKind.UNICAST))
    assert slot.status is SlotStatus.ACKED
    assert (inst.lost_total, inst.acked_total) == (lost - 1, acked + 1)
    assert not sim.messages("debug")
    # It counts as a success: the newest settled probe is acknowledged now.
    assert inst.consecutive_losses() == 0 and inst.consecutive_acks() == 1


def test_out_of_window_fake_and_duplicate_replies_are_ignored() -> None:
    sim = started(2, quiet_period=100.0)
    _silenced(sim)
    sim.advance(0.25)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    snxt = inst.snxt
    slot = inst.history[inst.order[-1]]
    status = slot.status
    # not sent yet
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, snxt, slot.target, 1, ProbeKind.UNICAST))
    assert sim.messages()[-1] == f"out of window probe seq {snxt} snxt {snxt} on qfe0 from {slot.target}"
    # wrong source
    other = ROUTER1 if slot.target == ROUTER2 else ROUTER2
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, slot.seq, other, 1, ProbeKind.UNICAST))
    assert f"Fake probe reply seq {slot.seq} snxt {snxt} on qfe0 from {other}" in sim.messages()[-1]
    assert slot.status is status
    # the real one, then again
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, slot.seq, slot.target, 1, ProbeKind.UNICAST))
    assert slot.status is SlotStatus.ACKED
    acked = inst.acked_total
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, slot.seq, slot.target, 1, ProbeKind.UNICAST))
    dup = f"Duplicate probe reply seq {slot.seq} snxt {snxt} on qfe0 from {slot.target}"
    assert dup in sim.messages()[-1]
    assert inst.acked_total == acked
    assert [ln.level for ln in sim.logs] == ["debug"] * 3


def test_replies_older_than_the_window_are_out_of_window() -> None:
    sim = started(2, warmup=6.0)  # more than 52 probes per NIC
    inst = sim.machine.phyints["qfe0"].instances[V4]
    assert inst.sent_total > PROBE_STATS_COUNT
    old = (inst.snxt - PROBE_STATS_COUNT - 1) % SEQ_MOD  # sent, and fallen out of the window
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, old, ROUTER2, 1, ProbeKind.UNICAST))
    assert sim.messages()[-1] == f"out of window probe seq {old} snxt {inst.snxt} on qfe0 from {ROUTER2}"


def test_fake_and_duplicate_traces_use_the_solaris_format() -> None:
    """Regression: the 'probe status %d ' prefix was missing."""
    sim = started(2, quiet_period=100.0)
    _silenced(sim)
    sim.advance(0.25)
    inst = sim.machine.phyints["qfe0"].instances[V4]
    slot = inst.history[inst.order[-1]]
    other = ROUTER1 if slot.target == ROUTER2 else ROUTER2
    sim.feed(ProbeReplied(sim.now, "qfe0", V4, slot.seq, other, 1, ProbeKind.UNICAST))
    assert re.fullmatch(rf"probe status \d+ Fake probe reply seq {slot.seq} snxt {inst.snxt} on qfe0 "
                        rf"from {other}", sim.messages()[-1])


# -- random first sequence numbers (issue 20) -------------------------------------------------


def with_secret(secret: bytes, count: int = 2) -> Sim:
    """A group whose machine has ``secret`` for its first sequence numbers, as the daemon has a random one."""
    sim = Sim(make_group(count))
    sim.machine = Machine(sim.settings, sim.timing, seed=7, seq_secret=secret)
    return sim


def first_unicast(sim: Sim, name: str) -> int:
    return next(s.probe.seq for s in sim.probes(name) if s.probe.kind is ProbeKind.UNICAST)


def test_first_sequence_numbers_come_from_the_secret_not_from_1() -> None:
    firsts: list[int] = []
    for n in range(48):
        secret = b"daemon-%d" % n
        sim = with_secret(secret)
        sim.start()
        sim.advance(0.3)
        # One serial per probing instance made, in the order they are made (qfe0, then qfe1).
        mine = (first_unicast(sim, "qfe0"), first_unicast(sim, "qfe1"))
        assert mine == (first_seq(secret, 0), first_seq(secret, 1))
        firsts += mine
    # illumos starts every instance at 1; here any of 2**16 values, each instance its own.
    assert len(set(firsts)) >= len(firsts) - 4
    assert firsts.count(1) <= 1
    assert min(firsts) < SEQ_MOD // 4 and max(firsts) >= 3 * SEQ_MOD // 4


def test_first_sequence_numbers_are_a_pure_function_of_the_secret() -> None:
    """The machine reads no random source: one secret, one run; the daemon passes a random secret."""
    runs = []
    for secret in (b"same", b"same", b"other"):
        sim = with_secret(secret)
        sim.start()
        sim.advance(0.3)
        runs.append(first_unicast(sim, "qfe0"))
    assert runs[0] == runs[1] != runs[2]
    # Without a secret (tests), one derived from the seed.
    seeded = [Sim(make_group(2), seed=seed) for seed in (7, 8)]
    for sim in seeded:
        sim.start()
        sim.advance(0.3)
    assert first_unicast(seeded[0], "qfe0") == first_seq(b"7", 0) != first_unicast(seeded[1], "qfe0")


def test_a_new_instance_gets_a_new_first_sequence_number() -> None:
    sim = with_secret(b"renew")
    sim.start()
    sim.advance(0.5)
    before = sim.machine.phyints["qfe0"].instances[V4]
    itf = sim.itf("qfe0")
    # Another test address: the instance is made anew (serial 2: qfe0 and qfe1 had 0 and 1).
    moved = [replace(lg, address=IPv4Interface("192.0.2.30/24")) if lg.address is not None
             and lg.address.ip == test_ip(0) else lg for lg in itf.logicals]
    sim.plug(replace(itf, logicals=tuple(moved)))
    sim.advance(0.5)
    after = sim.machine.phyints["qfe0"].instances[V4]
    assert after is not before and after.test_address == IPv4Address("192.0.2.30")
    assert after.order[0] == first_seq(b"renew", 2) != before.order[0]


def wrap_secret() -> bytes:
    """A secret whose first instance (qfe0) starts 17 to 22 probes before the wrap at 2**16."""
    return next(secret for n in range(1_000_000)
                if SEQ_MOD - 22 <= first_seq(secret := b"wrap-%d" % n, 0) <= SEQ_MOD - 17)


def test_sequence_numbers_wrap_at_16_bits_for_replies_losses_and_the_probe_stream() -> None:
    sim = with_secret(wrap_secret())
    tracker = ProbeTracker()
    sim.start()
    tracker.start(sim.machine.phyints, now=sim.now, wall=0.0)
    published: list[int] = []
    inst = sim.machine.phyints["qfe0"].instances[V4]
    start = inst.snxt
    # Healthy up to two probes before the wrap...
    while inst.snxt != SEQ_MOD - 2:
        sim.advance(0.005)
        published += [e["probe"] for e in tracker.changes(sim.machine.phyints, now=sim.now, wall=0.0)
                      if e["interface"] == "qfe0"]
    assert sim.state("qfe0") is State.RUNNING and inst.consecutive_acks() >= 10
    # ...then silent: the five losses that fail it are 65534, 65535, 0, 1, 2.
    sim.silent("qfe0")
    t = sim.now
    line = sim.run_until_log("NIC failure detected on qfe0", 2 * 0.7)
    assert line.time - t <= 0.7
    published += [e["probe"] for e in tracker.changes(sim.machine.phyints, now=sim.now, wall=0.0)
                  if e["interface"] == "qfe0"]
    lost = [seq for seq in inst.order if inst.history[seq].status is SlotStatus.LOST]
    assert lost == [SEQ_MOD - 2, SEQ_MOD - 1, 0, 1, 2]
    # A late reply to the probe before the wrap is in the window (not "out of
    # window" because 65535 > snxt), and flips it to acknowledged.
    target = inst.history[SEQ_MOD - 1].target
    verdict, _ = inst.on_reply(SEQ_MOD - 1, target, sim.now)
    assert verdict is Reply.LATE
    assert inst.on_reply((inst.snxt + 5) % SEQ_MOD, target, sim.now)[0] is Reply.OUT_OF_WINDOW
    too_old = (inst.snxt - PROBE_STATS_COUNT - 1) % SEQ_MOD
    assert inst.on_reply(too_old, target, sim.now)[0] is Reply.OUT_OF_WINDOW
    # Repair counts the acknowledgements across the wrap like any others.
    sim.silent("qfe0", False)
    sim.run_until_log("NIC repair detected on qfe0", 3 * 0.7)
    published += [e["probe"] for e in tracker.changes(sim.machine.phyints, now=sim.now, wall=0.0)
                  if e["interface"] == "qfe0"]
    # ipmpstat -p: one event per settled probe, in the order they were sent,
    # whatever the numbers (the late reply above is published a second time).
    sent = [(start + k) % SEQ_MOD for k in range((inst.snxt - start) % SEQ_MOD)]
    firsts = list(dict.fromkeys(published))
    assert firsts == sent[:len(firsts)] and len(firsts) >= len(sent) - 2
    assert published.count(SEQ_MOD - 1) == 2


# -- CRTT and adaptive FDT (§2.5) -------------------------------------------------------------


def test_crtt_first_sample_is_three_times_the_rtt() -> None:
    t = Target(ROUTER1, True)
    assert t.crtt_ms is None
    t.fold(40)
    assert t.crtt_ms == 120


def test_crtt_follows_jacobson_karels_in_integer_ms() -> None:
    t = Target(ROUTER1, True)
    sa = sd = 0
    for k, m in enumerate([10, 20, 2, 2, 50, 7, 7, 7, 0, 30]):
        t.fold(m)
        if k == 0:
            sa, sd = 8 * m, 2 * m
        else:
            err = m - sa // 8
            sa = max(sa + err, 0)
            sd = sd + abs(err) - sd // 4
        assert t.crtt_ms == sa // 8 + sd
    # the first three by hand: 30, then 11 + 25 = 36, then 10 + 28 = 38
    u = Target(ROUTER1, True)
    got = []
    for m in (10, 20, 2):
        u.fold(m)
        got.append(u.crtt_ms)
    assert got == [30, 36, 38]


def test_first_reply_sets_the_crtt_of_its_target() -> None:
    sim = Sim(make_group(2))
    sim.net.nic("qfe0").rtt_ms = 9
    sim.start()
    inst = sim.machine.phyints["qfe0"].instances[V4]
    while not any(t.crtt_ms is not None for t in inst.targets):
        sim.advance(0.01)
    assert sorted(t.crtt_ms for t in inst.targets if t.crtt_ms is not None) == [27]


def test_a_slow_target_raises_the_group_fdt() -> None:
    sim = Sim(make_group(2))
    sim.net.nic("qfe0").rtt_ms = 60  # alone a CRTT of 180 ms > interval 100 ms: suspect
    sim.start()
    line = sim.run_until_log("Cannot meet", 1.0)
    # The first sample is deferred, the second folds both: CRTT 60 + 90 = 150,
    # interval 300 ms, FDT 2100 ms.
    assert line.message == ('Cannot meet requested failure detection time of 700 ms on (inet qfe0) '
                            f'new failure detection time for group "{GROUP}" is 2100 ms')
    assert sim.machine.groups[GROUP].fdt_ms == 2100
    sim.advance(3.0)
    assert len(sim.lines("Cannot meet")) == 1  # the CRTT only comes down from there


def test_fdt_is_improved_after_sixty_seconds_of_fast_replies() -> None:
    sim = Sim(make_group(2))
    sim.net.nic("qfe0").rtt_ms = 60
    sim.start()
    raised = sim.run_until_log("Cannot meet", 1.0).time
    sim.net.nic("qfe0").rtt_ms = 1
    sim.run_until(raised + 60.0 - 0.001)
    assert not sim.lines("Improved")
    line = sim.run_until_log("Improved", 2.0)
    assert re.fullmatch(rf'Improved failure detection time 1050 ms on \(inet qfe[01]\) for group "{GROUP}"',
                        line.message)
    line = sim.run_until_log("Improved failure detection time 700 ms", 2.0)
    assert sim.machine.groups[GROUP].fdt_ms == 700
    sim.advance(5.0)
    assert len(sim.lines("Improved")) == 2


def test_raised_fdt_sends_rtt_probes_between_failure_detection_probes() -> None:
    sim = Sim(make_group(2))
    sim.net.nic("qfe0").rtt_ms = 60
    sim.start()
    raised = sim.run_until_log("Cannot meet", 1.0).time
    sim.advance(5.0)
    later = [s.probe for s in sim.probes("qfe1", since=raised + 1.0)]
    kinds = {p.kind for p in later}
    assert kinds == {ProbeKind.UNICAST, ProbeKind.RTT}
    assert all(p.seq == 0 for p in later if p.kind is ProbeKind.RTT)
    fd = [s.time for s in sim.probes("qfe1", since=raised + 1.0) if s.probe.kind is ProbeKind.UNICAST]
    gaps = [b - a for a, b in itertools.pairwise(fd)]
    assert min(gaps) >= 0.36 - 0.1 - 1e-9  # group interval 360 ms, ticks every 100 ms


def test_a_second_suspect_sample_folds_both() -> None:
    """Regression: the deferred suspect sample was dropped instead of folded in."""
    sim = Sim(make_group(2))
    sim.start()
    sim.advance(2.0)  # RTT 1 ms: CRTT 3 on both targets
    inst = sim.machine.phyints["qfe0"].instances[V4]
    target = inst.target(ROUTER1)
    assert target is not None and target.crtt_ms == 3
    sim.net.rtt[("qfe0", ROUTER1)] = 90  # alone: CRTT 103 > interval 100, suspect
    line = sim.run_until_log("Cannot meet", 2.0)
    # 90 then 90 folded onto (sa 8, sd 2): CRTT 103, then 168 -> FDT 2 * 168 * 7
    assert line.message.endswith('is 2352 ms')


# -- restart safety and failed applies --------------------------------------------------------


def _after_failover_config() -> Config:
    """What the store and kernel hold after qfe0 failed over to qfe1."""
    q0, q1 = make_group(2).interfaces
    data0 = q0.logicals[0]
    q0 = replace(q0, failed=True, logicals=(Logical(V4, 0, nofailover=True), q0.logicals[1]))
    q1 = q1.with_logical(replace(data0, unit=2, home="qfe0", home_unit=0))
    return Config((q0, q1))


def test_restart_keeps_a_failed_nics_address_away_until_it_repairs() -> None:
    sim = Sim(_after_failover_config())
    sim.silent("qfe0")
    sim.start()
    assert sim.state("qfe0") is State.FAILED and sim.state("qfe1") is State.RUNNING
    sim.advance(25.0)  # through a rescan
    assert sim.home_of(data_ip(0)) == "qfe1"
    assert not sim.lines("NIC failure") and not sim.lines("Successfully")
    assert sim.itf("qfe0").failed
    sim.silent("qfe0", False)
    sim.run_until_log("NIC repair detected on qfe0", 3.0)
    assert sim.messages()[-1] == "Successfully failed back to NIC qfe0"
    name, lg = logical_of(sim, data_ip(0))
    assert (name, lg.unit, lg.home) == ("qfe0", 0, "")
    assert not sim.itf("qfe0").failed


def test_restart_announces_every_data_address() -> None:
    sim = Sim(_after_failover_config())
    sim.start()
    got = {a.ifname: set(a.addresses) for _, a in sim.announced}
    assert got == {"qfe1": {data_ip(0), data_ip(1)}}


def test_a_failed_apply_rolls_the_machine_back_and_is_retried() -> None:
    sim = started(2)
    sim.fail_executes = 1
    sim.silent("qfe0")
    first = sim.run_until_log("NIC failure detected on qfe0", 2.0)
    assert sim.messages()[-1] == "failed to apply the new configuration: injected failure"
    assert not sim.lines("Successfully")
    assert sim.state("qfe0") is State.RUNNING
    assert sim.machine.config.get("qfe0") == sim.itf("qfe0") and not sim.itf("qfe0").failed
    assert sim.home_of(data_ip(0)) == "qfe0"
    assert [(c.old, c.new) for c in sim.changes] == [(State.RUNNING, State.FAILED),
                                                      (State.FAILED, State.RUNNING)]
    # Still losing probes: the next verdict fails it over for real.
    sim.run_until_log("Successfully failed over from NIC qfe0 to NIC qfe1", 1.0)
    assert sim.now - first.time <= 0.7
    assert sim.home_of(data_ip(0)) == "qfe1"


def test_a_failed_apply_of_a_link_down_failure_is_retried() -> None:
    """Regression: the roll-back left a link-down NIC RUNNING, and link-down is judged
    only on the event, so it was never failed over."""
    sim = started(2)
    sim.fail_executes = 1
    sim.link("qfe0", False)
    assert "failed to apply the new configuration: injected failure" in sim.messages()
    sim.advance(25.0)  # past a rescan
    assert sim.state("qfe0") is State.FAILED
    assert sim.home_of(data_ip(0)) == "qfe1"
    assert sim.messages()[-1] == "Successfully failed over from NIC qfe0 to NIC qfe1"


def test_a_failed_apply_of_a_group_failure_rolls_the_group_state_back() -> None:
    """Regression: the roll-back restored phyint states but not Group.failed."""
    sim = started(2)
    sim.router_down()
    sim.fail_executes = 1
    sim.run_until_log("All Interfaces in group prod have failed", 2.0)
    assert sim.messages()[-1] == "failed to apply the new configuration: injected failure"
    states = {sim.state(n) for n in ("qfe0", "qfe1")}
    assert states == {State.RUNNING}
    assert not sim.machine.groups[GROUP].failed


def test_a_failed_offline_apply_replies_with_an_error_and_keeps_probing() -> None:
    sim = started(2)
    sim.fail_executes = 1
    reply = sim.offline("qfe0")
    assert reply is not None and reply.mpathd_error == MPATHD_SYS_ERROR
    assert sim.state("qfe0") is State.RUNNING
    assert sim.home_of(data_ip(0)) == "qfe0"
    t = sim.now
    sim.advance(1.0)
    assert unicast(sim, "qfe0", since=t)
    assert all(lg.up for lg in sim.itf("qfe0").logicals)


# -- TRANSITIONS ------------------------------------------------------------------------------


def test_set_state_refuses_a_transition_outside_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = started(2)
    pi = sim.machine.phyints["qfe0"]
    monkeypatch.setattr(core_mod, "TRANSITIONS", frozenset({(State.RUNNING, State.FAILED)}))
    with pytest.raises(AssertionError, match="illegal phyint transition"):
        sim.machine._set_state(pi, State.OFFLINE, sim.now)
    assert pi.state is State.RUNNING
    sim.machine._set_state(pi, State.FAILED, sim.now)
    assert sim.state("qfe0") is State.FAILED
    with pytest.raises(AssertionError):
        sim.machine._set_state(pi, State.RUNNING, sim.now)


def test_set_state_is_a_no_op_when_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = started(2)
    pi = sim.machine.phyints["qfe0"]
    since = pi.since
    monkeypatch.setattr(core_mod, "TRANSITIONS", frozenset())
    sim.machine._set_state(pi, State.RUNNING, since + 50.0)
    assert (pi.state, pi.since) == (State.RUNNING, since)


def test_transition_table_is_the_documented_one() -> None:
    assert frozenset({
        (State.RUNNING, State.FAILED), (State.FAILED, State.RUNNING),
        (State.RUNNING, State.OFFLINE), (State.FAILED, State.OFFLINE),
        (State.OFFLINE, State.RUNNING), (State.OFFLINE, State.FAILED),
    }) == TRANSITIONS


def test_every_state_change_in_a_busy_run_is_in_the_table() -> None:
    sim = started(3)
    sim.silent("qfe0")
    sim.advance(1.0)
    sim.offline("qfe1")
    sim.link("qfe2", False)
    sim.advance(1.0)
    sim.silent("qfe0", False)
    sim.link("qfe2", True)
    sim.advance(2.0)
    sim.undo_offline("qfe1")
    sim.advance(2.0)
    assert len(sim.changes) >= 5
    assert all((c.old, c.new) in TRANSITIONS for c in sim.changes)


# -- the harness itself -------------------------------------------------------------------


def test_simulator_applies_executes_like_the_kernel() -> None:
    sim = started(2)
    sim.silent("qfe0")
    sim.run_until_log("Successfully failed over", 2.0)
    ap = [a for a in sim.applied if a.ok][-1]
    assert isinstance(ap.execute, Execute) and set(ap.execute.names) == {"qfe0", "qfe1"}
    assert kernel_view(sim.truth) == kernel_view(sim.machine.config)
    assert sim.truth.get("qfe0") == sim.machine.config.get("qfe0")


def test_machine_defaults_are_the_solaris_constants() -> None:
    timing = Timing()
    assert (timing.quiet_period, timing.scan_interval, timing.testaddr_conf_time) == (40.0, 20.0, 20.0)
    m = Machine(Settings(), timing, seed=1)
    assert m.next_deadline() is None
    assert (phyint_mod.FDT_DIVISOR, phyint_mod.MIN_SETTLING_TIME, phyint_mod.LINK_UP_PERMIN,
            phyint_mod.LINK_UP_WINDOW) == (7, 60.0, 2, 60.0)


def test_probe_sources_are_the_test_addresses_of_the_subnet() -> None:
    sim = started(2)
    opened = {o.ifname: o.source for _, o in sim.opened}
    assert opened == {"qfe0": test_ip(0), "qfe1": test_ip(1)}
    probes = sim.machine.snapshot().interfaces["qfe0"].probes["inet"]
    assert probes.test_address == str(test_ip(0))
    assert probes.targets == (str(ROUTER2), str(ROUTER1))  # newest first


# -- inhomogeneous groups (§2.12) -------------------------------------------------------------


def test_a_member_missing_a_family_of_the_group_is_reported_once_and_recovers() -> None:
    q0, q1 = make_group(2).interfaces
    q1_v6 = replace(q1, plumbed=frozenset({Family.INET, Family.INET6}),
                    logicals=(*q1.logicals, Logical(Family.INET6, 0, up=True)))
    sim = Sim(Config((q0, q1_v6)))
    sim.start()
    warning = "NIC qfe0 of group prod is not plumbed for IPv6 and may affect failover capability"
    assert sim.messages().count(warning) == 1
    sim.advance(25.0)  # a rescan: still inhomogeneous, not said again
    assert sim.messages().count(warning) == 1
    sim.plug(replace(q0, plumbed=frozenset({Family.INET, Family.INET6}),
                     logicals=(*q0.logicals, Logical(Family.INET6, 0, up=True))))
    assert "NIC qfe0 is now consistent with group prod and failover capability is restored" in sim.messages()


def test_a_member_that_vanishes_from_the_kernel_is_forgotten_without_a_fault() -> None:
    """A NIC unplugged (gone from the kernel's dump, not only down) leaves the group.

    Regression: the group's homogeneity check ran before the vanished NIC was
    forgotten and asserted on its missing record, ending the step.
    """
    sim = started(3)
    gone = Config(tuple(i for i in sim.truth.interfaces if i.name != "qfe2"))
    sim.truth = gone
    sim.feed(Resync(sim.now, gone, sim.routers))
    assert "qfe2" not in sim.machine.phyints
    assert sim.lines("inet qfe2 has been removed from kernel")
    sim.advance(3.0)
    assert all(sim.state(n) is State.RUNNING for n in ("qfe0", "qfe1"))
