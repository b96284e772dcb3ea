"""The words that act on one logical interface: plumb, addresses, masks, UP, address flags.

Each handler takes the ``Folder`` and the word's ``Action``; the table of
``ipmp.config.handlers`` pairs it with its keyword.

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

from ipmp.config.addresses import LOOPBACK_ADDRESS, mask_to_prefix, parse_mask, resolve_address
from ipmp.config.commands import Action
from ipmp.config.folder import Folder
from ipmp.errors import ConfigError, NoSuchInterface
from ipmp.model import Family, Logical, default_broadcast


def do_plumb(folder: Folder, action: Action) -> None:
    itf = folder.interface()
    fam = folder.cur.family
    if folder.cur.unit == 0:
        if fam in itf.plumbed:
            if itf.loopback:
                # Solaris ``inetplumb`` returns at once, saying nothing
                # (but under -d), when lo0 already has an address.
                return
            # Solaris prints this and still exits 0 (a legacy of ifconfig.c).
            folder.cur.stderr.append(f"SIOCSLIFNAME for ip: {itf.name}: already exists")
            return
        itf = replace(itf, plumbed=itf.plumbed | {fam}, link_up=True)
        unit0 = itf.logical(fam, 0)
        if itf.loopback and (unit0 is None or unit0.address is None):
            itf = itf.with_logical(_loopback_unit0(fam))
        elif unit0 is None:
            itf = itf.with_logical(Logical(fam, 0))
        folder.put_interface(itf)
        return
    if fam not in itf.plumbed:
        raise NoSuchInterface(f"plumb: {folder.lname()}: no such interface")
    if itf.logical(fam, folder.cur.unit) is not None:
        folder.cur.stderr.append(f"SIOCSLIFNAME for ip: {folder.lname()}: already exists")
        return
    folder.check_label(itf.name, folder.cur.unit)
    folder.put_logical(Logical(fam, folder.cur.unit))


def _loopback_unit0(family: Family) -> Logical:
    """Unit 0 of a newly plumbed lo0: the loopback address, UP.

    Solaris gives it the address (``ill_lookup_on_name``: 127.0.0.1/8 or
    ``::1``/128) and leaves it down until ``up``; every boot then runs
    ``ifconfig lo0 [inet6] plumb <address> up`` (net-loopback).  Here it
    is UP at once, a deliberate difference: Linux gives ``lo`` these
    addresses itself whenever it is up (``inetdev_event`` and addrconf's
    ``init_loopback``), so a host that shows no IPv6 on lo0 still has
    ``::1``, and a plumbed-but-down one would be that address taken
    away, from every local service using it.  Plumbing lo0 takes the
    address as Linux holds it; it never deletes it.
    """
    return Logical(family, 0, LOOPBACK_ADDRESS[family], up=True)


def do_unplumb(folder: Folder, action: Action) -> None:
    """``unplumb``; refused on unit 0 of the loopback.

    Solaris allows ``ifconfig lo0 unplumb``: ``inetunplumb`` sends
    SIOCLIFREMOVEIF for lo0 as for a logical interface, and
    ``ip_sioctl_removeif`` has "special handling to allow a removeif of
    lo0" that frees the loopback (illumos ``ip_if.c``; libipadm calls
    keeping it "for backward compatibility" and wants it gone).  Linux
    has no such thing: ``lo`` cannot be deleted, taking it down stops
    the local delivery of every address of the host, and its 127.0.0.1
    and ``::1`` are what every local service talks to.  So unplumbing
    lo0 is refused, in both families, and says what can be done; its
    logical interfaces (lo0:N) unplumb as anywhere else.
    """
    itf = folder.interface()
    fam = folder.cur.family
    if folder.cur.unit == 0 and ":" in folder.cur.named:
        raise ConfigError(f"unplumb: Cannot unplumb {folder.cur.named}: Invalid interface")
    if itf.loopback and not folder.cur.unit:
        raise ConfigError(f"unplumb: {itf.name}: the loopback cannot be unplumbed on Linux (it carries "
                          f"the host's {LOOPBACK_ADDRESS[fam].ip} and all local traffic); unplumb "
                          f"its logical interfaces ({itf.name}:N) instead")
    if folder.cur.unit:
        folder.logical()
        folder.put_interface(itf.without_logical(fam, folder.cur.unit))
        return
    if fam not in itf.plumbed:
        raise NoSuchInterface(f"unplumb: {itf.name}: no such interface")
    keep = tuple(lg for lg in itf.logicals if lg.family != fam)
    plumbed = itf.plumbed - {fam}
    # The group belongs to the phyint: it goes when no family is left.
    itf = replace(itf, logicals=keep, plumbed=plumbed)
    if not plumbed:
        itf = replace(itf, link_up=False, group="", standby=False, failed=False, offline=False)
    folder.put_interface(itf)


def do_addif(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    home = folder.interface()
    target = folder.addif_target()
    unit = target.free_unit(folder.cur.family)
    folder.check_label(target.name, unit)
    folder.cur.ifname = target.name
    folder.cur.unit = unit
    folder.cur.addresses_set = 0
    folder.put_logical(
        Logical(
            folder.cur.family,
            unit,
            home=home.name if target.name != home.name else "",
        )
    )
    folder.set_address(action.argument, action.argument_position or action.position)
    folder.cur.stdout.append(f"Created new logical interface {folder.lname()}")


def do_removeif(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    addr, _ = resolve_address(action.argument, folder.cur.family, folder.env)
    itf = folder.interface()
    for lg in itf.logicals_of(folder.cur.family):
        if lg.address is not None and lg.address.ip == addr:
            if lg.unit == 0:
                raise ConfigError(f"removeif: can't remove interface: {itf.name}")
            folder.put_interface(itf.without_logical(folder.cur.family, lg.unit))
            return
    raise ConfigError(f"removeif: {action.argument}: no such interface")


def do_address(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    folder.cur.addresses_set += 1
    if folder.cur.addresses_set == 1:
        folder.set_address(action.argument, action.argument_position or action.position)
    else:
        folder.set_destination(action.argument)


def do_set(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    folder.cur.addresses_set = max(folder.cur.addresses_set, 1)
    folder.set_address(action.argument, action.argument_position or action.position)


def do_destination(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    folder.set_destination(action.argument)


def do_up(folder: Folder, action: Action) -> None:
    lg = folder.logical()
    itf = folder.interface()
    folder.put_interface(replace(itf, link_up=True).with_logical(replace(lg, up=True)))


def do_down(folder: Folder, action: Action) -> None:
    folder.put_logical(replace(folder.logical(), up=False))


def do_netmask(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    lg = folder.logical()
    if action.argument == "+":
        if lg.address is None or not isinstance(lg.address, IPv4Interface):
            return
        mask = folder.env.netmask_for(lg.address.ip)
        if mask is None:
            return  # Solaris: nothing printed, the mask stays
        folder.cur.stdout.append(f"Setting netmask of {folder.lname()} to {mask}")
    else:
        mask = parse_mask(action.argument, folder.env)
    prefix = mask_to_prefix(mask, action.argument)
    if lg.address is None:
        return  # no address to carry a mask on Linux; the hack applies it with the address
    assert isinstance(lg.address, IPv4Interface)
    # SIOCSLIFNETMASK does not recompute the broadcast; ``broadcast +`` does.
    folder.put_logical(replace(lg, address=IPv4Interface((lg.address.ip, prefix))))


def do_broadcast(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    lg = folder.logical()
    if action.argument == "+":
        # Solaris ``setifbroadaddr`` sets the address again, which resets
        # the broadcast: none on lo0, which is not BROADCAST (``set_address``).
        if isinstance(lg.address, IPv4Interface) and not folder.interface().loopback:
            folder.put_logical(replace(lg, broadcast=default_broadcast(lg.address)))
        return
    try:
        bcast = IPv4Address(action.argument)
    except ValueError:
        found = folder.env.resolve(action.argument, Family.INET)
        if not isinstance(found, IPv4Address):
            raise ConfigError(f"{action.argument}: bad address") from None
        bcast = found
    folder.put_logical(replace(lg, broadcast=bcast))


def do_deprecated(folder: Folder, action: Action) -> None:
    folder.put_logical(replace(folder.logical(), deprecated=True))


def do_deprecated_off(folder: Folder, action: Action) -> None:
    folder.put_logical(replace(folder.logical(), deprecated=False))


def do_failover(folder: Folder, action: Action) -> None:
    folder.put_logical(replace(folder.logical(), nofailover=False))


def do_failover_off(folder: Folder, action: Action) -> None:
    if folder.lname() != folder.cur.named and folder.cur.unit != 0:
        named_base = folder.cur.named.partition(":")[0]
        if named_base != folder.cur.ifname:
            # §4.2 safety check: an earlier addif landed on another NIC.
            raise ConfigError(f"can't set -failover on failed/standby/offlined interface {folder.lname()}")
    folder.put_logical(replace(folder.logical(), nofailover=True))
