"""Addresses no NIC can hold are refused, naming the hosts line that gave them (issue 14).

Debian's installer writes ``127.0.1.1 HOST`` into ``/etc/hosts``; a Solaris
``hostname.hme0`` holding just the host's name then resolved to it (the first
matching line wins, even with the Solaris lines appended), and ipmp-boot
planned ``127.0.1.1/8`` on the NIC.  Each case goes through the real front
ends: the files under a temporary root, ``lookups.read_environment`` and
``bootfiles.boot_config`` as ``ipmp-boot`` uses them, or ``parse_argv`` as
``ifconfig`` does.
"""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from ipmp.admin.bootfiles import boot_config
from ipmp.config.addresses import impossible_reason
from ipmp.config.evaluate import evaluate
from ipmp.config.parse import parse_argv
from ipmp.errors import ConfigError
from ipmp.host import lookups
from ipmp.linux.view import merge
from ipmp.model import Config, Environment, Family
from tests.fakes import make_kernel

DEBIAN_HOSTS = """\
127.0.0.1\tlocalhost
127.0.1.1\tmyhost.example.org\tmyhost

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes

# appended from the Solaris host
192.0.2.10\tmyhost
"""


def _root(tmp_path: Path, hosts: str, files: dict[str, str]) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hosts").write_text(hosts)
    for name, text in files.items():
        (tmp_path / "etc" / name).write_text(text)
    return tmp_path


def _boot(root: Path, name: str, family: Family = Family.INET) -> Config:
    env = lookups.read_environment(root)
    config = merge(make_kernel("hme0", "hme1"), ())
    word = "hostname" if family is Family.INET else "hostname6"
    return boot_config(config, name, [(family, root / "etc" / f"{word}.{name}")], env)


def test_debian_127_0_1_1_line_is_refused_naming_both_files(tmp_path: Path) -> None:
    root = _root(tmp_path, DEBIAN_HOSTS, {"hostname.hme0": "myhost\n"})
    with pytest.raises(ConfigError) as caught:
        _boot(root, "hme0")
    message = str(caught.value)
    # FILE:LINE:COL of the word in the hostname file ...
    assert message.startswith(f"{root}/etc/hostname.hme0:1:1: myhost: ")
    # ... the hosts line responsible, what is wrong, and what to do.
    assert f"gives 127.0.1.1 ({root}/etc/hosts:2)" in message
    assert "a loopback address, which hme0 cannot hold" in message
    assert f"before line 2 of {root}/etc/hosts" in message
    assert "or write the address itself in hostname.hme0" in message


def test_host_address_first_in_hosts_is_taken(tmp_path: Path) -> None:
    hosts = "192.0.2.10 myhost\n" + DEBIAN_HOSTS
    root = _root(tmp_path, hosts, {"hostname.hme0": "myhost\n"})
    itf = _boot(root, "hme0").get("hme0")
    assert itf is not None
    lg = itf.logical(Family.INET, 0)
    assert lg is not None and lg.address is not None and str(lg.address) == "192.0.2.10/24"


def test_refused_in_a_multi_line_file_at_the_word(tmp_path: Path) -> None:
    files = {"hostname.hme0": "192.0.2.20 netmask + broadcast + group prod up\n"
                              "addif myhost netmask + broadcast + up\n"}
    root = _root(tmp_path, DEBIAN_HOSTS, files)
    with pytest.raises(ConfigError, match=r"hostname\.hme0:2:7: myhost: the hosts file gives 127\.0\.1\.1"):
        _boot(root, "hme0")


def test_literal_loopback_on_a_nic_is_refused_at_the_word(tmp_path: Path) -> None:
    root = _root(tmp_path, "", {"hostname.hme0": "127.0.1.1 up\n"})
    with pytest.raises(ConfigError) as caught:
        _boot(root, "hme0")
    assert str(caught.value) == (f"{root}/etc/hostname.hme0:1:1: "
                                 "127.0.1.1: a loopback address, which hme0 cannot hold")


def test_ipv6_name_resolving_to_loopback_is_refused(tmp_path: Path) -> None:
    root = _root(tmp_path, "::1 myhost6\n2001:db8::10 myhost6\n",
                 {"hostname6.hme0": "addif myhost6/64 up\n"})
    with pytest.raises(ConfigError, match=r"gives ::1 \(.*/etc/hosts:1\), a loopback address"):
        _boot(root, "hme0", Family.INET6)


def test_ifconfig_command_line_says_to_give_the_address() -> None:
    env = Environment(hosts=(("myhost", ip_address("127.0.1.1")),))
    config = merge(make_kernel("hme0"), ())
    config = evaluate(config, parse_argv(["hme0", "plumb"]), env).config
    with pytest.raises(ConfigError) as caught:
        evaluate(config, parse_argv(["hme0", "myhost", "up"]), env)
    # No file position on the command line: the Solaris-style text alone.
    assert str(caught.value) == ("myhost: the hosts file gives 127.0.1.1, a loopback address, which hme0 "
                                 "cannot hold; put a line with the host's own address before that line "
                                 "(the first match wins), or give the address itself")


def test_loopback_interface_keeps_its_loopback_address() -> None:
    config = merge(make_kernel("hme0", loopback=True), ())
    lo = next(i for i in config.interfaces if i.loopback)
    out = evaluate(config, parse_argv([lo.name, "127.0.0.1", "up"]), Environment())
    itf = out.config.get(lo.name)
    assert itf is not None and any(lg.address is not None for lg in itf.logicals)


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "a loopback address"),
    ("127.255.0.9", "a loopback address"),
    ("0.1.2.3", "an address of 0.0.0.0/8"),
    ("224.0.0.5", "a multicast address"),
    ("239.1.1.1", "a multicast address"),
    ("255.255.255.255", "the limited broadcast address"),
    ("240.0.0.1", "a class E (reserved) address"),
    ("::1", "a loopback address"),
    ("ff02::1", "a multicast address"),
    ("::ffff:192.0.2.1", "an IPv4-mapped address"),
    ("::224.0.0.1", "an IPv4-compatible multicast address"),
])
def test_impossible(address: str, reason: str) -> None:
    found = impossible_reason(ip_address(address))
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize("address", [
    "0.0.0.0", "::",  # "no address": Solaris takes it
    "169.254.1.1", "fe80::1",  # link-local: valid on its link
    "192.0.2.10", "10.0.0.1", "198.51.100.255", "2001:db8::1",
])
def test_possible(address: str) -> None:
    assert impossible_reason(ip_address(address)) is None
    assert impossible_reason(ip_address(address), loopback_interface=True) is None


def test_hosts_origin_follows_glibc_order_and_ipv4_view_of_ipv6_lines(tmp_path: Path) -> None:
    root = _root(tmp_path, "# c\n::ffff:192.0.2.7 mapped\n\n192.0.2.8 other mapped\n", {})
    env = lookups.read_environment(root)
    assert env.resolve("mapped", Family.INET) == ip_address("192.0.2.7")
    assert env.origin("MAPPED", Family.INET) == (str(root / "etc/hosts"), 2)
    assert env.origin("other", Family.INET) == (str(root / "etc/hosts"), 4)
    assert env.origin("nobody", Family.INET) is None
    assert Environment(hosts=(("a", ip_address("192.0.2.1")),)).origin("a", Family.INET) is None
