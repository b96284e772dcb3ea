"""The read path of ``ifconfig`` without words: ``ifconfig -a``, ``ifconfig IF[:N]``.

Porting scripts call these in loops (``ifconfig IF`` for each interface,
every few seconds), so what they cost is mostly what they import: this
module reads the kernel through the raw rtnetlink reader of
``ipmp.kernel.read`` (no pyroute2, no event loop), loads the state store,
merges the two as every command does (``view.merge``) and lets the
evaluator check the name as Solaris does (``status: SIOCGLIFFLAGS: ...: no
such interface``).  It does not import ``ipmp.admin.session``: the boot steps, the
hostname-file parser and the planner are for commands that change things.

A command without words never reads a host name, a netmask or a default
router, so it is evaluated with an empty ``Environment`` instead of one
read from ``/etc``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ipmp.config.evaluate import Outcome, evaluate
from ipmp.host.ifmap import canonical_name
from ipmp.host.state import Store
from ipmp.kernel.read import read_state
from ipmp.linux.view import merge
from ipmp.model import Environment

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from ipmp.config.commands import Command
    from ipmp.host.ifmap import MapEntry

__all__ = ["show"]


def show(root: str | Path, command: Command, ifmap: Sequence[MapEntry] = ()) -> Outcome | None:
    """The outcome of ``command``, a command without words, on the host as it is now.

    The kernel and the store are read under the store's shared lock, so a
    read never sees a command's apply half done (writers hold it
    exclusively).  The interface may be named by any name the kernel knows
    for it (its Linux name or an altname); the outcome names it as the view
    does.  Returns None when the command would change something after all
    (only words do: the caller runs it as a command); raises ``ConfigError``
    as ``evaluate`` does, ``StateError`` for an unreadable store.
    """
    store = Store(root)
    with store.locked(exclusive=False):
        kernel, _names = read_state((), ifmap)
        stored = store.load()
    if command.ifname is not None:
        command = replace(command, ifname=canonical_name(kernel, command.ifname))
    outcome = evaluate(merge(kernel, stored.interfaces), command, Environment())
    return None if outcome.touched else outcome
