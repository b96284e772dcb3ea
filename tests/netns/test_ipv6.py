"""IPv6 IPMP end to end on the real kernel: hostname6 boot, link-local test addresses, moves.

Two examples (examples/hostname.files, documentation range only):

* ``ipv6-only``: group prod, ``e1000g0`` with the data address 2001:db8::100
  on ``e1000g0:1``, ``e1000g1`` a standby with nothing but its link-local;
  each NIC's link-local is its test address (``-failover`` on inet6 unit 0,
  solaris-ipmp.md §2.3, §6.4).
* ``dual-stack``: the active-active IPv4 layout (data 192.0.2.100/.101 on
  unit 0, test addresses .10/.11 on ``:1``) plus 2001:db8::100/::101 on
  ``qfe0:1``/``qfe1:1`` inet6 and the link-locals as IPv6 test addresses.

Each test boots a private copy into a fresh topology and runs ``in.mpathd -d``
with FAILURE_DETECTION_TIME=700 (one probe per family every 100 ms), a 1 s
quiet period and a 5 s rescan, as ``mpathd_harness`` does for IPv4.  The
router (2001:db8::1) sends no router advertisements: the daemon finds its
IPv6 targets by ff02::1 discovery (router and peer answer), or, where a test
adds a static default route via the router's link-local, takes the router
from the routing table.  The peer (2001:db8::50) pings the data addresses 100
times a second; what it lost, and when its neighbour entry learnt the new MAC,
are printed as ``FIGURES ...`` lines (``pytest -rP``).

Failures are injected on the switch (carrier loss, port detached) or, to
break one family only, by pointing the router's neighbour entry for one test
address at a MAC nobody has (its echo replies then go nowhere).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mpathd_harness import (
    FAILBACK,
    FAILOVER,
    FAILURE,
    LINK_DOWN,
    LINK_UP,
    PING_INTERVAL,
    REPAIR,
    Layout,
    MakeLab,
    MpathdLab,
    figures,
    lost_after,
    rel,
    start_ping,
    wait_for,
)

from ipmp.lab.topology import Topology

MakeTopology = Callable[..., Topology]

NICS = {"ipv6-only": ("e1000g0", "e1000g1"), "dual-stack": ("qfe0", "qfe1")}
V6D0, V6D1 = "2001:db8::100", "2001:db8::101"
D0, D1 = "192.0.2.100", "192.0.2.101"
T0 = "192.0.2.10"
#: A MAC no station of the lab has: frames sent to it are lost.
NOWHERE_MAC = "02:00:00:00:99:99"
#: Echoes sent this long after a "Successfully failed ..." line may not be lost:
#: the daemon logs it after the apply and the first round of announcements.
AFTER_MOVE = 0.02


@pytest.fixture
def lab_nics() -> dict[str, tuple[str, str]]:
    """The host NICs of each example, for ``make_lab`` (conftest.py)."""
    return NICS


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def link_local(topo: Topology, ns: str, dev: str) -> str:
    """The kernel's link-local of ``dev`` in ``ns``, read with ``ip -j``."""
    for entry in topo.ip_json(ns, "-6", "addr", "show", "dev", dev, "scope", "link"):
        for info in entry.get("addr_info", []):
            if info.get("scope") == "link" and "local" in info:
                return str(info["local"])
    raise AssertionError(f"no link-local address on {dev} in {ns}")


def kernel_holders(topo: Topology, address: str) -> list[str]:
    """The host NICs the kernel has ``address`` on (``ip -j``, not ifconfig)."""
    version = "-6" if ":" in address else "-4"
    return [str(link["ifname"]) for link in topo.ip_json("host", version, "addr", "show")
            for info in link.get("addr_info", ()) if info.get("local") == address]


def neighbour_updated(topo: Topology, address: str, nic: str, since: float) -> float:
    """Seconds after ``since`` at which the peer's entry for ``address`` held ``nic``'s MAC."""
    at = wait_for(lambda: topo.neighbour_mac("peer", address) == topo.macs[nic] and time.monotonic(), 1.0,
                  f"the peer's neighbour entry for {address} to hold {nic}'s MAC")
    return max(0.0, at - since)


def wait6(lab: MpathdLab, condition: Callable[[Layout], bool], what: str, timeout: float = 10.0) -> Layout:
    return lab.wait_layout(condition, what, timeout, family=6)


def probes(lab: MpathdLab, nic: str) -> dict[str, Any]:
    data: dict[str, Any] = lab.query()["interfaces"][nic]["probes"]
    return data


def v6_home(lay: Layout, nics: tuple[str, ...], lls: dict[str, str]) -> None:
    """Each link-local on unit 0 of its NIC, UP and NOFAILOVER (the IPv6 test address)."""
    for nic in nics:
        lif = lay.lifs[nic]
        assert lif.address == lls[nic] and lif.up and "NOFAILOVER" in lif.flags, lay.text
        assert "DEPRECATED" not in lif.flags, lay.text  # §2.3: the IPv6 test address is not deprecated


# --------------------------------------------------------------------------
# ifconfig inet6 by hand
# --------------------------------------------------------------------------


def test_ifconfig_inet6_commands_on_the_kernel(make_topology: MakeTopology, tmp_path: Path) -> None:
    topo = make_topology(nics=NICS["ipv6-only"])
    lab = MpathdLab(topo, tmp_path, "ipv6-only")  # its root only; not booted

    def ok(*args: str) -> str:
        proc = lab.ifconfig(*args)
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
        return proc.stdout

    # The link comes up here: ifconfig waits for DAD on the link-local before
    # it returns, so the status right after shows it UP, as the test address.
    ok("e1000g0", "inet6", "plumb", "-failover", "group", "prod", "standby", "up")
    ll = link_local(topo, "host", "e1000g0")
    assert ok("e1000g0", "inet6") == (
        "e1000g0: flags=6a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER,STANDBY,INACTIVE> mtu 1500 index 2\n"
        f"\tinet6 {ll}/10 \n"
        "\tgroupname prod\n"
    )
    tentative = [i for link in topo.ip_json("host", "-6", "addr", "show", "dev", "e1000g0")
                 for i in link["addr_info"] if i.get("tentative")]
    assert tentative == []

    created = ok("e1000g0", "inet6", "addif", "2001:db8::100/64", "up")
    assert created == "Created new logical interface e1000g0:1\n"
    assert kernel_holders(topo, V6D0) == ["e1000g0"]
    assert ok("e1000g0:1", "inet6") == (
        "e1000g0:1: flags=22000841<UP,RUNNING,MULTICAST,IPv6,STANDBY> mtu 1500 index 2\n"
        "\tinet6 2001:db8::100/64 \n"
    )
    # down takes the address out of the kernel (Linux has no per-address UP);
    # the logical and its unit stay in the state store.
    ok("e1000g0:1", "inet6", "down")
    assert kernel_holders(topo, V6D0) == []
    assert "\tinet6 2001:db8::100/64 \n" in ok("e1000g0:1", "inet6")
    ok("e1000g0:1", "inet6", "up")
    assert kernel_holders(topo, V6D0) == ["e1000g0"]
    assert topo.ping("peer", [V6D0], count=2)[V6D0].received == 2
    # The link-local can be taken down too (no longer a test address), not deleted.
    ok("e1000g0", "inet6", "down")
    # (STANDBY but not INACTIVE: it hosts its own data address.)
    header = "e1000g0: flags=2a000840<RUNNING,MULTICAST,IPv6,NOFAILOVER,STANDBY> "
    assert ok("e1000g0", "inet6").startswith(header)
    assert link_local(topo, "host", "e1000g0") == ll
    ok("e1000g0", "inet6", "removeif", V6D0)
    assert kernel_holders(topo, V6D0) == []
    assert lab.ifconfig("e1000g0:1", "inet6").returncode == 1


# --------------------------------------------------------------------------
# IPv6-only group: e1000g0 active, e1000g1 standby
# --------------------------------------------------------------------------


def test_ipv6_only_boot_probes_from_the_link_locals(make_lab: MakeLab) -> None:
    lab = make_lab("ipv6-only")
    topo = lab.topo
    lab.start()
    lls = {nic: link_local(topo, "host", nic) for nic in topo.nics}
    router_ll = link_local(topo, "router", topo.router_ifname)
    peer_ll = link_local(topo, "peer", topo.peer_ifname)
    lay = lab.layout(6)
    v6_home(lay, topo.nics, lls)
    assert lay.placement() == {lls["e1000g0"]: "e1000g0", V6D0: "e1000g0:1", lls["e1000g1"]: "e1000g1"}
    assert {"STANDBY", "INACTIVE"} <= lay.nic_flags("e1000g1"), lay.text
    for nic in topo.nics:
        info = probes(lab, nic)
        assert list(info) == ["inet6"], info
        # No router in the table: targets found by ff02::1 discovery; the
        # host's other NIC answers too but is never a target (§2.6).
        assert info["inet6"]["test_address"] == lls[nic]
        assert info["inet6"]["mode"] == "multicast"
        assert set(info["inet6"]["targets"]) == {router_ll, peer_ll}, info
    # The link-local is the kernel's: the toolkit added only the data address.
    mine = topo.ip_json("host", "-6", "addr", "show", "dev", "e1000g0", "scope", "global")
    assert [a["local"] for link in mine for a in link["addr_info"] if "local" in a] == [V6D0]
    assert kernel_holders(topo, V6D0) == ["e1000g0"]


def test_ipv6_only_carrier_loss_moves_to_the_standby_and_back(make_lab: MakeLab) -> None:
    lab = make_lab("ipv6-only")
    topo = lab.topo
    d = lab.start()
    lls = {nic: link_local(topo, "host", nic) for nic in topo.nics}
    before = lab.layout(6)
    with start_ping(topo, V6D0) as job:
        assert topo.neighbour_mac("peer", V6D0) == topo.macs["e1000g0"]
        t0 = time.monotonic()
        topo.fail_link("e1000g0")
        d.wait_line(LINK_DOWN.format(nic="e1000g0"), since=t0, timeout=5)
        fail = d.wait_line(FAILURE.format(nic="e1000g0"), since=t0, timeout=5)
        moved = d.wait_line(FAILOVER.format(src="e1000g0", dst="e1000g1"), since=t0, timeout=5)
        # The unsolicited NAs went out before the line was logged.
        neigh = neighbour_updated(topo, V6D0, "e1000g1", moved.t)
        lay = wait6(lab, lambda lay: lay.nic_of(V6D0) == "e1000g1", f"{V6D0} to be up on e1000g1")
        wait_for(lambda: time.monotonic() >= moved.t + 1.0, 5.0, "a second of pings after the move")

        t1 = time.monotonic()
        topo.repair_link("e1000g0")
        d.wait_line(LINK_UP.format(nic="e1000g0"), since=t1, timeout=5)
        repair = d.wait_line(REPAIR.format(nic="e1000g0"), since=t1, timeout=10)
        back = d.wait_line(FAILBACK.format(nic="e1000g0"), since=t1, timeout=5)
        neigh_back = neighbour_updated(topo, V6D0, "e1000g0", back.t)
        wait_for(lambda: time.monotonic() >= back.t + 0.5, 5.0, "pings after the failback")
        report = job.stop()

    # During the failure: the data address on the standby's lowest free unit,
    # the link-local (test address) left on its own NIC with FAILED (§1
    # mechanics 2), the standby active (no longer INACTIVE).
    assert lay.holder(V6D0) is not None and lay.holder(V6D0).name == "e1000g1:1", lay.text  # type: ignore[union-attr]
    assert lay.lifs["e1000g0"].address == lls["e1000g0"] and "FAILED" in lay.nic_flags("e1000g0"), lay.text
    assert "INACTIVE" not in lay.nic_flags("e1000g1") and "STANDBY" in lay.nic_flags("e1000g1"), lay.text
    after = wait6(lab, lambda lay: lay.nic_of(V6D0) == "e1000g0" and "INACTIVE" in lay.nic_flags("e1000g1"),
                  "the address back on e1000g0 and e1000g1 inactive again")
    assert after.lifs == before.lifs, f"before:\n{before.text}\nafter:\n{after.text}"
    assert kernel_holders(topo, V6D0) == ["e1000g0"]

    s = report[V6D0]
    after_move = lost_after(s, rel(report, moved.t) + AFTER_MOVE, PING_INTERVAL) - lost_after(
        s, rel(report, t1), PING_INTERVAL)
    figures("v6_carrier", detect_s=fail.t - t0, move_s=moved.t - t0, lost=s.lost,
            lost_after_move=after_move, neigh_after_move_s=neigh, repair_s=repair.t - t1,
            failback_s=back.t - t1, neigh_after_failback_s=neigh_back)
    assert moved.t - t0 < 1.0, "a carrier loss must be acted on at once"
    assert after_move == 0, s.lost_ranges
    assert s.lost <= 20, s.lost_ranges


def test_ipv6_only_silent_failure_detected_by_link_local_probes(make_lab: MakeLab) -> None:
    lab = make_lab("ipv6-only")
    topo = lab.topo
    d = lab.start()
    before = lab.layout(6)
    with start_ping(topo, V6D0) as job:
        t0 = time.monotonic()
        topo.fail_silent("e1000g0")
        fail = d.wait_line(FAILURE.format(nic="e1000g0"), since=t0, timeout=10)
        moved = d.wait_line(FAILOVER.format(src="e1000g0", dst="e1000g1"), since=t0, timeout=5)
        neigh = neighbour_updated(topo, V6D0, "e1000g1", moved.t)
        assert topo.carrier("e1000g0"), "a silent failure keeps carrier"
        assert not d.matching(LINK_DOWN.format(nic="e1000g0"), since=t0)
        wait_for(lambda: time.monotonic() >= moved.t + 0.5, 5.0, "pings after the move")

        t1 = time.monotonic()
        topo.repair_silent("e1000g0")
        repair = d.wait_line(REPAIR.format(nic="e1000g0"), since=t1, timeout=10)
        back = d.wait_line(FAILBACK.format(nic="e1000g0"), since=t1, timeout=5)
        wait_for(lambda: time.monotonic() >= back.t + 0.5, 5.0, "pings after the failback")
        report = job.stop()
    assert not d.matching("^(All Interfaces|Cannot meet)", since=t0), d.text()
    after = wait6(lab, lambda lay: lay.nic_of(V6D0) == "e1000g0" and "FAILED" not in lay.nic_flags("e1000g0"),
                  "the address back on e1000g0")
    assert after.lifs == before.lifs, f"before:\n{before.text}\nafter:\n{after.text}"

    s = report[V6D0]
    lost_move = lost_after(s, rel(report, moved.t) + AFTER_MOVE, PING_INTERVAL) - lost_after(
        s, rel(report, t1), PING_INTERVAL)
    lost_failback = lost_after(s, rel(report, t1), PING_INTERVAL)
    figures("v6_silent", detect_s=fail.t - t0, move_s=moved.t - t0, lost=s.lost, lost_after_move=lost_move,
            lost_from_repair=lost_failback, neigh_after_move_s=neigh, repair_s=repair.t - t1,
            failback_s=back.t - t1)
    assert fail.t - t0 < 3.0, f"detection took {fail.t - t0:.2f} s at FDT 700 ms"
    assert lost_move == 0, s.lost_ranges
    assert lost_failback <= 2, s.lost_ranges


def test_ipv6_only_if_mpadm_offline_and_undo(make_lab: MakeLab) -> None:
    lab = make_lab("ipv6-only")
    topo = lab.topo
    d = lab.start()
    lls = {nic: link_local(topo, "host", nic) for nic in topo.nics}
    before = lab.layout(6)
    with start_ping(topo, V6D0) as job:
        t0 = time.monotonic()
        off = lab.if_mpadm("-d", "e1000g0")
        t_off = time.monotonic()
        assert (off.returncode, off.stdout, off.stderr) == (0, "", "")
        neigh = neighbour_updated(topo, V6D0, "e1000g1", t_off)
        lay = lab.layout(6)  # the reply comes after the apply: no waiting
        assert lay.nic_of(V6D0) == "e1000g1", lay.text
        # -d downs every logical, the link-local test address too (§5); it
        # stays in the kernel (the kernel's), only its UP flag goes.
        assert "OFFLINE" in lay.nic_flags("e1000g0") and not lay.lifs["e1000g0"].up, lay.text
        assert lay.lifs["e1000g0"].address == lls["e1000g0"], lay.text
        assert link_local(topo, "host", "e1000g0") == lls["e1000g0"]
        assert probes(lab, "e1000g0") == {}, "an offline NIC is not probed"
        assert kernel_holders(topo, V6D0) == ["e1000g1"]

        t1 = time.monotonic()
        undo = lab.if_mpadm("-r", "e1000g0")
        t_undo = time.monotonic()
        assert (undo.returncode, undo.stdout, undo.stderr) == (0, "", "")
        neigh_back = neighbour_updated(topo, V6D0, "e1000g0", t_undo)
        wait_for(lambda: time.monotonic() >= t_undo + 0.3, 5.0, "pings after the undo")
        report = job.stop()
    after = lab.layout(6)
    assert after.lifs == before.lifs, f"before:\n{before.text}\nafter:\n{after.text}"
    assert d.matching(FAILBACK.format(nic="e1000g0"), since=t1)
    # -r brought the test address up again: probing resumes from it.
    wait_for(lambda: probes(lab, "e1000g0").get("inet6", {}).get("targets"), 10.0,
             "e1000g0 to probe again from its link-local")
    assert probes(lab, "e1000g0")["inet6"]["test_address"] == lls["e1000g0"]
    s = report[V6D0]
    figures("v6_if_mpadm", offline_s=t_off - t0, undo_s=t_undo - t1, lost=s.lost, neigh_after_offline_s=neigh,
            neigh_after_undo_s=neigh_back)
    assert s.lost <= 5, s.lost_ranges


def test_lost_ipv6_addresses_are_restored(make_lab: MakeLab) -> None:
    """keep_addr_on_down keeps IPv6 addresses over an admin down; in.mpathd restores what is lost anyway."""
    lab = make_lab("ipv6-only")
    topo = lab.topo
    host = topo.host

    def conf(key: str) -> str:
        return topo.run("host", ["cat", f"/proc/sys/net/ipv6/conf/e1000g0/{key}"]).stdout.strip()

    def routes6() -> set[tuple[str, str]]:
        every = topo.ip_json("host", "-6", "route", "show", "table", "all")
        return {(str(r.get("table", "main")), str(r["dev"])) for r in every if r.get("protocol") == "73"}

    assert conf("keep_addr_on_down") == "1"
    booted = routes6()
    # Admin down and up behind the toolkit's back: the address survives, the
    # routes through the NIC do not (linux-mapping.md Q6).
    topo.ip(host, "link", "set", "dev", "e1000g0", "down")
    assert kernel_holders(topo, V6D0) == ["e1000g0"]
    topo.ip(host, "link", "set", "dev", "e1000g0", "up")
    assert routes6() < booted
    # Without keep_addr_on_down the address goes with the admin down.
    topo.run("host", ["sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/e1000g0/keep_addr_on_down"])
    topo.ip(host, "link", "set", "dev", "e1000g0", "down")
    topo.ip(host, "link", "set", "dev", "e1000g0", "up")
    assert kernel_holders(topo, V6D0) == []

    d = lab.start()
    d.wait_line(r"^restoring \d+ kernel change\(s\) undone outside in\.mpathd", timeout=10)
    wait_for(lambda: kernel_holders(topo, V6D0) == ["e1000g0"] and routes6() == booted, 10.0,
             "the address and its routes back on e1000g0")
    assert conf("keep_addr_on_down") == "1"
    flags = next(info for link in topo.ip_json("host", "-6", "addr", "show", "dev", "e1000g0")
                 for info in link["addr_info"] if info.get("local") == V6D0)
    assert flags.get("nodad") and flags.get("noprefixroute"), flags
    assert topo.ping("peer", [V6D0], count=3)[V6D0].received == 3

    # Deleted while the daemon runs: put back on the next resync.
    t0 = time.monotonic()
    topo.ip(host, "-6", "addr", "del", f"{V6D0}/64", "dev", "e1000g0")
    back = wait_for(lambda: kernel_holders(topo, V6D0) == ["e1000g0"] and routes6() == booted
                    and time.monotonic(), 10.0, "the deleted address back on e1000g0")
    figures("v6_restore", restore_s=back - t0)
    assert lab.layout(6).nic_of(V6D0) == "e1000g0"
    assert not d.matching("^NIC failure detected"), d.text()


# --------------------------------------------------------------------------
# Dual stack: IPv4 and IPv6 probe each NIC; both must fail; both move
# --------------------------------------------------------------------------


def test_dual_stack_carrier_loss_moves_both_families_together(make_lab: MakeLab) -> None:
    lab = make_lab("dual-stack")
    topo = lab.topo
    d = lab.start()
    before4, before6 = lab.layout(4), lab.layout(6)
    assert set(probes(lab, "qfe0")) == {"inet", "inet6"}
    with start_ping(topo, D0, V6D0, D1, V6D1) as job:
        t0 = time.monotonic()
        topo.fail_link("qfe0")
        fail = d.wait_line(FAILURE.format(nic="qfe0"), since=t0, timeout=5)
        moved = d.wait_line(FAILOVER.format(src="qfe0", dst="qfe1"), since=t0, timeout=5)
        neigh4 = neighbour_updated(topo, D0, "qfe1", moved.t)
        neigh6 = neighbour_updated(topo, V6D0, "qfe1", moved.t)
        # One failover moved both families (§1 mechanics 1): both already there.
        assert kernel_holders(topo, D0) == ["qfe1"] and kernel_holders(topo, V6D0) == ["qfe1"]
        lay4, lay6 = lab.layout(4), lab.layout(6)
        wait_for(lambda: time.monotonic() >= moved.t + 1.0, 5.0, "a second of pings after the move")

        t1 = time.monotonic()
        topo.repair_link("qfe0")
        back = d.wait_line(FAILBACK.format(nic="qfe0"), since=t1, timeout=10)
        wait_for(lambda: time.monotonic() >= back.t + 0.5, 5.0, "pings after the failback")
        report = job.stop()
    assert len(d.matching("^Successfully failed over", since=t0)) == 1, d.text()
    assert lay4.nic_of(D0) == "qfe1" and lay6.nic_of(V6D0) == "qfe1", lay4.text + lay6.text
    assert lay6.holder(V6D0).name == "qfe1:2", lay6.text  # type: ignore[union-attr]
    assert "FAILED" in lay6.nic_flags("qfe0") and lay6.lifs["qfe0"].address == before6.lifs["qfe0"].address
    after4 = lab.wait_layout(lambda lay: lay.nic_of(D0) == "qfe0", "IPv4 back on qfe0")
    after6 = wait6(lab, lambda lay: lay.nic_of(V6D0) == "qfe0", "IPv6 back on qfe0")
    assert after4.lifs == before4.lifs, f"before:\n{before4.text}\nafter:\n{after4.text}"
    assert after6.lifs == before6.lifs, f"before:\n{before6.text}\nafter:\n{after6.text}"

    lost = {a: report[a].lost for a in (D0, V6D0, D1, V6D1)}
    after = {a: lost_after(report[a], rel(report, moved.t) + AFTER_MOVE, PING_INTERVAL)
             - lost_after(report[a], rel(report, t1), PING_INTERVAL) for a in (D0, V6D0)}
    figures("dual_carrier", detect_s=fail.t - t0, move_s=moved.t - t0, lost_v4=lost[D0], lost_v6=lost[V6D0],
            lost_after_move_v4=after[D0], lost_after_move_v6=after[V6D0], neigh4_s=neigh4, neigh6_s=neigh6,
            failback_s=back.t - t1)
    assert after == {D0: 0, V6D0: 0}, {a: report[a].lost_ranges for a in after}
    assert lost[D1] == 0 and lost[V6D1] == 0, lost
    assert lost[D0] <= 20 and lost[V6D0] <= 20, lost


def test_dual_stack_fails_only_when_both_families_fail(make_lab: MakeLab) -> None:
    lab = make_lab("dual-stack")
    topo = lab.topo
    host = topo.host
    d = lab.start()
    lls = {nic: link_local(topo, "host", nic) for nic in topo.nics}
    router_ll = link_local(topo, "router", topo.router_ifname)
    # A static default route via the router's link-local, as router
    # advertisements would make it: the router becomes the IPv6 target of
    # qfe0 and, through the group, of qfe1 (§2.6), replacing the hosts.
    topo.ip(host, "-6", "route", "add", "default", "via", router_ll, "dev", "qfe0")
    for nic in topo.nics:
        wait_for(lambda n=nic: (p := probes(lab, n)["inet6"])["mode"] == "routes"  # type: ignore[misc]
                 and p["targets"] == [router_ll], 10.0, f"{nic} to probe the router over IPv6",
                 context=lambda: str(lab.query()))

    # IPv4 probes of qfe0 die: the router's replies to 192.0.2.10 go nowhere.
    t0 = time.monotonic()
    topo.ip("router", "neigh", "replace", T0, "lladdr", NOWHERE_MAC, "dev", topo.router_ifname,
            "nud", "permanent")
    wait_for(lambda: probes(lab, "qfe0") and lab.query()["interfaces"]["qfe0"]["probe"] == "failed", 10.0,
             "qfe0's IPv4 probes to be lost")
    # IPv6 still answers: the NIC is not failed (every probing instance must lose, §2.7).
    wait_for(lambda: time.monotonic() >= t0 + 3 * 0.7, 5.0, "three failure detection times")
    assert not d.matching("^(NIC failure detected|All Interfaces)", since=t0), d.text()
    info = lab.query()["interfaces"]["qfe0"]
    assert info["state"] == "ok" and not info["failed"], info
    assert lab.layout(4).nic_of(D0) == "qfe0" and lab.layout(6).nic_of(V6D0) == "qfe0"

    # Now IPv6 too: the router's replies to qfe0's link-local go nowhere.
    t1 = time.monotonic()
    topo.ip("router", "-6", "neigh", "replace", lls["qfe0"], "lladdr", NOWHERE_MAC, "dev", topo.router_ifname,
            "nud", "permanent")
    fail = d.wait_line(FAILURE.format(nic="qfe0"), since=t1, timeout=10)
    d.wait_line(FAILOVER.format(src="qfe0", dst="qfe1"), since=t1, timeout=5)
    assert kernel_holders(topo, D0) == ["qfe1"] and kernel_holders(topo, V6D0) == ["qfe1"]
    assert not d.matching("^All Interfaces", since=t0), d.text()

    # Repair one family only: a NIC is repaired when one probing instance is (§2.7).
    t2 = time.monotonic()
    topo.ip("router", "-6", "neigh", "del", lls["qfe0"], "dev", topo.router_ifname)
    repair = d.wait_line(REPAIR.format(nic="qfe0"), since=t2, timeout=10)
    d.wait_line(FAILBACK.format(nic="qfe0"), since=t2, timeout=5)
    wait_for(lambda: kernel_holders(topo, D0) == ["qfe0"] and kernel_holders(topo, V6D0) == ["qfe0"], 5.0,
             "both families back on qfe0")
    topo.ip("router", "neigh", "del", T0, "dev", topo.router_ifname)
    figures("dual_one_family", detect_s=fail.t - t1, repair_s=repair.t - t2)
    assert fail.t - t1 < 3.0

    # The router route goes: back to multicast discovery.
    topo.ip(host, "-6", "route", "del", "default", "via", router_ll, "dev", "qfe0")
    wait_for(lambda: probes(lab, "qfe1")["inet6"]["mode"] == "multicast", 10.0,
             "qfe1 to drop the router target")
