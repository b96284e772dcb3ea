"""The result codes of in.mpathd's control protocol and their texts, defined once.

The machine answers admin requests with them (``ReplyTo``), the codec puts
them on the wire, the commands compare what comes back and print the text.
Numbers and texts are libipmp's: ``ipmp_mpathd.h`` (``MPATHD_*``, what the
daemon sends) and ``ipmp.h`` (``IPMP_*``, the same numbers and the client's
own errors after them), ``ipmp_errmsg`` for the texts (reference
solaris-ipmp.md §2.11).

Pure module: no I/O.  It imports nothing at run time, because the control
client loads it at every ``ipmpstat`` start-up (see ``ipmp.mpathd.control``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see the module docstring
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "IPMP_EHWADDRDUP",
    "IPMP_EINVAL",
    "IPMP_ENOMEM",
    "IPMP_ENOMPATHD",
    "IPMP_EPROTO",
    "IPMP_ERRMSG",
    "IPMP_EUNKGROUP",
    "IPMP_EUNKIF",
    "MPATHD_FAILBACK_DISABLED",
    "MPATHD_FAILBACK_PARTIAL",
    "MPATHD_MIN_RED_ERROR",
    "MPATHD_SUCCESS",
    "MPATHD_SYS_ERROR",
    "errmsg",
]

MPATHD_SUCCESS: Final = 0  # IPMP_SUCCESS
MPATHD_SYS_ERROR: Final = 1  # IPMP_FAILURE: see sys_error
MPATHD_MIN_RED_ERROR: Final = 2  # IPMP_EMINRED
MPATHD_FAILBACK_DISABLED: Final = 3  # IPMP_EFBDISABLED
MPATHD_FAILBACK_PARTIAL: Final = 4  # IPMP_EFBPARTIAL
IPMP_EINVAL: Final = 5
IPMP_ENOMEM: Final = 6
IPMP_ENOMPATHD: Final = 7
IPMP_EUNKGROUP: Final = 8
IPMP_EUNKIF: Final = 9
IPMP_EPROTO: Final = 10
#: Clearview's: ``if_mpadm -r`` of an interface whose hardware address an
#: online member of its group has (illumos ``phyint_undo_offline``).
IPMP_EHWADDRDUP: Final = 11

#: ``ipmp_errmsg()`` texts, verbatim (§2.11).
IPMP_ERRMSG: Final[dict[int, str]] = {
    MPATHD_SUCCESS: "operation succeeded",
    MPATHD_SYS_ERROR: "operation failed (see sys_error errno)",
    MPATHD_MIN_RED_ERROR: "minimum failover redundancy not met",
    MPATHD_FAILBACK_DISABLED: "failback disabled",
    MPATHD_FAILBACK_PARTIAL: "unable to completely fail back",
    IPMP_EINVAL: "invalid argument",
    IPMP_ENOMEM: "out of memory",
    IPMP_ENOMPATHD: "cannot contact in.mpathd",
    IPMP_EUNKGROUP: "unknown IPMP group",
    IPMP_EUNKIF: "interface is not using IPMP",
    IPMP_EPROTO: "unable to communicate with in.mpathd",
    IPMP_EHWADDRDUP: "interface has duplicate hardware address",
}


def errmsg(code: int) -> str:
    """``ipmp_errmsg``: the text of an IPMP error code."""
    return IPMP_ERRMSG.get(code, "<unknown error>")
