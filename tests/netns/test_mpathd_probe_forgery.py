"""Forged echo replies cannot hide a dead NIC from in.mpathd (issue 20, point 9).

The attack, on the real kernel in a lab topology (active-active, FDT 700 ms):

* ``nobody`` on the host reads the sequence numbers of qfe0's probes from
  the daemon's ``probes`` event stream, which is open to every user
  (``ipmpstat -p``), and hands them on;
* a station on qfe0's link (``probe_forger.py`` in the switch namespace,
  sending out of qfe0's switch port) forges echo replies from the router
  for those probes and the next two;
* then qfe0 fails silently (its switch port is cut off from the bridge,
  carrier stays): nothing of the router's reaches it any more, only the
  forgeries do.

The forger knows the ICMP id two ways: ``guessed``, illumos's
``((pid & 0xff) << 8) | (ifindex & 0xff)`` from the daemon's pid (which
``ps`` shows every user) and the NIC's index; ``seen``, copied from a probe
the NIC sent through the port before the failure, with what that probe
carried after the Solaris payload (its token).  With illumos's id and
sequence numbers and no token, the forgeries were believed and the failure
was never detected (the NIC's data address stayed on a NIC that passed
nothing).  Now the id is random and every reply must bring back the token
of the probe it answers: "NIC failure detected" comes as without the forger.

Unprivileged local users cannot forge the replies themselves: Linux gives
them no raw socket, and ping sockets (``net.ipv4.ping_group_range``) send
echo requests only; an echo reply they provoke from another host comes
from that host, which the daemon checks against the probe's target, and
reaches the daemon only on the NIC the socket is bound to.  So the forger
is on the link, and the local user supplies what the daemon publishes.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from mpathd_harness import FAILOVER, FAILURE, MpathdLab, figures, wait_for
from unprivileged import NOBODY_ENV, nobody_python

from ipmp.lab.topology import Topology

MakeTopology = Callable[..., Topology]

HERE = Path(__file__).resolve().parent
FORGER = HERE / "probe_forger.py"
T0 = "192.0.2.10"
#: Detection bound at FDT 700 ms, loose for a noisy VM (as the silent-failure test).
DETECT_BOUND = 3.0
#: How long the failure may stay hidden before the test gives up waiting.
HIDDEN_FOR = 10.0

#: What nobody runs: every probe of one NIC (IPv4) from the probes stream, as "<seq> <state>".
SPY = """
import sys
from pathlib import Path
from ipmp.mpathd import control, ipc
with control.subscribe(Path(sys.argv[1]), "probes") as stream:
    if not stream.reply.ok:
        sys.exit(f"subscribe refused: {stream.reply}")
    for event in stream:
        if event.get("interface") == sys.argv[2] and event.get("family") == "inet":
            print(event["probe"], event["state"], flush=True)
"""


@pytest.fixture
def lab(public_lab: MpathdLab) -> MpathdLab:
    return public_lab


class Lines(threading.Thread):
    """Collect a process's output lines with the time each came; optionally pass them on."""

    def __init__(self, stream: IO[bytes], relay: IO[bytes] | None = None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.relay = relay
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.start()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            with self._lock:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").strip()))
            if self.relay is not None:
                try:
                    self.relay.write(raw)
                    self.relay.flush()
                except (BrokenPipeError, ValueError):
                    self.relay = None

    def since(self, t: float) -> list[str]:
        with self._lock:
            return [text for when, text in self.lines if when >= t]

    def events(self) -> list[dict[str, Any]]:
        out = []
        for text in self.since(0.0):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process this test started, by its own Popen (its pid)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("forger", ["guessed", "seen"])
def test_forged_replies_do_not_hide_a_silently_dead_nic(lab: MpathdLab, forger: str) -> None:
    topo = lab.topo
    d = lab.start()
    argv = [sys.executable, str(FORGER), "--port", topo.port("qfe0"), "--nic-mac", topo.macs["qfe0"],
            "--router-mac", topo.router_mac, "--router", topo.router_ip(4), "--test-address", T0]
    if forger == "guessed":
        ifindex = int(topo.ip_json("host", "link", "show", "dev", "qfe0")[0]["ifindex"])
        argv += ["--ident", str(((d.pid & 0xFF) << 8) | (ifindex & 0xFF))]
    else:
        argv.append("--learn")
    forge = topo.popen("switch", argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    spy = topo.popen("host", nobody_python().argv("-c", SPY, str(lab.root), "qfe0"),
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=NOBODY_ENV)
    assert forge.stdout is not None and spy.stdout is not None
    told = Lines(forge.stdout)
    seqs = Lines(spy.stdout, relay=forge.stdin)
    try:
        wait_for(lambda: any(e.get("event") == "ready" for e in told.events()), 15.0,
                 "the forger to be ready", context=lambda: f"forger: {told.events()} exit {forge.poll()}")
        wait_for(lambda: len(seqs.since(0.0)) >= 5, 10.0, "nobody to read probe sequence numbers",
                 context=lambda: f"spy exit {spy.poll()}")
        t0 = time.monotonic()
        topo.fail_silent("qfe0")
        fail = d.wait_line(FAILURE.format(nic="qfe0"), since=t0, timeout=HIDDEN_FOR)
        moved = d.wait_line(FAILOVER.format(src="qfe0", dst="qfe1"), since=t0, timeout=5)
        during = seqs.since(t0)
    finally:
        stop(spy)
        seqs.join(10)
        if forge.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                forge.stdin.close()
        stop(forge)
        told.join(10)
    done = [e for e in told.events() if e.get("event") == "done"]
    assert done, f"forger: {told.events()}"
    lost = [line for line in during if line.endswith(" lost")]
    figures(f"forgery-{forger}", detect_s=fail.t - t0, move_s=moved.t - t0, lost_seen_by_nobody=len(lost),
            forged_replies=done[0]["sent"])
    # The attack really ran during the outage: nobody saw qfe0's probes
    # lost and the forger answered every one of them, and the next two.
    assert len(lost) >= 3, during
    assert done[0]["lines"] >= len(lost) and done[0]["sent"] == 3 * done[0]["lines"]
    assert fail.t - t0 < DETECT_BOUND, f"detection took {fail.t - t0:.2f} s at FDT 700 ms"
    if forger == "seen":
        # The probe on the wire carried a token after the Solaris payload, and
        # the forger sent it back with every forgery: one probe's token is no
        # other probe's.
        learned = [e for e in told.events() if e.get("event") == "learned"]
        assert len(learned) == 1 and len(bytes.fromhex(learned[0]["tail"])) == 8, learned
    assert lab.layout().nic_of("192.0.2.100") == "qfe1"
