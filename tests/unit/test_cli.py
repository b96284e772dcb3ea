"""The command-line shells, run as processes: the paths that need no kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ipmp import __version__
from ipmp.config.keywords import BY_WORD
from ipmp.config.parse import USAGE


def run(module: str, *args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, IPMP_ROOT=str(root), SUNW_NO_MPATHD="1")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def ifconfig(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return run("ipmp.cli.ifconfig", *args, root=root)


def ipmp_boot(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return run("ipmp.cli.boot", *args, root=root)


def test_bare_ifconfig_prints_usage(tmp_path: Path) -> None:
    done = ifconfig(root=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == USAGE + "\n"
    assert done.stderr.startswith("usage: ifconfig <interface>[:<unit>] | -a")


def test_bad_option_letter_prints_usage(tmp_path: Path) -> None:
    done = ifconfig("-x", root=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", USAGE + "\n")


def test_option_without_a_is_no_such_interface(tmp_path: Path) -> None:
    done = ifconfig("-u", root=tmp_path)
    assert (done.returncode, done.stderr) == (1, "ifconfig: -u: no such interface\n")


def test_unsupported_keyword(tmp_path: Path) -> None:
    done = ifconfig("qfe0", "zone", "z", root=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"ifconfig: zone: not supported on Linux ({BY_WORD['zone'].why})\n"


def test_missing_argument(tmp_path: Path) -> None:
    done = ifconfig("qfe0", "netmask", root=tmp_path)
    assert (done.returncode, done.stderr) == (1, "ifconfig: no argument for netmask\n")


@pytest.mark.parametrize("flag", ["--version"])
def test_ifconfig_version(flag: str, tmp_path: Path) -> None:
    done = ifconfig(flag, root=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"ifconfig (ipmp) {__version__}\n", "")


def test_ipmp_boot_version(tmp_path: Path) -> None:
    done = ipmp_boot("--version", root=tmp_path)
    assert done.returncode == 0
    assert done.stdout == f"ipmp-boot, version {__version__}\n"


def test_ipmp_boot_help_lists_its_options(tmp_path: Path) -> None:
    done = ipmp_boot("--help", root=tmp_path)
    assert done.returncode == 0
    assert "-R, --root DIR" in done.stdout
    assert "--dry-run" in done.stdout
    assert "--check" in done.stdout
    assert "hostname.<if>" in done.stdout


def test_ipmp_boot_refuses_unknown_options(tmp_path: Path) -> None:
    done = ipmp_boot("--frobnicate", root=tmp_path)
    assert done.returncode == 2
    assert "No such option" in done.stderr and "--frobnicate" in done.stderr
