"""ipadm's address subcommands: create-addr and delete-addr, address object names, prefix defaults.

A static address made on an IPMP interface is one of its data addresses:
it is put on the IPMP interface's record under the lowest free unit there,
and ``ipadm_eval``'s re-bind after the command binds it to the active
member with the fewest (``ipmp.config.binding``, illumos
``ipmp_illgrp_add_ipif``), or leaves it there while no member is active.
An address made on a member of a group with an IPMP interface is a test
address (``ipadm_mark_testaddrs``).

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface, ip_address

from ipmp.config.ipadm_db import AddAddress, DeleteAddress
from ipmp.config.ipadm_run import STATUS, Refused, Run, die
from ipmp.model import Config, Family, Interface, IPInterface, Logical

__all__ = ["create_addr", "delete_addr"]


def _ipmp_units(config: Config, ipmpif: Interface, family: Family) -> set[int]:
    """The units of ``ipmpif`` in ``family`` its data addresses take, wherever they are held."""
    used = {lg.unit for lg in ipmpif.logicals if lg.family == family and lg.address is not None}
    for m in config.group_members(ipmpif.group):
        used |= {lg.ipmp_unit for lg in m.logicals if lg.family == family and lg.ipmp_unit is not None}
    return used


def _all_addrobjs(config: Config) -> set[str]:
    return {lg.addrobj for i in config.interfaces for lg in i.logicals if lg.addrobj}


def _generated_addrobj(run: Run, ifname: str, family: Family) -> str:
    """libipadm's generated name: ``IF/v4``, then ``IF/v4a``, ``IF/v4b``... (``v6`` for IPv6).

    ipmgmtd numbers them with a counter it keeps in memory; with nothing
    kept between commands the lowest free name is taken (a name freed by
    ``delete-addr`` is used again).
    """
    taken = _all_addrobjs(run.config) | ({a.addrobj for a in run.db.addresses} if run.db else set())
    base = f"{ifname}/v{int(family)}"
    suffixes = [""] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    suffixes += [a + b for a in suffixes[1:] for b in suffixes[1:]]
    for suffix in suffixes:
        if base + suffix not in taken:
            return base + suffix
    raise die(f"cannot create address: {STATUS['IPADM_FAILURE']}")


def _parse_address(run: Run, text: str) -> IPInterface:
    """``ADDR[/LEN]``; without ``/LEN`` IPv4 takes the netmasks database, else the class's mask.

    libipadm ``i_ipadm_create_addr``/``ipadm_set_addr`` fills a missing
    prefix length from ``getnetmaskbyaddr`` (the netmasks database), falling
    back on the address's class, as ``ifconfig`` does; IPv6 takes /64
    [INF: as ``ifconfig inet6`` does].
    """
    head, slash, plen = text.partition("/")
    try:
        ip = ip_address(head)
    except ValueError:
        resolved = run.env.resolve(head, Family.INET) or run.env.resolve(head, Family.INET6)
        if resolved is None:
            raise die(f"cannot create address: {STATUS['IPADM_BAD_ADDR']}") from None
        ip = resolved
    try:
        if slash:
            if not plen.isdigit():
                raise ValueError(plen)
            return IPv4Interface(f"{ip}/{plen}") if ip.version == 4 else IPv6Interface(f"{ip}/{plen}")
        if ip.version == 6:
            return IPv6Interface(f"{ip}/64")
        assert isinstance(ip, IPv4Address)
        mask = run.env.netmask_for(ip)
        if mask is not None:
            return IPv4Interface(f"{ip}/{mask}")
        first = int(ip) >> 24
        classful = 8 if first < 128 else 16 if first < 192 else 24
        return IPv4Interface(f"{ip}/{classful}")
    except ValueError:
        raise die(f"cannot create address: {STATUS['IPADM_BAD_ADDR']}") from None


def create_addr(run: Run) -> None:
    """``ipadm create-addr [-t] [-T static] -a ADDR[/LEN] IF|IF/NAME``."""
    cmd = run.command
    if cmd.addr_type != "static":
        raise die(f"cannot create address: {STATUS['IPADM_OP_NOTSUP']}")
    if not cmd.address:
        raise die("missing local address")
    ifname, slash, name = cmd.operand.partition("/")
    address = _parse_address(run, cmd.address)
    family = Family(address.version)
    try:
        if slash and (not name or not name[0].isalnum() or not name.isalnum() or len(cmd.operand) >= 64):
            raise Refused("IPADM_INVALID_ARG")
        itf = run.config.get(ifname)
        if itf is None or family not in itf.plumbed:
            raise Refused("IPADM_NOSUCH_IF")
        addrobj = cmd.operand if slash else _generated_addrobj(run, ifname, family)
        if addrobj in _all_addrobjs(run.config) or (run.db is not None and run.db.address(addrobj)):
            raise Refused("IPADM_ADDROBJ_EXISTS")
        if any(lg.address is not None and lg.address.ip == address.ip
               for i in run.config.interfaces for lg in i.logicals):
            raise Refused("IPADM_ADDR_INUSE")
        run.require_persistent(ifname, "cannot create address")
    except Refused as err:
        raise die(f"cannot create address: {STATUS[err.status]}") from None
    lg = Logical(family, 0, address, up=True, addrobj=addrobj)
    if itf.ipmp:
        # A data address of the IPMP interface, unbound for now: the re-bind
        # after the command binds it (module doc).
        unit = 0
        used = _ipmp_units(run.config, itf, family)
        while unit in used:
            unit += 1
        run.config = run.config.with_interface(itf.with_logical(replace(lg, unit=unit)))
    else:
        if itf.group and run.config.ipmp_interface(itf.group) is not None:
            # Any address made on an underlying interface is a test address.
            lg = replace(lg, nofailover=True, deprecated=True)
        unit0 = itf.logical(family, 0)
        if unit0 is None or (unit0.address is None and not unit0.kernel_owned):
            lg = replace(lg, unit=0)
        else:
            lg = replace(lg, unit=itf.free_unit(family))
        run.put(replace(itf, link_up=True).with_logical(lg))
    if not slash:
        run.stdout.append(addrobj)
    run.persist(AddAddress(addrobj, ifname, address))


def delete_addr(run: Run) -> None:
    obj = run.command.operand
    for itf in run.config.interfaces:
        for lg in itf.logicals:
            if lg.addrobj != obj:
                continue
            if itf.ipmp:
                run.config = run.config.with_interface(itf.without_logical(lg.family, lg.unit))
            elif lg.unit == 0:
                run.put(itf.with_logical(Logical(lg.family, 0, up=itf.group != "")))
            else:
                run.put(itf.without_logical(lg.family, lg.unit))
            run.persist(DeleteAddress(obj))
            return
    if run.db is not None and run.db.address(obj) is not None and not run.command.temporary:
        run.persist(DeleteAddress(obj))  # a disabled address: only in the persistent configuration
        return
    raise die(f"cannot delete address: {STATUS['IPADM_OBJ_NOTFOUND']}")

