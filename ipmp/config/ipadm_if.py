"""ipadm's interface subcommands: create-ip, delete-ip, create-ipmp, add-ipmp, remove-ipmp, delete-ipmp,
disable-if (enable-if is ``ipadm_eval``'s: the persistent configuration's steps of one interface).

The model (ARCHITECTURE.md, the model decision): an IPMP interface is an
``Interface(ipmp=True, group=<its name>)`` with no Linux link; each of its
data addresses is held by the active member it is bound to, as a
``Logical`` with ``ipmp_unit`` set, or by the IPMP record itself while no
member is active.  Which member holds which address is decided by
``ipmp.config.binding`` alone (illumos ``uts/common/inet/ip/ipmp.c``), the
same rules in.mpathd follows: a member that leaves is deactivated there
(``binding.leave``); one that joins is activated by ``ipadm_eval``'s
re-bind after the command.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ipmp.config import binding
from ipmp.config.ipadm_db import AddInterface, AddMember, DeleteAddress, DeleteInterface, RemoveMember
from ipmp.config.ipadm_run import FAMILIES, STATUS, Refused, Run, die
from ipmp.model import LIFNAMSIZ, Config, Family, Interface, Logical

__all__ = [
    "add_ipmp",
    "add_member",
    "create_ip",
    "create_ipmp",
    "delete_ip",
    "delete_ipmp",
    "disable_if",
    "remove_ipmp",
    "remove_member",
]


def _check_new_name(name: str) -> None:
    """illumos ``i_ipadm_validate_ifcreate``: at most LIFNAMSIZ - 1, a device name ending in a PPA."""
    if len(name) >= LIFNAMSIZ:
        raise Refused("IPADM_INVALID_ARG")
    head = name.rstrip("0123456789")
    if not head or head == name or ":" in name or not (head[0].isalpha() or head[0] == "_"):
        raise Refused("IPADM_INVALID_IFNAME")


def _ipmp_interface(config: Config, name: str) -> Interface:
    itf = config.get(name)
    if itf is None:
        raise Refused("IPADM_NOSUCH_IPMPIF")
    if not itf.ipmp:
        raise Refused("IPADM_NOT_IPMPIF")
    return itf


def _plumb_both(itf: Interface) -> Interface:
    for family in FAMILIES:
        if itf.logical(family, 0) is None:
            itf = itf.with_logical(Logical(family, 0))
    return replace(itf, plumbed=frozenset(FAMILIES), link_up=True)


def create_ip(run: Run) -> None:
    name = run.command.operand
    try:
        if len(name) >= LIFNAMSIZ:
            raise Refused("IPADM_INVALID_ARG")
        itf = run.config.get(name)
        if itf is None:
            # libipadm opens the datalink (i_ipadm_plumb_if): no NIC, no interface.
            raise Refused("IPADM_DLPI_FAILURE")
        if itf.ipmp or set(FAMILIES) <= itf.plumbed:
            raise Refused("IPADM_IF_EXISTS")
        if itf.loopback:
            raise Refused("IPADM_OP_NOTSUP")
    except Refused as err:
        raise die(f"cannot create interface {name}: {STATUS[err.status]}") from None
    run.put(_plumb_both(itf))
    run.persist(AddInterface(name, False, frozenset(FAMILIES)))


def create_ipmp(run: Run) -> None:
    name = run.command.operand
    try:
        _check_new_name(name)
        if run.config.get(name) is not None:
            raise Refused("IPADM_IF_EXISTS")
        if any(i.group == name for i in run.config.interfaces):
            # The group name is taken by a Solaris 10 group of ifconfig's.
            raise Refused("IPADM_OBJ_EXISTS")
    except Refused as err:
        raise die(f"cannot create interface {name}: {STATUS[err.status]}") from None
    index = max((i.index for i in run.config.interfaces), default=0) + 1
    itf = Interface(name, index=index, plumbed=frozenset(FAMILIES), link_up=True, group=name, ipmp=True,
                    mac=None, logicals=(Logical(Family.INET, 0), Logical(Family.INET6, 0)))
    run.config = run.config.with_interface(itf)
    run.persist(AddInterface(name, True, frozenset(FAMILIES)))
    if run.command.interfaces:
        if not _update_members(run, name, add=True, create=True):
            run.stderr.append(f"ipadm: warning: cannot add any of the interfaces to {name}")


def _split(interfaces: tuple[str, ...]) -> list[str]:
    return [n for item in interfaces for n in item.split(",") if n]


def _update_members(run: Run, ipmpif: str, *, add: bool, create: bool = False) -> bool:
    """``update_ipmp_common``: each member in turn; with several, a failure is a warning.

    Returns whether any member was done; with a single one its failure is the command's.
    """
    names = _split(run.command.interfaces)
    several = create or len(names) > 1
    done = False
    for member in names:
        try:
            (add_member if add else remove_member)(run, ipmpif, member)
        except Refused as err:
            text = (f"cannot add {member} to {ipmpif}" if add else f"cannot remove {member} from {ipmpif}")
            if not several:
                raise die(f"{text}: {STATUS[err.status]}") from None
            run.stderr.append(f"ipadm: warning: {text}: {STATUS[err.status]}")
            continue
        done = True
    return done


def add_member(run: Run, ipmpif_name: str, name: str) -> None:
    """``ipadm_add_ipmp`` + ``ipadm_mark_testaddrs`` (illumos ``ipadm.c`` ``add_ipmp``)."""
    ipmpif = _ipmp_interface(run.config, ipmpif_name)
    member = run.config.get(name)
    if member is None:
        raise Refused("IPADM_NOSUCH_IF")
    if member.ipmp or member.loopback:
        # SIOCSLIFGROUPNAME on an IPMP (or loopback) interface: EINVAL.
        raise Refused("IPADM_INVALID_ARG")
    if not member.plumbed:
        raise Refused("IPADM_NOSUCH_IF")
    if member.group == ipmpif.group:
        return  # the kernel takes the same group name again as a no-op
    if member.group:
        raise Refused("IPADM_ALREADY_IN_GRP")
    if name in run.managed:
        # ipadm_wait_app_addrs gives up on an address dhcpagent manages.
        raise Refused("IPADM_UNDERIF_DHCP_MANAGED")
    if any(lg.family is Family.INET6 and lg.kernel_owned and lg.address is not None
           and not lg.address.ip.is_link_local for lg in member.logicals):
        raise Refused("IPADM_UNDERIF_NDPD_MANAGED")
    if not run.command.temporary and run.db is not None:
        now = run.db_now()
        if now.interface(name) is None or now.interface(ipmpif_name) is None:
            raise Refused("IPADM_TEMPORARY_OBJ")
    logicals = []
    for lg in member.logicals:
        if lg.unit == 0 and lg.family in member.plumbed and not lg.kernel_owned:
            # i_ipadm_add_ipmp_bringup_underif: an address-less unit 0 is brought UP.
            lg = replace(lg, up=True)
        if lg.is_data and lg.ipmp_unit is None and not lg.kernel_owned:
            # ipadm_mark_testaddrs: the member's addresses become its test addresses.
            lg = replace(lg, nofailover=True, deprecated=True)
        logicals.append(lg)
    run.put(replace(member, group=ipmpif.group, logicals=tuple(logicals), link_up=True))
    run.persist(AddMember(ipmpif_name, name))
    run.start = True


def remove_member(run: Run, ipmpif_name: str, name: str) -> None:
    """``ipadm_remove_ipmp`` + ``ipadm_clear_testaddrs``."""
    ipmpif = _ipmp_interface(run.config, ipmpif_name)
    member = run.config.get(name)
    if member is None or not member.plumbed:
        raise Refused("IPADM_NOSUCH_IF")
    if member.group != ipmpif.group or member.ipmp:
        raise Refused("IPADM_NOT_IN_GROUP")
    others = [m for m in run.config.group_members(ipmpif.group) if m.name != name]
    if not others and _has_data(run.config, ipmpif):
        # The last member cannot leave while the IPMP interface has data
        # addresses: they would be held by nothing [INF: EBUSY, as the
        # kernel's ipmp_illgrp_unlink_grp answers an illgrp still in use].
        raise Refused("IPADM_IF_INUSE")
    # ipmp_ill_deactivate: its data addresses go to the other members first,
    # or back to the IPMP interface while none of them is active.
    before = run.config
    run.config = binding.leave(run.config, ipmpif.group, name, binding.kernel_usable(run.config))
    run.names |= binding.changed_members(before, run.config)
    member = run.config.get(name)
    assert member is not None
    # ipadm_clear_testaddrs: its test addresses become ordinary addresses.
    logicals = tuple(replace(lg, nofailover=False, deprecated=False) if lg.nofailover and not lg.kernel_owned
                     else lg for lg in member.logicals)
    run.put(replace(member, group="", logicals=logicals))
    run.persist(RemoveMember(ipmpif_name, name))


def _has_data(config: Config, ipmpif: Interface) -> bool:
    if any(lg.address is not None for lg in ipmpif.logicals):
        return True
    return any(lg.ipmp_unit is not None for m in config.group_members(ipmpif.group) for lg in m.logicals)


def add_ipmp(run: Run) -> None:
    name = run.command.operand
    if not _split(run.command.interfaces):
        raise die("usage: add-ipmp [-t] -i <interface>[,<interface>, ...] <ipmp-interface>")
    if not _update_members(run, name, add=True):
        raise die(f"cannot add any of the interfaces to {name}")


def remove_ipmp(run: Run) -> None:
    name = run.command.operand
    if not _split(run.command.interfaces):
        raise die("usage: remove-ipmp [-t] -i <interface>[,<interface>, ...] <ipmp-interface>")
    if not _update_members(run, name, add=False):
        raise die(f"cannot remove any of the interfaces from {name}")


def delete_ipmp(run: Run) -> None:
    """``ipadm delete-ipmp [-f]``: refused with members unless ``-f``, which removes them first."""
    name = run.command.operand
    if run.command.temporary:
        raise die("use disable-if to temporarily remove an interface object")
    try:
        itf = run.config.get(name)
        if itf is None:
            raise Refused("IPADM_NOSUCH_IF")
        if not itf.ipmp:
            raise Refused("IPADM_NOT_IPMPIF")
        members = run.config.group_members(itf.group)
        if members and not run.command.force:
            raise Refused("IPADM_GRP_NOTEMPTY")
    except Refused as err:
        raise die(f"cannot delete IPMP interface {name}: {STATUS[err.status]}") from None
    for member in members:
        # Its data addresses are deleted with it, not handed to the members.
        logicals = tuple(replace(lg, nofailover=False, deprecated=False)
                         if lg.nofailover and not lg.kernel_owned else lg
                         for lg in member.logicals if lg.ipmp_unit is None)
        run.put(replace(member, group="", logicals=logicals))
        run.persist(RemoveMember(name, member.name))
    run.config = Config(tuple(i for i in run.config.interfaces if i.name != name))
    for obj in _addrobjs_of(itf, members):
        run.persist(DeleteAddress(obj))
    run.persist(DeleteInterface(name))


def _addrobjs_of(itf: Interface, members: Iterable[Interface]) -> list[str]:
    objs = [lg.addrobj for lg in itf.logicals if lg.addrobj]
    objs += [lg.addrobj for m in members for lg in m.logicals if lg.ipmp_unit is not None and lg.addrobj]
    return objs


def _leave_for_unplumb(run: Run, itf: Interface) -> Interface:
    """An underlying interface leaves its group before it is unplumbed (as remove-ipmp):
    the kernel's ``ipmp_ill_leave_illgrp`` hands its data addresses to the other members."""
    if itf.group and (ipmpif := run.config.ipmp_interface(itf.group)) is not None:
        remove_member(run, ipmpif.name, itf.name)
        return run.config.get(itf.name) or itf
    return itf


def _unplumb(run: Run, itf: Interface) -> None:
    """Both families unplumbed: its own addresses go, those moved onto it from others stay."""
    kept = tuple(lg for lg in itf.logicals if lg.home not in ("", itf.name) or lg.ipmp_unit is not None)
    run.put(replace(itf, plumbed=frozenset(), link_up=False, group="", standby=False, logicals=kept))


def delete_ip(run: Run) -> None:
    name = run.command.operand
    try:
        itf = run.config.get(name)
        if itf is None or not itf.plumbed:
            raise Refused("IPADM_NOSUCH_IF")
        if itf.ipmp:
            raise Refused("IPADM_OP_NOTSUP")
        if itf.loopback:
            raise Refused("IPADM_OP_NOTSUP")
        itf = _leave_for_unplumb(run, itf)
    except Refused as err:
        raise die(f"cannot delete interface {name}: {STATUS[err.status]}") from None
    for lg in itf.logicals:
        if lg.addrobj:
            run.persist(DeleteAddress(lg.addrobj))
    _unplumb(run, itf)
    run.persist(DeleteInterface(name))


def disable_if(run: Run) -> None:
    """``ipadm disable-if -t``: out of the active configuration, the persistent one untouched.

    illumos ``ipadm_disable_if``: loopback refused (IPADM_OP_NOTSUP), then
    ``i_ipadm_unplumb_if`` for each family and ``i_ipadm_delete_ifobj``
    without IPADM_OPT_PERSIST, so /etc/ipadm/ipadm.conf keeps the interface
    and ``show-if`` lists it as ``disabled``; an interface active in neither
    family is IPADM_ENXIO.  A member leaves its group first, its data
    addresses going to the other members (``ipmp_ill_deactivate``).  An IPMP
    interface with members cannot be unplumbed (``i_ipadm_unplumb_if``:
    IPADM_GRP_NOTEMPTY, the kernel's I_PUNLINK EBUSY); without members its
    data addresses are brought down and go with it.
    """
    name = run.command.operand
    try:
        itf = run.config.get(name)
        if itf is None or not (itf.plumbed or itf.ipmp):
            raise Refused("IPADM_ENXIO")
        if itf.loopback:
            raise Refused("IPADM_OP_NOTSUP")
        if itf.ipmp and run.config.group_members(itf.group):
            raise Refused("IPADM_GRP_NOTEMPTY")
        if not itf.ipmp:
            itf = _leave_for_unplumb(run, itf)
    except Refused as err:
        raise die(f"cannot disable interface {name}: {STATUS[err.status]}") from None
    if itf.ipmp:
        run.config = Config(tuple(i for i in run.config.interfaces if i.name != name))
        return
    _unplumb(run, itf)
