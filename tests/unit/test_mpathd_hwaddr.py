"""Duplicate hardware addresses in a Solaris 11 group (illumos ``mpd_tables.c``, reference §7.1).

The pure rules of ``ipmp.mpathd.hwaddr`` first, then the machine in the
simulator of ``mpathd_sim``: a MAC change is seen at the next rescan, the
duplicate goes offline (its data addresses moved as an offline moves them),
and comes back when its address is unique again.  Times are simulated.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from ipmp.admin import ipmpstat_rows
from ipmp.model import Config, Family, Interface
from ipmp.mpathd import hwaddr
from ipmp.mpathd.codes import IPMP_EHWADDRDUP, MPATHD_SUCCESS, errmsg
from ipmp.mpathd.phyint import Phyint, State
from ipmp.mpathd.snapshot import from_wire, to_wire
from tests.unit.mpathd_sim import GROUP, Sim, data_ip, make_group, placement

MAC0 = "02:00:5e:00:53:00"
MAC1 = "02:00:5e:00:53:01"
MAC2 = "02:00:5e:00:53:02"
#: Every NIC of a group sees a MAC change within one rescan, plus the apply.
SCAN = 2.0


def offlining(name: str) -> str:
    return f"IP interface {name} has a hardware address which is not unique in group {GROUP}; offlining"


def onlining(name: str) -> str:
    return f"IP interface {name} now has a unique hardware address in group {GROUP}; onlining"


# -- the pure rules ------------------------------------------------------------------------


def pi(name: str, mac: str | None, state: State = State.RUNNING, *, dup: bool = False,
       group: str = GROUP) -> Phyint:
    return Phyint(name, group, state, link_up=True, since=0.0, hwaddr=mac, hwaddrdup=dup)


def test_lookup_skips_the_admins_offline_and_counts_a_duplicate_unless_online_only() -> None:
    me = pi("a", MAC0)
    admin = pi("b", MAC0, State.OFFLINE)
    assert hwaddr.lookup_hwaddr(me, [me, admin], online_only=False) is None
    dup = pi("c", MAC0, State.OFFLINE, dup=True)
    assert hwaddr.lookup_hwaddr(me, [me, admin, dup], online_only=False) is dup
    assert hwaddr.lookup_hwaddr(me, [me, admin, dup], online_only=True) is None
    failed = pi("d", MAC0.upper(), State.FAILED)  # a failed member is still online; spelling does not matter
    assert hwaddr.lookup_hwaddr(me, [me, failed], online_only=True) is failed


def test_lookup_stays_in_the_group_and_ignores_the_anonymous_group_and_missing_addresses() -> None:
    me = pi("a", MAC0)
    assert hwaddr.lookup_hwaddr(me, [me, pi("b", MAC0, group="other")], online_only=False) is None
    anon = pi("a", MAC0, group="")
    assert hwaddr.lookup_hwaddr(anon, [anon, pi("b", MAC0, group="")], online_only=False) is None
    none = pi("a", None)
    assert hwaddr.lookup_hwaddr(none, [none, pi("b", None)], online_only=False) is None


def test_the_first_to_join_stays_and_the_later_ones_go() -> None:
    a, b, c, d = pi("a", MAC0), pi("b", MAC1), pi("c", MAC0), pi("d", MAC0)
    assert hwaddr.to_offline([a, b, c, d]) == [c, d]
    assert hwaddr.to_offline([c, b, a]) == [a]


def test_bring_back_checks_against_the_online_members_one_at_a_time() -> None:
    # The keeper left: the first duplicate comes back, the second stays its duplicate.
    d1 = pi("d1", MAC0, State.OFFLINE, dup=True)
    d2 = pi("d2", MAC0, State.OFFLINE, dup=True)
    admin = pi("x", MAC1, State.OFFLINE)
    assert hwaddr.to_bring_back([admin, d1, d2], rule=True) == [d1]
    keeper = pi("k", MAC0)
    assert hwaddr.to_bring_back([keeper, d1, d2], rule=True) == []
    # Without the rule (no IPMP interface any more) every duplicate comes back.
    assert hwaddr.to_bring_back([keeper, d1, d2, admin], rule=False) == [d1, d2]


def test_a_change_to_a_taken_address_offlines_the_one_that_changed() -> None:
    a, b = pi("a", MAC0), pi("b", MAC0)
    assert hwaddr.offline_on_change(a, [a, b])
    b.hwaddr = MAC1
    assert not hwaddr.offline_on_change(a, [a, b])
    already = pi("c", MAC0, State.OFFLINE, dup=True)
    assert not hwaddr.offline_on_change(already, [a, already])


# -- the machine ---------------------------------------------------------------------------


def solaris11(config: Config, macs: dict[str, str]) -> Config:
    """``config`` with MACs and the group's Solaris 11 IPMP interface (its record in the store).

    The data addresses become the IPMP interface's, bound to the members
    (``Logical.ipmp_unit``), numbered in member order.
    """
    out = config
    units = itertools.count()
    for name, mac in macs.items():
        itf = out.get(name)
        assert itf is not None
        logicals = tuple(replace(lg, ipmp_unit=next(units)) if lg.is_data else lg for lg in itf.logicals)
        out = out.with_interface(replace(itf, mac=mac, logicals=logicals))
    return out.with_interface(Interface(GROUP, index=50, plumbed=frozenset({Family.INET}), group=GROUP,
                                        ipmp=True))


def sim_of(config: Config, **kw: object) -> Sim:
    sim = Sim(config, scan_interval=SCAN, **kw)  # type: ignore[arg-type]
    sim.start()
    sim.advance(3.0)
    return sim


def set_mac(sim: Sim, name: str, mac: str) -> None:
    """``ip link set NAME address MAC``: the kernel changes, the daemon hears of it at its rescan."""
    sim.truth = sim.truth.with_interface(replace(sim.itf(name), mac=mac))
    sim.advance(SCAN + 0.5)


def flags(sim: Sim, name: str) -> str:
    snap = from_wire(to_wire(sim.machine.snapshot()))  # as ipmpstat reads it
    return ipmpstat_rows._flags(snap.interfaces[name], {})


def test_a_mac_made_duplicate_is_offlined_its_data_moved_and_onlined_when_unique() -> None:
    sim = sim_of(solaris11(make_group(2), {"qfe0": MAC0, "qfe1": MAC1}))
    assert sim.state("qfe1") is State.RUNNING
    set_mac(sim, "qfe1", MAC0)
    assert offlining("qfe1") in sim.messages("err")
    assert sim.state("qfe1") is State.OFFLINE and sim.state("qfe0") is State.RUNNING
    assert sim.machine.snapshot().interfaces["qfe1"].state == "offline"
    assert flags(sim, "qfe1").endswith("h") and not flags(sim, "qfe0").endswith("h")
    assert sim.itf("qfe1").offline
    assert sim.home_of(data_ip(1)) == "qfe0"  # moved away, as an offline moves it
    assert not sim.machine.phyints["qfe1"].instances  # no probing while offline
    assert all(lg.up for lg in sim.itf("qfe1").logicals if lg.is_test)  # test addresses untouched

    set_mac(sim, "qfe1", MAC1)
    assert onlining("qfe1") in sim.messages("err")
    assert sim.state("qfe1") is State.RUNNING and not sim.itf("qfe1").offline
    assert flags(sim, "qfe1") == "-------"
    sim.advance(3.0)
    # Active again, it takes its share of the IPMP interface's addresses (ipmp_ill_activate).
    assert sorted(placement(sim.truth).values()) == ["qfe0", "qfe1"]
    assert sim.machine.phyints["qfe1"].instances  # probing again


def test_the_nic_that_changes_its_mac_goes_even_if_it_was_there_first() -> None:
    sim = sim_of(solaris11(make_group(2), {"qfe0": MAC0, "qfe1": MAC1}))
    set_mac(sim, "qfe0", MAC1)
    assert offlining("qfe0") in sim.messages("err")
    assert sim.state("qfe0") is State.OFFLINE and sim.state("qfe1") is State.RUNNING
    assert sim.home_of(data_ip(0)) == "qfe1"


def test_duplicates_at_start_keep_the_first_in_kernel_order() -> None:
    sim = sim_of(solaris11(make_group(3), {"qfe0": MAC0, "qfe1": MAC0, "qfe2": MAC0}))
    assert [sim.state(n) for n in ("qfe0", "qfe1", "qfe2")] == [State.RUNNING, State.OFFLINE, State.OFFLINE]
    assert sim.messages("err").count(offlining("qfe1")) == 1
    assert sim.messages("err").count(offlining("qfe2")) == 1
    assert sim.home_of(data_ip(1)) == sim.home_of(data_ip(2)) == "qfe0"


def test_a_joining_duplicate_is_offlined_not_the_member_already_there() -> None:
    config = solaris11(make_group(3), {"qfe0": MAC0, "qfe1": MAC1, "qfe2": MAC2})
    newcomer = config.get("qfe0")
    assert newcomer is not None
    sim = sim_of(Config(tuple(i for i in config.interfaces if i.name != "qfe0")))
    sim.plug(replace(newcomer, mac=MAC1))  # qfe0 (the lowest index) joins with qfe1's address
    sim.advance(1.0)
    assert sim.state("qfe0") is State.OFFLINE and sim.state("qfe1") is State.RUNNING
    assert offlining("qfe0") in sim.messages("err")


def test_a_solaris10_group_tolerates_duplicates() -> None:
    """No IPMP interface: the group is configured the Solaris 10 way, which only documented the rule."""
    config = make_group(2)
    for name in ("qfe0", "qfe1"):
        itf = config.get(name)
        assert itf is not None
        config = config.with_interface(replace(itf, mac=MAC0))
    sim = sim_of(config)
    sim.advance(2 * SCAN)
    assert sim.state("qfe1") is State.RUNNING and sim.state("qfe0") is State.RUNNING
    assert not [m for m in sim.messages() if "hardware address" in m]


def test_if_mpadm_r_cannot_undo_a_duplicate_offline() -> None:
    sim = sim_of(solaris11(make_group(2), {"qfe0": MAC0, "qfe1": MAC0}))
    assert sim.state("qfe1") is State.OFFLINE
    reply = sim.undo_offline("qfe1")
    assert reply is not None and reply.mpathd_error == IPMP_EHWADDRDUP
    assert errmsg(reply.mpathd_error) == "interface has duplicate hardware address"
    assert sim.state("qfe1") is State.OFFLINE and sim.machine.phyints["qfe1"].hwaddrdup


def test_the_admins_offline_of_the_keeper_brings_the_duplicate_back_and_r_then_is_refused() -> None:
    """illumos ``phyint_offline``: the keeper offlined by the admin lets its duplicate online;
    ``if_mpadm -r`` of the keeper then meets an online twin and is refused, flagged ``h``."""
    sim = sim_of(solaris11(make_group(3), {"qfe0": MAC0, "qfe1": MAC0, "qfe2": MAC2}))
    assert sim.state("qfe1") is State.OFFLINE
    reply = sim.offline("qfe0")
    assert reply is not None and reply.mpathd_error == MPATHD_SUCCESS
    sim.advance(1.0)
    assert sim.state("qfe0") is State.OFFLINE and not sim.machine.phyints["qfe0"].hwaddrdup
    assert sim.state("qfe1") is State.RUNNING and onlining("qfe1") in sim.messages("err")
    assert not flags(sim, "qfe0").endswith("h")  # the admin's offline is no duplicate's
    reply = sim.undo_offline("qfe0")
    assert reply is not None and reply.mpathd_error == IPMP_EHWADDRDUP
    assert sim.state("qfe0") is State.OFFLINE and flags(sim, "qfe0").endswith("h")
    # From now on it comes back by itself once its address is unique.
    set_mac(sim, "qfe0", MAC1)
    assert sim.state("qfe0") is State.RUNNING and onlining("qfe0") in sim.messages("err")


def test_an_admin_offline_is_not_undone_by_the_address_becoming_unique() -> None:
    sim = sim_of(solaris11(make_group(2), {"qfe0": MAC0, "qfe1": MAC1}))
    reply = sim.offline("qfe1")
    assert reply is not None and reply.mpathd_error == MPATHD_SUCCESS
    sim.advance(1.0)
    set_mac(sim, "qfe1", MAC2)
    sim.advance(2 * SCAN)
    assert sim.state("qfe1") is State.OFFLINE
    assert not [m for m in sim.messages() if "hardware address" in m]


def test_the_keeper_leaving_the_group_brings_its_duplicate_back() -> None:
    sim = sim_of(solaris11(make_group(3), {"qfe0": MAC0, "qfe1": MAC0, "qfe2": MAC2}))
    assert sim.state("qfe1") is State.OFFLINE
    sim.truth = sim.truth.with_interface(replace(sim.itf("qfe0"), group=""))  # untracked from now on
    sim.advance(SCAN + 0.5)
    assert "qfe0" not in sim.machine.phyints
    assert sim.state("qfe1") is State.RUNNING and onlining("qfe1") in sim.messages("err")


def test_a_failed_keeper_still_holds_its_address_and_the_duplicate_stays_offline() -> None:
    """A FAILED member is not OFFLINE: illumos counts it (``phyint_lookup_hwaddr``)."""
    sim = sim_of(solaris11(make_group(3), {"qfe0": MAC0, "qfe1": MAC0, "qfe2": MAC2}))
    sim.link("qfe0", False)
    sim.advance(2 * SCAN)
    assert sim.state("qfe0") is State.FAILED
    assert sim.state("qfe1") is State.OFFLINE and sim.machine.phyints["qfe1"].hwaddrdup
    sim.link("qfe0", True)
    sim.advance(2 * SCAN)
    assert sim.state("qfe0") is State.RUNNING and sim.state("qfe1") is State.OFFLINE


def test_losing_the_ipmp_interface_brings_the_duplicates_back() -> None:
    sim = sim_of(solaris11(make_group(2), {"qfe0": MAC0, "qfe1": MAC0}))
    assert sim.state("qfe1") is State.OFFLINE
    sim.truth = Config(tuple(i for i in sim.truth.interfaces if not i.ipmp))
    sim.advance(SCAN + 0.5)
    assert sim.state("qfe1") is State.RUNNING and onlining("qfe1") in sim.messages("err")


def test_a_restart_takes_a_stored_offline_with_an_online_twin_for_a_duplicate() -> None:
    """After a restart the store says OFFLINE only: with an online twin it is the duplicate's (as
    illumos at start-up), so it comes back once unique."""
    config = solaris11(make_group(2), {"qfe0": MAC0, "qfe1": MAC0})
    qfe1 = config.get("qfe1")
    assert qfe1 is not None
    sim = sim_of(config.with_interface(replace(qfe1, offline=True)))
    assert sim.state("qfe1") is State.OFFLINE and sim.machine.phyints["qfe1"].hwaddrdup
    set_mac(sim, "qfe1", MAC1)
    assert sim.state("qfe1") is State.RUNNING
