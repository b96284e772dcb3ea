"""ipadm's interface properties: set-ifprop, reset-ifprop of ``standby``, ``group``, ``allow-xprobe`` (ip).

``group`` is ``add-ipmp``/``remove-ipmp`` by another name; ``standby``
only marks the member: which members are active, and so where the data
addresses go, is ``ipmp.config.binding``'s, applied by ``ipadm_eval``'s
re-bind after the command (a member that becomes STANDBY is deactivated
when the group has enough active members without it, in.mpathd
``phyint_standby_refresh_inactive``).

``allow-xprobe`` (Solaris 11.4, ipadm(8)) belongs to the IPMP interface
only: ``on``/``off`` switch transitive probing on or off for its group,
``inherit`` (the default, also what ``reset-ifprop`` gives back) follows the
SMF property ``svc:/network/ipmp config/transitive-probing``; in.mpathd reads
it from the record (``ipmp.mpathd.transitive.group_allows``).

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from ipmp.config.ipadm_db import ResetProperty, SetProperty
from ipmp.config.ipadm_if import add_member, remove_member
from ipmp.config.ipadm_run import STATUS, Refused, Run, die
from ipmp.model import Interface

__all__ = ["XPROBE", "XPROBE_DEFAULT", "XPROBE_VALUES", "reset_ifprop", "set_ifprop"]

#: Solaris 11.4's per-group transitive probing property (ipadm(8)), its
#: values and its default (``inherit``: the SMF switch decides).
XPROBE = "allow-xprobe"
XPROBE_VALUES = ("on", "off", "inherit")
XPROBE_DEFAULT = "inherit"


def set_ifprop(run: Run, reset: bool = False) -> None:
    """``set-ifprop``/``reset-ifprop -p standby|group|allow-xprobe -m ip IF`` (illumos ``ipadm_prop.c``)."""
    cmd = run.command
    verb = "reset-ifprop" if reset else "set-ifprop"
    if len(cmd.properties) != 1:
        raise die(f"usage: {verb} [-t] -p <property>=<value> -m <protocol> <interface>")
    prop, value = cmd.properties[0]
    if cmd.protocol not in ("ip", ""):
        raise die(f"{verb}: {prop}: {STATUS['IPADM_PROP_UNKNOWN']}")
    if prop not in ("standby", "group", XPROBE):
        raise die(f"{verb}: {prop}: {STATUS['IPADM_PROP_UNKNOWN']}")
    name = cmd.operand
    itf = run.config.get(name)
    if itf is None or not itf.plumbed:
        raise die(f"{verb}: {prop}: {STATUS['IPADM_NOSUCH_IF']}")
    if prop == XPROBE:
        _set_xprobe(run, itf, verb, None if reset else value)
        return
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


def _set_xprobe(run: Run, itf: Interface, verb: str, value: str | None) -> None:
    """``allow-xprobe`` on the IPMP interface ``itf``; ``value`` None: reset to ``inherit``.

    A property of the IPMP interface class only (ipadm(8)): on an IP
    interface it is refused as libipadm refuses a property of another class
    (``IPADM_OP_NOTSUP``, as ``standby`` on an IPMP interface); a value
    outside on/off/inherit is ``IPADM_INVALID_ARG``.
    """
    if not itf.ipmp:
        raise die(f"{verb}: {XPROBE}: {STATUS['IPADM_OP_NOTSUP']}")
    if value is not None and value not in XPROBE_VALUES:
        raise die(f"{verb}: {XPROBE}: {STATUS['IPADM_INVALID_ARG']}")
    run.require_persistent(itf.name, f"{verb}: {XPROBE}")
    run.put(replace(itf, allow_xprobe=value or XPROBE_DEFAULT))
    if value is None:
        run.persist(ResetProperty(itf.name, "ip", XPROBE))
    else:
        run.persist(SetProperty(itf.name, "ip", XPROBE, value))


def reset_ifprop(run: Run) -> None:
    set_ifprop(run, reset=True)

