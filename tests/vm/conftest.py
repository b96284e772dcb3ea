"""The ``vm`` marker: tests that boot a Debian guest under QEMU (minutes, root, mmdebstrap, QEMU).

They are not part of a plain ``pytest tests`` (``make test``): they run when
selected with ``-m vm`` (``make vm-hardening``) or named on the command line
(``pytest tests/vm/test_hardening.py``).  Deselected, not skipped: a run that
selects them and cannot run them fails under CI (``tests.vm.test_hardening``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.ci import missing
from tests.vm.guest import progress

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots a Debian guest under QEMU (slow; make vm-hardening)")


def _asked_for(config: pytest.Config) -> bool:
    if "vm" in (config.getoption("markexpr", "") or ""):
        return True
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or path.is_relative_to(HERE):
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the items of the whole session, not just this directory.
    mine = [item for item in items if Path(item.path).resolve().is_relative_to(HERE)]
    for item in mine:
        item.add_marker(pytest.mark.vm)
    if mine and not _asked_for(config):
        config.hook.pytest_deselected(items=mine)
        items[:] = [item for item in items if item not in mine]


# --------------------------------------------------------------------------
# What every guest test needs on the host
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vm_tools() -> None:
    """Root, the image tools and QEMU; without them a skip, or under CI a failure."""
    from tests.vm import image

    if os.geteuid() != 0:
        missing("needs root (mmdebstrap --mode=root, chroot)")
    lacking = image.missing_tools()
    if shutil.which("qemu-system-x86_64") is None:
        lacking.append("qemu-system-x86_64 (apt-get install qemu-system-x86)")
    if lacking:
        missing("missing: " + ", ".join(lacking))


# --------------------------------------------------------------------------
# The Debian package, built once per pytest run for every test that installs it
# (test_package.py, test_coexist.py)
# --------------------------------------------------------------------------


def _version() -> str:
    m = re.search(r'^__version__ = "([^"]+)"$', (REPO / "ipmp" / "__init__.py").read_text(), re.M)
    assert m, "no __version__ in ipmp/__init__.py"
    return m.group(1)


def _build_deb(version: str) -> Path:
    """``make deb`` with ``IPMP_DEB_VERSION=version``: ``dist/ipmp_<version>_all.deb``."""
    env = dict(os.environ, IPMP_DEB_VERSION=version)
    progress(f"$ IPMP_DEB_VERSION={version} tools/build-deb")
    done = subprocess.run([str(REPO / "tools" / "build-deb")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1200, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"tools/build-deb failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    deb = REPO / "dist" / f"ipmp_{version}_all.deb"
    assert deb.is_file(), f"tools/build-deb made no {deb.name}"
    return deb


@pytest.fixture(scope="session")
def debs(vm_tools: None) -> tuple[str, str, list[Path], float]:
    """The tree's version and a newer one, built once per run: (first, second, files, seconds)."""
    if shutil.which("dpkg-deb") is None:
        missing("missing: dpkg-deb (apt-get install dpkg)")
    started = time.monotonic()
    first = _version()
    second = f"{first}+1"
    built = [_build_deb(first), _build_deb(second)]
    return first, second, built, time.monotonic() - started
