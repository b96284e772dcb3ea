"""The root every command's files live under: ``-R DIR``, else ``$IPMP_ROOT``, else ``/``.

Solaris commands take an alternate root with ``-R`` (``pkgadd -R``,
``ifconfig`` of a zone's root); ours also read it from the environment, so
that a lab or a test can point a whole process tree at one directory.

A module of its own because every command needs it first and some need
little else: ``ipmpstat`` only talks to in.mpathd, and importing it from
``ipmp.hostfiles`` would load the hostname-file parser and the data model
on each run of a command that scripts call in loops.  Imports nothing but
``os`` and ``pathlib``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ROOT_ENV", "root_path"]

#: The environment variable that names the root when no ``-R`` is given.
ROOT_ENV = "IPMP_ROOT"


def root_path(cli_root: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The root all files live under: ``-R DIR``, else ``$IPMP_ROOT``, else ``/``.

    An empty string counts as not given (``Path("")`` would mean the
    current directory, a surprising place to configure a host from).
    """
    if cli_root:
        return Path(cli_root)
    env = os.environ if environ is None else environ
    value = env.get(ROOT_ENV, "")
    return Path(value) if value else Path("/")
