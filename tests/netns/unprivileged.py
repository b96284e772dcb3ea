"""What an unprivileged user (``nobody``) needs to run our clients, wherever the checkout lives.

The attack tests run ``if_mpadm``, an event-stream reader or a flood of bad
requests as ``nobody`` against the real daemon.  ``nobody`` can read neither
a checkout in a 0700 directory (``mktemp -d``, a home directory) nor a venv
whose interpreter is a link into one (pyenv in root's home), so neither the
checkout on ``PYTHONPATH`` nor the venv's own interpreter may be what it runs.

So each test session that needs it installs the package for ``nobody``
once, in a directory of its own under a temporary directory every user can
traverse: a venv (``--without-pip``) of a Python 3.11+ interpreter that
``nobody`` was seen to run, with copies of ``ipmp`` (the code under test,
imported from wherever this process imports it) and of the distributions it
depends on in that venv's site-packages.  Everything there is root's, with
explicit modes (directories 0755, files 0644): ``nobody`` reads and runs it
but cannot change what it runs.  It is a real installation, so a client
started ``python -I`` (isolated, as ipmp.program starts every program: no
``PYTHONPATH``, no current directory on ``sys.path``) finds the package;
``nobody``'s programs are started that way too, so a readable current
directory or a ``PYTHON*`` variable of root's cannot shadow the copy.

:func:`remove` (a session fixture of conftest.py calls it) deletes the
directory by its exact path.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import ipmp
from tests.public_tmp import public_tempdir, traversable_by_all

NOBODY_UID = 65534
#: ``setpriv`` must exec the interpreter itself: a program it started (``env``)
#: could not exec an interpreter under a directory only root may traverse.
NOBODY = ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}", "--clear-groups"]
#: The environment of nobody's programs: root's, less every ``PYTHON*`` variable
#: (``-I`` ignores them anyway; a root shell's ``PYTHONPATH`` must not leak in).
NOBODY_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
#: Where a system keeps interpreters every user may run (root's own PATH may
#: hold pyenv shims: scripts in root's home).
SYSTEM_BIN = ("/usr/local/bin", "/usr/bin", "/bin")
#: The modules nobody's programs import; checked as nobody once installed.
CLIENTS = ("ipmp.cli.if_mpadm", "ipmp.cli.ipmpstat", "ipmp.mpathd.ipc")


def _as_nobody(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, env=NOBODY_ENV, cwd="/",
                          timeout=timeout, check=False)


def _base_interpreters() -> list[str]:
    """Interpreters to build nobody's venv from, the one running the tests first."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = [os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)]
    found += [os.path.join(d, name) for name in (version, "python3") for d in SYSTEM_BIN]
    return list(dict.fromkeys(p for p in found if os.path.isfile(p) and os.access(p, os.X_OK)))


def _runnable_interpreter() -> str:
    tried = []
    for candidate in _base_interpreters():
        # setpriv execs with root's capabilities still in effect, so nobody "runs"
        # pyenv's python in root's home, which then finds neither its libpython nor its
        # standard library and borrows the system's: nothing to build on.
        if not traversable_by_all(Path(candidate).parent):
            tried.append(f"{candidate}: in a directory other users cannot traverse")
            continue
        check = _as_nobody([candidate, "-I", "-c", "import sys, venv; sys.exit(sys.version_info < (3, 11))"])
        if check.returncode == 0:
            return candidate
        tried.append(f"{candidate}: exit {check.returncode} {check.stderr.strip()[-200:]}")
    raise AssertionError("no Python 3.11+ with venv the user nobody can run: " + "; ".join(tried or ["none"]))


def _requirement_name(requirement: str) -> str | None:
    """The distribution a ``Requires-Dist`` line names, or None for an extra's."""
    if re.search(r"""\bextra\s*==""", requirement):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return match.group(0) if match else None


def _dependencies() -> list[importlib.metadata.Distribution]:
    """The installed distributions ``ipmp`` needs at run time, transitively."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = ["ipmp"]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a platform's or an old Python's dependency (win_inet_pton): not ours to run
        seen[key] = dist
        todo += [n for n in (_requirement_name(r) for r in dist.requires or []) if n]
    # ipmp itself is copied from where it is imported (an editable install lists no files).
    return [dist for key, dist in seen.items() if key != "ipmp"]


def _copy_distribution(dist: importlib.metadata.Distribution, site: Path) -> None:
    """The files of ``dist`` that live in its site-packages, at the same place under ``site``."""
    origin = Path(str(dist.locate_file(""))).resolve()
    for entry in dist.files or []:
        source = Path(str(dist.locate_file(entry))).resolve()
        if not source.is_relative_to(origin) or not source.is_file():
            continue  # console scripts (../../bin) and files a RECORD lists but that are gone
        target = site / source.relative_to(origin)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _set_modes(top: Path) -> None:
    """Directories 0755, files 0644, whatever root's umask or the checkout's modes were.

    Symbolic links (the venv's interpreter) keep theirs: chmod would follow them.
    """
    for here, dirs, files in os.walk(top):
        os.chmod(here, 0o755)
        for name in dirs + files:
            path = os.path.join(here, name)
            if not os.path.islink(path) and not os.path.isdir(path):
                os.chmod(path, 0o644)


@dataclass(frozen=True)
class NobodyPython:
    """A Python installation with ``ipmp`` in it that ``nobody`` can run."""

    top: Path
    python: Path

    def argv(self, *args: str) -> list[str]:
        """``args`` run by this interpreter as nobody, isolated (``-I``)."""
        return [*NOBODY, str(self.python), "-I", *args]

    def script(self, source: Path) -> Path:
        """A copy of the test program ``source`` that nobody can read (mode 0644)."""
        scripts = self.top / "scripts"
        scripts.mkdir(mode=0o755, exist_ok=True)
        scripts.chmod(0o755)
        target = scripts / source.name
        shutil.copyfile(source, target)
        target.chmod(0o644)
        return target


def _run(argv: list[str]) -> str:
    """Run a step of the installation as root; its output."""
    return subprocess.run(argv, check=True, cwd="/", capture_output=True, text=True, timeout=300).stdout


def install() -> NobodyPython:
    """Build nobody's installation in a new public directory; see the module's docstring."""
    base = _runnable_interpreter()
    top = public_tempdir("ipmp-nobody-")
    try:
        venv = top / "venv"
        _run([base, "-I", "-m", "venv", "--without-pip", str(venv)])
        python = venv / "bin" / "python"
        site = Path(_run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                    .strip()).resolve()
        package = Path(ipmp.__file__).resolve().parent
        shutil.copytree(package, site / "ipmp", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for dist in _dependencies():
            _copy_distribution(dist, site)
        # Byte-code made now, as root: nobody could not write it, and would compile every run.
        _run([str(python), "-I", "-m", "compileall", "-q", str(site / "ipmp")])
        _set_modes(top)
        check = _as_nobody([str(python), "-I", "-c", f"import {', '.join(CLIENTS)}; print(ipmp.__file__)"])
        imported = Path(check.stdout.strip()).resolve()
        if check.returncode != 0 or not imported.is_relative_to(site):
            raise AssertionError(f"nobody cannot import ipmp from {site} with {base}: "
                                 f"{check.stderr or check.stdout}")
        return NobodyPython(top, python)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise


_installed: list[NobodyPython] = []


def nobody_python() -> NobodyPython:
    """This session's installation for nobody, made on first use."""
    if not _installed:
        _installed.append(install())
    return _installed[0]


def remove() -> None:
    """Delete this test run's installation, if one was made (by its exact path)."""
    while _installed:
        shutil.rmtree(_installed.pop().top)
