"""False failovers with 1 % random probe loss and 5 ms jitter at FDT 1 s, over 10 minutes.

The lab kernel has no netem, so the probe target is made lossy in user
space: in the bench topology's router namespace (only there) the kernel's
own echo replies are switched off (``net.ipv4.icmp_echo_ignore_all=1``) and
``tests/netns/echo_responder.py`` answers echo requests to the router
address instead, dropping each with probability 1 % and answering the rest
after 5 ± 5 ms (uniform, so replies overtake each other).  The active-active
example probes that router from both NICs (one probe every 1000/7 ≈ 143 ms
per NIC: 4,200 probes per NIC in 10 minutes).

Nothing fails during the window; every "NIC failure detected", failover and
group failure the daemon logs is a false one.  The responder's counters show
the loss it really applied.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from bench.common import REPO, Row, lab, mpathd_conf, say

NAME = "noise"
RESPONDER = REPO / "tests" / "netns" / "echo_responder.py"
LOSS = 0.01
DELAY_MS = 5.0
JITTER_MS = 5.0
FALSE = ("NIC failure detected", "Successfully failed over", "All Interfaces in group")


def run(quick: bool) -> list[Row]:
    window = 60.0 if quick else 600.0
    say(f"{NAME}: active-active at FDT 1 s, {LOSS:.0%} loss and {DELAY_MS:g} ± {JITTER_MS:g} ms "
        f"on the probe target, {window:.0f} s")
    with lab(("qfe0", "qfe1"), {"etc/default/mpathd": mpathd_conf(1000)}, example="active-active") as the_lab:
        topo = the_lab.topo
        the_lab.boot()
        topo.run("router", ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all"])
        responder = topo.popen("router", [
            sys.executable, str(RESPONDER), "--address", topo.router_ip(4), "--loss", repr(LOSS),
            "--delay-ms", repr(DELAY_MS), "--jitter-ms", repr(JITTER_MS), "--seed", "8"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        counters: dict[str, int] = {}
        try:
            assert responder.stdout is not None
            ready = responder.stdout.readline()
            if json.loads(ready or b"{}").get("event") != "ready":
                raise RuntimeError(f"echo responder did not start: {ready!r}")
            daemon = the_lab.start_daemon()
            mark = len(daemon.lines)
            t0 = time.monotonic()
            time.sleep(window)
            wall = time.monotonic() - t0
            false = [line for _, line in daemon.lines[mark:] if any(word in line for word in FALSE)]
        finally:
            os.kill(responder.pid, signal.SIGTERM)
            out, _ = responder.communicate(timeout=10)
            lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
            if lines:
                counters = {k: int(v) for k, v in json.loads(lines[-1]).items() if k != "event"}
    received = counters.get("received", 0)
    dropped = counters.get("dropped", 0)
    applied = 100.0 * dropped / received if received else 0.0
    say(f"{NAME}: {len(false)} false verdicts in {wall:.0f} s; responder {counters}")
    notes = [f"{wall:.0f} s, FDT 1 s, active-active (qfe0/qfe1) probing the router address",
             f"responder: {received} echo requests, {dropped} dropped ({applied:.2f} %), "
             f"delay uniform {DELAY_MS - JITTER_MS:g}-{DELAY_MS + JITTER_MS:g} ms",
             "false verdicts logged: " + (", ".join(false[:5]) if false else "none")]
    return [Row("false failovers with 1 % random probe loss and 5 ms jitter at FDT 1 s over 10 min", "0",
                f"{len(false)} in {wall / 60:.0f} min ({received} probes answered or dropped, "
                f"{applied:.2f} % dropped)", not false, notes)]
