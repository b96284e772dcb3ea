"""ipmp.kernel (``Kernel``: read and execute) against a real kernel, inside the lab's host namespace.

Each test runs one small Python process in ``topo.host`` (``ip netns exec``),
because the kernel boundary works in the namespace of its own process: the
steps go to ``tests/netns/kernel_steps.py``, and the assertions compare real
``KernelState`` values.

Only documentation prefixes are used (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32), and only in the fixture's namespaces.
"""

from __future__ import annotations

import errno
import sys
from dataclasses import replace
from ipaddress import IPv4Address, ip_address, ip_interface, ip_network
from typing import Any

import pytest

from ipmp.lab.topology import Topology
from ipmp.linux.ops import (
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelRoute,
    DelRule,
    Op,
    SetLink,
    SetSysctl,
    command,
)
from ipmp.model import Family, KAddress, KernelState, KRoute, KRule
from tests.netns.kernel_steps import run_steps


def ip_json(topo: Topology, *args: str) -> Any:
    return topo.ip_json(topo.host, *args)


def addr(text: str, ifname: str, **kw: Any) -> KAddress:
    return KAddress(ifname, ip_interface(text), **kw)


def inverse(op: Op, before: KernelState) -> Op:
    """The op undoing ``op``, given the state before it."""
    match op:
        case AddAddress(address=a):
            return DelAddress(a)
        case AddRoute(route=r):
            return DelRoute(r)
        case AddRule(rule=r):
            return DelRule(r)
        case SetSysctl(key=key):
            old = before.sysctl(key)
            assert old is not None
            return SetSysctl(key, old)
        case SetLink(name=name):
            link = before.link(name)
            assert link is not None
            return SetLink(
                name,
                up=None if op.up is None else link.up,
                mtu=None if op.mtu is None else link.mtu,
                noarp=None if op.noarp is None else link.noarp,
                mac=None if op.mac is None else link.mac,
            )
    raise AssertionError(op)


def managed(state: KernelState) -> KernelState:
    """``state`` without the addresses the kernel makes by itself (IPv6 link-local)."""
    return replace(state, addresses=tuple(a for a in state.addresses if not a.kernel_owned))


@pytest.fixture
def nics_up(topology: Topology) -> Topology:
    """The topology with both host NICs admin up (carrier settles in the child)."""
    for nic in topology.nics:
        topology.run(topology.host, ["ip", "link", "set", "dev", nic, "up"])
    return topology


# --------------------------------------------------------------------------


def test_read_round_trip_links_and_addresses(topology: Topology) -> None:
    nic0, nic1 = topology.nics
    addresses = [
        # Test address first: it is the primary, and deprecated.
        addr("192.0.2.10/24", nic0, label=nic0, deprecated=True),
        addr("192.0.2.100/24", nic0, label=f"{nic0}:1", broadcast=IPv4Address("192.0.2.255")),
        addr("198.51.100.10/24", nic1, label=f"{nic1}:2", noprefixroute=False),
        addr("203.0.113.1/32", nic1, label=nic1, peer=ip_address("203.0.113.2")),
        addr("2001:db8::10/64", nic0, deprecated=True),
        addr("2001:db8::100/64", nic0),
        addr("2001:db8:1::1/128", nic1, peer=ip_address("2001:db8:1::2"), noprefixroute=False),
    ]
    plan: list[Op] = [
        SetLink(nic0, up=True, mtu=1400),
        SetLink(nic1, up=True, noarp=True, mac="02:00:5e:00:53:01"),
        *(AddAddress(a) for a in addresses),
    ]
    executed, state = run_steps(topology, ("execute", plan), ("read", ()))
    assert executed == ("ok", list(range(len(plan))))

    link0, link1 = state.link(nic0), state.link(nic1)
    assert link0 is not None and link1 is not None
    assert (link0.up, link0.mtu, link0.noarp, link0.kind) == (True, 1400, False, "veth")
    assert (link1.up, link1.mtu, link1.noarp, link1.mac) == (True, 1500, True, "02:00:5e:00:53:01")
    assert [lk.index for lk in state.links] == sorted(lk.index for lk in state.links)
    # The loopback reads as Solaris names it (ifmap.NameMap); "lo" is its Linux name.
    lo = state.link("lo0")
    assert lo is not None and lo.loopback and not lo.multicast and lo.kind == "" and lo.altnames[0] == "lo"
    # The same facts as ip(8) sees them.
    for link in (link0, link1):
        (shown,) = ip_json(topology, "link", "show", "dev", link.name)
        assert shown["ifindex"] == link.index
        assert shown["address"] == link.mac
        assert link.running == ("LOWER_UP" in shown["flags"])
        assert link.multicast and not link.pointopoint and not link.loopback

    ours = [a for a in state.addresses if not a.kernel_owned and a.ifname in (nic0, nic1)]
    assert len(ours) == len(addresses)
    assert set(ours) == set(addresses)
    # Kernel order per link and family: the primary IPv4 address first.
    assert [a.address for a in state.addresses_of(nic0) if a.family is Family.INET] == [
        ip_interface("192.0.2.10/24"),
        ip_interface("192.0.2.100/24"),
    ]
    link_locals = [a for a in state.addresses if a.kernel_owned]
    assert all(a.family is Family.INET6 and a.address.ip.is_link_local for a in link_locals)


def test_ipv6_address_is_not_tentative(topology: Topology) -> None:
    """nodad: the address is usable at once (DAD would hold it 1-2 s)."""
    nic0, _ = topology.nics
    address = addr("2001:db8::10/64", nic0)
    (executed,) = run_steps(topology, ("execute", [SetLink(nic0, up=True), AddAddress(address)]))
    assert executed[0] == "ok"
    (shown,) = ip_json(topology, "-6", "addr", "show", "dev", nic0)
    (info,) = [i for i in shown["addr_info"] if i["local"] == "2001:db8::10"]
    assert not info.get("tentative", False)
    assert info.get("nodad") is True
    assert info.get("noprefixroute") is True
    # And it can be bound right away.
    topology.run(
        topology.host,
        [sys.executable, "-c", "import socket; socket.socket(socket.AF_INET6).bind(('2001:db8::10', 0))"],
    )


def test_routes_read_back(nics_up: Topology) -> None:
    topo = nics_up
    nic0, nic1 = topo.nics
    gw4, gw6 = ip_address("192.0.2.1"), ip_address("2001:db8::1")
    src0, src1 = ip_address("192.0.2.10"), ip_address("192.0.2.11")
    src6 = ip_address("2001:db8::10")
    routes = [
        KRoute(Family.INET, 101, ip_network("192.0.2.0/24"), nic0, src=src0),
        KRoute(Family.INET, 101, ip_network("0.0.0.0/0"), nic0, gateway=gw4, src=src0),
        KRoute(Family.INET, 102, ip_network("192.0.2.0/24"), nic1, src=src1),
        KRoute(Family.INET, 102, ip_network("203.0.113.0/24"), nic1, gateway=gw4, src=src1, metric=7),
        KRoute(Family.INET, 254, ip_network("192.0.2.0/24"), nic0, src=src0, metric=103),
        KRoute(Family.INET, 254, ip_network("192.0.2.0/24"), nic1, src=src1, metric=104),
        KRoute(Family.INET6, 101, ip_network("2001:db8::/64"), nic0),
        KRoute(Family.INET6, 101, ip_network("::/0"), nic0, gateway=gw6),
        KRoute(Family.INET6, 254, ip_network("2001:db8::/64"), nic0, src=src6, metric=103),
        # Table 1000 cannot resolve the gateway; the kernel falls back to main.
        KRoute(Family.INET6, 1000, ip_network("2001:db8:5::/48"), nic0, gateway=gw6, metric=5),
    ]
    plan: list[Op] = [
        AddAddress(addr("192.0.2.10/24", nic0, label=nic0)),
        AddAddress(addr("192.0.2.11/24", nic1, label=nic1)),
        AddAddress(addr("2001:db8::10/64", nic0)),
        AddAddress(addr("2001:db8::11/64", nic1)),
        *(AddRoute(r) for r in routes),
    ]
    executed, state = run_steps(topo, ("execute", plan), ("read", ()))
    assert executed == ("ok", list(range(len(plan))))
    # Only routes with protocol RTPROT_IPMP, but those from every table.
    assert state.routes == frozenset(routes)

    # A device route has scope link, as `ip route add` makes it.
    shown = ip_json(topo, "-4", "route", "show", "table", "101")
    (subnet,) = [r for r in shown if r["dst"] == "192.0.2.0/24"]
    assert subnet["scope"] == "link"
    assert subnet["protocol"] == "73"

    # Deleting each one (scope "any", IPv6 metric 0 sent as 1024) empties the set.
    executed, state = run_steps(topo, ("execute", [DelRoute(r) for r in routes]), ("read", ()))
    assert executed[0] == "ok"
    assert state.routes == frozenset()


def test_foreign_routes_and_rules_are_not_read(nics_up: Topology) -> None:
    topo = nics_up
    nic0, _ = topo.nics
    topo.run(topo.host, ["ip", "addr", "add", "192.0.2.10/24", "dev", nic0])
    topo.run(topo.host, ["ip", "route", "add", "198.51.100.0/24", "dev", nic0, "table", "101"])
    topo.run(topo.host, ["ip", "rule", "add", "pref", "100", "from", "192.0.2.10", "lookup", "101"])
    (state,) = run_steps(topo, ("read", ()))
    assert state.routes == frozenset()
    assert state.rules == frozenset()


def test_rules_read_back(nics_up: Topology) -> None:
    topo = nics_up
    rules = [
        KRule(Family.INET, 100, ip_address("192.0.2.10"), 101),
        KRule(Family.INET, 200, ip_address("192.0.2.100"), 102),
        KRule(Family.INET6, 100, ip_address("2001:db8::10"), 101),
        # A table above 255 travels in FRA_TABLE only.
        KRule(Family.INET6, 200, ip_address("2001:db8::100"), 1000),
    ]
    executed, state = run_steps(topo, ("execute", [AddRule(r) for r in rules]), ("read", ()))
    assert executed[0] == "ok"
    assert state.rules == frozenset(rules)
    shown = ip_json(topo, "-6", "rule", "show")
    assert {"priority": 200, "src": "2001:db8::100", "table": "1000", "protocol": "73"}.items() <= next(
        r for r in shown if r.get("src") == "2001:db8::100"
    ).items()
    executed, state = run_steps(topo, ("execute", [DelRule(r) for r in rules]), ("read", ()))
    assert executed[0] == "ok"
    assert state.rules == frozenset()
    # The kernel's own rules survive.
    assert {r["priority"] for r in ip_json(topo, "-4", "rule", "show")} == {0, 32766, 32767}


def test_sysctls_set_and_read(topology: Topology) -> None:
    nic0, _ = topology.nics
    keys = [
        f"net/ipv4/conf/{nic0}/arp_ignore",
        "net/ipv4/ping_group_range",
        f"net/ipv6/conf/{nic0}/keep_addr_on_down",
        "net/ipv4/conf/no-such-nic/rp_filter",
    ]
    plan: list[Op] = [
        SetSysctl(keys[0], "1"),
        SetSysctl(keys[1], "0 2147483647"),
        SetSysctl(keys[2], "1"),
    ]
    before, executed, after = run_steps(topology, ("read", keys), ("execute", plan), ("read", keys))
    assert [k for k, _ in before.sysctls] == keys[:3]  # a missing key is left out
    assert before.sysctl(keys[0]) == "0"
    assert executed == ("ok", [0, 1, 2])
    assert after.sysctls == ((keys[0], "1"), (keys[1], "0 2147483647"), (keys[2], "1"))
    sysctl = topology.run(topology.host, ["cat", f"/proc/sys/{keys[0]}"]).stdout
    assert sysctl.strip() == "1"

    bad = SetSysctl(f"net/ipv4/conf/{nic0}/arp_ignore", "nonsense")
    (failed,) = run_steps(topology, ("execute", [bad]))
    assert failed[:3] == ("error", f"{command(bad)}: Invalid argument", errno.EINVAL)


def test_plan_then_inverse_restores_the_kernel(nics_up: Topology) -> None:
    topo = nics_up
    nic0, nic1 = topo.nics
    keys = [
        f"net/ipv4/conf/{nic0}/promote_secondaries",
        f"net/ipv4/conf/{nic1}/arp_ignore",
        f"net/ipv4/conf/{nic1}/rp_filter",
    ]
    test0, data = ip_address("192.0.2.10"), ip_address("192.0.2.100")
    plan: list[Op] = [
        SetSysctl(keys[0], "1"),
        SetSysctl(keys[1], "1"),
        SetSysctl(keys[2], "2"),
        SetLink(nic1, mtu=1400, noarp=True),
        AddAddress(addr("192.0.2.10/24", nic0, label=nic0, deprecated=True)),
        AddAddress(addr("192.0.2.100/24", nic0, label=f"{nic0}:1")),
        AddAddress(addr("192.0.2.11/24", nic1, label=nic1, deprecated=True)),
        AddAddress(addr("2001:db8::10/64", nic0, deprecated=True)),
        AddRoute(KRoute(Family.INET, 101, ip_network("192.0.2.0/24"), nic0, src=test0)),
        AddRoute(KRoute(Family.INET, 101, ip_network("0.0.0.0/0"), nic0, gateway=ip_address("192.0.2.1"))),
        AddRoute(KRoute(Family.INET, 254, ip_network("192.0.2.0/24"), nic0, src=data, metric=103)),
        AddRoute(KRoute(Family.INET6, 101, ip_network("2001:db8::/64"), nic0)),
        AddRule(KRule(Family.INET, 100, test0, 101)),
        AddRule(KRule(Family.INET, 200, data, 101)),
        AddRule(KRule(Family.INET6, 100, ip_address("2001:db8::10"), 101)),
    ]
    (before,) = run_steps(topo, ("settle", keys))
    undo = [inverse(op, before) for op in reversed(plan)]
    executed, during, undone, after = run_steps(
        topo, ("execute", plan), ("read", keys), ("execute", undo), ("read", keys)
    )
    assert executed[0] == "ok" and undone[0] == "ok"
    assert len(during.routes) == 4 and len(during.rules) == 3
    assert during.sysctls != before.sysctls
    assert managed(after) == managed(before)
    # The kernel's own link-local addresses were left alone.
    assert {a for a in before.addresses if a.kernel_owned} <= set(after.addresses)


def test_failing_op_names_it_and_keeps_earlier_ops(nics_up: Topology) -> None:
    topo = nics_up
    nic0, _ = topo.nics
    first = AddAddress(addr("192.0.2.10/24", nic0, label=nic0))
    # prefsrc must be a local address.
    elsewhere = ip_address("203.0.113.9")
    bad = AddRoute(KRoute(Family.INET, 101, ip_network("198.51.100.0/24"), nic0, src=elsewhere))
    never = AddAddress(addr("192.0.2.100/24", nic0, label=f"{nic0}:1"))
    failed, state = run_steps(topo, ("execute", [first, bad, never]), ("read", ()))
    what, message, code, op, done = failed
    assert what == "error"
    assert op == bad
    assert code == errno.EINVAL
    assert message.startswith(f"{command(bad)}: Invalid argument")
    assert done == [0]
    assert [a.address for a in state.addresses_of(nic0) if not a.kernel_owned] == [first.address.address]
    assert state.routes == frozenset()


def test_failing_op_on_missing_link(topology: Topology) -> None:
    nic0, _ = topology.nics
    first = SetLink(nic0, mtu=1400)
    bad = AddAddress(addr("192.0.2.10/24", "nosuchnic0", label="nosuchnic0"))
    failed, state = run_steps(topology, ("execute", [first, bad]), ("read", ()))
    what, message, code, op, done = failed
    assert (what, code, op, done) == ("error", errno.ENODEV, bad, [0])
    assert message.startswith(f"{command(bad)}: No such device")
    link = state.link(nic0)
    assert link is not None and link.mtu == 1400


def test_exists_is_an_error(topology: Topology) -> None:
    nic0, _ = topology.nics
    add = AddAddress(addr("192.0.2.10/24", nic0, label=nic0))
    (failed,) = run_steps(topology, ("execute", [add, add]))
    what, message, code, _, done = failed
    assert (what, code, done) == ("error", errno.EEXIST, [0])
    # With the kernel's extended ack reason, when it gives one.
    assert message.startswith(f"{command(add)}: File exists")
