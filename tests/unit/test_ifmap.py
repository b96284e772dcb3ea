"""The interface map (``ipmp.host.ifmap``): parsing, checking against links, and the name translation.

The kernel side is a list of ``KLink`` as ``Kernel.linux_links``
returns it (Linux names, altnames as the kernel has them); what the real
kernel does with altnames is in tests/netns/test_ifmap.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from ipaddress import IPv4Interface, ip_address, ip_network
from pathlib import Path

import pytest

from ipmp.admin.bootfiles import boot
from ipmp.admin.session import CommandResult, read_host, run_command
from ipmp.config.parse import parse_argv
from ipmp.errors import Position
from ipmp.host.ifmap import (
    MAX_SOLARIS_NAME,
    MapEntry,
    NameMap,
    canonical_name,
    check_ifmap,
    missing_altnames,
    parse_ifmap,
    read_ifmap,
)
from ipmp.linux.ops import (
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelRoute,
    DelRule,
    SetLink,
    SetSysctl,
    command,
)
from ipmp.model import Family, KAddress, KernelState, KLink, KRoute, KRule
from tests.fakes import FakeKernel, make_kernel

LINKS = (
    KLink("lo", 1, loopback=True),
    KLink("enp1s0f0", 2, altnames=("enx020000000101",)),
    KLink("enp1s0f1", 3),
    KLink("eth9", 4, altnames=("hme9",)),
)


def entries(text: str) -> tuple[MapEntry, ...]:
    found, errors = parse_ifmap(text, "ifmap")
    assert errors == ()
    return found


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


def test_parse_pairs_comments_and_blank_lines() -> None:
    found, errors = parse_ifmap("# solaris linux\n\nhme0 enp1s0f0\n  hme1\tenp1s0f1   # right port\n", "m")
    assert errors == ()
    assert [(e.solaris, e.linux) for e in found] == [("hme0", "enp1s0f0"), ("hme1", "enp1s0f1")]
    assert found[1].position == Position("m", 4, 3)
    assert found[1].linux_position == Position("m", 4, 8)


@pytest.mark.parametrize(
    ("line", "col", "message"),
    [
        ("hme0", 1, "ifmap: expected 'solaris-name linux-name', got 1 word(s)"),
        ("hme0 enp1s0f0 extra", 15, "ifmap: expected 'solaris-name linux-name', got 3 word(s)"),
        ("0hme enp1s0f0", 1, "ifmap: 0hme: not a Solaris interface name"),
        ("hme enp1s0f0", 1, "ifmap: hme: not a Solaris interface name"),
        ("hme0:1 enp1s0f0", 1, "ifmap: hme0:1: not a Solaris interface name"),
        ("hme-0 enp1s0f0", 1, "ifmap: hme-0: not a Solaris interface name"),
        ("abcdefghijkl0 enp1s0f0", 1, "ifmap: abcdefghijkl0: Solaris name too long: at most 12"),
    ],
)
def test_parse_errors_name_the_line_and_column(line: str, col: int, message: str) -> None:
    found, errors = parse_ifmap(f"# first\n  {line}\n", "/etc/ipmp/ifmap")
    assert found == ()
    (error,) = errors
    assert str(error).startswith(f"/etc/ipmp/ifmap:2:{col + 2}: {message}")


def test_longest_solaris_name_leaves_room_for_two_digit_units() -> None:
    name = "a" * (MAX_SOLARIS_NAME - 1) + "0"
    found, errors = parse_ifmap(f"{name} enp1s0f0\n")
    assert errors == () and found[0].solaris == name
    assert len(f"{name}:99") == 15


def test_every_bad_line_is_reported_and_good_lines_kept() -> None:
    found, errors = parse_ifmap("hme0 enp1s0f0\nbad\nhme1 enp1s0f1\n1x y z\n", "m")
    assert [e.solaris for e in found] == ["hme0", "hme1"]
    assert [err.position.line for err in errors if err.position] == [2, 4]


def test_read_ifmap_without_a_file_is_empty(tmp_path: Path) -> None:
    assert read_ifmap(tmp_path) == ((), ())
    (tmp_path / "etc" / "ipmp").mkdir(parents=True)
    (tmp_path / "etc" / "ipmp" / "ifmap").write_text("hme0 enp1s0f0\n")
    found, _ = read_ifmap(tmp_path)
    assert found[0].position.source == str(tmp_path / "etc" / "ipmp" / "ifmap")


# --------------------------------------------------------------------------
# Checking against the kernel
# --------------------------------------------------------------------------


def test_a_good_map_has_no_errors() -> None:
    good = entries("hme0 enp1s0f0\nhme1 enp1s0f1\nhme9 eth9\n")
    assert check_ifmap(good, LINKS) == ()


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("hme0 ens9\n", "ifmap:1:6", "ifmap: ens9: no such Linux interface"),
        ("hme0 enp1s0f0\nhme0 enp1s0f1\n", "ifmap:2:1", "ifmap: hme0: mapped already, on line 1"),
        ("hme0 enp1s0f0\nhme1 enp1s0f0\n", "ifmap:2:6", "ifmap: enp1s0f0: already mapped to hme0, on line 1"),
        # the same NIC through one of its altnames
        ("hme0 enp1s0f0\nhme1 enx020000000101\n", "ifmap:2:6",
         "ifmap: enx020000000101: already mapped to hme0, on line 1"),
        ("hme9 enp1s0f0\n", "ifmap:1:1", "ifmap: hme9: already a name of Linux interface eth9"),
        ("eth9 enp1s0f0\n", "ifmap:1:1", "ifmap: eth9: already a name of Linux interface eth9"),
        # The loopback is lo0 (illumos ipif_loopback_name) and lo0 is only the loopback.
        ("lo1 lo\n", "ifmap:1:5", "ifmap: lo: the loopback is always lo0"),
        ("lo0 enp1s0f0\n", "ifmap:1:1", "ifmap: lo0: the loopback's name, not a NIC's"),
    ],
)
def test_check_errors(text: str, where: str, message: str) -> None:
    (error,) = check_ifmap(entries(text), LINKS)
    assert str(error) == f"{where}: {message}"


def test_a_nic_may_be_named_by_an_altname_and_keep_its_own_name() -> None:
    assert check_ifmap(entries("hme0 enx020000000101\nenp1s0f1 enp1s0f1\n"), LINKS) == ()
    names = NameMap.of(entries("hme0 enx020000000101\nenp1s0f1 enp1s0f1\n"), LINKS)
    assert names.pairs == (("enp1s0f0", "hme0"), ("lo", "lo0"))


def test_missing_altnames_are_those_the_kernel_lacks() -> None:
    text = "hme0 enp1s0f0\nhme9 eth9\nhme1 enp1s0f1\nbad0 nowhere\n"
    assert missing_altnames(entries(text), LINKS) == (("enp1s0f0", "hme0"), ("enp1s0f1", "hme1"))


def test_the_name_map_keeps_only_valid_entries() -> None:
    names = NameMap.of(entries("hme0 enp1s0f0\nhme0 enp1s0f1\nhme9 enp1s0f1\nqfe0 ens9\n"), LINKS)
    # hme0 twice: the first wins; hme9 belongs to eth9; ens9 does not exist.
    assert names.pairs == (("enp1s0f0", "hme0"), ("lo", "lo0"))
    # Without a map only the loopback is renamed; without a loopback nothing.
    assert NameMap.of((), LINKS).pairs == (("lo", "lo0"),)
    assert not NameMap.of((), LINKS[1:])


# --------------------------------------------------------------------------
# Translation
# --------------------------------------------------------------------------

NAMES = NameMap({"enp1s0f0": "hme0", "enp1s0f1": "hme1"})


def test_links_take_the_solaris_name_and_keep_the_others() -> None:
    link = NAMES.link(replace(LINKS[1], altnames=("enx020000000101", "hme0")))
    assert (link.name, link.altnames) == ("hme0", ("enp1s0f0", "enx020000000101"))
    assert NAMES.link(LINKS[3]) is LINKS[3]
    assert NAMES.view("eth9") == "eth9" and NAMES.linux("hme1") == "enp1s0f1" and NAMES.linux("x") == "x"


@pytest.mark.parametrize(
    ("label", "shown"),
    [("enp1s0f0", "hme0"), ("enp1s0f0:3", "hme0:3"), ("hme0:1", "hme0:1"), ("foo:1", "foo:1"),
     ("enp1s0f0x:1", "enp1s0f0x:1")],
)
def test_labels_with_the_linux_name_read_as_the_solaris_name(label: str, shown: str) -> None:
    assert NAMES.label(label, "enp1s0f0") == shown
    assert NameMap().label(label, "enp1s0f0") == label


def test_sysctl_keys_use_the_linux_name() -> None:
    assert NAMES.sysctl_key("net/ipv4/conf/hme0/rp_filter") == "net/ipv4/conf/enp1s0f0/rp_filter"
    key6 = "net/ipv6/conf/hme1/keep_addr_on_down"
    assert NAMES.sysctl_key(key6) == "net/ipv6/conf/enp1s0f1/keep_addr_on_down"
    assert NAMES.sysctl_key("net/ipv4/conf/all/rp_filter") == "net/ipv4/conf/all/rp_filter"
    assert NAMES.sysctl_key("net/ipv4/ip_forward") == "net/ipv4/ip_forward"


def test_every_op_is_turned_into_linux_names() -> None:
    addr = KAddress("hme0", IPv4Interface("192.0.2.10/24"), label="hme0:1")
    route = KRoute(Family.INET, 1002, ip_network("192.0.2.0/24"), "hme0")
    rule = KRule(Family.INET, 100, ip_address("192.0.2.10"), 1002)
    ops = (SetSysctl("net/ipv4/conf/hme0/arp_ignore", "1"), SetLink("hme0", up=True), AddAddress(addr),
           DelAddress(addr), AddRoute(route), DelRoute(route), AddRule(rule), DelRule(rule))
    lines = [command(op) for op in NAMES.ops(ops)]
    assert lines == [
        "sysctl -w net.ipv4.conf.enp1s0f0.arp_ignore=1",
        "ip link set dev enp1s0f0 up",
        # the label keeps the Solaris name: the kernel takes any label
        "ip -4 addr add 192.0.2.10/24 dev enp1s0f0 label hme0:1 noprefixroute",
        "ip -4 addr del 192.0.2.10/24 dev enp1s0f0",
        "ip -4 route add 192.0.2.0/24 dev enp1s0f0 table 1002 proto 73",
        "ip -4 route del 192.0.2.0/24 dev enp1s0f0 table 1002 proto 73",
        "ip -4 rule add pref 100 from 192.0.2.10 lookup 1002 proto 73",
        "ip -4 rule del pref 100 from 192.0.2.10 lookup 1002 proto 73",
    ]
    assert NameMap().ops(ops) == ops


def test_canonical_name_accepts_any_name_of_a_link() -> None:
    kernel = KernelState(links=(NAMES.link(LINKS[1]), LINKS[3]))
    assert canonical_name(kernel, "hme0") == "hme0"
    assert canonical_name(kernel, "enp1s0f0") == "hme0"
    assert canonical_name(kernel, "enp1s0f0:2") == "hme0:2"
    assert canonical_name(kernel, "enx020000000101") == "hme0"
    assert canonical_name(kernel, "hme9:1") == "eth9:1"  # an altname the map does not name
    assert canonical_name(kernel, "nothere0") == "nothere0"


def test_the_loopback_is_lo0_with_or_without_a_map() -> None:
    names = NameMap.of((), LINKS)
    lo0 = names.link(LINKS[0])
    assert (lo0.name, lo0.altnames, lo0.loopback) == ("lo0", ("lo",), True)
    assert names.view("lo") == "lo0" and names.linux("lo0") == "lo"
    # 127.0.0.1's label is the Linux name: it reads as unit 0 of lo0.
    assert names.label("lo", "lo") == "lo0" and names.label("lo:1", "lo") == "lo0:1"
    kernel = KernelState(links=tuple(names.link(lk) for lk in LINKS))
    assert canonical_name(kernel, "lo0") == "lo0" and canonical_name(kernel, "lo") == "lo0"
    assert canonical_name(kernel, "lo:1") == "lo0:1"
    addr = KAddress("lo0", IPv4Interface("127.0.0.2/8"), label="lo0:1")
    assert [command(op) for op in names.ops((SetLink("lo0", mtu=16384), AddAddress(addr)))] == [
        "ip link set dev lo mtu 16384",
        "ip -4 addr add 127.0.0.2/8 dev lo label lo0:1 noprefixroute",
    ]
    # A renamed loopback is still lo0: the kernel's IFF_LOOPBACK decides, not the name.
    assert NameMap.of((), (KLink("lo9", 1, loopback=True),)).pairs == (("lo9", "lo0"),)


def test_the_loopback_keeps_lo_when_another_link_is_called_lo0() -> None:
    assert NameMap.of((), (*LINKS, KLink("lo0", 9))).pairs == ()
    assert NameMap.of((), (*LINKS[1:], KLink("eth5", 9, altnames=("lo0",)), LINKS[0])).pairs == ()


def test_a_map_line_for_the_loopback_says_what_is_already_true() -> None:
    assert check_ifmap(entries("lo0 lo\n"), LINKS) == ()
    assert NameMap.of(entries("lo0 lo\n"), LINKS).pairs == (("lo", "lo0"),)
    # No altname for it: lo0 lives in the view only.
    assert missing_altnames(entries("lo0 lo\nhme0 enp1s0f0\n"), LINKS) == (("enp1s0f0", "hme0"),)


# --------------------------------------------------------------------------
# ifconfig and boot over a kernel that reads under Solaris names
# --------------------------------------------------------------------------


def mapped_kernel() -> FakeKernel:
    """Two NICs as ``Kernel`` shows them with the map hme0/hme1 -> enp1s0f0/enp1s0f1."""
    state = make_kernel("hme0", "hme1")
    links = tuple(replace(lk, altnames=(NAMES.linux(lk.name),)) if lk.name != "lo" else lk
                  for lk in state.links)
    return FakeKernel(replace(state, links=links))


def test_ifconfig_takes_the_linux_name_and_acts_on_the_solaris_one(tmp_path: Path) -> None:
    kernel = mapped_kernel()

    async def run(*argv: str) -> CommandResult:
        host = await read_host(kernel, tmp_path)
        return await run_command(kernel, host, parse_argv(list(argv)), dry_run=False)

    asyncio.run(run("enp1s0f0", "plumb", "192.0.2.100/24", "group", "prod", "up"))
    asyncio.run(run("enp1s0f0:1", "plumb", "192.0.2.10/24", "-failover", "deprecated", "up"))
    result = asyncio.run(run("enp1s0f0"))
    assert result.outcome.status == ("hme0",)
    host = asyncio.run(read_host(kernel, tmp_path))
    itf = host.config.get("hme0")
    assert itf is not None and itf.group == "prod"
    test = itf.logical(Family.INET, 1)
    assert test is not None and test.nofailover and str(test.address) == "192.0.2.10/24"
    labels = [a.label for a in kernel.state().addresses_of("hme0") if a.family is Family.INET]
    assert labels == ["hme0", "hme0:1"]
    assert host.stored.get("enp1s0f0") is None and host.stored.get("hme0") is not None


def test_boot_files_may_use_either_name_and_check_one_interface(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hostname.enp1s0f0").write_text("192.0.2.100/24 group prod up\n")
    (etc / "hostname.hme1").write_text("192.0.2.101/24 group prod up\n")
    kernel = mapped_kernel()
    result = asyncio.run(boot(kernel, tmp_path))
    assert result.failures == []
    assert result.configured == {Family.INET: ["hme0", "hme1"]}
    for name in ("hme0", "enp1s0f0", "hme1"):
        check = asyncio.run(boot(kernel, tmp_path, dry_run=True, only=name))
        assert check.in_sync and list(check.plans) == [NAMES.view(name)]
    kernel.run([DelAddress(KAddress("hme0", IPv4Interface("192.0.2.100/24"), label="hme0"))])
    assert not asyncio.run(boot(kernel, tmp_path, dry_run=True, only="enp1s0f0")).in_sync
    assert asyncio.run(boot(kernel, tmp_path, dry_run=True, only="hme1")).in_sync
    assert asyncio.run(boot(kernel, tmp_path, dry_run=True, only="lo")).plans == {}
