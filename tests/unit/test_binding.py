"""Solaris 11: the binding of an IPMP interface's data addresses to its members.

The pure rules (``ipmp.config.binding``, illumos ``ipmp.c``
``ipmp_ill_deactivate`` / ``ipmp_ill_activate`` / ``ipmp_illgrp_min_ill`` /
``ipmp_illgrp_max_ill``) and the daemon driving them (``Machine`` in the
simulator of ``mpathd_sim``): which member holds each address after a
failure, a repair, an offline, with standbys and FAILBACK=no, and the
Clearview log lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from ipaddress import IPv4Interface, IPv6Interface

from ipmp.config import binding
from ipmp.model import Config, Family, Interface, Logical
from ipmp.mpathd import failover
from ipmp.mpathd.codes import MPATHD_MIN_RED_ERROR, MPATHD_SUCCESS
from ipmp.mpathd.phyint import State
from tests.unit.mpathd_sim import Sim, make_nic

V4, V6 = Family.INET, Family.INET6
GROUP = "ipmp0"


def data(k: int, unit: int, ipmp_unit: int | None = None, *, up: bool = True) -> Logical:
    """Data address 198.51.100.1k of the IPMP interface, as held at ``unit``."""
    return Logical(V4, unit, IPv4Interface(f"198.51.100.{10 + k}/24"), up=up,
                   ipmp_unit=k if ipmp_unit is None else ipmp_unit,
                   addrobj="ipmp0/v4" if k == 0 else f"ipmp0/v4{chr(ord('a') + k - 1)}")


def data6(k: int, unit: int) -> Logical:
    return Logical(V6, unit, IPv6Interface(f"2001:db8::{10 + k}/64"), up=True, ipmp_unit=k,
                   addrobj=f"ipmp0/v6{'' if k == 0 else chr(ord('a') + k - 1)}")


def test_addr(n: int) -> Logical:
    return Logical(V4, 0, IPv4Interface(f"198.51.100.{200 + n}/24"), up=True, deprecated=True,
                   nofailover=True)


test_addr.__test__ = False  # type: ignore[attr-defined]


def member(n: int, held: Iterable[Logical] = (), *, standby: bool = False, failed: bool = False,
           offline: bool = False, held_inactive: bool = False, v6: bool = False) -> Interface:
    return Interface(f"net{n}", index=n + 2, plumbed=frozenset({V4, V6} if v6 else {V4}), link_up=True,
                     running=True, group=GROUP, standby=standby, failed=failed, offline=offline,
                     held_inactive=held_inactive, logicals=(test_addr(n), *held))


def record(*unbound: Logical) -> Interface:
    return Interface(GROUP, index=20, plumbed=frozenset({V4, V6}), group=GROUP, ipmp=True,
                     logicals=tuple(unbound))


def holders(config: Config) -> dict[int, str]:
    """IPMP unit -> the interface holding it (the record's own name when unbound)."""
    out: dict[int, str] = {}
    for itf in config.interfaces:
        for lg in itf.logicals:
            if itf.ipmp and lg.is_data:
                out[lg.unit] = itf.name
            elif lg.ipmp_unit is not None:
                assert lg.ipmp_unit not in out
                out[lg.ipmp_unit] = itf.name
    return out


def counts(config: Config) -> dict[str, int]:
    return {m.name: len(binding.bound_logicals(m, V4)) for m in config.group_members(GROUP)}


def everyone(_: str) -> bool:
    return True


# -- the kernel's rules ---------------------------------------------------------------------


def test_the_first_active_member_binds_every_unbound_address() -> None:
    cfg = Config((member(0), member(1), record(*(data(k, k) for k in range(3)))))
    out = binding.rebind(cfg, GROUP, (), ("net0",))
    assert holders(out) == {0: "net0", 1: "net0", 2: "net0"}
    rec, net0 = out.get(GROUP), out.get("net0")
    # The IPMP interface keeps an address-less unit 0, as ipadm leaves it.
    assert rec is not None and rec.logicals == (Logical(V4, 0),) and net0 is not None
    moved = [lg for lg in net0.logicals if lg.ipmp_unit is not None]
    # Each keeps its IPMP unit and address object and takes a free unit on the member.
    assert [(lg.ipmp_unit, lg.addrobj, lg.unit, lg.home) for lg in moved] == [
        (0, "ipmp0/v4", 1, ""), (1, "ipmp0/v4a", 2, ""), (2, "ipmp0/v4b", 3, "")]


def test_addresses_brought_up_with_active_members_go_to_the_fewest_first_on_ties() -> None:
    cfg = Config((member(0), member(1), record(*(data(k, k) for k in range(3)))))
    out = binding.rebind(cfg, GROUP, ("net0", "net1"), ("net0", "net1"))
    assert holders(out) == {0: "net0", 1: "net1", 2: "net0"}


def test_a_failed_members_addresses_go_one_by_one_to_the_fewest() -> None:
    cfg = Config((member(0, [data(0, 1), data(2, 2)]), member(1, [data(1, 1)]), member(2), record()))
    out = binding.rebind(cfg, GROUP, ("net0", "net1", "net2"), ("net1", "net2"))
    # ipmp_ill_deactivate: 0 goes to net2 (none), then 2 to net1 (one each, first wins).
    assert holders(out) == {0: "net2", 1: "net1", 2: "net1"}
    assert counts(out) == {"net0": 0, "net1": 2, "net2": 1}


def test_a_repaired_member_takes_from_the_most_until_level() -> None:
    cfg = Config((member(0), member(1, [data(k, k + 1) for k in range(3)]), member(2, [data(3, 1)]),
                  record()))
    out = binding.rebind(cfg, GROUP, ("net1", "net2"), ("net0", "net1", "net2"))
    # ipmp_ill_activate: net1 (3) gives its newest to net0; then 1 + 1 >= 2: stop.
    assert counts(out) == {"net0": 1, "net1": 2, "net2": 1}
    assert holders(out)[2] == "net0"


def test_activation_rebalances_a_heavy_member() -> None:
    cfg = Config((member(0), member(1, [data(k, k + 1) for k in range(5)]), record()))
    out = binding.rebind(cfg, GROUP, ("net1",), ("net0", "net1"))
    assert counts(out) == {"net0": 2, "net1": 3}
    assert holders(out) == {0: "net1", 1: "net1", 2: "net1", 3: "net0", 4: "net0"}


def test_with_no_active_member_addresses_stay_where_they_are_and_the_next_active_takes_them_all() -> None:
    cfg = Config((member(0, [data(0, 1), data(1, 2)]), member(1), record(data(2, 2))))
    parked = binding.rebind(cfg, GROUP, ("net0",), ())
    assert parked == cfg  # Linux keeps them on the member (binding module doc)
    out = binding.rebind(parked, GROUP, (), ("net1",))
    assert holders(out) == {0: "net1", 1: "net1", 2: "net1"}


def test_test_addresses_down_addresses_and_link_locals_never_move() -> None:
    ll = Logical(V6, 0, IPv6Interface("fe80::1/64"), up=True, kernel_owned=True)
    down = data(1, 2, up=False)
    net0 = member(0, [data(0, 1), down, ll], v6=True)
    cfg = Config((net0, member(1, v6=True), record()))
    out = binding.rebind(cfg, GROUP, ("net0", "net1"), ("net1",))
    left = out.get("net0")
    assert left is not None and set(left.logicals) == {test_addr(0), down, ll}
    assert holders(out)[0] == "net1"


def test_each_family_is_balanced_on_its_own() -> None:
    cfg = Config((member(0, [data(0, 1), data6(0, 1), data6(1, 2)], v6=True), member(1, v6=True), record()))
    out = binding.rebind(cfg, GROUP, ("net0",), ("net0", "net1"))
    # IPv4: one address, 0 + 1 >= 1 -> stays; IPv6: two -> one each.
    net0, net1 = out.get("net0"), out.get("net1")
    assert net0 is not None and net1 is not None
    assert [lg.ipmp_unit for lg in binding.bound_logicals(net0, V4)] == [0]
    assert [lg.ipmp_unit for lg in binding.bound_logicals(net0, V6)] == [0]
    assert [lg.ipmp_unit for lg in binding.bound_logicals(net1, V6)] == [1]


def test_a_group_without_an_ipmp_interface_is_left_alone() -> None:
    cfg = Config((member(0, [data(0, 1)]), member(1)))
    assert binding.rebind(cfg, GROUP, ("net0", "net1"), ("net1",)) == cfg


def test_solaris10_failover_leaves_the_ipmp_interfaces_addresses_alone() -> None:
    plain = Logical(V4, 2, IPv4Interface("198.51.100.99/24"), up=True)
    cfg = Config((member(0, [data(0, 1), plain]), member(1), record()))
    out = failover.fail_over(cfg, "net0", "net1")
    assert holders(out) == {0: "net0"}
    net1 = out.get("net1")
    assert net1 is not None and any(lg.address == plain.address for lg in net1.logicals)


# -- who is active ----------------------------------------------------------------------------


def test_standby_members_are_active_only_below_capacity() -> None:
    cfg = Config((member(0), member(1), member(2, standby=True), record()))
    assert binding.active_members(cfg, GROUP, everyone) == ("net0", "net1")
    failed = cfg.with_interface(member(0, failed=True))
    assert binding.active_members(failed, GROUP, everyone) == ("net1", "net2")
    offline = cfg.with_interface(member(1, offline=True))
    assert binding.active_members(offline, GROUP, everyone) == ("net0", "net2")
    # Not usable per the daemon (link down) counts as not functioning.
    assert binding.active_members(cfg, GROUP, lambda n: n != "net0") == ("net1", "net2")


def test_a_standby_alone_is_active() -> None:
    cfg = Config((member(0, standby=True), record()))
    assert binding.active_members(cfg, GROUP, everyone) == ("net0",)


def test_a_held_member_is_inactive_unless_nobody_else_is_active() -> None:
    cfg = Config((member(0, held_inactive=True), member(1), member(2), record()))
    assert binding.active_members(cfg, GROUP, everyone) == ("net1", "net2")
    alone = cfg.with_interface(member(1, failed=True)).with_interface(member(2, failed=True))
    assert binding.active_members(alone, GROUP, everyone) == ("net0",)
    # phyint_activate_another: the held member takes a failed active one's place...
    assert binding.activate_another(cfg, GROUP, "net1", everyone) == "net0"
    # ... unless an INACTIVE standby can.
    with_standby = cfg.with_interface(member(3, standby=True))
    assert binding.activate_another(with_standby, GROUP, "net1", everyone) is None


def test_rebind_clears_the_hold_of_an_active_member() -> None:
    cfg = Config((member(0, held_inactive=True), member(1, [data(0, 1)], failed=True), record()))
    out = binding.rebind(cfg, GROUP, (), ("net0",))
    net0 = out.get("net0")
    assert net0 is not None and not net0.held_inactive
    assert holders(out) == {0: "net0"}


# -- with no daemon (ipadm) -------------------------------------------------------------------


def test_the_kernel_judges_a_member_by_its_up_addresses_not_by_running() -> None:
    # ipmp_ill_is_active: ill_ipif_up_count > 0; RUNNING is in.mpathd's to turn into FAILED.
    down = replace(member(1), running=False)
    bare = replace(member(2), logicals=(Logical(V4, 0),))
    cfg = Config((member(0), down, bare, record()))
    usable = binding.kernel_usable(cfg)
    assert [usable(n) for n in ("net0", "net1", "net2", "net9")] == [True, True, False, False]
    assert binding.active_members(cfg, GROUP, usable) == ("net0", "net1")


def test_a_leaving_member_gives_its_addresses_to_the_fewest() -> None:
    cfg = Config((member(0, [data(0, 1), data(2, 2)]), member(1, [data(1, 1)]), member(2), record()))
    out = binding.leave(cfg, GROUP, "net0", everyone)
    assert holders(out) == {0: "net2", 1: "net1", 2: "net1"}
    net0 = out.get("net0")
    assert net0 is not None and net0.logicals == (test_addr(0),)


def test_a_leaving_member_with_nobody_active_hands_its_addresses_back_to_the_ipmp_interface() -> None:
    # Not parked: the leaving interface is no member any more (ipmp_ill_leave_illgrp).
    cfg = Config((member(0, [data(0, 1), data(1, 2)]), member(1, failed=True), record(Logical(V4, 0))))
    out = binding.leave(cfg, GROUP, "net0", everyone)
    rec = out.get(GROUP)
    assert rec is not None and [(lg.unit, lg.ipmp_unit, lg.addrobj) for lg in rec.logicals] == [
        (0, None, "ipmp0/v4"), (1, None, "ipmp0/v4a")]
    assert holders(out) == {0: GROUP, 1: GROUP}
    # The next member to become active takes them all (ipmp_ill_activate).
    back = binding.rebind(out.with_interface(member(1)), GROUP, (), ("net1",))
    assert holders(back) == {0: "net1", 1: "net1"}


# -- the daemon -------------------------------------------------------------------------------


def sim_group(count: int = 3, addresses: int = 3, *, standby: Iterable[int] = (), failback: bool = True,
              bound: dict[int, int] | None = None) -> Sim:
    """``count`` members qfe0.. of an IPMP interface ipmp0 with ``addresses`` data addresses,
    unbound (on the record) unless ``bound`` says which member holds which."""
    stand = set(standby)
    nics = [make_nic(n, data=0, standby=n in stand, group=GROUP) for n in range(count)]
    unbound: list[Logical] = []
    for k in range(addresses):
        lg = Logical(V4, k, IPv4Interface(f"192.0.2.{50 + k}/24"), up=True, ipmp_unit=k,
                     addrobj=f"ipmp0/v4{k}")
        if bound is not None and k in bound:
            n = bound[k]
            nics[n] = nics[n].with_logical(Logical(V4, nics[n].free_unit(V4), lg.address, up=True,
                                                   ipmp_unit=k, addrobj=lg.addrobj))
        else:
            unbound.append(lg)
    rec = Interface(GROUP, index=50, plumbed=frozenset({V4}), group=GROUP, ipmp=True, logicals=tuple(unbound))
    sim = Sim(Config((*nics, rec)), failback=failback)
    sim.start()
    sim.advance(2.0)
    return sim


def sim_holders(sim: Sim) -> dict[int, str]:
    return holders(sim.truth)


def test_the_daemon_binds_the_unbound_addresses_at_start_to_the_fewest() -> None:
    sim = sim_group(3, 3)
    assert sim_holders(sim) == {0: "qfe0", 1: "qfe1", 2: "qfe2"}
    assert not sim.lines("Successfully")


def test_a_failure_rebinds_to_the_fewest_and_logs_as_clearview() -> None:
    sim = sim_group(3, 4, bound={0: 0, 1: 0, 2: 1, 3: 2})
    assert sim_holders(sim) == {0: "qfe0", 1: "qfe0", 2: "qfe1", 3: "qfe2"}  # balanced: left alone
    sim.silent("qfe0")
    sim.run_until_log("IP interface failure detected on qfe0 of group ipmp0", 2.0)
    sim.advance(1.0)
    # One by one, oldest bound first: 0 to qfe1 (a tie, the first), then 1 to qfe2 (the fewest).
    assert sim_holders(sim) == {0: "qfe1", 1: "qfe2", 2: "qfe1", 3: "qfe2"}
    assert not sim.lines("NIC failure") and not sim.lines("Successfully")
    sim.silent("qfe0", False)
    sim.run_until_log("IP interface repair detected on qfe0 of group ipmp0", 3.0)
    sim.advance(1.0)
    # ipmp_ill_activate: qfe1 (two, the first of the most) gives its newest to qfe0; no failback home.
    assert sim_holders(sim) == {0: "qfe0", 1: "qfe2", 2: "qfe1", 3: "qfe2"}
    assert not sim.lines("failed back")


def counts_of(sim: Sim) -> dict[str, int]:
    return {m.name: len(binding.bound_logicals(m, V4)) for m in sim.truth.group_members(GROUP)}


def test_failback_no_leaves_the_repaired_member_inactive_until_another_fails() -> None:
    sim = sim_group(2, 2, failback=False)
    sim.silent("qfe0")
    sim.run_until_log("IP interface failure detected on qfe0", 2.0)
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 0, "qfe1": 2}
    sim.silent("qfe0", False)
    sim.run_until_log("IP interface repair detected on qfe0", 3.0)
    sim.advance(2.0)
    assert counts_of(sim) == {"qfe0": 0, "qfe1": 2}
    assert sim.itf("qfe0").inactive and sim.state("qfe0") is State.RUNNING
    sim.silent("qfe1")
    sim.run_until_log("IP interface failure detected on qfe1", 2.0)
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 2, "qfe1": 0}
    assert not sim.itf("qfe0").held_inactive


def test_a_standby_takes_over_and_goes_back_to_inactive() -> None:
    sim = sim_group(2, 2, standby=[1])
    assert counts_of(sim) == {"qfe0": 2, "qfe1": 0} and sim.itf("qfe1").inactive
    sim.silent("qfe0")
    sim.run_until_log("IP interface failure detected on qfe0", 2.0)
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 0, "qfe1": 2}
    sim.silent("qfe0", False)
    sim.run_until_log("IP interface repair detected on qfe0", 3.0)
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 2, "qfe1": 0} and sim.itf("qfe1").inactive


def test_offline_rebinds_and_the_last_active_member_cannot_go() -> None:
    sim = sim_group(2, 2)
    assert counts_of(sim) == {"qfe0": 1, "qfe1": 1}
    reply = sim.offline("qfe0")
    assert reply is not None and reply.mpathd_error == MPATHD_SUCCESS
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 0, "qfe1": 2}
    assert not sim.lines("Successfully")
    refused = sim.offline("qfe1")
    assert refused is not None and refused.mpathd_error == MPATHD_MIN_RED_ERROR
    assert counts_of(sim) == {"qfe0": 0, "qfe1": 2}
    back = sim.undo_offline("qfe0")
    assert back is not None and back.mpathd_error == MPATHD_SUCCESS
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 1, "qfe1": 1}


def test_all_members_failed_keeps_the_addresses_and_the_first_repaired_takes_them() -> None:
    sim = sim_group(2, 2)
    sim.link("qfe0", False)
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 0, "qfe1": 2}
    sim.link("qfe1", False)
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 0, "qfe1": 2}  # nowhere to go: parked
    sim.link("qfe0", True)
    sim.run_until_log("repair detected on qfe0", 3.0)
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 2, "qfe1": 0}


def test_a_member_added_to_the_group_takes_its_share() -> None:
    sim = sim_group(2, 4)
    assert counts_of(sim) == {"qfe0": 2, "qfe1": 2}
    sim.plug(make_nic(2, data=0, group=GROUP))
    sim.advance(2.0)
    # ipmp_ill_activate: from the first with the most, until own + 1 >= max.
    assert counts_of(sim) == {"qfe0": 1, "qfe1": 2, "qfe2": 1}
    assert not sim.lines("Successfully")


def test_a_rescan_moves_nothing_in_the_kernels_balance() -> None:
    sim = sim_group(3, 2)
    before = sim_holders(sim)
    assert before == {0: "qfe0", 1: "qfe1"} and counts_of(sim)["qfe2"] == 0
    sim.advance(12.0)  # rescans: qfe2 active and empty is where the kernel leaves it
    assert sim_holders(sim) == before


def test_offlining_the_active_member_activates_a_held_one() -> None:
    # in.mpathd phyint_offline: "If this interface was active, try to activate another".
    sim = sim_group(2, 2, failback=False)
    sim.silent("qfe0")
    sim.run_until_log("IP interface failure detected on qfe0", 2.0)
    sim.silent("qfe0", False)
    sim.run_until_log("IP interface repair detected on qfe0", 3.0)
    sim.advance(1.0)
    assert sim.itf("qfe0").held_inactive and counts_of(sim) == {"qfe0": 0, "qfe1": 2}
    reply = sim.offline("qfe1")
    assert reply is not None and reply.mpathd_error == MPATHD_SUCCESS
    sim.advance(1.0)
    assert counts_of(sim) == {"qfe0": 2, "qfe1": 0} and not sim.itf("qfe0").held_inactive
