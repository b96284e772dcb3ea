"""Names, MAC addresses and address checks of the lab network, fixed before any command runs.

MAC addresses are locally administered and depend only on a NIC's index,
never on the namespace prefix, so golden outputs stay the same from run to
run.  Addresses are checked here, before a build or a pinger starts, so a
typo never leaves half a network behind.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from itertools import count as _counter

__all__ = [
    "BRIDGE",
    "BRIDGE_MAC",
    "MAX_NICS",
    "PEER_IFNAME",
    "PEER_MAC",
    "PEER_PORT",
    "PEER_PORT_MAC",
    "ROLE_SUFFIX",
    "ROUTER_IFNAME",
    "ROUTER_MAC",
    "ROUTER_PORT",
    "ROUTER_PORT_MAC",
    "AddressLike",
    "IPInterface",
    "bare_address",
    "check_ifname",
    "host_mac",
    "host_port",
    "host_port_mac",
    "interface",
    "interface4",
    "interface6",
    "unique_prefix",
]

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
AddressLike = str | ipaddress.IPv4Address | ipaddress.IPv6Address | IPInterface

BRIDGE = "br0"
ROUTER_IFNAME = "rt0"
PEER_IFNAME = "pe0"
ROUTER_PORT = "rtp"
PEER_PORT = "pep"
# Host NIC i is 02:00:00:00:01:<i+1>; router and peer get their own "blocks";
# the switch's own ports use fd/fe so that every MAC on the wire is fixed.
ROUTER_MAC = "02:00:00:00:02:01"
PEER_MAC = "02:00:00:00:03:01"
BRIDGE_MAC = "02:00:00:00:fd:00"
ROUTER_PORT_MAC = "02:00:00:00:fd:01"
PEER_PORT_MAC = "02:00:00:00:fd:02"
MAX_NICS = 200

ROLE_SUFFIX = {"host": "host", "switch": "sw", "router": "rt", "peer": "peer"}
# Names the kernel or sysctl treats specially in every namespace.
_RESERVED_IFNAMES = {"lo", "all", "default", ".", ".."}


def host_mac(index: int) -> str:
    """The MAC of host NIC number ``index`` (0-based) in every topology."""
    if not 0 <= index < MAX_NICS:
        raise ValueError(f"NIC index out of range: {index}")
    return f"02:00:00:00:01:{index + 1:02x}"


def host_port(index: int) -> str:
    """Switch-side port name of host NIC number ``index``."""
    return f"h{index}p"


def host_port_mac(index: int) -> str:
    """The MAC of the switch-side port of host NIC number ``index``."""
    return f"02:00:00:00:fe:{index + 1:02x}"


_sequence = _counter()
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if not n:
            return out


def unique_prefix(tag: str = "ipt") -> str:
    """A short name prefix unique to this process and call, e.g. ``ipt1ny0k3q``.

    pid + counter keeps concurrent runs apart and makes leftovers traceable to
    a process; the random tail guards against a recycled pid meeting a leftover
    from a killed run (build refuses existing names anyway).
    """
    if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", tag):
        raise ValueError(f"tag must be 1-6 lower-case letters/digits: {tag!r}")
    rand = "".join(secrets.choice(_B36) for _ in range(3))
    return f"{tag}{_b36(os.getpid())}{_b36(next(_sequence))}{rand}"


def bare_address(address: AddressLike) -> str:
    """'192.0.2.1/24', IPv4Interface(...), IPv4Address(...) -> '192.0.2.1'."""
    if isinstance(address, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(address.ip)
    text = str(address).split("/")[0]
    ipaddress.ip_address(text.split("%")[0])  # validate early, before any command
    return text


def interface4(text: str | None, what: str) -> ipaddress.IPv4Interface | None:
    iface = interface(text, what)
    if iface is not None and not isinstance(iface, ipaddress.IPv4Interface):
        raise ValueError(f"{what}: not an IPv4 address: {text!r}")
    return iface


def interface6(text: str | None, what: str) -> ipaddress.IPv6Interface | None:
    iface = interface(text, what)
    if iface is not None and not isinstance(iface, ipaddress.IPv6Interface):
        raise ValueError(f"{what}: not an IPv6 address: {text!r}")
    return iface


def interface(text: str | None, what: str) -> IPInterface | None:
    if text is None:
        return None
    # Without an explicit length ip_interface() would silently pick /32 or
    # /128, which makes the router unreachable in a surprising way.
    if "/" not in text:
        raise ValueError(f"{what}: needs a prefix length: {text!r}")
    return ipaddress.ip_interface(text)


def check_ifname(name: str) -> None:
    # The kernel's rules (dev_valid_name) plus a few names that would clash
    # with sysctl directories or the loopback device.
    if not name or len(name) > 15:
        raise ValueError(f"interface name must be 1-15 characters: {name!r}")
    if name in _RESERVED_IFNAMES or any(c in name for c in "/:") or not name.isprintable():
        raise ValueError(f"invalid interface name: {name!r}")
    if any(c.isspace() for c in name) or not name.isascii():
        raise ValueError(f"invalid interface name: {name!r}")
