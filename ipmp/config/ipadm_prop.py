"""ipadm's interface properties: set-ifprop and reset-ifprop of ``standby`` and ``group`` (protocol ip).

``group`` is ``add-ipmp``/``remove-ipmp`` by another name; ``standby``
only marks the member: which members are active, and so where the data
addresses go, is ``ipmp.config.binding``'s, applied by ``ipadm_eval``'s
re-bind after the command (a member that becomes STANDBY is deactivated
when the group has enough active members without it, in.mpathd
``phyint_standby_refresh_inactive``).

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from ipmp.config.ipadm_db import ResetProperty, SetProperty
from ipmp.config.ipadm_if import add_member, remove_member
from ipmp.config.ipadm_run import STATUS, Refused, Run, die

__all__ = ["reset_ifprop", "set_ifprop"]


def set_ifprop(run: Run, reset: bool = False) -> None:
    """``set-ifprop``/``reset-ifprop -p standby|group -m ip IF`` (illumos ``ipadm_prop.c`` table)."""
    cmd = run.command
    verb = "reset-ifprop" if reset else "set-ifprop"
    if len(cmd.properties) != 1:
        raise die(f"usage: {verb} [-t] -p <property>=<value> -m <protocol> <interface>")
    prop, value = cmd.properties[0]
    if cmd.protocol not in ("ip", ""):
        raise die(f"{verb}: {prop}: {STATUS['IPADM_PROP_UNKNOWN']}")
    if prop not in ("standby", "group"):
        raise die(f"{verb}: {prop}: {STATUS['IPADM_PROP_UNKNOWN']}")
    name = cmd.operand
    itf = run.config.get(name)
    if itf is None or not itf.plumbed:
        raise die(f"{verb}: {prop}: {STATUS['IPADM_NOSUCH_IF']}")
    if itf.ipmp:
        raise die(f"{verb}: {prop}: {STATUS['IPADM_OP_NOTSUP']}")
    if prop == "group":
        target = "" if reset else (value or "")
        if target == itf.group:
            return
        try:
            if itf.group:
                old = run.config.ipmp_interface(itf.group)
                if old is None:
                    raise Refused("IPADM_ALREADY_IN_GRP")
                if target:
                    raise Refused("IPADM_ALREADY_IN_GRP")
                remove_member(run, old.name, name)
            else:
                ipmpif = run.config.ipmp_interface(target) or run.config.get(target)
                if ipmpif is None:
                    raise Refused("IPADM_NOSUCH_IPMPIF")
                add_member(run, ipmpif.name, name)
        except Refused as err:
            raise die(f"{verb}: {prop}: {STATUS[err.status]}") from None
        return
    if reset:
        standby = False
    elif value in ("on", "off"):
        standby = value == "on"
    else:
        raise die(f"{verb}: {prop}: {STATUS['IPADM_INVALID_ARG']}")
    run.require_persistent(name, f"{verb}: {prop}")
    run.put(replace(itf, standby=standby))
    if reset:
        run.persist(ResetProperty(name, "ip", "standby"))
    else:
        run.persist(SetProperty(name, "ip", "standby", "on" if standby else "off"))


def reset_ifprop(run: Run) -> None:
    set_ifprop(run, reset=True)

