"""The persistent ``ipadm`` configuration on disk: ``<root>/etc/ipadm/ipadm.conf``.

The path is Solaris' (libipadm ``IPADM_DB_FILE``), so a file copied from a
Solaris 11 host is read where it was.  Only root writes it: the directory is
0755 and the file 0644, as ``ipmgmtd`` creates them (``IPADM_FILE_MODE``),
whatever the umask.  A write replaces the file atomically (a temporary file
in the same directory, fsync, rename), so a reader or a boot never sees half
a file; the temporary file is opened with ``O_NOFOLLOW``, so a link planted
at its name is never written through.  The text format is
``ipmp.config.ipadm_db``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ipmp.config.ipadm_db import IpadmDb, parse_db, render_db
from ipmp.errors import StateError

#: Where libipadm keeps it (illumos ``libipadm_impl.h`` IPADM_DB_FILE).
DB_PATH = "etc/ipadm/ipadm.conf"
DIR_MODE = 0o755
FILE_MODE = 0o644


def db_path(root: str | os.PathLike[str]) -> Path:
    return Path(root) / DB_PATH


def load(root: str | os.PathLike[str]) -> IpadmDb:
    """The persistent configuration; empty when there is no file.

    Raises:
        ParseError: a line is no ``name=value;`` list (``FILE:LINE:COL``).
        StateError: the file cannot be read.
    """
    path = db_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return IpadmDb((), str(path))
    except (OSError, UnicodeDecodeError) as err:
        raise StateError(f"{path}: {getattr(err, 'strerror', None) or err}") from None
    return parse_db(text, str(path))


def save(root: str | os.PathLike[str], db: IpadmDb) -> None:
    """Replace the file with ``db`` (atomically, explicit modes).

    Raises:
        StateError: it cannot be written; the old file is left as it was.
    """
    path = db_path(root)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, DIR_MODE)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        with open(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fd, FILE_MODE)
            fh.write(render_db(db))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateError(f"{path}: {err.strerror}") from None
