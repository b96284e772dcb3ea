"""Solaris ifconfig semantics: one test per edge case of the reference (§1, §4, §6).

Every case goes through the real front ends (``parse.parse_argv`` for the
command line, ``hostfiles.parse_hostname_text`` for boot files) and folds over
a ``Config`` that ``view.merge`` built from a kernel state and state-store
records, as ``ifconfig`` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address
from pathlib import Path

import pytest

from ipmp.admin.session import read_host, run_command
from ipmp.config.addresses import classful_prefix, split_name
from ipmp.config.commands import Action, Command
from ipmp.config.evaluate import Outcome, evaluate
from ipmp.config.parse import parse_argv
from ipmp.errors import ConfigError, NoSuchInterface, ParseError, Position, UnsupportedError
from ipmp.host.hostfiles import parse_hostname_text
from ipmp.host.state import Store
from ipmp.linux.desired import desired_kernel
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Environment, Family, Interface, IPAddress, Logical
from tests.fakes import FakeKernel, make_kernel

INET = Family.INET
INET6 = Family.INET6


def _hosts(*pairs: tuple[str, str]) -> tuple[tuple[str, IPAddress], ...]:
    return tuple((name, ip_address(addr)) for name, addr in pairs)


ENV = Environment(
    hosts=_hosts(
        ("myhost", "192.0.2.100"),
        ("myhost-qfe0", "192.0.2.10"),
        ("myhost-qfe1", "192.0.2.11"),
        ("myhost6", "2001:db8::100"),
    ),
    netmasks=(
        (IPv4Address("192.0.2.0"), IPv4Address("255.255.255.0")),
        (IPv4Address("192.0.2.64"), IPv4Address("255.255.255.192")),
    ),
)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def host(*names: str, stored: tuple[Interface, ...] = (), loopback: bool = True) -> Config:
    """The Solaris view of a kernel with these NICs (nothing configured) plus store records."""
    return merge(make_kernel(*(names or ("qfe0", "qfe1")), loopback=loopback), stored)


def run(config: Config, *argv: str, env: Environment = ENV) -> Outcome:
    return evaluate(config, parse_argv(list(argv)), env)


def after(config: Config, *commands: list[str]) -> Config:
    for argv in commands:
        config = run(config, *argv).config
    return config


def from_file(config: Config, text: str, ifname: str = "qfe0", family: Family = INET) -> Config:
    for command in parse_hostname_text(text, ifname, family, f"hostname.{ifname}"):
        config = evaluate(config, command, ENV).config
    return config


def plumbed(*names: str, family: Family = INET) -> Config:
    config = host(*names)
    for name in names or ("qfe0", "qfe1"):
        config = run(config, name, family.word, "plumb").config
    return config


def itf(config: Config, name: str) -> Interface:
    found = config.get(name)
    assert found is not None, name
    return found


def lg(config: Config, name: str, family: Family = INET) -> Logical:
    base, unit = split_name(name)
    found = itf(config, base).logical(family, unit)
    assert found is not None, name
    return found


def units(config: Config, name: str, family: Family = INET) -> list[int]:
    return [x.unit for x in itf(config, name).logicals_of(family)]


def config_error(config: Config, *argv: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        run(config, *argv)
    return info.value


def v4(text: str) -> IPv4Interface:
    return IPv4Interface(text)


# --------------------------------------------------------------------------
# §4.3 addresses, netmask, broadcast
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "address", "broadcast"),
    [
        (["192.0.2.10", "netmask", "255.255.255.192", "up"], "192.0.2.10/26", "192.0.2.63"),
        (["netmask", "255.255.255.192", "192.0.2.10", "up"], "192.0.2.10/26", "192.0.2.63"),
        (["netmask", "255.255.0.0", "192.0.2.10", "netmask", "0xffffffc0"], "192.0.2.10/26", "192.0.2.63"),
        # The address takes the last mask (/24, broadcast .255); the words
        # then run in order and the last one wins again.
        (["192.0.2.10", "netmask", "255.255.255.192", "netmask", "255.255.255.0"], "192.0.2.10/24",
         "192.0.2.255"),
    ],
)
def test_netmask_hack_last_netmask_goes_with_the_address(
    argv: list[str], address: str, broadcast: str
) -> None:
    out = run(plumbed("qfe0"), "qfe0", *argv)
    logical = lg(out.config, "qfe0")
    assert logical.address == v4(address)
    assert logical.broadcast == IPv4Address(broadcast)


def test_netmask_hack_also_applies_to_the_addif_address() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.100", "up"])
    out = run(config, "qfe0", "addif", "192.0.2.10", "netmask", "255.255.255.128", "up")
    assert lg(out.config, "qfe0:1").address == v4("192.0.2.10/25")
    assert lg(out.config, "qfe0:1").broadcast == IPv4Address("192.0.2.127")
    assert lg(out.config, "qfe0").address == v4("192.0.2.100/24")


def test_prefix_length_overrides_the_line_netmask() -> None:
    out = run(plumbed("qfe0"), "qfe0", "netmask", "255.255.255.0", "192.0.2.10/28", "up")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/28")
    assert lg(out.config, "qfe0").broadcast == IPv4Address("192.0.2.15")
    out = run(plumbed("qfe0"), "qfe0", "netmask", "255.255.255.0", "addif", "192.0.2.10/27")
    assert lg(out.config, "qfe0:1").address == v4("192.0.2.10/27")


def test_a_netmask_word_after_a_prefix_still_runs() -> None:
    # Solaris setifaddr only drops the hack's mask; setifnetmask runs later as
    # written, so the explicit word has the last say.
    out = run(plumbed("qfe0"), "qfe0", "192.0.2.10/28", "netmask", "255.255.255.0")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/24")


def test_address_without_a_mask_gets_the_classful_mask() -> None:
    assert [classful_prefix(IPv4Address(a)) for a in ("192.0.2.1", "198.51.100.1", "203.0.113.1")] == [
        24,
        24,
        24,
    ]
    out = run(plumbed("qfe0"), "qfe0", "192.0.2.10", "up")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/24")
    assert lg(out.config, "qfe0").broadcast == IPv4Address("192.0.2.255")


def test_setting_an_address_again_without_a_mask_resets_it_to_classful() -> None:
    # setifaddr: "If setting the address and not the mask, clear any existing
    # mask and the kernel will then assign the default" (§4.3).
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10/28", "up"])
    out = run(config, "qfe0", "192.0.2.11")
    assert lg(out.config, "qfe0").address == v4("192.0.2.11/24")
    out = run(config, "qfe0", "set", "192.0.2.12")
    assert lg(out.config, "qfe0").address == v4("192.0.2.12/24")


def test_netmask_plus_longest_match_and_message() -> None:
    out = run(plumbed("qfe0"), "qfe0", "192.0.2.70", "netmask", "+", "up")
    assert lg(out.config, "qfe0").address == v4("192.0.2.70/26")
    assert out.stdout == ("Setting netmask of qfe0 to 255.255.255.192",)
    # 192.0.2.10 masked to /26 is 192.0.2.0, the /24 entry's network number.
    out = run(plumbed("qfe0"), "qfe0", "myhost-qfe0", "netmask", "+", "broadcast", "+", "up")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/24")
    assert out.stdout == ("Setting netmask of qfe0 to 255.255.255.0",)


def test_netmask_plus_without_an_entry_says_nothing_and_keeps_the_mask() -> None:
    out = run(plumbed("qfe0"), "qfe0", "203.0.113.10", "netmask", "+", "up")
    assert lg(out.config, "qfe0").address == v4("203.0.113.10/24")
    assert out.stdout == ()
    config = after(plumbed("qfe0"), ["qfe0", "203.0.113.10/28", "up"])
    out = run(config, "qfe0", "netmask", "+")
    assert lg(out.config, "qfe0").address == v4("203.0.113.10/28")
    assert out.stdout == ()


def test_netmask_plus_message_names_the_addif_logical() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.100", "up"])
    out = run(config, "qfe0", "addif", "192.0.2.70", "netmask", "+", "up")
    assert out.stdout == (
        "Created new logical interface qfe0:1",
        "Setting netmask of qfe0:1 to 255.255.255.192",
    )


def test_broadcast_plus_and_explicit_broadcast() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "netmask", "255.255.255.0", "up"])
    out = run(config, "qfe0", "broadcast", "192.0.2.127")
    assert lg(out.config, "qfe0").broadcast == IPv4Address("192.0.2.127")
    back = run(out.config, "qfe0", "broadcast", "+")
    assert lg(back.config, "qfe0").broadcast == IPv4Address("192.0.2.255")


def test_netmask_does_not_recompute_the_broadcast() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "netmask", "255.255.255.0", "up"])
    out = run(config, "qfe0", "netmask", "255.255.255.128")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/25")
    assert lg(out.config, "qfe0").broadcast == IPv4Address("192.0.2.255")
    fixed = run(out.config, "qfe0", "broadcast", "+")
    assert lg(fixed.config, "qfe0").broadcast == IPv4Address("192.0.2.127")


def test_first_bare_word_is_the_address_second_the_destination() -> None:
    out = run(plumbed("qfe0"), "qfe0", "192.0.2.10", "192.0.2.20", "up")
    logical = lg(out.config, "qfe0")
    assert logical.address == v4("192.0.2.10/24")
    assert logical.destination == IPv4Address("192.0.2.20")
    kernel = desired_kernel(out.config, Scope(frozenset({("qfe0", INET)})), make_kernel("qfe0", "qfe1"))
    (address,) = kernel.addresses
    assert (address.address, address.peer) == (v4("192.0.2.10/24"), IPv4Address("192.0.2.20"))


def test_host_names_resolve_from_the_hosts_file() -> None:
    out = run(plumbed("qfe0"), "qfe0", "myhost-qfe0", "up")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/24")
    out = run(plumbed("qfe0", family=INET6), "qfe0", "inet6", "addif", "myhost6/64", "up")
    assert lg(out.config, "qfe0:1", INET6).address == IPv6Interface("2001:db8::100/64")
    error = config_error(plumbed("qfe0"), "qfe0", "nosuchhost", "up")
    assert error.message == "nosuchhost: bad address"


# --------------------------------------------------------------------------
# §4.2, §4.4 addif, removeif, plumb, unplumb
# --------------------------------------------------------------------------


def test_addif_takes_the_lowest_free_unit_and_fills_gaps() -> None:
    config = after(
        plumbed("qfe0"),
        ["qfe0", "192.0.2.10", "up"],
        ["qfe0", "addif", "192.0.2.11"],
        ["qfe0", "addif", "192.0.2.12"],
        ["qfe0", "addif", "192.0.2.13"],
        ["qfe0", "removeif", "192.0.2.11"],
    )
    assert units(config, "qfe0") == [0, 2, 3]
    out = run(config, "qfe0", "addif", "192.0.2.14", "up")
    assert out.stdout == ("Created new logical interface qfe0:1",)
    assert lg(out.config, "qfe0:1").address == v4("192.0.2.14/24")
    again = run(out.config, "qfe0", "addif", "192.0.2.15")
    assert again.stdout == ("Created new logical interface qfe0:4",)


def test_words_after_addif_apply_to_the_new_logical() -> None:
    out = run(plumbed("qfe0"), "qfe0", "192.0.2.100", "up", "addif", "192.0.2.10", "deprecated", "-failover",
              "up")
    data, test = lg(out.config, "qfe0"), lg(out.config, "qfe0:1")
    assert (data.up, data.deprecated, data.nofailover) == (True, False, False)
    assert test.address == v4("192.0.2.10/24")
    assert (test.up, test.deprecated, test.nofailover) == (True, True, True)
    assert out.stdout == ("Created new logical interface qfe0:1",)


def test_one_line_can_add_several_logicals() -> None:
    # ifconfig.c addif(): "ifconfig le0 addif A netmask + up addif B netmask + up".
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.100", "up"])
    out = run(config, "qfe0", "addif", "192.0.2.10", "netmask", "+", "up",
              "addif", "192.0.2.70", "netmask", "+", "up")
    assert out.stdout == (
        "Created new logical interface qfe0:1",
        "Setting netmask of qfe0:1 to 255.255.255.0",
        "Created new logical interface qfe0:2",
        "Setting netmask of qfe0:2 to 255.255.255.192",
    )
    assert [lg(out.config, n).address for n in ("qfe0", "qfe0:1", "qfe0:2")] == [
        v4("192.0.2.100/24"), v4("192.0.2.10/24"), v4("192.0.2.70/26")
    ]
    # removeif, unlike addif, works on the current name: after addif it is a logical.
    assert config_error(config, "qfe0", "addif", "192.0.2.10", "removeif", "192.0.2.100").message == (
        "removeif: bad physical interface name qfe0:1"
    )


def test_addif_on_a_logical_name_is_refused() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"], ["qfe0", "addif", "192.0.2.11"])
    assert config_error(config, "qfe0:1", "addif", "192.0.2.12").message == (
        "addif: bad physical interface name qfe0:1"
    )


def test_removeif_deletes_the_logical_holding_the_address() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"], ["qfe0", "addif", "192.0.2.11", "up"])
    out = run(config, "qfe0", "removeif", "192.0.2.11")
    assert units(out.config, "qfe0") == [0]


def test_removeif_of_unit_0_is_refused() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"])
    assert config_error(config, "qfe0", "removeif", "192.0.2.10").message == (
        "removeif: can't remove interface: qfe0"
    )
    with pytest.raises(ConfigError):
        run(config, "qfe0", "removeif", "192.0.2.99")


def test_plumb_of_a_plumbed_interface_warns_and_succeeds() -> None:
    config = plumbed("qfe0")
    out = run(config, "qfe0", "plumb")
    assert out.stderr == ("SIOCSLIFNAME for ip: qfe0: already exists",)
    assert out.config == config
    assert out.touched == frozenset()


def test_plumb_marks_the_family_and_brings_the_link_up() -> None:
    out = run(host("qfe0"), "qfe0", "inet6", "plumb")
    qfe0 = itf(out.config, "qfe0")
    assert qfe0.plumbed == frozenset({INET6})
    assert qfe0.link_up
    assert out.touched == frozenset({("qfe0", INET6)})


def test_plumb_of_an_unknown_interface() -> None:
    with pytest.raises(NoSuchInterface) as info:
        run(host("qfe0"), "qfe9", "plumb")
    assert info.value.message == "plumb: qfe9: no such interface"


def test_unplumb_one_family_keeps_the_group_until_no_family_is_left() -> None:
    config = after(host("qfe0"), ["qfe0", "plumb"], ["qfe0", "inet6", "plumb"],
                   ["qfe0", "192.0.2.10", "group", "prod", "standby", "up"])
    assert itf(config, "qfe0").group == "prod"
    one = run(config, "qfe0", "unplumb").config
    assert itf(one, "qfe0").plumbed == frozenset({INET6})
    assert itf(one, "qfe0").group == "prod"
    assert itf(one, "qfe0").logicals_of(INET) == ()
    none = run(one, "qfe0", "inet6", "unplumb").config
    qfe0 = itf(none, "qfe0")
    assert (qfe0.plumbed, qfe0.group, qfe0.standby, qfe0.link_up, qfe0.logicals) == (
        frozenset(), "", False, False, ()
    )


def test_unplumb_of_logical_unit_0_is_refused() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"])
    assert config_error(config, "qfe0:0", "unplumb").message == (
        "unplumb: Cannot unplumb qfe0:0: Invalid interface"
    )


def test_unplumb_of_a_logical_removes_it() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"], ["qfe0", "addif", "192.0.2.11", "up"])
    assert units(run(config, "qfe0:1", "unplumb").config, "qfe0") == [0]


# --------------------------------------------------------------------------
# §4.5 group, phyint and logical flags
# --------------------------------------------------------------------------


def test_group_on_a_logical_is_refused() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"], ["qfe0", "addif", "192.0.2.11"])
    assert config_error(config, "qfe0:1", "group", "prod").message == (
        "setifgroupname: SIOCSLIFGROUPNAME: qfe0:1: Invalid argument"
    )


def test_group_on_loopback_is_refused() -> None:
    config = host("qfe0")
    assert config_error(config, "lo", "group", "prod").message == (
        "setifgroupname: SIOCSLIFGROUPNAME: lo: Invalid argument"
    )


@pytest.mark.parametrize(
    ("name", "ok"),
    [("g" * 31, True), ("g" * 32, False), ("\u00e9" * 15 + "g", True), ("\u00e9" * 16, False)],
    ids=["31-ascii", "32-ascii", "31-bytes-utf8", "32-bytes-utf8"],
)
def test_group_name_is_at_most_31_bytes(name: str, ok: bool) -> None:
    config = plumbed("qfe0")
    if ok:
        assert itf(run(config, "qfe0", "group", name).config, "qfe0").group == name
    else:
        error = config_error(config, "qfe0", "group", name)
        assert error.message.startswith(f"setifgroupname: {name}: name too long")


def test_group_joins_both_families_and_empty_name_leaves() -> None:
    config = after(host("qfe0"), ["qfe0", "plumb"], ["qfe0", "inet6", "plumb"])
    joined = run(config, "qfe0", "group", "prod")
    assert itf(joined.config, "qfe0").group == "prod"
    assert joined.start_mpathd
    assert joined.touched == frozenset({("qfe0", INET), ("qfe0", INET6)})
    left = run(joined.config, "qfe0", "group", "")
    assert itf(left.config, "qfe0").group == ""
    assert not left.start_mpathd


def test_group_quotes_in_a_file_are_literal() -> None:
    config = from_file(plumbed("qfe0"), 'group ""\n192.0.2.10 up\n')
    assert itf(config, "qfe0").group == '""'


def test_standby_and_minus_standby_are_phyint_flags() -> None:
    config = after(host("qfe0"), ["qfe0", "plumb"], ["qfe0", "inet6", "plumb"])
    on = run(config, "qfe0", "standby")
    assert itf(on.config, "qfe0").standby
    assert on.touched == frozenset({("qfe0", INET), ("qfe0", INET6)})
    assert not itf(run(on.config, "qfe0", "inet6", "-standby").config, "qfe0").standby


def test_deprecated_and_failover_flags_are_per_logical() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.100", "up"], ["qfe0", "addif", "192.0.2.10", "up"])
    out = run(config, "qfe0:1", "deprecated", "-failover")
    assert (lg(out.config, "qfe0:1").deprecated, lg(out.config, "qfe0:1").nofailover) == (True, True)
    assert (lg(out.config, "qfe0").deprecated, lg(out.config, "qfe0").nofailover) == (False, False)
    back = run(out.config, "qfe0:1", "-deprecated", "failover")
    assert (lg(back.config, "qfe0:1").deprecated, lg(back.config, "qfe0:1").nofailover) == (False, False)


def test_minus_failover_alone_makes_a_deprecated_kernel_address() -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "-failover", "up"])
    kernel = desired_kernel(config, Scope(frozenset({("qfe0", INET)})), make_kernel("qfe0", "qfe1"))
    (address,) = kernel.addresses
    assert address.deprecated
    assert not lg(config, "qfe0").deprecated


@pytest.mark.parametrize(("mtu", "ok"), [("67", False), ("68", True), ("9000", True), ("65535", True),
                                         ("65536", False)])
def test_mtu_range(mtu: str, ok: bool) -> None:
    config = plumbed("qfe0")
    if ok:
        assert itf(run(config, "qfe0", "mtu", mtu).config, "qfe0").mtu == int(mtu)
    else:
        # Solaris setifmtu: Perror0_exit("setifmtu: SIOCSLIFMTU") on EINVAL.
        assert config_error(config, "qfe0", "mtu", mtu).message == (
            "setifmtu: SIOCSLIFMTU: qfe0: Invalid argument")


def test_a_logical_mtu_above_the_links_is_refused() -> None:
    # ip_sioctl_mtu: EINVAL above the link's maximum (ill_max_frag).
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"], ["qfe0", "addif", "192.0.2.11"])
    assert config_error(config, "qfe0:1", "mtu", "9000").message == (
        "setifmtu: SIOCSLIFMTU: qfe0:1: Invalid argument")


def test_ether_sets_and_validates_the_mac() -> None:
    config = plumbed("qfe0")
    out = run(config, "qfe0", "ether", "2:0:0:a:b:c")
    assert itf(out.config, "qfe0").mac == "02:00:00:0a:0b:0c"
    assert config_error(config, "qfe0", "ether", "1:0:5e:0:0:1").message == "ether: qfe0: Invalid argument"
    status = run(config, "qfe0", "ether")
    assert status.status == ("qfe0",)
    assert status.config == config
    assert status.touched == frozenset()


def test_arp_and_minus_arp() -> None:
    off = run(plumbed("qfe0"), "qfe0", "-arp")
    assert itf(off.config, "qfe0").noarp
    assert not itf(run(off.config, "qfe0", "arp").config, "qfe0").noarp
    with pytest.raises(ParseError) as info:
        parse_argv(["qfe0", "inet6", "-arp"])
    assert info.value.message == "ifconfig: Operation -arp not supported for inet6"


@pytest.mark.parametrize("word", ["trailers", "-trailers"])
def test_trailers_are_accepted_and_ignored(word: str) -> None:
    config = after(plumbed("qfe0"), ["qfe0", "192.0.2.10", "up"])
    out = run(config, "qfe0", word)
    assert out.config == config
    assert out.touched == frozenset()


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["qfe0", "zone", "z"], "zone"),
        (["qfe0", "xmit"], "xmit"),
        (["qfe0", "index", "5"], "index"),
        (["qfe0", "inet6", "-nud"], "-nud"),
        (["qfe0", "dhcp"], "dhcp"),
    ],
)
def test_unsupported_words_are_refused(argv: list[str], word: str) -> None:
    with pytest.raises(UnsupportedError) as info:
        parse_argv(argv)
    assert info.value.message.startswith(f"ifconfig: {word}: not supported on Linux (")
    assert info.value.position == Position("", 0, argv.index(word) + 1)


def test_wrong_family_keyword_is_refused() -> None:
    with pytest.raises(ParseError) as parse_info:
        parse_argv(["qfe0", "inet6", "netmask", "+"])
    assert parse_info.value.message == "ifconfig: Operation netmask not supported for inet6"
    with pytest.raises(ParseError):
        parse_hostname_text("broadcast +\n", "qfe0", INET6, "hostname6.qfe0")
    # The evaluator checks it too, for commands that do not come from the parser.
    where = Position("", 0, 3)
    command = Command("qfe0", INET6, (Action("broadcast", "+", where),), Position("", 0, 1))
    with pytest.raises(ConfigError) as info:
        evaluate(plumbed("qfe0", family=INET6), command, ENV)
    assert info.value.message == "Operation broadcast not supported for inet6"
    assert info.value.position == where


def test_ipv4_label_longer_than_15_characters_is_refused() -> None:
    long14, long13 = "abcdefghijklm0", "abcdefghijkl0"
    config = after(host(long14, long13), [long14, "plumb"], [long13, "plumb"],
                   [long14, "192.0.2.10", "up"], [long13, "192.0.2.20", "up"])
    error = config_error(config, long14, "addif", "192.0.2.11")
    assert error.message == f"{long14}:1: logical interface name too long for Linux (at most 15)"
    assert lg(run(config, long13, "addif", "192.0.2.21").config, f"{long13}:1").address == v4("192.0.2.21/24")
    assert config_error(config, f"{long14}:1", "plumb").message.startswith(f"{long14}:1: logical interface")
    # IPv6 keeps logical names in the state store only: no limit.
    six = after(config, [long14, "inet6", "plumb"])
    out = run(six, long14, "inet6", "addif", "2001:db8::10/64", "up")
    assert lg(out.config, f"{long14}:1", INET6).address == IPv6Interface("2001:db8::10/64")


# --------------------------------------------------------------------------
# §1 item 7: addif on an unusable group member
# --------------------------------------------------------------------------


def group_pair(*, failed: bool = False, offline: bool = False, qfe1_plumbed: bool = True) -> Config:
    """qfe0 and qfe1 in group prod with one data address each; qfe0's flags as the store has them."""
    config = after(host("qfe0", "qfe1"), ["qfe0", "plumb"], ["qfe0", "192.0.2.10", "group", "prod", "up"])
    if qfe1_plumbed:
        config = after(config, ["qfe1", "plumb"], ["qfe1", "192.0.2.11", "group", "prod", "up"])
    return config.with_interface(replace(itf(config, "qfe0"), failed=failed, offline=offline))


@pytest.mark.parametrize("flag", ["failed", "offline"])
def test_addif_on_a_failed_or_offline_member_lands_on_another(flag: str) -> None:
    config = group_pair(failed=flag == "failed", offline=flag == "offline")
    out = run(config, "qfe0", "addif", "192.0.2.20", "up")
    assert out.stdout == ("Created new logical interface qfe1:1",)
    moved = lg(out.config, "qfe1:1")
    assert (moved.address, moved.home, moved.up) == (v4("192.0.2.20/24"), "qfe0", True)
    assert units(out.config, "qfe0") == [0]
    assert ("qfe1", INET) in out.touched


def test_addif_on_a_failed_member_set_by_hand() -> None:
    config = after(group_pair(), ["qfe0", "failed"])
    assert itf(config, "qfe0").failed
    out = run(config, "qfe0", "addif", "192.0.2.20", "up")
    assert lg(out.config, "qfe1:1").home == "qfe0"


def test_addif_on_an_inactive_standby_lands_on_another() -> None:
    config = after(
        host("qfe0", "qfe1"),
        ["qfe0", "plumb"],
        ["qfe0", "192.0.2.100", "group", "prod", "up"],
        ["qfe1", "plumb"],
        ["qfe1", "192.0.2.11", "deprecated", "-failover", "group", "prod", "standby", "up"],
    )
    assert itf(config, "qfe1").inactive
    out = run(config, "qfe1", "addif", "192.0.2.20", "up")
    assert out.stdout == ("Created new logical interface qfe0:1",)
    assert lg(out.config, "qfe0:1").home == "qfe1"


def test_addif_stays_home_when_no_member_is_usable() -> None:
    config = group_pair(failed=True, qfe1_plumbed=False)
    out = run(config, "qfe0", "addif", "192.0.2.20", "up")
    assert out.stdout == ("Created new logical interface qfe0:1",)
    assert lg(out.config, "qfe0:1").home == ""
    both_failed = group_pair(failed=True)
    both_failed = both_failed.with_interface(replace(itf(both_failed, "qfe1"), failed=True))
    assert run(both_failed, "qfe0", "addif", "192.0.2.20").stdout == ("Created new logical interface qfe0:1",)


def test_minus_failover_after_a_moved_addif_is_refused() -> None:
    config = group_pair(failed=True)
    assert config_error(config, "qfe0", "addif", "192.0.2.20", "-failover").message == (
        "can't set -failover on failed/standby/offlined interface qfe1:1"
    )
    healthy = group_pair()
    out = run(healthy, "qfe0", "addif", "192.0.2.20", "deprecated", "-failover", "up")
    assert lg(out.config, "qfe0:1").nofailover


def test_inactive_is_computed_for_a_standby_without_data_address() -> None:
    text = "myhost-qfe1 netmask + broadcast + deprecated -failover group prod standby up\n"
    config = from_file(after(host("qfe0", "qfe1"), ["qfe1", "plumb"]), text, "qfe1")
    qfe1 = itf(config, "qfe1")
    assert (qfe1.standby, qfe1.inactive) == (True, True)
    assert not itf(run(config, "qfe1", "-standby").config, "qfe1").inactive
    assert not itf(run(config, "qfe1", "failed").config, "qfe1").inactive
    with_data = run(config, "qfe1:1", "plumb").config
    with_data = run(with_data, "qfe1:1", "192.0.2.20", "up").config
    assert not itf(with_data, "qfe1").inactive
    down_data = run(with_data, "qfe1:1", "down").config
    assert itf(down_data, "qfe1").inactive


# --------------------------------------------------------------------------
# -a
# --------------------------------------------------------------------------


def two_nics() -> Config:
    return after(
        host("qfe0", "qfe1", loopback=False),
        ["qfe0", "plumb"],
        ["qfe0", "192.0.2.10", "up", "addif", "192.0.2.11"],
        ["qfe1", "plumb"],
        ["qfe1", "192.0.2.20", "up"],
    )


def with_ipv6(config: Config) -> Config:
    return after(config, ["qfe0", "inet6", "plumb"], ["qfe0", "inet6", "addif", "2001:db8::10/64", "up"])


def test_minus_a_applies_the_words_to_every_selected_logical() -> None:
    config = two_nics()
    out = run(config, "-au", "netmask", "255.255.255.128")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/25")
    assert lg(out.config, "qfe1").address == v4("192.0.2.20/25")
    assert lg(out.config, "qfe0:1").address == v4("192.0.2.11/24")  # down: not selected by -u
    assert out.touched == frozenset({("qfe0", INET), ("qfe1", INET)})
    every = run(config, "-a", "deprecated")
    assert all(x.deprecated for i in every.config.interfaces for x in i.logicals)
    downs = run(config, "-ad", "up")
    assert lg(downs.config, "qfe0:1").up


def test_minus_a_skips_ipv6_logicals_for_ipv4_only_words() -> None:
    # Solaris ifconfig() calls a family-bound word's function only on
    # logicals of its family; the IPv6 ones are passed over silently.
    config = with_ipv6(two_nics())
    out = run(config, "-a", "netmask", "255.255.255.128", "broadcast", "+")
    assert lg(out.config, "qfe0").address == v4("192.0.2.10/25")
    assert lg(out.config, "qfe0").broadcast == IPv4Address("192.0.2.127")
    assert lg(out.config, "qfe0:1", INET6).address == IPv6Interface("2001:db8::10/64")


def test_minus_a_with_family_letters() -> None:
    config = with_ipv6(two_nics())
    out = run(config, "-a6", "deprecated")
    assert lg(out.config, "qfe0:1", INET6).deprecated
    assert not lg(out.config, "qfe0").deprecated
    out4 = run(config, "-a4", "deprecated")
    assert lg(out4.config, "qfe0").deprecated
    assert not lg(out4.config, "qfe0:1", INET6).deprecated


def test_minus_a_plumb_plumbs_every_interface_for_inet() -> None:
    config = host("qfe0", "qfe1")
    out = run(config, "-a", "plumb")
    assert [i.name for i in out.config.interfaces if INET in i.plumbed] == ["lo", "qfe0", "qfe1"]
    assert out.touched == frozenset({("qfe0", INET), ("qfe1", INET)})
    six = run(config, "-a", "inet6", "plumb")
    assert {i.name for i in six.config.interfaces if INET6 in i.plumbed} == {"qfe0", "qfe1"}


# --------------------------------------------------------------------------
# Errors: positions, and all or nothing
# --------------------------------------------------------------------------


def test_errors_carry_the_argv_position() -> None:
    config = plumbed("qfe0")
    error = config_error(config, "qfe0", "192.0.2.10", "up", "mtu", "20")
    assert error.position == Position("", 0, 5)
    assert str(error) == "setifmtu: SIOCSLIFMTU: qfe0: Invalid argument"
    error = config_error(config, "qfe0", "192.0.2.10", "group", "g" * 32, "up")
    assert error.position == Position("", 0, 4)
    error = config_error(config, "qfe0:0", "unplumb")
    assert error.position == Position("", 0, 2)
    with pytest.raises(NoSuchInterface) as info:
        run(config, "qfe7", "192.0.2.10")
    assert info.value.position == Position("", 0, 1)


def test_errors_carry_the_file_position() -> None:
    text = "myhost netmask + broadcast + up\n\taddif 192.0.2.11 mtu 20\n"
    commands = parse_hostname_text(text, "qfe0", INET, "etc/hostname.qfe0")
    config = evaluate(plumbed("qfe0"), commands[0], ENV).config
    with pytest.raises(ConfigError) as info:
        evaluate(config, commands[1], ENV)
    assert info.value.position == Position("etc/hostname.qfe0", 2, 23)
    assert str(info.value) == "etc/hostname.qfe0:2:23: setifmtu: SIOCSLIFMTU: qfe0:1: Invalid argument"


def test_netmask_error_points_at_the_netmask_word() -> None:
    config = plumbed("qfe0")
    with pytest.raises(ConfigError) as info:
        run(config, "qfe0", "192.0.2.10", "netmask", "255.0.255.0")
    assert info.value.message == "255.0.255.0: non-contiguous netmask is not supported on Linux"
    assert info.value.position == Position("", 0, 3)


def test_an_error_leaves_nothing_applied(tmp_path: Path) -> None:
    """A failing word raises before anything reaches the kernel or the store."""
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"))

    async def attempt() -> None:
        host_ = await read_host(kernel, tmp_path)
        plumb = await run_command(kernel, host_, parse_argv(["qfe0", "plumb"]), dry_run=False)
        assert plumb.plan
        kernel.reset()
        host_ = await read_host(kernel, tmp_path)
        before = host_.config
        with pytest.raises(ConfigError):
            await run_command(kernel, host_, parse_argv(["qfe0", "192.0.2.10", "group", "prod", "up",
                                                         "mtu", "20"]), dry_run=False)
        assert kernel.executed == []
        assert merge(kernel.state(), Store(tmp_path).load().interfaces) == before

    asyncio.run(attempt())
    stored = Store(tmp_path).load()
    assert stored.get("qfe0") is not None
    assert stored.get("qfe0").group == ""  # type: ignore[union-attr]


def test_ipv6_address_without_prefix_defaults() -> None:
    config = plumbed("qfe0", family=INET6)
    out = run(config, "qfe0", "inet6", "addif", "2001:db8::5", "up")
    assert lg(out.config, "qfe0:1", INET6).address == IPv6Interface("2001:db8::5/64")
    assert lg(out.config, "qfe0:1", INET6).broadcast is None
    assert lg(out.config, "qfe0:1", INET6).address.ip == IPv6Address("2001:db8::5")  # type: ignore[union-attr]
