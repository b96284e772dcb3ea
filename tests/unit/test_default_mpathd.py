"""The shipped ``/etc/default/mpathd`` and ``python -m ipmp.data install-default`` (issue 14).

Solaris ships the file with in.mpathd's defaults (illumos ``mpathd.dfl``);
the daemon, reading ours, must run with exactly its defaults and say nothing.
The installer must never replace an administrator's file, nor follow a link
planted where the file goes.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from ipmp.data.defaults import MPATHD_DEFAULT, install_mpathd_default, mpathd_default_text
from ipmp.mpathd.settings import (
    DEFAULT_FAILURE_DETECTION_TIME,
    MIN_FAILURE_DETECTION_TIME,
    Settings,
    parse_settings,
)

REPO = Path(__file__).resolve().parents[2]


def test_shipped_file_is_the_solaris_defaults() -> None:
    text = mpathd_default_text()
    assert parse_settings(text) == (Settings(), ())
    settings = [line for line in text.splitlines() if line and not line.startswith("#")]
    # illumos mpathd.dfl: the same three keys, values and order.
    assert settings == [f"FAILURE_DETECTION_TIME={DEFAULT_FAILURE_DETECTION_TIME}", "FAILBACK=yes",
                        "TRACK_INTERFACES_ONLY_WITH_GROUPS=yes"]
    # Each setting is explained above it; the minimum is stated as the daemon enforces it.
    assert f"smallest value\n# accepted is {MIN_FAILURE_DETECTION_TIME}" in text
    assert text.isascii() and text.endswith("\n")  # defread drops a last line without a newline


def test_declared_as_package_data() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^"ipmp\.data" = \[(.*)\]$', pyproject, re.MULTILINE)
    assert match is not None and '"default/mpathd"' in match.group(1)
    assert MPATHD_DEFAULT == REPO / "ipmp/data/default/mpathd"


def test_install_writes_once_and_never_overwrites(tmp_path: Path) -> None:
    target_dir = tmp_path / "etc/default"
    old = os.umask(0o077)
    try:
        written = install_mpathd_default(target_dir)
    finally:
        os.umask(old)
    assert written == target_dir / "mpathd"
    assert written.read_text() == mpathd_default_text()
    assert stat.S_IMODE(written.stat().st_mode) == 0o644  # whatever the umask

    written.write_text("FAILBACK=no\n")
    assert install_mpathd_default(target_dir) is None
    assert written.read_text() == "FAILBACK=no\n"


def test_install_does_not_follow_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "d").mkdir()
    os.symlink(victim, tmp_path / "d/mpathd")
    assert install_mpathd_default(tmp_path / "d") is None
    assert victim.read_text() == "precious\n"
    (tmp_path / "e").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "e/mpathd")
    assert install_mpathd_default(tmp_path / "e") is None
    assert not (tmp_path / "nowhere").exists()


def test_command_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "ipmp.data", "install-default", str(tmp_path)]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (first.returncode, first.stdout, first.stderr) == (0, f"{tmp_path}/mpathd\n", "")
    second = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (second.returncode, second.stdout) == (0, f"{tmp_path}/mpathd: exists; left as it is\n")
