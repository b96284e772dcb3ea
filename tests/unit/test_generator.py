"""``ipmp-boot-generator``: ``ipmp-boot.service`` waits, for a bounded time, for the NICs its files name.

The generator runs as systemd runs it (``NORMAL EARLY LATE``), in a
subprocess with a temporary root; its output is checked file by file, the
unit names against ``systemd-escape`` when that is installed (under CI it
must be).  Issue 14: without it a NIC whose driver loads late races the boot.

Two forms, as the systemd that runs it: 251 and later (``$SYSTEMD_SCOPE``
set) get ``ExecStartPre=-udevadm wait``, whose wait begins when ipmp-boot's
turn comes; older ones the device units with ``JobRunningTimeoutSec=``,
whose clock starts with the boot transaction (a real boot spent the whole
budget before a late NIC came: tests/vm/test_boot_order.py).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipmp.cli import generator
from ipmp.host import bootorder
from ipmp.host.bootorder import DEVICE_TIMEOUT, device_unit, escape_path, nics_to_wait_for
from tests.ci import missing

NAMES = ["ens8", "enp1s0f0", "eth0.100", "veth-a", "wlp0s20f3", "bond_0", "x:y", ".hidden", "é0"]


def _run(root: Path, out: Path, *args: str, scope: str | None = None) -> subprocess.CompletedProcess[str]:
    """The generator as systemd runs it; ``scope``: ``$SYSTEMD_SCOPE`` (set by systemd 251 and later)."""
    env = {k: v for k, v in os.environ.items() if k not in ("IPMP_ROOT", "SYSTEMD_SCOPE")}
    env["IPMP_ROOT"] = str(root)
    if scope is not None:
        env["SYSTEMD_SCOPE"] = scope
    argv = [sys.executable, "-m", "ipmp.cli.generator", *(args or (str(out), str(out) + "-early",
                                                                      str(out) + "-late"))]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def _files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


def _root(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "root"
    for name, text in files.items():
        path = root / "etc" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_escape_matches_systemd_escape() -> None:
    tool = shutil.which("systemd-escape")
    if tool is None:
        missing("systemd-escape is missing")
    for name in NAMES:
        path = f"/sys/subsystem/net/devices/{name}"
        want = subprocess.run([tool, "--path", "--suffix=device", path], capture_output=True, text=True,
                              check=True).stdout.strip()
        assert device_unit(name) == want, name
    assert escape_path("/") == "-"


def test_escape_by_hand() -> None:
    assert device_unit("ens8") == "sys-subsystem-net-devices-ens8.device"
    assert device_unit("veth-a") == "sys-subsystem-net-devices-veth\\x2da.device"
    assert escape_path(".hidden/x") == "\\x2ehidden-x"


def test_names_through_the_map_once_each() -> None:
    warn: list[str] = []
    nics = nics_to_wait_for(["hme0", "hme0:1", "hme1", "enp9s0", "hme1", "toolongname12345", "a/b"],
                            {"hme0": "enp1s0f0", "hme1": "enp1s0f1"}, warn)
    assert nics == ["enp1s0f0", "enp1s0f1", "enp9s0"]
    assert warn == [
        "ipmp-boot-generator: 'toolongname12345': not a Linux interface name; not waited for",
        "ipmp-boot-generator: 'a/b': not a Linux interface name; not waited for",
    ]


ROOT_FILES = {
    "hostname.hme0": "myhost group prod up\n",
    "hostname.hme0:1": "192.0.2.20 up\n",
    "hostname6.hme1": "addif 2001:db8::5/64 up\n",
    "hostname.veth-a0": "192.0.2.30 up\n",
    "hostname.hme0.bak": "old\n",  # not a file the boot reads (§6.1): not waited for
    "ipmp/ifmap": "hme0 enp1s0f0\nhme1 enp1s0f1\n",
}


def test_older_systemd_gets_wants_after_and_a_bounded_device_wait(tmp_path: Path) -> None:
    root = _root(tmp_path, ROOT_FILES)
    out = tmp_path / "normal"
    started = time.monotonic()
    done = _run(root, out)
    took = time.monotonic() - started
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    units = ["sys-subsystem-net-devices-enp1s0f0.device", "sys-subsystem-net-devices-veth\\x2da0.device",
             "sys-subsystem-net-devices-enp1s0f1.device"]
    files = _files(out)
    assert sorted(files) == sorted(["ipmp-boot.service.d/50-ipmp-devices.conf",
                                    *(f"{u}.d/50-ipmp-timeout.conf" for u in units)])
    main = [line for line in files["ipmp-boot.service.d/50-ipmp-devices.conf"].splitlines()
            if not line.startswith("#")]
    assert main == ["[Unit]", *(f"Wants={u}" for u in units), *(f"After={u}" for u in units)]
    for unit in units:
        text = files[f"{unit}.d/50-ipmp-timeout.conf"]
        assert text.splitlines()[-2:] == ["[Unit]", f"JobRunningTimeoutSec={DEVICE_TIMEOUT}s"]
    for path in out.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    # Only NORMAL is written; no state directory is made under the root.
    assert not (tmp_path / "normal-early").exists() and not (tmp_path / "normal-late").exists()
    assert sorted(p.name for p in root.iterdir()) == ["etc"]
    assert took < 10, took  # a whole interpreter start; generous for a loaded VM


def test_systemd_251_and_later_wait_from_ipmp_boots_own_start(tmp_path: Path) -> None:
    root = _root(tmp_path, ROOT_FILES)
    out = tmp_path / "normal"
    done = _run(root, out, scope="system")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    files = _files(out)
    # Only ipmp-boot's drop-in: a device unit's JobRunningTimeoutSec= would count from the
    # start of the boot, and spend the budget before a late NIC comes.
    assert sorted(files) == ["ipmp-boot.service.d/50-ipmp-devices.conf"]
    lines = [line for line in files["ipmp-boot.service.d/50-ipmp-devices.conf"].splitlines()
             if not line.startswith("#")]
    assert lines == ["[Service]", f"ExecStartPre=-udevadm wait --timeout={DEVICE_TIMEOUT} "
                     '"/sys/class/net/enp1s0f0" "/sys/class/net/veth-a0" "/sys/class/net/enp1s0f1"']
    assert not [line for line in lines if line.startswith(("Wants=", "After="))]
    for path in out.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path


def test_the_wait_form_follows_the_systemd_that_runs_it() -> None:
    assert bootorder.udevadm_wait_works({"SYSTEMD_SCOPE": "system"})
    assert not bootorder.udevadm_wait_works({})
    assert not bootorder.udevadm_wait_works({"SYSTEMD_SCOPE": ""})
    assert bootorder.dropins([]) == {} and bootorder.dropins([], udevadm_wait=False) == {}


def test_exec_arguments_reach_udevadm_as_they_are() -> None:
    # A Linux name may hold what systemd's command-line syntax expands or splits
    # (systemd.service(5), "Command lines"): specifiers, variables, quotes, ";".
    assert bootorder.exec_argument("/sys/class/net/ens8") == '"/sys/class/net/ens8"'
    assert bootorder.exec_argument("a%i$HOME") == '"a%%i$$HOME"'
    assert bootorder.exec_argument('q"b\\c') == '"q\\"b\\\\c"'
    assert bootorder.exec_argument(";") == '";"'
    assert bootorder.exec_argument("é0") == '"\\xc3\\xa90"'
    assert bootorder.exec_argument("a b\t") == '"a\\x20b\\x09"'
    text = bootorder.dropins(["x%n"])["ipmp-boot.service.d/50-ipmp-devices.conf"]
    assert '"/sys/class/net/x%%n"' in text


def test_nothing_to_wait_for_where_udev_does_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # /sys read-only (a container): no udev, so no NIC would ever count as initialized and
    # udevadm wait would hold every boot for the whole timeout.
    root = _root(tmp_path, ROOT_FILES)
    monkeypatch.setenv("IPMP_ROOT", str(root))
    monkeypatch.setenv("SYSTEMD_SCOPE", "system")
    seen: list[str] = []

    def read_only(path: str) -> bool:
        seen.append(path)
        return False

    monkeypatch.setattr(bootorder, "udev_runs", read_only)
    assert generator.run([str(tmp_path / "normal")]) == 0
    assert seen == [str(root / "sys")] and not (tmp_path / "normal").exists()
    monkeypatch.undo()
    assert bootorder.udev_runs(str(tmp_path / "no-such-sys"))  # cannot tell: wait, bounded


def test_generator_never_fails_the_boot(tmp_path: Path) -> None:
    # A bad map line is named and skipped; the good lines still count.
    root = _root(tmp_path, {"hostname.hme0": "192.0.2.10 up\n", "hostname.hme1": "192.0.2.11 up\n",
                            "ipmp/ifmap": "hme0 enp1s0f0\nhme1\n"})
    out = tmp_path / "normal"
    done = _run(root, out)
    assert done.returncode == 0
    assert done.stderr.startswith(f"ipmp-boot-generator: {root}/etc/ipmp/ifmap:2:")
    assert "Wants=sys-subsystem-net-devices-enp1s0f0.device" in _files(out)[
        "ipmp-boot.service.d/50-ipmp-devices.conf"]

    # An unreadable map (a directory): a message, exit 0, nothing written.
    (root / "etc/ipmp/ifmap").unlink()
    (root / "etc/ipmp/ifmap").mkdir()
    out2 = tmp_path / "normal2"
    done = _run(root, out2)
    assert done.returncode == 0 and "is not ordered after its NICs" in done.stderr
    assert not out2.exists()

    # No files at all: nothing to wait for, nothing written, nothing said.
    out3 = tmp_path / "normal3"
    done = _run(tmp_path / "empty", out3)
    assert (done.returncode, done.stderr) == (0, "") and not out3.exists()

    # Not systemd's command line: a usage error.
    assert _run(root, out, "a", "b").returncode == 2
    assert _run(root, out, "-h").returncode == 2
    version = _run(root, out, "--version")
    assert (version.returncode, version.stdout.split()[0]) == (0, "ipmp-boot-generator")


def test_entry_point_is_declared() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'ipmp-boot-generator = "ipmp.cli.generator:main"' in text
    assert callable(generator.main)
