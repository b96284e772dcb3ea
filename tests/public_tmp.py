"""Temporary directories other users can reach, for the tests that act as ``nobody``.

pytest's ``tmp_path`` is private to root (``/tmp/pytest-of-root`` is 0700),
and so may ``$TMPDIR`` be (a runner's, or an admin's ``mktemp -d``): a
control socket or a program there is out of ``nobody``'s reach, and a test
that attacks as ``nobody`` would fail before it attacked anything.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def traversable_by_all(path: Path) -> bool:
    """Every directory from / down to ``path`` lets other users through (o+x)."""
    path = path.resolve()
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


def public_tempdir(prefix: str) -> Path:
    """A new directory (root's, mode 0755) that every user can reach; the caller removes it.

    Under ``$TMPDIR`` when every user can traverse it, else under /tmp or
    /var/tmp.  ``mkdtemp`` makes the name unpredictable and the directory
    exclusively ours, so no local user can have prepared it.
    """
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if os.path.isdir(base) and traversable_by_all(Path(base)):
            top = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
            top.chmod(0o755)
            return top
    raise AssertionError(f"no temporary directory every user can traverse ({tempfile.gettempdir()}, "
                         "/tmp, /var/tmp); the checks as nobody need one")
