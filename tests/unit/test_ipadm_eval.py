"""``ipadm`` semantics on the Solaris view (ipmp.config.ipadm_eval): pure, every subcommand and refusal."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, ip_interface

import pytest

from ipmp.config.ipadm_db import AddAddress, AddInterface, AddMember, IpadmDb, RemoveMember, apply_edits
from ipmp.config.ipadm_eval import IpadmOutcome, evaluate
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError
from ipmp.model import Config, Environment, Family, Interface, Logical


def nics(*names: str) -> Config:
    return Config(tuple(Interface(n, index=i + 2, running=True, mac=f"02:00:00:00:00:0{i}")
                        for i, n in enumerate(names)))


def run(config: Config, sub: str, operand: str = "", **kw: object) -> Config:
    return evaluate(config, IpadmCommand(sub, operand, **kw)).config  # type: ignore[arg-type]


def refused(config: Config, sub: str, operand: str = "", **kw: object) -> str:
    with pytest.raises(IpadmError) as info:
        evaluate(config, IpadmCommand(sub, operand, **kw))  # type: ignore[arg-type]
    return info.value.message


def group_of_two() -> Config:
    c = run(run(nics("net0", "net1", "net2"), "create-ip", "net0"), "create-ip", "net1")
    return run(c, "create-ipmp", "ipmp0", interfaces=("net0,net1",))


def holders(config: Config, address: str) -> list[tuple[str, int, int | None]]:
    want = ip_interface(address)
    return [(i.name, lg.unit, lg.ipmp_unit) for i in config.interfaces for lg in i.logicals
            if lg.address == want]


# ---------------------------------------------------------------- interfaces


def test_create_ip_plumbs_both_families_and_persists() -> None:
    out = evaluate(nics("net0"), IpadmCommand("create-ip", "net0"))
    itf = out.config.get("net0")
    assert itf is not None and itf.plumbed == {Family.INET, Family.INET6} and itf.link_up
    assert out.edits == (AddInterface("net0", False, frozenset({Family.INET, Family.INET6})),)
    assert ("net0", Family.INET) in out.touched and ("net0", Family.INET6) in out.touched


def test_create_ip_temporary_writes_nothing_persistent() -> None:
    assert evaluate(nics("net0"), IpadmCommand("create-ip", "net0", temporary=True)).edits == ()


def test_create_ip_refusals() -> None:
    assert refused(nics("net0"), "create-ip", "net9") == \
        "ipadm: cannot create interface net9: Could not open DLPI link"
    once = run(nics("net0"), "create-ip", "net0")
    assert refused(once, "create-ip", "net0") == \
        "ipadm: cannot create interface net0: Interface already exists"
    assert refused(nics("net0"), "create-ip", "n" * 32 + "0").endswith(": Invalid argument provided")


def test_create_ipmp_is_an_ipmp_interface_named_as_its_group() -> None:
    c = group_of_two()
    ipmp0 = c.get("ipmp0")
    assert ipmp0 is not None and ipmp0.ipmp and ipmp0.group == "ipmp0"
    assert ipmp0.plumbed == {Family.INET, Family.INET6}
    assert [m.name for m in c.group_members("ipmp0")] == ["net0", "net1"]
    # i_ipadm_add_ipmp_bringup_underif: an address-less member is UP (0.0.0.0).
    unit0 = c.get("net0").logical(Family.INET, 0)  # type: ignore[union-attr]
    assert unit0 is not None and unit0.up and unit0.address is None


def test_create_ipmp_edits_in_order() -> None:
    c = run(run(nics("net0", "net1"), "create-ip", "net0"), "create-ip", "net1")
    out = evaluate(c, IpadmCommand("create-ipmp", "ipmp0", interfaces=("net0", "net1")))
    assert out.edits == (AddInterface("ipmp0", True, frozenset({Family.INET, Family.INET6})),
                         AddMember("ipmp0", "net0"), AddMember("ipmp0", "net1"))
    assert out.start_mpathd


@pytest.mark.parametrize(("name", "reason"), [
    ("i" * 31 + "0", "Invalid argument provided"),   # LIFNAMSIZ - 1 = 31 characters at most
    ("ipmp", "Invalid interface name"),              # no PPA
    ("0", "Invalid interface name"),
    ("net0", "Interface already exists"),
])
def test_create_ipmp_refuses_bad_names(name: str, reason: str) -> None:
    c = run(nics("net0"), "create-ip", "net0")
    assert refused(c, "create-ipmp", name) == f"ipadm: cannot create interface {name}: {reason}"


def test_a_31_character_name_is_accepted() -> None:
    assert run(nics("net0"), "create-ipmp", "i" * 30 + "0").get("i" * 30 + "0") is not None


def test_add_ipmp_refusals() -> None:
    c = group_of_two()
    c = run(c, "create-ipmp", "ipmp1")
    c = run(c, "create-ip", "net2")
    assert refused(c, "add-ipmp", "ipmp1", interfaces=("net0",)) == \
        "ipadm: cannot add net0 to ipmp1: Already in an IPMP group"
    assert refused(c, "add-ipmp", "ipmp1", interfaces=("ipmp0",)) == \
        "ipadm: cannot add ipmp0 to ipmp1: Invalid argument provided"
    assert refused(c, "add-ipmp", "ipmp1", interfaces=("net9",)) == \
        "ipadm: cannot add net9 to ipmp1: No such interface"
    assert refused(c, "add-ipmp", "ipmp9", interfaces=("net2",)) == \
        "ipadm: cannot add net2 to ipmp9: No such IPMP interface"
    assert refused(c, "add-ipmp", "net0", interfaces=("net2",)) == \
        "ipadm: cannot add net2 to net0: Not an IPMP interface"


def test_add_ipmp_refuses_a_member_with_dhcp_addresses() -> None:
    c = run(run(nics("net0"), "create-ip", "net0"), "create-ipmp", "ipmp0")
    with pytest.raises(IpadmError) as info:
        evaluate(c, IpadmCommand("add-ipmp", "ipmp0", interfaces=("net0",)), managed={"net0"})
    assert info.value.message == \
        "ipadm: cannot add net0 to ipmp0: Underlying interface has addresses managed by dhcpagent(1M)"


def test_add_ipmp_with_several_warns_for_one_and_adds_the_others() -> None:
    c = run(run(nics("net0"), "create-ip", "net0"), "create-ipmp", "ipmp0")
    out = evaluate(c, IpadmCommand("add-ipmp", "ipmp0", interfaces=("net0", "net9")))
    assert out.stderr == ("ipadm: warning: cannot add net9 to ipmp0: No such interface",)
    assert [m.name for m in out.config.group_members("ipmp0")] == ["net0"]
    assert refused(c, "add-ipmp", "ipmp0", interfaces=("net8", "net9")) == \
        "ipadm: cannot add any of the interfaces to ipmp0"


def test_add_ipmp_makes_the_members_addresses_test_addresses() -> None:
    c = run(nics("net0"), "create-ip", "net0")
    c = run(c, "create-addr", "net0", address="198.51.100.5/24")
    c = run(run(c, "create-ipmp", "ipmp0"), "add-ipmp", "ipmp0", interfaces=("net0",))
    lg = next(lg for lg in c.get("net0").logicals if lg.address is not None)  # type: ignore[union-attr]
    assert lg.nofailover and lg.deprecated and lg.ipmp_unit is None


# ---------------------------------------------------------------- addresses


def test_data_address_binds_to_the_member_with_the_fewest() -> None:
    c = group_of_two()
    out = evaluate(c, IpadmCommand("create-addr", "ipmp0", address="192.0.2.10/24"))
    assert out.stdout == ("ipmp0/v4",)
    assert holders(out.config, "192.0.2.10/24") == [("net0", 1, 0)]
    assert out.edits == (AddAddress("ipmp0/v4", "ipmp0", ip_interface("192.0.2.10/24")),)
    out2 = evaluate(out.config, IpadmCommand("create-addr", "ipmp0", address="192.0.2.11/24"))
    assert out2.stdout == ("ipmp0/v4a",)
    assert holders(out2.config, "192.0.2.11/24") == [("net1", 1, 1)]
    out3 = evaluate(out2.config, IpadmCommand("create-addr", "ipmp0", address="192.0.2.12/24"))
    assert out3.stdout == ("ipmp0/v4b",)
    assert holders(out3.config, "192.0.2.12/24") == [("net0", 2, 2)]
    lg = next(lg for lg in out3.config.get("net0").logicals if lg.addrobj == "ipmp0/v4")  # type: ignore[union-attr]
    assert lg.up and not lg.nofailover and not lg.deprecated


def test_named_addrobj_is_not_printed_and_may_not_be_taken_twice() -> None:
    c = group_of_two()
    out = evaluate(c, IpadmCommand("create-addr", "ipmp0/data1", address="192.0.2.10/24"))
    assert out.stdout == ()
    assert refused(out.config, "create-addr", "ipmp0/data1", address="192.0.2.11/24") == \
        "ipadm: cannot create address: Address object already exists"
    assert refused(out.config, "create-addr", "ipmp0", address="192.0.2.10/24") == \
        "ipadm: cannot create address: Address already in use"
    assert refused(out.config, "create-addr", "net7", address="192.0.2.20/24") == \
        "ipadm: cannot create address: No such interface"


def test_data_address_with_no_member_stays_on_the_ipmp_record_and_binds_when_one_joins() -> None:
    c = run(run(nics("net0"), "create-ip", "net0"), "create-ipmp", "ipmp0")
    c = run(c, "create-addr", "ipmp0", address="192.0.2.10/24")
    assert holders(c, "192.0.2.10/24") == [("ipmp0", 0, None)]
    c = run(c, "add-ipmp", "ipmp0", interfaces=("net0",))
    assert holders(c, "192.0.2.10/24") == [("net0", 1, 0)]
    ipmp0 = c.get("ipmp0")
    assert ipmp0 is not None and ipmp0.logical(Family.INET, 0) == Logical(Family.INET, 0)


def test_address_on_a_member_is_a_test_address() -> None:
    c = group_of_two()
    out = evaluate(c, IpadmCommand("create-addr", "net0", address="192.0.2.50/24"))
    assert out.stdout == ("net0/v4",)
    lg = out.config.get("net0").logical(Family.INET, 0)  # type: ignore[union-attr]
    assert lg is not None and lg.nofailover and lg.deprecated and lg.up and lg.addrobj == "net0/v4"


def test_prefix_defaults_from_netmasks_then_class() -> None:
    c = run(nics("net0"), "create-ip", "net0")
    env = Environment(netmasks=((IPv4Address("192.0.2.0"), IPv4Address("255.255.255.128")),))
    out = evaluate(c, IpadmCommand("create-addr", "net0", address="192.0.2.10"), env=env)
    assert holders(out.config, "192.0.2.10/25")
    out = evaluate(c, IpadmCommand("create-addr", "net0", address="10.1.2.3"))
    assert holders(out.config, "10.1.2.3/8")


def test_delete_addr() -> None:
    c = run(group_of_two(), "create-addr", "ipmp0", address="192.0.2.10/24")
    c = run(c, "delete-addr", "ipmp0/v4")
    assert holders(c, "192.0.2.10/24") == []
    assert refused(c, "delete-addr", "ipmp0/v4") == "ipadm: cannot delete address: Object not found"


# ---------------------------------------------------------------- membership


def test_remove_ipmp_keeps_test_addresses_as_plain_and_rebinds_data() -> None:
    c = group_of_two()
    c = run(c, "create-addr", "net0", address="192.0.2.50/24")
    c = run(c, "create-addr", "ipmp0", address="192.0.2.10/24")
    # ipmp_illgrp_min_ill counts bound data addresses only: the test address does not count.
    assert holders(c, "192.0.2.10/24") == [("net0", 1, 0)]
    c = run(c, "create-addr", "ipmp0", address="192.0.2.11/24")
    c = run(c, "remove-ipmp", "ipmp0", interfaces=("net0",))
    net0 = c.get("net0")
    assert net0 is not None and net0.group == ""
    test = net0.logical(Family.INET, 0)
    assert test is not None and not test.nofailover and not test.deprecated
    assert {h[0] for a in ("192.0.2.10/24", "192.0.2.11/24") for h in holders(c, a)} == {"net1"}


def test_remove_the_last_member_with_data_addresses_is_refused() -> None:
    c = run(run(nics("net0"), "create-ip", "net0"), "create-ipmp", "ipmp0", interfaces=("net0",))
    c = run(c, "create-addr", "ipmp0", address="192.0.2.10/24")
    assert refused(c, "remove-ipmp", "ipmp0", interfaces=("net0",)) == \
        "ipadm: cannot remove net0 from ipmp0: Interface already in use"
    assert refused(c, "remove-ipmp", "ipmp0", interfaces=("net9",)) == \
        "ipadm: cannot remove net9 from ipmp0: No such interface"


def test_remove_a_non_member() -> None:
    c = run(group_of_two(), "create-ip", "net2")
    assert refused(c, "remove-ipmp", "ipmp0", interfaces=("net2",)) == \
        "ipadm: cannot remove net2 from ipmp0: Interface not in given IPMP group"


def test_delete_ipmp_needs_force_with_members() -> None:
    c = run(group_of_two(), "create-addr", "ipmp0", address="192.0.2.10/24")
    assert refused(c, "delete-ipmp", "ipmp0") == \
        "ipadm: cannot delete IPMP interface ipmp0: IPMP group is not empty"
    out = evaluate(c, IpadmCommand("delete-ipmp", "ipmp0", force=True))
    assert out.config.get("ipmp0") is None
    assert holders(out.config, "192.0.2.10/24") == []
    assert all(not i.group for i in out.config.interfaces)
    assert RemoveMember("ipmp0", "net0") in out.edits
    assert refused(c, "delete-ipmp", "net0") == \
        "ipadm: cannot delete IPMP interface net0: Not an IPMP interface"


def test_delete_ip_of_a_member_rebinds_its_data_addresses() -> None:
    c = run(group_of_two(), "create-addr", "ipmp0", address="192.0.2.10/24")
    assert holders(c, "192.0.2.10/24")[0][0] == "net0"
    c = run(c, "delete-ip", "net0")
    assert holders(c, "192.0.2.10/24") == [("net1", 1, 0)]
    assert not c.get("net0").plumbed  # type: ignore[union-attr]


# ---------------------------------------------------------------- properties


def test_standby_on_moves_the_data_addresses_off_and_off_takes_some_back() -> None:
    c = group_of_two()
    for n in range(4):
        c = run(c, "create-addr", "ipmp0", address=f"192.0.2.{10 + n}/24")
    c = run(c, "set-ifprop", "net1", properties=(("standby", "on"),), protocol="ip")
    assert c.get("net1").standby  # type: ignore[union-attr]
    assert {holders(c, f"192.0.2.{10 + n}/24")[0][0] for n in range(4)} == {"net0"}
    c = run(c, "reset-ifprop", "net1", properties=(("standby", None),), protocol="ip")
    owners = [holders(c, f"192.0.2.{10 + n}/24")[0][0] for n in range(4)]
    assert owners.count("net0") == 2 and owners.count("net1") == 2  # ipmp_ill_activate: until own + 1 >= max


def with_flags(config: Config, name: str, **flags: bool) -> Config:
    itf = config.get(name)
    assert itf is not None
    return config.with_interface(replace(itf, **flags))  # type: ignore[arg-type]


def three_with_a_standby() -> Config:
    c = nics("net0", "net1", "net2")
    for n in ("net0", "net1", "net2"):
        c = run(c, "create-ip", n)
    c = run(c, "create-ipmp", "ipmp0", interfaces=("net0,net1,net2",))
    return run(c, "set-ifprop", "net2", properties=(("standby", "on"),), protocol="ip")


def test_a_standby_stands_in_for_a_failed_member_as_in_mpathd_has_it() -> None:
    # in.mpathd phyint_standby_refresh_inactive: standbys are active while the
    # group has fewer active members than non-STANDBY ones, whoever else is up
    # (ipmp.config.binding, the daemon's rule too).
    c = three_with_a_standby()
    c = run(c, "create-addr", "ipmp0", address="192.0.2.10/24")
    c = run(c, "create-addr", "ipmp0", address="192.0.2.11/24")
    assert [holders(c, f"192.0.2.1{n}/24")[0][0] for n in range(2)] == ["net0", "net1"]
    c = run(with_flags(c, "net0", failed=True), "create-addr", "ipmp0", address="192.0.2.12/24")
    c = run(c, "create-addr", "ipmp0", address="192.0.2.13/24")
    # net0's address went to net2 (the fewest), then the new ones one each, ties to the first.
    owners = [holders(c, f"192.0.2.1{n}/24")[0][0] for n in range(4)]
    assert owners == ["net2", "net1", "net1", "net2"]


def test_a_member_without_carrier_still_binds_as_the_kernel_has_it() -> None:
    # ipmp_ill_is_active does not look at RUNNING: in.mpathd marks FAILED.
    c = group_of_two()
    c = with_flags(c, "net0", running=False)
    assert holders(run(c, "create-addr", "ipmp0", address="192.0.2.10/24"), "192.0.2.10/24") == \
        [("net0", 1, 0)]


def test_removing_the_last_active_member_hands_its_addresses_back_to_the_ipmp_interface() -> None:
    c = run(group_of_two(), "create-addr", "ipmp0", address="192.0.2.10/24")
    c = with_flags(c, "net1", failed=True)
    out = evaluate(c, IpadmCommand("remove-ipmp", "ipmp0", interfaces=("net0",)))
    assert holders(out.config, "192.0.2.10/24") == [("ipmp0", 0, None)]
    assert ("net0", Family.INET) in out.touched


def test_group_property_is_add_ipmp() -> None:
    c = run(run(nics("net0"), "create-ip", "net0"), "create-ipmp", "ipmp0")
    out = evaluate(c, IpadmCommand("set-ifprop", "net0", properties=(("group", "ipmp0"),), protocol="ip"))
    assert out.config.get("net0").group == "ipmp0"  # type: ignore[union-attr]
    assert out.edits == (AddMember("ipmp0", "net0"),)


def test_bad_property_values() -> None:
    c = run(nics("net0"), "create-ip", "net0")
    assert refused(c, "set-ifprop", "net0", properties=(("standby", "maybe"),), protocol="ip") == \
        "ipadm: set-ifprop: standby: Invalid argument provided"
    assert refused(c, "set-ifprop", "net0", properties=(("speed", "1"),), protocol="ip") == \
        "ipadm: set-ifprop: speed: Unknown property"


def test_persistent_change_of_a_temporary_interface_is_refused() -> None:
    c = run(nics("net0"), "create-ip", "net0", temporary=True)
    with pytest.raises(IpadmError) as info:
        evaluate(c, IpadmCommand("create-addr", "net0", address="192.0.2.5/24"), db=IpadmDb())
    assert info.value.message == "ipadm: cannot create address: Persistent operation on temporary object"
    db = apply_edits(IpadmDb(), (AddInterface("net0"),))
    out = evaluate(c, IpadmCommand("create-addr", "net0", address="192.0.2.5/24"), db=db)
    assert out.stdout == ("net0/v4",)


def test_a_refusal_changes_nothing() -> None:
    c = run(group_of_two(), "create-addr", "ipmp0", address="192.0.2.10/24")
    before = c
    refused(c, "remove-ipmp", "ipmp0", interfaces=("net7",))
    assert c == before


# ------------------------------------------------------ disable-if, enable-if


def persist(state: tuple[Config, IpadmDb], sub: str, operand: str = "",
            **kw: object) -> tuple[Config, IpadmDb]:
    """One persistent command: the new view and the file with its edits."""
    config, db = state
    out = evaluate(config, IpadmCommand(sub, operand, **kw), db=db)  # type: ignore[arg-type]
    return out.config, apply_edits(db, out.edits)


def persistent_group() -> tuple[Config, IpadmDb]:
    """ipmp0 over net0 and net1 (net0 with a test address), one data address, all persistent."""
    state = (nics("net0", "net1", "net2"), IpadmDb())
    for sub, operand, kw in (("create-ip", "net0", {}), ("create-ip", "net1", {}),
                             ("create-addr", "net0/test", {"address": "192.0.2.50/24"}),
                             ("create-ipmp", "ipmp0", {"interfaces": ("net0,net1",)}),
                             ("create-addr", "ipmp0/v4", {"address": "192.0.2.10/24"})):
        state = persist(state, sub, operand, **kw)
    return state


def disable(state: tuple[Config, IpadmDb], name: str) -> IpadmOutcome:
    return evaluate(state[0], IpadmCommand("disable-if", name, temporary=True), db=state[1])


def enable(state: tuple[Config, IpadmDb], name: str) -> IpadmOutcome:
    return evaluate(state[0], IpadmCommand("enable-if", name, temporary=True), db=state[1])


def test_disable_if_a_member_moves_its_data_addresses_and_leaves_the_file_alone() -> None:
    state = persistent_group()
    holder = holders(state[0], "192.0.2.10/24")[0][0]
    other = "net1" if holder == "net0" else "net0"
    out = disable(state, holder)
    assert out.edits == ()
    itf = out.config.get(holder)
    assert itf is not None and not itf.plumbed and itf.group == ""
    assert all(lg.address is None for lg in itf.logicals if lg.home in ("", holder))
    # ipmp_ill_deactivate: the address goes to the member left.
    assert [h[0] for h in holders(out.config, "192.0.2.10/24")] == [other]
    assert {n for n, _ in out.touched} >= {holder, other}


def test_enable_if_a_member_brings_back_its_group_and_its_test_address() -> None:
    state = persistent_group()
    off = (disable(state, "net0").config, state[1])
    out = enable(off, "net0")
    assert out.edits == ()
    net0 = out.config.get("net0")
    assert net0 is not None and net0.plumbed == {Family.INET, Family.INET6} and net0.group == "ipmp0"
    test = [lg for lg in net0.logicals if lg.address == ip_interface("192.0.2.50/24")]
    assert len(test) == 1 and test[0].nofailover and test[0].addrobj == "net0/test"
    assert [m.name for m in out.config.group_members("ipmp0")] == ["net0", "net1"]
    assert len(holders(out.config, "192.0.2.10/24")) == 1
    assert ("net0", Family.INET) in out.touched


def test_disable_if_an_empty_ipmp_interface_and_enable_it_again() -> None:
    state = (nics("net0"), IpadmDb())
    state = persist(state, "create-ipmp", "ipmp0")
    state = persist(state, "create-addr", "ipmp0/v4", address="192.0.2.10/24")
    off = disable(state, "ipmp0")
    assert off.config.get("ipmp0") is None and off.edits == ()
    back = enable((off.config, state[1]), "ipmp0")
    ipmp0 = back.config.get("ipmp0")
    assert ipmp0 is not None and ipmp0.ipmp
    want = ip_interface("192.0.2.10/24")
    assert [lg.addrobj for lg in ipmp0.logicals if lg.address == want] == ["ipmp0/v4"]


def test_enable_if_of_an_ipmp_interface_takes_back_its_active_members() -> None:
    state = (nics("net0", "net1"), IpadmDb())
    for sub, operand, kw in (("create-ip", "net0", {}), ("create-ip", "net1", {}),
                             ("create-ipmp", "ipmp0", {"interfaces": ("net0,net1",)}),
                             ("create-addr", "ipmp0/v4", {"address": "192.0.2.10/24"})):
        state = persist(state, sub, operand, **kw)
    # As found after ipmp0 was disabled: net0 active outside any group, net1 disabled too.
    now = run(nics("net0", "net1"), "create-ip", "net0", temporary=True)
    out = enable((now, state[1]), "ipmp0")
    assert out.edits == ()
    # Only the active member comes back in; a disabled one waits for its own enable-if.
    assert [m.name for m in out.config.group_members("ipmp0")] == ["net0"]
    assert [h[0] for h in holders(out.config, "192.0.2.10/24")] == ["net0"]
    assert out.start_mpathd


def test_disable_if_refusals_in_libipadm_words() -> None:
    state = persistent_group()
    assert refused(state[0], "disable-if", "net2", temporary=True) == \
        "ipadm: cannot disable interface net2: Interface does not exist"
    assert refused(state[0], "disable-if", "ipmp0", temporary=True) == \
        "ipadm: cannot disable interface ipmp0: IPMP group is not empty"
    lo = Config((Interface("lo0", index=1, loopback=True, plumbed=frozenset({Family.INET})),))
    assert refused(lo, "disable-if", "lo0", temporary=True) == \
        "ipadm: cannot disable interface lo0: Operation not supported"


def test_enable_if_refusals_in_libipadm_words() -> None:
    state = persistent_group()
    with pytest.raises(IpadmError) as info:
        enable(state, "net2")
    assert info.value.message == "ipadm: cannot enable interface net2: Object not found"
    with pytest.raises(IpadmError) as info:
        enable(state, "net0")
    assert info.value.message == "ipadm: cannot enable interface net0: Interface already exists"
    # A temporary interface is not in the file: nothing to enable it from.
    temp = run(nics("net0"), "create-ip", "net0", temporary=True)
    off = run(temp, "disable-if", "net0", temporary=True)
    assert refused(off, "enable-if", "net0", temporary=True) == \
        "ipadm: cannot enable interface net0: Object not found"


def test_disable_then_enable_is_the_configuration_again() -> None:
    state = persistent_group()
    for name in ("net0", "net1"):
        back = enable((disable(state, name).config, state[1]), name).config
        assert [m.name for m in back.group_members("ipmp0")] == ["net0", "net1"]
        assert len(holders(back, "192.0.2.10/24")) == 1
        assert holders(back, "192.0.2.50/24") == holders(state[0], "192.0.2.50/24")
