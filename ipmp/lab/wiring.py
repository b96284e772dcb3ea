"""Build a lab network: check every name and address, create the namespaces, wire them.

The wiring itself is described in :mod:`ipmp.lab.topology`.  Every veth is
created from the switch's namespace with its other end placed straight into
the host, router or peer namespace, so the root namespace is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ipmp.lab.addressing import (
    BRIDGE_MAC,
    MAX_NICS,
    PEER_PORT_MAC,
    ROLE_SUFFIX,
    ROUTER_PORT_MAC,
    IPInterface,
    check_ifname,
    host_mac,
    host_port,
    host_port_mac,
    interface,
    interface4,
    interface6,
)
from ipmp.lab.topology import Topology

__all__ = ["build"]

_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


def _check_present(iface: IPInterface | None) -> IPInterface:
    assert iface is not None  # only None for a None input, which callers never pass
    return iface


def _addr_args(iface: IPInterface, dev: str) -> str:
    # nodad: router and peer addresses must answer at once, not after ~1-2 s
    # of duplicate address detection.
    return f"addr add {iface} dev {dev}" + (" nodad" if iface.version == 6 else "")


def build(
    prefix: str,
    nics: Sequence[str] = ("nic0", "nic1"),
    *,
    router4: str | None = "192.0.2.1/24",
    peer4: str | None = "192.0.2.50/24",
    router6: str | None = "2001:db8::1/64",
    peer6: str | None = "2001:db8::50/64",
    extra_router_addrs: Sequence[str] = (),
    extra_peer_addrs: Sequence[str] = (),
) -> Topology:
    """Create the four namespaces and wire them; see the module docstring.

    Everything is validated before the first command runs.  If anything fails
    (or is interrupted) half-way, whatever was created is deleted and the
    error re-raised.  A name that already exists is an error, and such a
    namespace is never deleted: it is not ours.
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"prefix must match {_PREFIX_RE.pattern}: {prefix!r}")
    nics = tuple(nics)
    if not 1 <= len(nics) <= MAX_NICS:
        raise ValueError(f"need 1..{MAX_NICS} host NICs, got {len(nics)}")
    for nic in nics:
        check_ifname(nic)
    if len(set(nics)) != len(nics):
        raise ValueError(f"duplicate NIC names: {nics}")
    r4 = interface4(router4, "router4")
    p4 = interface4(peer4, "peer4")
    r6 = interface6(router6, "router6")
    p6 = interface6(peer6, "peer6")
    extra_r: list[IPInterface] = []
    for a in extra_router_addrs:
        extra_r.append(_check_present(interface(a, "extra_router_addrs")))
    extra_p: list[IPInterface] = []
    for a in extra_peer_addrs:
        extra_p.append(_check_present(interface(a, "extra_peer_addrs")))

    names = {role: f"{prefix}-{suffix}" for role, suffix in ROLE_SUFFIX.items()}
    topo = Topology(
        prefix=prefix,
        host=names["host"],
        switch=names["switch"],
        router=names["router"],
        peer=names["peer"],
        nics=nics,
        ports={nic: host_port(i) for i, nic in enumerate(nics)},
        macs={nic: host_mac(i) for i, nic in enumerate(nics)},
        router4=r4,
        peer4=p4,
        router6=r6,
        peer6=p6,
        extra_router_addrs=tuple(extra_r),
        extra_peer_addrs=tuple(extra_p),
    )
    try:
        _wire(topo)
    except BaseException:
        topo.destroy()
        raise
    return topo


def _sysctl(topo: Topology, ns: str, values: dict[str, str]) -> None:
    # A sysctl is per network namespace and only reachable from a process
    # inside it.  Plain sh + /proc rather than sysctl(8): procps is missing
    # from many minimal CI images.  Keys and values are ours, never user input.
    script = " && ".join(f"echo {v} > /proc/sys/{k}" for k, v in values.items())
    topo.run(ns, ["sh", "-c", script])


def _wire(topo: Topology) -> None:
    topo.add_namespaces()

    # The switch: every veth is created from here with its other end placed
    # straight into the host/router/peer namespace.  addrgenmode none keeps
    # the switch silent (no IPv6 link-local, no DAD or MLD frames of its own).
    sw: list[str] = [
        "link set dev lo up",
        f"link add {topo.bridge} address {BRIDGE_MAC} type bridge"
        " stp_state 0 forward_delay 0 mcast_snooping 0",
        f"link set dev {topo.bridge} addrgenmode none",
    ]
    ends = [
        (topo.ports[nic], host_port_mac(i), nic, topo.macs[nic], topo.host)
        for i, nic in enumerate(topo.nics)
    ]
    ends.append((topo.router_port, ROUTER_PORT_MAC, topo.router_ifname, topo.router_mac, topo.router))
    ends.append((topo.peer_port, PEER_PORT_MAC, topo.peer_ifname, topo.peer_mac, topo.peer))
    for port, port_mac, far, far_mac, far_ns in ends:
        sw.append(
            f"link add {port} address {port_mac} type veth peer name {far} address {far_mac} netns {far_ns}"
        )
        sw.append(f"link set dev {port} addrgenmode none")
        sw.append(f"link set dev {port} master {topo.bridge} up")
    sw.append(f"link set dev {topo.bridge} up")
    topo.batch(topo.switch, sw)

    # Before the links come up: the router forwards, and neither station
    # runs DAD on its link-local address (it would be tentative for ~1-2 s).
    _sysctl(
        topo,
        "router",
        {
            "net/ipv4/ip_forward": "1",
            "net/ipv6/conf/all/forwarding": "1",
            f"net/ipv6/conf/{topo.router_ifname}/accept_dad": "0",
        },
    )
    _sysctl(topo, "peer", {f"net/ipv6/conf/{topo.peer_ifname}/accept_dad": "0"})

    rt = ["link set dev lo up", f"link set dev {topo.router_ifname} up"]
    rt += [
        _addr_args(a, topo.router_ifname)
        for a in (topo.router4, topo.router6, *topo.extra_router_addrs)
        if a is not None
    ]
    topo.batch(topo.router, rt)

    pe = ["link set dev lo up", f"link set dev {topo.peer_ifname} up"]
    pe += [
        _addr_args(a, topo.peer_ifname)
        for a in (topo.peer4, topo.peer6, *topo.extra_peer_addrs)
        if a is not None
    ]
    # The peer reaches off-link addresses through the router, if it can.
    for mine, gw in ((topo.peer4, topo.router4), (topo.peer6, topo.router6)):
        if mine is not None and gw is not None and gw.ip in mine.network and gw.ip != mine.ip:
            pe.append(f"route add default via {gw.ip} dev {topo.peer_ifname}")
    topo.batch(topo.peer, pe)

    # Host NICs stay down and bare: that is the product's job.
    topo.batch(topo.host, ["link set dev lo up"])
