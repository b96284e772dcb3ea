"""The recipe's sysctls go on the NICs the toolkit configures, never on ``conf/all``.

The kernel combines ``conf/all`` and ``conf/<nic>`` per key: rp_filter,
arp_ignore and arp_announce take the maximum, promote_secondaries and
ignore_routes_with_linkdown (IPv4) the logical or; IPv6 reads only the
NIC's ignore_routes_with_linkdown and copies a write to ``all`` onto every
link.  So ``rp_filter=2`` on each member of a group makes the group loose
whatever ``all`` is, while every other interface of the host keeps what
its administrator set.  A host that was strict (``all`` = 1) before the boot
must still be strict after it, on every interface but the group's, and a
failover and failback with a peer pinging must still work there.

Each test builds its own topology; the extra interfaces they add live in
its host namespace and go with it.  Documentation addresses only.
"""

from __future__ import annotations

import time
from pathlib import Path

from labhost import Host, MakeTopology, copy_example
from mpathd_harness import (
    FAILBACK,
    FAILOVER,
    FAILURE,
    PING_INTERVAL,
    REPAIR,
    MpathdLab,
    figures,
    lost_after,
    rel,
    start_ping,
    wait_for,
)

from ipmp.lab.topology import Topology

D0, D1 = "192.0.2.100", "192.0.2.101"
DROPIN = Path("etc/sysctl.d/90-ipmp.conf")

#: What ipmp-boot wrote before the per-NIC rule: host-wide lines first.
OLD_DROPIN = """\
# Written by ipmp-boot: IP multipathing (in.mpathd) owns these settings.
# Host-wide: answer ARP only on the NIC that holds the address, loose
# reverse-path filter, keep secondaries, skip routes of links that are down.
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
net.ipv4.conf.all.rp_filter = 2
net.ipv4.conf.all.promote_secondaries = 1
net.ipv4.conf.all.ignore_routes_with_linkdown = 1
net.ipv6.conf.all.ignore_routes_with_linkdown = 1
# qfe0
net.ipv4.conf.qfe0.rp_filter = 2
"""

#: A strict host: what an administrator may have set before installing ipmp.
STRICT_HOST = {
    "net/ipv4/conf/all/rp_filter": "1",
    "net/ipv4/conf/all/arp_ignore": "0",
    "net/ipv4/conf/all/arp_announce": "0",
    "net/ipv4/conf/all/promote_secondaries": "0",
    "net/ipv4/conf/all/ignore_routes_with_linkdown": "0",
    "net/ipv6/conf/all/ignore_routes_with_linkdown": "0",
}


def set_sysctls(topo: Topology, values: dict[str, str]) -> None:
    script = " && ".join(f"echo {v} > /proc/sys/{k}" for k, v in values.items())
    topo.run("host", ["sh", "-c", script])


def add_bystander(topo: Topology) -> str:
    """A veth pair in the host namespace that no hostname file names; strict rp_filter on it."""
    name = f"{topo.prefix[:10]}by0"
    topo.ip("host", "link", "add", name, "type", "veth", "peer", "name", f"{topo.prefix[:10]}by1")
    set_sysctls(topo, {f"net/ipv4/conf/{name}/rp_filter": "1",
                       f"net/ipv6/conf/{name}/ignore_routes_with_linkdown": "0"})
    return name


def outside(sysctls: dict[str, str], nics: tuple[str, ...]) -> dict[str, str]:
    """Every conf value but those of ``nics``: what a boot of ``nics`` must leave alone."""
    return {k: v for k, v in sysctls.items() if k.split("/")[3] not in nics}


def ping_d1_through_qfe0(topo: Topology) -> int:
    """Echoes to D1 (held by qfe1) that reach the host through qfe0, as from a peer with a stale cache.

    The reverse path of the peer from D1 is qfe1 (its per-source rule), so a
    strict filter on qfe0 drops them; a loose one lets them in and the reply
    leaves through qfe1.  Returns the replies received of 3.
    """
    topo.ip("peer", "neigh", "replace", D1, "lladdr", topo.macs["qfe0"], "dev", topo.peer_ifname,
            "nud", "permanent")
    try:
        return topo.ping("peer", [D1], count=3, interval=0.05, timeout=1.0)[D1].received
    finally:
        topo.ip("peer", "neigh", "del", D1, "dev", topo.peer_ifname)


def test_a_strict_host_stays_strict_but_for_the_group_and_fails_over(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    topo = make_topology(nics=("qfe0", "qfe1"))
    lab = MpathdLab(topo, tmp_path, "active-active")
    try:
        host = Host(topo, lab.root)
        bystander = add_bystander(topo)
        set_sysctls(topo, STRICT_HOST)
        (lab.root / DROPIN).parent.mkdir(parents=True)
        (lab.root / DROPIN).write_text(OLD_DROPIN)
        before = host.sysctls()
        assert before[f"net/ipv4/conf/{bystander}/rp_filter"] == "1"

        lab.boot()

        after = host.sysctls()
        # conf/all, conf/default, lo and the bystander: exactly as they were.
        assert outside(after, topo.nics) == outside(before, topo.nics)
        for nic in topo.nics:
            for key, value in (("rp_filter", "2"), ("arp_ignore", "1"), ("arp_announce", "2"),
                               ("promote_secondaries", "1"), ("ignore_routes_with_linkdown", "1")):
                assert after[f"net/ipv4/conf/{nic}/{key}"] == value, (nic, key)
        # The upgrade healed the drop-in: per NIC only, for both members.
        text = (lab.root / DROPIN).read_text()
        assert ".all." not in text and "/all/" not in text, text
        assert "net.ipv4.conf.qfe0.rp_filter = 2\n" in text and "net.ipv4.conf.qfe1.rp_filter = 2\n" in text

        # max(all=1, qfe0=2) is loose: a packet for qfe1's address that comes in
        # on qfe0 (a peer's stale neighbour entry after a move) is taken...
        assert ping_d1_through_qfe0(topo) == 3
        # ... which strict mode on qfe0 would not do (the check above is real).
        set_sysctls(topo, {"net/ipv4/conf/qfe0/rp_filter": "1"})
        try:
            assert ping_d1_through_qfe0(topo) == 0
        finally:
            set_sysctls(topo, {"net/ipv4/conf/qfe0/rp_filter": "2"})

        # Failover and failback with the peer pinging, on the strict host.
        d = lab.start()
        with start_ping(topo, D0, D1) as job:
            t0 = time.monotonic()
            topo.fail_silent("qfe0")
            fail = d.wait_line(FAILURE.format(nic="qfe0"), since=t0, timeout=10)
            moved = d.wait_line(FAILOVER.format(src="qfe0", dst="qfe1"), since=t0, timeout=5)
            lab.wait_layout(lambda lay: lay.nic_of(D0) == "qfe1", "D0 up on qfe1")
            wait_for(lambda: time.monotonic() >= moved.t + 0.5, 5.0, "pings after the move")
            t1 = time.monotonic()
            topo.repair_silent("qfe0")
            d.wait_line(REPAIR.format(nic="qfe0"), since=t1, timeout=10)
            back = d.wait_line(FAILBACK.format(nic="qfe0"), since=t1, timeout=5)
            lab.wait_layout(lambda lay: lay.nic_of(D0) == "qfe0", "D0 back on qfe0")
            wait_for(lambda: time.monotonic() >= back.t + 0.5, 5.0, "pings after the failback")
            report = job.stop()
        s0, s1 = report[D0], report[D1]
        lost_move = lost_after(s0, rel(report, moved.t) + 0.02, PING_INTERVAL) - lost_after(
            s0, rel(report, t1), PING_INTERVAL)
        lost_failback = lost_after(s0, rel(report, t1), PING_INTERVAL)
        figures("strict_host", detect_s=fail.t - t0, lost_d0=s0.lost, lost_between_move_and_repair=lost_move,
                lost_from_repair=lost_failback, lost_d1=s1.lost)
        assert lost_move == 0, s0.lost_ranges
        assert lost_failback <= 2, s0.lost_ranges
        assert s1.lost == 0, s1.lost_ranges
        # The daemon's applies did not touch the host's settings either.
        assert outside(host.sysctls(), topo.nics) == outside(before, topo.nics)
    finally:
        lab.close()


def test_a_nic_in_no_group_keeps_its_rp_filter(make_topology: MakeTopology, tmp_path: Path) -> None:
    root = copy_example("single-line", tmp_path)  # hostname.hme0: "myhost", no group
    host = Host(make_topology(nics=("hme0",)), root)
    set_sysctls(host.topo, {**STRICT_HOST, "net/ipv4/conf/hme0/rp_filter": "1"})
    before = host.sysctls()

    proc = host.boot_ok()

    assert proc.stdout == "configuring IPv4 interfaces: hme0.\n"
    after = host.sysctls()
    assert after["net/ipv4/conf/hme0/rp_filter"] == "1"  # its addresses never move
    assert after["net/ipv4/conf/hme0/arp_ignore"] == "1"
    assert outside(after, ("hme0",)) == outside(before, ("hme0",))
    text = (root / DROPIN).read_text()
    assert "net.ipv4.conf.hme0.arp_ignore = 1\n" in text
    assert "rp_filter" not in text and ".all." not in text, text
    # Strict is no obstacle to an address that stays on its NIC.
    assert host.topo.ping(host.topo.peer, ["192.0.2.100"], count=3)["192.0.2.100"].received == 3


def test_a_boot_that_configures_nothing_still_heals_an_old_dropin(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / DROPIN).parent.mkdir(parents=True)
    (root / DROPIN).write_text(OLD_DROPIN)
    host = Host(make_topology(nics=("qfe0",)), root)  # no hostname file at all

    dry = host.boot("--dry-run")
    assert (dry.returncode, dry.stderr) == (0, ""), dry.stderr
    assert dry.stdout == f"# would write {root / DROPIN} (the sysctls above, for the next boot)\n"
    assert (root / DROPIN).read_text() == OLD_DROPIN

    host.boot_ok()

    assert (root / DROPIN).read_text() == (
        "# Written by ipmp-boot: IP multipathing (in.mpathd) owns these settings.\n"
        "# qfe0\n"
        "net.ipv4.conf.qfe0.rp_filter = 2\n"
    )
