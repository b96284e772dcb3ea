"""How a root process of the toolkit starts another Python program of it.

Solaris starts ``/usr/lib/inet/in.mpathd`` by its absolute path.  Ours is a
module of this package, and ``python -m MODULE`` puts the current directory
first on ``sys.path``: a file ``ipmp/cli/in_mpathd.py`` that any local user
left in a directory where root then ran ``ifconfig ... group X`` ran as
root (issue 20).  So every program the toolkit starts as root is
``<absolute interpreter> -I -m MODULE``: isolated mode puts neither the
current directory nor the script's directory on ``sys.path`` and ignores
every ``PYTHON*`` variable (``PYTHONPATH``, ``PYTHONHOME``, ``PYTHONSTARTUP``)
and the user's site directory; the package is imported from the
interpreter's own installation, as the program that starts it was.  The
child also starts in ``/`` (``ROOT_CWD``), not in the caller's directory.
"""

from __future__ import annotations

import os
import sys

__all__ = ["ROOT_CWD", "interpreter", "python_module"]

#: The working directory of every program started (nothing is read relative to it).
ROOT_CWD = "/"


def interpreter() -> str:
    """This process's interpreter as an absolute path (a relative one would be looked up again)."""
    exe = sys.executable
    if not exe:
        raise RuntimeError("the Python interpreter's path is unknown (sys.executable is empty)")
    return os.path.abspath(exe)


def python_module(module: str, *args: str) -> list[str]:
    """The argv that runs ``python -m module args...`` safely as root."""
    return [interpreter(), "-I", "-m", module, *args]
