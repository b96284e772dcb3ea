"""The fake kernel keeps the Linux rules the planner depends on (see tests/fakes.py).

These pin the fake to the behaviour measured on a real kernel, so that a
planner test passing on the fake means something.
"""

from __future__ import annotations

import asyncio
import errno
from ipaddress import IPv4Address, IPv6Address, IPv6Interface

import pytest

from ipmp.errors import ApplyError
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
)
from ipmp.model import Family, KRule
from tests.fakes import FakeKernel, kaddr, kroute, link_local_of, mac_of, make_kernel

GW = IPv4Address("192.0.2.1")
DATA = IPv4Address("192.0.2.100")


def configured(*extra: Op) -> FakeKernel:
    """qfe0 up with a test and a data address, the recipe's routes; promote_secondaries on."""
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"))
    kernel.run([
        SetSysctl("net/ipv4/conf/all/promote_secondaries", "1"),
        SetLink("qfe0", up=True),
        SetLink("qfe1", up=True),
        AddAddress(kaddr("qfe0", "192.0.2.10/24", "qfe0", deprecated=True)),
        AddAddress(kaddr("qfe0", "192.0.2.100/24", "qfe0:1")),
        AddRoute(kroute("qfe0", "192.0.2.0/24", table=1002)),
        AddRoute(kroute("qfe0", "192.0.2.0/24", src=DATA, metric=102)),
        AddRoute(kroute("qfe0", "0.0.0.0/0", table=1002, gateway=GW)),
        AddRoute(kroute("qfe0", "0.0.0.0/0", gateway=GW, src=DATA, metric=102)),
        *extra,
    ])
    return kernel


def failure(kernel: FakeKernel, op: Op) -> int:
    with pytest.raises(ApplyError) as info:
        kernel.run([op])
    assert info.value.op == op
    return info.value.errno_


def test_builder_names_indexes_and_macs_deterministically() -> None:
    state = make_kernel("qfe0", "qfe1", up=True)
    assert [(lk.name, lk.index, lk.mac, lk.up) for lk in state.links] == [
        ("lo", 1, "00:00:00:00:00:00", True),
        ("qfe0", 2, "02:00:00:00:00:02", True),
        ("qfe1", 3, "02:00:00:00:00:03", True),
    ]
    assert mac_of(258) == "02:00:00:00:01:02"
    assert link_local_of("02:00:00:00:00:02") == IPv6Interface("fe80::ff:fe00:2/64")
    owned = [a for a in state.addresses if a.kernel_owned]
    assert [(a.ifname, str(a.address)) for a in owned] == [
        ("qfe0", "fe80::ff:fe00:2/64"), ("qfe1", "fe80::ff:fe00:3/64")
    ]
    assert make_kernel("qfe0", loopback=False).links[0].name == "qfe0"


def test_reads_keep_the_kernel_order_and_only_known_sysctls() -> None:
    kernel = configured()
    state = asyncio.run(kernel.read(["net/ipv4/conf/qfe0/rp_filter", "net/ipv4/conf/nosuch/rp_filter",
                                     "net/ipv4/conf/all/promote_secondaries"]))
    assert state.sysctls == (
        ("net/ipv4/conf/qfe0/rp_filter", "0"),
        ("net/ipv4/conf/all/promote_secondaries", "1"),
    )
    qfe0 = [(str(a.address), a.label) for a in state.addresses if a.ifname == "qfe0"]
    assert qfe0[:2] == [("192.0.2.10/24", "qfe0"), ("192.0.2.100/24", "qfe0:1")]
    assert kernel.reads == 1


def test_deleting_an_ipv4_address_deletes_the_routes_using_it_as_source() -> None:
    kernel = configured()
    kernel.run([DelAddress(kaddr("qfe0", "192.0.2.100/24"))])
    assert kernel.state().routes == {
        kroute("qfe0", "192.0.2.0/24", table=1002),
        kroute("qfe0", "0.0.0.0/0", table=1002, gateway=GW),
    }


def test_deleting_the_last_ipv4_address_flushes_the_links_ipv4_routes() -> None:
    kernel = configured(
        AddAddress(kaddr("qfe0", "2001:db8::10/64")),
        AddRoute(kroute("qfe0", "2001:db8::/64", table=1002)),
    )
    kernel.run([DelAddress(kaddr("qfe0", "192.0.2.100/24")), DelAddress(kaddr("qfe0", "192.0.2.10/24"))])
    assert kernel.state().routes == {kroute("qfe0", "2001:db8::/64", table=1002)}


def test_ipv6_keeps_a_route_whose_source_goes_without_the_source() -> None:
    src = IPv6Address("2001:db8::100")
    kernel = configured(
        AddAddress(kaddr("qfe0", "2001:db8::100/64")),
        AddRoute(kroute("qfe0", "2001:db8::/64", src=src, metric=102)),
    )
    kernel.run([DelAddress(kaddr("qfe0", "2001:db8::100/64"))])
    assert kroute("qfe0", "2001:db8::/64", metric=102) in kernel.state().routes
    kernel.run([DelRoute(kroute("qfe0", "2001:db8::/64", src=src, metric=102))])  # delete ignores src
    assert not any(r.family is Family.INET6 for r in kernel.state().routes)


def test_promote_secondaries_decides_what_a_primary_takes_along() -> None:
    on = configured()
    on.run([DelAddress(kaddr("qfe0", "192.0.2.10/24", "qfe0", deprecated=True))])
    assert [str(a.address) for a in on.state().addresses if a.ifname == "qfe0" and not a.kernel_owned] == [
        "192.0.2.100/24"
    ]
    off = FakeKernel(make_kernel("qfe0", up=True))
    off.run([AddAddress(kaddr("qfe0", "192.0.2.10/24")), AddAddress(kaddr("qfe0", "192.0.2.100/24")),
             AddAddress(kaddr("qfe0", "192.0.2.20/25"))])
    off.run([DelAddress(kaddr("qfe0", "192.0.2.10/24"))])
    left = [str(a.address) for a in off.state().addresses if a.ifname == "qfe0" and not a.kernel_owned]
    assert left == ["192.0.2.20/25"]


def test_admin_down_flushes_routes_and_ipv6_unless_kept() -> None:
    kernel = configured(AddAddress(kaddr("qfe0", "2001:db8::10/64")))
    kernel.run([SetLink("qfe0", up=False)])
    state = kernel.state()
    assert state.routes == frozenset()
    left = [str(a.address) for a in state.addresses if a.ifname == "qfe0"]
    assert left == ["192.0.2.10/24", "192.0.2.100/24"]
    kept = configured(SetSysctl("net/ipv6/conf/qfe0/keep_addr_on_down", "1"),
                      AddAddress(kaddr("qfe0", "2001:db8::10/64")))
    kept.run([SetLink("qfe0", up=False)])
    assert "2001:db8::10/64" in {str(a.address) for a in kept.state().addresses}
    assert not any(a.kernel_owned for a in kept.state().addresses if a.ifname == "qfe0")
    kept.run([SetLink("qfe0", up=True)])
    assert link_local_of(mac_of(2)) in {a.address for a in kept.state().addresses if a.kernel_owned}


def test_route_preconditions() -> None:
    kernel = configured()
    assert failure(kernel, AddRoute(kroute("qfe0", "198.51.100.0/24", src=IPv4Address("198.51.100.9")))) == (
        errno.EINVAL
    )
    far4 = kroute("qfe0", "0.0.0.0/0", table=1003, gateway=IPv4Address("198.51.100.1"))
    assert failure(kernel, AddRoute(far4)) == errno.ENETUNREACH
    far6 = kroute("qfe0", "::/0", table=1002, gateway=IPv6Address("2001:db8::1"))
    assert failure(kernel, AddRoute(far6)) == errno.EHOSTUNREACH
    # Same table, destination and metric through another link or gateway: EEXIST.
    assert failure(kernel, AddRoute(kroute("qfe1", "192.0.2.0/24", table=1002))) == errno.EEXIST
    kernel.run([SetLink("qfe1", up=False)])
    assert failure(kernel, AddRoute(kroute("qfe1", "198.51.100.0/24", table=1003))) == errno.ENETDOWN
    assert failure(kernel, AddRoute(kroute("qfe9", "198.51.100.0/24"))) == errno.ENODEV


def test_add_existing_and_delete_missing() -> None:
    kernel = configured(AddRule(KRule(Family.INET, 200, DATA, 1002)))
    assert failure(kernel, AddAddress(kaddr("qfe0", "192.0.2.100/24", "qfe0:2"))) == errno.EEXIST
    kernel.run([AddAddress(kaddr("qfe1", "2001:db8::1/64"))])
    assert failure(kernel, AddAddress(kaddr("qfe1", "2001:db8::1/120"))) == errno.EEXIST  # IPv6: any prefix
    assert failure(kernel, DelAddress(kaddr("qfe0", "192.0.2.77/24"))) == errno.EADDRNOTAVAIL
    assert failure(kernel, AddRoute(kroute("qfe0", "192.0.2.0/24", table=1002))) == errno.EEXIST
    assert failure(kernel, DelRoute(kroute("qfe0", "192.0.2.0/24", table=1009))) == errno.ESRCH
    assert failure(kernel, AddRule(KRule(Family.INET, 200, DATA, 1002))) == errno.EEXIST
    assert failure(kernel, DelRule(KRule(Family.INET, 100, DATA, 1002))) == errno.ENOENT
    assert failure(kernel, SetSysctl("net/ipv4/conf/nosuch/rp_filter", "1")) == errno.ENOENT
    assert failure(kernel, AddAddress(kaddr("qfe1", "192.0.2.50/24", "qfe1:12345678901"))) == errno.ERANGE


def test_fail_at_counts_every_op_since_creation_or_reset() -> None:
    kernel = FakeKernel(make_kernel("qfe0"), fail_at=2)
    ops: list[Op] = [SetSysctl("net/ipv4/conf/all/rp_filter", "2"), SetLink("qfe0", up=True)]
    kernel.run(ops)
    with pytest.raises(ApplyError) as info:
        kernel.run([SetLink("qfe0", mtu=9000), SetLink("qfe0", mtu=1400)])
    assert info.value.op == SetLink("qfe0", mtu=9000)
    assert info.value.errno_ == errno.EIO
    assert kernel.attempts == 3
    assert kernel.executed == ops
    kernel.run([SetLink("qfe0", mtu=9000)])  # index 3: fine
    kernel.reset(fail_at=0)
    assert kernel.executed == []
    with pytest.raises(ApplyError):
        kernel.run([SetLink("qfe0", mtu=1500)])
    assert kernel.state().links[1].mtu == 9000


def test_ipv6_all_sysctls_that_propagate_to_every_link() -> None:
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"))
    keys = [f"net/ipv6/conf/{n}/{k}" for n in ("qfe0", "qfe1")
            for k in ("ignore_routes_with_linkdown", "keep_addr_on_down")]
    kernel.run([SetSysctl("net/ipv6/conf/all/ignore_routes_with_linkdown", "1"),
                SetSysctl("net/ipv6/conf/all/keep_addr_on_down", "1"),
                SetSysctl("net/ipv4/conf/all/rp_filter", "2")])
    assert dict(kernel.state(keys).sysctls) == {
        "net/ipv6/conf/qfe0/ignore_routes_with_linkdown": "1",
        "net/ipv6/conf/qfe1/ignore_routes_with_linkdown": "1",
        "net/ipv6/conf/qfe0/keep_addr_on_down": "0",
        "net/ipv6/conf/qfe1/keep_addr_on_down": "0",
    }
    assert kernel.state(["net/ipv4/conf/qfe0/rp_filter"]).sysctls == (("net/ipv4/conf/qfe0/rp_filter", "0"),)
