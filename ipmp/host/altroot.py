"""The root every command's files live under: ``-R DIR``, else ``$IPMP_ROOT``, else ``/``.

Solaris commands take an alternate root with ``-R`` (``pkgadd -R``,
``ifconfig`` of a zone's root); ours also read it from the environment, so
that a lab or a test can point a whole process tree at one directory.

A module of its own because every command needs it first and some need
little else: ``ipmpstat`` only talks to in.mpathd, and importing it from
``ipmp.host.hostfiles`` would load the hostname-file parser and the data model
on each run of a command that scripts call in loops.  Imports nothing but
``os``: ``root_dir`` is the root as a string, for a command whose only file
is the daemon's socket (``pathlib`` with ``urllib.parse`` and ``ipaddress``
is a tenth of ``ipmpstat``'s start-up); ``root_path`` is the same as a
``Path``, for the rest.  ``root_file`` names a file under a root as
``pathlib`` would, for the read path of ``ifconfig`` (the state store, the
interface map).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: this module imports nothing it can avoid
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["ROOT_ENV", "root_dir", "root_file", "root_path"]

#: The environment variable that names the root when no ``-R`` is given.
ROOT_ENV = "IPMP_ROOT"


def root_dir(cli_root: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The root all files live under: ``-R DIR``, else ``$IPMP_ROOT``, else ``/``.

    An empty string counts as not given (``Path("")`` would mean the
    current directory, a surprising place to configure a host from).
    """
    if cli_root:
        return cli_root
    env = os.environ if environ is None else environ
    return env.get(ROOT_ENV, "") or "/"


def root_path(cli_root: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``root_dir`` as a ``Path``."""
    from pathlib import Path  # not at the top: see the module docstring

    return Path(root_dir(cli_root, environ))


def root_file(root: str | os.PathLike[str], relative: str) -> str:
    """``str(PurePosixPath(root, relative))`` without loading ``pathlib``.

    The same text, so that messages naming the file do not change: empty
    and ``.`` components dropped, ``..`` kept (it is not ours to resolve
    through a symlink), a relative part that is absolute replacing the
    root, and two leading slashes (POSIX leaves their meaning open) kept.
    """
    absolute = relative.startswith("/")
    base = relative if absolute else os.fspath(root)
    if base.startswith("//") and not base.startswith("///"):
        head = "//"
    else:
        head = "/" if base.startswith("/") else ""
    text = base if absolute else f"{base}/{relative}"
    return head + "/".join(part for part in text.split("/") if part and part != ".") or "."
