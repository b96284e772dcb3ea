"""The toolkit's rtnetlink writes (``ipmp.kernel.request.encode_request``) against a real kernel.

Address, route and rule ops are requests the toolkit encodes itself and sends
on a plain netlink socket (``request.Requester``), not through pyroute2, whose
Python costs in.mpathd more than the kernel's work at every address move.
These tests hold them to iproute2: each op is also carried out as the ``ip``
command it names (``Op.argv``), and the kernel must end up the same and
refuse the same ops.

Each test runs one small Python process in the lab's host namespace
(tests/netns/kernel_steps.py), as tests/netns/test_kernel.py does.
Documentation prefixes only, and the namespace's own loopback.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from ipaddress import IPv4Address, ip_address, ip_interface, ip_network
from typing import Any

from ipmp.lab.topology import Topology
from ipmp.linux.ops import AddAddress, AddRoute, AddRule, DelAddress, DelRoute, DelRule, Op, SetLink
from ipmp.model import Family, KAddress, KernelState, KRoute, KRule
from tests.netns.kernel_steps import run_steps

#: The loopback's own addresses, there before any op.
LOCALHOST = {ip_interface("127.0.0.1/8"), ip_interface("::1/128")}


def ours(state: KernelState, nics: tuple[str, ...]) -> tuple[tuple[KAddress, ...], frozenset[KRoute],
                                                              frozenset[KRule]]:
    """What the ops make: the NICs' and loopback's addresses (not the kernel's own), our routes and rules."""
    addresses = tuple(a for a in state.addresses  # a read names the loopback lo0
                      if a.ifname in (*nics, "lo0") and not a.kernel_owned and a.address not in LOCALHOST)
    return addresses, state.routes, state.rules


def _ops(nic0: str, nic1: str) -> list[Op]:
    """Every shape of address, route and rule a move or a restore sends."""
    def a(text: str, ifname: str, **kw: Any) -> KAddress:
        return KAddress(ifname, ip_interface(text), **kw)

    addresses = [
        a("192.0.2.10/24", nic0, label=nic0, deprecated=True, broadcast=IPv4Address("192.0.2.255")),
        a("192.0.2.100/24", nic0, label=f"{nic0}:1", broadcast=IPv4Address("192.0.2.255")),
        a("192.0.2.101/24", nic1, label=f"{nic1}:2", broadcast=IPv4Address("192.0.2.255")),
        a("198.51.100.10/24", nic1, label=f"{nic1}:3", noprefixroute=False),
        a("203.0.113.1/32", nic1, label=f"{nic1}:4", peer=ip_address("203.0.113.2")),
        a("2001:db8::10/64", nic0, deprecated=True),
        a("2001:db8::100/64", nic1),
        a("2001:db8:1::1/128", nic1, peer=ip_address("2001:db8:1::2"), noprefixroute=False),
        # Host scope, as 127.0.0.1/8 has (the kernel refuses another scope in its subnet).
        a("127.0.0.2/8", "lo", label="lo:1", noprefixroute=False),
    ]
    routes = [
        KRoute(Family.INET, 1000 + 7, ip_network("192.0.2.0/24"), nic0, src=ip_address("192.0.2.100")),
        KRoute(Family.INET, 1000 + 7, ip_network("0.0.0.0/0"), nic0, gateway=ip_address("192.0.2.1"),
               src=ip_address("192.0.2.100"), mtu=1400),
        KRoute(Family.INET, 254, ip_network("192.0.2.0/24"), nic1, src=ip_address("192.0.2.101"), metric=7),
        KRoute(Family.INET, 100, ip_network("198.51.100.0/25"), nic1, metric=3, mtu=1300),
        KRoute(Family.INET6, 1000 + 8, ip_network("2001:db8::/64"), nic1),
        KRoute(Family.INET6, 1000 + 8, ip_network("::/0"), nic1, gateway=ip_address("2001:db8::1"), metric=5),
    ]
    rules = [
        KRule(Family.INET, 200, ip_address("192.0.2.100"), 1000 + 7),
        KRule(Family.INET, 201, ip_address("192.0.2.101"), 100),
        KRule(Family.INET6, 200, ip_address("2001:db8::100"), 1000 + 8),
    ]
    return [*(AddAddress(x) for x in addresses), *(AddRoute(x) for x in routes), *(AddRule(x) for x in rules)]


def _undo(ops: list[Op]) -> list[Op]:
    undo: list[Op] = []
    for op in reversed(ops):
        match op:
            case AddAddress(address=x):
                undo.append(DelAddress(x))
            case AddRoute(route=x):
                undo.append(DelRoute(x))
            case AddRule(rule=x):
                undo.append(DelRule(x))
    return undo


def test_the_requests_leave_the_kernel_as_iproute2_does(topology: Topology) -> None:
    nic0, nic1 = topology.nics
    up = [SetLink(nic0, up=True), SetLink(nic1, up=True)]
    ops = _ops(nic0, nic1)
    undo = _undo(ops)
    results = run_steps(
        topology,
        ("execute", up), ("read", ()),
        ("execute", ops), ("read", ()),
        ("execute", undo), ("read", ()),
        ("ip", ops), ("read", ()),
        ("ip", undo), ("read", ()),
    )
    states = results[1::2]
    executed, by_ip = results[0:6:2], results[6::2]
    assert all(r == ("ok", list(range(len(r[1])))) for r in executed), executed
    assert all(run == (0, "") for runs in by_ip for run in runs), by_ip
    before, ours_, ours_undone, iproute2, iproute2_undone = (ours(s, topology.nics) for s in states)
    assert before == ((), frozenset(), frozenset())
    assert ours_ == iproute2
    assert ours_undone == iproute2_undone == before
    addresses, routes, rules = ours_
    assert len(addresses) == 9 and len(routes) == 6 and len(rules) == 3
    # Each as asked (the kernel's own additions aside: its IPv6 route metric is read back as 0).
    wanted = {op.address for op in ops if isinstance(op, AddAddress)}
    # A read gives the loopback's Solaris name.
    lo0 = {replace(x, ifname="lo", label="lo:1") for x in addresses if x.ifname == "lo0"}
    assert {replace(x, tentative=False) for x in addresses if x.ifname != "lo0"} | lo0 == wanted
    assert routes == {op.route for op in ops if isinstance(op, AddRoute)}
    assert rules == {op.rule for op in ops if isinstance(op, AddRule)}


def test_a_refused_request_fails_as_the_ip_command(topology: Topology) -> None:
    """An ``ApplyError`` naming the op, with the errno and the kernel's own reason (extended ack)."""
    nic0, _nic1 = topology.nics
    here = KAddress(nic0, ip_interface("192.0.2.100/24"), label=nic0)
    absent = KAddress(nic0, ip_interface("192.0.2.200/24"))
    absent6 = KAddress(nic0, ip_interface("2001:db8::200/64"))
    off_link = KRoute(Family.INET, 1007, ip_network("0.0.0.0/0"), nic0, gateway=ip_address("203.0.113.1"))
    no_rule = KRule(Family.INET, 299, ip_address("192.0.2.250"), 1007)
    gone = KAddress("nosuchnic", ip_interface("192.0.2.5/24"))
    refused: list[Op] = [AddAddress(here), DelAddress(absent), DelAddress(absent6), AddRoute(off_link),
                         DelRule(no_rule), DelRoute(off_link), AddAddress(gone)]
    steps: list[tuple[Any, ...]] = [("execute", [SetLink(nic0, up=True), AddAddress(here)])]
    steps += [("execute", [op]) for op in refused]
    steps.append(("ip", refused))
    results = run_steps(topology, *steps)
    assert results[0][0] == "ok"
    ours_, by_ip = results[1:-1], results[-1]
    for op, mine, (status, stderr) in zip(refused, ours_, by_ip, strict=True):
        assert mine[:2] == ("error", mine[1]) and mine[3] == op and mine[4] == [], (op, mine)
        assert status != 0, (op, stderr)  # iproute2 is refused the same op
        reason = mine[1].rpartition("(")[2].rstrip(")")
        if "(" in mine[1] and op is not refused[-1]:
            assert reason.rstrip(".") in stderr, (op, mine[1], stderr)  # the same reason, word for word
    codes = [mine[2] for mine in ours_]
    assert codes[:3] == [errno.EEXIST, errno.EADDRNOTAVAIL, errno.EADDRNOTAVAIL]
    assert codes[-1] == errno.ENODEV
    # The kernel's reason reaches the message.
    assert "Address not found" in ours_[1][1]
