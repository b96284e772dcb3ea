"""The peers side by side: bonding, teamd and ipmp in one Debian guest, same NICs, same faults.

``make bench-vm`` (= ``python -m bench.peers``, as root): one guest boot
(tests/vm: a Debian 13 image with ``libteam-utils`` added, the project
installed as README says), two virtio NICs under test (``ens8``, ``ens9``)
and a third on the same QEMU hub in a namespace of the guest, holding the
router (192.0.2.1) and the peer (192.0.2.2) that pings the data address at
100/s.  The guest program (``tests/vm/guest_files/peers/.../peers_bench.py``)
runs every row in turn: bonding active-backup (miimon 100, miimon 10, ARP
monitor at 100 ms with ``arp_validate=all``), teamd activebackup (ethtool and
arp_ping watchers), ipmp link-only and with probes at FDT 1 s and 100 ms.
Faults, each then undone: the carrier of ``ens8`` cut over QMP ``set_link``;
a silent failure (``ens8``'s wire cut outside the guest -- a QEMU
``filter-redirector`` to a null chardev on its hub port, put there and taken
away over QMP -- while carrier stays up); the router's death (it stops
answering, every carrier up, the peer still pinging).  Every row goes through
``--trials`` rounds of the six phases (default 3).

Printed: per row and phase the median over the trials and the min-max of the
pings lost at 100/s, the time from the fault to the first good reply (for a
failback or the router's death: the longest outage, a silence in which pings
were lost), the data address's moves between NICs on the router's death and
restore, the daemon's CPU per round; each as a ratio of medians to ipmp's in
the same run (link-only for the carrier phases, FDT 100 ms for the others);
and per target of issue 14, met or missed in this run.  The guest runs under
TCG here: absolute times are slower than on hardware, the ratios in one run
are the point.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.vm import image
from tests.vm.guest import Guest, Report, drive, nic

REPO = Path(__file__).resolve().parents[1]
GUEST_FILES = REPO / "tests" / "vm" / "guest_files" / "peers"
#: ens8 and ens9 under test, ens10 the router's and the peer's; ens11, on a hub of its own, is
#: the signal: the host flips its carrier once it has cut or mended ens8's wire.
SIGNAL = "ens11"
NICS = (nic(8), nic(9), nic(10), nic(11))
#: teamd (libteam-utils) besides the test image's packages.
PACKAGES = (*image.BASE_PACKAGES, "libteam-utils")
ENABLE = "systemctl enable ipmp-vm-net.service ipmp-vm-peers.service"
#: The rows the guest runs, in its order (its ROWS).
ROWS = ("bonding miimon=100", "bonding miimon=10", "bonding arp_interval=100", "teamd ethtool",
        "teamd arp_ping 100 ms", "ipmp link-only", "ipmp FDT 1 s", "ipmp FDT 100 ms")
#: The ipmp rows with probes, and their FAILURE_DETECTION_TIME (s).
FDT = {"ipmp FDT 1 s": 1.0, "ipmp FDT 100 ms": 0.1}
#: Bounds for the whole guest run: boot and image, then per row (setup) and per round of six
#: phases (about 45 s of windows and waits on a quiet machine; TCG on a busy host is slower).
BOOT_BOUND = 600.0
ROW_BOUND = 180.0
TRIAL_BOUND = 240.0
#: The peer's ping interval in the guest (100/s).
INTERVAL = 0.01
PHASES = ("carrier", "carrier-failback", "silent", "silent-failback", "router", "router-restore")
#: The ipmp row each phase's ratios are taken against.
REFERENCE = {"carrier": "ipmp link-only", "carrier-failback": "ipmp link-only",
             "silent": "ipmp FDT 100 ms", "silent-failback": "ipmp FDT 100 ms",
             "router": "ipmp FDT 100 ms", "router-restore": "ipmp FDT 100 ms"}
#: An outage that begins later than this after the fault is not the fault's (a reply
#: sent just before the fault can still arrive a little after the guest saw it).
ONSET_MS = 100


# --------------------------------------------------------------------------
# One phase of one trial: what the peer saw
# --------------------------------------------------------------------------


def outages(m: dict[str, Any]) -> list[tuple[int, int]]:
    """The phase's outages (ms from the fault): silences between replies in which pings were lost.

    A silence in which no ping was lost is replies arriving late, all of them
    answered: the emulated CPU's jitter, not an outage.
    """
    return [(int(s[0]), int(s[1])) for s in m.get("silences_ms", []) if len(s) > 2 and s[2] > 0]


def first_reply(m: dict[str, Any]) -> float | None:
    """Seconds from the fault to the first good reply after the outage it caused.

    The outage is the one that holds the fault's moment: it began before or
    right at the fault (within ``ONSET_MS``) and ended after it.  One that
    begins later is a later action of the row, not this fault's.  0 if there
    was none; None if replies did not run to the end of the window (not
    recovered).
    """
    if not m.get("recovered"):
        return None
    for start, end in outages(m):
        if start <= ONSET_MS and end > 0:
            return float(end) / 1000
    return 0.0


def longest_silence(m: dict[str, Any]) -> float | None:
    """The longest outage in the phase (s), 0 if none; None if one lasted to the window's end."""
    if not m.get("recovered"):
        return None
    return max((float(end - start) / 1000 for start, end in outages(m)), default=0.0)


def lost(m: dict[str, Any]) -> tuple[float, bool]:
    """Pings lost, and whether that is only a lower bound (the outage lasted to the end of the window)."""
    count = float(m.get("lost") or 0)
    if m.get("recovered"):
        return count, False
    return count + round(float(m.get("tail_ms", 0)) / 1000 / INTERVAL), True


# --------------------------------------------------------------------------
# Trials: median and min-max
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """One figure over the trials; ``math.inf`` is a trial that never recovered."""

    values: tuple[float, ...]
    #: Some values are lower bounds (pings counted up to the end of a window that ended in an outage).
    bound: tuple[bool, ...] = ()

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def median_bound(self) -> bool:
        """Whether the median leans on a lower bound."""
        if not self.bound:
            return False
        order = sorted(range(len(self.values)), key=lambda i: self.values[i])
        n = len(order)
        middle = order[(n - 1) // 2: n // 2 + 1]
        return any(self.bound[i] for i in middle)

    def cell(self, unit: str = "", digits: int = 2) -> str:
        def one(v: float) -> str:
            if math.isinf(v):
                return "∞"
            return f"{v:.{digits}f}" if digits else f"{v:.0f}"

        med = self.median
        if math.isinf(med):
            text = "not recovered"
        else:
            text = ("≥ " if self.median_bound else "") + one(med) + unit
        if len(self.values) > 1:
            text += f" ({one(min(self.values))}-{one(max(self.values))})"
        return text


def spread(values: Iterable[float | None]) -> Spread:
    return Spread(tuple(math.inf if v is None else v for v in values))


def lost_spread(ms: Sequence[dict[str, Any]]) -> Spread:
    pairs = [lost(m) for m in ms]
    return Spread(tuple(v for v, _ in pairs), tuple(b for _, b in pairs))


def ratio(value: float | None, ref: float | None) -> str:
    """``value / ref`` as ``1.3x``; ∞ when only ``value`` never ended, — when nothing to compare."""
    if value is None or ref is None:
        return "—"
    if math.isinf(value):
        return "—" if math.isinf(ref) else "∞"
    if math.isinf(ref):
        return "0x"
    if ref == 0:
        return "=" if value == 0 else "—"
    return f"{value / ref:.1f}x"


@dataclass
class Results:
    """A run's messages, grouped: the rows in order, each phase's trials, each row's rounds."""

    rows: list[str]
    phases: dict[tuple[str, str], list[dict[str, Any]]]
    trials: dict[str, list[dict[str, Any]]]
    status: dict[str, dict[str, Any]]
    start: dict[str, Any]

    def of(self, row: str, phase: str) -> list[dict[str, Any]]:
        return self.phases.get((row, phase), [])

    def median(self, row: str, phase: str, figure: Callable[[dict[str, Any]], float | None]) -> float | None:
        ms = self.of(row, phase)
        return spread(figure(m) for m in ms).median if ms else None


def collect(messages: Iterable[dict[str, Any]]) -> Results:
    msgs = list(messages)
    start = next((m for m in msgs if m.get("kind") == "start"), {})
    rows = [str(r) for r in start.get("rows", [])]
    phases: dict[tuple[str, str], list[dict[str, Any]]] = {}
    trials: dict[str, list[dict[str, Any]]] = {}
    status: dict[str, dict[str, Any]] = {}
    for m in msgs:
        kind, row = m.get("kind"), str(m.get("row"))
        if kind == "phase":
            phases.setdefault((row, str(m.get("phase"))), []).append(m)
        elif kind == "trial":
            trials.setdefault(row, []).append(m)
        elif kind == "row":
            status[row] = m
        if kind in ("phase", "trial", "row") and row not in rows:
            rows.append(row)
    return Results(rows, phases, trials, status, start)


# --------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------


def _table(head: Sequence[str], lines: Iterable[Sequence[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def _fault_cells(res: Results, row: str, phase: str) -> list[str]:
    """lost, first good reply (or the longest outage for a failback), ratio of medians to the reference."""
    ms = res.of(row, phase)
    if not ms:
        return ["—", "—", "—"]
    figure = longest_silence if phase.endswith("failback") else first_reply
    s = spread(figure(m) for m in ms)
    ref = res.median(REFERENCE[phase], phase, figure)
    return [lost_spread(ms).cell(digits=0), s.cell(" s"), ratio(s.median, ref)]


def _moves(ms: Sequence[dict[str, Any]]) -> str:
    return spread(float(m.get("moves", 0)) for m in ms).cell(digits=0) if ms else "—"


def _row_note(res: Results, row: str) -> str:
    st = res.status.get(row)
    if st is None:
        return "did not finish"
    if not st.get("ok"):
        return f"failed after {st.get('trials', 0)} trial(s): {st.get('error')}"
    return ""


def tables(res: Results) -> str:
    """The Markdown tables of one run: carrier loss, silent failure, router death, CPU."""
    rows = res.rows
    out: list[str] = []
    for title, fault, back in (
            ("Carrier loss on ens8 (QMP set_link), then carrier back", "carrier", "carrier-failback"),
            ("Silent failure of ens8 (its wire cut outside the guest, carrier up), then mended", "silent",
             "silent-failback")):
        head = ["row", "lost", "first good reply", f"ratio to {REFERENCE[fault]}",
                "failback: lost", "longest outage", "ratio"]
        out += [f"**{title}**", "", _table(head, (
            [row, *_fault_cells(res, row, fault), *_fault_cells(res, row, back)] for row in rows)), ""]
    head = ["row", "failovers", "lost", "longest outage", f"ratio to {REFERENCE['router']}",
            "restore: failovers", "lost", "first good reply", "back on ens8"]
    lines = []
    for row in rows:
        dead, restore = res.of(row, "router"), res.of(row, "router-restore")
        cells = [row, _moves(dead)]
        if dead:
            s = spread(longest_silence(m) for m in dead)
            cells += [lost_spread(dead).cell(digits=0), s.cell(" s"),
                      ratio(s.median, res.median(REFERENCE["router"], "router", longest_silence))]
        else:
            cells += ["—", "—", "—"]
        cells.append(_moves(restore))
        if restore:
            cells += [lost_spread(restore).cell(digits=0), spread(first_reply(m) for m in restore).cell(" s")]
        else:
            cells += ["—", "—"]
        trials = res.trials.get(row, [])
        cells.append(f"{sum(1 for t in trials if t.get('back_on_primary'))}/{len(trials)}" if trials else "—")
        lines.append(cells)
    out += ["**Router death: 192.0.2.1 stops answering, every carrier up, the peer (192.0.2.2) pinging; "
            "then the router back**", "", _table(head, lines), ""]
    head = ["row", "daemon CPU per round", "ratio to ipmp FDT 100 ms", "round", "trials", "note"]
    ref_cpu = _cpu(res, "ipmp FDT 100 ms")
    lines = []
    for row in rows:
        trials = res.trials.get(row, [])
        cpu = _cpu(res, row)
        is_kernel = row.startswith("bonding")
        cells = [row, "(kernel)" if is_kernel else (cpu.cell(" s") if cpu else "—"),
                 "—" if is_kernel or cpu is None else ratio(cpu.median, ref_cpu.median if ref_cpu else None),
                 spread(float(t.get("seconds", 0)) for t in trials).cell(" s", 0) if trials else "—",
                 str(len(trials)), _row_note(res, row)]
        lines.append(cells)
    out += ["**Daemon CPU (user + system) per round of the six phases**", "", _table(head, lines)]
    notes = [f"- {row}: {text}" for row in rows if (text := fdt_note(res, row))]
    if notes:
        out += ["", "in.mpathd's failure detection time as it ran (it raises the FDT when probe RTTs do not "
                "fit it, as Solaris does):", "", *notes]
    return "\n".join(out)


_RAISED = re.compile(r"new failure detection time for group \S+ is (\d+) ms")
_IMPROVED = re.compile(r"Improved failure detection time (\d+) ms")


def effective_fdt(res: Results, row: str) -> tuple[float, float] | None:
    """(highest, last) FDT in s that in.mpathd logged for ``row``, None if it never changed it."""
    values = []
    for line in res.status.get(row, {}).get("fdt_log", []):
        if m := (_RAISED.search(line) or _IMPROVED.search(line)):
            values.append(int(m.group(1)) / 1000)
    return (max(values), values[-1]) if values else None


def fdt_note(res: Results, row: str) -> str:
    fdt = effective_fdt(res, row)
    if fdt is None or row not in FDT:
        return ""
    return (f"requested {FDT[row] * 1000:.0f} ms, raised up to {fdt[0] * 1000:.0f} ms, "
            f"{fdt[1] * 1000:.0f} ms at the end")


def _cpu(res: Results, row: str) -> Spread | None:
    trials = res.trials.get(row, [])
    return spread(float(t.get("daemon_cpu_s", 0)) for t in trials) if trials else None


# --------------------------------------------------------------------------
# Issue 14's targets, met or missed
# --------------------------------------------------------------------------

PEER_ROWS = ("bonding", "teamd")


def _peers(res: Results) -> list[str]:
    return [r for r in res.rows if r.startswith(PEER_ROWS)]


def _ipmp(res: Results) -> list[str]:
    return [r for r in res.rows if r.startswith("ipmp")]


def _complete(res: Results, row: str, phase: str) -> bool:
    return bool(res.of(row, phase))


def verdicts(res: Results) -> list[tuple[str, bool | None, str]]:
    """(target, met: True/False, None if not measured, the evidence) for each of issue 14's targets."""
    out: list[tuple[str, bool | None, str]] = []
    peers = [p for p in _peers(res) if _complete(res, p, "carrier")]

    # 1. Carrier loss: the outage the peer sees, in pings lost and time to the first good reply.
    target = "ipmp's carrier-loss outage ≤ every peer's (median pings lost and time to the first good reply)"
    ipmp_rows = [r for r in _ipmp(res) if _complete(res, r, "carrier")]
    if not peers or not ipmp_rows:
        out.append((target, None, "not measured in this run"))
    else:
        def outage(row: str) -> tuple[float, float]:
            ms = res.of(row, "carrier")
            return lost_spread(ms).median, spread(first_reply(m) for m in ms).median

        best_lost = min(peers, key=lambda p: outage(p)[0])
        best_time = min(peers, key=lambda p: outage(p)[1])
        parts, met = [], True
        for row in ipmp_rows:
            lo, t = outage(row)
            over_lost, over_time = lo - outage(best_lost)[0], t - outage(best_time)[1]
            ok = over_lost <= 0 and over_time <= 0
            met = met and ok
            by = "" if ok else f" by {max(over_lost, 0):.0f} ping(s), {max(over_time, 0) * 1000:.0f} ms"
            parts.append(f"{row} {lo:.0f} lost / {_s(t)}: {'met' if ok else 'missed' + by}")
        best = (f"the peers' best: {best_lost} {outage(best_lost)[0]:.0f} lost, "
                f"{best_time} {_s(outage(best_time)[1])}")
        out.append((target, met, "; ".join(parts) + f" ({best})"))

    # 2. Silent failure: never above the FDT (every trial), beside the ARP monitors at 100 ms.
    target = "silent-failure detection never above the FDT (every trial; time to the first good reply)"
    probe_rows = [r for r in FDT if _complete(res, r, "silent")]
    if not probe_rows:
        out.append((target, None, "not measured in this run"))
    else:
        parts, met = [], True
        for row in probe_rows:
            times = spread(first_reply(m) for m in res.of(row, "silent"))
            worst = max(times.values)
            ok = worst <= FDT[row]
            met = met and ok
            raised = effective_fdt(res, row)
            why = f" (in.mpathd raised its FDT up to {_s(raised[0])})" if raised else ""
            parts.append(f"{row}: worst {_s(worst)}, median {_s(times.median)} vs FDT {_s(FDT[row])}{why}: "
                         f"{'met' if ok else 'missed'}")
        arp = [r for r in res.rows if ("arp" in r) and _complete(res, r, "silent")]
        if arp:
            parts.append("the ARP monitors at 100 ms: " + ", ".join(
                f"{r} median {_s(res.median(r, 'silent', first_reply))}" for r in arp))
        out.append((target, met, "; ".join(parts)))

    # 3. Router death: no failover.
    target = "0 failovers on a router death (every ipmp row, every trial)"
    dead_rows = [r for r in _ipmp(res) if _complete(res, r, "router")]
    if not dead_rows:
        out.append((target, None, "not measured in this run"))
    else:
        parts, met = [], True
        for row in dead_rows:
            ms = res.of(row, "router")
            moves = [int(m.get("moves", 0)) for m in ms]
            ok = not any(moves)
            met = met and ok
            parts.append(f"{row}: {sum(moves)} failover(s) in {len(ms)} trial(s), peer lost median "
                         f"{lost_spread(ms).cell(digits=0)}: {'met' if ok else 'missed'}")
        out.append((target, met, "; ".join(parts)))
    return out


def _s(value: float | None) -> str:
    if value is None or math.isinf(value):
        return "not recovered"
    return f"{value:.2f} s"


def report_text(res: Results) -> str:
    """The tables, then issue 14's targets, met or missed, as printed and as BENCHMARKS.md shows them."""
    lines = [tables(res), "", "**Issue 14's targets in this run**", ""]
    for target, met, why in verdicts(res):
        word = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[met]
        lines.append(f"- **{word}**: {target}. {why}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


class BenchGuest(Guest):
    """The tests/vm guest, with the signal NIC alone on hub 1 (it must not see the test segment)."""

    def _argv(self, run: Path) -> list[str]:
        argv = super()._argv(run)
        mine = f"hubport,id=hub-{SIGNAL},hubid=0"
        if argv.count(mine) != 1:
            raise RuntimeError(f"no {mine!r} in QEMU's command line to move to hub 1")
        return [a.replace(mine, f"hubport,id=hub-{SIGNAL},hubid=1") for a in argv]


#: The null chardev the wire cut sends frames to, and the filter's QOM id per NIC.
NULL_CHARDEV = "ipmpvm-wire-null"


def set_wire(guest: Guest, nic_name: str, cut: bool, chardevs: set[str]) -> None:
    """Cut ``nic_name``'s wire (every frame both ways, carrier untouched), or mend it, over QMP.

    A ``filter-redirector`` on the NIC's hub port with ``queue=all`` takes
    every frame the port would pass to the guest's NIC or from it, and writes
    it to a null chardev: gone, as on a broken cable, and the guest's NIC
    keeps its carrier.
    """
    if nic_name not in {n.name for n in guest.nics}:
        raise ValueError(f"no NIC {nic_name} in this guest")
    fid = f"ipmpvm-cut-{nic_name}"
    if not cut:
        guest.qmp("object-del", {"id": fid})
        return
    if NULL_CHARDEV not in chardevs:
        guest.qmp("chardev-add", {"id": NULL_CHARDEV, "backend": {"type": "null", "data": {}}})
        chardevs.add(NULL_CHARDEV)
    guest.qmp("object-add", {"qom-type": "filter-redirector", "id": fid, "netdev": f"hub-{nic_name}",
                             "queue": "all", "outdev": NULL_CHARDEV})


def wire(guest: Guest, msg: dict[str, Any], chardevs: set[str]) -> None:
    """``{"kind": "wire", "nic", "cut", "signal", "signal_up"}``: the wire cut or mended, then the
    signal NIC's carrier set as asked, only if that worked (the guest waits for it, bounded, and
    fails the row otherwise)."""
    set_wire(guest, str(msg.get("nic")), bool(msg.get("cut")), chardevs)
    guest.set_link(str(msg.get("signal")), bool(msg.get("signal_up")))


def serve(guest: Guest, timeout: float, *, poll: float = 0.05) -> Report:
    """tests/vm/guest.py's ``drive``, with the guest's ``wire`` requests too."""
    chardevs: set[str] = set()
    return drive(guest, timeout, poll=poll, requests={"wire": lambda g, msg: wire(g, msg, chardevs)})


def run_timeout(rows: int, trials: int) -> float:
    """The bound on the guest's whole run (``drive``'s timeout)."""
    return BOOT_BOUND + rows * (ROW_BOUND + trials * TRIAL_BOUND)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", type=Path, help="also write the guest's messages here")
    parser.add_argument("--from-json", type=Path, help="print the tables of a saved run (--json) and exit")
    parser.add_argument("--trials", type=int, default=3, help="rounds of the six phases per row (default 3)")
    parser.add_argument("--rows", default="", help="only the rows whose name holds one of these "
                        "comma-separated words (e.g. 'arp,ipmp FDT'); default all")
    args = parser.parse_args(argv)
    if args.from_json:
        print(report_text(collect(json.loads(args.from_json.read_text(encoding="utf-8")))))
        return 0
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    words = [w.strip() for w in args.rows.split(",") if w.strip()]
    chosen = [r for r in ROWS if not words or any(w in r for w in words)]
    if not chosen:
        parser.error(f"--rows {args.rows!r} names none of: {', '.join(ROWS)}")
    if os.geteuid() != 0:
        print("bench-vm needs root (mmdebstrap --mode=root, chroot)", file=sys.stderr)
        return 2
    missing = image.missing_tools()
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86_64 (apt-get install qemu-system-x86)")
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 2

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # The guest reads its options from the kernel command line: the rows by their index in its ROWS.
    cmdline = [f"ipmpvm.trials={args.trials}"]
    if words:
        cmdline.append("ipmpvm.rows=" + ",".join(str(ROWS.index(r)) for r in chosen))
    started = time.monotonic()
    base = image.build_base(packages=PACKAGES, variant="peers", log=log)
    with tempfile.TemporaryDirectory(prefix="ipmp-bench-vm.") as tmp:
        dist = image.python_dist(Path(tmp) / "dist", log=log)
        disk = image.assemble(base, dist, image.guest_tree(GUEST_FILES), [ENABLE], log=log)
    with BenchGuest(disk, NICS, cmdline=cmdline, log=log) as guest:
        report = serve(guest, run_timeout(len(chosen), args.trials))
        accel = guest.accel
        console = guest.console() if not report.finished else ""
    if args.json:
        args.json.write_text(json.dumps(report.messages), encoding="utf-8")
    res = collect(report.messages)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# peers side by side: {when}, accel {accel}, {args.trials} trial(s) per row, guest run "
          f"{report.total_seconds:.0f} s, whole {time.monotonic() - started:.0f} s, host load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"# windows after the fault (s): {res.start.get('windows')}; median (min-max) over the trials; "
          "ratios are of medians")
    print(report_text(res))
    if not report.finished:
        print(f"the guest did not finish\n{console}", file=sys.stderr)
        return 1
    return 0 if all(m.get("ok") for m in report.of_kind("row")) else 1


if __name__ == "__main__":
    sys.exit(main())
