"""nobody's installation of the package works wherever the checkout lives (issue 15, point 8).

Cloned into a ``mktemp -d`` folder (0700) or a home directory, the checkout
is out of ``nobody``'s reach, and the attack tests that run our clients as
``nobody`` failed before they attacked anything ("no Python 3.11+ the user
nobody can run").  Here the checkout is hidden from ``nobody`` for real: a
mount namespace of the command's own (``unshare``) mounts an empty tmpfs of
mode 0700 over it.  The old way (the checkout on ``PYTHONPATH``) is refused
there, as a check that the checkout really is hidden; ``unprivileged``'s
installation still imports every client, and so does a program it starts
the way ipmp.program starts one (``<interpreter> -I``: no ``PYTHONPATH``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from unprivileged import CLIENTS, NOBODY, NOBODY_ENV, nobody_python

REPO = Path(__file__).resolve().parents[2]

#: Run ``"$@"`` with the directory ``$1`` hidden under an empty tmpfs only root may enter.
HIDE = 'dir=$1; shift; mount -t tmpfs -o mode=0700,size=1m ipmp-hidden "$dir" && exec "$@"'

#: What nobody runs: the clients, then ipmp.program's way of starting a program of ours.
IMPORTS = f"""
import subprocess, sys
import ipmp, {", ".join(CLIENTS)}
from ipmp import program
print(ipmp.__file__)
child = [program.interpreter(), "-I", "-c", "import ipmp.cli.if_mpadm, ipmp; print(ipmp.__file__)"]
done = subprocess.run(child, capture_output=True, text=True, cwd=program.ROOT_CWD)
sys.stderr.write(done.stderr)
print(done.stdout.strip())
sys.exit(done.returncode)
"""


def hidden(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``argv`` with the checkout hidden by a mount only this command sees."""
    argv = ("unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE, "sh", str(REPO), *argv)
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=120, check=False)


def test_nobody_runs_the_clients_where_the_checkout_is_out_of_its_reach() -> None:
    nobody = nobody_python()
    # The checkout really is hidden: with it on PYTHONPATH, as before, nobody imports nothing.
    # (The venv's base interpreter: the venv itself has the copy.)
    old = hidden(*NOBODY, str(nobody.python.resolve()), "-c", "import ipmp.cli.if_mpadm",
                 env={**NOBODY_ENV, "PYTHONPATH": str(REPO)})
    assert old.returncode != 0 and "No module named 'ipmp'" in old.stderr, (old.stdout, old.stderr)
    new = hidden(*nobody.argv("-c", IMPORTS), env=NOBODY_ENV)
    assert new.returncode == 0, (new.stdout, new.stderr)
    imported = [Path(line) for line in new.stdout.split()]
    assert len(imported) == 2, new.stdout
    for path in imported:
        assert path.is_relative_to(nobody.top) and not path.is_relative_to(REPO), path


def test_nobodys_installation_is_roots_and_nobody_cannot_change_it() -> None:
    # nobody reads and runs it; a file nobody could write would be code nobody
    # slips into what the next test runs.
    top = nobody_python().top
    for path in (top, *top.rglob("*")):
        if path.is_symlink():
            continue
        info = path.lstat()
        assert (info.st_uid, info.st_gid) == (0, 0), path
        assert info.st_mode & 0o022 == 0, f"{path} is writable by others: {oct(info.st_mode)}"
    probe = top / "venv" / "nobody-was-here"
    done = subprocess.run([*NOBODY, "touch", str(probe)], capture_output=True, text=True, cwd="/",
                          check=False)
    assert done.returncode != 0 and not probe.exists(), done.stderr
