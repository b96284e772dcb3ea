"""``svcadm``: only ``svcadm refresh svc:/network/ipmp[:default]``.

SMF's refresh makes the service take its new properties over; here the
editing value of ``config/transitive-probing`` becomes the running one
(``ipmp.host.smf``) and a running in.mpathd is sent SIGHUP, which is how it
rereads its configuration (it re-executes itself, as Solaris's does).  The
daemon is found as the peer of its control socket (SO_PEERCRED), and only a
root-owned peer is signalled: the socket lives in a root-only directory,
and no pid file a user could have written is ever believed.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

from ipmp.cli.smfcall import smf_call
from ipmp.host import smf
from ipmp.host.altroot import root_path
from ipmp.mpathd import control

PROG = "svcadm"


def daemon_pid(root: Path) -> int | None:
    """The pid of the in.mpathd serving ``root`` (root-owned), or None when none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        sock.connect(str(control.socket_path(root)))
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    finally:
        sock.close()
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid if uid == 0 and pid > 1 else None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "refresh" or not smf.is_ipmp_fmri(args[1]):
        print(f"{PROG}: not supported by this toolkit (only: {PROG} refresh svc:/network/ipmp:default)",
              file=sys.stderr)
        return 1
    root = root_path(None)
    if not smf_call(PROG, lambda: smf.refresh(root)):
        return 1
    pid = daemon_pid(root)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as err:
            print(f"{PROG}: cannot tell in.mpathd (pid {pid}): {err.strerror}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
