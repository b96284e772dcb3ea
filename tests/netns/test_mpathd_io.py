"""in.mpathd's packet I/O on a real kernel: probe sockets and address announcements.

Each test configures the lab's host namespace with ``ip`` commands, then runs
one small Python process in it (``ip netns exec``): sockets work in the
namespace of their process.  The process gets its plan as JSON in argv and
prints one JSON document with what happened, including the frames it saw
leave the NICs (an ``AF_PACKET`` socket per NIC), so the assertions check the
wire format the kernel really produced, not just that an answer came back.

Only documentation prefixes (192.0.2.0/24, 2001:db8::/32), and only in the
fixture's namespaces; the router and peer namespaces get one sysctl each
(answer echo requests sent to a multicast group).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ipmp.lab.topology import Topology

ROOT = Path(__file__).resolve().parents[2]

TEST4 = {"nic0": "192.0.2.10", "nic1": "192.0.2.11"}

#: The probe process.  Plan: {"sockets": {nic: address}, "sends": [[nic,
#: target, seq, timestamp, type], ...], "expect": {nic: n}, "linger": s,
#: "timeout": s, "capture": [nic, ...]}.  It waits until every NIC has its
#: ``expect`` replies (or ``timeout``), then ``linger`` more for stragglers.
PROBE_SCRIPT = r"""
import json, os, select, socket, struct, sys, time
sys.path.insert(0, sys.argv[1])
from ipaddress import ip_address
from ipmp.model import Family
from ipmp.mpathd.icmp import ProbeSocket, decode_echo_reply, encode_echo, icmp_checksum, new_probe_key

plan = json.loads(sys.argv[2])
ETH_P_ALL, PACKET_OUTGOING = 0x0003, 4
captures = {}
for nic in plan.get("capture", []):
    cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    cap.bind((nic, ETH_P_ALL))
    cap.setblocking(False)
    captures[nic] = cap
socks = {nic: ProbeSocket(nic, ip_address(addr)) for nic, addr in plan["sockets"].items()}
keys = {}
for nic in socks:
    keys[nic] = new_probe_key({k.ident for k in keys.values()})
idents = {nic: k.ident for nic, k in keys.items()}
errors = []
for nic, target, seq, stamp, ptype in plan["sends"]:
    s = socks[nic]
    try:
        s.send(ip_address(target), encode_echo(s.family, keys[nic], seq, stamp, ptype))
    except OSError as e:
        errors.append([nic, target, e.errno])

got = {nic: [] for nic in socks}
def drain(nic):
    s = socks[nic]
    for data, source, _ in s.receive():
        r = decode_echo_reply(s.family, data, source, key=keys[nic],
                              require_linklocal=plan.get("require_linklocal", True))
        if r is None:
            got[nic].append({"kind": "ignored", "source": str(source)})
        elif hasattr(r, "reason_format"):
            got[nic].append({"kind": "bad", "message": r.message(nic)})
        else:
            got[nic].append({"kind": "reply", "ident": r.ident, "seq": r.seq, "timestamp": r.timestamp_ms,
                             "type": r.probe_type, "source": str(r.source)})

def enough():
    return all(len([g for g in got[n] if g["kind"] != "ignored"]) >= k for n, k in plan["expect"].items())

start = time.monotonic()
deadline = start + plan["timeout"]
lingering = None
while True:
    now = time.monotonic()
    if lingering is None and enough():
        lingering = now + plan["linger"]
    end = deadline if lingering is None else min(deadline, lingering)
    if now >= end:
        break
    ready, _, _ = select.select(list(socks.values()), [], [], end - now)
    for s in ready:
        drain(s.ifname)

def frame_info(frame):
    # Ethernet + IPv4/IPv6 + ICMP: what the kernel put on the wire.
    eth_dst = frame[0:6].hex(":")
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == 0x0800:
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != 1:
            return None
        icmp = ip[ihl:struct.unpack("!H", ip[2:4])[0]]
        return {"eth_dst": eth_dst, "src": str(ip_address(ip[12:16])), "dst": str(ip_address(ip[16:20])),
                "ttl": ip[8], "type": icmp[0], "checksum_ok": icmp_checksum(icmp) == 0,
                "ident": struct.unpack("!H", icmp[4:6])[0], "length": len(icmp)}
    if ethertype == 0x86DD:
        ip = frame[14:]
        if ip[6] != 58:
            return None
        plen = struct.unpack("!H", ip[4:6])[0]
        icmp = ip[40:40 + plen]
        pseudo = ip[8:40] + struct.pack("!I3xB", plen, 58)
        return {"eth_dst": eth_dst, "src": str(ip_address(ip[8:24])), "dst": str(ip_address(ip[24:40])),
                "ttl": ip[7], "type": icmp[0], "checksum_ok": icmp_checksum(pseudo + icmp) == 0,
                "ident": struct.unpack("!H", icmp[4:6])[0], "length": len(icmp)}
    return None

sent = {}
for nic, cap in captures.items():
    sent[nic] = []
    while True:
        try:
            frame, addr = cap.recvfrom(65535)
        except BlockingIOError:
            break
        info = frame_info(frame) if addr[2] == PACKET_OUTGOING else None
        if info is not None and info["type"] in (8, 128):
            sent[nic].append(info)
print(json.dumps({"idents": idents, "got": got, "errors": errors, "sent": sent}))
"""

#: The announcer process.  Plan: {"nic": ..., "mac": ..., "addresses": [...]}.
ANNOUNCE_SCRIPT = r"""
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from ipaddress import ip_address
from ipmp.mpathd.announce import Announcer

plan = json.loads(sys.argv[2])
async def main():
    with Announcer() as announcer:
        await announcer.burst(plan["nic"], plan["mac"], [ip_address(a) for a in plan["addresses"]])
asyncio.run(main())
"""


def run_probes(topo: Topology, plan: dict[str, Any]) -> dict[str, Any]:
    plan = {"expect": {}, "linger": 0.1, "timeout": 2.0, "capture": [], **plan}
    proc = topo.run("host", [sys.executable, "-c", PROBE_SCRIPT, str(ROOT), json.dumps(plan)])
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def sysctl(topo: Topology, ns: str, values: dict[str, str]) -> None:
    script = " && ".join(f"echo {v} > /proc/sys/{k}" for k, v in values.items())
    topo.run(ns, ["sh", "-c", script])


def host_up(topo: Topology) -> None:
    """Both host NICs up, no DAD (link-locals usable at once), one owner per ARP answer."""
    values = {"net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/all/arp_announce": "2"}
    for nic in topo.nics:
        values[f"net/ipv6/conf/{nic}/accept_dad"] = "0"
        values[f"net/ipv4/conf/{nic}/arp_ignore"] = "1"
        values[f"net/ipv4/conf/{nic}/arp_announce"] = "2"
    sysctl(topo, "host", values)
    for nic in topo.nics:
        topo.ip("host", "link", "set", "dev", nic, "up")


def setup_ipv4(topo: Topology) -> None:
    host_up(topo)
    # nic0's address first: its prefix route is the one unbound traffic uses.
    for nic, address in TEST4.items():
        topo.ip("host", "addr", "add", f"{address}/24", "dev", nic)
    for ns in ("router", "peer"):
        sysctl(topo, ns, {"net/ipv4/icmp_echo_ignore_broadcasts": "0"})


def link_local(topo: Topology, ns: str, dev: str) -> str:
    for entry in topo.ip_json(ns, "-6", "addr", "show", "dev", dev, "scope", "link"):
        for info in entry.get("addr_info", []):
            if info.get("scope") == "link" and "local" in info:
                return str(info["local"])
    raise AssertionError(f"no link-local address on {dev} in {ns}")


def replies(doc: dict[str, Any], nic: str) -> list[dict[str, Any]]:
    return [g for g in doc["got"][nic] if g["kind"] == "reply"]


# ---------------------------------------------------------------------- IPv4
def test_ipv4_probes_come_back_on_their_own_socket(topology: Topology) -> None:
    setup_ipv4(topology)
    # Without the pin nic1's probes would leave through nic0 (first /24 route).
    route = topology.ip("host", "route", "get", "192.0.2.1", "from", TEST4["nic1"]).stdout
    assert " dev nic0 " in route

    doc = run_probes(
        topology,
        {
            "sockets": TEST4,
            "sends": [
                ["nic0", "192.0.2.1", 1, 1000, 0x1234],
                ["nic1", "192.0.2.1", 2, 2000, 0x9ABC],
                ["nic0", "192.0.2.1", 3, 3000, 0x1234],
            ],
            "expect": {"nic0": 2, "nic1": 1},
            "capture": ["nic0", "nic1"],
        },
    )
    assert doc["errors"] == []
    idents = doc["idents"]
    assert idents["nic0"] != idents["nic1"]
    got0 = sorted(
        (r["seq"], r["timestamp"], r["type"], r["ident"], r["source"]) for r in replies(doc, "nic0")
    )
    got1 = [(r["seq"], r["timestamp"], r["type"], r["ident"], r["source"]) for r in replies(doc, "nic1")]
    assert got0 == [
        (1, 1000, 0x1234, idents["nic0"], "192.0.2.1"),
        (3, 3000, 0x1234, idents["nic0"], "192.0.2.1"),
    ]
    assert got1 == [(2, 2000, 0x9ABC, idents["nic1"], "192.0.2.1")]
    assert all(g["kind"] == "reply" for nic in TEST4 for g in doc["got"][nic])

    # On the wire: each probe left through its own NIC, from its test
    # address, with TTL 1, a valid checksum and exactly 24 bytes of ICMP
    # (Solaris's 16 and the token).
    for nic, count in (("nic0", 2), ("nic1", 1)):
        frames = doc["sent"][nic]
        assert len(frames) == count, frames
        for f in frames:
            assert (f["src"], f["dst"], f["ttl"], f["length"]) == (TEST4[nic], "192.0.2.1", 1, 24)
            assert f["checksum_ok"] and f["ident"] == idents[nic]


def test_ipv4_multicast_discovery(topology: Topology) -> None:
    setup_ipv4(topology)
    doc = run_probes(
        topology,
        {
            "sockets": TEST4,
            "sends": [["nic0", "224.0.0.1", 5, 50, 0x5678], ["nic1", "224.0.0.1", 6, 60, 0x5678]],
            "expect": {"nic0": 2, "nic1": 2},
            "capture": ["nic0", "nic1"],
        },
    )
    assert doc["errors"] == []
    for nic, seq in (("nic0", 5), ("nic1", 6)):
        got = replies(doc, nic)
        # Router and peer answer; the host itself does not (loop off, and its
        # other NIC ignores echo to multicast by the kernel default).
        assert sorted(r["source"] for r in got) == ["192.0.2.1", "192.0.2.50"]
        assert {(r["seq"], r["type"], r["ident"]) for r in got} == {(seq, 0x5678, doc["idents"][nic])}
        [frame] = doc["sent"][nic]
        assert frame["eth_dst"] == "01:00:5e:00:00:01"
        assert (frame["src"], frame["dst"], frame["ttl"]) == (TEST4[nic], "224.0.0.1", 1)


def test_silent_failure_of_nic0_leaves_nic1_probing(topology: Topology) -> None:
    setup_ipv4(topology)
    topology.fail_silent("nic0")
    doc = run_probes(
        topology,
        {
            "sockets": TEST4,
            "sends": [["nic0", "192.0.2.1", 1, 1, 0x1234], ["nic1", "192.0.2.1", 1, 1, 0x1234]],
            "expect": {"nic1": 1},
            "linger": 0.3,
            "capture": ["nic0", "nic1"],
        },
    )
    assert doc["errors"] == []
    assert doc["got"]["nic0"] == []
    assert [r["source"] for r in replies(doc, "nic1")] == ["192.0.2.1"]
    # Nothing of nic1's left through the dead nic0, although nic0's /24
    # route is the one the routing table prefers for it.
    assert all(f["src"] == TEST4["nic0"] for f in doc["sent"]["nic0"])
    assert [f["src"] for f in doc["sent"]["nic1"]] == [TEST4["nic1"]]


# ---------------------------------------------------------------------- IPv6
def test_ipv6_link_local_probes_and_discovery(topology: Topology) -> None:
    host_up(topology)
    ll = {nic: link_local(topology, "host", nic) for nic in topology.nics}
    router_ll = link_local(topology, "router", topology.router_ifname)
    peer_ll = link_local(topology, "peer", topology.peer_ifname)
    doc = run_probes(
        topology,
        {
            "sockets": ll,
            "sends": [
                ["nic0", router_ll, 10, 100, 0x1234],
                ["nic1", router_ll, 11, 110, 0x1234],
                ["nic0", "ff02::1", 12, 120, 0x5678],
            ],
            # nic0: router (unicast) + router, peer and the host's own nic1 (multicast).
            "expect": {"nic0": 4, "nic1": 1},
            "capture": ["nic0", "nic1"],
        },
    )
    assert doc["errors"] == []
    idents = doc["idents"]
    unicast0 = [r for r in replies(doc, "nic0") if r["seq"] == 10]
    assert [(r["source"], r["timestamp"], r["type"], r["ident"]) for r in unicast0] == [
        (router_ll, 100, 0x1234, idents["nic0"])
    ]
    discovered = {r["source"] for r in replies(doc, "nic0") if r["seq"] == 12}
    # Linux answers echo to ff02::1 by default, so the host's other NIC shows
    # up as a target too: the daemon must drop its own addresses.
    assert {router_ll, peer_ll} <= discovered <= {router_ll, peer_ll, ll["nic1"]}
    assert [(r["source"], r["seq"], r["timestamp"], r["ident"]) for r in replies(doc, "nic1")] == [
        (router_ll, 11, 110, idents["nic1"])
    ]
    # On the wire: hop limit 1 for unicast and multicast, and the checksum we
    # left 0 was filled in correctly by the kernel.
    for nic, dsts in (("nic0", [router_ll, "ff02::1"]), ("nic1", [router_ll])):
        frames = doc["sent"][nic]
        assert sorted(f["dst"] for f in frames) == sorted(dsts)
        for f in frames:
            assert (f["src"], f["ttl"], f["length"], f["checksum_ok"]) == (ll[nic], 1, 24, True)


def test_ipv6_global_target_replies_from_a_global_source(topology: Topology) -> None:
    host_up(topology)
    ll = {nic: link_local(topology, "host", nic) for nic in topology.nics}
    # A device-bound IPv6 socket needs a route through *its* device: unlike
    # IPv4 the kernel does not assume the target is on-link.
    topology.ip("host", "-6", "route", "add", "2001:db8::/64", "dev", "nic0")
    plan: dict[str, Any] = {
        "sockets": ll,
        "sends": [["nic0", "2001:db8::1", 1, 1, 0x1234], ["nic1", "2001:db8::1", 1, 1, 0x1234]],
        "expect": {"nic0": 1},
    }
    doc = run_probes(topology, plan)
    assert doc["errors"] == [["nic1", "2001:db8::1", 101]]  # ENETUNREACH
    assert doc["got"]["nic0"] == [
        {"kind": "bad", "message": "ICMPv6 echo reply source address not linklocal from 2001:db8::1 on nic0"}
    ]
    doc = run_probes(topology, {**plan, "require_linklocal": False})
    assert [(r["source"], r["seq"]) for r in replies(doc, "nic0")] == [("2001:db8::1", 1)]


# ------------------------------------------------------------- announcements
def announce(topo: Topology, nic: str, addresses: list[str]) -> None:
    plan = {"nic": nic, "mac": topo.macs[nic], "addresses": addresses}
    topo.run("host", [sys.executable, "-c", ANNOUNCE_SCRIPT, str(ROOT), json.dumps(plan)])


@pytest.mark.parametrize(
    ("data", "flags"),
    [("192.0.2.100", []), ("2001:db8::100", ["nodad"])],
    ids=["garp", "unsolicited-na"],
)
def test_announcement_moves_the_peers_neighbour_entry(
    topology: Topology, data: str, flags: list[str]
) -> None:
    host_up(topology)
    plen = "24" if ":" not in data else "64"
    topology.ip("host", "addr", "add", f"{data}/{plen}", "dev", "nic0", *flags)
    report = topology.ping("peer", [data], count=1)
    assert report[data].received == 1
    assert topology.neighbour_mac("peer", data) == topology.macs["nic0"]

    # The move, as the daemon does it: delete, then add on the other NIC.
    topology.ip("host", "addr", "del", f"{data}/{plen}", "dev", "nic0")
    topology.ip("host", "addr", "add", f"{data}/{plen}", "dev", "nic1", *flags)
    assert topology.neighbour_mac("peer", data) == topology.macs["nic0"]  # nobody told the peer yet

    announce(topology, "nic1", [data])
    assert topology.neighbour_mac("peer", data) == topology.macs["nic1"]
