"""``if_mpadm``: take an interface offline, or bring it back, through in.mpathd (§5).

Usage, messages and exit status are Solaris 10's (``if_mpadm.c``)::

    if_mpadm -d <interface>    offline: fail its data addresses over, stop probing
    if_mpadm -r <interface>    undo: fail them back (whatever FAILBACK says)

Exit status 0 on success, 1 on any failure.  All messages go to stderr.

Deliberate difference from Solaris: after in.mpathd accepted the request,
Solaris ``if_mpadm`` itself marked every logical interface of the NIC down
(``-d``) or its test addresses up again (``-r``), one ioctl at a time.  Here
the daemon does that as part of the offline / undo-offline operation, in the
same apply as the failover or failback, so the host never shows a half-done
state and a crashed ``if_mpadm`` cannot leave test addresses down.  This
command only sends the request and then checks, as Solaris did, that the
OFFLINE flag really changed (in the state store, where our OFFLINE lives).
Hence the Solaris messages ``IFF_OFFLINE disappeared on %s``, ``Bringing
down the interfaces failed.`` and their ``-r`` counterparts cannot occur.

Other differences, all forced by Linux:

* The OFFLINE pre-check reads the state store under the root, not a
  kernel flag; an interface it does not know is reported as Solaris reported
  an unplumbed one: ``ioctl: SIOCGLIFFLAGS: No such device or address``.
* There is one transport (a Unix socket) instead of 127.0.0.1 then ::1, so
  a connection failure prints one ``connect: <strerror>`` line, not two.
* A non-root user is refused by the daemon (``if_mpadm: Operation not
  permitted``); Solaris failed earlier, unable to bind a reserved port.

Extensions: ``--version`` (alone), and ``-R DIR`` for an alternate root
(default ``$IPMP_ROOT``, else ``/``), as every ipmp command has.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from ipmp import __version__
from ipmp.cli.getopt import getopt
from ipmp.errors import StateError
from ipmp.host.altroot import root_path
from ipmp.host.ifmap import read_ifmap
from ipmp.host.state import Store
from ipmp.mpathd import control
from ipmp.mpathd.codes import IPMP_EHWADDRDUP, errmsg

PROG = "if_mpadm"
#: Verbatim, including the space before the colon (§5).
USAGE = "Usage : if_mpadm [-d | -r] <interface_name>"
#: Solaris ``MAX_RETRIES``: attempts while in.mpathd answers EAGAIN, 1 s apart.
MAX_RETRIES = 3
RETRY_DELAY = 1.0
#: Seconds to wait for the daemon's answer.  Solaris waited forever; an
#: offline includes a failover the daemon applies before it replies.
REPLY_TIMEOUT = 30.0
#: Solaris ``if_mpadm.c`` getopt string, plus our ``-R``.
OPTSTRING = "d:r:R:"
#: Every option the command accepts (the man page must document each).
OPTIONS = (*(f"-{c}" for c in OPTSTRING if c != ":"), "--version")

MSG_ALREADY_OFFLINE = "Interface already offlined"
MSG_NOT_OFFLINE = "Interface not offlined"
MSG_NO_DAEMON = "Cannot establish communication with in.mpathd."
MSG_SEND_FAILED = "Failed to successfully send command to in.mpathd."
MSG_READ_FAILED = "Failed to successfully read result from in.mpathd."
MSG_RETRYING = "Retrying ..."
MSG_RETRY_OK = "Retry Successful."
MSG_BUSY = "Device busy. Retry the operation later."
MSG_MIN_RED = (
    "Offline failed as there is no other functional interface available in the multipathing group "
    "for failing over the network access."
)
MSG_FAILBACK_PARTIAL = (
    "Offline cannot be undone because multipathing configuration is not consistent across all the "
    "interfaces in the group."
)
MSG_UNRECOGNIZED = "Operation returned an unrecognized error: {}"
MSG_NOT_SET = "Operation failed : in.mpathd has not set IFF_OFFLINE on {}"
MSG_NOT_CLEARED = "Operation failed : in.mpathd has not cleared IFF_OFFLINE on {}"


class _Fail(Exception):
    """Print these lines on stderr and exit 1."""

    def __init__(self, *lines: str) -> None:
        super().__init__(*lines)
        self.lines = lines


def _getopt(args: Sequence[str]) -> Iterator[tuple[str, str]]:
    """POSIX getopt over ``OPTSTRING``: (letter, argument) pairs in order.

    A bad option yields ("?", diagnostic) with the Solaris libc wording, and
    ends the scan, as getopt's ``?`` ends if_mpadm's loop.  Operands after
    the options are ignored, as by if_mpadm.
    """
    return getopt(args, OPTSTRING, PROG)


def _canonical(root: Path, name: str) -> str:
    """The name ipmp files the NIC under, for any name the kernel knows for it.

    That is its Solaris name from ``etc/ipmp/ifmap``, else its Linux name;
    ``enp1s0f0:1`` -> ``hme0:1``.  A name the kernel does not know is kept
    (the store check reports it).
    """
    base, sep, unit = name.partition(":")
    try:
        index = socket.if_nametoindex(base)
        entries = read_ifmap(root)[0]
    except OSError:
        return name
    for entry in entries:
        try:
            if socket.if_nametoindex(entry.linux) == index:
                return f"{entry.solaris}{sep}{unit}"
        except OSError:
            continue
    try:
        return f"{socket.if_indextoname(index)}{sep}{unit}"
    except OSError:
        return name


def _offline_set(root: Path, ifname: str) -> bool:
    """Whether the interface carries OFFLINE (Solaris: SIOCGLIFFLAGS on ``ifname``).

    OFFLINE is a phyint flag, so ``hme0:1`` answers for ``hme0``.
    """
    try:
        stored = Store(root).load()
    except StateError as err:
        raise _Fail(f"{PROG}: {err}") from None
    record = stored.get(ifname.partition(":")[0])
    if record is None:
        raise _Fail(f"ioctl: SIOCGLIFFLAGS: {os.strerror(errno.ENXIO)}")
    return record.offline


def _send(root: Path, op: str, ifname: str, err: TextIO, sleep: Callable[[float], None]) -> None:
    """Solaris ``send_cmd``: returns on success, raises _Fail with the message otherwise."""
    request = control.Request("offline" if op == "d" else "undo_offline", ifname, 1)
    for attempt in range(MAX_RETRIES):
        try:
            reply = control.call(root, request, timeout=REPLY_TIMEOUT)
        except control.NotRunning as exc:
            raise _Fail(f"connect: {exc.strerror}", MSG_NO_DAEMON) from None
        except control.SendFailed as exc:
            raise _Fail(*_perror("write", exc), MSG_SEND_FAILED) from None
        except control.ReadFailed as exc:
            raise _Fail(*_perror("read", exc), MSG_READ_FAILED) from None
        if reply.mpathd_error == control.MPATHD_SUCCESS:
            if attempt:
                print(MSG_RETRY_OK, file=err)
            return
        if reply.mpathd_error == control.MPATHD_SYS_ERROR:
            if reply.sys_error == errno.EAGAIN:
                # Solaris sleeps first, then says so.
                sleep(RETRY_DELAY)
                print(MSG_RETRYING, file=err)
                continue
            raise _Fail(f"{PROG}: {os.strerror(reply.sys_error)}")
        if reply.mpathd_error == control.MPATHD_MIN_RED_ERROR:
            raise _Fail(MSG_MIN_RED)
        if reply.mpathd_error == control.MPATHD_FAILBACK_PARTIAL:
            raise _Fail(MSG_FAILBACK_PARTIAL)
        if reply.mpathd_error == IPMP_EHWADDRDUP:
            # Only a Solaris 11 group offlines a duplicate hardware address;
            # its if_mpadm (illumos Clearview if_mpadm.c undo_offline) says so
            # through die(): "if_mpadm: fatal: cannot undo-offline IF: <ipmp_errmsg>".
            verb = "offline" if op == "d" else "undo-offline"
            raise _Fail(f"{PROG}: fatal: cannot {verb} {ifname}: {errmsg(IPMP_EHWADDRDUP)}")
        raise _Fail(MSG_UNRECOGNIZED.format(reply.mpathd_error))
    raise _Fail(MSG_BUSY)


def _perror(what: str, exc: OSError) -> tuple[str, ...]:
    # Solaris printed perror only when the call itself failed (errno set),
    # not for a short read or write.
    return (f"{what}: {exc.strerror}",) if exc.errno else ()


def _run(args: Sequence[str], err: TextIO, sleep: Callable[[float], None]) -> int:
    options = list(_getopt(args))
    roots = [value for letter, value in options if letter == "R"]
    root = root_path(roots[-1] if roots else None)
    op = ""
    ifname = ""
    # Pre-checks run as each option is met, as in if_mpadm's getopt loop:
    # ``-d hme0 -x`` reports on hme0 before the bad option.
    for letter, value in options:
        if letter == "?":
            print(value, file=err)
            print(USAGE, file=err)
            return 1
        if letter == "d":
            op, ifname = "d", _canonical(root, value)
            if _offline_set(root, ifname):
                raise _Fail(MSG_ALREADY_OFFLINE)
        elif letter == "r":
            op, ifname = "r", _canonical(root, value)
            if not _offline_set(root, ifname):
                raise _Fail(MSG_NOT_OFFLINE)
    if not op:
        print(USAGE, file=err)
        return 1
    _send(root, op, ifname, err, sleep)
    # Sanity check, as Solaris do_offline / undo_offline: did the daemon
    # really change OFFLINE?  It records it before it replies.
    offline = _offline_set(root, ifname)
    if op == "d" and not offline:
        raise _Fail(MSG_NOT_SET.format(ifname))
    if op == "r" and offline:
        raise _Fail(MSG_NOT_CLEARED.format(ifname))
    return 0


def main(argv: Sequence[str] | None = None, *, sleep: Callable[[float], None] = time.sleep) -> int:
    """Run ``if_mpadm``; returns the exit status.  ``sleep`` is for tests."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        print(f"{PROG} (ipmp) {__version__}")
        return 0
    try:
        return _run(args, sys.stderr, sleep)
    except _Fail as failure:
        for line in failure.lines:
            print(line, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
