"""§6.5: the addresses of a NIC missing at boot, moved to another member of its group (pure part)."""

from __future__ import annotations

from ipaddress import ip_interface

from ipmp.config.rescue import Rescue, alternate, console_line, rescue
from ipmp.model import Config, Family, Interface, Logical

V4 = Family.INET


def lg(unit: int, address: str, *, test: bool = False, up: bool = True) -> Logical:
    return Logical(V4, unit, ip_interface(address), up=up, deprecated=test, nofailover=test)


def nic(name: str, index: int, *logicals: Logical, group: str = "prod", standby: bool = False,
        plumbed: bool = True) -> Interface:
    return Interface(name, index, frozenset({V4}) if plumbed else frozenset(), link_up=True, group=group,
                     standby=standby, logicals=logicals)


#: hme1 as its files would have made it: a data address, a test address, an addif'd data address.
MISSING = nic("hme1", 0, lg(0, "192.0.2.101/24"), lg(1, "192.0.2.11/24", test=True), lg(2, "192.0.2.102/24"))


def test_the_data_addresses_go_to_a_standby_member_which_loses_standby() -> None:
    config = Config((nic("hme0", 2, lg(0, "192.0.2.100/24")),
                     nic("qfe0", 3, lg(0, "192.0.2.12/24", test=True), standby=True)))
    found = rescue(config, MISSING, V4)
    assert found is not None
    done, after = found
    assert done == Rescue("hme1", V4, "qfe0", (MISSING.logicals[0], MISSING.logicals[2]))
    qfe0 = after.get("qfe0")
    assert qfe0 is not None and not qfe0.standby
    # The test address stays behind; each data address remembers its home and unit.
    assert [(x.unit, str(x.address), x.home, x.home_unit) for x in qfe0.logicals] == [
        (0, "192.0.2.12/24", "", None), (1, "192.0.2.101/24", "hme1", 0), (2, "192.0.2.102/24", "hme1", 2)]
    assert after.get("hme0") == config.get("hme0")
    assert console_line(V4, [done]) == "moving addresses from failed IPv4 interfaces: hme1 (moved to qfe0)."


def test_without_a_standby_the_first_member_by_index_takes_them() -> None:
    config = Config((nic("qfe0", 4, lg(0, "192.0.2.12/24")), nic("hme0", 2, lg(0, "192.0.2.100/24")),
                     nic("ce0", 1, group="other"), nic("eri0", 3, plumbed=False)))
    chosen = alternate(config, "prod", V4, "hme1")
    assert chosen is not None and chosen.name == "hme0"


def test_offline_members_and_other_groups_are_no_alternative() -> None:
    off = Interface("qfe0", 3, frozenset({V4}), group="prod", offline=True)
    config = Config((off, nic("ce0", 1, group="other")))
    found = rescue(config, MISSING, V4)
    assert found is not None
    done, after = found
    assert done.alternate is None and after == config
    assert done.text == "hme1 (couldn't move, no alternative interface)"


def test_nothing_to_rescue_without_a_group_or_data_addresses() -> None:
    config = Config((nic("qfe0", 3),))
    assert rescue(config, nic("hme1", 0, lg(0, "192.0.2.101/24"), group=""), V4) is None
    assert rescue(config, nic("hme1", 0, lg(0, "192.0.2.11/24", test=True)), V4) is None
    assert rescue(config, MISSING, Family.INET6) is None


def test_a_second_boot_moves_nothing_more_and_clears_standby_again() -> None:
    config = Config((nic("qfe0", 3, lg(0, "192.0.2.12/24", test=True), standby=True),))
    first = rescue(config, MISSING, V4)
    assert first is not None
    # The holder's own files make it STANDBY again (reset_interface keeps the rescued addresses).
    rebooted = first[1].with_interface(nic("qfe0", 3, *first[1].get("qfe0").logicals, standby=True))  # type: ignore[union-attr]
    second = rescue(rebooted, MISSING, V4)
    assert second is not None
    assert second[0].alternate == "qfe0"
    assert second[1] == first[1]
