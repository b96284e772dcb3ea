"""Golden and property tests for ``ipmp.config.render`` (Solaris ``ifconfig`` status output).

Expected texts are written out with explicit ``\\t`` and ``\\n`` so that the
trailing spaces Solaris prints (after the netmask, after ``inet6 addr/len``,
after the MAC) are visible and checked byte for byte (reference §4.6).
"""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipmp.config.flagword import flags_of, format_flags, is_placeholder
from ipmp.config.render import format_ether, render
from ipmp.model import FLAG_NAMES, IFF, Config, Family, Interface, Logical
from tests.unit.builders import V4, V4V6, nic, v4, v6


def loopback(name: str = "lo0", mtu: int = 8232) -> Interface:
    # Linux ``lo`` carries IFF_NOARP; Solaris lo0 shows no NOARP, so the
    # fixture sets it to prove the renderer drops it.
    return nic(name, 1, v4(0, "127.0.0.1/8", up=True), loopback=True, noarp=True, mtu=mtu)


def active_active() -> Config:
    """The §4.6 example: hme0 data + test address, qfe0 standby with its test address."""
    hme0 = nic(
        "hme0",
        2,
        v4(0, "192.168.10.5/24", up=True),
        v4(1, "192.168.10.6/24", up=True, deprecated=True, nofailover=True),
        mac="08:00:20:a1:b2:c3",
        group="prod",
    )
    qfe0 = nic(
        "qfe0",
        3,
        v4(0, "192.168.10.7/24", up=True, deprecated=True, nofailover=True),
        mac="08:00:20:a1:b2:c4",
        group="prod",
        standby=True,
    )
    return Config((loopback(), hme0, qfe0))


ACTIVE_ACTIVE = (
    "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
    "\tinet 127.0.0.1 netmask ff000000 \n"
    "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n"
    "\tinet 192.168.10.5 netmask ffffff00 broadcast 192.168.10.255\n"
    "\tgroupname prod\n"
    "\tether 8:0:20:a1:b2:c3 \n"
    "hme0:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER> mtu 1500 index 2\n"
    "\tinet 192.168.10.6 netmask ffffff00 broadcast 192.168.10.255\n"
    "qfe0: flags=69040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>"
    " mtu 1500 index 3\n"
    "\tinet 192.168.10.7 netmask ffffff00 broadcast 192.168.10.255\n"
    "\tgroupname prod\n"
    "\tether 8:0:20:a1:b2:c4 \n"
)


def after_hme0_failure() -> Config:
    """§4.6 "After hme0 fails": placeholder at hme0, data address now qfe0:1."""
    hme0 = nic(
        "hme0",
        2,
        v4(0, None, nofailover=True),
        v4(1, "192.168.10.6/24", up=True, deprecated=True, nofailover=True),
        mac="08:00:20:a1:b2:c3",
        group="prod",
        link_up=False,
        running=False,
        failed=True,
    )
    qfe0 = nic(
        "qfe0",
        3,
        v4(0, "192.168.10.7/24", up=True, deprecated=True, nofailover=True),
        v4(1, "192.168.10.5/24", up=True, home="hme0", home_unit=0),
        mac="08:00:20:a1:b2:c4",
        group="prod",
        standby=True,
    )
    return Config((loopback(), hme0, qfe0))


AFTER_FAILURE = (
    "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
    "\tinet 127.0.0.1 netmask ff000000 \n"
    # The placeholder's MTU is 0: ipif_move builds it from ipif_zero (the
    # Solaris 10 IP Services guide, example 30-2, prints "mtu 0" for it).
    "hme0: flags=19000802<BROADCAST,MULTICAST,IPv4,NOFAILOVER,FAILED> mtu 0 index 2\n"
    "\tinet 0.0.0.0 netmask 0 \n"
    "\tgroupname prod\n"
    "\tether 8:0:20:a1:b2:c3 \n"
    "hme0:1: flags=19040803<UP,BROADCAST,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,FAILED> mtu 1500 index 2\n"
    "\tinet 192.168.10.6 netmask ffffff00 broadcast 192.168.10.255\n"
    "qfe0: flags=29040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY>"
    " mtu 1500 index 3\n"
    "\tinet 192.168.10.7 netmask ffffff00 broadcast 192.168.10.255\n"
    "\tgroupname prod\n"
    "\tether 8:0:20:a1:b2:c4 \n"
    "qfe0:1: flags=21000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,STANDBY> mtu 1500 index 3\n"
    "\tinet 192.168.10.5 netmask ffffff00 broadcast 192.168.10.255\n"
)


def link_local_hme0(group: str = "") -> Interface:
    """The §4.6 / S10 emqxv IPv6 test address: the link-local marked -failover."""
    return nic(
        "hme0",
        2,
        v4(0, "192.168.10.5/24", up=True),
        v6(0, "fe80::a00:20ff:feb9:17fa/10", up=True, nofailover=True, kernel_owned=True),
        mac="08:00:20:b9:17:fa",
        plumbed=V4V6,
        group=group,
    )


# --------------------------------------------------------------------------
# Golden outputs from the reference
# --------------------------------------------------------------------------


def test_active_active_example_byte_for_byte() -> None:
    assert render(active_active()) == ACTIVE_ACTIVE


def test_after_failure_placeholder_and_field_flags() -> None:
    assert render(after_hme0_failure()) == AFTER_FAILURE


def test_placeholder_never_shows_up_even_if_model_says_so() -> None:
    # Solaris refuses flag changes on the placeholder, so it cannot be UP.
    hme0 = after_hme0_failure().get("hme0")
    assert hme0 is not None
    placeholder = replace(hme0.logicals[0], up=True)
    assert is_placeholder(placeholder)
    assert not flags_of(hme0, placeholder) & IFF.UP
    assert flags_of(hme0, placeholder) == IFF(0x19000802)


def test_freshly_plumbed_unit0_is_not_a_placeholder() -> None:
    # ``ifconfig hme0 plumb``: 0.0.0.0, no NOFAILOVER, and it can be brought up.
    itf = nic("hme0", 2, v4(0, None), mac="08:00:20:a1:b2:c3")
    assert not is_placeholder(itf.logicals[0])
    assert render(Config((itf,))) == (
        "hme0: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n"
        "\tinet 0.0.0.0 netmask 0 \n"
        "\tether 8:0:20:a1:b2:c3 \n"
    )


def test_ipv6_link_local_test_address() -> None:
    cfg = Config((link_local_hme0(),))
    assert render(cfg, ifname="hme0", family=Family.INET6) == (
        "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2\n"
        "\tinet6 fe80::a00:20ff:feb9:17fa/10 \n"
    )


def test_ipv6_unit0_has_groupname_and_ether_in_plain_listing() -> None:
    cfg = Config((link_local_hme0(group="prod"),))
    assert render(cfg) == (
        "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n"
        "\tinet 192.168.10.5 netmask ffffff00 broadcast 192.168.10.255\n"
        "\tgroupname prod\n"
        "\tether 8:0:20:b9:17:fa \n"
        "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2\n"
        "\tinet6 fe80::a00:20ff:feb9:17fa/10 \n"
        "\tgroupname prod\n"
        "\tether 8:0:20:b9:17:fa \n"
    )


# --------------------------------------------------------------------------
# Flag word
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (IFF(0x19040803), "flags=19040803<UP,BROADCAST,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,FAILED>"),
        (
            IFF(0x69040843),
            "flags=69040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>",
        ),
        (IFF(0x2001000849), "flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL>"),
        (IFF(0x4000), "flags=4000<DHCP>"),
        (IFF(0x4000000 | 0x200000000), "flags=204000000<MIP,CoS>"),
        (IFF(0), "flags=0"),
    ],
)
def test_format_flags(flags: IFF, text: str) -> None:
    assert format_flags(flags) == text


def test_format_flags_unnamed_bit_counts_in_hex_only() -> None:
    # 0x10000000000 is Clearview's VRRP bit, which the toolkit's table does not name.
    assert format_flags(IFF(0x10000000000)) == "flags=10000000000"
    assert format_flags(IFF(0x10000000001)) == "flags=10000000001<UP>"


def test_field_example_failed_test_address_flags() -> None:
    itf = nic("hme0", 2, link_up=False, running=False, failed=True)
    lg = v4(1, "192.168.10.6/24", up=True, deprecated=True, nofailover=True)
    assert format_flags(flags_of(itf, lg)) == (
        "flags=19040803<UP,BROADCAST,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,FAILED>"
    )


def test_running_needs_link_and_running() -> None:
    lg = v4(0, "10.0.0.1/8", up=True)
    assert flags_of(nic("e0", 1), lg) & IFF.RUNNING
    assert not flags_of(nic("e0", 1, link_up=False), lg) & IFF.RUNNING
    assert not flags_of(nic("e0", 1, running=False), lg) & IFF.RUNNING


def test_noarp_ipv4_and_nonud_ipv6_but_never_on_loopback() -> None:
    itf = nic("e0", 1, noarp=True, plumbed=V4V6)
    assert flags_of(itf, v4(0, "10.0.0.1/8")) & IFF.NOARP
    assert not flags_of(itf, v6(0, "fe80::1/10")) & IFF.NOARP
    assert flags_of(itf, v6(0, "fe80::1/10")) & IFF.NONUD
    lo = loopback()
    assert not flags_of(lo, lo.logicals[0]) & (IFF.NOARP | IFF.NONUD)


def test_offline_on_every_logical_both_families() -> None:
    itf = nic(
        "qfe1",
        4,
        v4(0, "192.168.10.8/24", nofailover=True, deprecated=True),
        v4(1, "192.168.10.9/24"),
        v6(0, "fe80::214:4fff:fe67:cbd3/10", nofailover=True, kernel_owned=True),
        v6(1, "2001:db8::9/64"),
        plumbed=V4V6,
        group="prod",
        standby=True,
        offline=True,
        mac="00:14:4f:67:cb:d3",
    )
    text = render(Config((itf,)))
    # if_mpadm -d downs every logical; OFFLINE (and STANDBY) stay on all four.
    assert text == (
        "qfe1: flags=a9040842<BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,OFFLINE>"
        " mtu 1500 index 4\n"
        "\tinet 192.168.10.8 netmask ffffff00 broadcast 192.168.10.255\n"
        "\tgroupname prod\n"
        "\tether 0:14:4f:67:cb:d3 \n"
        "qfe1:1: flags=a1000842<BROADCAST,RUNNING,MULTICAST,IPv4,STANDBY,OFFLINE> mtu 1500 index 4\n"
        "\tinet 192.168.10.9 netmask ffffff00 broadcast 192.168.10.255\n"
        "qfe1: flags=aa000840<RUNNING,MULTICAST,IPv6,NOFAILOVER,STANDBY,OFFLINE> mtu 1500 index 4\n"
        "\tinet6 fe80::214:4fff:fe67:cbd3/10 \n"
        "\tgroupname prod\n"
        "\tether 0:14:4f:67:cb:d3 \n"
        "qfe1:1: flags=a2000840<RUNNING,MULTICAST,IPv6,STANDBY,OFFLINE> mtu 1500 index 4\n"
        "\tinet6 2001:db8::9/64 \n"
    )
    headers = [line for line in text.splitlines() if not line.startswith("\t")]
    assert [h.split(": flags")[0] for h in headers] == ["qfe1", "qfe1:1", "qfe1", "qfe1:1"]
    for header in headers:
        assert "OFFLINE>" in header
        # OFFLINE excludes INACTIVE even on a standby (kernel INACTIVE rules).
        assert "INACTIVE" not in header
        assert "STANDBY" in header
    for lg in itf.logicals:
        assert flags_of(itf, lg) & IFF.OFFLINE


def test_phyint_flags_shared_by_all_logicals() -> None:
    hme0 = after_hme0_failure().get("hme0")
    assert hme0 is not None
    phyint = IFF.FAILED | IFF.STANDBY | IFF.INACTIVE | IFF.OFFLINE | IFF.RUNNING
    words = {flags_of(hme0, lg) & phyint for lg in hme0.logicals}
    assert words == {IFF.FAILED}


# --------------------------------------------------------------------------
# Lines: ether, netmask, broadcast, point-to-point, metric
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mac", "text"),
    [
        ("08:00:20:a1:b2:c3", "8:0:20:a1:b2:c3"),
        ("00:14:4F:67:CB:D3", "0:14:4f:67:cb:d3"),
        ("00-00-00-00-00-00", "0:0:0:0:0:0"),
        ("not-a-mac", "not-a-mac"),
    ],
)
def test_format_ether(mac: str, text: str) -> None:
    assert format_ether(mac) == text


def test_ether_line_trailing_space_and_no_leading_zeros() -> None:
    itf = nic("e1000g0", 2, v4(0, "10.1.1.1/24", up=True), mac="00:14:4f:67:cb:d3")
    assert render(Config((itf,))).endswith("\tether 0:14:4f:67:cb:d3 \n")


def test_family_suppresses_ether_and_other_family() -> None:
    cfg = Config((link_local_hme0(group="prod"),))
    inet = render(cfg, family=Family.INET)
    assert "ether" not in inet
    assert "inet6" not in inet
    assert inet == (
        "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n"
        "\tinet 192.168.10.5 netmask ffffff00 broadcast 192.168.10.255\n"
        "\tgroupname prod\n"
    )
    assert "\tether" in render(cfg)
    assert "\tether" not in render(cfg, show_ether=False)
    assert "\tinet " not in render(cfg, family=Family.INET6)


def test_no_ether_without_mac_or_on_logical_or_loopback() -> None:
    text = render(active_active())
    assert text.count("\tether ") == 2  # hme0 and qfe0 unit 0; not lo0, not hme0:1
    itf = nic("e0", 2, v4(0, "10.0.0.1/8", up=True))
    assert "ether" not in render(Config((itf,)))


def test_linux_loopback_mtu_and_flags_read_as_solaris_lo0() -> None:
    # Linux ``lo``: 64 KiB MTU, no IFF_MULTICAST.  The view names it lo0
    # (ifmap.NameMap); render gives it lo0's word and MTU (ill_lookup_on_name).
    lo = replace(loopback("lo0", 65536), multicast=False)
    assert render(Config((lo,))) == (
        "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
        "\tinet 127.0.0.1 netmask ff000000 \n"
    )
    # An MTU the administrator set is shown as it is.
    assert " mtu 16384 " in render(Config((replace(lo, mtu=16384),)))


def test_explicit_and_default_broadcast() -> None:
    itf = nic(
        "e0",
        2,
        v4(0, "10.0.0.1/8", up=True),
        v4(1, "10.0.0.2/8", up=True, broadcast=IPv4Address("10.0.0.255")),
        v4(2, "10.0.0.3/8", up=True, broadcast=IPv4Address("0.0.0.0")),
    )
    lines = render(Config((itf,))).splitlines(keepends=True)
    assert lines[1] == "\tinet 10.0.0.1 netmask ff000000 broadcast 10.255.255.255\n"
    assert lines[3] == "\tinet 10.0.0.2 netmask ff000000 broadcast 10.0.0.255\n"
    # A zero broadcast is not printed: the line keeps the trailing space.
    assert lines[5] == "\tinet 10.0.0.3 netmask ff000000 \n"


def test_point_to_point_lines() -> None:
    itf = nic(
        "tun0",
        5,
        v4(0, "10.9.9.1/32", up=True, destination=IPv4Address("10.9.9.2")),
        v6(0, "fe80::1/10", up=True, destination=IPv6Address("fe80::2")),
        plumbed=V4V6,
        pointopoint=True,
        noarp=True,
        multicast=False,
        mtu=1480,
    )
    assert render(Config((itf,))) == (
        "tun0: flags=10000d1<UP,POINTOPOINT,RUNNING,NOARP,IPv4> mtu 1480 index 5\n"
        "\tinet 10.9.9.1 --> 10.9.9.2 netmask ffffffff \n"
        "tun0: flags=2200051<UP,POINTOPOINT,RUNNING,NONUD,IPv6> mtu 1480 index 5\n"
        "\tinet6 fe80::1/10 --> fe80::2 \n"
    )


def test_metric_printed_only_when_nonzero() -> None:
    itf = nic("e0", 2, v4(0, "10.0.0.1/8", up=True), metric=3)
    first = render(Config((itf,))).splitlines()[0]
    assert first == "e0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> metric 3 mtu 1500 index 2"
    assert " metric " not in render(active_active())


# --------------------------------------------------------------------------
# Selection and ordering
# --------------------------------------------------------------------------


def two_stack_config() -> Config:
    a = nic(
        "hme0",
        2,
        v4(1, "192.168.10.6/24", up=True, nofailover=True, deprecated=True),
        v4(0, "192.168.10.5/24", up=True),
        v6(0, "fe80::a/10", up=True),
        v4(2, "192.168.10.20/24"),
        plumbed=V4V6,
        mac="08:00:20:00:00:0a",
    )
    b = nic(
        "qfe0",
        3,
        v4(0, "192.168.10.7/24", up=True),
        v6(0, "fe80::b/10", up=True),
        plumbed=V4V6,
        mac="08:00:20:00:00:0b",
    )
    return Config((a, b))


def names(text: str) -> list[str]:
    return [
        m.group(1) + ("/6" if "IPv6" in m.group(0) else "")
        for m in re.finditer(r"^(\S+): flags=.*$", text, re.M)
    ]


def test_all_ipv4_before_all_ipv6_units_in_order() -> None:
    assert names(render(two_stack_config())) == [
        "hme0",
        "hme0:1",
        "hme0:2",
        "qfe0",
        "hme0/6",
        "qfe0/6",
    ]


def test_single_interface_ipv4_first() -> None:
    assert names(render(two_stack_config(), ifname="qfe0")) == ["qfe0", "qfe0/6"]


def test_single_logical() -> None:
    text = render(two_stack_config(), ifname="hme0", unit=1)
    assert text == (
        "hme0:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER> mtu 1500 index 2\n"
        "\tinet 192.168.10.6 netmask ffffff00 broadcast 192.168.10.255\n"
    )
    assert names(render(two_stack_config(), ifname="hme0", unit=0)) == ["hme0", "hme0/6"]


def test_unknown_selection_renders_empty() -> None:
    cfg = two_stack_config()
    assert render(cfg, ifname="nge0") == ""
    assert render(cfg, ifname="hme0", unit=7) == ""
    assert render(Config()) == ""


def test_unplumbed_family_not_shown() -> None:
    itf = replace(two_stack_config().interfaces[1], plumbed=V4)
    assert names(render(Config((itf,)))) == ["qfe0"]
    assert render(Config((itf,)), family=Family.INET6) == ""


def test_only_up_and_only_down() -> None:
    cfg = two_stack_config()
    assert names(render(cfg, only_up=True)) == ["hme0", "hme0:1", "qfe0", "hme0/6", "qfe0/6"]
    down = render(cfg, only_down=True)
    assert names(down) == ["hme0:2"]
    assert down == (
        "hme0:2: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n"
        "\tinet 192.168.10.20 netmask ffffff00 broadcast 192.168.10.255\n"
    )


def test_only_down_lists_placeholder() -> None:
    assert names(render(after_hme0_failure(), only_down=True)) == ["hme0"]
    assert "hme0: " not in render(after_hme0_failure(), only_up=True)


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

NAME_TO_BIT = {name: bit for bit, name in FLAG_NAMES}
HEADER = re.compile(r"^(\S+): flags=([0-9a-f]+)(?:<([^>]*)>)? (?:metric \d+ )?mtu \d+ index \d+$")

ipv4_ifaces = st.builds(
    lambda a, p: IPv4Interface((a, p)),
    st.integers(min_value=1, max_value=0xFFFFFFFE),
    st.integers(min_value=0, max_value=32),
)
ipv6_ifaces = st.builds(
    lambda a, p: IPv6Interface((a, p)),
    st.integers(min_value=1, max_value=2**128 - 1),
    st.integers(min_value=0, max_value=128),
)


@st.composite
def logicals(draw: st.DrawFn, family: Family, unit: int) -> Logical:
    addr: IPv4Interface | IPv6Interface | None
    if family is Family.INET:
        addr = draw(st.none() | ipv4_ifaces)
    else:
        addr = draw(st.none() | ipv6_ifaces)
    return Logical(
        family,
        unit,
        addr,
        up=draw(st.booleans()),
        deprecated=draw(st.booleans()),
        nofailover=draw(st.booleans()),
    )


@st.composite
def interfaces(draw: st.DrawFn) -> Interface:
    plumbed = draw(st.sets(st.sampled_from(Family), min_size=1))
    lgs: list[Logical] = []
    for fam in sorted(plumbed):
        units = draw(st.sets(st.integers(min_value=0, max_value=4), max_size=3))
        lgs.extend(draw(logicals(fam, u)) for u in sorted(units))
    return Interface(
        name=draw(st.sampled_from(["hme0", "qfe1", "lo", "e1000g2"])),
        index=draw(st.integers(min_value=1, max_value=99)),
        plumbed=frozenset(plumbed),
        link_up=draw(st.booleans()),
        running=draw(st.booleans()),
        mtu=draw(st.integers(min_value=68, max_value=65536)),
        mac=draw(st.none() | st.just("00:0a:b0:0c:00:01")),
        noarp=draw(st.booleans()),
        loopback=draw(st.booleans()),
        pointopoint=draw(st.booleans()),
        multicast=draw(st.booleans()),
        metric=draw(st.integers(min_value=0, max_value=3)),
        group=draw(st.sampled_from(["", "prod"])),
        standby=draw(st.booleans()),
        failed=draw(st.booleans()),
        offline=draw(st.booleans()),
        logicals=tuple(lgs),
    )


@given(st.lists(interfaces(), max_size=3))
def test_rendered_flag_hex_equals_or_of_named_bits(itfs: list[Interface]) -> None:
    cfg = Config(tuple(itfs))
    text = render(cfg)
    assert text == "" or text.endswith("\n")
    headers = [line for line in text.split("\n") if line and not line.startswith("\t")]
    assert len(headers) == sum(len(i.logicals) for i in itfs)
    for header in headers:
        m = HEADER.match(header)
        assert m is not None, header
        named = m.group(3).split(",") if m.group(3) else []
        word = IFF(0)
        for name in named:
            word |= NAME_TO_BIT[name]
        assert int(m.group(2), 16) == int(word)
        # Names come in ascending bit order, each once.
        bits = [int(NAME_TO_BIT[n]) for n in named]
        assert bits == sorted(set(bits))
        # Exactly one family bit; FAILED and INACTIVE never together.
        assert bool(word & IFF.IPV4) != bool(word & IFF.IPV6)
        assert not (word & IFF.FAILED and word & IFF.INACTIVE)


@given(st.integers(min_value=0, max_value=(1 << 39) - 1))
def test_format_flags_hex_equals_or_of_names(value: int) -> None:
    text = format_flags(IFF(value))
    m = re.fullmatch(r"flags=([0-9a-f]+)(?:<([^>]+)>)?", text)
    assert m is not None
    named = m.group(2).split(",") if m.group(2) else []
    word = 0
    for name in named:
        word |= int(NAME_TO_BIT[name])
    assert int(m.group(1), 16) == value == word
