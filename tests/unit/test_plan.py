"""The routing recipe (``desired.desired_kernel``) and the planner (``plan.diff``).

The recipe is linux-mapping.md "Working recipe": one table per NIC
(1000 + ifindex) with the NIC's subnets and default routes, a main-table
subnet route per NIC holding a data address (``src`` = that address, metric
100 + ifindex), rules ``from <address> lookup <table>`` at pref 100 for test
addresses and 200 for data addresses, ``noprefixroute`` on every address and
``preferred_lft 0`` on test addresses.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface, ip_address, ip_interface, ip_network
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipmp.admin.bootfiles import boot_config
from ipmp.apply import full_scope, make_plan, sysctl_keys
from ipmp.config.evaluate import evaluate
from ipmp.config.parse import parse_argv
from ipmp.host import hostfiles, lookups
from ipmp.linux.desired import desired_kernel
from ipmp.linux.ops import (
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelRoute,
    DelRule,
    Op,
    Plan,
    SetLink,
    SetSysctl,
    command,
)
from ipmp.linux.plan import diff
from ipmp.linux.view import RT_TABLE_MAIN, Scope, merge
from ipmp.model import (
    Config,
    Environment,
    Family,
    Interface,
    IPAddress,
    KAddress,
    KernelState,
    KRoute,
    KRule,
    Logical,
    default_broadcast,
)
from tests.fakes import FakeKernel, make_kernel, managed

INET = Family.INET
INET6 = Family.INET6
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hostname.files"
DEFAULT4 = ip_network("0.0.0.0/0")
DEFAULT6 = ip_network("::/0")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def boot_example(name: str) -> tuple[KernelState, Config, Environment, list[str]]:
    """Fresh kernel with the example's NICs, and the config its files describe."""
    root = EXAMPLES / name
    env = lookups.read_environment(root)
    files: dict[str, list[tuple[Family, Path]]] = {}
    for ifname, family, path in hostfiles.find_hostname_files(root):
        files.setdefault(ifname, []).append((family, path))
    names = sorted(files)
    kernel = make_kernel(*names)
    config = merge(kernel, ())
    for ifname in names:
        config = boot_config(config, ifname, files[ifname], env)
    return kernel, config, env, names


def scope_of(*names: str, families: tuple[Family, ...] = (INET, INET6)) -> Scope:
    return Scope(frozenset((n, f) for n in names for f in families))


def run(config: Config, *argv: str) -> Config:
    return evaluate(config, parse_argv(list(argv)), Environment()).config


def nic_sysctls4(name: str, *, grouped: bool = True) -> set[tuple[str, str]]:
    """The per-NIC IPv4 recipe; loose reverse-path filtering only for a member of a group."""
    return {
        (f"net/ipv4/conf/{name}/arp_ignore", "1"),
        (f"net/ipv4/conf/{name}/arp_announce", "2"),
        *([(f"net/ipv4/conf/{name}/rp_filter", "2")] if grouped else []),
        (f"net/ipv4/conf/{name}/promote_secondaries", "1"),
        (f"net/ipv4/conf/{name}/ignore_routes_with_linkdown", "1"),
    }


def a4(ifname: str, address: str, label: str, *, test: bool = False) -> KAddress:
    iface = IPv4Interface(address)
    return KAddress(ifname, iface, label=label, broadcast=default_broadcast(iface), deprecated=test)


def routes_for(dev: str, index: int, subnet: str, data: str | None, router: str | None) -> set[KRoute]:
    """The recipe for one NIC with one subnet, written out by hand."""
    net = ip_network(subnet)
    family = Family(net.version)
    table = 1000 + index
    default = DEFAULT4 if family is INET else DEFAULT6
    out = {KRoute(family, table, net, dev)}
    gw = ip_address(router) if router else None
    if gw is not None:
        out.add(KRoute(family, table, default, dev, gateway=gw))
    if data is not None:
        src = ip_address(data)
        out.add(KRoute(family, RT_TABLE_MAIN, net, dev, src=src, metric=100 + index))
        if gw is not None:
            out.add(KRoute(family, RT_TABLE_MAIN, default, dev, gateway=gw, src=src, metric=100 + index))
    return out


def rule(src: str, table: int, *, test: bool) -> KRule:
    addr = ip_address(src)
    return KRule(Family(addr.version), 100 if test else 200, addr, table)


# --------------------------------------------------------------------------
# desired_kernel for the examples
# --------------------------------------------------------------------------


def test_desired_kernel_active_active() -> None:
    kernel, config, env, names = boot_example("active-active")
    assert names == ["qfe0", "qfe1"]
    assert env.defaultrouters == (IPv4Address("192.0.2.1"),)
    want = desired_kernel(config, scope_of(*names), kernel, env.defaultrouters)
    assert [(lk.name, lk.index, lk.up) for lk in want.links] == [("qfe0", 2, True), ("qfe1", 3, True)]
    assert set(want.addresses) == {
        a4("qfe0", "192.0.2.100/24", "qfe0"),
        a4("qfe0", "192.0.2.10/24", "qfe0:1", test=True),
        a4("qfe1", "192.0.2.101/24", "qfe1"),
        a4("qfe1", "192.0.2.11/24", "qfe1:1", test=True),
    }
    assert all(a.noprefixroute for a in want.addresses)
    assert want.routes == {
        KRoute(INET, 1002, ip_network("192.0.2.0/24"), "qfe0"),
        KRoute(INET, 1002, DEFAULT4, "qfe0", gateway=IPv4Address("192.0.2.1")),
        KRoute(INET, 254, ip_network("192.0.2.0/24"), "qfe0", src=IPv4Address("192.0.2.100"), metric=102),
        KRoute(INET, 254, DEFAULT4, "qfe0", gateway=IPv4Address("192.0.2.1"), src=IPv4Address("192.0.2.100"),
               metric=102),
        KRoute(INET, 1003, ip_network("192.0.2.0/24"), "qfe1"),
        KRoute(INET, 1003, DEFAULT4, "qfe1", gateway=IPv4Address("192.0.2.1")),
        KRoute(INET, 254, ip_network("192.0.2.0/24"), "qfe1", src=IPv4Address("192.0.2.101"), metric=103),
        KRoute(INET, 254, DEFAULT4, "qfe1", gateway=IPv4Address("192.0.2.1"), src=IPv4Address("192.0.2.101"),
               metric=103),
    }
    assert want.rules == {
        KRule(INET, 100, IPv4Address("192.0.2.10"), 1002),
        KRule(INET, 200, IPv4Address("192.0.2.100"), 1002),
        KRule(INET, 100, IPv4Address("192.0.2.11"), 1003),
        KRule(INET, 200, IPv4Address("192.0.2.101"), 1003),
    }
    # Per NIC only: conf/all is the host's, and the NIC's value is enough.
    assert set(want.sysctls) == nic_sysctls4("qfe0") | nic_sysctls4("qfe1")
    assert not [k for k, _ in want.sysctls if "/conf/all/" in k or "/conf/default/" in k]


#: example -> NIC -> (data addresses, test addresses), as (address/len, label).
EXPECTED: dict[str, dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]] = {
    "active-active": {
        "qfe0": ([("192.0.2.100/24", "qfe0")], [("192.0.2.10/24", "qfe0:1")]),
        "qfe1": ([("192.0.2.101/24", "qfe1")], [("192.0.2.11/24", "qfe1:1")]),
    },
    "active-standby": {
        "qfe0": ([("192.0.2.100/24", "qfe0")], [("192.0.2.10/24", "qfe0:1")]),
        "qfe1": ([], [("192.0.2.11/24", "qfe1")]),
    },
    "link-only": {
        "bge0": ([("192.0.2.100/24", "bge0")], []),
        "bge1": ([("192.0.2.101/24", "bge1")], []),
    },
    "single-line": {
        "hme0": ([("192.0.2.100/24", "hme0")], []),
    },
    "test-on-unit0": {
        "ce0": ([("192.0.2.100/24", "ce0:1")], [("192.0.2.10/24", "ce0")]),
        "ce1": ([], [("192.0.2.11/24", "ce1")]),
    },
}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_desired_kernel_follows_the_recipe(example: str) -> None:
    kernel, config, env, names = boot_example(example)
    assert names == sorted(EXPECTED[example])
    want = desired_kernel(config, scope_of(*names), kernel, env.defaultrouters)
    addresses: set[KAddress] = set()
    routes: set[KRoute] = set()
    rules: set[KRule] = set()
    sysctls: set[tuple[str, str]] = set()
    for name, (data, test) in EXPECTED[example].items():
        link = kernel.link(name)
        assert link is not None
        table = 1000 + link.index
        addresses |= {a4(name, a, label) for a, label in data}
        addresses |= {a4(name, a, label, test=True) for a, label in test}
        first_data = data[0][0].split("/")[0] if data else None
        routes |= routes_for(name, link.index, "192.0.2.0/24", first_data, "192.0.2.1")
        rules |= {rule(a.split("/")[0], table, test=False) for a, _ in data}
        rules |= {rule(a.split("/")[0], table, test=True) for a, _ in test}
        sysctls |= nic_sysctls4(name, grouped=example != "single-line")
    assert set(want.addresses) == addresses
    assert want.routes == routes
    assert want.rules == rules
    assert set(want.sysctls) == sysctls
    assert all(lk.up for lk in want.links)


def test_desired_kernel_ipv6_recipe() -> None:
    kernel = make_kernel("qfe0", "qfe1")
    config = merge(kernel, ())
    config = run(config, "qfe0", "inet6", "plumb")
    config = run(config, "qfe0", "inet6", "addif", "2001:db8::100/64", "up")
    config = run(config, "qfe0", "inet6", "addif", "2001:db8::10/64", "-failover", "up")
    routers = (ip_address("2001:db8::1"), ip_address("192.0.2.1"))
    want = desired_kernel(config, scope_of("qfe0"), kernel, routers)
    assert set(want.addresses) == {
        KAddress("qfe0", IPv6Interface("2001:db8::100/64")),
        KAddress("qfe0", IPv6Interface("2001:db8::10/64"), deprecated=True),
    }
    assert want.routes == routes_for("qfe0", 2, "2001:db8::/64", "2001:db8::100", "2001:db8::1")
    assert want.rules == {rule("2001:db8::100", 1002, test=False), rule("2001:db8::10", 1002, test=True)}
    assert set(want.sysctls) == {
        ("net/ipv6/conf/qfe0/keep_addr_on_down", "1"),
        ("net/ipv6/conf/qfe0/ignore_routes_with_linkdown", "1"),
    }


def test_down_logicals_and_down_links_have_no_kernel_presence() -> None:
    kernel = make_kernel("qfe0")
    config = run(merge(kernel, ()), "qfe0", "plumb")
    config = run(config, "qfe0", "192.0.2.100", "up", "addif", "192.0.2.10", "-failover")  # qfe0:1 down
    want = desired_kernel(config, scope_of("qfe0"), kernel, (ip_address("192.0.2.1"),))
    assert [str(a.address) for a in want.addresses] == ["192.0.2.100/24"]
    assert want.rules == {rule("192.0.2.100", 1002, test=False)}
    linkdown = config.with_interface(replace(config.interfaces[1], link_up=False))
    down = desired_kernel(linkdown, scope_of("qfe0"), kernel, (ip_address("192.0.2.1"),))
    assert down.routes == frozenset() and down.rules == frozenset()
    assert [lk.up for lk in down.links] == [False]


def test_two_default_routers_in_one_subnet_get_distinct_metrics() -> None:
    """The kernel refuses two routes with equal table, destination and metric."""
    kernel, config, _, names = boot_example("active-active")
    routers = (ip_address("192.0.2.1"), ip_address("192.0.2.2"))
    want = desired_kernel(config, scope_of(*names), kernel, routers)
    keys = [(r.family, r.table, r.dst, r.metric) for r in want.routes]
    assert len(keys) == len(set(keys))
    defaults = sorted((r.table, r.metric, str(r.gateway)) for r in want.routes if r.dst.prefixlen == 0)
    assert [(m, gw) for table, m, gw in defaults if table == 1002] == [(0, "192.0.2.1"), (65536, "192.0.2.2")]
    fake = FakeKernel(kernel)
    fake.run(diff(kernel, want, scope_of(*names)))
    assert make_plan(fake.state(sysctl_keys(names)), config, scope_of(*names), routers) == ()


def test_overlapping_subnets_sharing_a_router_converge() -> None:
    kernel = make_kernel("qfe0")
    config = run(merge(kernel, ()), "qfe0", "plumb")
    config = run(config, "qfe0", "192.0.2.100/24", "up", "addif", "192.0.2.20/26", "up")
    routers = (ip_address("192.0.2.1"),)
    fake = FakeKernel(kernel)
    fake.run(make_plan(kernel, config, scope_of("qfe0"), routers))
    assert make_plan(fake.state(sysctl_keys(["qfe0"])), config, scope_of("qfe0"), routers) == ()


# --------------------------------------------------------------------------
# plan.diff: the ordering rule
# --------------------------------------------------------------------------


def test_boot_plan_of_the_single_line_example_as_ip_commands() -> None:
    kernel, config, env, names = boot_example("single-line")
    plan = make_plan(kernel, config, scope_of(*names), env.defaultrouters)
    lines = [command(op) for op in plan]
    sysctl_lines = [x for x in lines if x.startswith("sysctl")]
    assert lines[: len(sysctl_lines)] == sysctl_lines
    # hme0 is in no group: the recipe's IPv4 sysctls but rp_filter, and nothing host-wide.
    assert sysctl_lines == [
        "sysctl -w net.ipv4.conf.hme0.arp_ignore=1",
        "sysctl -w net.ipv4.conf.hme0.arp_announce=2",
        "sysctl -w net.ipv4.conf.hme0.promote_secondaries=1",
        "sysctl -w net.ipv4.conf.hme0.ignore_routes_with_linkdown=1",
    ]
    assert lines[len(sysctl_lines):] == [
        "ip link set dev hme0 up",
        "ip -4 addr add 192.0.2.100/24 broadcast 192.0.2.255 dev hme0 label hme0 noprefixroute",
        "ip -4 rule add pref 200 from 192.0.2.100 lookup 1002 proto 73",
        "ip -4 route add 192.0.2.0/24 dev hme0 src 192.0.2.100 proto 73 metric 102",
        "ip -4 route add 192.0.2.0/24 dev hme0 table 1002 proto 73",
        "ip -4 route add default via 192.0.2.1 dev hme0 src 192.0.2.100 proto 73 metric 102",
        "ip -4 route add default via 192.0.2.1 dev hme0 table 1002 proto 73",
    ]


def category(op: Op) -> int:
    """The position of an op's kind in the ordering rule of plan.py."""
    match op:
        case SetSysctl(key=key, value="0") if key.endswith("/promote_secondaries"):
            return 8
        case SetSysctl():
            return 0
        case SetLink(up=False):
            return 9
        case SetLink():
            return 1
        case DelRoute():
            return 2
        case DelAddress():
            return 3
        case AddAddress():
            return 4
        case DelRule():
            return 5
        case AddRule():
            return 6
        case AddRoute():
            return 7
    raise AssertionError(op)


def unit_of(a: KAddress) -> tuple[str, int, int]:
    tail = a.label.rpartition(":")[2] if ":" in a.label else "0"
    return (a.ifname, int(a.family), int(tail))


def check_ordering(plan: Plan) -> None:
    kinds = [category(op) for op in plan]
    assert kinds == sorted(kinds), [command(op) for op in plan]
    dels = [unit_of(op.address) for op in plan if isinstance(op, DelAddress)]
    adds = [unit_of(op.address) for op in plan if isinstance(op, AddAddress)]
    assert adds == sorted(adds)
    assert dels == sorted(dels, reverse=True)
    for family in (INET, INET6):
        added = [op.route.dst.prefixlen for op in plan
                 if isinstance(op, AddRoute) and op.route.family is family]
        removed = [op.route.dst.prefixlen for op in plan
                   if isinstance(op, DelRoute) and op.route.family is family]
        assert added == sorted(added, reverse=True)  # subnet routes before default routes
        assert removed == sorted(removed)  # default routes go first


def test_diff_orders_every_kind_of_change() -> None:
    names = ["qfe0", "qfe1", "qfe2", "qfe3"]
    kernel = make_kernel(*names)
    routers = (ip_address("192.0.2.1"),)
    before = merge(kernel, ())
    for name, data, test in (("qfe0", "192.0.2.100", "192.0.2.10"), ("qfe1", "192.0.2.101", "192.0.2.11"),
                             ("qfe2", "192.0.2.102", "192.0.2.12")):
        before = run(before, name, "plumb")
        before = run(before, name, data, "up", "addif", test, "deprecated", "-failover", "up")
    before = run(before, "qfe1", "inet6", "plumb")
    before = run(before, "qfe1", "inet6", "addif", "2001:db8::101/64", "up")
    scope = scope_of(*names)
    fake = FakeKernel(kernel)
    fake.run(make_plan(kernel, before, scope, routers))
    current = fake.state(sysctl_keys(names))
    after = run(before, "qfe0", "removeif", "192.0.2.10")  # a test address goes (rule, route-less)
    after = run(after, "qfe0", "192.0.2.110")  # the data address changes: routes and rule follow
    after = run(after, "qfe0", "addif", "192.0.2.111", "up", "addif", "192.0.2.112", "up")
    after = run(after, "qfe2", "unplumb")  # link down, last
    after = run(after, "qfe3", "plumb")
    after = run(after, "qfe3", "192.0.2.103", "up")  # new link up, new sysctls
    after = run(after, "qfe1", "inet6", "removeif", "2001:db8::101")  # IPv6 routes go explicitly
    plan = make_plan(current, after, scope, routers)
    # Every kind but promote_secondaries turned off, which only a revert does
    # (test_a_revert_deletes_the_addresses_before_promote_secondaries_goes_off).
    assert {category(op) for op in plan} == set(range(10)) - {8}
    check_ordering(plan)
    assert plan[-1] == SetLink("qfe2", up=False)
    fake.run(plan)
    assert make_plan(fake.state(sysctl_keys(names)), after, scope, routers) == ()


def test_a_revert_deletes_the_addresses_before_promote_secondaries_goes_off() -> None:
    """Found by test_plans_converge_respect_scope_and_revert: an address put back
    by a revert lands after one that stayed, so the kernel's primary of the
    subnet is not unit 0.  The revert to the fresh kernel turned
    promote_secondaries off first, and deleting that primary took the others
    with it: the next delete failed with EADDRNOTAVAIL."""
    kernel = make_kernel("qfe0")
    scope = scope_of("qfe0", families=(INET,))
    keys = sysctl_keys(["qfe0"])
    first = run(merge(kernel, ()), "qfe0", "plumb")
    first = run(first, "qfe0", "192.0.2.10/24", "up")
    for address in ("192.0.2.11/24", "192.0.2.12/24", "192.0.2.20/24"):
        first = run(first, "qfe0", "addif", address, "up")
    second = run(first, "qfe0", "down")
    for address in ("192.0.2.12", "192.0.2.20"):
        second = run(second, "qfe0", "removeif", address)
    fake = FakeKernel(kernel)
    fresh = fake.state(keys)
    fake.run(make_plan(fresh, first, scope, ()))
    one = fake.state(keys)
    fake.run(make_plan(one, second, scope, ()))
    fake.run(diff(fake.state(keys), one, scope))  # 192.0.2.11 is the primary now
    primary = next(a.address.ip for a in fake.state(keys).addresses if a.ifname == "qfe0")
    assert primary == ip_address("192.0.2.11")

    back = diff(fake.state(keys), fresh, scope)
    fake.run(back)

    assert managed(fake.state(keys)) == managed(fresh)
    check_ordering(back)


def test_diff_of_equal_states_is_empty_for_every_example() -> None:
    for example in EXPECTED:
        kernel, config, env, names = boot_example(example)
        want = desired_kernel(config, scope_of(*names), kernel, env.defaultrouters)
        assert diff(want, want, scope_of(*names)) == ()


# --------------------------------------------------------------------------
# plan.diff: scope
# --------------------------------------------------------------------------


def configured_pair() -> tuple[FakeKernel, Config, tuple[IPAddress, ...]]:
    """qfe0 and qfe1 with IPv4 and IPv6 data and test addresses, applied on a fake kernel."""
    names = ["qfe0", "qfe1"]
    kernel = make_kernel(*names)
    config = merge(kernel, ())
    for i, name in enumerate(names):
        config = run(config, name, "plumb")
        config = run(config, name, f"192.0.2.{100 + i}", "group", "prod", "up",
                     "addif", f"192.0.2.{10 + i}", "deprecated", "-failover", "up")
        config = run(config, name, "inet6", "plumb")
        config = run(config, name, "inet6", "addif", f"2001:db8::{100 + i}/64", "up",
                     "addif", f"2001:db8::{10 + i}/64", "-failover", "up")
    routers = (ip_address("192.0.2.1"), ip_address("2001:db8::1"))
    fake = FakeKernel(kernel)
    fake.run(make_plan(kernel, config, scope_of(*names), routers))
    return fake, config, routers


def op_pairs(op: Op) -> set[tuple[str, Family]]:
    match op:
        case AddAddress(address=a) | DelAddress(address=a):
            return {(a.ifname, a.family)}
        case AddRoute(route=r) | DelRoute(route=r):
            return {(r.dev, r.family)}
        case SetLink(name=name):
            return {(name, INET), (name, INET6)}
    return set()


def test_diff_never_touches_what_is_outside_its_scope() -> None:
    fake, config, routers = configured_pair()
    current = fake.state(sysctl_keys(["qfe0", "qfe1"]))
    # Take qfe0's IPv4 down entirely, asking only about (qfe0, inet).
    gone = run(config, "qfe0", "down")
    gone = run(gone, "qfe0", "removeif", "192.0.2.10")
    scope = Scope(frozenset({("qfe0", INET)}))
    plan = make_plan(current, gone, scope, routers)
    assert plan
    for op in plan:
        if isinstance(op, SetLink):
            assert op.name == "qfe0"
        elif isinstance(op, (AddRule, DelRule)):
            assert op.rule.family is INET and op.rule.table == 1002
        elif isinstance(op, SetSysctl):
            assert "qfe1" not in op.key and "ipv6/conf/qfe0" not in op.key
        else:
            assert op_pairs(op) == {("qfe0", INET)}, command(op)
    fake.run(plan)
    now = fake.state()
    v6_rules = {r for r in current.rules if r.family is INET6}
    assert v6_rules and v6_rules <= now.rules
    qfe1_now = {a for a in now.addresses if a.ifname == "qfe1"}
    assert qfe1_now == {a for a in current.addresses if a.ifname == "qfe1"}
    assert {r for r in now.routes if r.dev == "qfe1" or r.family is INET6} == {
        r for r in current.routes if r.dev == "qfe1" or r.family is INET6
    }


def test_an_ipv4_only_command_keeps_the_ipv6_rules() -> None:
    fake, config, routers = configured_pair()
    current = fake.state(sysctl_keys(["qfe0", "qfe1"]))
    changed = run(config, "qfe0", "addif", "192.0.2.20", "up")
    plan = make_plan(current, changed, Scope(frozenset({("qfe0", INET)})), routers)
    assert not any(isinstance(op, DelRule) for op in plan), [command(op) for op in plan]


# --------------------------------------------------------------------------
# Routes the kernel deletes by itself
# --------------------------------------------------------------------------


def test_routes_whose_src_goes_are_deleted_and_added_again() -> None:
    fake, config, routers = configured_pair()
    current = fake.state(sysctl_keys(["qfe0", "qfe1"]))
    # A new broadcast means a new kernel address: delete, then add.
    changed = run(config, "qfe0", "broadcast", "192.0.2.127")
    scope = scope_of("qfe0")
    plan = make_plan(current, changed, scope, routers)
    main = {r for r in current.routes if r.table == RT_TABLE_MAIN and r.src == IPv4Address("192.0.2.100")}
    assert len(main) == 2
    dropped = [op.route for op in plan if isinstance(op, DelRoute)]
    readded = [op.route for op in plan if isinstance(op, AddRoute)]
    # The kernel drops them with their address (no explicit delete); they come back.
    assert not dropped and set(readded) == main
    check_ordering(plan)
    fake.run(plan)
    assert make_plan(fake.state(sysctl_keys(["qfe0", "qfe1"])), changed, scope, routers) == ()


@pytest.mark.parametrize(
    "argv",
    [
        ["qfe0", "192.0.2.110"],  # another address
        ["qfe0", "broadcast", "192.0.2.127"],  # same address, new attributes
        ["qfe0", "deprecated"],
    ],
    ids=["new-address", "new-broadcast", "deprecated"],
)
def test_replacing_the_only_ipv4_address_of_a_link_keeps_its_routes(argv: list[str]) -> None:
    """The kernel deletes every IPv4 route of a link whose last IPv4 address goes."""
    kernel = make_kernel("qfe0")
    config = run(merge(kernel, ()), "qfe0", "plumb")
    config = run(config, "qfe0", "192.0.2.100", "group", "prod", "up")
    routers = (ip_address("192.0.2.1"),)
    scope = scope_of("qfe0")
    fake = FakeKernel(kernel)
    fake.run(make_plan(kernel, config, scope, routers))
    current = fake.state(sysctl_keys(["qfe0"]))
    assert any(r.table == 1002 for r in current.routes)
    changed = run(config, *argv)
    fake.run(make_plan(current, changed, scope, routers))
    after = fake.state(sysctl_keys(["qfe0"]))
    assert make_plan(after, changed, scope, routers) == ()
    assert {r.table for r in after.routes} == {1002, RT_TABLE_MAIN}


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

NICS = ("qfe0", "qfe1", "qfe2", "qfe3")
POOL: tuple[str, ...] = (
    *(f"192.0.2.{h}" for h in (10, 11, 12, 20, 70, 100, 101, 130, 200)),
    *(f"198.51.100.{h}" for h in (10, 11, 100, 140)),
    *(f"2001:db8::{h}" for h in ("10", "11", "100", "101", "a:1")),
)
PREFIXES = {4: (24, 25, 26), 6: (64, 64, 120)}
ROUTERS: tuple[IPAddress, ...] = tuple(
    ip_address(a) for a in ("192.0.2.1", "192.0.2.2", "198.51.100.1", "2001:db8::1", "2001:db8::2")
)
LOGICAL = st.tuples(
    st.integers(0, 3),  # which NIC
    st.sampled_from(POOL),
    st.integers(0, 2),  # prefix choice
    st.booleans(),  # up
    st.booleans(),  # deprecated
    st.booleans(),  # -failover
)


@st.composite
def configs(draw: st.DrawFn, kernel: KernelState, count: int) -> Config:
    """A Solaris view of ``count`` NICs with 0-4 logicals each and random flags."""
    specs = draw(st.lists(LOGICAL, max_size=4 * count, unique_by=lambda t: t[1]))
    base = merge(kernel, ())
    interfaces: list[Interface] = [i for i in base.interfaces if i.loopback]
    for n, name in enumerate(NICS[:count]):
        link = kernel.link(name)
        assert link is not None
        mine = [s for s in specs if s[0] % count == n][:4]
        logicals: list[Logical] = []
        next_unit = {INET: draw(st.integers(0, 1)), INET6: draw(st.integers(0, 1))}
        for _, text, prefix_choice, up, deprecated, nofailover in mine:
            ip = ip_address(text)
            family = Family(ip.version)
            address = ip_interface(f"{ip}/{PREFIXES[ip.version][prefix_choice]}")
            broadcast = default_broadcast(address) if isinstance(address, IPv4Interface) else None
            unit = next_unit[family]
            next_unit[family] = unit + 1 + draw(st.integers(0, 1))
            logicals.append(Logical(family, unit, address, up=up, broadcast=broadcast,
                                    deprecated=deprecated, nofailover=nofailover))
        plumbed = {lg.family for lg in logicals} | set(draw(st.sets(st.sampled_from([INET, INET6]))))
        interfaces.append(Interface(
            name=name,
            index=link.index,
            plumbed=frozenset(plumbed),
            link_up=draw(st.booleans()),
            mtu=draw(st.sampled_from([1500, 9000])),
            mac=draw(st.sampled_from([link.mac, f"02:00:00:00:aa:{link.index:02x}"])),
            noarp=draw(st.booleans()),
            group=draw(st.sampled_from(["", "prod"])),
            standby=draw(st.booleans()),
            logicals=tuple(logicals),
        ))
    return Config(tuple(interfaces))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[KernelState, Scope, tuple[IPAddress, ...], Config, Config]:
    count = draw(st.integers(1, 4))
    kernel = make_kernel(*NICS[:count], up=draw(st.booleans()))
    pairs = [(n, f) for n in NICS[:count] for f in (INET, INET6)]
    scope = Scope(frozenset(draw(st.sets(st.sampled_from(pairs), min_size=1))))
    routers = tuple(draw(st.lists(st.sampled_from(ROUTERS), unique=True, max_size=3)))
    return kernel, scope, routers, draw(configs(kernel, count)), draw(configs(kernel, count))


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(worlds())
def test_diff_of_a_desired_state_with_itself_is_empty(
    world: tuple[KernelState, Scope, tuple[IPAddress, ...], Config, Config],
) -> None:
    kernel, scope, routers, config, _ = world
    want = desired_kernel(config, scope, kernel, routers)
    assert diff(want, want, scope) == ()


@PROPERTY
@given(worlds())
def test_plans_converge_respect_scope_and_revert(
    world: tuple[KernelState, Scope, tuple[IPAddress, ...], Config, Config],
) -> None:
    kernel, scope, routers, first, second = world
    names = sorted({i.name for i in first.interfaces if not i.loopback})
    keys = sysctl_keys(names)
    fake = FakeKernel(kernel)
    fresh = fake.state(keys)

    plan = make_plan(fresh, first, scope, routers)
    check_ordering(plan)
    for op in plan:
        assert op_pairs(op) <= {(n, f) for n, _ in scope.pairs for f in (INET, INET6)}
        assert all(scope.covers(*p) for p in op_pairs(op)) or isinstance(op, SetLink)
    fake.run(plan)
    one = fake.state(keys)
    assert make_plan(one, first, scope, routers) == ()

    plan = make_plan(one, second, scope, routers)
    check_ordering(plan)
    fake.run(plan)
    two = fake.state(keys)
    assert make_plan(two, second, scope, routers) == ()
    def outside(state: KernelState) -> set[KAddress]:
        return {a for a in state.addresses if not a.kernel_owned and not scope.covers(a.ifname, a.family)}

    assert outside(two) == outside(one) == outside(fresh)

    # The revert of the second plan brings the first state back ...
    fake.run(diff(two, one, scope))
    assert managed(fake.state(keys)) == managed(one)
    assert diff(fake.state(keys), one, scope) == ()
    # ... and the revert of the first, the fresh kernel.
    fake.run(diff(fake.state(keys), fresh, scope))
    assert managed(fake.state(keys)) == managed(fresh)


def test_full_scope_names_both_families() -> None:
    kernel, config, _, names = boot_example("active-active")
    assert full_scope(config, [*names, "nosuch0"]).pairs == frozenset(
        (n, f) for n in names for f in (INET, INET6)
    )
    del kernel
