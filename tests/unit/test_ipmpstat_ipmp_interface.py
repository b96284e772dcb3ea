"""``ipmpstat`` for a group with a Solaris 11 IPMP interface (``ipadm create-ipmp``).

What Solaris 11 prints, from illumos ``usr/src/cmd/cmd-inet/usr.sbin/ipmpstat/ipmpstat.c``
(``sfunc_group_ifname``/``sfunc_if_group``/``sfunc_addr_group``: GROUP is the
IPMP interface, ``gr_ifname``; ``sfunc_addr_inbound``: the bound member,
empty when unbound) and ``usr/src/uts/common/inet/ip/ipmp.c`` (the m/b/M
nominee: the first member to become active, re-nominated only when it stops
being active, ``ipmp_illgrp_set_cast``); Oracle's ipmpstat(8),
https://docs.oracle.com/cd/E88353_01/html/E72487/ipmpstat-8.html .
OUTBOUND is the holder only: a deliberate difference (man/ipmpstat.8).
"""

from __future__ import annotations

from ipaddress import IPv4Interface
from typing import Any

from ipmp.admin import ipmpstat
from ipmp.model import Config, Family, Interface, Logical
from ipmp.mpathd.snapshot import from_wire, to_wire
from tests.unit.mpathd_sim import Sim, make_nic

R1 = "192.0.2.1"


def probe(test: str) -> dict[str, Any]:
    return {"test_address": test, "targets": [R1], "mode": "routes", "crtt_ms": {R1: 3}}


def itf(*, state: str = "ok", link: str = "up", active: bool = True, inactive: bool = False,
        failed: bool = False, standby: bool = False, test: str = "") -> dict[str, Any]:
    return {"group": "prod", "state": state, "type": "standby" if standby else "normal", "link": link,
            "probe": "ok" if test else "disabled", "active": active, "standby": standby,
            "inactive": inactive, "failed": failed, "offline": False,
            "probes": {"inet": probe(test)} if test else {}}


def addr(address: str, interface: str, home: str, *, up: bool = True) -> dict[str, Any]:
    return {"address": address, "family": "inet", "interface": interface, "home": home, "group": "prod",
            "up": up}


def snap(state: str, cast: str, interfaces: dict[str, dict[str, Any]],
         addresses: list[dict[str, Any]], interface: str = "ipmp0") -> dict[str, Any]:
    """Group ``prod`` whose IPMP interface is ``ipmp0`` (names differ to tell the columns apart)."""
    return {"v": 1, "fdt_ms": 10000, "failback": True,
            "groups": {"prod": {"state": state, "fdt_ms": 10000, "members": sorted(interfaces),
                                "interface": interface, "cast": cast}},
            "interfaces": interfaces, "addresses": addresses}


#: net0 holds ipmp0 and ipmp0:1, net1 holds nothing yet is active (more
#: members than addresses), net2 is a standby held INACTIVE, net3 failed and
#: still holds ipmp0:2, parked (unbound); ipmp0:3 is bound nowhere (the
#: record's own) and ipmp0:4 is down.
DEGRADED = snap("degraded", "net1", {
    "net0": itf(test="192.0.2.20"),
    "net1": itf(active=False, test="192.0.2.21"),
    "net2": itf(active=False, standby=True, inactive=True, test="192.0.2.22"),
    "net3": itf(state="failed", link="down", failed=True, test="192.0.2.23"),
}, [addr("192.0.2.10/24", "net0:1", "ipmp0"), addr("192.0.2.11/24", "net0:2", "ipmp0:1"),
    addr("192.0.2.12/24", "net3:1", "ipmp0:2"), addr("192.0.2.13/24", "", "ipmp0:3"),
    addr("192.0.2.14/24", "net0:3", "ipmp0:4", up=False)])


def render(doc: dict[str, Any], mode: str, **kw: Any) -> list[str]:
    return ipmpstat.render(from_wire(doc), mode, **kw)


def test_g_group_is_the_ipmp_interface_and_groupname_the_group() -> None:
    assert render(DEGRADED, "g") == [
        "GROUP       GROUPNAME   STATE     FDT       INTERFACES",
        "ipmp0       prod        degraded  10.00s    net0 net1 (net2) [net3]",
    ]


def test_i_active_members_and_the_daemons_nominee() -> None:
    assert render(DEGRADED, "i") == [
        "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE",
        "net0        yes     ipmp0       -------   up        ok        ok",
        "net1        yes     ipmp0       --mb---   up        ok        ok",
        "net2        no      ipmp0       is-----   up        ok        ok",
        "net3        no      ipmp0       -------   down      ok        failed",
    ]


def test_a_inbound_is_the_bound_member_and_empty_when_unbound() -> None:
    assert render(DEGRADED, "a", fields=["address", "state", "group", "inbound", "outbound"],
                  parsable=True) == [
        "192.0.2.10:up:ipmp0:net0:net0",
        "192.0.2.11:up:ipmp0:net0:net0",
        "192.0.2.12:up:ipmp0::",
        "192.0.2.13:up:ipmp0::",
        "192.0.2.14:down:ipmp0::",
    ]


def test_a_group_without_nominee_shows_no_letter() -> None:
    doc = snap("failed", "", {"net0": itf(state="failed", link="down", failed=True)}, [])
    assert render(doc, "i", fields=["interface", "flags"], parsable=True) == ["net0:-------"]


def test_the_new_group_fields_travel_and_an_older_daemon_reads_as_solaris_10() -> None:
    snapshot = from_wire(DEGRADED)
    assert snapshot.groups["prod"].interface == "ipmp0"
    assert snapshot.groups["prod"].cast == "net1"
    assert from_wire(to_wire(snapshot)) == snapshot
    old = dict(DEGRADED, groups={"prod": {"state": "ok", "fdt_ms": 10000, "members": ["net0"]}})
    assert from_wire(old).groups["prod"].interface == "" == from_wire(old).groups["prod"].cast
    assert render(old, "g", fields=["group", "groupname"], parsable=True) == ["prod:prod"]


# -- the daemon: the snapshot of a running group ---------------------------------------------


GROUP = "ipmp0"


def s11_sim(count: int = 2) -> Sim:
    nics = [make_nic(n, data=0, group=GROUP) for n in range(count)]
    unbound = tuple(Logical(Family.INET, k, IPv4Interface(f"192.0.2.{50 + k}/24"), up=True, ipmp_unit=k,
                            addrobj=f"ipmp0/v4{k}") for k in range(count))
    record = Interface(GROUP, index=50, plumbed=frozenset({Family.INET}), group=GROUP, ipmp=True,
                       logicals=unbound)
    sim = Sim(Config((*nics, record)))
    sim.start()
    sim.advance(2.0)
    return sim


def flags(sim: Sim) -> dict[str, str]:
    rows = ipmpstat.render(from_wire(to_wire(sim.machine.snapshot())), "i", fields=["interface", "flags"],
                           parsable=True)
    return dict(row.split(":") for row in rows)


def test_the_nominee_starts_on_the_first_member_and_does_not_fail_back() -> None:
    sim = s11_sim(2)
    snapshot = sim.machine.snapshot()
    assert snapshot.groups[GROUP].interface == GROUP
    assert flags(sim) == {"qfe0": "--mb---", "qfe1": "-------"}
    sim.link("qfe0", False)
    sim.advance(1.0)
    assert sim.lines("IP interface failure detected on qfe0 of group ipmp0")
    assert flags(sim) == {"qfe0": "-------", "qfe1": "--mb---"}
    sim.link("qfe0", True)
    sim.advance(3.0)
    assert sim.lines("IP interface repair detected on qfe0 of group ipmp0")
    # illumos ipmp_ill_activate nominates only when no member is active.
    assert flags(sim) == {"qfe0": "-------", "qfe1": "--mb---"}
    rows = ipmpstat.render(from_wire(to_wire(sim.machine.snapshot())), "a",
                           fields=["address", "group", "inbound"], parsable=True)
    assert len(rows) == 2 and {row.split(":")[1] for row in rows} == {"ipmp0"}
    assert {row.split(":")[2] for row in rows} == {"qfe0", "qfe1"}


def test_unbound_addresses_of_the_record_are_listed_with_no_inbound() -> None:
    # Both links down before the daemon starts: no member can take them.
    nics = [make_nic(n, data=0, group=GROUP) for n in range(2)]
    data = Logical(Family.INET, 0, IPv4Interface("192.0.2.50/24"), up=True, ipmp_unit=0)
    record = Interface(GROUP, index=50, plumbed=frozenset({Family.INET}), group=GROUP, ipmp=True,
                       logicals=(data,))
    sim = Sim(Config((*nics, record)))
    sim.link("qfe0", False)
    sim.link("qfe1", False)
    sim.start()
    sim.advance(2.0)
    rows = ipmpstat.render(from_wire(to_wire(sim.machine.snapshot())), "a",
                           fields=["address", "state", "group", "inbound"], parsable=True)
    assert rows == ["192.0.2.50:up:ipmp0:"]
