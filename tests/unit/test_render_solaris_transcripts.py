"""``ifconfig -a`` against what real Solaris hosts and Sun's manuals print.

Each case rebuilds a host from a published Solaris transcript and checks our
text byte for byte (trailing spaces as ``ifconfig`` writes them, reference
§4.6).  Addresses are moved into the documentation ranges; names, indexes,
flags and the order are the transcript's.  The rules behind them are in the
illumos source (pre-Clearview ``usr/src/uts/common/inet/ip/ip_if.c``):

* order: ``ip_sioctl_get_lifconf`` walks the IPv4 ill list, then the IPv6
  one; types in the order they were first plumbed (``ill_glist_insert``),
  instances by number (``ill_compare_ppa``);
* the failover placeholder: ``ipif_move`` builds it from ``ipif_zero``, so
  ``SIOCGLIFMTU`` answers 0, with the moved address's flags plus
  NOFAILOVER, minus UP;
* the loopback: ``ill_lookup_on_name`` makes lo0 MULTICAST, LOOPBACK,
  VIRTUAL, with an MTU of 8192 plus an IP and a TCP header.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Interface, IPv6Interface

from ipmp.config.render import render, solaris_order
from ipmp.model import Config, Family, Interface, Logical
from ipmp.mpathd.failover import fail_back, fail_over

V4 = frozenset({Family.INET})
V4V6 = frozenset({Family.INET, Family.INET6})


def v4(unit: int, addr: str | None, *, up: bool = True, deprecated: bool = False,
       nofailover: bool = False) -> Logical:
    address = IPv4Interface(addr) if addr is not None else None
    return Logical(Family.INET, unit, address, up=up, deprecated=deprecated, nofailover=nofailover)


def nic(name: str, index: int, *logicals: Logical, **kw: object) -> Interface:
    params: dict[str, object] = {"name": name, "index": index, "plumbed": V4, "link_up": True,
                                 "running": True, "logicals": logicals}
    params.update(kw)
    return Interface(**params)  # type: ignore[arg-type]


def linux_lo(plumbed: frozenset[Family] = V4) -> Interface:
    """The Linux loopback as the kernel boundary hands it over (named lo0 there).

    64 KiB MTU, IFF_NOARP, no IFF_MULTICAST: what Linux says of ``lo``.
    """
    logicals = [v4(0, "127.0.0.1/8")]
    if Family.INET6 in plumbed:
        logicals.append(Logical(Family.INET6, 0, IPv6Interface("::1/128"), up=True))
    return nic("lo0", 1, *logicals, loopback=True, noarp=True, multicast=False, mtu=65536,
               mac="00:00:00:00:00:00", plumbed=plumbed)


def headers(text: str) -> list[str]:
    return [line.split(": flags=")[0] for line in text.splitlines() if not line.startswith("\t")]


# --------------------------------------------------------------------------
# Order: a Solaris 10 host with ce5, ce6 and ce10 (ce10 has the lowest index)
# --------------------------------------------------------------------------

#: ``ifconfig -a`` of a Solaris 10 IPMP host, posted with its hostname files
#: in "Confused with entries in /etc/hostname.<interface> file"
#: (community.unix.com, thread 215150).  ce10 has index 2 and still comes last.
CE_HOST = (
    "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
    "\tinet 127.0.0.1 netmask ff000000 \n"
    "ce5: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER> mtu 1500 index 3\n"
    "\tinet 198.51.100.112 netmask ffffff00 broadcast 198.51.100.255\n"
    "\tether 0:14:4f:67:cb:d3 \n"
    "ce6: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER> mtu 1500 index 4\n"
    "\tinet 192.0.2.74 netmask ffffff00 broadcast 192.0.2.255\n"
    "\tgroupname accgrp\n"
    "\tether 0:14:4f:69:c2:c8 \n"
    "ce6:1: flags=1040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4> mtu 1500 index 4\n"
    "\tinet 192.0.2.108 netmask ffffff00 broadcast 192.0.2.255\n"
    "ce6:2: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 4\n"
    "\tinet 192.0.2.64 netmask ffffff00 broadcast 192.0.2.255\n"
    "ce10: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER> mtu 1500 index 2\n"
    "\tinet 192.0.2.84 netmask ffffff00 broadcast 192.0.2.255\n"
    "\tgroupname accgrp\n"
    "\tether 0:14:4f:69:c2:e0 \n"
)


def ce_host() -> Config:
    test = {"deprecated": True, "nofailover": True}
    ce10 = nic("ce10", 2, v4(0, "192.0.2.84/24", **test), group="accgrp", mac="00:14:4f:69:c2:e0")
    ce5 = nic("ce5", 3, v4(0, "198.51.100.112/24", **test), mac="00:14:4f:67:cb:d3")
    ce6 = nic("ce6", 4, v4(0, "192.0.2.74/24", **test), v4(1, "192.0.2.108/24", deprecated=True),
              v4(2, "192.0.2.64/24"), group="accgrp", mac="00:14:4f:69:c2:c8")
    # Config order is kernel index order, as view.merge builds it.
    return Config((linux_lo(), ce10, ce5, ce6))


def test_ce_host_prints_as_the_real_one() -> None:
    assert render(ce_host()) == CE_HOST


def test_types_in_plumbing_order_instances_by_number() -> None:
    # e1000g plumbed first (lowest index), then bge; within each, by instance.
    itfs = [nic("bge1", 6), nic("e1000g10", 3), nic("bge0", 5), nic("e1000g2", 2), nic("e1000g1", 4),
            linux_lo()]
    assert [i.name for i in solaris_order(itfs)] == ["lo0", "e1000g1", "e1000g2", "e1000g10", "bge0", "bge1"]


def test_each_family_has_its_own_list() -> None:
    # hme plumbed for IPv6 only on hme1; qfe0 has IPv6 too and the lower index.
    hme0 = nic("hme0", 2, v4(0, "192.0.2.1/24"))
    qfe0 = nic("qfe0", 3, v4(0, "192.0.2.3/24"),
               Logical(Family.INET6, 0, IPv6Interface("fe80::3/10"), up=True, kernel_owned=True),
               plumbed=V4V6)
    hme1 = nic("hme1", 4, v4(0, "192.0.2.2/24"),
               Logical(Family.INET6, 0, IPv6Interface("fe80::2/10"), up=True, kernel_owned=True),
               plumbed=V4V6)
    text = render(Config((linux_lo(V4V6), hme0, qfe0, hme1)), show_ether=False)
    assert headers(text) == ["lo0", "hme0", "hme1", "qfe0", "lo0", "qfe0", "hme1"]


def test_linux_names_without_an_instance_keep_index_order() -> None:
    itfs = [nic("veth-b", 3), nic("veth-a", 4), nic("br", 2)]
    assert [i.name for i in solaris_order(itfs)] == ["br", "veth-b", "veth-a"]


# --------------------------------------------------------------------------
# The loopback (Sun's manuals and the ce host above)
# --------------------------------------------------------------------------


def test_loopback_both_families() -> None:
    # "Displaying Addressing Information for All Interfaces" (Solaris 8 System
    # Administration Guide, Volume 3) shows lo0 with mtu 8232 and, for IPv6,
    # mtu 8252 with "inet6 ::1/128 "; Solaris 10 adds VIRTUAL to the word
    # (the ce host above: flags=2001000849).
    text = render(Config((linux_lo(V4V6),)))
    assert text == (
        "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
        "\tinet 127.0.0.1 netmask ff000000 \n"
        "lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n"
        "\tinet6 ::1/128 \n"
    )
    assert render(Config((linux_lo(V4V6),)), ifname="lo0", family=Family.INET6) == text.split("\n", 2)[2]


# --------------------------------------------------------------------------
# The failover placeholder
# --------------------------------------------------------------------------


def oracle_example_before() -> Config:
    """Example 30-1 of "What Happens During Interface Failover" (Solaris 10 IP Services guide).

    Two NICs of group test, each with a data address on unit 0 and a test
    address on unit 1 (the guide gives both index 2; here 2 and 3).
    """
    test = {"deprecated": True, "nofailover": True}
    hme0 = nic("hme0", 2, v4(0, "192.0.2.19/24"), v4(1, "192.0.2.21/24", **test), group="test")
    hme1 = nic("hme1", 3, v4(0, "192.0.2.20/24"), v4(1, "192.0.2.22/24", **test), group="test")
    return Config((linux_lo(), hme0, hme1))


def test_placeholder_after_a_probe_failure_prints_mtu_0() -> None:
    # Example 30-2: hme0 failed by probes (RUNNING stays), its data address
    # moved; hme0 keeps "flags=19000842<...> mtu 0" and "inet 0.0.0.0 netmask 0 ".
    failed = fail_over(oracle_example_before(), "hme0", "hme1")
    hme0 = failed.get("hme0")
    assert hme0 is not None
    text = render(failed.with_interface(replace(hme0, failed=True)), ifname="hme0")
    assert text == (
        "hme0: flags=19000842<BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER,FAILED> mtu 0 index 2\n"
        "\tinet 0.0.0.0 netmask 0 \n"
        "\tgroupname test\n"
        "hme0:1: flags=19040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,FAILED>"
        " mtu 1500 index 2\n"
        "\tinet 192.0.2.21 netmask ffffff00 broadcast 192.0.2.255\n"
    )
    # The data address went to hme1's lowest free unit.
    assert "hme1:2: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3\n" \
           "\tinet 192.0.2.19 netmask ffffff00 broadcast 192.0.2.255\n" in render(failed)


def standby_host() -> Config:
    """qfe1 is a standby whose unit 0 holds a deprecated data address (no -failover).

    in.mpathd empties a standby of its own data addresses (§2.7 invariant 1);
    the placeholder then keeps the address's DEPRECATED.
    """
    qfe0 = nic("qfe0", 2, v4(0, "192.0.2.100/24"), v4(1, "192.0.2.10/24", deprecated=True, nofailover=True),
               group="prod")
    qfe1 = nic("qfe1", 3, v4(0, "192.0.2.12/24", deprecated=True),
               v4(1, "192.0.2.11/24", deprecated=True, nofailover=True), group="prod", standby=True)
    return Config((linux_lo(), qfe0, qfe1))


def test_standby_placeholder_is_deprecated_with_mtu_0() -> None:
    emptied = fail_over(standby_host(), "qfe1", "qfe0")
    assert render(emptied, ifname="qfe1", unit=0) == (
        "qfe1: flags=69040842<BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>"
        " mtu 0 index 3\n"
        "\tinet 0.0.0.0 netmask 0 \n"
        "\tgroupname prod\n"
    )


def test_an_address_coming_home_reuses_the_placeholder_others_do_not() -> None:
    # qfe0 fails after the standby was emptied: qfe0's own data address lands
    # at qfe1's lowest free unit (ipif_get_id; the placeholder is not its
    # home), the standby's own address comes home to unit 0 and consumes the
    # placeholder (ipif_move: its original ifindex is qfe1's and unit 0
    # passes IPIF_REPL_CHECK).
    emptied = fail_over(standby_host(), "qfe1", "qfe0")
    failed = fail_over(emptied, "qfe0", "qfe1")
    text = render(failed, ifname="qfe1")
    assert headers(text) == ["qfe1", "qfe1:1", "qfe1:2"]
    assert text.startswith(
        "qfe1: flags=21040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,STANDBY> mtu 1500 index 3\n"
        "\tinet 192.0.2.12 netmask ffffff00 broadcast 192.0.2.255\n"
    )
    assert "qfe1:2: flags=21000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,STANDBY> mtu 1500 index 3\n" \
           "\tinet 192.0.2.100 " in text


def test_first_address_home_takes_unit_0_whatever_its_unit_was() -> None:
    # hme0's unit-0 address was removed while it was away; on failback the
    # first address home (hme0:2's) takes unit 0 and the placeholder goes
    # (ipif_get_id hands out 0 while the placeholder's id is set aside).
    test = {"deprecated": True, "nofailover": True}
    hme0 = nic("hme0", 2, v4(0, "192.0.2.19/24"), v4(1, "192.0.2.21/24", **test), v4(2, "192.0.2.23/24"),
               v4(3, "192.0.2.24/24"), group="test")
    hme1 = nic("hme1", 3, v4(0, "192.0.2.22/24", **test), group="test")
    away = fail_over(Config((hme0, hme1)), "hme0", "hme1")
    h1 = away.get("hme1")
    assert h1 is not None
    gone = away.with_interface(h1.without_logical(Family.INET, 1))  # 192.0.2.19, home unit 0
    back = fail_back(gone, "hme0")
    text = render(back, ifname="hme0")
    assert headers(text) == ["hme0", "hme0:1", "hme0:3"]
    assert "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" \
           "\tinet 192.0.2.23 " in text
    assert "hme0:3: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" \
           "\tinet 192.0.2.24 " in text


def test_a_unit_0_never_given_an_address_is_no_placeholder() -> None:
    # ``ifconfig hme0 plumb``: ipif_allocate sets the link's MTU.
    itf = nic("hme0", 2, v4(0, None, up=False))
    assert render(Config((itf,))).startswith(
        "hme0: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n")
