"""The fold of one ``ipadm`` command: its state, its outcome, Solaris' refusal texts.

``Run`` carries the view so far, what ``ipadm`` prints and the edits of
the persistent configuration; the subcommands (``ipadm_if``,
``ipadm_addr``, ``ipadm_prop``) change it and ``ipadm_eval.evaluate``
turns it into an ``IpadmOutcome``.  Messages are ipadm's (illumos
``cmd-inet/usr.sbin/ipadm/ipadm.c``: ``die("cannot add %s to %s: %s")``
...) with the reasons of ``ipadm_status2str`` (``libipadm/common/libipadm.c``,
``ipadm_errors``).

Pure module: no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

from ipmp.config.ipadm_db import DbEdit, IpadmDb, apply_edits
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError
from ipmp.model import Config, Environment, Family, Interface

__all__ = ["FAMILIES", "STATUS", "IpadmOutcome", "Refused", "Run", "die"]

#: ``ipadm_status2str`` texts (illumos ``libipadm.c``, ``ipadm_errors``), by status name.
STATUS = {
    "IPADM_FAILURE": "Operation failed",
    "IPADM_OBJ_EXISTS": "Object already exists",
    "IPADM_IF_EXISTS": "Interface already exists",
    "IPADM_ADDROBJ_EXISTS": "Address object already exists",
    "IPADM_NOSUCH_IF": "No such interface",
    "IPADM_ENXIO": "Interface does not exist",
    "IPADM_GRP_NOTEMPTY": "IPMP group is not empty",
    "IPADM_INVALID_ARG": "Invalid argument provided",
    "IPADM_INVALID_IFNAME": "Invalid interface name",
    "IPADM_DLPI_FAILURE": "Could not open DLPI link",
    "IPADM_PROP_UNKNOWN": "Unknown property",
    "IPADM_OBJ_NOTFOUND": "Object not found",
    "IPADM_IF_INUSE": "Interface already in use",
    "IPADM_ADDR_INUSE": "Address already in use",
    "IPADM_BAD_ADDR": "Invalid address",
    "IPADM_TEMPORARY_OBJ": "Persistent operation on temporary object",
    "IPADM_OP_NOTSUP": "Operation not supported",
    "IPADM_NOT_IPMPIF": "Not an IPMP interface",
    "IPADM_NOSUCH_IPMPIF": "No such IPMP interface",
    "IPADM_ALREADY_IN_GRP": "Already in an IPMP group",
    "IPADM_NOT_IN_GROUP": "Interface not in given IPMP group",
    "IPADM_UNDERIF_DHCP_MANAGED": "Underlying interface has addresses managed by dhcpagent(1M)",
    "IPADM_UNDERIF_NDPD_MANAGED": "Underlying interface has addresses managed by in.ndpd(1M)",
}
FAMILIES = (Family.INET, Family.INET6)


class IpadmOutcome(NamedTuple):
    """What a command did to the view, said, and asks of the persistent configuration."""

    config: Config
    stdout: tuple[str, ...] = ()
    #: Warnings (``ipadm: warning: ...``) of a command that still succeeded.
    stderr: tuple[str, ...] = ()
    #: The (interface, family) pairs a plan may touch (``linux.view.Scope``).
    touched: frozenset[tuple[str, Family]] = frozenset()
    #: The persistent configuration's edits, in order (none for ``-t``).
    edits: tuple[DbEdit, ...] = ()
    #: A group gained a member: in.mpathd should run (ifconfig's §4.5 rule).
    start_mpathd: bool = False


class Refused(Exception):
    """One interface of a multi-interface command failed (``status`` is a STATUS key)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def die(message: str) -> IpadmError:
    return IpadmError(f"ipadm: {message}")


class Run:
    """The fold of one command: the view so far, the output, the edits."""

    def __init__(self, config: Config, command: IpadmCommand, db: IpadmDb | None,
                 env: Environment, managed: frozenset[str]) -> None:
        self.config = config
        self.command = command
        self.db = db
        self.env = env
        self.managed = managed
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.edits: list[DbEdit] = []
        self.names: set[str] = set()
        self.start = False

    def persist(self, edit: DbEdit) -> None:
        if not self.command.temporary:
            self.edits.append(edit)

    def put(self, itf: Interface) -> None:
        self.config = self.config.with_interface(itf)
        self.names.add(itf.name)

    def db_now(self) -> IpadmDb:
        """The persistent configuration with this command's edits so far."""
        assert self.db is not None
        return apply_edits(self.db, tuple(self.edits))

    def require_persistent(self, name: str, what: str) -> None:
        """libipadm refuses a persistent change of an object that is only active (IPADM_TEMPORARY_OBJ)."""
        if self.command.temporary or self.db is None:
            return
        if self.db_now().interface(name) is None:
            raise die(f"{what}: {STATUS['IPADM_TEMPORARY_OBJ']}")

    def outcome(self) -> IpadmOutcome:
        pairs = frozenset((n, f) for n in self.names if (i := self.config.get(n)) is not None and not i.ipmp
                          for f in FAMILIES)
        return IpadmOutcome(self.config, tuple(self.stdout), tuple(self.stderr), pairs, tuple(self.edits),
                            self.start)
