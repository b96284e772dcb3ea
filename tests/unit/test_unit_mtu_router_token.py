"""Words Solaris accepts that have a faithful Linux meaning: a logical interface's
own MTU, ``router``/``-router``, ``token``, ``subnet`` and ``nud``.

Cases are written from Solaris' ifconfig(1M) (illumos ``usr/src/man/man1m/
ifconfig.1m``) and the Solaris 10 code it describes (``ifconfig.c``:
``setifmtu``, ``setiftoken``, ``setifsubnet``, ``setifflags``; ``ip_if.c``:
``ip_sioctl_mtu``, ``ip_sioctl_token``, ``ip_sioctl_subnet``,
``ip_sioctl_flags``, ``ipif_move``, ``ipif_up_done``):

* "mtu n: Set the maximum transmission unit of the interface to n. [...]
  This option sets the FIXEDMTU flag on the affected interface."  The kernel
  keeps it per logical interface and refuses one above the link's or below
  the family's minimum with EINVAL.
* "router: Enable IP forwarding on the interface. When enabled, the interface
  is marked ROUTER [...] Enabling ROUTER on any IP interface in an IPMP group
  enables it on all IP interfaces in that IPMP group."  (and ``-router``)
* "token address/prefix_length: Set the IPv6 token of an interface to be used
  for address autoconfiguration.  example% ifconfig eri0 inet6 token ::1/64"
* "subnet: Set the subnet address for an interface."
* "nud: Enables the neighbor unreachability detection mechanism [...]"

The hostname-file line is the one a real Solaris 10 host came up with:
``addif 192.0.2.132 netmask + broadcast + mtu 1380 up``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_network
from pathlib import Path

import pytest

from ipmp.admin.session import read_host, run_command
from ipmp.config.evaluate import evaluate
from ipmp.config.flagword import flags_of
from ipmp.config.parse import parse_argv
from ipmp.config.render import render
from ipmp.errors import ConfigError, ParseError, UnsupportedError
from ipmp.host.hostfiles import parse_hostname_text
from ipmp.host.state import Store, dumps, loads
from ipmp.linux.desired import desired_kernel
from ipmp.linux.ops import AddRoute, SetLink, SetSysctl, command
from ipmp.linux.plan import diff
from ipmp.linux.view import RT_TABLE_MAIN, Scope, merge, table_of
from ipmp.model import IFF, Config, Environment, Family, Interface, KernelState, KLink, KRoute, Logical
from ipmp.mpathd.failover import fail_back, fail_over
from tests.fakes import FakeKernel, kaddr, make_kernel

INET = Family.INET
INET6 = Family.INET6
DEFAULT4 = ip_network("0.0.0.0/0")

#: /etc/inet/netmasks of the host: two /25 subnets in 192.0.2.0/24.
ENV = Environment(
    netmasks=(
        (IPv4Address("192.0.2.0"), IPv4Address("255.255.255.128")),
        (IPv4Address("192.0.2.128"), IPv4Address("255.255.255.128")),
    ),
    defaultrouters=(IPv4Address("192.0.2.129"),),
)

#: hostname.ce0 of the real host (its second line is the one that failed).
HOSTNAME_CE0 = (
    "192.0.2.10 netmask + broadcast + group prod up\n"
    "addif 192.0.2.132 netmask + broadcast + mtu 1380 up\n"
)


def host(*names: str, up: bool = True) -> Config:
    return merge(make_kernel(*names, up=up), ())


def run(config: Config, *argv: str) -> Config:
    return evaluate(config, parse_argv(list(argv)), ENV).config


def from_file(config: Config, text: str, ifname: str, family: Family = INET) -> Config:
    for command_ in parse_hostname_text(text, ifname, family, f"etc/hostname.{ifname}"):
        config = evaluate(config, command_, ENV).config
    return config


def refused(config: Config, *argv: str) -> str:
    with pytest.raises(ConfigError) as info:
        evaluate(config, parse_argv(list(argv)), ENV)
    return info.value.message


def itf(config: Config, name: str) -> Interface:
    found = config.get(name)
    assert found is not None
    return found


def logical(config: Config, name: str, unit: int, family: Family = INET) -> Logical:
    found = itf(config, name).logical(family, unit)
    assert found is not None
    return found


def ce0_booted() -> Config:
    config = run(host("ce0", "ce1"), "ce0", "plumb")
    return from_file(config, HOSTNAME_CE0, "ce0")


def routes_of(config: Config, name: str, family: Family = INET) -> set[KRoute]:
    kernel = make_kernel("ce0", "ce1", up=True)
    return set(desired_kernel(config, Scope(frozenset({(name, family)})), kernel, ENV.defaultrouters).routes)


# --------------------------------------------------------------------------
# The logical interface's own MTU
# --------------------------------------------------------------------------


def test_the_real_hostname_line_parses_with_its_mtu() -> None:
    (_first, second) = parse_hostname_text(HOSTNAME_CE0, "ce0", INET, "etc/hostname.ce0")
    assert [(a.keyword, a.argument) for a in second.actions] == [
        ("addif", "192.0.2.132"), ("netmask", "+"), ("broadcast", "+"), ("mtu", "1380"), ("up", None)]


def test_addif_with_mtu_gives_that_unit_its_own_mtu_and_fixedmtu() -> None:
    config = ce0_booted()
    ce0 = itf(config, "ce0")
    unit1 = logical(config, "ce0", 1)
    assert unit1.address == IPv4Interface("192.0.2.132/25")
    assert unit1.mtu == 1380 and unit1.up
    assert logical(config, "ce0", 0).mtu is None
    assert ce0.mtu == 1500  # the link keeps its MTU
    assert flags_of(ce0, unit1) & IFF.FIXEDMTU
    assert not flags_of(ce0, logical(config, "ce0", 0)) & IFF.FIXEDMTU
    text = render(config, ifname="ce0", family=INET)
    assert "ce0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" in text
    assert "ce0:1: flags=1001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,FIXEDMTU> mtu 1380 index 2\n" in text


def test_a_logical_mtu_above_the_links_fails_with_solaris_error() -> None:
    config = run(host("ce0"), "ce0", "plumb")
    with pytest.raises(ConfigError) as info:
        from_file(config, "192.0.2.10 netmask + up\n"
                  "addif 192.0.2.132 netmask + broadcast + mtu 1501 up\n", "ce0")
    # setifmtu: Perror0_exit("setifmtu: SIOCSLIFMTU") on ip_sioctl_mtu's EINVAL.
    assert info.value.message == "setifmtu: SIOCSLIFMTU: ce0:1: Invalid argument"
    assert str(info.value.position) == "etc/hostname.ce0:2:45"  # the value


@pytest.mark.parametrize(("family", "mtu", "ok"), [
    (INET, "67", False), (INET, "68", True), (INET, "1500", True), (INET, "1501", False),
    (INET6, "1279", False), (INET6, "1280", True), (INET6, "1500", True), (INET6, "1501", False),
])
def test_logical_mtu_limits_per_family(family: Family, mtu: str, ok: bool) -> None:
    """ip_sioctl_mtu: IP_MIN_MTU (68) or IPV6_MIN_MTU (1280) up to the link's."""
    addr = "192.0.2.132/25" if family is INET else "2001:db8::132/64"
    config = run(run(host("ce0"), "ce0", family.word, "plumb"), "ce0", family.word, "addif", addr, "up")
    argv = ("ce0:1", family.word, "mtu", mtu)
    if ok:
        assert logical(run(config, *argv), "ce0", 1, family).mtu == int(mtu)
    else:
        assert refused(config, *argv) == "setifmtu: SIOCSLIFMTU: ce0:1: Invalid argument"


def test_unit0_mtu_is_the_links_and_keeps_ipv6_alive() -> None:
    config = run(host("ce0"), "ce0", "plumb")
    assert itf(run(config, "ce0", "mtu", "9000"), "ce0").mtu == 9000
    dual = run(config, "ce0", "inet6", "plumb")
    # Linux drops a link's IPv6 addresses below 1280: refused, not done.
    assert refused(dual, "ce0", "mtu", "1200").startswith("setifmtu: ce0: 1200 is below 1280")
    assert refused(dual, "ce0", "inet6", "mtu", "1279") == "setifmtu: SIOCSLIFMTU: ce0: Invalid argument"
    assert itf(run(config, "ce0", "mtu", "1200"), "ce0").mtu == 1200


def test_a_smaller_link_wins_and_the_units_own_mtu_comes_back() -> None:
    """ipif_move: a moved address takes min(its MTU, the destination's) and
    gets its own back on a link that allows it (ipif_saved_mtu)."""
    unit = Logical(INET, 1, IPv4Interface("192.0.2.132/25"), up=True, mtu=1380)
    small = Interface("ce1", mtu=1300, logicals=(unit,))
    big = Interface("ce0", mtu=1500, logicals=(unit,))
    jumbo = Interface("ce2", mtu=9000, logicals=(unit,))
    assert small.logical_mtu(unit) == 1300 and small.route_mtu(unit) == 0
    assert big.logical_mtu(unit) == 1380 and big.route_mtu(unit) == 1380
    assert jumbo.logical_mtu(unit) == 1380 and jumbo.route_mtu(unit) == 1380
    plain = replace(unit, mtu=None)
    assert jumbo.logical_mtu(plain) == 9000 and jumbo.route_mtu(plain) == 0


def test_the_units_mtu_survives_a_failover_and_comes_back_on_failback() -> None:
    """A moved address keeps its MTU, capped by the destination's link, and
    has it again at home (ipif_move's ipif_saved_mtu; reference §1 item 5)."""
    config = ce0_booted()
    config = run(run(config, "ce1", "plumb"), "ce1", "192.0.2.11/25", "group", "prod", "up")
    config = config.with_interface(replace(itf(config, "ce1"), mtu=1300))
    moved = fail_over(config, "ce0", "ce1")
    ce1 = itf(moved, "ce1")
    (away,) = [x for x in ce1.logicals_of(INET) if x.address == IPv4Interface("192.0.2.132/25")]
    assert away.mtu == 1380 and away.home == "ce0"
    assert ce1.logical_mtu(away) == 1300
    header = f"{away.name('ce1')}: flags=1001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,FIXEDMTU> mtu 1300 "
    assert header in render(moved, ifname="ce1", family=INET)
    back = fail_back(moved, "ce0")
    assert logical(back, "ce0", 1).mtu == 1380
    assert itf(back, "ce0").logical_mtu(logical(back, "ce0", 1)) == 1380


def test_the_units_subnet_routes_carry_its_mtu() -> None:
    config = ce0_booted()
    index = itf(config, "ce0").index
    table = table_of(index)
    routes = routes_of(config, "ce0")
    by_key = {(r.table, r.dst, r.gateway): r for r in routes}
    low, high = ip_network("192.0.2.0/25"), ip_network("192.0.2.128/25")
    assert by_key[(table, low, None)].mtu == 0
    assert by_key[(RT_TABLE_MAIN, low, None)].mtu == 0
    assert by_key[(table, high, None)].mtu == 1380
    assert by_key[(RT_TABLE_MAIN, high, None)].mtu == 1380
    # The default router is in ce0:1's subnet: traffic to it leaves there.
    router = IPv4Address("192.0.2.129")
    assert by_key[(table, DEFAULT4, router)].mtu == 1380
    assert by_key[(RT_TABLE_MAIN, DEFAULT4, router)].mtu == 1380


def test_a_subnet_shared_with_a_lower_unit_takes_that_units_mtu() -> None:
    """ipif_up_done gives each unit's subnet route its ipif_mtu; the lowest
    unit's route is the one found, so ce0:1's MTU shows but does not route."""
    config = run(host("ce0"), "ce0", "plumb")
    config = from_file(config, "192.0.2.10 netmask + up\naddif 192.0.2.11 netmask + mtu 1380 up\n", "ce0")
    assert logical(config, "ce0", 1).mtu == 1380
    assert "mtu 1380 index" in render(config, ifname="ce0", unit=1, family=INET)
    assert {r.mtu for r in routes_of(config, "ce0")} == {0}


def test_plan_prints_the_route_mtu() -> None:
    kernel = make_kernel("ce0", "ce1", up=True)
    config = ce0_booted()
    desired = desired_kernel(config, Scope(frozenset({("ce0", INET)})), kernel, ENV.defaultrouters)
    plan = diff(kernel, desired, Scope(frozenset({("ce0", INET)})))
    lines = [command(op) for op in plan if isinstance(op, AddRoute) and op.route.mtu]
    assert "ip -4 route add 192.0.2.128/25 dev ce0 table 1002 proto 73 mtu 1380" in lines


def test_changing_the_mtu_replaces_the_routes() -> None:
    """The kernel keys a route without its metrics: a new MTU is a delete and an add."""
    config = ce0_booted()
    scope = Scope(frozenset({("ce0", INET)}))
    kernel = make_kernel("ce0", "ce1", up=True)
    current = desired_kernel(config, scope, kernel, ENV.defaultrouters)
    current = replace(current, links=kernel.links)
    lower = run(config, "ce0:1", "mtu", "1300")
    plan = diff(current, desired_kernel(lower, scope, current, ENV.defaultrouters), scope)
    added = {op.route.mtu for op in plan if isinstance(op, AddRoute)}
    assert added == {1300}


def test_the_store_keeps_the_units_mtu() -> None:
    ce0 = itf(ce0_booted(), "ce0")
    from ipmp.host.state import Stored

    back = loads(dumps(Stored((ce0,)))).interfaces[0]
    assert back.logical(INET, 1).mtu == 1380  # type: ignore[union-attr]
    assert back.logical(INET, 0).mtu is None  # type: ignore[union-attr]


def test_without_a_record_the_mtu_is_read_back_from_the_route() -> None:
    kernel = make_kernel("ce0", up=True, addresses=(kaddr("ce0", "192.0.2.132/25", "ce0:1"),))
    index = next(lk.index for lk in kernel.links if lk.name == "ce0")
    routed = replace(kernel, routes=frozenset({
        KRoute(INET, table_of(index), ip_network("192.0.2.128/25"), "ce0", mtu=1380)}))
    assert logical(merge(routed, ()), "ce0", 1).mtu == 1380
    assert logical(merge(kernel, ()), "ce0", 1).mtu is None
    # The store's record wins over the route (the next plan puts it right).
    record = Interface("ce0", plumbed=frozenset({INET}), logicals=(
        Logical(INET, 1, IPv4Interface("192.0.2.132/25"), up=True, mtu=1300),))
    assert logical(merge(routed, (record,)), "ce0", 1).mtu == 1300


def test_ifconfig_applies_the_unit_mtu_through_the_kernel(tmp_path: Path) -> None:
    kernel = FakeKernel(make_kernel("ce0", "ce1", up=True))

    async def go() -> None:
        for argv in (["ce0", "plumb"], ["ce0", "192.0.2.10/25", "up"],
                     ["ce0", "addif", "192.0.2.132/25", "mtu", "1380", "up"]):
            host_ = await read_host(kernel, tmp_path)
            await run_command(kernel, host_, parse_argv(argv), dry_run=False)

    asyncio.run(go())
    state = kernel.state()
    assert {r.mtu for r in state.routes if r.dst == ip_network("192.0.2.128/25")} == {1380}
    view = merge(state, Store(tmp_path).load().interfaces)
    assert "mtu 1380" in render(view, ifname="ce0", unit=1, family=INET)


# --------------------------------------------------------------------------
# router / -router
# --------------------------------------------------------------------------


def test_router_sets_the_forwarding_sysctl_of_that_family() -> None:
    config = run(run(host("ce0", "ce1"), "ce0", "plumb"), "ce0", "192.0.2.10/25", "up")
    on = run(config, "ce0", "router")
    assert itf(on, "ce0").router == frozenset({INET})
    assert itf(on, "ce1").router == frozenset()
    scope = Scope(frozenset({("ce0", INET)}))
    kernel = make_kernel("ce0", "ce1", up=True)
    plan = diff(kernel, desired_kernel(on, scope, kernel), scope)
    assert SetSysctl("net/ipv4/conf/ce0/forwarding", "1") in plan
    assert "sysctl -w net.ipv4.conf.ce0.forwarding=1" in [command(op) for op in plan]
    head = render(on, ifname="ce0", family=INET).splitlines()[0]
    assert head.startswith("ce0: flags=1100843<UP,BROADCAST,RUNNING,MULTICAST,ROUTER,IPv4> ")


def test_minus_router_turns_forwarding_off() -> None:
    kernel = make_kernel("ce0", up=True)
    forwarding = replace(kernel, links=tuple(
        replace(lk, forwarding=frozenset({INET})) if lk.name == "ce0" else lk for lk in kernel.links))
    config = run(merge(forwarding, ()), "ce0", "plumb")
    assert itf(config, "ce0").router == frozenset({INET})  # read back from the kernel
    off = run(config, "ce0", "-router")
    scope = Scope(frozenset({("ce0", INET)}))
    plan = diff(forwarding, desired_kernel(off, scope, forwarding), scope)
    assert SetSysctl("net/ipv4/conf/ce0/forwarding", "0") in plan


def test_a_forwarding_host_keeps_its_forwarding() -> None:
    """A NIC the host's sysctl.conf made forward is not switched off by a plan."""
    kernel = make_kernel("ce0", up=True)
    kernel = replace(kernel, links=tuple(
        replace(lk, forwarding=frozenset({INET, INET6})) if lk.name == "ce0" else lk for lk in kernel.links))
    config = run(run(merge(kernel, ()), "ce0", "plumb"), "ce0", "192.0.2.10/25", "up")
    scope = Scope(frozenset({("ce0", INET), ("ce0", INET6)}))
    plan = diff(kernel, desired_kernel(config, scope, kernel), scope)
    assert not [op for op in plan if isinstance(op, SetSysctl) and op.key.endswith("/forwarding")]


def test_router_on_a_group_member_reaches_the_whole_group() -> None:
    config = host("ce0", "ce1", "ce2")
    for name in ("ce0", "ce1", "ce2"):
        config = run(config, name, "plumb")
    config = run(run(config, "ce0", "group", "prod"), "ce1", "group", "prod")
    on = run(config, "ce1", "router")
    assert [itf(on, n).router for n in ("ce0", "ce1", "ce2")] == [frozenset({INET}), frozenset({INET}),
                                                                  frozenset()]
    off = run(on, "ce0", "-router")
    assert [itf(off, n).router for n in ("ce0", "ce1")] == [frozenset(), frozenset()]
    assert not evaluate(config, parse_argv(["ce1", "router"]), ENV).touched - {("ce0", INET), ("ce1", INET)}


def test_the_loopback_never_routes() -> None:
    """ill_forward_set: EINVAL on the loopback; lo0 never shows ROUTER, even
    when Linux forwards on ``lo`` (net.ipv4.ip_forward=1 sets it everywhere)."""
    kernel = make_kernel("ce0", up=True)
    kernel = replace(kernel, links=tuple(replace(lk, forwarding=frozenset({INET})) for lk in kernel.links))
    config = merge(kernel, ())
    lo = next(i for i in config.interfaces if i.loopback)
    assert not flags_of(lo, logical(config, lo.name, 0)) & IFF.ROUTER
    assert refused(config, lo.name, "router") == f"setifflags: SIOCSLIFFLAGS: {lo.name}: Invalid argument"
    assert evaluate(config, parse_argv([lo.name, "-router"]), ENV).config == config
    assert flags_of(itf(config, "ce0"), Logical(INET, 0)) & IFF.ROUTER


def test_inet6_router_is_the_ipv6_sysctl() -> None:
    config = run(host("ce0"), "ce0", "inet6", "plumb")
    on = run(config, "ce0", "inet6", "router")
    assert itf(on, "ce0").router == frozenset({INET6})
    scope = Scope(frozenset({("ce0", INET6)}))
    kernel = make_kernel("ce0", up=True)
    plan = diff(kernel, desired_kernel(on, scope, kernel), scope)
    assert SetSysctl("net/ipv6/conf/ce0/forwarding", "1") in plan


# --------------------------------------------------------------------------
# token
# --------------------------------------------------------------------------


def test_token_sets_the_ipv6_token() -> None:
    config = run(host("eri0"), "eri0", "inet6", "plumb")
    on = run(config, "eri0", "inet6", "token", "::1/64")  # ifconfig(1M)'s example
    assert itf(on, "eri0").token == IPv6Address("::1")
    scope = Scope(frozenset({("eri0", INET6)}))
    kernel = make_kernel("eri0", up=True)
    plan = diff(kernel, desired_kernel(on, scope, kernel), scope)
    assert SetLink("eri0", token=IPv6Address("::1")) in plan
    assert "ip token set ::1/64 dev eri0" in [command(op) for op in plan]


def test_token_keeps_the_interface_identifier_bits_only() -> None:
    config = run(host("eri0"), "eri0", "inet6", "plumb")
    assert itf(run(config, "eri0", "inet6", "token", "2001:db8::1:2:3:4/64"), "eri0").token == (
        IPv6Address("::1:2:3:4"))
    assert itf(run(config, "eri0", "inet6", "token", "::/64"), "eri0").token is None


def test_token_errors_are_solaris_ones() -> None:
    config = run(run(host("eri0"), "eri0", "inet6", "plumb"), "eri0", "inet6", "addif", "2001:db8::5/64")
    # setiftoken's own text, "subnet" included.
    assert refused(config, "eri0", "inet6", "token", "::1") == "Missing prefix length in subnet ::1"
    # ip_sioctl_token: unit 0 only.
    assert refused(config, "eri0:1", "inet6", "token", "::1/64") == (
        "setiftoken: SIOCSLIFTOKEN: eri0:1: Invalid argument")
    assert refused(config, "eri0", "inet6", "token", "::1/129") == "Bad prefix length in ::1/129"
    assert "64-bit interface tokens only" in refused(config, "eri0", "inet6", "token", "::1/48")
    with pytest.raises(ParseError) as info:
        parse_argv(["eri0", "token", "::1/64"])
    assert info.value.message == "ifconfig: Operation token not supported for inet"


def test_a_token_set_elsewhere_is_read_back_and_kept() -> None:
    kernel = make_kernel("eri0", up=True)
    kernel = replace(kernel, links=tuple(
        replace(lk, token=IPv6Address("::5")) if lk.name == "eri0" else lk for lk in kernel.links))
    config = run(merge(kernel, ()), "eri0", "inet6", "plumb")
    assert itf(config, "eri0").token == IPv6Address("::5")
    scope = Scope(frozenset({("eri0", INET6)}))
    assert not [op for op in diff(kernel, desired_kernel(config, scope, kernel), scope)
                if isinstance(op, SetLink) and op.token is not None]


# --------------------------------------------------------------------------
# subnet
# --------------------------------------------------------------------------


def test_subnet_sets_the_prefix_and_keeps_address_and_broadcast() -> None:
    config = run(run(host("ce0"), "ce0", "plumb"), "ce0", "192.0.2.10", "netmask", "255.255.255.0",
                 "broadcast", "+", "up")
    before = logical(config, "ce0", 0)
    after = logical(run(config, "ce0", "subnet", "192.0.2.0/25"), "ce0", 0)
    assert after.address == IPv4Interface("192.0.2.10/25")
    # ip_sioctl_subnet: "Does not modify the broadcast address."
    assert after.broadcast == before.broadcast == IPv4Address("192.0.2.255")


def test_subnet_on_ipv6() -> None:
    config = run(run(host("ce0"), "ce0", "inet6", "plumb"), "ce0", "inet6", "addif", "2001:db8::5/64", "up")
    out = run(config, "ce0:1", "inet6", "subnet", "2001:db8::/48")
    assert logical(out, "ce0", 1, INET6).address == IPv6Interface("2001:db8::5/48")


def test_subnet_errors() -> None:
    config = run(run(host("ce0"), "ce0", "plumb"), "ce0", "192.0.2.10/24", "up")
    assert refused(config, "ce0", "subnet", "192.0.2.0") == "Missing prefix length in subnet 192.0.2.0"
    # ip_sioctl_subnet: "Check if bits in the address is set past the mask".
    assert refused(config, "ce0", "subnet", "192.0.2.10/24") == "SIOCSLIFSUBNET: ce0: Invalid argument"
    assert "outside it" in refused(config, "ce0", "subnet", "198.51.100.0/24")
    assert refused(config, "ce0", "subnet", "192.0.2.0/33") == "Bad prefix length in 192.0.2.0/33"


# --------------------------------------------------------------------------
# nud / -nud
# --------------------------------------------------------------------------


def test_nud_is_what_linux_always_does() -> None:
    config = run(host("ce0"), "ce0", "inet6", "plumb")
    out = evaluate(config, parse_argv(["ce0", "inet6", "nud"]), ENV)
    assert out.config == config
    noarp = run(run(host("ce0"), "ce0", "plumb", "-arp"), "ce0", "inet6", "plumb")
    assert refused(noarp, "ce0", "inet6", "nud").startswith("nud: ce0: Linux does no neighbour discovery")


def test_minus_nud_stays_refused() -> None:
    with pytest.raises(UnsupportedError) as info:
        parse_argv(["ce0", "inet6", "-nud"])
    assert info.value.message.startswith("ifconfig: -nud: not supported on Linux (")


def test_kernel_state_keys_stay_hashable() -> None:
    """KLink and KRoute are set members and dict keys across the planner."""
    link = KLink("ce0", 2, forwarding=frozenset({INET}), token=IPv6Address("::1"))
    route = KRoute(INET, 254, ip_network("192.0.2.0/25"), "ce0", mtu=1380)
    assert len({link, replace(link)}) == 1 and len({route, replace(route, mtu=0)}) == 2
    assert KernelState(links=(link,)).link("ce0") == link
