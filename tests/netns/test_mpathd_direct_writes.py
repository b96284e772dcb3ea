"""in.mpathd's own rtnetlink writes (``netlink.DirectKernel``) against a real kernel.

An address move is nothing but address, rule and route requests; the daemon
sends them on a plain netlink socket instead of through pyroute2 (whose
Python costs more than the kernel's work).  These tests hold it to what
pyroute2 does with the same ops: the same kernel objects, the same errors.

Each test runs one small Python process in the lab's host namespace, as
tests/netns/test_netlink.py does.  Documentation prefixes only.
"""

from __future__ import annotations

import base64
import errno
import pickle
import sys
from dataclasses import replace
from ipaddress import IPv4Address, ip_address, ip_interface, ip_network
from pathlib import Path
from typing import Any

from ipmp.lab.topology import Topology
from ipmp.model import Family, KAddress, KernelState, KRoute, KRule
from ipmp.ops import AddAddress, AddRoute, AddRule, DelAddress, DelRoute, DelRule, Op, SetLink

ROOT = Path(__file__).resolve().parents[2]

#: Steps: ("read", keys) -> KernelState; ("execute", direct, ops) -> ("ok", done)
#: or ("error", message, errno, op, done); ``direct`` picks DirectKernel over Kernel.
SCRIPT = r"""
import asyncio, base64, pickle, sys
sys.path.insert(0, sys.argv[1])
from ipmp.errors import ApplyError
from ipmp.netlink import DirectKernel, Kernel

async def main(steps):
    out = []
    async with Kernel() as plain, DirectKernel() as direct:
        for step in steps:
            if step[0] == "read":
                out.append(await plain.read(step[1]))
                continue
            _, use_direct, ops = step
            done = []
            try:
                await (direct if use_direct else plain).execute(ops, done=done.append)
            except ApplyError as e:
                out.append(("error", e.message, e.errno_, e.op, done))
            else:
                out.append(("ok", done))
    return out

steps = pickle.loads(base64.b64decode(sys.argv[2]))
sys.stdout.write(base64.b64encode(pickle.dumps(asyncio.run(main(steps)))).decode())
"""


def run_steps(topo: Topology, *steps: tuple[Any, ...]) -> list[Any]:
    payload = base64.b64encode(pickle.dumps(list(steps))).decode()
    proc = topo.run(topo.host, [sys.executable, "-W", "error", "-c", SCRIPT, str(ROOT), payload])
    result: list[Any] = pickle.loads(base64.b64decode(proc.stdout))
    return result


def ours(state: KernelState, nics: tuple[str, ...]) -> tuple[tuple[KAddress, ...], frozenset[KRoute],
                                                              frozenset[KRule]]:
    """What the ops make: the NICs' addresses (not the kernel's link-locals), our routes and rules."""
    addresses = tuple(a for a in state.addresses if a.ifname in nics and not a.kernel_owned)
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


def test_a_move_written_directly_leaves_the_kernel_as_pyroute2_does(topology: Topology) -> None:
    nic0, nic1 = topology.nics
    up = [SetLink(nic0, up=True), SetLink(nic1, up=True)]
    ops = _ops(nic0, nic1)
    undo = _undo(ops)
    results = run_steps(
        topology,
        ("execute", False, up), ("read", ()),
        ("execute", True, ops), ("read", ()),
        ("execute", True, undo), ("read", ()),
        ("execute", False, ops), ("read", ()),
        ("execute", False, undo), ("read", ()),
    )
    states = results[1::2]
    assert all(r == ("ok", list(range(len(r[1])))) for r in results[0::2]), results[0::2]
    before, direct, direct_undone, pyroute2, _ = (ours(s, topology.nics) for s in states)
    assert before == ((), frozenset(), frozenset())
    assert direct == pyroute2
    assert direct_undone == before
    addresses, routes, rules = direct
    assert len(addresses) == 8 and len(routes) == 6 and len(rules) == 3
    # Each as asked (the kernel's own additions aside: its IPv6 route metric is read back as 0).
    wanted = {op.address for op in ops if isinstance(op, AddAddress)}
    assert {replace(x, tentative=False) for x in addresses} == wanted
    assert routes == {op.route for op in ops if isinstance(op, AddRoute)}
    assert rules == {op.rule for op in ops if isinstance(op, AddRule)}


def test_a_refused_direct_write_fails_as_the_pyroute2_one(topology: Topology) -> None:
    """The same ``ApplyError``: the op, the errno and the kernel's own reason (extended ack)."""
    nic0, _nic1 = topology.nics
    here = KAddress(nic0, ip_interface("192.0.2.100/24"), label=nic0)
    absent = KAddress(nic0, ip_interface("192.0.2.200/24"))
    absent6 = KAddress(nic0, ip_interface("2001:db8::200/64"))
    off_link = KRoute(Family.INET, 1007, ip_network("0.0.0.0/0"), nic0, gateway=ip_address("203.0.113.1"))
    no_rule = KRule(Family.INET, 299, ip_address("192.0.2.250"), 1007)
    gone = KAddress("nosuchnic", ip_interface("192.0.2.5/24"))
    refused: list[Op] = [AddAddress(here), DelAddress(absent), DelAddress(absent6), AddRoute(off_link),
                         DelRule(no_rule), DelRoute(off_link), AddAddress(gone)]
    steps: list[tuple[Any, ...]] = [("execute", False, [SetLink(nic0, up=True), AddAddress(here)])]
    for op in refused:
        steps += [("execute", True, [op]), ("execute", False, [op])]
    results = run_steps(topology, *steps)
    assert results[0][0] == "ok"
    pairs = list(zip(results[1::2], results[2::2], strict=True))
    for op, (direct, pyroute2) in zip(refused, pairs, strict=True):
        assert direct[0] == "error", (op, direct)
        assert direct == pyroute2, op
    codes = [direct[2] for direct, _ in pairs]
    assert codes[:3] == [errno.EEXIST, errno.EADDRNOTAVAIL, errno.EADDRNOTAVAIL]
    assert codes[-1] == errno.ENODEV
    # The kernel's reason reaches the message, as with pyroute2's extended acks.
    assert "Address not found" in pairs[1][0][1]
