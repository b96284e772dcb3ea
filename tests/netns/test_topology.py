"""The lab topology itself: wiring, cleanup, failure injection, the pinger."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from ipmp.lab import wiring as wiring_mod
from ipmp.lab.addressing import PEER_MAC, ROUTER_MAC, host_mac, unique_prefix
from ipmp.lab.errors import CommandError, LabError
from ipmp.lab.topology import Topology
from ipmp.lab.wiring import build

MakeTopology = Callable[..., Topology]  # the make_topology fixture (see conftest.py)

# Documentation-range addresses for the host side of the tests.
HOST_TEST4 = "192.0.2.10/24"
UNUSED4 = "192.0.2.99"  # on the link, owned by nobody


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def names_with_prefix(prefix: str) -> set[str]:
    return {n for n in netns_names() if n.startswith(prefix + "-")}


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    # Carrier flags are updated by the kernel's linkwatch worker, i.e. shortly
    # *after* the command that caused them returns.
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def sys_carrier(topo: Topology, nic: str) -> str:
    # Independent of `ip`: the kernel's own view, through the namespace's /sys.
    return topo.exec_host(["cat", f"/sys/class/net/{nic}/carrier"]).stdout.strip()


def bring_up(topo: Topology, nic: str, address: str | None = None) -> None:
    if address is not None:
        topo.ip("host", "addr", "add", address, "dev", nic)
    topo.ip("host", "link", "set", "dev", nic, "up")
    assert wait_for(lambda: topo.carrier(nic)), f"{nic} never got carrier"


def ping_router(topo: Topology, count: int = 20) -> int:
    """Replies the host gets from the router (IPv4) out of ``count``."""
    report = topo.ping("host", [topo.router_ip(4)], count=count, interval=0.01, timeout=0.3)
    stats = report[topo.router_ip(4)]
    assert stats.sent == count
    assert stats.duplicates == 0
    return stats.received


# ------------------------------------------------------------------ building


def test_build_wires_everything_as_documented(topology: Topology) -> None:
    t = topology
    assert set(t.namespaces) <= netns_names()
    assert t.namespaces == (f"{t.prefix}-host", f"{t.prefix}-sw", f"{t.prefix}-rt", f"{t.prefix}-peer")
    for ns in ("host", "switch", "router", "peer"):
        assert t.link(ns, "lo").admin_up, f"lo down in {ns}"

    # Host NICs: present, admin-down, no addresses -- the product's to configure.
    for nic in t.nics:
        info = t.link("host", nic)
        assert not info.admin_up
        assert t.ip_json("host", "addr", "show", "dev", nic)[0].get("addr_info", []) == []
    host_links = {d["ifname"] for d in t.ip_json("host", "link", "show")}
    assert host_links == {"lo", *t.nics}

    # Switch: one bridge, every port enslaved; STP off; snooping off.
    for port in [*t.ports.values(), t.router_port, t.peer_port]:
        assert t.link("switch", port).master == t.bridge
    details = t.ip_json("switch", "-d", "link", "show", "dev", t.bridge)[0]["linkinfo"]["info_data"]
    assert details["stp_state"] == 0
    assert details["mcast_snooping"] == 0
    assert details["forward_delay"] == 0

    # Router and peer: addresses, forwarding, the peer's default route.
    rt_addrs = {
        f"{a['local']}/{a['prefixlen']}"
        for a in t.ip_json("router", "addr", "show", "dev", t.router_ifname)[0]["addr_info"]
    }
    assert {"192.0.2.1/24", "2001:db8::1/64"} <= rt_addrs
    assert t.run("router", ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"
    routes = t.ip_json("peer", "route", "show", "default")
    assert [r["gateway"] for r in routes] == ["192.0.2.1"]


def test_destroy_removes_everything_and_is_idempotent() -> None:
    prefix = unique_prefix()
    with build(prefix) as topo:
        assert names_with_prefix(prefix) == set(topo.namespaces)
    assert names_with_prefix(prefix) == set()
    topo.destroy()  # a second time: nothing to do, no error
    with pytest.raises(LabError):
        topo.run("host", ["true"])


def test_destroy_tolerates_namespaces_already_gone() -> None:
    topo = build(unique_prefix())
    try:
        subprocess.run(["ip", "netns", "delete", topo.router], check=True)
    finally:
        topo.destroy()
    assert names_with_prefix(topo.prefix) == set()


def test_destroy_stops_background_processes() -> None:
    topo = build(unique_prefix())
    try:
        proc = topo.popen("peer", ["sleep", "60"])
    finally:
        topo.destroy()
    # A survivor would pin the namespace (and its links) after deletion.
    assert proc.poll() is not None
    assert names_with_prefix(topo.prefix) == set()


def test_destroy_reports_processes_it_did_not_start() -> None:
    topo = build(unique_prefix())
    stray = subprocess.Popen(["ip", "netns", "exec", topo.host, "sleep", "60"])
    try:
        assert wait_for(lambda: str(stray.pid) in topo.ip("host", "netns", "pids", topo.host).stdout.split())
        with pytest.raises(LabError, match=rf"pids {stray.pid}\b"):
            topo.destroy()
        # Deleted all the same: only the stray process keeps the namespace alive.
        assert names_with_prefix(topo.prefix) == set()
    finally:
        stray.kill()
        stray.wait()
        topo.destroy()


def test_failed_build_cleans_up() -> None:
    prefix = unique_prefix()
    # The kernel refuses the duplicate address half-way through the build.
    with pytest.raises(CommandError, match=r"already assigned|File exists"):
        build(prefix, extra_router_addrs=["192.0.2.1/24"])
    assert names_with_prefix(prefix) == set()


def test_interrupted_build_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(wiring_mod, "_sysctl", interrupt)
    prefix = unique_prefix()
    with pytest.raises(KeyboardInterrupt):
        build(prefix)
    assert names_with_prefix(prefix) == set()


def test_existing_namespaces_are_never_deleted(topology: Topology) -> None:
    # Same prefix again: the build must fail *and* leave the first one alone.
    with pytest.raises(CommandError):
        build(topology.prefix)
    assert names_with_prefix(topology.prefix) == set(topology.namespaces)
    assert ping_router_from_peer(topology) == 5


def ping_router_from_peer(topo: Topology) -> int:
    return topo.ping("peer", [topo.router_ip(4)], count=5, timeout=0.5)[topo.router_ip(4)].received


@pytest.mark.parametrize(
    ("nics", "kwargs"),
    [
        (("nic0", "nic0"), {}),
        (("a" * 16,), {}),
        (("bad/name",), {}),
        (("qfe0:1",), {}),
        (("lo",), {}),
        ((), {}),
        (("nic0",), {"router4": "192.0.2.1"}),
        (("nic0",), {"router4": "2001:db8::1/64"}),
        (("nic0",), {"peer6": "192.0.2.50/24"}),
        (("nic0",), {"extra_router_addrs": ["198.51.100.1"]}),
    ],
)
def test_invalid_arguments_create_nothing(nics: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    prefix = unique_prefix()
    with pytest.raises(ValueError):
        build(prefix, nics, **kwargs)
    assert names_with_prefix(prefix) == set()


def test_bad_prefix_is_rejected() -> None:
    for prefix in ("", "-x", "a/b", "a b", "x" * 40):
        with pytest.raises(ValueError):
            build(prefix)


def test_unique_prefix_is_short_unique_and_valid(make_topology: MakeTopology) -> None:
    prefixes = [unique_prefix() for _ in range(500)]
    assert len(set(prefixes)) == len(prefixes)
    for p in prefixes:
        assert re.fullmatch(r"[a-z0-9]{5,16}", p), p
    a, b = make_topology(), make_topology()
    assert a.prefix != b.prefix
    assert not set(a.namespaces) & set(b.namespaces)


# ------------------------------------------------------------ addresses, MACs


def test_macs_are_deterministic_whatever_the_names(make_topology: MakeTopology) -> None:
    solaris = make_topology(nics=("qfe0", "hme0", "enp1s0f1"))
    default = make_topology()
    assert solaris.prefix != default.prefix
    assert [solaris.macs[n] for n in solaris.nics][:2] == [default.macs[n] for n in default.nics]
    for topo in (solaris, default):
        for i, nic in enumerate(topo.nics):
            assert topo.macs[nic] == host_mac(i)
            assert topo.link("host", nic).mac == host_mac(i)
        assert topo.link("router", topo.router_ifname).mac == ROUTER_MAC
        assert topo.link("peer", topo.peer_ifname).mac == PEER_MAC
    assert host_mac(0) == "02:00:00:00:01:01"
    # Locally administered, unicast.
    assert all(int(host_mac(i).split(":")[0], 16) & 0b11 == 0b10 for i in range(3))


def test_ns_refuses_foreign_namespaces(topology: Topology) -> None:
    assert topology.ns("rt") == topology.router
    assert topology.ns(topology.peer) == topology.peer
    with pytest.raises(ValueError):
        topology.ns("somebody-else")
    with pytest.raises(ValueError):
        topology.fail_link("nic9")


def test_run_reports_failures_with_stderr(topology: Topology) -> None:
    assert topology.run("host", ["true"]).returncode == 0
    with pytest.raises(CommandError, match="does not exist"):
        topology.ip("host", "link", "show", "dev", "nosuchnic")
    assert topology.run("host", ["false"], check=False).returncode == 1


# ------------------------------------------------------------------- pinger


def test_router_reachable_from_peer(topology: Topology) -> None:
    t = topology
    report = t.ping("peer", [t.router_ip(4), t.router_ip(6), UNUSED4], count=20, interval=0.01, timeout=0.3)
    for addr in (t.router_ip(4), t.router_ip(6)):
        stats = report[addr]
        assert (stats.sent, stats.received, stats.lost, stats.duplicates) == (20, 20, 0, 0)
        assert stats.replied == ((0, 19),)
        assert stats.rtt_min_ms is not None and stats.rtt_min_ms > 0
    # Nobody owns this one: the pinger must be able to say so.
    dead = report[UNUSED4]
    assert (dead.sent, dead.received, dead.lost) == (20, 0, 20)
    assert dead.max_consecutive_lost == 20
    assert t.neighbour_mac("peer", t.router_ip(4)) == ROUTER_MAC
    assert t.neighbour_mac("peer", UNUSED4) is None
    t.flush_neighbours("peer")
    assert t.neighbour_mac("peer", t.router_ip(4)) is None


def test_pinger_keeps_its_schedule(topology: Topology) -> None:
    report = topology.ping("peer", [topology.router_ip(4)], count=50, interval=0.01, timeout=0.5)
    assert report.rounds == 50
    # Round k goes out at start + k*interval on the monotonic clock, so the
    # run cannot be shorter than 49 intervals.
    assert report.end_monotonic - report.start_monotonic >= 0.49


def test_concurrent_pingers_count_only_their_own_replies(topology: Topology) -> None:
    # A raw ICMP socket sees every echo reply of its namespace; without id and
    # cookie filtering each pinger would count the other's replies too.
    t = topology
    with t.start_ping("peer", [t.router_ip(4), t.router_ip(6)], interval=0.005) as background:
        mine = t.ping("peer", [t.router_ip(4), t.router_ip(6)], count=40, interval=0.005, timeout=0.5)
        theirs = background.stop()
    for report in (mine, theirs):
        for addr in (t.router_ip(4), t.router_ip(6)):
            stats = report[addr]
            assert stats.received == stats.sent > 0
            assert stats.duplicates == 0
    assert mine.ident != theirs.ident or mine[t.router_ip(4)].sent == 40


def test_loss_window_matches_the_injected_outage(topology: Topology) -> None:
    t = topology
    with t.start_ping("peer", [t.router_ip(4)], interval=0.01, timeout=0.5) as job:
        time.sleep(0.3)
        down_at = time.monotonic()
        t.router_down()
        time.sleep(0.3)
        t.router_up()
        up_at = time.monotonic()
        time.sleep(0.3)
        report = job.stop()
    stats = report[t.router_ip(4)]
    assert len(stats.lost_ranges) == 1, stats.lost_ranges
    window = stats.lost_ranges[0]
    # Lost echoes were sent during the outage (give or take one interval and
    # the reply time of the last good one).
    assert report.start_monotonic + window.start >= down_at - 0.02
    assert report.start_monotonic + window.end <= up_at + 0.02
    assert 20 <= window.count <= 40
    assert stats.received == stats.sent - window.count


# -------------------------------------------------------- failure injection


def test_fail_link_drops_carrier_of_that_nic_only(topology: Topology) -> None:
    t = topology
    for nic in t.nics:
        bring_up(t, nic)
    assert sys_carrier(t, "nic0") == "1"

    t.fail_link("nic0")
    assert wait_for(lambda: not t.carrier("nic0"))
    assert sys_carrier(t, "nic0") == "0"
    info = t.link("host", "nic0")
    assert info.admin_up and info.operstate == "DOWN"  # still up; the wire is dead
    assert t.carrier("nic1")
    assert t.failed_links == {"nic0"}

    t.repair_link("nic0")
    assert wait_for(lambda: t.carrier("nic0"))
    assert sys_carrier(t, "nic0") == "1"
    assert t.failed_links == set()


def test_fail_silent_keeps_carrier_but_blocks_traffic(topology: Topology) -> None:
    t = topology
    bring_up(t, "nic0", HOST_TEST4)
    assert ping_router(t) == 20

    t.fail_silent("nic0")
    assert t.silent_failures == {"nic0"}
    assert ping_router(t) == 0
    assert t.carrier("nic0") and sys_carrier(t, "nic0") == "1"
    assert t.link("host", "nic0").operstate == "UP"

    t.repair_silent("nic0")
    assert ping_router(t) == 20


def test_silent_failure_survives_carrier_flaps(topology: Topology) -> None:
    # The pitfall of the bridge-port-state method: any carrier change on the
    # port would quietly end the failure.  Ours must hold.
    t = topology
    bring_up(t, "nic0", HOST_TEST4)
    t.fail_silent("nic0")
    t.fail_link("nic0")
    assert wait_for(lambda: not t.carrier("nic0"))
    t.repair_link("nic0")
    assert wait_for(lambda: t.carrier("nic0"))
    assert ping_router(t) == 0
    # ... and a flap caused by the product itself, from the host side.
    t.ip("host", "link", "set", "dev", "nic0", "down")
    bring_up(t, "nic0")
    assert ping_router(t) == 0

    t.repair_silent("nic0")
    # The host's ARP entry for the router is stuck in INCOMPLETE/FAILED from
    # the outage and would only retry on the kernel's 1 s timer.
    t.flush_neighbours("host")
    assert ping_router(t) == 20


def test_router_down_is_silent_for_the_host(topology: Topology) -> None:
    t = topology
    bring_up(t, "nic0", HOST_TEST4)
    assert ping_router(t) == 20
    t.router_down()
    assert ping_router(t) == 0
    assert t.carrier("nic0")
    t.router_up()
    assert ping_router(t) == 20
    # IPv6 too: the router's addresses must survive its carrier flap.
    assert t.ping("peer", [t.router_ip(6)], count=5, timeout=0.5)[t.router_ip(6)].received == 5
