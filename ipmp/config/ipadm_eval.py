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

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ipmp.config import binding
from ipmp.config.ipadm_addr import create_addr, delete_addr
from ipmp.config.ipadm_db import IpadmDb
from ipmp.config.ipadm_if import add_ipmp, create_ip, create_ipmp, delete_ip, delete_ipmp, remove_ipmp
from ipmp.config.ipadm_options import SUBCOMMANDS
from ipmp.config.ipadm_prop import reset_ifprop, set_ifprop
from ipmp.config.ipadm_run import STATUS, IpadmOutcome, Run, die
from ipmp.config.ipadm_syntax import IpadmCommand, refusal
from ipmp.model import Config, Environment

__all__ = ["STATUS", "IpadmOutcome", "evaluate"]

_HANDLERS: dict[str, Callable[[Run], None]] = {
    "create-ip": create_ip,
    "create-if": create_ip,  # the 11 Express spelling, still accepted by ipadm
    "delete-ip": delete_ip,
    "delete-if": delete_ip,
    "create-ipmp": create_ipmp,
    "add-ipmp": add_ipmp,
    "remove-ipmp": remove_ipmp,
    "delete-ipmp": delete_ipmp,
    "create-addr": create_addr,
    "delete-addr": delete_addr,
    "set-ifprop": set_ifprop,
    "reset-ifprop": reset_ifprop,
}


def evaluate(config: Config, command: IpadmCommand, *, db: IpadmDb | None = None,
             env: Environment | None = None, managed: Iterable[str] = ()) -> IpadmOutcome:
    """Fold ``command`` over ``config``.

    ``db``: the persistent configuration, to refuse a persistent change of a
    temporary object as libipadm does; ``env``: the netmasks database for an
    address given without a prefix length; ``managed``: the NICs holding an
    address a DHCP client manages (the kernel's dynamic addresses).

    Raises:
        IpadmError: the command is refused; nothing changed.
    """
    run = Run(config, command, db, env or Environment(), frozenset(managed))
    handler = _HANDLERS.get(command.subcommand)
    if handler is None:
        if command.subcommand in SUBCOMMANDS:
            # A Solaris subcommand this toolkit does not carry out (disable-if,
            # enable-if): refused in its own words, as libipadm refuses what an
            # interface cannot do (IPADM_NOTSUP).
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
