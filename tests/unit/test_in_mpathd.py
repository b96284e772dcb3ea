"""in.mpathd's command line, its logger (with a stand-in syslog) and systemd readiness."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from ipmp.cli import in_mpathd
from ipmp.host import sdnotify
from ipmp.mpathd.logger import Logger

# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace ``run``: record what main decided instead of starting a daemon."""
    seen: list[dict[str, Any]] = []

    def fake_run(**kwargs: Any) -> int:
        seen.append(kwargs)
        return 0

    monkeypatch.setattr(in_mpathd, "run", fake_run)
    return seen


@pytest.mark.parametrize(("argv", "adopt", "foreground", "debug"), [
    ([], False, False, False),
    (["-a"], True, False, False),
    (["-d"], False, True, True),
    (["-D", "0x4"], False, True, True),
    (["-D0x4"], False, True, True),
    (["-f"], False, True, False),
    (["--foreground"], False, True, False),
    (["-af"], True, True, False),
    (["-a", "--foreground", "-d"], True, True, True),
])
def test_options(runs: list[dict[str, Any]], argv: list[str], adopt: bool, foreground: bool,
                 debug: bool) -> None:
    assert in_mpathd.main(argv) == 0
    assert runs == [{"adopt": adopt, "foreground": foreground, "debug": debug, "argv": argv}]


@pytest.mark.parametrize("argv", [["-x"], ["-m"], ["-l"], ["--bogus"], ["extra"], ["-"], ["-a:"]])
def test_other_options_print_the_solaris_usage(runs: list[dict[str, Any]], argv: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert in_mpathd.main(argv) == 1
    assert capsys.readouterr().err == "usage: in.mpathd\n"
    assert runs == []


@pytest.mark.parametrize("value", ["0", "junk", ""])
def test_bad_debug_flags(runs: list[dict[str, Any]], value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert in_mpathd.main(["-D", value] if value else ["-D"]) == 1
    assert capsys.readouterr().err == f"Bad debug flags: {value}\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from ipmp import __version__

    assert in_mpathd.main(["-a", "--version"]) == 0
    assert capsys.readouterr().out == f"in.mpathd (ipmp) {__version__}\n"


def test_options_table_matches_the_parser() -> None:
    assert set(in_mpathd.OPTIONS) == {"-a", "-d", "-D", "-f", "--foreground", "--version"}


def test_where_messages_go(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(in_mpathd, "SYSLOG_SOCKET", str(tmp_path / "log"))
    decide = in_mpathd.logs_to_stderr
    assert decide(foreground=True, debug=True) and decide(foreground=True, debug=False)  # no syslog here
    assert not decide(foreground=False, debug=False)  # daemon mode: syslog (its stderr is /dev/null)
    (tmp_path / "log").touch()
    assert not decide(foreground=True, debug=False)  # -f with a syslog socket: syslog
    assert decide(foreground=True, debug=True)


# --------------------------------------------------------------------------
# Logger
# --------------------------------------------------------------------------


class FakeSyslog:
    LOG_PID, LOG_DAEMON = 0x01, 3 << 3
    LOG_ERR, LOG_INFO, LOG_DEBUG = 3, 6, 7

    def __init__(self) -> None:
        self.opened: list[tuple[str, int, int]] = []
        self.lines: list[tuple[int, str]] = []

    def openlog(self, ident: str, logoption: int, facility: int) -> None:
        self.opened.append((ident, logoption, facility))

    def syslog(self, priority: int, message: str) -> None:
        self.lines.append((priority, message))


def test_logger_writes_to_syslog_as_solaris(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeSyslog()
    log = Logger(to_stderr=False, debug=False, backend=fake)
    assert fake.opened == [("in.mpathd", FakeSyslog.LOG_PID, FakeSyslog.LOG_DAEMON)]
    log("err", "NIC failure detected on qfe0 of group prod")
    log("info", "inet qfe2 has been removed from kernel")
    log("debug", "not without -d")
    log("err", "100% literal %s")
    assert fake.lines == [(3, "NIC failure detected on qfe0 of group prod"),
                          (6, "inet qfe2 has been removed from kernel"), (3, "100% literal %s")]
    verbose = Logger(to_stderr=False, debug=True, backend=fake)
    verbose("debug", "probe status 2 Duplicate probe reply")
    assert fake.lines[-1] == (7, "probe status 2 Duplicate probe reply")
    assert capsys.readouterr() == ("", "")


def test_logger_in_debug_mode_writes_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeSyslog()
    log = Logger(to_stderr=True, debug=True, backend=fake)
    log("err", "The link has gone down on qfe0")
    log("debug", "trace")
    assert fake.opened == [] and fake.lines == []
    assert capsys.readouterr().err == "The link has gone down on qfe0\ntrace\n"


def test_the_real_syslog_module_fits_the_backend() -> None:
    import syslog

    for name in ("LOG_PID", "LOG_DAEMON", "LOG_ERR", "LOG_INFO", "LOG_DEBUG", "openlog", "syslog"):
        assert hasattr(syslog, name)
    assert (syslog.LOG_ERR, syslog.LOG_INFO, syslog.LOG_DEBUG) == (3, 6, 7)


# --------------------------------------------------------------------------
# sd_notify
# --------------------------------------------------------------------------


def _listen(addr: bytes | str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(5)
    return sock


def test_notify_to_an_abstract_socket() -> None:
    name = f"ipmp-test-notify-{os.getpid()}"
    with _listen(b"\0" + name.encode()) as sock:
        assert sdnotify.notify("READY=1\nSTATUS=ok", env={"NOTIFY_SOCKET": f"@{name}"})
        assert sock.recv(4096) == b"READY=1\nSTATUS=ok"


def test_notify_to_a_socket_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with _listen(str(path)) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sdnotify.notify("STOPPING=1")
        assert sock.recv(4096) == b"STOPPING=1"
    # Gone: nothing to send to, and no error either.
    assert not sdnotify.notify("READY=1")


@pytest.mark.parametrize("value", [None, "", "@", "vsock:2:1234", "relative/path"])
def test_no_usable_notify_socket(value: str | None) -> None:
    env = {} if value is None else {"NOTIFY_SOCKET": value}
    assert not sdnotify.notify("READY=1", env=env)


def test_address_forms() -> None:
    assert sdnotify.address("@/org/freedesktop/systemd1/notify") == b"\0/org/freedesktop/systemd1/notify"
    assert sdnotify.address("/run/systemd/notify") == b"/run/systemd/notify"
    assert sdnotify.address("vsock:1:2") is None


def test_the_checkout_runs_the_module(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-m", "ipmp.cli.in_mpathd", "-q"], capture_output=True, text=True,
                          timeout=30, check=False, cwd=Path(__file__).resolve().parents[2])
    assert (done.returncode, done.stderr) == (1, "usage: in.mpathd\n")


@pytest.mark.parametrize(("env", "period"), [
    ({"WATCHDOG_USEC": "20000000"}, 20.0),
    ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "4242"}, 0.4),
    ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "4243"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_PID": "4242"}, None),
    ({}, None),
])
def test_watchdog_period_as_sd_watchdog_enabled(env: dict[str, str], period: float | None) -> None:
    assert sdnotify.watchdog_period(env, pid=4242) == period


def test_programs_started_as_root_run_isolated_by_absolute_path() -> None:
    from ipmp.program import python_module

    argv = python_module("ipmp.cli.in_mpathd", "-a")
    assert os.path.isabs(argv[0])
    assert argv[1:] == ["-I", "-m", "ipmp.cli.in_mpathd", "-a"]
