"""``ProbeSocket.receive`` on a real kernel: replies that queued up are all read at once.

The daemon reads a probe socket when the event loop says it is readable and
takes everything waiting, so that a reply that has arrived is seen before
its probe's wait is judged (a busy daemon may find several queued).  After
each datagram it asks the kernel whether another one waits (SIOCINQ)
instead of reading until recvmsg(2) fails with EAGAIN.  These tests queue
replies on raw ICMP and ICMPv6 sockets, then read once.

Documentation prefixes only, in the fixture's namespaces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ipmp.lab.topology import Topology
from tests.netns.test_mpathd_io import host_up, link_local

ROOT = Path(__file__).resolve().parents[2]

#: Plan: {"nic", "source", "target", "count"}: send ``count`` probes, wait
#: until the replies are in the socket (select, then a pause), read once,
#: read again.  Prints the replies of each read and whether SIOCINQ worked.
SCRIPT = r"""
import json, select, sys, time
sys.path.insert(0, sys.argv[1])
from ipaddress import ip_address
from ipmp.mpathd.icmp import EchoReply, ProbeSocket, decode_echo_reply, encode_echo, new_probe_key
from ipmp.mpathd.icmp import PROBE_UNICAST

plan = json.loads(sys.argv[2])
sock = ProbeSocket(plan["nic"], ip_address(plan["source"]))
key = new_probe_key()
target = ip_address(plan["target"])
for seq in range(plan["count"]):
    sock.send(target, encode_echo(sock.family, key, seq, 1000 + seq, PROBE_UNICAST))
select.select([sock], [], [], 5.0)
time.sleep(0.5)  # the rest of the replies
reads = []
for _ in range(2):
    got = []
    for data, source, arrived in sock.receive():
        reply = decode_echo_reply(sock.family, data, source, key=key)
        got.append({"seq": reply.seq if isinstance(reply, EchoReply) else None, "stamped": arrived > 0})
    reads.append(got)
print(json.dumps({"reads": reads, "siocinq": sock._inq is not None}))
"""


def run(topo: Topology, plan: dict[str, Any]) -> dict[str, Any]:
    proc = topo.run("host", [sys.executable, "-W", "error", "-c", SCRIPT, str(ROOT), json.dumps(plan)])
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_ipv4_replies_queued_on_a_raw_socket_are_read_at_once(topology: Topology) -> None:
    host_up(topology)
    topology.ip("host", "addr", "add", "192.0.2.10/24", "dev", "nic0")
    doc = run(topology, {"nic": "nic0", "source": "192.0.2.10", "target": topology.router_ip(4), "count": 6})
    first, second = doc["reads"]
    assert [r["seq"] for r in first] == list(range(6)), doc
    assert all(r["stamped"] for r in first)
    assert second == []
    assert doc["siocinq"]


def test_ipv6_replies_queued_on_a_raw_socket_are_read_at_once(topology: Topology) -> None:
    host_up(topology)
    source = link_local(topology, "host", "nic0")
    router = link_local(topology, "router", topology.router_ifname)
    doc = run(topology, {"nic": "nic0", "source": source, "target": router, "count": 5})
    first, second = doc["reads"]
    assert [r["seq"] for r in first] == list(range(5)), doc
    assert second == []
    assert doc["siocinq"]
