"""The ``vm`` marker: tests that boot a Debian guest under QEMU (minutes, root, mmdebstrap, QEMU).

They are not part of a plain ``pytest tests`` (``make test``): they run when
selected with ``-m vm`` (``make vm-hardening``) or named on the command line
(``pytest tests/vm/test_hardening.py``).  Deselected, not skipped: a run that
selects them and cannot run them fails under CI (``tests.vm.test_hardening``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


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
