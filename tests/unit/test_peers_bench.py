"""bench/peers.py: the figures of a phase, medians over trials, the tables and issue 14's verdicts.

The guest program's own pure parts (its figures of a ping run, its row list)
are checked here too: the host and the guest must agree on rows, phases and
the ping interval, or the tables would name the wrong things.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

from bench import peers
from bench.peers import (
    Spread,
    collect,
    first_reply,
    longest_silence,
    lost,
    ratio,
    report_text,
    spread,
    verdicts,
)
from tests.vm.guest import Guest
from tests.vm.image import Disk

REPO = Path(__file__).resolve().parents[2]
GUEST = REPO / "tests/vm/guest_files/peers/usr/local/libexec/ipmp-vm/peers_bench.py"
#: The guest programs' library (/usr/local/lib/ipmp-vm in the guest), which the program imports.
GUEST_LIB = REPO / "tests/vm/guest_files/common/usr/local/lib/ipmp-vm"


def _guest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peers_bench_guest", GUEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if str(GUEST_LIB) not in sys.path:
        sys.path.append(str(GUEST_LIB))
    spec.loader.exec_module(module)
    return module


def phase(row: str, name: str, trial: int = 1, *, lost_: int = 0, silences: list[list[int]] | None = None,
          recovered: bool = True, tail_ms: int = 5, longest_ms: int = 10, moves: int = 0) -> dict[str, Any]:
    return {"kind": "phase", "row": row, "phase": name, "trial": trial, "lost": lost_,
            "silences_ms": silences or [], "recovered": recovered, "tail_ms": tail_ms,
            "longest_ms": longest_ms, "moves": moves}


# --------------------------------------------------------------------------
# One phase
# --------------------------------------------------------------------------


def test_first_reply_is_the_end_of_the_outage_that_holds_the_fault() -> None:
    m = phase("r", "carrier", silences=[[-20, 130, 14], [2000, 2050, 4]])
    assert first_reply(m) == pytest.approx(0.13)


def test_an_outage_that_begins_well_after_the_fault_is_not_its_own() -> None:
    # No outage at the fault; a later one (a later action of the row) is not the fault's.
    assert first_reply(phase("r", "carrier", silences=[[1500, 1560, 5]])) == 0.0
    # Within ONSET_MS of the fault it is: a reply in flight can land just after the guest saw it.
    assert first_reply(phase("r", "carrier", silences=[[peers.ONSET_MS, 400, 29]])) == pytest.approx(0.4)


def test_late_replies_are_jitter_not_an_outage() -> None:
    # A 300 ms silence at the fault in which no ping was lost: replies came late, all answered.
    m = phase("r", "carrier", silences=[[-20, 280, 0], [500, 620, 11]])
    assert first_reply(m) == 0.0
    assert longest_silence(m) == pytest.approx(0.12)
    assert longest_silence(phase("r", "carrier-failback", silences=[[10, 400, 0]])) == 0.0


def test_a_phase_that_begins_in_an_outage_counts_from_the_ping_start() -> None:
    # router-restore after a bond went down: the outage starts before the fault (the undo).
    assert first_reply(phase("r", "router-restore", silences=[[-1100, 250, 134]])) == pytest.approx(0.25)


def test_not_recovered_has_no_first_reply_and_lost_is_a_lower_bound() -> None:
    m = phase("r", "silent", lost_=3, recovered=False, tail_ms=6500, silences=[[-10, 6490, 3]])
    assert first_reply(m) is None
    assert longest_silence(m) is None
    assert lost(m) == (3 + 650, True)
    assert lost(phase("r", "silent", lost_=7)) == (7, False)


def test_longest_outage() -> None:
    m = phase("r", "carrier-failback", silences=[[-300, -200, 9], [100, 240, 13], [900, 950, 0]])
    assert longest_silence(m) == pytest.approx(0.14)


# --------------------------------------------------------------------------
# Trials
# --------------------------------------------------------------------------


def test_median_and_range_of_three_trials() -> None:
    s = spread([0.13, 0.10, 0.40])
    assert s.median == pytest.approx(0.13)
    assert s.cell(" s") == "0.13 s (0.10-0.40)"
    assert spread([0.5]).cell(" s") == "0.50 s"


def test_a_trial_that_never_recovered_is_infinite_not_dropped() -> None:
    s = spread([0.2, None, 0.3])
    assert s.median == pytest.approx(0.3)
    assert s.cell(" s") == "0.30 s (0.20-∞)"
    assert spread([None, None, 0.3]).cell(" s") == "not recovered (0.30-∞)"


def test_even_number_of_trials_takes_the_mean_of_the_middle_two() -> None:
    assert spread([1.0, 2.0, 3.0, 10.0]).median == pytest.approx(2.5)
    assert math.isinf(spread([1.0, None]).median)


def test_a_median_that_leans_on_a_lower_bound_says_so() -> None:
    s = Spread((800.0, 5.0, 810.0), (True, False, True))
    assert s.cell(digits=0) == "≥ 800 (5-810)"
    assert Spread((4.0, 5.0, 810.0), (False, False, True)).cell(digits=0) == "5 (4-810)"


def test_ratio_of_medians() -> None:
    assert ratio(0.2, 0.1) == "2.0x"
    assert ratio(math.inf, 0.1) == "∞"
    assert ratio(math.inf, math.inf) == "—"
    assert ratio(0.1, math.inf) == "0x"
    assert ratio(0.0, 0.0) == "="
    assert ratio(0.1, None) == "—"


# --------------------------------------------------------------------------
# A whole run: tables and verdicts
# --------------------------------------------------------------------------

PEER_ROWS = ("bonding miimon=10", "bonding arp_interval=100")
IPMP_ROWS = ("ipmp link-only", "ipmp FDT 1 s", "ipmp FDT 100 ms")


def run(*, ipmp_carrier_ms: int = 40, ipmp_silent_ms: tuple[int, int] = (600, 90),
        ipmp_router_moves: int = 0, trials: int = 3) -> list[dict[str, Any]]:
    """A synthetic run of five rows; ipmp's figures as given, the peers' fixed."""
    rows = (*PEER_ROWS, *IPMP_ROWS)
    msgs: list[dict[str, Any]] = [{"kind": "start", "rows": list(rows), "trials": trials, "windows": {}}]
    for row in rows:
        for t in range(1, trials + 1):
            ipmp = row.startswith("ipmp")
            carrier_ms = ipmp_carrier_ms if ipmp else 60 + 10 * t
            msgs.append(phase(row, "carrier", t, lost_=carrier_ms // 10,
                              silences=[[-5, carrier_ms, carrier_ms // 10]], moves=1))
            msgs.append(phase(row, "carrier-failback", t, moves=1))
            if row == "ipmp FDT 1 s":
                silent = phase(row, "silent", t, lost_=60, silences=[[-5, ipmp_silent_ms[0], 60]])
            elif row == "ipmp FDT 100 ms":
                silent = phase(row, "silent", t, lost_=9, silences=[[-5, ipmp_silent_ms[1], 9]])
            elif "arp" in row:
                silent = phase(row, "silent", t, lost_=20, silences=[[-5, 210, 20]])
            else:  # a link monitor does not see it
                silent = phase(row, "silent", t, lost_=0, recovered=False, tail_ms=7000,
                               silences=[[-5, 6995, 0]])
            msgs.append(silent)
            msgs.append(phase(row, "silent-failback", t))
            if "arp" in row:  # the ARP monitor takes the bond down: the peer is cut off
                msgs.append(phase(row, "router", t, lost_=0, recovered=False, tail_ms=7700,
                                  silences=[[290, 7990, 0]]))
                msgs.append(phase(row, "router-restore", t, lost_=100, silences=[[-1100, 200, 100]], moves=1))
            else:
                moves = ipmp_router_moves if row.startswith("ipmp FDT") and t == 2 else 0
                # A late burst of replies: jitter, no outage.
                msgs.append(phase(row, "router", t, moves=moves, silences=[[300, 420, 0]]))
                msgs.append(phase(row, "router-restore", t, moves=moves))
            msgs.append({"kind": "trial", "row": row, "trial": t, "back_on_primary": True,
                         "daemon_cpu_s": 0.0 if row.startswith("bonding") else 1.5 * t, "seconds": 45.0})
        msgs.append({"kind": "row", "row": row, "ok": True, "trials": trials})
    msgs.append({"kind": "done"})
    return msgs


def by_target(msgs: list[dict[str, Any]]) -> dict[str, tuple[bool | None, str]]:
    out = {}
    for target, met, why in verdicts(collect(msgs)):
        key = "carrier" if "carrier" in target else "silent" if "silent" in target else "router"
        out[key] = (met, why)
    return out


def test_all_targets_met() -> None:
    v = by_target(run())
    assert v["carrier"][0] is True
    assert v["silent"][0] is True
    assert v["router"][0] is True, v["router"][1]


def test_a_slower_carrier_outage_than_one_peer_misses() -> None:
    v = by_target(run(ipmp_carrier_ms=90))  # the peers' best median is 80 ms
    assert v["carrier"][0] is False
    assert "missed by 1 ping(s), 10 ms" in v["carrier"][1]


def test_one_silent_detection_above_the_fdt_misses() -> None:
    assert by_target(run(ipmp_silent_ms=(600, 130)))["silent"][0] is False
    assert by_target(run(ipmp_silent_ms=(1100, 90)))["silent"][0] is False


def test_one_failover_on_a_router_death_in_one_trial_misses() -> None:
    v = by_target(run(ipmp_router_moves=1))
    assert v["router"][0] is False
    assert "1 failover(s) in 3 trial(s)" in v["router"][1]


def test_targets_without_their_rows_are_not_measured() -> None:
    msgs = [m for m in run() if not str(m.get("row", "")).startswith("ipmp")]
    assert {k: met for k, (met, _) in by_target(msgs).items()} == {"carrier": None, "silent": None,
                                                                    "router": None}


def test_the_printed_report() -> None:
    text = report_text(collect(run()))
    # Medians with the min-max of three trials, ratios of medians to the reference row.
    assert "| bonding miimon=10 | 8 (7-9) | 0.08 s (0.07-0.09) | 2.0x |" in text
    assert "| ipmp link-only | 4 (4-4) | 0.04 s (0.04-0.04) | 1.0x |" in text
    # The link monitors never recover from a silent failure.
    assert "| bonding miimon=10 | ≥ 700 (700-700) | not recovered (∞-∞) | ∞ |" in text
    # Router death: the ARP monitor cut the peer off, ipmp did not move.
    assert "| bonding arp_interval=100 | 0 (0-0) | ≥ 770 (770-770) | not recovered (∞-∞) | ∞ |" in text
    assert "| ipmp FDT 100 ms | 0 (0-0) | 0 (0-0) | 0.00 s (0.00-0.00) | = |" in text
    assert "| bonding miimon=10 | (kernel) |" in text
    assert "| ipmp FDT 100 ms | 3.00 s (1.50-4.50) | 1.0x |" in text
    assert text.count("**MET**") == 3


def test_a_failed_row_is_reported() -> None:
    msgs = [m for m in run() if not (m.get("kind") == "row" and m.get("row") == "ipmp FDT 1 s")]
    msgs.append({"kind": "row", "row": "ipmp FDT 1 s", "ok": False, "trials": 2, "error": "boom"})
    assert "failed after 2 trial(s): boom" in report_text(collect(msgs))


# --------------------------------------------------------------------------
# The guest program
# --------------------------------------------------------------------------


def test_host_and_guest_agree_on_rows_phases_and_interval() -> None:
    guest = _guest()
    assert tuple(r.name for r in guest.ROWS) == peers.ROWS
    assert guest.PHASES == peers.PHASES
    assert guest.INTERVAL == peers.INTERVAL
    assert set(peers.FDT) <= set(peers.ROWS)
    assert set(peers.REFERENCE) == set(peers.PHASES)


def test_guest_figures_of_a_ping_run() -> None:
    figures = _guest().figures
    start, fault = 1000.0, 1001.0
    # Replies every 10 ms, seq 1..; a 200 ms hole at the fault; to the end of the window.
    replies = [(start + 0.01 * i, i + 1) for i in range(100)]
    replies += [(fault + 0.2 + 0.01 * i, 121 + i) for i in range(300)]
    m = figures(replies, start, fault, fault + 0.2 + 0.01 * 300)
    assert m["lost"] == 20
    assert m["recovered"] is True
    assert m["silences_ms"] == [[-10, 200, 20]]
    assert m["longest_ms"] == 210
    assert first_reply(m) == pytest.approx(0.2)


def test_guest_figures_of_a_run_that_begins_in_an_outage() -> None:
    figures = _guest().figures
    start, fault = 1000.0, 1001.0
    replies = [(fault + 0.3 + 0.01 * i, 131 + i) for i in range(100)]
    m = figures(replies, start, fault, fault + 0.3 + 0.01 * 100)
    # The first 130 pings went unanswered, and the silence counts from the ping's start.
    assert m["lost"] == 130
    assert m["silences_ms"] == [[-1000, 300, 130]]
    assert first_reply(m) == pytest.approx(0.3)


def test_guest_figures_of_a_run_that_ends_in_an_outage() -> None:
    figures = _guest().figures
    start, fault = 1000.0, 1001.0
    replies = [(start + 0.01 * i, i + 1) for i in range(100)]
    m = figures(replies, start, fault, fault + 8.0)
    assert m["recovered"] is False
    assert m["tail_ms"] == 8010
    assert lost(m) == (801, True)
    assert figures([], start, fault, fault + 8.0)["recovered"] is False


def test_guest_reads_its_options_from_the_kernel_command_line(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    guest = _guest()
    cmdline = tmp_path / "cmdline"
    real_open = open

    def fake_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        return real_open(cmdline if path == "/proc/cmdline" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    cmdline.write_text("root=/dev/vda ipmpvm.trials=5 ipmpvm.rows=2,7 quiet\n")
    assert guest.options() == (5, [2, 7])
    cmdline.write_text("root=/dev/vda ipmpvm.trials=0\n")
    assert guest.options() == (guest.DEFAULT_TRIALS, [])


def test_host_names_rows_to_the_guest_by_index() -> None:
    assert peers.run_timeout(8, 3) > 8 * 3 * 45
    assert [peers.ROWS.index(r) for r in ("bonding miimon=10", "ipmp FDT 100 ms")] == [1, 7]


def test_the_fdt_in_mpathd_ran_with_is_reported() -> None:
    msgs = run()
    for m in msgs:
        if m.get("kind") == "row" and m.get("row") == "ipmp FDT 100 ms":
            m["fdt_log"] = [
                'Cannot meet requested failure detection time of 100 ms on (inet qfe1) new failure detection '
                'time for group "prod" is 3794 ms',
                'Improved failure detection time 1897 ms on (inet qfe0) for group "prod"']
    res = collect(msgs)
    assert peers.effective_fdt(res, "ipmp FDT 100 ms") == (3.794, 1.897)
    assert peers.effective_fdt(res, "ipmp FDT 1 s") is None
    text = report_text(res)
    assert "- ipmp FDT 100 ms: requested 100 ms, raised up to 3794 ms, 1897 ms at the end" in text
    assert "(in.mpathd raised its FDT up to 3.79 s)" in text


# --------------------------------------------------------------------------
# The host: the signal NIC's hub, the wire cut over QMP
# --------------------------------------------------------------------------


def test_the_signal_nic_is_alone_on_hub_1() -> None:
    guest = peers.BenchGuest(Disk(Path("disk.raw"), Path("vmlinuz"), Path("initrd.img")), peers.NICS)
    argv = guest._argv(Path("run"))
    assert f"hubport,id=hub-{peers.SIGNAL},hubid=1" in argv
    assert "hubport,id=hub-ens8,hubid=0" in argv
    assert "hubport,id=hub-ens10,hubid=0" in argv


class FakeGuest:
    """What ``serve`` uses of a Guest: the guest's messages once, then it powers off."""

    def __init__(self, messages: list[dict[str, Any]], *, fail: str = "") -> None:
        self.pending = messages
        self.nics = peers.NICS
        self.started_at = time.monotonic()
        self.proc = None
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail
        self.polls = 0

    @property
    def alive(self) -> bool:
        self.polls += 1
        return self.polls == 1

    def messages(self) -> Iterator[dict[str, Any]]:
        out, self.pending = self.pending, []
        yield from out

    def qmp(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        if command == self.fail:
            raise RuntimeError(f"QMP {command}: no such thing")
        self.calls.append((command, arguments))
        return {}

    def set_link(self, name: str, up: bool) -> None:
        self.calls.append(("set_link", (name, up)))

    def log(self, line: str) -> None:
        pass


def wire(cut: bool, signal_up: bool) -> dict[str, Any]:
    return {"kind": "wire", "nic": "ens8", "cut": cut, "signal": peers.SIGNAL, "signal_up": signal_up}


def test_serve_cuts_and_mends_the_wire_then_flips_the_signal() -> None:
    fake = FakeGuest([wire(True, False), wire(False, True), wire(True, False), {"kind": "done"}])
    report = peers.serve(cast(Guest, fake), 60, poll=0)
    assert report.finished
    cut = ("object-add", {"qom-type": "filter-redirector", "id": "ipmpvm-cut-ens8", "netdev": "hub-ens8",
                          "queue": "all", "outdev": peers.NULL_CHARDEV})
    assert fake.calls == [
        ("chardev-add", {"id": peers.NULL_CHARDEV, "backend": {"type": "null", "data": {}}}),
        cut, ("set_link", (peers.SIGNAL, False)),
        ("object-del", {"id": "ipmpvm-cut-ens8"}), ("set_link", (peers.SIGNAL, True)),
        cut, ("set_link", (peers.SIGNAL, False)),  # the null chardev is made once
    ]
    assert [m.get("error") for m in report.messages[:3]] == [None, None, None]


def test_a_failed_cut_does_not_flip_the_signal() -> None:
    # The guest waits for the signal: a cut that did not happen must not look done.
    fake = FakeGuest([wire(True, False), {"kind": "done"}], fail="object-add")
    report = peers.serve(cast(Guest, fake), 60, poll=0)
    assert not any(c[0] == "set_link" for c in fake.calls)
    assert "no such thing" in str(report.messages[0]["error"])


def test_a_wire_of_a_nic_the_guest_has_not_is_refused() -> None:
    fake = FakeGuest([{**wire(True, False), "nic": "ens3"}, {"kind": "done"}])
    report = peers.serve(cast(Guest, fake), 60, poll=0)
    assert fake.calls == []
    assert "no NIC ens3" in str(report.messages[0]["error"])
