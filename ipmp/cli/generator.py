"""``ipmp-boot-generator``: the systemd generator that orders ``ipmp-boot.service`` after its NICs.

systemd runs it early at boot, and at every ``systemctl daemon-reload``, as
``ipmp-boot-generator NORMAL EARLY LATE`` (systemd.generator(7)).  What it
writes, and why, is ``ipmp.host.bootorder``'s; this shell checks the command
line, prints what was skipped on standard error (which systemd passes to the
kernel log) and exits 0 whatever happens (2 only for a wrong command line,
which is not systemd's): a generator never fails the boot.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ipmp import __version__
from ipmp.host import bootorder
from ipmp.host.altroot import root_path
from ipmp.host.bootorder import PROG, UNIT

__all__ = ["main", "run"]


def run(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """The generator's work; its exit status (0 unless the command line is wrong)."""
    if list(argv) == ["--version"]:
        print(f"{PROG} {__version__}")
        return 0
    if len(argv) not in (1, 3) or any(not a or a.startswith("-") for a in argv):
        print(f"usage: {PROG} NORMAL-DIR [EARLY-DIR LATE-DIR]", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    warn: list[str] = []
    env = os.environ if environ is None else environ
    try:
        bootorder.generate(outdir, root_path(None, environ), env, warn)
    except Exception as err:  # whatever it is: a generator must never fail the boot
        warn.append(f"{PROG}: {err}; {UNIT} is not ordered after its NICs")
    for line in warn:
        print(line, file=sys.stderr)
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
