"""in.mpathd on the real kernel: a member given another member's MAC is offlined, and comes back.

Clearview in.mpathd (Solaris 11, illumos ``mpd_tables.c``) keeps one member
of a group online per hardware address.  The lab boots the active-active
example (qfe0, qfe1, group prod) and gives the group a Solaris 11 IPMP
interface record, ``ipmp0``, whose data addresses are the two the members
hold (192.0.2.100 on qfe0, 192.0.2.101 on qfe1, documentation range), as
``ipadm create-ipmp`` / ``create-addr`` leave them; a group without one is
configured the Solaris 10 way, which tolerates duplicates (also checked).
Then ``ip link set qfe1 address <qfe0's MAC>``: Linux sends no notification
of its own for a new MAC that the daemon acts on, so it is seen at the next
rescan (5 s here); the bounds are generous for a loaded VM.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from mpathd_harness import MakeLab, MpathdLab, wait_for

from ipmp.host.state import Store
from ipmp.model import Family, Interface

BIN = Path(sys.executable).parent
D0, D1 = "192.0.2.100", "192.0.2.101"
GROUP = "prod"
OFFLINING = f"^IP interface qfe1 has a hardware address which is not unique in group {GROUP}; offlining$"
ONLINING = f"^IP interface qfe1 now has a unique hardware address in group {GROUP}; onlining$"
#: A rescan (5 s) plus the apply, on a busy 2-core VM.
SEEN = 30.0


@pytest.fixture
def lab_nics() -> Mapping[str, tuple[str, ...]]:
    return {"active-active": ("qfe0", "qfe1")}


def to_solaris11(lab: MpathdLab) -> None:
    """The booted group gets its IPMP interface: the data addresses become ``ipmp0`` and ``ipmp0:1``."""
    store = Store(lab.root)
    with store.locked():
        stored = store.load()
        members = []
        for name, unit in (("qfe0", 0), ("qfe1", 1)):
            itf = stored.get(name)
            assert itf is not None, f"{name} not in the store after boot"
            logicals = tuple(replace(lg, ipmp_unit=unit) if lg.is_data else lg for lg in itf.logicals)
            members.append(replace(itf, logicals=logicals))
        ipmp0 = Interface("ipmp0", plumbed=frozenset({Family.INET}), group=GROUP, ipmp=True)
        store.save(stored.with_interfaces((*members, ipmp0)))


def set_mac(lab: MpathdLab, nic: str, mac: str) -> None:
    lab.topo.ip("host", "link", "set", "dev", nic, "address", mac)


def ipmpstat_i(lab: MpathdLab) -> dict[str, tuple[str, str]]:
    """``ipmpstat -P -o INTERFACE,FLAGS,STATE -i``: interface -> (FLAGS, STATE)."""
    argv = [*lab.env, str(BIN / "ipmpstat"), "-P", "-o", "INTERFACE,FLAGS,STATE", "-i"]
    proc = lab.topo.run("host", argv, check=False)
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        name, flags, state = line.split(":")
        out[name] = (flags, state)
    return out


def holders(lab: MpathdLab, address: str) -> list[str]:
    """The host NICs the kernel has ``address`` on (``ip -j``, not our own view)."""
    return [str(link["ifname"]) for link in lab.topo.ip_json("host", "-4", "addr", "show")
            for info in link.get("addr_info", ()) if info.get("local") == address]


def reachable(lab: MpathdLab, *addresses: str) -> None:
    """The peer gets answers from every address (pinged from the peer namespace only)."""
    def answered() -> bool:
        report = lab.topo.ping("peer", list(addresses), count=10, interval=0.05, timeout=0.5)
        return all(report[a].received >= 5 for a in addresses)

    wait_for(answered, 20.0, f"the peer to reach {addresses}", interval=0.5)


def test_a_duplicate_mac_offlines_the_member_and_a_unique_one_brings_it_back(make_lab: MakeLab) -> None:
    lab = make_lab(scan_interval=5.0)
    to_solaris11(lab)
    d = lab.start()
    mac0, mac1 = lab.topo.macs["qfe0"], lab.topo.macs["qfe1"]
    start = ipmpstat_i(lab)
    assert set(start) == {"qfe0", "qfe1"}, start
    assert all(f[-1] == "-" and s == "ok" for f, s in start.values()), start
    try:
        t0 = time.monotonic()
        set_mac(lab, "qfe1", mac0)
        off = d.wait_line(OFFLINING, since=t0, timeout=SEEN)

        def offline() -> dict[str, tuple[str, str]] | None:
            rows = ipmpstat_i(lab)
            return rows if rows["qfe1"][1] == "offline" and rows["qfe1"][0].endswith("h") else None

        rows = wait_for(offline, SEEN, "ipmpstat -i to show qfe1 offline with FLAGS h")
        assert rows["qfe0"][1] == "ok" and not rows["qfe0"][0].endswith("h"), rows
        # The IPMP interface's addresses are bound to the member still online.
        wait_for(lambda: holders(lab, D0) == ["qfe0"] and holders(lab, D1) == ["qfe0"], SEEN,
                 "both data addresses to be held by qfe0", context=d.text)
        reachable(lab, D0, D1)
        # if_mpadm -r cannot undo it (illumos phyint_undo_offline: IPMP_EHWADDRDUP).
        refused = lab.if_mpadm("-r", "qfe1")
        assert refused.returncode != 0, refused
        assert refused.stderr.strip() == (
            "if_mpadm: fatal: cannot undo-offline qfe1: interface has duplicate hardware address"), refused
        assert ipmpstat_i(lab)["qfe1"][1] == "offline"

        t1 = time.monotonic()
        set_mac(lab, "qfe1", mac1)
        on = d.wait_line(ONLINING, since=t1, timeout=SEEN)
        rows = wait_for(lambda: (r := ipmpstat_i(lab))["qfe1"][1] == "ok" and r, SEEN,
                        "ipmpstat -i to show qfe1 ok again")
        assert not rows["qfe1"][0].endswith("h"), rows
        # Active again, it takes its share back (Solaris 11 ipmp_ill_activate).
        wait_for(lambda: sorted(holders(lab, D0) + holders(lab, D1)) == ["qfe0", "qfe1"], SEEN,
                 "qfe1 to hold one data address again", context=d.text)
        reachable(lab, D0, D1)
        print(f"FIGURES duplicate_mac: offlined_after={off.t - t0:.3f}s onlined_after={on.t - t1:.3f}s")
    finally:
        lab.topo.ip("host", "link", "set", "dev", "qfe1", "address", mac1, check=False)
    assert d.alive()


def test_a_solaris10_group_tolerates_a_duplicate_mac(make_lab: MakeLab) -> None:
    """No IPMP interface: the hostname-file group keeps both members online (Solaris 10, §8.12)."""
    lab = make_lab(scan_interval=1.0)
    d = lab.start()
    mac0, mac1 = lab.topo.macs["qfe0"], lab.topo.macs["qfe1"]
    try:
        t0 = time.monotonic()
        set_mac(lab, "qfe1", mac0)
        # Three rescans later, nothing happened.
        wait_for(lambda: time.monotonic() >= t0 + 4.0, 10.0, "three rescans")
        assert not d.matching("hardware address", since=t0), d.text()
        # Its probes may well fail (the switch sends the replies to one port of
        # the two), but nothing is offlined for the address.
        rows = ipmpstat_i(lab)
        assert all(state != "offline" and not flags.endswith("h") for flags, state in rows.values()), rows
    finally:
        lab.topo.ip("host", "link", "set", "dev", "qfe1", "address", mac1, check=False)
    assert d.alive()
