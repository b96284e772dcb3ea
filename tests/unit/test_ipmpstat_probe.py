"""``ipmpstat -p``: the probe-event layout, and the command against a daemon that streams."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from ipmp.admin.ipmpstat import ProbeFormatter, probe_json, probe_row
from ipmp.cli import ipmpstat as cli
from ipmp.mpathd.ipc import Broker
from ipmp.mpathd.protocol import Reply, Request
from tests.unit.ipc_server import ServerThread
from tests.unit.test_ipmpstat import DEGRADED, NO_DAEMON, itf, run, snap

START = 500.0


def event(seq: int, *, sent: float = START + 0.11, interface: str = "hme0", lost: bool = False,
          target: str = "192.0.2.1") -> dict[str, Any]:
    return {"v": 1, "topic": "probes", "event": "probe", "interface": interface, "group": "prod",
            "family": "inet", "probe": seq, "state": "lost" if lost else "acked", "target": target,
            "sent": sent, "time": 1.7e9, "netrtt_ms": None if lost else 0.512,
            "rtt_ms": None if lost else 0.764, "rttavg_ms": 0.625, "rttdev_ms": 0.25, "crtt_ms": 2}


HEADER = "TIME      INTERFACE   PROBE  NETRTT    RTT       RTTAVG    TARGET"


def test_rows_are_solaris_11s() -> None:
    fmt = ProbeFormatter(start=START)
    assert [line.text for line in fmt.lines(event(589))] == [
        HEADER, "0.11s     hme0        589    0.51ms    0.76ms    0.62ms    192.0.2.1"]
    # A lost probe: no NETRTT, no RTT; the header is not repeated within the page.
    assert [line.text for line in fmt.lines(event(590, sent=START - 1.5, lost=True))] == [
        "-1.50s    hme0        590    --        --        0.62ms    192.0.2.1"]


def test_header_repeats_every_page_and_parsable_has_none() -> None:
    fmt = ProbeFormatter(["interface", "probe"], page_rows=3)
    texts = [line.text for n in range(5) for line in fmt.lines(event(n))]
    assert texts == ["INTERFACE   PROBE", "hme0        0", "hme0        1",
                     "INTERFACE   PROBE", "hme0        2", "hme0        3",
                     "INTERFACE   PROBE", "hme0        4"]
    parsable = ProbeFormatter(["time", "target", "netrtt", "rttdev"], parsable=True, start=START)
    assert [line.text for line in parsable.lines(event(1, target="fe80::1", lost=True))] == [
        "0.11s:fe80\\:\\:1::0.25ms"]
    assert ProbeFormatter(["all"], start=START).lines(event(2))[0].text.endswith("RTTDEV")


def test_rows_survive_odd_events() -> None:
    assert probe_row({"event": "probe"}, START) == dict.fromkeys(
        ("TIME", "INTERFACE", "PROBE", "NETRTT", "RTT", "RTTAVG", "TARGET", "RTTDEV"), "")
    assert probe_row({"probe": True, "sent": "soon", "rtt_ms": False}, START)["PROBE"] == ""


def test_json_objects() -> None:
    assert probe_json(event(7), START) == {
        "time": 0.11, "interface": "hme0", "probe": 7, "netrtt": 0.512, "rtt": 0.764, "rttavg": 0.625,
        "target": "192.0.2.1", "rttdev": 0.25, "state": "acked", "family": "inet", "group": "prod"}
    lost = probe_json(event(8, lost=True), START)
    assert (lost["netrtt"], lost["rtt"], lost["state"]) == (None, None, "lost")


# --------------------------------------------------------------------------
# The command against a streaming fake daemon
# --------------------------------------------------------------------------


class StreamingDaemon(ServerThread):
    """ipc.serve with a broker: answers queries with ``snapshot``; on each subscription plays
    the next script of events, then (if ``hang_up``) closes the server."""

    def __init__(self, root: Path, snapshot: Mapping[str, Any], scripts: list[list[dict[str, Any]]],
                 *, hang_up: bool = True) -> None:
        self.broker = Broker(on_subscribe=lambda topic: self.loop.call_soon(self._play))
        super().__init__(root, broker=self.broker)
        self.snapshot = snapshot
        self.scripts = scripts
        self.hang_up = hang_up

    def answer(self, request: Request) -> Reply:
        if request.op == "subscribe":
            return Reply(data={"topic": request.topic, "snapshot": dict(self.snapshot)})
        return Reply(data=dict(self.snapshot))

    def _play(self) -> None:
        script = self.scripts.pop(0) if self.scripts else []
        for doc in script:
            self.broker.publish("probes", {k: v for k, v in doc.items() if k not in ("v", "topic")})
        if self.hang_up and not self.scripts:
            assert self.server is not None
            self.server.close()  # ends the stream: queued lines first, then EOF


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path))
    monkeypatch.setattr(cli, "RECONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(cli, "RECONNECT_INTERVAL", 0.05)
    # TIME counts from ipmpstat's start: pin it.
    monkeypatch.setattr(cli, "_clock", lambda: START)
    return tmp_path


@pytest.fixture
def streaming(root: Path) -> Iterator[list[StreamingDaemon]]:
    made: list[StreamingDaemon] = []
    yield made
    for daemon in made:
        daemon.stop()


def test_probe_lines_until_the_daemon_is_gone(root: Path, streaming: list[StreamingDaemon],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    daemon = StreamingDaemon(root, DEGRADED, [[event(1), event(2, lost=True), {"event": "future"}]])
    streaming.append(daemon)
    daemon.start()
    status, out, err = run(["-p"], capsys)
    assert (status, err) == (1, NO_DAEMON)  # the daemon went away and did not come back
    assert out.splitlines() == [HEADER,
                                "0.11s     hme0        1      0.51ms    0.76ms    0.62ms    192.0.2.1",
                                "0.11s     hme0        2      --        --        0.62ms    192.0.2.1"]
    assert daemon.requests == [Request("query"), Request("subscribe", topic="probes")]


def test_json_lines_and_a_dropped_stream_is_picked_up_again(root: Path, streaming: list[StreamingDaemon],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    daemon = StreamingDaemon(root, DEGRADED, [[event(1), {"event": "overflow", "limit": 1024}, event(99)],
                                              [event(2)]])
    streaming.append(daemon)
    daemon.start()
    status, out, err = run(["--json", "-p"], capsys)
    assert status == 1
    assert err == f"ipmpstat: {cli.MSG_EVENTS_LOST}\n" + NO_DAEMON
    assert [json.loads(line)["probe"] for line in out.splitlines()] == [1, 2]
    assert out.splitlines()[0] == json.dumps(probe_json(event(1), START), separators=(",", ":"))


def test_probe_mode_checks_before_subscribing(root: Path, streaming: list[StreamingDaemon],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    link_only = snap({"p": ("ok", 1)}, {"hme0": itf("p", probe="disabled")}, [])
    daemon = StreamingDaemon(root, link_only, [])
    streaming.append(daemon)
    daemon.start()
    assert run(["-p"], capsys) == (1, "", "ipmpstat: probe-based failure detection is disabled\n")
    assert run(["-P", "-o", "probe,bogus", "-p"], capsys) == (
        1, "", "ipmpstat: unknown output field: `bogus'\n")
    assert daemon.requests == [Request("query")]


def test_options_table_matches_the_parser() -> None:
    assert set(cli.OPTIONS) == {"-n", "-P", "-o", "-a", "-g", "-i", "-p", "-t", "-R", "--json", "--version"}
