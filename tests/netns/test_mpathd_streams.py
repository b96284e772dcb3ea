"""in.mpathd's event streams and service-manager side on the real kernel.

The active-active example booted into a lab (see ``mpathd_harness``): probe
events for ``ipmpstat -p`` with real round trips to the router, state-change
events when a link fails and comes back, ``ipmpstat -p`` itself, and the
``-f`` mode a systemd ``Type=notify`` unit runs: readiness on
``$NOTIFY_SOCKET`` only once the control socket answers, ``RELOADING=1`` and a
new ``READY=1`` across a SIGHUP re-exec, ``STOPPING=1`` on SIGTERM; and the
statistics SIGUSR1 logs.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from mpathd_harness import BIN, Daemon, MakeLab, wait_for

from ipmp.mpathd import control, protocol


class Collector:
    """Events of one subscription, read by a thread until ``close``."""

    def __init__(self, root: Path, topic: protocol.Topic) -> None:
        self.stream = control.subscribe(root, topic)
        assert self.stream.reply.ok, self.stream.reply
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self.stream:
                with self._lock:
                    self.events.append(event)
        except (control.ReadFailed, OSError):
            pass  # closed under us

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def close(self) -> None:
        self.stream.close()
        self._thread.join(5)


def test_probe_and_state_events(make_lab: MakeLab) -> None:
    lab = make_lab()
    topo = lab.topo
    lab.start()
    probes = Collector(lab.root, "probes")
    changes = Collector(lab.root, "events")
    try:
        assert probes.stream.reply.data["snapshot"]["groups"]["prod"]["state"] == "ok"
        router = topo.router_ip(4)
        wait_for(lambda: len({e["interface"] for e in probes.snapshot() if e["state"] == "acked"}) == 2,
                 5.0, "acknowledged probes on both NICs")
        acked = [e for e in probes.snapshot() if e["state"] == "acked"]
        for e in acked:
            assert e["topic"] == "probes" and e["event"] == "probe" and e["target"] == router
            assert 0 <= e["netrtt_ms"] <= e["rtt_ms"] < 500, e
            assert e["rttavg_ms"] is not None and e["crtt_ms"] is not None, e
            assert abs(e["sent"] - time.monotonic()) < 10  # the daemon's clock is ours
        t0 = time.monotonic()
        topo.fail_link("qfe0")
        lab.daemon.wait_line("^Successfully failed over from NIC qfe0 to NIC qfe1$", since=t0, timeout=5)

        def seen(event: str, **fields: str) -> bool:
            return any(e["event"] == event and all(e.get(k) == v for k, v in fields.items())
                       for e in changes.snapshot())

        wait_for(lambda: seen("if_change", interface="qfe0", state="failed", previous_state="ok")
                 and seen("group_state", group="prod", state="degraded"), 5.0, "the failure events",
                 context=lambda: json.dumps(changes.snapshot(), indent=1))
        t1 = time.monotonic()
        topo.repair_link("qfe0")
        lab.daemon.wait_line("^Successfully failed back to NIC qfe0$", since=t1, timeout=15)
        wait_for(lambda: seen("if_change", interface="qfe0", state="ok", previous_state="failed")
                 and seen("group_state", group="prod", state="ok", previous_state="degraded"),
                 5.0, "the repair events", context=lambda: json.dumps(changes.snapshot(), indent=1))
        assert all(e["topic"] == "events" for e in changes.snapshot())
    finally:
        probes.close()
        changes.close()
    assert lab.daemon.alive() and not lab.daemon.matching("Traceback|cannot publish"), lab.daemon.text()


def test_ipmpstat_p_prints_probes_until_interrupted(make_lab: MakeLab) -> None:
    lab = make_lab()
    lab.start()
    env = ["env", f"IPMP_ROOT={lab.root}"]
    for extra, check in ((["-p"], "human"), (["--json", "-p"], "json")):
        proc = subprocess.Popen([*env, str(BIN / "ipmpstat"), *extra], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(8)]
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        assert proc.returncode == 130 and err == "", (proc.returncode, err)
        if check == "human":
            assert lines[0].split() == ["TIME", "INTERFACE", "PROBE", "NETRTT", "RTT", "RTTAVG", "TARGET"]
            for line in lines[1:]:
                time_s, nic, seq, netrtt, rtt, rttavg, target = line.split()
                assert nic in ("qfe0", "qfe1") and int(seq) > 0 and target == lab.topo.router_ip(4)
                assert time_s.endswith("s") and float(time_s[:-1]) > -1.0
                assert netrtt.endswith("ms") and rtt.endswith("ms") and rttavg.endswith("ms"), line
        else:
            docs = [json.loads(line) for line in lines]
            assert {d["state"] for d in docs} == {"acked"} and {d["family"] for d in docs} == {"inet"}


def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    return sock


def test_foreground_mode_tells_systemd_when_it_is_ready(make_lab: MakeLab, tmp_path: Path) -> None:
    lab = make_lab()
    path = tmp_path / "notify"
    with _notify_socket(path) as notify:
        proc = lab.topo.popen("host", [*lab.env, f"NOTIFY_SOCKET={path}", str(BIN / "in.mpathd"), "-f"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        daemon = Daemon(proc, tmp_path / "in.mpathd-f.log")
        lab.daemons.append(daemon)
        ready = notify.recv(4096).decode()
        # Readiness means the control socket answers (the same promise as the daemonize pipe).
        assert control.is_running(lab.root) and control.call(lab.root, protocol.Request("ping")).ok
        fields = dict(line.split("=", 1) for line in ready.splitlines())
        assert fields["READY"] == "1" and fields["MAINPID"] == str(proc.pid), ready
        assert daemon.alive()  # -f: no fork, the pid systemd started is the daemon
        daemon.signal(signal.SIGHUP)
        assert notify.recv(4096) == b"RELOADING=1"
        again = notify.recv(4096).decode()
        assert again.startswith("READY=1\n") and f"MAINPID={proc.pid}" in again  # re-exec: same pid
        daemon.wait_line("^SIGHUP: restart and reread config file$", timeout=5)
        daemon.signal(signal.SIGTERM)
        assert notify.recv(4096) == b"STOPPING=1"
        assert daemon.wait_exit(10) == 0, daemon.text()
    assert not control.is_running(lab.root)
    assert not daemon.matching("Traceback"), daemon.text()


MISSED = re.compile(r"^Missed sending total of \d+ probes spread over \d+ occurrences$")


def _numbers(texts: list[str]) -> dict[str, int]:
    """``Number of <what> <n>`` lines of a statistics block, as {what: n}."""
    out = {}
    for text in texts:
        m = re.match(r"^Number of (.+) (\d+)$", text)
        assert m, text
        out[m.group(1)] = int(m.group(2))
    return out


def test_sigusr1_logs_the_tables_and_the_probe_statistics(make_lab: MakeLab) -> None:
    """SIGUSR1 (§2.10): the tables at debug level, then the Solaris statistics lines."""
    lab = make_lab()
    daemon = lab.start()
    time.sleep(1.0)  # ten more probes on each NIC at FDT 700 ms
    t0 = time.monotonic()
    daemon.signal(signal.SIGUSR1)
    wait_for(lambda: len(daemon.matching("^Number of ambiguous probe acks received", since=t0)) == 2, 10,
             "the two statistics blocks", context=daemon.text)
    lines = [line.text for line in daemon.snapshot() if line.t >= t0]
    assert lines[0] == "Printing configuration:", lines
    assert any(text.startswith("Target on inet qfe0 addr 192.0.2.1") for text in lines), lines
    assert len([text for text in lines if MISSED.match(text)]) == 1, lines
    for nic in ("qfe0", "qfe1"):
        at = lines.index(f"Probe stats on (inet {nic})")
        block = _numbers(lines[at + 1:at + 6])
        sent, acked = block["probes sent"], block["probe acks received"]
        assert sent >= 10 and acked >= 8, block
        assert sent == acked + block["probes/acks lost"] + block["valid unacknowledged probes"], block
    assert daemon.alive() and control.call(lab.root, protocol.Request("ping")).ok
