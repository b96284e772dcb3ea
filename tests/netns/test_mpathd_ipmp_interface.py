"""in.mpathd on the real kernel with a Solaris 11 IPMP interface: data addresses re-bound, not failed over.

The host's members qfe0.. carry only test addresses (hostname files, group
``ipmp0``); the IPMP interface ``ipmp0`` and its data addresses are put in
the state store as ``ipadm create-ipmp`` / ``create-addr`` leave them before
any member is active: unbound, on the IPMP interface's record.  in.mpathd
binds them (illumos ``ipmp.c``), then a carrier cut re-binds the cut
member's addresses one by one to the active member with the fewest
(``ipmp_ill_deactivate``), and the member's return takes addresses from the
member with the most until ``own + 1 >= max`` (``ipmp_ill_activate``):
there is no failback to a "home".  Where an address is, is read from the
kernel (``ip -j addr``); the peer pings every data address 100 times a
second throughout and must keep reaching each one.

Addresses (documentation range only): data 192.0.2.100-102, test addresses
192.0.2.10-12, router 192.0.2.1, peer 192.0.2.50.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
from mpathd_harness import (
    LINK_DOWN,
    PING_INTERVAL,
    Daemon,
    MpathdLab,
    figures,
    lost_after,
    rel,
    start_ping,
    wait_for,
)

from ipmp.host.state import Store
from ipmp.lab.pingreport import PingReport
from ipmp.lab.topology import Topology
from ipmp.model import Family, Interface, Logical

MakeTopology = Callable[..., Topology]

GROUP = "ipmp0"
D = ("192.0.2.100", "192.0.2.101", "192.0.2.102")
#: Clearview in.mpathd's texts (mpd_probe.c), for the members of ipmp0.
FAILURE = "^IP interface failure detected on {nic} of group ipmp0$"
REPAIR = "^IP interface repair detected on {nic} of group ipmp0$"
#: A peer may lose echoes from the cut until the move, never once it is done
#: (the apply is followed by gratuitous ARPs; this covers the polling lag).
AFTER_MOVE = 0.5


def ipmp_record(addresses: Sequence[str]) -> Interface:
    """``ipmp0`` with ``addresses`` as unbound data addresses, ``ipmp0``, ``ipmp0:1``, ..."""
    objs = ["ipmp0/v4"] + [f"ipmp0/v4{chr(ord('a') + k)}" for k in range(len(addresses) - 1)]
    logicals = tuple(Logical(Family.INET, k, IPv4Interface(f"{a}/24"), up=True,
                             broadcast=IPv4Address("192.0.2.255"), addrobj=objs[k])
                     for k, a in enumerate(addresses))
    return Interface(GROUP, plumbed=frozenset({Family.INET}), link_up=True, group=GROUP, ipmp=True,
                     logicals=logicals)


def make_ipmp_lab(make_topology: MakeTopology, tmp_path: Path, nics: Sequence[str],
                  addresses: Sequence[str]) -> MpathdLab:
    """Members ``nics`` booted with a test address each, then the IPMP interface in the store."""
    lab = MpathdLab(make_topology(nics=tuple(nics)), tmp_path, "active-active")
    etc = lab.root / "etc"
    for old in etc.glob("hostname.*"):
        old.unlink()
    for n, nic in enumerate(nics):
        (etc / f"hostname.{nic}").write_text(
            f"192.0.2.{10 + n} netmask + broadcast + group {GROUP} deprecated -failover up\n")
    lab.boot()
    store = Store(lab.root)
    with store.locked():
        store.save(store.load().with_interfaces((ipmp_record(addresses),)))
    return lab


@pytest.fixture
def ipmp_labs(make_topology: MakeTopology, tmp_path: Path) -> Iterator[Callable[..., MpathdLab]]:
    labs: list[MpathdLab] = []

    def make(nics: Sequence[str], addresses: Sequence[str]) -> MpathdLab:
        sub = tmp_path / f"lab{len(labs)}"
        sub.mkdir()
        lab = make_ipmp_lab(make_topology, sub, nics, addresses)
        labs.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in labs:  # before the topology goes (make_topology's teardown)
            lab.close()


def holders(topo: Topology, addresses: Sequence[str]) -> dict[str, list[str]]:
    """Each address -> the host NICs the kernel has it on."""
    out: dict[str, list[str]] = {a: [] for a in addresses}
    for link in topo.ip_json("host", "-4", "addr", "show"):
        for info in link.get("addr_info", ()):
            if info.get("local") in out:
                out[str(info["local"])].append(str(link["ifname"]))
    return out


def wait_binding(lab: MpathdLab, want: dict[str, str], what: str, timeout: float = 10.0) -> float:
    """Wait until the kernel holds each address on exactly the NIC ``want`` says; returns when."""
    seen: list[dict[str, list[str]]] = []

    def check() -> float | None:
        now = holders(lab.topo, list(want))
        seen[:] = [now]
        return time.monotonic() if now == {a: [nic] for a, nic in want.items()} else None

    def context() -> str:
        return f"kernel: {seen[-1] if seen else None}\nin.mpathd log:\n{lab.daemon.text()}"

    return wait_for(check, timeout, what, interval=0.05, context=context)


def assert_no_solaris10_lines(d: Daemon) -> None:
    text = d.text()
    assert "Successfully failed" not in text and "NIC failure" not in text and "NIC repair" not in text, text


Window = tuple[float, float]


def lost_outside(report: PingReport, address: str, windows: Sequence[Window]) -> list[tuple[float, float]]:
    """The runs of echoes to ``address`` lost outside ``windows`` (monotonic from, to: a move under way)."""
    allowed = [(rel(report, a), rel(report, b)) for a, b in windows]
    return [(r.start, r.end) for r in report[address].lost_ranges
            if not any(a <= r.start and r.end <= b for a, b in allowed)]


def assert_reached(report: PingReport, addresses: Sequence[str], moves: dict[str, list[Window]],
                   end: float) -> None:
    """Every address answered all along but while it moved, and in the last second."""
    for a in addresses:
        windows = [(start, done + AFTER_MOVE) for start, done in moves.get(a, [])]
        assert lost_outside(report, a, windows) == [], (a, report[a].lost_ranges)
        assert lost_after(report[a], rel(report, end) - 1.0, PING_INTERVAL) == 0, (a, report[a].lost_ranges)


def test_a_cut_member_rebinds_to_the_least_loaded_and_its_return_takes_nothing_back(
        ipmp_labs: Callable[..., MpathdLab]) -> None:
    lab = ipmp_labs(("qfe0", "qfe1", "qfe2"), D[:2])
    topo = lab.topo
    d = lab.start()
    # ipmp_illgrp_add_ipif: each to the member with the fewest, first on a tie.
    wait_binding(lab, {D[0]: "qfe0", D[1]: "qfe1"}, "the data addresses bound at start")
    with start_ping(topo, D[0], D[1]) as job:
        t0 = time.monotonic()
        topo.fail_link("qfe0")
        d.wait_line(LINK_DOWN.format(nic="qfe0"), since=t0, timeout=5)
        fail = d.wait_line(FAILURE.format(nic="qfe0"), since=t0, timeout=5)
        # ipmp_ill_deactivate: to qfe2 (none bound), not qfe1 (one).
        moved = wait_binding(lab, {D[0]: "qfe2", D[1]: "qfe1"}, "D0 re-bound to qfe2")
        wait_for(lambda: topo.neighbour_mac("peer", D[0]) == topo.macs["qfe2"], 2.0,
                 "the peer's neighbour entry for D0 to hold qfe2's MAC")
        t1 = time.monotonic()
        topo.repair_link("qfe0")
        repair = d.wait_line(REPAIR.format(nic="qfe0"), since=t1, timeout=10)
        # ipmp_ill_activate: 0 + 1 >= 1, nothing to take; no failback home.
        wait_for(lambda: time.monotonic() >= repair.t + 2.0, 5.0, "two seconds after the repair")
        assert holders(topo, D[:2]) == {D[0]: ["qfe2"], D[1]: ["qfe1"]}, d.text()
        end = time.monotonic()
        report = job.stop()
    figures("ipmp_least_loaded", detect_s=fail.t - t0, move_s=moved - t0, lost_d0=report[D[0]].lost)
    assert fail.t - t0 < 1.0, "a carrier loss must be acted on at once"
    assert_reached(report, D[:2], {D[0]: [(t0, moved)]}, end)
    assert_no_solaris10_lines(d)


def test_a_returning_member_takes_from_the_most_loaded(ipmp_labs: Callable[..., MpathdLab]) -> None:
    lab = ipmp_labs(("qfe0", "qfe1"), D)
    topo = lab.topo
    d = lab.start()
    wait_binding(lab, {D[0]: "qfe0", D[1]: "qfe1", D[2]: "qfe0"}, "the data addresses bound at start")
    with start_ping(topo, *D) as job:
        t0 = time.monotonic()
        topo.fail_link("qfe0")
        d.wait_line(FAILURE.format(nic="qfe0"), since=t0, timeout=5)
        moved = wait_binding(lab, {D[0]: "qfe1", D[1]: "qfe1", D[2]: "qfe1"}, "qfe0's addresses on qfe1")
        t1 = time.monotonic()
        topo.repair_link("qfe0")
        d.wait_line(REPAIR.format(nic="qfe0"), since=t1, timeout=10)
        # qfe1 holds 3: the newest bound there (D2) comes over, then 1 + 1 >= 2.
        # A Solaris 10 failback would have brought D0 back as well.
        back = wait_binding(lab, {D[0]: "qfe1", D[1]: "qfe1", D[2]: "qfe0"}, "D2 taken by qfe0")
        wait_for(lambda: topo.neighbour_mac("peer", D[2]) == topo.macs["qfe0"], 2.0,
                 "the peer's neighbour entry for D2 to hold qfe0's MAC")
        wait_for(lambda: time.monotonic() >= back + 2.0, 5.0, "two seconds after the rebalance")
        assert holders(topo, D) == {D[0]: ["qfe1"], D[1]: ["qfe1"], D[2]: ["qfe0"]}, d.text()
        end = time.monotonic()
        report = job.stop()
    figures("ipmp_rebalance", move_s=moved - t0, rebalance_s=back - t1, lost_d0=report[D[0]].lost,
            lost_d2=report[D[2]].lost)
    assert_reached(report, D, {D[0]: [(t0, moved)], D[2]: [(t0, moved), (t1, back)]}, end)
    assert_no_solaris10_lines(d)
