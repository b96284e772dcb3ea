"""The peers side by side: bonding, teamd and ipmp in one Debian guest, same NICs, same faults.

``make bench-vm`` (= ``python -m bench.peers``, as root): one guest boot
(tests/vm: a Debian 13 image with ``libteam-utils`` added, the project
installed as README says), two virtio NICs under test (``ens8``, ``ens9``)
and a third on the same QEMU hub in a namespace of the guest, the router
and the peer that pings the data address at 100/s.  The guest program
(``tests/vm/guest_files/peers/.../peers_bench.py``) runs every row in turn:
bonding active-backup (miimon 100, miimon 10, ARP monitor at 100 ms with
``arp_validate=all``), teamd activebackup (ethtool and arp_ping watchers),
ipmp link-only and with probes at FDT 1 s and 100 ms.  Faults: the carrier of
``ens8`` cut over QMP ``set_link``, and a silent failure (every frame in and
out of ``ens8`` dropped by tc while carrier stays up); each fault then undone
(failback).

Printed: per row and phase, pings lost at 100/s and the time from the fault
to the first good reply (for a failback: the longest silence between two
replies), and each row's figure as a ratio to ipmp's in the same
run (link-only for the carrier phases, FDT 100 ms for the silent ones).  The
guest runs under TCG here: absolute times are slower than on hardware, the
ratios in one run are the point.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.vm import image
from tests.vm.guest import Guest, Report, drive, nic

REPO = Path(__file__).resolve().parents[1]
GUEST_FILES = REPO / "tests" / "vm" / "guest_files" / "peers"
NICS = (nic(8), nic(9), nic(10))
#: teamd (libteam-utils) besides the test image's packages.
PACKAGES = (*image.BASE_PACKAGES, "libteam-utils")
ENABLE = "systemctl enable ipmp-vm-net.service ipmp-vm-peers.service"
RUN_TIMEOUT = 2400.0
#: The peer's ping interval in the guest (100/s).
INTERVAL = 0.01
PHASES = ("carrier", "carrier-failback", "silent", "silent-failback")
#: The ipmp row each phase's ratios are taken against.
REFERENCE = {"carrier": "ipmp link-only", "carrier-failback": "ipmp link-only",
             "silent": "ipmp FDT 100 ms", "silent-failback": "ipmp FDT 100 ms"}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def _ratio(value: Any, ref: Any) -> str:
    if value is None:
        return "∞" if ref is not None else "—"
    if ref is None or ref == 0:
        return "—" if value else "="
    return f"{value / ref:.1f}x"


#: A silence between replies longer than this many intervals is an outage (TCG's jitter stays under it).
SILENCE = 3


def first_reply(stamps_ms: list[int]) -> float | None:
    """Seconds from the fault to the first good reply after the outage it caused.

    The outage is the first silence longer than ``SILENCE`` intervals that
    ends after the fault (its stamp is 0: the moment the guest saw the
    fault, which began just before); a later silence is jitter, not this
    fault's.  0 if there was none; None if no reply came after the fault.
    """
    stamps = sorted(stamps_ms)
    if not stamps or stamps[-1] <= 0:
        return None
    for before, after in itertools.pairwise(stamps):
        if after > 0 and after - before > SILENCE * INTERVAL * 1000:
            return after / 1000
    return 0.0


def table(report: Report) -> str:
    """The Markdown table of one run: a line per row, per phase pings lost and time to the first reply."""
    results: dict[tuple[str, str], dict[str, Any]] = {
        (m["row"], m["phase"]): m for m in report.of_kind("phase")}
    rows = [m["row"] for m in report.of_kind("row")]
    status = {m["row"]: m for m in report.of_kind("row")}
    head = ["row"]
    for ph in PHASES:
        what = "longest silence" if ph.endswith("failback") else "first good reply"
        head += [f"{ph}: lost", f"{ph}: {what}", "ratio"]
    head.append("daemon CPU")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row]
        for ph in PHASES:
            m = results.get((row, ph))
            ref = results.get((REFERENCE[ph], ph))
            if m is None:
                cells += ["—", "—", "—"]
                continue
            first = m.get("first_reply_s")
            if "stamps_ms" in m and m.get("recovered"):
                first = first_reply(m["stamps_ms"])
            if ref is not None and "stamps_ms" in ref and ref.get("recovered"):
                ref = {**ref, "first_reply_s": first_reply(ref["stamps_ms"])}
            lost = m.get("lost")
            if not m.get("recovered"):
                # Every ping after the fault: the silence lasted to the end of the window.
                lost = f"≥ {round((m.get('gap_s') or 0.0) / INTERVAL)}"
            if ph.endswith("failback"):
                # Nothing failed: a failback's cost is the silence it causes, whenever it comes.
                gap = m.get("gap_s")
                cells += [_fmt(lost), _fmt(gap, " s"), _ratio(gap, ref.get("gap_s") if ref else None)]
                continue
            cells += [_fmt(lost), _fmt(first, " s") if m.get("recovered") else "not recovered",
                      _ratio(first, ref.get("first_reply_s") if ref else None)]
        st = status[row]
        cells.append(_fmt(st.get("daemon_cpu_s"), " s") if st.get("ok") else f"failed: {st.get('error')}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", type=Path, help="also write the guest's messages here")
    parser.add_argument("--from-json", type=Path, help="print the table of a saved run (--json) and exit")
    args = parser.parse_args(argv)
    if args.from_json:
        print(table(Report(messages=json.loads(args.from_json.read_text(encoding="utf-8")))))
        return 0
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

    started = time.monotonic()
    base = image.build_base(packages=PACKAGES, variant="peers", log=log)
    with tempfile.TemporaryDirectory(prefix="ipmp-bench-vm.") as tmp:
        dist = image.python_dist(Path(tmp) / "dist", log=log)
        disk = image.assemble(base, dist, image.tree_files(GUEST_FILES), [ENABLE], log=log)
    with Guest(disk, NICS, log=log) as guest:
        report = drive(guest, RUN_TIMEOUT)
        accel = guest.accel
        console = guest.console() if not report.finished else ""
    if args.json:
        args.json.write_text(json.dumps(report.messages), encoding="utf-8")
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# peers side by side: {when}, accel {accel}, guest run {report.total_seconds:.0f} s, "
          f"whole {time.monotonic() - started:.0f} s")
    print("# ratios to ipmp link-only (carrier phases) and ipmp FDT 100 ms (silent phases) of the same run")
    print(table(report))
    if not report.finished:
        print(f"the guest did not finish\n{console}", file=sys.stderr)
        return 1
    return 0 if all(m.get("ok") for m in report.of_kind("row")) else 1


if __name__ == "__main__":
    sys.exit(main())
