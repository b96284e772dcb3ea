"""IPv6 IPMP without a kernel: hostname6 files, the link-local test address, dual stack.

Solaris rules checked here (solaris-ipmp.md):

* §6.2: each line of ``hostname6.<if>`` runs as ``ifconfig <if> inet6 LINE``,
  then ``ifconfig <if> inet6 up``; an empty file plumbs and brings up the
  link-local;
* §1, §2.3: the IPv6 test address is the link-local marked ``-failover`` (not
  deprecated); only link-local addresses qualify; link-locals never move;
* §4.6: ``inet6 ADDR/LEN `` with its trailing space, the link-local as /10,
  ``groupname`` on inet6 unit 0, every IPv6 block after every IPv4 block;
* §2.6: IPv6 routers from the routing table go to the phyint of the route's
  interface and to its group; own addresses are never targets;
* §2.7: a NIC probed in both families fails only when both lose, is repaired
  when one recovers; its IPv4 and IPv6 data addresses move in one failover.

On Linux the link-local is the kernel's: never in a plan, never in the state
store but for its flags (NOFAILOVER, UP on inet6 unit 0), and while DAD runs
it is no test address.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address
from pathlib import Path

import pytest

from ipmp.admin import bootfiles, session
from ipmp.apply import make_plan
from ipmp.config.addresses import split_name
from ipmp.config.evaluate import evaluate
from ipmp.config.parse import parse_argv
from ipmp.config.render import render
from ipmp.errors import ConfigError
from ipmp.host.hostfiles import parse_hostname_text
from ipmp.host.state import Store, Stored, dumps, loads
from ipmp.kernel.decode import IFA_F_NODAD
from ipmp.kernel.request import encode_request
from ipmp.linux.desired import desired_kernel
from ipmp.linux.ops import AddAddress, command
from ipmp.linux.view import Scope, expected, merge
from ipmp.model import Config, Environment, Family, Interface, KAddress, KernelState, Logical
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import Timing, select_test_address
from ipmp.mpathd.settings import Settings
from ipmp.mpathd.steps import Resync, SendProbe
from tests.fakes import FakeKernel, link_local_of, mac_of, make_kernel
from tests.unit import mpathd_sim
from tests.unit.mpathd_sim import Sim, make_nic, placement

V4, V6 = Family.INET, Family.INET6
ENV = Environment(
    hosts=tuple((name, ip_address(addr)) for name, addr in (
        ("myhost", "192.0.2.100"),
        ("myhost", "2001:db8::100"),
        ("myhost-2", "2001:db8::101"),
    )),
)
#: The link-locals the fake kernel gives qfe0 (index 2) and qfe1 (index 3) once up.
LL0, LL1 = link_local_of(mac_of(2)), link_local_of(mac_of(3))


def files(config: Config, ifname: str, text: str) -> Config:
    """Evaluate ``hostname6.<ifname>`` as ipmp-boot does: plumb, each line, then ``inet6 up``."""
    path = f"hostname6.{ifname}"
    commands = [parse_argv([ifname, "inet6", "plumb"]),
                *parse_hostname_text(text, ifname, V6, path),
                parse_argv([ifname, "inet6", "up"])]
    for cmd in commands:
        config = evaluate(config, cmd, ENV).config
    return config


def lg(config: Config, name: str, family: Family = V6) -> Logical:
    base, unit = split_name(name)
    itf = config.get(base)
    assert itf is not None
    found = itf.logical(family, unit)
    assert found is not None, name
    return found


def booted(text0: str, text1: str | None = None) -> tuple[FakeKernel, Stored, Config]:
    """qfe0 (and qfe1) booted from hostname6 texts on the fake kernel; returns the kernel, store, view."""
    names = ["qfe0", "qfe1"] if text1 is not None else ["qfe0"]
    kernel = FakeKernel(make_kernel(*names))
    stored = Stored()
    for name, text in zip(names, (text0, text1), strict=False):
        assert text is not None
        config = merge(kernel.state(), stored.interfaces)
        desired = files(config, name, text)
        scope = Scope(frozenset({(name, V6)}))
        before = kernel.state()
        kernel.run(make_plan(before, desired, scope, ()))
        itf = desired.get(name)
        assert itf is not None
        stored = stored.with_interfaces((itf,))
    return kernel, stored, merge(kernel.state(), stored.interfaces)


# --------------------------------------------------------------------------
# hostname6 files and inet6 commands
# --------------------------------------------------------------------------


def test_hostname6_lines_get_nothing_appended() -> None:
    # IPv4 single-line files get "netmask + broadcast + up"; IPv6 ones never (§6.3).
    (one,) = parse_hostname_text("-failover group prod up\n", "qfe0", V6, "hostname6.qfe0")
    assert [a.keyword for a in one.actions] == ["-failover", "group", "up"]
    assert one.family is V6 and not any(a.implicit for a in one.actions)


def test_empty_hostname6_file_plumbs_and_brings_the_link_local_up() -> None:
    config = files(merge(make_kernel("qfe0"), ()), "qfe0", "")
    qfe0 = config.get("qfe0")
    assert qfe0 is not None and qfe0.plumbed == frozenset({V6}) and qfe0.link_up
    unit0 = lg(config, "qfe0")
    assert unit0.up and not unit0.nofailover and unit0.address is None  # the kernel makes it on link up


def test_boot_commands_end_with_inet6_up(tmp_path: Path) -> None:
    root = tmp_path
    (root / "hostname6.qfe0").write_text("-failover group prod standby\n")
    cmds = [step.command for step in bootfiles.boot_steps("qfe0", [(V6, root / "hostname6.qfe0")])]
    assert all(c is not None for c in cmds)
    words = [[a.keyword for a in c.actions] for c in cmds if c is not None]
    assert words == [["plumb"], ["-failover", "group", "standby"], ["up"]]
    assert all(c is not None and c.family is V6 for c in cmds)


def test_failover_off_group_standby_and_addif_with_a_prefix_length() -> None:
    config = files(merge(make_kernel("qfe0"), ()), "qfe0",
                   "-failover group prod standby up\naddif myhost/64 up\naddif 2001:db8::5 up\n")
    qfe0 = config.get("qfe0")
    assert qfe0 is not None and qfe0.group == "prod" and qfe0.standby
    unit0 = lg(config, "qfe0")
    assert unit0.nofailover and unit0.up and not unit0.deprecated  # the IPv6 test address is not deprecated
    # A host name resolves to its IPv6 entry in an inet6 command (same name as IPv4).
    assert lg(config, "qfe0:1").address == IPv6Interface("2001:db8::100/64")
    # An IPv6 address without a prefix length gets /64.
    assert lg(config, "qfe0:2").address == IPv6Interface("2001:db8::5/64")
    assert lg(config, "qfe0:2").up and not lg(config, "qfe0:2").nofailover


def test_inet6_down_and_bad_prefix() -> None:
    config = files(merge(make_kernel("qfe0"), ()), "qfe0", "addif 2001:db8::5/64 up\n")
    down = evaluate(config, parse_argv(["qfe0:1", "inet6", "down"]), ENV).config
    assert not lg(down, "qfe0:1").up
    with pytest.raises(ConfigError, match="Bad prefix length"):
        evaluate(config, parse_argv(["qfe0", "inet6", "addif", "2001:db8::6/129", "up"]), ENV)
    with pytest.raises(ConfigError, match="bad address"):
        evaluate(config, parse_argv(["qfe0", "inet6", "addif", "192.0.2.5", "up"]), ENV)


# --------------------------------------------------------------------------
# The link-local: the kernel's address, our flags
# --------------------------------------------------------------------------


def test_boot_never_plans_the_link_local_and_adds_data_with_nodad() -> None:
    kernel = FakeKernel(make_kernel("qfe0"))
    desired = files(merge(kernel.state(), ()), "qfe0", "-failover group prod up\naddif 2001:db8::100/64 up\n")
    plan = make_plan(kernel.state(), desired, Scope(frozenset({("qfe0", V6)})), ())
    adds = [op for op in plan if isinstance(op, AddAddress)]
    assert [str(op.address.address) for op in adds] == ["2001:db8::100/64"]
    assert command(adds[0]) == "ip -6 addr add 2001:db8::100/64 dev qfe0 noprefixroute nodad"
    assert not any("fe80" in command(op) for op in plan)


def test_netlink_adds_ipv6_addresses_with_ifa_f_nodad() -> None:
    # Moves are "delete, then add with nodad": the address is already proven
    # on the link (linux-mapping.md Q6).  "lo" only names an existing link.
    def ifa_flags(a: KAddress) -> int:
        request = encode_request(AddAddress(a))
        assert request is not None
        body, offset = request[2], 8  # after the ifaddrmsg
        while offset < len(body):  # the attributes: IFA_FLAGS is 8
            length, kind = struct.unpack_from("=HH", body, offset)
            if kind == 8:
                return int(struct.unpack_from("=I", body, offset + 4)[0])
            offset += (length + 3) & ~3
        return 0

    assert ifa_flags(KAddress("lo", IPv6Interface("2001:db8::100/64"))) & IFA_F_NODAD
    assert not ifa_flags(KAddress("lo", IPv4Interface("192.0.2.100/24"))) & IFA_F_NODAD


def test_link_local_is_unit_0_with_the_stored_nofailover() -> None:
    _kernel, _stored, view = booted("-failover group prod up\naddif 2001:db8::100/64 up\n")
    unit0 = lg(view, "qfe0")
    assert unit0.address == LL0 and unit0.kernel_owned and unit0.nofailover and unit0.up
    assert lg(view, "qfe0:1").address == IPv6Interface("2001:db8::100/64")
    qfe0 = view.get("qfe0")
    assert qfe0 is not None
    chosen = select_test_address(qfe0, V6)
    assert chosen is not None and chosen.address == LL0


def test_the_store_keeps_the_link_local_flags_not_its_address() -> None:
    _kernel, stored, view = booted("-failover group prod up\n")
    qfe0 = view.get("qfe0")
    assert qfe0 is not None
    text = dumps(stored.with_interfaces((qfe0,)))
    assert "fe80" not in text
    record = next(x for x in json.loads(text)["interfaces"][0]["logicals"] if x["family"] == 6)
    assert (record["unit"], record["address"], record["nofailover"], record["up"]) == (0, None, True, True)
    back = loads(text).get("qfe0")
    assert back is not None
    again = merge(_kernel.state(), (back,))
    assert lg(again, "qfe0").address == LL0 and lg(again, "qfe0").nofailover


def test_a_lost_link_local_is_never_restored_by_a_plan() -> None:
    # An older store kept the link-local's address; with the link down the
    # kernel has none.  The daemon's expected view must not add it back.
    kernel, stored, _ = booted("-failover group prod up\n")
    old = stored.get("qfe0")
    assert old is not None
    old = replace(old, logicals=tuple(replace(x, address=LL0) if x.family is V6 and x.unit == 0 else x
                                      for x in old.logicals))
    state = kernel.state()
    gone = replace(state, addresses=tuple(a for a in state.addresses if a.address != LL0))
    view = expected(gone, (old,))
    want = desired_kernel(view, Scope(frozenset({("qfe0", V6)})), gone)
    assert not any(a.address.ip.is_link_local for a in want.addresses)


def test_tentative_link_local_is_no_test_address_and_not_up() -> None:
    kernel, stored, _ = booted("-failover group prod up\n")
    state = kernel.state()
    dad = replace(state, addresses=tuple(replace(a, tentative=True) if a.address == LL0 else a
                                         for a in state.addresses))
    view = merge(dad, stored.interfaces)
    unit0 = lg(view, "qfe0")
    assert unit0.tentative and unit0.up  # UP stays the administrator's flag ...
    qfe0 = view.get("qfe0")
    assert qfe0 is not None
    assert select_test_address(qfe0, V6) is None  # ... but DAD must succeed first
    block = render(view, ifname="qfe0", family=V6)
    assert block.startswith("qfe0: flags=a000840<RUNNING,MULTICAST,IPv6,NOFAILOVER> ")
    # A tentative address compares equal: it takes no part in plans.
    assert KAddress("qfe0", LL0, tentative=True) == KAddress("qfe0", LL0)


def test_inet6_plumb_alone_leaves_the_link_local_down() -> None:
    kernel = FakeKernel(make_kernel("qfe0", up=True))
    view = merge(kernel.state(), ())
    view = evaluate(view, parse_argv(["qfe0", "inet6", "plumb"]), ENV).config
    qfe0 = view.get("qfe0")
    assert qfe0 is not None
    stored = Stored().with_interfaces((qfe0,))
    again = merge(kernel.state(), stored.interfaces)
    assert lg(again, "qfe0").address == link_local_of(mac_of(2)) and not lg(again, "qfe0").up
    up = evaluate(again, parse_argv(["qfe0", "inet6", "up"]), ENV).config
    assert lg(up, "qfe0").up


def test_only_link_local_addresses_are_ipv6_test_addresses() -> None:
    itf = Interface("qfe0", 2, plumbed=frozenset({V6}), logicals=(
        Logical(V6, 0, LL0, up=False, nofailover=True, kernel_owned=True),
        Logical(V6, 1, IPv6Interface("2001:db8::10/64"), up=True, nofailover=True),
    ))
    assert select_test_address(itf, V6) is None  # the global one is silently ignored (§2.3)
    itf = itf.with_logical(Logical(V6, 0, LL0, up=True, nofailover=True, kernel_owned=True))
    chosen = select_test_address(itf, V6)
    assert chosen is not None and chosen.unit == 0


# --------------------------------------------------------------------------
# ifconfig -a
# --------------------------------------------------------------------------


def test_ifconfig_a_dual_stack_blocks() -> None:
    kernel = FakeKernel(make_kernel("qfe0"))
    config = merge(kernel.state(), ())
    for argv in (["qfe0", "plumb", "192.0.2.100/24", "group", "prod", "up"],):
        config = evaluate(config, parse_argv(argv), ENV).config
    config = files(config, "qfe0", "-failover group prod up\naddif 2001:db8::100/64 up\n")
    scope = Scope(frozenset({("qfe0", V4), ("qfe0", V6)}))
    kernel.run(make_plan(kernel.state(), config, scope, ()))
    qfe0 = config.get("qfe0")
    assert qfe0 is not None
    view = merge(kernel.state(), (qfe0,))
    out = render(view)
    ll = LL0.ip
    assert out.endswith(
        "qfe0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2\n"
        f"\tinet6 {ll}/10 \n"
        "\tgroupname prod\n"
        "\tether 2:0:0:0:0:2 \n"
        "qfe0:1: flags=2000841<UP,RUNNING,MULTICAST,IPv6> mtu 1500 index 2\n"
        "\tinet6 2001:db8::100/64 \n"
    ), out
    # Every IPv4 block before every IPv6 block (§4.6 ordering).
    families = ["6" if "IPv6" in line else "4" for line in out.splitlines() if "flags=" in line]
    assert families == sorted(families)
    assert "\tinet 192.0.2.100 netmask ffffff00 broadcast 192.0.2.255\n\tgroupname prod\n" in out
    # -a6 alone: no ether line (a family was named).
    six = render(view, family=V6)
    assert "ether" not in six
    assert six.startswith("lo: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 ")


# --------------------------------------------------------------------------
# The daemon: targets, dual stack, offline
# --------------------------------------------------------------------------


def dual(n: int, *, standby: bool = False, group: str = mpathd_sim.GROUP, data: bool = True) -> Interface:
    """qfe<n>: the simulator's IPv4 layout, its link-local (-failover) and 2001:db8::10n on inet6 unit 1."""
    base = make_nic(n, standby=standby, group=group, data=1 if data else 0)
    six = [Logical(V6, 0, link_local_of(mac_of(n + 2)), up=True, nofailover=True, kernel_owned=True)]
    if data:
        six.append(Logical(V6, 1, IPv6Interface(f"2001:db8::{100 + n}/64"), up=True))
    return replace(base, plumbed=frozenset({V4, V6}), logicals=(*base.logicals, *six))


HOST6 = IPv6Address("fe80::50")


def dual_sim(count: int = 2, **kw: object) -> Sim:
    sim = Sim(Config(tuple(dual(n) for n in range(count))), **kw)  # type: ignore[arg-type]
    # No IPv6 router in the table: the instances discover hosts on ff02::1.
    sim.net.hosts = (HOST6,)
    return sim


def mute(sim: Sim, muted: set[tuple[str, Family]]) -> None:
    """Replies to the probes of these (NIC, family) pairs are lost (one family broken on one NIC)."""
    answer: Callable[[SendProbe], None] = sim._answer

    def filtered(fx: SendProbe) -> None:
        if (fx.ifname, fx.family) not in muted:
            answer(fx)

    sim._answer = filtered  # type: ignore[method-assign]


def test_both_families_probe_from_their_test_addresses() -> None:
    sim = dual_sim()
    sim.start()
    sim.advance(3.0)
    opened = {(fx.ifname, fx.family): fx.source for _, fx in sim.opened}
    assert opened[("qfe0", V6)] == link_local_of(mac_of(2)).ip
    assert opened[("qfe0", V4)] == IPv4Address("192.0.2.10")
    inst = sim.machine.phyints["qfe0"].instances[V6]
    assert [t.address for t in inst.active_targets()] == [HOST6]
    v6_probes = [s.probe for s in sim.probes("qfe0") if s.probe.family is V6]
    assert any(p.target is None for p in v6_probes)  # ff02::1 discovery
    assert any(p.target == HOST6 for p in v6_probes)


def test_dual_stack_nic_fails_only_when_both_families_lose() -> None:
    sim = dual_sim()
    sim.start()
    sim.advance(3.0)
    muted: set[tuple[str, Family]] = {("qfe0", V4)}
    mute(sim, muted)
    sim.advance(5.0)
    assert not sim.lines("NIC failure detected"), sim.messages()
    assert sim.machine.phyints["qfe0"].instances[V4].consecutive_losses() >= 5
    muted.add(("qfe0", V6))
    sim.run_until_log("NIC failure detected on qfe0 of group prod", 3.0)
    assert sim.lines("Successfully failed over from NIC qfe0 to NIC qfe1")
    where = placement(sim.truth)
    # One failover moved both families (§1 mechanics 1); the link-local stayed.
    assert where["192.0.2.100"] == "qfe1" and where["2001:db8::100"] == "qfe1"
    assert lg(sim.truth, "qfe0").address == link_local_of(mac_of(2))
    assert len(sim.lines("Successfully failed over")) == 1
    # One family back is enough for the repair (§2.7).
    muted.discard(("qfe0", V6))
    sim.run_until_log("NIC repair detected on qfe0 of group prod", 5.0)
    assert sim.lines("Successfully failed back to NIC qfe0")
    where = placement(sim.truth)
    assert where["192.0.2.100"] == "qfe0" and where["2001:db8::100"] == "qfe0"


def test_ipv6_only_silent_failure_moves_to_the_standby() -> None:
    def six_only(n: int, standby: bool) -> Interface:
        itf = dual(n, standby=standby, data=not standby)
        return replace(itf, plumbed=frozenset({V6}), logicals=itf.logicals_of(V6))

    sim = Sim(Config((six_only(0, False), six_only(1, True))), routers=())
    sim.net.hosts = (HOST6,)
    sim.start()
    sim.advance(3.0)
    sim.silent("qfe0")
    fail = sim.run_until_log("NIC failure detected on qfe0 of group prod", 3.0)
    assert sim.lines("Successfully failed over from NIC qfe0 to NIC qfe1")
    assert placement(sim.truth) == {"2001:db8::100": "qfe1"}
    assert lg(sim.truth, "qfe1:1").address == IPv6Interface("2001:db8::100/64")
    assert fail.time - 103.0 < 1.0


def test_routers_from_the_table_go_to_the_route_interface_and_its_group() -> None:
    router = IPv6Address("fe80::1")
    other = dual(2, group="other")
    config = Config((dual(0), dual(1), other))
    machine = Machine(Settings(), Timing(quiet_period=1.0))
    own = link_local_of(mac_of(3)).ip  # qfe1's own link-local: never a target
    machine.step(Resync(0.0, config, (), (("qfe0", router), ("qfe0", own))))
    for name in ("qfe0", "qfe1"):
        inst = machine.phyints[name].instances[V6]
        assert [(t.address, t.is_router) for t in inst.targets] == [(router, True)], name
    assert machine.phyints["qfe2"].instances[V6].targets == []  # another group, another link
    assert machine.snapshot().interfaces["qfe1"].probes["inet6"].mode == "routes"
    # The route goes: so does the target.
    machine.step(Resync(1.0, config, (), ()))
    assert machine.phyints["qfe0"].instances[V6].targets == []


def test_own_link_local_is_never_a_discovered_target() -> None:
    sim = dual_sim()
    sim.net.hosts = (HOST6, link_local_of(mac_of(3)).ip)  # qfe1 answers ff02::1 too, as Linux does
    sim.start()
    sim.advance(3.0)
    inst = sim.machine.phyints["qfe0"].instances[V6]
    assert [t.address for t in inst.active_targets()] == [HOST6]


def test_offline_downs_the_link_local_and_undo_brings_it_back() -> None:
    sim = dual_sim()
    sim.start()
    sim.advance(3.0)
    reply = sim.offline("qfe0")
    assert reply is not None and reply.mpathd_error == 0
    assert not lg(sim.truth, "qfe0").up  # if_mpadm -d downs every logical (§5)
    assert placement(sim.truth)["2001:db8::100"] == "qfe1"
    closed = {(fx.ifname, fx.family) for _, fx in sim.closed}
    assert {("qfe0", V4), ("qfe0", V6)} <= closed
    opened = len(sim.opened)
    reply = sim.undo_offline("qfe0")
    assert reply is not None and reply.mpathd_error == 0
    assert lg(sim.truth, "qfe0").up  # -r brings up the NOFAILOVER logicals
    sim.advance(1.0)
    # Probing resumes from the link-local, and stays on.
    assert ("qfe0", V6) in {(fx.ifname, fx.family) for _, fx in sim.opened[opened:]}
    assert sim.machine.phyints["qfe0"].instances[V6].test_address == link_local_of(mac_of(2)).ip
    assert placement(sim.truth)["2001:db8::100"] == "qfe0"


# --------------------------------------------------------------------------
# Waiting for DAD after bringing IPv6 up
# --------------------------------------------------------------------------


class _DadKernel:
    """A KernelIO whose link-local stays tentative for ``reads`` reads."""

    def __init__(self, state: KernelState, reads: int) -> None:
        self.state = state
        self.left = reads
        self.count = 0

    async def read(self, sysctl_keys: Sequence[str] = ()) -> KernelState:
        self.count += 1
        self.left -= 1
        tentative = self.left > 0
        return replace(self.state, addresses=tuple(
            replace(a, tentative=tentative) if a.kernel_owned else a for a in self.state.addresses))

    async def execute(self, ops: Sequence[object]) -> None:
        raise AssertionError("no ops expected")


def test_settle_dad_waits_until_the_link_local_is_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "_DAD_POLL", 0.001)
    state = make_kernel("qfe0", up=True)
    io = _DadKernel(state, reads=3)
    start = replace(state, addresses=tuple(replace(a, tentative=a.kernel_owned) for a in state.addresses))
    out = asyncio.run(session.settle_dad(io, start, ["qfe0"]))
    assert io.count == 3 and not any(a.tentative for a in out.addresses)
    # Nothing pending: no read at all.
    io2 = _DadKernel(state, reads=0)
    assert asyncio.run(session.settle_dad(io2, state, ["qfe0"])) is state and io2.count == 0
    # A link up without its link-local yet is pending too; a duplicate ends the wait at DAD_WAIT.
    monkeypatch.setattr(session, "DAD_WAIT", 0.02)
    bare = replace(state, addresses=tuple(a for a in state.addresses if not a.kernel_owned))
    io3 = _DadKernel(bare, reads=0)
    asyncio.run(session.settle_dad(io3, bare, ["qfe0"]))
    assert io3.count >= 1


def test_boot_of_an_ipv6_only_root_in_sync_afterwards(tmp_path: Path) -> None:
    root = tmp_path
    (root / "etc").mkdir()
    (root / "etc" / "hostname6.qfe0").write_text("-failover group prod up\naddif 2001:db8::100/64 up\n")
    (root / "etc" / "hostname6.qfe1").write_text("-failover group prod standby up\n")
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"))
    result = asyncio.run(bootfiles.boot(kernel, root))
    assert result.failures == [] and result.configured == {V6: ["qfe0", "qfe1"]}
    check = asyncio.run(bootfiles.boot(kernel, root, dry_run=True))
    assert check.in_sync
    view = merge(kernel.state(), Store(root).load().interfaces)
    assert render(view, family=V6).count("NOFAILOVER") == 2
    assert "INACTIVE" in render(view, ifname="qfe1", family=V6)
