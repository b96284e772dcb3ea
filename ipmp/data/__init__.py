"""Files shipped inside the package: systemd units and manual pages.

``ipmp/data/systemd/*.service``
    ``in.mpathd.service`` (``Type=notify``, ``WatchdogSec=``, runs
    ``in.mpathd -f``) and ``ipmp-boot.service`` (``Type=oneshot``), each with
    the systemd sandbox its work allows (the comments in the files say why
    each setting is there; ``tests/vm`` proves them under systemd), with
    ``ExecStart`` in ``/usr/local/bin``; ``unit_text`` rewrites that to where
    this installation's commands are.
``ipmp/data/man/*.5``, ``*.8``
    The manual pages.  In the source tree they live in the top-level
    ``man/`` directory and the build copies them here (``setup.py``), so an
    editable install or a checkout reads them from ``man/``.

``python -m ipmp.data`` prints these directories and installs the files (see
``ipmp.data.__main__``).
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

__all__ = ["DEFAULT_BINDIR", "UNITS", "man_dir", "man_pages", "scripts_dir", "systemd_dir", "unit_text"]

HERE = Path(__file__).resolve().parent
#: Where the shipped units expect the commands.
DEFAULT_BINDIR = "/usr/local/bin"
UNITS = ("in.mpathd.service", "ipmp-boot.service")


def systemd_dir() -> Path:
    return HERE / "systemd"


def man_dir() -> Path:
    """The manual pages: the package's copy, else the checkout's ``man/``.

    Raises:
        FileNotFoundError: neither exists (a broken installation).
    """
    for candidate in (HERE / "man", HERE.parents[1] / "man"):
        if (candidate / "in.mpathd.8").is_file():
            return candidate
    raise FileNotFoundError("the ipmp manual pages are not installed")


def man_pages() -> list[Path]:
    """Every page, sorted by name: ``ifconfig.8``, ``mpathd.5``, ..."""
    return sorted(p for p in man_dir().iterdir() if p.suffix in (".5", ".8"))


def scripts_dir() -> Path:
    """Where this installation's console scripts are (the running interpreter's scheme)."""
    exe_dir = Path(sys.executable).parent
    if (exe_dir / "in.mpathd").exists():
        return exe_dir  # a virtualenv, or the interpreter's own bin
    return Path(sysconfig.get_path("scripts"))


def unit_text(name: str, bindir: Path | str | None = None) -> str:
    """The unit file ``name``, with its commands taken from ``bindir`` (default: ``scripts_dir()``)."""
    text = (systemd_dir() / name).read_text(encoding="utf-8")
    target = str(scripts_dir() if bindir is None else bindir).rstrip("/")
    return text.replace(f"={DEFAULT_BINDIR}/", f"={target}/")
