"""The package as a user gets it: ``python -m build``, then the wheel in a fresh virtualenv.

The build runs on a copy of the project's sources under a temporary directory, so
the work tree gets no ``build/`` or ``*.egg-info``.  The fresh virtualenv installs
the wheel with pip (its dependencies come from the configured package index) and
must then have every console script, answering ``--version``, and the manual pages
and systemd units as package data.  The units, pointed at that virtualenv by
``python -m ipmp.data install-units``, must pass ``systemd-analyze verify``, keep their
sandbox and score at most ``MAX_EXPOSURE`` with ``systemd-analyze security --offline``
(the unsandboxed units scored 9.6 and 9.5, "UNSAFE"; tests/vm proves the sandbox under
systemd in a Debian guest); without ``systemd-analyze`` that test is skipped, except under
CI, where it fails.

Slow (a build and an install: about a minute), and needs the ``build`` package
(the ``test`` extra) and a reachable package index.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipmp import __version__
from tests.ci import missing

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("ifconfig", "if_mpadm", "in.mpathd", "ipmpstat", "ipmp-boot", "ipmp-lab", "ipadm")
UNITS = ("in.mpathd.service", "ipmp-boot.service")
#: What the build needs from the checkout.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "ipmp", "man")
PAGES = sorted(p.name for p in (REPO / "man").iterdir() if p.suffix in (".5", ".8"))
#: The highest ``systemd-analyze security`` exposure either unit may have (0 best, 10 worst).
MAX_EXPOSURE = 3.0
#: Sandbox lines both units must keep (ipmp/data/systemd says why each is there).
SANDBOX = ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
           "RuntimeDirectory=ipmp", "RuntimeDirectoryMode=0755", "RuntimeDirectoryPreserve=yes",
           "ProtectKernelTunables=yes", "ReadWritePaths=/proc/sys/net", "NoNewPrivileges=yes",
           "ProtectKernelModules=yes", "ProtectKernelLogs=yes", "ProtectControlGroups=yes",
           "ProtectClock=yes", "ProtectHostname=yes", "RestrictNamespaces=yes", "RestrictRealtime=yes",
           "RestrictSUIDSGID=yes", "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
           "SystemCallArchitectures=native", "SystemCallFilter=@system-service", "UMask=0022")


def _env() -> dict[str, str]:
    """The environment without anything that would make Python import the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    venv: Path
    bin: Path
    python: Path
    work: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    if importlib.util.find_spec("build") is None:
        missing("the 'build' package is not installed (pip install -e '.[test]')")
    top = tmp_path_factory.mktemp("packaging")
    src = top / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    out = top / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(src)], cwd=top)
    wheels = sorted(out.glob("*.whl"))
    sdists = sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(out.iterdir())
    return Dist(wheels[0], sdists[0])


@pytest.fixture(scope="module")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    top = tmp_path_factory.mktemp("venv")
    venv = top / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=top)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(dist.wheel)], cwd=top, timeout=600)
    work = top / "work"  # an empty working directory: nothing to import by accident
    work.mkdir()
    yield Installed(venv, venv / "bin", python, work)
    shutil.rmtree(top, ignore_errors=True)


def test_wheel_and_sdist_carry_the_pages_and_units(dist: Dist) -> None:
    assert dist.wheel.name == f"ipmp-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(dist.wheel) as whl:
        names = set(whl.namelist())
        entry_points = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert {f"ipmp/data/man/{page}" for page in PAGES} <= names
    assert {f"ipmp/data/systemd/{unit}" for unit in UNITS} <= names
    for script in SCRIPTS:
        assert f"\n{script} = " in entry_points, script
    with tarfile.open(dist.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {f"man/{page}" for page in PAGES} <= members
    assert {f"ipmp/data/systemd/{unit}" for unit in UNITS} <= members
    assert {"setup.py", "pyproject.toml", "MANIFEST.in"} <= members


def test_every_console_script_is_installed_and_has_a_version(installed: Installed) -> None:
    for script in SCRIPTS:
        path = installed.bin / script
        assert path.is_file() and os.access(path, os.X_OK), script
        done = _run([str(path), "--version"], cwd=installed.work, timeout=60)
        assert __version__ in done.stdout, (script, done.stdout)
        assert done.stdout.count("\n") == 1, (script, done.stdout)


def test_the_installed_package_is_the_wheel_and_has_its_data(installed: Installed) -> None:
    code = ("import ipmp, ipmp.data as d; print(ipmp.__file__); print(d.man_dir()); print(d.systemd_dir()); "
            "print(' '.join(p.name for p in d.man_pages()))")
    lines = _run([str(installed.python), "-c", code], cwd=installed.work).stdout.splitlines()
    package, man_dir, unit_dir, pages = lines
    site = installed.venv.resolve()
    for path in (package, man_dir, unit_dir):
        assert Path(path).resolve().is_relative_to(site), path  # not the checkout
    assert pages.split() == PAGES
    for page in PAGES:
        assert (Path(man_dir) / page).read_bytes() == (REPO / "man" / page).read_bytes()
    assert sorted(p.name for p in Path(unit_dir).glob("*.service")) == sorted(UNITS)


def test_the_units_install_and_verify(installed: Installed, tmp_path: Path) -> None:
    units = tmp_path / "units"
    done = _run([str(installed.python), "-m", "ipmp.data", "install-units", str(units)], cwd=installed.work)
    assert done.stdout.split() == [str(units / unit) for unit in UNITS]
    mpathd = (units / "in.mpathd.service").read_text()
    assert f"ExecStart={installed.bin}/in.mpathd -f\n" in mpathd
    assert "Type=notify" in mpathd and "ExecReload=/bin/kill -HUP $MAINPID" in mpathd
    assert "Restart=on-failure" in mpathd
    boot = (units / "ipmp-boot.service").read_text()
    assert f"ExecStart={installed.bin}/ipmp-boot\n" in boot
    assert "Type=oneshot" in boot and "RemainAfterExit=yes" in boot
    assert "Before=network.target network-online.target" in boot
    for line in SANDBOX:
        assert f"\n{line}\n" in mpathd and f"\n{line}\n" in boot, line
    assert "\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n" in mpathd
    assert "\nRestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET\n" in mpathd
    assert "\nWatchdogSec=20s\n" in mpathd
    assert "\nCapabilityBoundingSet=CAP_NET_ADMIN\n" in boot
    assert "\nRestrictAddressFamilies=AF_UNIX AF_NETLINK\n" in boot
    assert "\nReadWritePaths=/etc/sysctl.d\n" in boot
    pages = tmp_path / "share" / "man"
    _run([str(installed.python), "-m", "ipmp.data", "install-man", str(pages)], cwd=installed.work)
    assert sorted(p.name for p in pages.glob("man?/*")) == PAGES
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze is not installed (apt-get install systemd)")
    assert analyze is not None
    proc = subprocess.run([analyze, "verify", "--man=no", *(str(units / u) for u in UNITS)],
                          capture_output=True, text=True, timeout=120, check=False, env=_env())
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), proc.stdout + proc.stderr
    for unit in UNITS:
        # --threshold is in tenths: the exit status is 1 above it.
        argv = [analyze, "security", "--offline=true", "--no-pager", f"--threshold={MAX_EXPOSURE * 10:g}",
                str(units / unit)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=_env())
        score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
        assert score is not None, proc.stdout + proc.stderr
        assert float(score.group(1)) <= MAX_EXPOSURE and proc.returncode == 0, (unit, proc.stdout[-3000:])
