"""The words that act on a whole interface: group, phyint flags, MTU, ROUTER, token, link layer.

Each handler takes the ``Folder`` and the word's ``Action``; the table of
``ipmp.config.handlers`` pairs it with its keyword.

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv6Address, ip_network

from ipmp.config.addresses import interface_address, resolve_address
from ipmp.config.commands import Action
from ipmp.config.folder import Folder
from ipmp.errors import ConfigError
from ipmp.model import LIFGRNAMSIZ, Family

#: The smallest MTU each family allows on a logical interface
#: (illumos ``IP_MIN_MTU``, ``IPV6_MIN_MTU``; ``ip_sioctl_mtu``).
IP_MIN_MTU = 68
IPV6_MIN_MTU = 1280
#: The largest MTU a link may be given: an IP datagram's 16-bit length.
IP_MAXPACKET = 65535
#: The bits of an IPv6 interface token Linux keeps (``inet6_set_iftoken``).
IPV6_TOKEN_BITS = 64


def do_group(folder: Folder, action: Action) -> None:
    assert action.argument is not None
    name = action.argument
    itf = folder.interface()
    if itf.loopback:
        raise ConfigError(f"setifgroupname: SIOCSLIFGROUPNAME: {itf.name}: Invalid argument")
    # Solaris counts bytes; surrogatepass keeps undecodable bytes (from a
    # file or argv) countable instead of raising UnicodeEncodeError.
    if len(name.encode("utf-8", "surrogatepass")) >= LIFGRNAMSIZ:
        raise ConfigError(f"setifgroupname: {name}: name too long (at most {LIFGRNAMSIZ - 1} bytes)")
    # The group belongs to the phyint: both families see it (§1).
    folder.put_interface(replace(itf, group=name))
    for fam in itf.plumbed:
        folder.cur.touched.add((itf.name, fam))
    if name:
        folder.cur.start_mpathd = True


def do_standby(folder: Folder, action: Action) -> None:
    folder.put_phyint(replace(folder.interface(), standby=True))


def do_standby_off(folder: Folder, action: Action) -> None:
    folder.put_phyint(replace(folder.interface(), standby=False))


def do_failed(folder: Folder, action: Action) -> None:
    folder.put_phyint(replace(folder.interface(), failed=True))


def do_failed_off(folder: Folder, action: Action) -> None:
    folder.put_phyint(replace(folder.interface(), failed=False))


def do_mtu(folder: Folder, action: Action) -> None:
    """``mtu N``: Solaris ``setifmtu`` (SIOCSLIFMTU), checked as ``ip_sioctl_mtu`` does.

    The kernel keeps an MTU per logical interface (``ipif_mtu``) and
    refuses one below the family's minimum (IP_MIN_MTU 68, IPV6_MIN_MTU
    1280) or above the link's (``ill_max_frag``) with EINVAL.

    * On a logical interface it is that unit's own MTU (IFF_FIXEDMTU),
      at most the link's; on Linux it is the ``mtu`` of the routes the
      unit gives rise to (``Interface.route_mtu``, ``desired.routes_and_rules``).
    * On the physical interface it is the link's MTU (``ip link set
      mtu``), which every unit without its own follows: Linux has no
      driver maximum apart from it that the administrator would raise
      elsewhere, as Solaris does in the driver's configuration.  A link
      that carries IPv6 is never taken below IPv6's minimum: Linux would
      drop every IPv6 address of it (addrconf's NETDEV_CHANGEMTU).
    """
    mtu = folder.number(action)
    itf = folder.interface()
    family = folder.cur.family
    minimum = IPV6_MIN_MTU if family is Family.INET6 else IP_MIN_MTU
    if folder.cur.unit == 0:
        if not minimum <= mtu <= IP_MAXPACKET:
            raise folder.einval("setifmtu: SIOCSLIFMTU")
        if Family.INET6 in itf.plumbed and mtu < IPV6_MIN_MTU:
            raise ConfigError(f"setifmtu: {folder.lname()}: {mtu} is below {IPV6_MIN_MTU}, the IPv6 "
                              f"minimum, and Linux would take every IPv6 address off the link")
        folder.put_interface(replace(itf, mtu=mtu))
        for fam in itf.plumbed:
            folder.cur.touched.add((itf.name, fam))
        return
    lg = folder.logical()
    if not minimum <= mtu <= itf.mtu:
        raise folder.einval("setifmtu: SIOCSLIFMTU")
    folder.put_logical(replace(lg, mtu=mtu))


def _set_router(folder: Folder, on: bool) -> None:
    """``router``/``-router``: Solaris ILLF_ROUTER, the NIC's forwarding sysctl on Linux.

    The flag belongs to the ill (one per family), and ``ip_sioctl_flags``
    hands a change of it to ``ill_forward_set`` for the interface "and,
    if the interface is part of an IPMP group, all other interfaces that
    are part of the same IPMP group": a group forwards as one.
    ``ill_forward_set`` refuses ROUTER on the loopback (EINVAL), which
    never has it, so ``-router`` there changes nothing.
    """
    family = folder.cur.family
    itf = folder.interface()
    if itf.loopback:
        if on:
            raise folder.einval("setifflags: SIOCSLIFFLAGS")
        return
    members = [itf] + [m for m in folder.config.group_members(itf.group)
                       if m.name != itf.name and family in m.plumbed]
    for member in members:
        router = member.router | {family} if on else member.router - {family}
        folder.config = folder.config.with_interface(replace(member, router=router))
        folder.cur.touched.add((member.name, family))


def do_router(folder: Folder, action: Action) -> None:
    _set_router(folder, True)


def do_router_off(folder: Folder, action: Action) -> None:
    _set_router(folder, False)


def do_nud(folder: Folder, action: Action) -> None:
    """``nud``: clear NONUD.  Linux does NUD on every link that resolves
    addresses, so there is nothing to do, except on a NOARP link, which
    has no neighbour discovery at all (shown as NONUD)."""
    if folder.interface().noarp:
        raise ConfigError(f"nud: {folder.lname()}: Linux does no neighbour discovery on a NOARP link")


def do_token(folder: Folder, action: Action) -> None:
    """``token T/n``: Solaris ``setiftoken`` (SIOCSLIFTOKEN), ``ip token`` on Linux.

    ``setiftoken`` wants a prefix length ("Missing prefix length in
    subnet", its text); ``ip_sioctl_token`` takes it on unit 0 of an IPv6
    interface only and keeps the low ``n`` bits as the ill's token.
    Linux keeps exactly the low 64 bits (``inet6_set_iftoken``), which is
    what Solaris' in.ndpd uses on Ethernet, where a prefix is 64 bits and
    an address is prefix + token; another length has no Linux meaning.
    """
    assert action.argument is not None
    word = action.argument
    addr, plen = resolve_address(word, Family.INET6, folder.env)
    if plen is None:
        raise ConfigError(f"Missing prefix length in subnet {word}")
    if folder.cur.unit != 0:
        raise folder.einval("setiftoken: SIOCSLIFTOKEN")
    if plen != IPV6_TOKEN_BITS:
        raise ConfigError(f"token {word}: Linux takes {IPV6_TOKEN_BITS}-bit interface tokens only "
                          f"(write {addr}/{IPV6_TOKEN_BITS})")
    low = int(addr) & ((1 << IPV6_TOKEN_BITS) - 1)
    folder.put_interface(replace(folder.interface(), token=IPv6Address(low) if low else None))


def do_subnet(folder: Folder, action: Action) -> None:
    """``subnet A/n``: Solaris ``setifsubnet`` (SIOCSLIFSUBNET).

    ``ip_sioctl_subnet`` sets the unit's mask and subnet, not its address
    nor its broadcast, and refuses a subnet with bits set past its mask
    (EINVAL).  A Linux address carries its prefix length and its subnet
    is always the address masked, so the subnet of an address is its
    prefix length; a subnet that does not hold the address (which
    Solaris keeps for in.ndpd's NOLOCAL prefixes) has no Linux meaning.
    A unit without an address only keeps a mask until its address is set,
    which resets it (``setifaddr``): nothing to do.
    """
    assert action.argument is not None
    word = action.argument
    addr, plen = resolve_address(word, folder.cur.family, folder.env)
    if plen is None:
        raise ConfigError(f"Missing prefix length in subnet {word}")
    subnet = ip_network(f"{addr}/{plen}", strict=False)
    if subnet.network_address != addr:
        raise folder.einval("SIOCSLIFSUBNET")
    lg = folder.logical()
    if lg.address is None:
        return
    if lg.address.ip not in subnet:
        raise ConfigError(f"subnet {word}: {folder.lname()} has address {lg.address.ip}, outside it; "
                          f"Linux takes an address's subnet from the address")
    folder.put_logical(replace(lg, address=interface_address(lg.address.ip, plen)))


def do_metric(folder: Folder, action: Action) -> None:
    folder.put_interface(replace(folder.interface(), metric=folder.number(action)))


def do_ether(folder: Folder, action: Action) -> None:
    if action.argument is None:
        folder.cur.status.append(folder.lname())
        return
    parts = action.argument.split(":")
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        octets = []
    if len(octets) != 6 or not all(0 <= o <= 255 for o in octets):
        raise ConfigError(f"{action.argument}: bad address")
    if octets[0] & 1:
        raise ConfigError(f"ether: {folder.lname()}: Invalid argument")  # multicast MAC
    folder.put_interface(replace(folder.interface(), mac=":".join(f"{o:02x}" for o in octets)))


def do_arp(folder: Folder, action: Action) -> None:
    folder.put_interface(replace(folder.interface(), noarp=False))


def do_arp_off(folder: Folder, action: Action) -> None:
    folder.put_interface(replace(folder.interface(), noarp=True))


def do_trailers(folder: Folder, action: Action) -> None:
    """Solaris accepts and ignores trailers (IFF_NOTRAILERS has no effect)."""


def do_trailers_off(folder: Folder, action: Action) -> None:
    """Solaris accepts and ignores -trailers."""
