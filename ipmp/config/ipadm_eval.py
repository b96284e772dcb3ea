"""What one ``ipadm`` command does to the Solaris view: Solaris 11 semantics.

``evaluate(config, command)`` returns the new ``Config``, what ``ipadm``
prints, the (interface, family) pairs a plan may touch, and the edits of the
persistent configuration (``ipmp.config.ipadm_db``; the caller skips them
for ``-t``).  A refused command raises ``IpadmError`` with Solaris' message
and changes nothing.

Each subcommand is its module's (``ipadm_if``: interfaces and IPMP
membership, ``ipadm_addr``: addresses, ``ipadm_prop``: properties), over
the fold of ``ipadm_run``.  After it, every group with an IPMP interface is
re-bound by ``ipmp.config.binding``, the rules in.mpathd follows too
(illumos ``uts/common/inet/ip/ipmp.c``): the active members before the
command against those after it, so a member that joined or stopped being
STANDBY is activated (``ipmp_ill_activate``), one that became STANDBY is
deactivated (``ipmp_ill_deactivate``), and a new data address is bound to
the active member with the fewest (``ipmp_illgrp_add_ipif``).  With no
daemon, a member is usable as the kernel alone judges it
(``binding.kernel_usable``).

``db_steps`` is the persistent configuration as the commands that made it:
``ipmp-boot`` runs all of them, ``enable-if`` those of one interface
(illumos ``ipadm_enable_if`` "does exactly what ipadm_init_ifs() does, but
only for one interface").

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from ipmp.config import binding
from ipmp.config.ipadm_addr import create_addr, delete_addr
from ipmp.config.ipadm_db import IpadmDb
from ipmp.config.ipadm_if import (
    add_ipmp,
    create_ip,
    create_ipmp,
    delete_ip,
    delete_ipmp,
    disable_if,
    remove_ipmp,
)
from ipmp.config.ipadm_options import SUBCOMMANDS
from ipmp.config.ipadm_prop import reset_ifprop, set_ifprop
from ipmp.config.ipadm_run import FAMILIES, STATUS, IpadmOutcome, Run, die
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError, refusal
from ipmp.errors import Position
from ipmp.model import Config, Environment

__all__ = ["STATUS", "IpadmOutcome", "Step", "db_steps", "evaluate"]


class Step(NamedTuple):
    """One command of the persistent configuration, where it stands, the NIC it configures."""

    command: IpadmCommand
    position: Position
    ifname: str


def _line_of(db: IpadmDb, test: object) -> int:
    for line in db.lines:
        if callable(test) and test(line):
            return line.line
    return 0


def db_steps(db: IpadmDb, only: str | None = None) -> list[Step]:
    """The persistent configuration as the commands that made it, in boot order.

    IPMP interfaces, then IP interfaces, members in the order added, the
    standby and allow-xprobe properties, then the addresses (illumos ``i_ipadm_enable_if``
    puts an underlying interface in its group before its addresses, "to
    avoid migrating the data addresses").  ``only``: the steps of that one
    interface (its creation, its membership or its members', its
    properties, its addresses), for ``enable-if``.
    """
    steps: list[Step] = []

    def at(test: object) -> Position:
        return Position(db.source, _line_of(db, test), 1)

    itfs = sorted(db.interfaces, key=lambda i: not i.ipmp)
    for itf in itfs:
        sub = "create-ipmp" if itf.ipmp else "create-ip"
        steps.append(Step(IpadmCommand(sub, itf.name, temporary=True),
                          at(lambda ln, n=itf.name: ln.ifname == n and ln.get("_family") is not None),
                          itf.name))
    for itf in itfs:
        for member in itf.members:
            steps.append(Step(IpadmCommand("add-ipmp", itf.name, temporary=True, interfaces=(member,)),
                              at(lambda ln, n=itf.name, m=member: ln.ifname == n
                                 and m in (ln.get("_underif") or "").split(",")), member))
    for itf in itfs:
        for proto, name, value in itf.properties:
            if name not in ("standby", "allow-xprobe"):
                continue
            steps.append(Step(IpadmCommand("set-ifprop", itf.name, temporary=True,
                                           properties=((name, value),), protocol=proto),
                              at(lambda ln, n=itf.name, p=name: ln.ifname == n and ln.get(p) is not None),
                              itf.name))
    for addr in db.addresses:
        command = IpadmCommand("create-addr", addr.addrobj, temporary=True, address=str(addr.address))
        steps.append(Step(command,
                          at(lambda ln, o=addr.addrobj: ln.get("_aobjname") == o), addr.ifname))
    if only is None:
        return steps
    return [s for s in steps if only in (s.ifname, s.command.operand.partition("/")[0])]


def _enable_if(run: Run) -> None:
    """``ipadm_enable_if``: the one interface's persistent configuration made active again.

    Refused with ``IPADM_IF_EXISTS`` when it is active already and with
    ``IPADM_NOTFOUND`` when the file does not have it (ipmgmtd's
    ``ipmgmt_initif_handler`` answers ENOENT, ``ipadm_errno2status``).  An
    IPMP interface takes back those of its persistent members that are
    active; a disabled member comes back with its own ``enable-if``.  Each
    step is evaluated as ``ipmp-boot`` evaluates it, temporary (IPH_INIT:
    "ipmgmtd daemon does not have to write the interface to persistent db").
    """
    name = run.command.operand
    itf = run.config.get(name)
    if itf is not None and (itf.ipmp or set(FAMILIES) <= itf.plumbed):
        raise refusal(run.command, STATUS["IPADM_IF_EXISTS"])
    db = run.db or IpadmDb()
    if db.interface(name) is None:
        raise refusal(run.command, STATUS["IPADM_OBJ_NOTFOUND"])
    for step in db_steps(db, name):
        command = step.command
        if command.subcommand == "add-ipmp" and step.ifname != name:
            member = run.config.get(step.ifname)
            if member is None or not member.plumbed:
                continue
        try:
            out = evaluate(run.config, command, env=run.env, managed=run.managed)
        except IpadmError as err:
            # The first step that fails is the command's failure; nothing is applied.
            reason = err.message.rpartition(": ")[2]
            raise refusal(run.command, reason) from None
        run.config = out.config
        run.names |= {n for n, _ in out.touched}
        run.start = run.start or out.start_mpathd


_HANDLERS: dict[str, Callable[[Run], None]] = {
    "create-ip": create_ip,
    "create-if": create_ip,  # the 11 Express spelling, still accepted by ipadm
    "delete-ip": delete_ip,
    "delete-if": delete_ip,
    "create-ipmp": create_ipmp,
    "add-ipmp": add_ipmp,
    "remove-ipmp": remove_ipmp,
    "delete-ipmp": delete_ipmp,
    "disable-if": disable_if,
    "enable-if": _enable_if,
    "create-addr": create_addr,
    "delete-addr": delete_addr,
    "set-ifprop": set_ifprop,
    "reset-ifprop": reset_ifprop,
}


def evaluate(config: Config, command: IpadmCommand, *, db: IpadmDb | None = None,
             env: Environment | None = None, managed: Iterable[str] = ()) -> IpadmOutcome:
    """Fold ``command`` over ``config``.

    ``db``: the persistent configuration, to refuse a persistent change of a
    temporary object as libipadm does (and ``enable-if``'s source);
    ``env``: the netmasks database for an address given without a prefix
    length; ``managed``: the NICs holding an address a DHCP client manages
    (the kernel's dynamic addresses).

    Raises:
        IpadmError: the command is refused; nothing changed.
    """
    run = Run(config, command, db, env or Environment(), frozenset(managed))
    handler = _HANDLERS.get(command.subcommand)
    if handler is None:
        if command.subcommand in SUBCOMMANDS:
            # A Solaris subcommand this toolkit does not carry out: refused
            # in its own words, as libipadm refuses what an interface cannot
            # do (IPADM_NOTSUP).
            raise refusal(command, "Operation not supported")
        raise die(f"unknown subcommand '{command.subcommand}'")
    handler(run)
    for group in sorted({i.group for i in run.config.interfaces if i.ipmp}):
        before = binding.active_members(config, group, binding.kernel_usable(config))
        after = binding.active_members(run.config, group, binding.kernel_usable(run.config))
        rebound = binding.rebind(run.config, group, before, after)
        run.names |= binding.changed_members(run.config, rebound)
        run.config = rebound
    return run.outcome()
