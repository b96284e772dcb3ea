"""The real in.mpathd's control socket against a local user: its log and its stream slots.

Issue 20, points 5 and 6, as ``nobody`` (through ``setpriv``) against the
daemon of a lab (the active-active example, FDT 700 ms):

* 10,000 malformed requests, one connection each, make at most
  COMPLAINT_BURST complaint lines and one count a minute (the count adds up
  to every request), where each used to make a line of its own and pushed
  the failover lines past journald's rate limit; a NIC failed during the
  flood is still logged ("NIC failure detected") and failed over;
* ``nobody`` opens as many streams as it can: MAX_SUBSCRIBERS_PER_UID per
  topic, and root still subscribes (it used to find all 32 taken); the
  streams ``nobody`` leaves unread are dropped after STREAM_IDLE_TIMEOUT,
  the one it reads is kept.

The lab's root is in a world-traversable temporary directory, so that
``nobody`` can reach the socket.
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
import time
from collections.abc import Callable

import pytest
from mpathd_harness import MpathdLab, figures, wait_for
from test_mpathd_streams import Collector
from unprivileged import NOBODY_ENV, nobody_python

from ipmp.lab.topology import Topology
from ipmp.mpathd import control, ipc, protocol

MakeTopology = Callable[..., Topology]

REQUESTS = 10_000
D0 = "192.0.2.100"
COMPLAINT = r"^loopback_cmd: bad command format \(request is not JSON\)$"
COUNT = r"^(\d+) more complaints from uid 65534 suppressed$"

#: ``nobody``'s flood: argv = socket, requests.  One connection per request,
#: each answered before the next; prints how many answers came back.
FLOOD = r"""
import json, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
answered = 0
start = time.monotonic()
for _ in range(n):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"{]\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        answered += data.startswith(b"{")
print(json.dumps({"answered": answered, "seconds": time.monotonic() - start}), flush=True)
"""

#: ``nobody`` holding streams: argv = socket.  Subscribes to each topic until
#: refused (at most 40 tries), reads the last ``probes`` stream from a
#: thread and none of the others, prints what it got; on a line on stdin,
#: prints for each stream whether the daemon has closed it.
HOLD = r"""
import json, socket, sys, threading
path = sys.argv[1]

def subscribe(topic):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(json.dumps({"v": 1, "op": "subscribe", "topic": topic}).encode() + b"\n")
    data = b""
    while b"\n" not in data:
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    reply = json.loads(data)
    if reply["mpathd_error"]:
        s.close()
        return None, reply["sys_error"]
    return s, 0

held = {"probes": [], "events": []}
refusals = {}
for topic in held:
    for _ in range(40):
        s, err = subscribe(topic)
        if s is None:
            refusals[topic] = err
            break
        held[topic].append(s)
read = {"lines": 0, "eof": False}
reader = held["probes"][-1] if held["probes"] else None

def drain():
    reader.settimeout(None)
    while True:
        chunk = reader.recv(65536)
        if not chunk:
            read["eof"] = True
            return
        read["lines"] += chunk.count(b"\n")

if reader is not None:
    threading.Thread(target=drain, daemon=True).start()
print(json.dumps({"held": {t: len(v) for t, v in held.items()}, "refused": refusals}), flush=True)
sys.stdin.readline()

def state(s):
    s.setblocking(False)
    try:
        while s.recv(65536):
            pass
    except BlockingIOError:
        return "open"
    except OSError:
        pass
    return "closed"

print(json.dumps({"unread": {t: [state(s) for s in v if s is not reader] for t, v in held.items()},
                  "reader": {"lines": read["lines"], "closed": read["eof"]}}), flush=True)
"""


@pytest.fixture
def lab(public_lab: MpathdLab) -> MpathdLab:
    return public_lab


def nobody(*argv: str, stdin: int | None = None) -> subprocess.Popen[str]:
    """A Python program run as ``nobody``; the Unix socket needs no namespace of the lab."""
    return subprocess.Popen(nobody_python().argv(*argv), env=NOBODY_ENV, text=True,
                            stdin=stdin, stdout=subprocess.PIPE)


def ended(proc: subprocess.Popen[str]) -> None:
    """Ends a process this test started, by its pid."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def test_a_flood_of_bad_requests_makes_a_few_lines_and_failover_is_still_logged(lab: MpathdLab) -> None:
    d = lab.start()
    t0 = time.monotonic()
    flood = nobody("-c", FLOOD, str(control.socket_path(lab.root)), str(REQUESTS))
    try:
        # A failure in the middle of the flood: detected, logged, failed over.
        wait_for(lambda: d.matching(COMPLAINT, since=t0) or None, 30.0, "the flood to begin")
        lab.topo.fail_link("qfe0")
        d.wait_line(r"^NIC failure detected on qfe0 of group prod$", since=t0, timeout=10)
        d.wait_line(r"^Successfully failed over from NIC qfe0 to NIC qfe1$", since=t0, timeout=10)
        out, _ = flood.communicate(timeout=600)
    finally:
        ended(flood)
    assert flood.returncode == 0
    result = json.loads(out)
    assert result["answered"] == REQUESTS  # every bad request is still answered (IPMP_EPROTO)
    assert lab.layout().nic_of(D0) == "qfe1"
    # The count comes when nobody's interval ends, COMPLAINT_INTERVAL after its first complaint.
    first = d.matching(COMPLAINT, since=t0)[0].t
    d.wait_line(COUNT, since=t0, timeout=max(1.0, first + ipc.COMPLAINT_INTERVAL + 10 - time.monotonic()))
    t_end = time.monotonic()
    complaints = d.matching(COMPLAINT, since=t0)
    counts = [int(m.group(1)) for ln in d.matching(COUNT, since=t0) if (m := re.match(COUNT, ln.text))]
    minutes = (t_end - t0) / 60.0
    figures("complaints", requests=REQUESTS, flood_seconds=result["seconds"], complaint_lines=len(complaints),
            count_lines=len(counts), lines_per_10000=(len(complaints) + len(counts)) * 10_000 / REQUESTS)
    # Every complaint is either a line or counted in one.
    assert len(complaints) + sum(counts) == REQUESTS
    # At most COMPLAINT_BURST lines and one count per interval begun.
    intervals = 1 + int(minutes * 60 // ipc.COMPLAINT_INTERVAL)
    assert 1 <= len(complaints) <= ipc.COMPLAINT_BURST * intervals, len(complaints)
    assert 1 <= len(counts) <= intervals
    # Nothing else but the failover's own lines.
    others = [ln.text for ln in d.snapshot() if ln.t >= t0 and not re.match(COMPLAINT, ln.text)
              and not re.match(COUNT, ln.text)]
    assert len(others) <= 10, others


def test_streams_per_user_root_reserved_and_idle_streams_dropped(lab: MpathdLab) -> None:
    d = lab.start()
    path = str(control.socket_path(lab.root))
    holder = nobody("-c", HOLD, path, stdin=subprocess.PIPE)
    root_streams: list[Collector] = []
    try:
        assert holder.stdout is not None and holder.stdin is not None
        got = json.loads(holder.stdout.readline())
        # Per uid and topic, then refused (EAGAIN), not a daemon's worth of slots.
        assert got["held"] == {t: ipc.MAX_SUBSCRIBERS_PER_UID for t in protocol.TOPICS}, got
        assert got["refused"] == {t: errno.EAGAIN for t in protocol.TOPICS}, got
        # Root still subscribes, to both topics (and reads them).
        for topic in protocol.TOPICS:
            root_streams.append(Collector(lab.root, topic))
        # Something to say on the events topic; probes flow anyway.  Nobody
        # reads its streams but one: those are dropped STREAM_IDLE_TIMEOUT later.
        t0 = time.monotonic()
        lab.topo.fail_link("qfe0")
        d.wait_line(r"^NIC failure detected on qfe0 of group prod$", since=t0, timeout=10)
        time.sleep(ipc.STREAM_IDLE_TIMEOUT + 3 * ipc.STREAM_IDLE_CHECK + 2.0)
        holder.stdin.write("check\n")
        holder.stdin.flush()
        after = json.loads(holder.stdout.readline())
        assert holder.wait(10) == 0
        # Root's streams, which it reads, are open still (the thread reading each would have ended).
        assert all(c._thread.is_alive() for c in root_streams), "a stream root reads was closed"
    finally:
        ended(holder)
        for stream in root_streams:
            stream.close()
    unread = after["unread"]
    assert unread == {"probes": ["closed"] * (ipc.MAX_SUBSCRIBERS_PER_UID - 1),
                      "events": ["closed"] * ipc.MAX_SUBSCRIBERS_PER_UID}, after
    # The stream it reads is kept, with its probes; so are root's, which it reads.
    assert after["reader"]["closed"] is False and after["reader"]["lines"] > 0, after
    probes, events = (c.snapshot() for c in root_streams)
    assert probes and any(e["event"] == "if_change" and e["interface"] == "qfe0" for e in events), events
    figures("streams", held_by_nobody=sum(got["held"].values()), root_subscribed=len(root_streams),
            root_events=len(events))
