"""``ifconfig`` status output in the Solaris 11 model: the IPMP interface and its members.

Transcripts written out by hand (not computed by the code under test) from
what Oracle documents for a group made with ``ipadm create-ipmp``:

* "How IPMP Works", Oracle Solaris 11.4 "Administering TCP/IP Networks, IPMP,
  and IP Tunnels", https://docs.oracle.com/cd/E37838_01/html/E60991/gfbby.html :
  the data addresses are on the IPMP interface ``ipmp0``, the underlying
  interfaces host test addresses only;
* ifconfig(8) of Solaris 11.4, https://docs.oracle.com/cd/E88353_01/html/E72487/ifconfig-8.html ,
  the flags list: IPMP (0x8000000000, "the IPMP IP interface"), FAILED on an
  IPMP interface (the group has failed), PHYSRUNNING (0x100000000000, the
  physical link is up);
* the flag values of illumos ``usr/src/uts/common/net/if.h``
  (IFF_NOLINKLOCAL 0x20000000000, set by libipadm ``i_ipadm_plumb_if`` on
  every IPv6 interface ``ipadm`` plumbs, and with no name in ifconfig's table).

Byte for byte as the Solaris 10 tests (tests/unit/test_render.py): trailing
spaces after a netmask without broadcast and after a MAC are checked.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ipmp.config.evaluate import evaluate
from ipmp.config.parse import parse_argv
from ipmp.config.render import render
from ipmp.errors import ConfigError, NoSuchInterface
from ipmp.model import IFF, Config, Environment, Family, Interface, Logical
from tests.unit.builders import LO0, V4, V4V6, nic, v4, v6


def ipmp0(*logicals: Logical, running: bool = True, plumbed: frozenset[Family] = V4) -> Interface:
    """The record as linux/view.merge hands it over: RUNNING while a member is usable."""
    return Interface("ipmp0", index=4, plumbed=plumbed, link_up=True, running=running, group="ipmp0",
                     ipmp=True, logicals=logicals)


def two_members() -> Config:
    """gfbby's layout on documentation addresses: ipmp0 over net0 and net1.

    net0 has no address of its own and holds ipmp0's data address (unit 0
    of ipmp0, kernel label net0:1); net1 has a test address on unit 0 and
    holds ipmp0:1.
    """
    net0 = nic("net0", 2, v4(1, "192.0.2.10/24", up=True, ipmp_unit=0, addrobj="ipmp0/v4"),
               group="ipmp0", mac="00:14:4f:f9:c9:5d")
    net1 = nic("net1", 3, v4(0, "192.0.2.21/24", up=True, deprecated=True, nofailover=True),
               v4(1, "192.0.2.11/24", up=True, ipmp_unit=1, addrobj="ipmp0/v4a"),
               group="ipmp0", mac="00:14:4f:f9:c9:5e")
    return Config((LO0, net0, net1, ipmp0()))


IFCONFIG_A = (
    "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
    "\tinet 127.0.0.1 netmask ff000000 \n"
    "net0: flags=100001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,PHYSRUNNING> mtu 1500 index 2\n"
    "\tinet 0.0.0.0 netmask ff000000 \n"
    "\tgroupname ipmp0\n"
    "\tether 0:14:4f:f9:c9:5d \n"
    "net1: flags=100009040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,PHYSRUNNING>"
    " mtu 1500 index 3\n"
    "\tinet 192.0.2.21 netmask ffffff00 broadcast 192.0.2.255\n"
    "\tgroupname ipmp0\n"
    "\tether 0:14:4f:f9:c9:5e \n"
    "ipmp0: flags=108001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,IPMP,PHYSRUNNING> mtu 1500 index 4\n"
    "\tinet 192.0.2.10 netmask ffffff00 broadcast 192.0.2.255\n"
    "\tgroupname ipmp0\n"
    "ipmp0:1: flags=108001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,IPMP,PHYSRUNNING> mtu 1500 index 4\n"
    "\tinet 192.0.2.11 netmask ffffff00 broadcast 192.0.2.255\n"
)


def test_ifconfig_a_shows_the_ipmp_interface_and_hides_its_addresses_on_the_members() -> None:
    assert render(two_members()) == IFCONFIG_A


def test_ipmp_interface_blocks_follow_its_index_among_the_types() -> None:
    # An IPMP interface made before the NICs' type was plumbed comes first,
    # as its ill type was appended to the ill list first (render.solaris_order).
    config = two_members()
    early = Config(tuple(replace(i, index=1) if i.ipmp else
                         replace(i, index=i.index + 1) for i in config.interfaces))
    names = [line.split(":")[0] for line in render(early).splitlines() if not line.startswith("\t")]
    assert names == ["ipmp0", "ipmp0", "lo0", "net0", "net1"]


def test_ifconfig_ipmp0_and_its_units() -> None:
    config = two_members()
    ipmp_blocks = IFCONFIG_A[IFCONFIG_A.index("ipmp0: "):]
    assert render(config, ifname="ipmp0") == ipmp_blocks
    assert render(config, ifname="ipmp0", unit=1) == ipmp_blocks[ipmp_blocks.index("ipmp0:1: "):]
    assert render(config, ifname="ipmp0", unit=2) == ""


def test_no_ether_line_for_the_ipmp_interface_even_with_a_mac_on_record() -> None:
    # Belt and braces: even a record carrying a MAC prints none (it has no
    # hardware address of its own; its members' are theirs).
    config = two_members()
    config = Config(tuple(replace(i, mac="00:14:4f:00:00:01") if i.ipmp else i for i in config.interfaces))
    text = render(config, ifname="ipmp0")
    assert text.startswith("ipmp0: flags=108001000843<") and "\tgroupname ipmp0\n" in text
    assert "ether" not in text


def test_group_failed_ipmp_interface_is_failed_and_holds_its_addresses_unbound() -> None:
    # Both links down, both members FAILED: no member can hold a data
    # address, so they are the record's own (not in the kernel), and the
    # IPMP interface is FAILED (illumos if.h: the group has failed).
    net0 = nic("net0", 2, group="ipmp0", link_up=False, failed=True, mac="00:14:4f:f9:c9:5d")
    net1 = nic("net1", 3, v4(0, "192.0.2.21/24", up=True, deprecated=True, nofailover=True),
               group="ipmp0", link_up=False, failed=True, mac="00:14:4f:f9:c9:5e")
    record = ipmp0(v4(0, "192.0.2.10/24", up=True, ipmp_unit=0), v4(1, "192.0.2.11/24", up=True, ipmp_unit=1),
                   running=False)
    text = render(Config((net0, net1, record)), show_ether=False)
    assert text == (
        "net0: flags=11000803<UP,BROADCAST,MULTICAST,IPv4,FAILED> mtu 1500 index 2\n"
        "\tinet 0.0.0.0 netmask ff000000 \n"
        "\tgroupname ipmp0\n"
        "net1: flags=19040803<UP,BROADCAST,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,FAILED> mtu 1500 index 3\n"
        "\tinet 192.0.2.21 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname ipmp0\n"
        "ipmp0: flags=8011000803<UP,BROADCAST,MULTICAST,IPv4,FAILED,IPMP> mtu 1500 index 4\n"
        "\tinet 192.0.2.10 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname ipmp0\n"
        "ipmp0:1: flags=8011000803<UP,BROADCAST,MULTICAST,IPv4,FAILED,IPMP> mtu 1500 index 4\n"
        "\tinet 192.0.2.11 netmask ffffff00 broadcast 192.0.2.255\n"
    )


def test_ipmp_interface_without_data_address_shows_an_unspecified_unit_0() -> None:
    # ``ipadm create-ipmp ipmp0`` alone: no member, no address.
    text = render(Config((ipmp0(running=False),)))
    assert text == (
        "ipmp0: flags=8011000802<BROADCAST,MULTICAST,IPv4,FAILED,IPMP> mtu 1500 index 4\n"
        "\tinet 0.0.0.0 netmask 0 \n"
        "\tgroupname ipmp0\n"
    )


def test_ipv6_blocks_carry_nolinklocal_in_the_hex_only() -> None:
    ll = v6(0, "fe80::214:4fff:fef9:c95d/64", up=True, kernel_owned=True)
    data = v6(1, "2001:db8::10/64", up=True, ipmp_unit=0)
    net0 = nic("net0", 2, ll, data, plumbed=frozenset({Family.INET6}), group="ipmp0")
    net1 = nic("net1", 3, plumbed=frozenset({Family.INET6}), group="ipmp0")
    text = render(Config((net0, net1, ipmp0(plumbed=frozenset({Family.INET6})))), show_ether=False)
    assert text == (
        "net0: flags=120002000841<UP,RUNNING,MULTICAST,IPv6,PHYSRUNNING> mtu 1500 index 2\n"
        "\tinet6 fe80::214:4fff:fef9:c95d/10 \n"
        "\tgroupname ipmp0\n"
        "net1: flags=120002000841<UP,RUNNING,MULTICAST,IPv6,PHYSRUNNING> mtu 1500 index 3\n"
        "\tinet6 ::/0 \n"
        "\tgroupname ipmp0\n"
        "ipmp0: flags=128002000841<UP,RUNNING,MULTICAST,IPv6,IPMP,PHYSRUNNING> mtu 1500 index 4\n"
        "\tinet6 2001:db8::10/64 \n"
        "\tgroupname ipmp0\n"
    )
    assert int(IFF.NOLINKLOCAL) == 0x20000000000  # illumos net/if.h


def test_selection_words_au_ad_a4_a6() -> None:
    config = two_members()
    config = Config(tuple(replace(i, plumbed=V4V6) if i.ipmp else i for i in config.interfaces))
    up = render(config, only_up=True)
    down = render(config, only_down=True)
    # ipmp0's IPv6 unit 0 has no address: not UP, so only in -ad.
    assert "ipmp0: flags=128002000840<RUNNING,MULTICAST,IPv6,IPMP,PHYSRUNNING>" in down
    assert "IPv6" not in up
    assert up == IFCONFIG_A
    no_ether = "".join(ln for ln in IFCONFIG_A.splitlines(keepends=True) if not ln.startswith("\tether"))
    assert render(config, family=Family.INET) == no_ether
    assert render(config, family=Family.INET6) == (
        "ipmp0: flags=128002000840<RUNNING,MULTICAST,IPv6,IPMP,PHYSRUNNING> mtu 1500 index 4\n"
        "\tinet6 ::/0 \n"
        "\tgroupname ipmp0\n"
    )


def test_without_an_ipmp_interface_the_same_group_keeps_the_solaris_10_view() -> None:
    # A hostname-file group: the addresses are the NICs' own, no PHYSRUNNING.
    config = two_members()
    s10 = Config(tuple(replace(i, logicals=tuple(replace(lg, ipmp_unit=None) for lg in i.logicals))
                       for i in config.interfaces if not i.ipmp))
    text = render(s10, show_ether=False)
    assert "PHYSRUNNING" not in text and "ipmp0:" not in text
    assert text.splitlines()[2:5] == [
        "net0:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2",
        "\tinet 192.0.2.10 netmask ffffff00 broadcast 192.0.2.255",
        "net1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER> mtu 1500 index 3",
    ]
    assert "net1:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3" in text
    assert "0.0.0.0" not in text


# -- ifconfig on the IPMP interface: status yes, changes no ------------------------------


@pytest.mark.parametrize("argv", [
    ["ipmp0", "down"],
    ["ipmp0", "192.0.2.99/24", "up"],
    ["ipmp0:1", "down"],
    ["ipmp0", "inet6", "plumb"],
    ["ipmp0", "unplumb"],
    ["ipmp0", "group", "other"],
    ["ipmp0", "mtu", "1400"],
])
def test_ifconfig_words_on_the_ipmp_interface_are_refused(argv: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        evaluate(two_members(), parse_argv(argv), Environment())
    assert str(err.value).startswith(f"{argv[0]}: is an IPMP interface managed by ipadm; use ipadm")


def test_ifconfig_status_of_the_ipmp_interface_and_its_units() -> None:
    config = two_members()
    for name in ("ipmp0", "ipmp0:1"):
        assert evaluate(config, parse_argv([name]), Environment()).status == (name,)
    with pytest.raises(NoSuchInterface):
        evaluate(config, parse_argv(["ipmp0:2"]), Environment())


def test_ifconfig_a_words_leave_the_ipmp_interface_alone() -> None:
    config = Config(tuple(i for i in two_members().interfaces if not i.loopback))
    out = evaluate(config, parse_argv(["-a", "down"]), Environment())
    assert out.touched  # the members' own were taken down
    assert all(name != "ipmp0" for name, _family in out.touched)
    assert out.config.get("ipmp0") == config.get("ipmp0")
    # ipmp0's data addresses its members hold stay UP; the members' own go down.
    after = {(itf.name, lg.unit): lg.up for itf in out.config.nics for lg in itf.logicals}
    assert after == {("net0", 1): True, ("net1", 0): False, ("net1", 1): True}


def test_a_members_unit_holding_an_ipmp_data_address_is_not_the_members() -> None:
    # net0:1 holds ipmp0's address in the kernel; Solaris 11 has no net0:1.
    config = two_members()
    with pytest.raises(NoSuchInterface, match="status: SIOCGLIFFLAGS: net0:1: no such interface"):
        evaluate(config, parse_argv(["net0:1"]), Environment())
    with pytest.raises(ConfigError, match="net0:1: holds a data address of ipmp0, an IPMP interface"):
        evaluate(config, parse_argv(["net0:1", "down"]), Environment())
    # The member's own units are its own.
    assert evaluate(config, parse_argv(["net1"]), Environment()).status == ("net1",)
    out = evaluate(config, parse_argv(["net1", "-failover"]), Environment())
    assert ("net1", Family.INET) in out.touched
