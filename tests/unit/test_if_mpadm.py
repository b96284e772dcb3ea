"""if_mpadm: usage, §5 messages and exit codes, retries, against a scripted daemon."""

from __future__ import annotations

import asyncio
import errno
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipmp.cli import if_mpadm
from ipmp.mpathd import control, ipc, protocol
from ipmp.mpathd.ipc import Peer
from ipmp.mpathd.protocol import Reply, Request

USAGE = "Usage : if_mpadm [-d | -r] <interface_name>\n"
MIN_RED = ("Offline failed as there is no other functional interface available in the multipathing "
           "group for failing over the network access.\n")
PARTIAL = ("Offline cannot be undone because multipathing configuration is not consistent across all "
           "the interfaces in the group.\n")


def write_state(root: Path, **offline: bool) -> None:
    """A hand-written state store: hme0 and qfe0 in group prod."""
    doc: dict[str, Any] = {
        "version": 1,
        "interfaces": [
            {"name": name, "plumbed": [4], "group": "prod", "offline": offline.get(name, False),
             "logicals": [{"family": 4, "unit": 0, "address": f"192.0.2.{i}/24", "up": True}]}
            for i, name in enumerate(("hme0", "qfe0"), start=1)
        ],
        "defaultrouters": [],
        "extra": {},
    }
    path = root / "run/ipmp/state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def is_offline(root: Path, name: str) -> bool:
    doc = json.loads((root / "run/ipmp/state.json").read_text())
    return bool(next(i for i in doc["interfaces"] if i["name"] == name)["offline"])


class FakeDaemon:
    """ipc.serve with a scripted handler, on its own loop in a thread.

    Each request takes the next scripted reply; on success the daemon flips
    OFFLINE in the state store, as the real one does before replying,
    unless ``forget`` is set.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.replies: list[Reply] = []
        self.requests: list[Request] = []
        self.log: list[str] = []
        self.forget = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.AbstractServer | None = None

    async def handle(self, request: Request, peer: Peer) -> Reply:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.ok and not self.forget and request.op in ("offline", "undo_offline"):
            path = self.root / "run/ipmp/state.json"
            doc = json.loads(path.read_text())
            for itf in doc["interfaces"]:
                if itf["name"] == request.ifname.partition(":")[0]:
                    itf["offline"] = request.op == "offline"
            path.write_text(json.dumps(doc))
        return reply

    def start(self, handle: Callable[[Request, Peer], Awaitable[Reply]] | None = None) -> None:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(
            ipc.serve(control.socket_path(self.root), handle or self.handle, log=self.log.append,
                      # Tests need not run as root: stand in for the peer check.
                      authorise=lambda request, peer: True),
            self.loop,
        )
        self.server = future.result(5)

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        self.loop.close()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path))
    write_state(tmp_path)
    return tmp_path


@pytest.fixture
def daemon(root: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(root)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def run(argv: list[str], capsys: pytest.CaptureFixture[str], sleep: Sleeps | None = None) -> tuple[int, str]:
    status = if_mpadm.main(argv, sleep=sleep or Sleeps())
    out, err = capsys.readouterr()
    assert out == "" or argv == ["--version"]
    return status, err


# --------------------------------------------------------------------------
# Usage
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "first"), [
    ([], ""),
    (["hme0"], ""),
    (["-x"], "if_mpadm: illegal option -- x\n"),
    (["-d"], "if_mpadm: option requires an argument -- d\n"),
    (["-r"], "if_mpadm: option requires an argument -- r\n"),
    (["--", "-d", "hme0"], ""),
    (["--version", "-d"], "if_mpadm: illegal option -- -\n"),
])
def test_usage(root: Path, argv: list[str], first: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv, capsys) == (1, first + USAGE)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert if_mpadm.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("if_mpadm (ipmp) ")


def test_getopt_forms() -> None:
    assert list(if_mpadm._getopt(["-dhme0"])) == [("d", "hme0")]
    assert list(if_mpadm._getopt(["-R", "/x", "-r", "qfe0", "extra"])) == [("R", "/x"), ("r", "qfe0")]
    assert list(if_mpadm._getopt(["-d", "-r"])) == [("d", "-r")]


# --------------------------------------------------------------------------
# Pre-checks against the state store
# --------------------------------------------------------------------------


def test_already_offlined(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(root, hme0=True)
    assert run(["-d", "hme0"], capsys) == (1, "Interface already offlined\n")


def test_not_offlined(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-r", "hme0"], capsys) == (1, "Interface not offlined\n")


def test_unknown_interface_reads_as_unplumbed(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-d", "bge0"], capsys) == (1, "ioctl: SIOCGLIFFLAGS: No such device or address\n")


def test_precheck_runs_before_a_later_bad_option(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(root, hme0=True)
    assert run(["-d", "hme0", "-x"], capsys) == (1, "Interface already offlined\n")


def test_unreadable_state_store(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "run/ipmp/state.json").write_text("{")
    status, err = run(["-d", "hme0"], capsys)
    assert status == 1 and err.startswith("if_mpadm: state store is unreadable")


def test_alternate_root_option(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path / "elsewhere"))
    write_state(tmp_path, qfe0=True)
    assert run(["-d", "qfe0", "-R", str(tmp_path)], capsys) == (1, "Interface already offlined\n")


# --------------------------------------------------------------------------
# Talking to the daemon
# --------------------------------------------------------------------------


def test_no_daemon(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-d", "hme0"], capsys) == (
        1, "connect: No such file or directory\nCannot establish communication with in.mpathd.\n")


def test_offline_success(root: Path, daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-d", "hme0"], capsys) == (0, "")
    assert daemon.requests == [Request("offline", "hme0", 1)]
    assert is_offline(root, "hme0")
    assert run(["-r", "hme0"], capsys) == (0, "")
    assert daemon.requests[1] == Request("undo_offline", "hme0")
    assert not is_offline(root, "hme0")


def test_logical_name_is_checked_on_its_nic_and_sent_as_given(
        root: Path, daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.replies = [Reply(protocol.MPATHD_SYS_ERROR, errno.EINVAL)]
    assert run(["-d", "hme0:1"], capsys) == (1, "if_mpadm: Invalid argument\n")
    assert daemon.requests == [Request("offline", "hme0:1", 1)]


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(protocol.MPATHD_MIN_RED_ERROR), MIN_RED),
    (Reply(protocol.MPATHD_FAILBACK_PARTIAL), PARTIAL),
    (Reply(protocol.MPATHD_SYS_ERROR, errno.EINVAL), "if_mpadm: Invalid argument\n"),
    (Reply(protocol.MPATHD_SYS_ERROR, errno.EPERM), "if_mpadm: Operation not permitted\n"),
    (Reply(protocol.MPATHD_FAILBACK_DISABLED), "Operation returned an unrecognized error: 3\n"),
    (Reply(protocol.IPMP_EPROTO), "Operation returned an unrecognized error: 10\n"),
])
def test_daemon_errors(root: Path, daemon: FakeDaemon, reply: Reply, message: str,
                       capsys: pytest.CaptureFixture[str]) -> None:
    daemon.replies = [reply]
    assert run(["-d", "hme0"], capsys) == (1, message)
    assert not is_offline(root, "hme0")


def test_undo_partial_failback(root: Path, daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(root, qfe0=True)
    daemon.replies = [Reply(protocol.MPATHD_FAILBACK_PARTIAL)]
    assert run(["-r", "qfe0"], capsys) == (1, PARTIAL)


def test_retry_then_success(root: Path, daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.replies = [Reply(protocol.MPATHD_SYS_ERROR, errno.EAGAIN), Reply()]
    sleeps = Sleeps()
    assert run(["-d", "hme0"], capsys, sleeps) == (0, "Retrying ...\nRetry Successful.\n")
    assert sleeps.calls == [1.0]
    assert len(daemon.requests) == 2


def test_retry_then_other_error(root: Path, daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.replies = [Reply(protocol.MPATHD_SYS_ERROR, errno.EAGAIN), Reply(protocol.MPATHD_MIN_RED_ERROR)]
    assert run(["-d", "hme0"], capsys) == (1, "Retrying ...\n" + MIN_RED)


def test_device_busy_after_three_attempts(root: Path, daemon: FakeDaemon,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    daemon.replies = [Reply(protocol.MPATHD_SYS_ERROR, errno.EAGAIN)] * 4
    sleeps = Sleeps()
    assert run(["-d", "hme0"], capsys, sleeps) == (
        1, "Retrying ...\nRetrying ...\nRetrying ...\nDevice busy. Retry the operation later.\n")
    assert sleeps.calls == [1.0, 1.0, 1.0]
    assert len(daemon.requests) == 3


def test_daemon_did_not_set_offline(root: Path, daemon: FakeDaemon,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    daemon.forget = True
    assert run(["-d", "hme0"], capsys) == (
        1, "Operation failed : in.mpathd has not set IFF_OFFLINE on hme0\n")


def test_daemon_did_not_clear_offline(root: Path, daemon: FakeDaemon,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_state(root, hme0=True)
    daemon.forget = True
    assert run(["-r", "hme0"], capsys) == (
        1, "Operation failed : in.mpathd has not cleared IFF_OFFLINE on hme0\n")


def test_daemon_hangs_up_without_a_reply(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeDaemon(root)

    async def hang_up(request: Request, peer: Peer) -> Reply:
        raise asyncio.CancelledError  # the connection task dies; the socket closes unanswered

    fake.start(hang_up)
    try:
        assert run(["-d", "hme0"], capsys) == (1, "Failed to successfully read result from in.mpathd.\n")
    finally:
        fake.stop()
