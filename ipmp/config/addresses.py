"""The values of ifconfig words: interface names, addresses, masks, and what a NIC cannot hold.

Each function reads one word as Solaris ``ifconfig`` reads it (``in_getaddr``,
``in_getmask``, ``in6_getaddr``) and raises ``ConfigError`` with its message;
host names are looked up in the ``Environment`` (the hosts and netmasks files).

Pure module: no I/O.
"""

from __future__ import annotations

from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    ip_address,
)

from ipmp.errors import ConfigError, NoSuchInterface
from ipmp.model import Environment, Family, IPAddress, IPInterface


def split_name(name: str) -> tuple[str, int]:
    """``qfe0:2`` -> (``qfe0``, 2); ``qfe0`` -> (``qfe0``, 0)."""
    base, sep, unit = name.partition(":")
    if not sep:
        return base, 0
    if not unit.isdigit():
        raise NoSuchInterface(f"{name}: no such interface")
    return base, int(unit)


def classful_prefix(address: IPv4Address) -> int:
    """The mask the Solaris kernel gives an address set without one."""
    first = int(address) >> 24
    if first < 128:
        return 8
    if first < 192:
        return 16
    return 24


def mask_to_prefix(mask: IPv4Address, word: str) -> int:
    value = int(mask)
    prefix = bin(value).count("1")
    if value != ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF):
        raise ConfigError(f"{word}: non-contiguous netmask is not supported on Linux")
    return prefix


def parse_mask(word: str, env: Environment) -> IPv4Address:
    """``netmask`` argument: ``0xffffff00``, ``255.255.255.0`` (``+`` is handled by the caller)."""
    try:
        if word.lower().startswith("0x"):
            return IPv4Address(int(word, 16))
        return IPv4Address(word)
    except ValueError:
        resolved = env.resolve(word, Family.INET)
        if isinstance(resolved, IPv4Address):
            return resolved
        raise ConfigError(f"{word}: bad address") from None


def resolve_address(word: str, family: Family, env: Environment) -> tuple[IPAddress, int | None]:
    """An address word: literal, ``addr/len``, or a host name from the hosts file."""
    text, slash, plen = word.partition("/")
    prefix: int | None = None
    if slash:
        if not plen.isdigit():
            raise ConfigError(f"Bad prefix length in {word}")
        prefix = int(plen)
    try:
        addr = ip_address(text)
    except ValueError:
        found = env.resolve(text, family)
        if found is None:
            raise ConfigError(f"{word}: bad address") from None
        addr = found
    if addr.version != family:
        raise ConfigError(f"{word}: bad address")
    if prefix is not None and prefix > addr.max_prefixlen:
        raise ConfigError(f"Bad prefix length in {word}")
    return addr, prefix


#: IPv4 ranges no NIC can hold as its own address (see ``impossible_reason``).
_LOOPBACK_NET = IPv4Network("127.0.0.0/8")
_THIS_NET = IPv4Network("0.0.0.0/8")
_CLASS_E = IPv4Network("240.0.0.0/4")
_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_LOOPBACK6 = IPv6Address("::1")
#: What plumbing lo0 gives its unit 0: illumos ``ill_lookup_on_name`` sets up
#: the loopback ipif with INADDR_LOOPBACK and the class A mask, or ``::1``/128.
LOOPBACK_ADDRESS: dict[Family, IPInterface] = {
    Family.INET: IPv4Interface("127.0.0.1/8"),
    Family.INET6: IPv6Interface("::1/128"),
}


def impossible_reason(addr: IPAddress, *, loopback_interface: bool = False) -> str | None:
    """Why an interface cannot hold ``addr`` as its own address; None if it can.

    The Solaris kernel checks every local address it is given
    (``ip_local_addr_ok`` and ``ip_local_addr_ok_v6`` in ip_if.c) and
    ifconfig fails with the error; Linux checks almost nothing and takes
    even ``127.0.1.1/8`` on a NIC.  So the checks are made here, before any
    kernel change:

    * multicast (IPv4 class D, IPv6 ``ff00::/8``), the limited broadcast
      ``255.255.255.255``, class E ``240.0.0.0/4``, IPv4-mapped IPv6
      (``::ffff:0:0/96``) and IPv4-compatible IPv6 of a multicast address:
      refused by Solaris itself.
    * loopback (``127.0.0.0/8``, ``::1``) on any interface but the loopback
      one: Solaris took it (its check has no loopback case), but no packet
      with such an address may leave a host (RFC 1122 3.2.1.3(g), RFC 4291
      2.5.3), and Linux drops them as martians: the NIC would be unreachable
      at that address, and the routes of the recipe would send the host's
      own 127/8 traffic to the wire.  In practice this is a host name that
      the hosts file maps to ``127.0.1.1`` (Debian's installer line).
    * ``0.0.0.0/8`` other than ``0.0.0.0``: "this host on this network",
      only ever a source while a host learns its address (RFC 1122
      3.2.1.3(a)/(b)); Solaris refuses these as a zero network part.

    Allowed: the unspecified address (``0.0.0.0``, ``::``), which Solaris
    takes as "no address" (a standby NIC's unit 0 often has none), and
    link-local addresses (``169.254.0.0/16``, ``fe80::/10``): they are valid
    on their link, Solaris accepts them, and every IPv6 NIC has one.
    Host parts of all zeros or all ones, which Solaris also refuses for
    classful masks, are left to the kernel: Linux takes ``/31`` and ``/32``
    addresses that the classful rule would refuse (RFC 3021).
    """
    if addr.is_unspecified:
        return None
    if isinstance(addr, IPv4Address):
        if addr in _LOOPBACK_NET:
            return None if loopback_interface else "a loopback address"
        if addr in _THIS_NET:
            return "an address of 0.0.0.0/8 (\"this network\")"
        if addr.is_multicast:
            return "a multicast address"
        if addr == _LIMITED_BROADCAST:
            return "the limited broadcast address"
        if addr in _CLASS_E:
            return "a class E (reserved) address"
        return None
    if addr == _LOOPBACK6:
        return None if loopback_interface else "a loopback address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.ipv4_mapped is not None:
        return "an IPv4-mapped address"
    if int(addr) >> 32 == 0 and IPv4Address(int(addr) & 0xFFFFFFFF).is_multicast:
        return "an IPv4-compatible multicast address"
    return None


def refuse_impossible(
    word: str, addr: IPAddress, family: Family, env: Environment, lname: str, *,
    loopback_interface: bool, where: str,
) -> None:
    """Raise if ``addr`` (the value of ``word``) cannot be ``lname``'s own address.

    When ``word`` is a host name the message names the hosts line that gave
    the address and how to fix it: the usual cause is Debian's
    ``127.0.1.1 HOST`` line, which comes before any line the admin appends,
    and the first matching line wins (glibc, as Solaris' files backend).
    ``where`` is the hostname file the word is in ("" on the command line).
    """
    reason = impossible_reason(addr, loopback_interface=loopback_interface)
    if reason is None:
        return
    name = word.partition("/")[0]
    fix = f"write the address itself in {where}" if where else "give the address itself"
    try:
        ip_address(name)
    except ValueError:
        origin = env.origin(name, family)
        line = f" ({origin[0]}:{origin[1]})" if origin else ""
        before = f"line {origin[1]} of {origin[0]}" if origin else "that line"
        raise ConfigError(
            f"{name}: the hosts file gives {addr}{line}, {reason}, which {lname} cannot hold; "
            f"put a line with the host's own address before {before} (the first match wins), "
            f"or {fix}") from None
    raise ConfigError(f"{word}: {reason}, which {lname} cannot hold")


def interface_address(addr: IPAddress, prefix: int) -> IPInterface:
    if isinstance(addr, IPv4Address):
        return IPv4Interface((addr, prefix))
    return IPv6Interface((addr, prefix))



def file_name(path: str) -> str:
    """``PurePath(path).name``: string work, without ``pathlib`` on the read path of ``ifconfig``."""
    parts = [part for part in path.split("/") if part and part != "."]
    return parts[-1] if parts else ""
