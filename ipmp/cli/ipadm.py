"""``ipadm``: the Solaris 11 IP administration command, for IPMP (ipadm(8)).

The shell only: the command line is ``ipmp.config.ipadm_syntax``, the
tables of ``show-if``, ``show-addr``, ``show-ifprop`` and of the bare
``ipadm`` are ``ipmp.admin.ipadm_show``, and every subcommand that changes
something is ``ipmp.admin.ipadm.change``.  This prints what they return and
exits with their status: 0, or 1 with Solaris' message on stderr.

The ``show`` subcommands and the bare listing are for anyone, as on Solaris;
they take the read path of ``ifconfig -a`` (no pyroute2, no event loop: the
write path's modules are imported only for a change).  A change needs root:
anyone else gets Solaris' refusal (``ipadm: cannot create interface net0:
Insufficient privileges``) before anything is read or written.

Files live under ``$IPMP_ROOT`` (default ``/``), as for ``ifconfig``:
``etc/ipadm/ipadm.conf`` (the persistent configuration) and ``run/ipmp``
(the state store).  Solaris' ipadm has no ``-R``, and neither has this one.
``ipadm --version`` (alone) prints the version, as every command of the
package does.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ipmp import __version__
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError, parse_argv, refusal
from ipmp.errors import IpmpError
from ipmp.host.altroot import root_dir

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

PROG = "ipadm"
#: The subcommands that only read; "" is the bare ``ipadm`` listing.
SHOW = frozenset({"", "show-if", "show-addr", "show-ifprop"})
#: libipadm ``ipadm_status2str(IPADM_EPERM)``.
INSUFFICIENT_PRIVILEGES = "Insufficient privileges"


def _say(lines: Sequence[str], stream: TextIO) -> None:
    for line in lines:
        print(line, file=stream)


def _show(command: IpadmCommand, root: str) -> int:
    # The read path: what ifconfig -a loads, nothing of the write path.
    from ipmp.admin.ipadm_show import read_host, show

    try:
        config, db = read_host(root)
        output = show(config, db, command)
    except IpadmError as err:
        _say([err.message], sys.stderr)
        return err.status
    except IpmpError as err:
        _say([f"{PROG}: {err}"], sys.stderr)
        return 1
    _say(output.stderr, sys.stderr)
    _say(output.stdout, sys.stdout)
    return output.status


def _change(command: IpadmCommand, root: str) -> int:
    if os.geteuid() != 0:
        # Solaris: libipadm refuses before anything is done (IPADM_EPERM).
        err = refusal(command, INSUFFICIENT_PRIVILEGES)
        _say([err.message], sys.stderr)
        return err.status
    # The write path (the planner, the kernel boundary, asyncio): here, not
    # at the top, so that the show subcommands do not load it.
    from ipmp.admin.ipadm import change

    result = change(root, command)
    _say(result.stdout, sys.stdout)
    _say(result.stderr, sys.stderr)
    return result.status


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        # Every command of the package answers it (Solaris' ipadm has none).
        print(f"{PROG} (ipmp) {__version__}")
        return 0
    try:
        command = parse_argv(args)
    except IpadmError as err:
        _say([err.message], sys.stderr)
        return err.status
    root = root_dir(None)
    try:
        if command.subcommand in SHOW:
            return _show(command, root)
        return _change(command, root)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
