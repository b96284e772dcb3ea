"""Config records for the tests, written short: ``nic("qfe0", 2, v4(0, "192.0.2.10/24", up=True))``."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv6Interface

from ipmp.model import Family, Interface, Logical

V4 = frozenset({Family.INET})
V4V6 = frozenset({Family.INET, Family.INET6})


def v4(unit: int, addr: str | None, **kw: object) -> Logical:
    """An IPv4 logical interface (``addr`` None: unit 0 without an address)."""
    address = IPv4Interface(addr) if addr is not None else None
    return Logical(Family.INET, unit, address, **kw)  # type: ignore[arg-type]


def v6(unit: int, addr: str | None, **kw: object) -> Logical:
    address = IPv6Interface(addr) if addr is not None else None
    return Logical(Family.INET6, unit, address, **kw)  # type: ignore[arg-type]


def nic(name: str, index: int, *logicals: Logical, **kw: object) -> Interface:
    """A NIC plumbed for IPv4 with its link up and running, unless ``kw`` says otherwise."""
    params: dict[str, object] = {"name": name, "index": index, "plumbed": V4, "link_up": True,
                                 "running": True, "logicals": logicals}
    params.update(kw)
    return Interface(**params)  # type: ignore[arg-type]


#: Solaris's lo0 as the view hands it over.
LO0 = nic("lo0", 1, v4(0, "127.0.0.1/8", up=True), loopback=True, noarp=True, mtu=8232)
