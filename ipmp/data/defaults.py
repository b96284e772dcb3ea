"""The default ``/etc/default/mpathd``, as Solaris ships one, and putting it in place.

``ipmp/data/default/mpathd`` holds in.mpathd's three settings at their
defaults (illumos ``mpathd.dfl``: the same keys and values, with comments of
our own), so that an administrator finds the file to edit where Solaris has
it.  A Debian package installs it as a conffile; a wheel installation puts it
in place with ``python -m ipmp.data install-default /etc/default``.

The installer never overwrites: an existing file is the administrator's (or
was copied from a Solaris host), and its settings win.  It creates the file
with ``O_CREAT | O_EXCL``, which also refuses to follow a symbolic link left
at that path, and with mode 0644 whatever the umask: the daemon runs as root
and reads it; everyone may read the defaults, as on Solaris.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MPATHD_DEFAULT", "install_mpathd_default", "mpathd_default_text"]

#: The shipped file.
MPATHD_DEFAULT = Path(__file__).resolve().parent / "default" / "mpathd"


def mpathd_default_text() -> str:
    return MPATHD_DEFAULT.read_text(encoding="ascii")


def install_mpathd_default(directory: Path) -> Path | None:
    """Write ``directory/mpathd`` unless something is there; its path, or None if left alone.

    Raises:
        OSError: the directory cannot be made or written.
    """
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = directory / "mpathd"
    if os.path.lexists(target):
        return None
    data = mpathd_default_text().encode("ascii")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        return None  # made meanwhile: it is not ours to replace
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, data)
    finally:
        os.close(fd)
    return target
