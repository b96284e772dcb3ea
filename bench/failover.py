"""Link failover latency: carrier loss -> data address on the survivor -> peer's neighbour entry.

Root: ``examples/hostname.files/active-active`` (qfe0/qfe1 in group prod,
data 192.0.2.100 on qfe0 and .101 on qfe1).  Trials alternate between the two
NICs: trial *k* cuts the carrier of qfe0 (even *k*) or qfe1 (odd *k*), then
restores it and waits for the failback before the next trial.

Stamps, all CLOCK_MONOTONIC:

* ``t0`` -- the switch agent, right before its RTM_NEWLINK (port admin-down)
  goes to the kernel;
* ``kernel`` -- the host agent receives RTM_NEWLINK without IFF_LOWER_UP for
  the NIC (what any listener could know at the earliest);
* ``detected`` -- in.mpathd's "NIC failure detected" line read from its pipe;
* ``address`` -- the host agent receives RTM_NEWADDR of the data address on
  the survivor;
* ``peer`` -- the peer agent receives RTM_NEWNEIGH for the data address with
  the survivor's MAC (the gratuitous ARP arrived).

The peer learns both data addresses with one ping before the first trial
(a gratuitous ARP updates an entry, it never creates one).
"""

from __future__ import annotations

import time

from bench.common import Dist, Lab, Row, addr_on, lab, mpathd_conf, ms, neigh_is, say

NAME = "failover"
FDT_MS = 500  # only paces the probe-based repair between trials; link detection ignores it
NICS = ("qfe0", "qfe1")
DATA = {"qfe0": "192.0.2.100", "qfe1": "192.0.2.101"}


def _trial(the_lab: Lab, k: int, res: dict[str, list[float]]) -> None:
    topo = the_lab.topo
    daemon = the_lab.daemons[0]
    sw, host, peer = the_lab.agents
    nic = NICS[k % 2]
    survivor = NICS[1 - k % 2]
    data = DATA[nic]
    port = topo.port(nic)
    smac = topo.macs[survivor]
    mh, mp, md = host.mark(), peer.mark(), daemon.mark()
    t0 = float(sw.command(f"down {port}")["t0"])
    kernel = host.wait(lambda e: e["ev"] == "link" and e["ifname"] == nic and not e["running"], mh, 5.0)
    address = host.wait(addr_on(survivor, data), mh, 5.0)
    neigh = peer.wait(neigh_is(data, smac), mp, 5.0)
    detected, _ = daemon.wait_line(rf"NIC failure detected on {nic}\b", md, 5.0)
    res["kernel"].append(ms(float(kernel["t"]) - t0))
    res["detected"].append(ms(detected - t0))
    res["address"].append(ms(float(address["t"]) - t0))
    res["peer"].append(ms(float(neigh["t"]) - t0))
    # Repair, and wait for the failback (address home, peer told) before the next trial.
    time.sleep(0.02)
    mh, mp, md = host.mark(), peer.mark(), daemon.mark()
    t1 = float(sw.command(f"up {port}")["t0"])
    back = host.wait(addr_on(nic, data), mh, 30.0)
    peer.wait(neigh_is(data, topo.macs[nic]), mp, 5.0)
    daemon.wait_line(rf"Successfully failed back to NIC {nic}\b", md, 5.0)
    res["failback"].append(ms(float(back["t"]) - t1))
    time.sleep(0.08)  # let the failback's announcement burst (3 x 20 ms) finish


def run(quick: bool) -> list[Row]:
    trials = 20 if quick else 100
    res: dict[str, list[float]] = {k: [] for k in ("kernel", "detected", "address", "peer", "failback")}
    with lab(NICS, {"etc/default/mpathd": mpathd_conf(FDT_MS)}, example="active-active") as the_lab:
        the_lab.boot()
        the_lab.start_daemon()
        the_lab.agent("switch")
        the_lab.agent("host", "link,addr")
        the_lab.agent("peer", "neigh")
        the_lab.topo.ping("peer", list(DATA.values()), count=2, interval=0.05)
        say(f"{NAME}: {trials} carrier-loss trials, alternating qfe0/qfe1")
        t_start = time.monotonic()
        for k in range(trials):
            _trial(the_lab, k, res)
        elapsed = time.monotonic() - t_start
    d = {k: Dist.of(v) for k, v in res.items()}
    for key, dist in d.items():
        say(f"{NAME}: {key:9s} {dist.fmt()}")
    addr, peer = d["address"], d["peer"]
    met = addr.p50 <= 5 and addr.p99 <= 15 and peer.p50 <= 5 and peer.p99 <= 15
    notes = [
        f"{trials} trials in {elapsed:.0f} s (alternating qfe0/qfe1, FDT {FDT_MS} ms for the repairs)",
        f"carrier cut -> host kernel link event: {d['kernel'].fmt()}",
        f"carrier cut -> in.mpathd 'NIC failure detected' line: {d['detected'].fmt()}",
        f"carrier cut -> data address on the survivor (RTM_NEWADDR): {addr.fmt()}",
        f"carrier cut -> peer neighbour entry has the survivor's MAC: {peer.fmt()}",
        f"(not a target) carrier restore -> address back home: {d['failback'].fmt()}",
        f"side by side: the peer is updated {peer.p50 / d['kernel'].p50:.0f}x later than the kernel's own "
        f"carrier event (p50), and {peer.p50 - d['detected'].p50:.1f} ms after in.mpathd logged the failure",
    ]
    measured = (f"address: p50 {addr.p50:.2f} / p99 {addr.p99:.2f} ms; "
                f"peer entry: p50 {peer.p50:.2f} / p99 {peer.p99:.2f} ms (max {max(addr.max, peer.max):.2f})")
    return [Row("link failover: carrier loss to data address on survivor and peer neighbour updated "
                f"({trials} trials)", "p50 <= 5 ms, p99 <= 15 ms", measured, met, notes)]
