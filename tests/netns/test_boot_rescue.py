"""A NIC missing at boot does not take its data address with it (§6.5), on the real kernel.

The active-standby example: qfe0 (data address myhost + test address) and
the standby qfe1.  The lab hides qfe0 from the host before the boot (it is
renamed, as if its driver had not attached yet), boots, and checks:

* ``ipmp-boot`` reports the plumb failure (exit 1) and moves myhost to qfe1,
  with network/physical's console line; qfe1 loses STANDBY; qfe0's test
  address is not moved (``-failover``);
* the peer reaches myhost through qfe1, and the address's rule points into
  qfe1's table;
* booting again changes nothing in the kernel;
* when qfe0 appears and is booted, it does not take myhost while qfe1 holds
  it (one address, one NIC), and in.mpathd gives it back to qfe0.
"""

from __future__ import annotations

import time
from pathlib import Path

from labhost import BIN, Host, MakeTopology, kernel_events_during
from mpathd_harness import MpathdLab, parse_ifconfig, start_ping, wait_for

from ipmp.lab.topology import Topology

MYHOST = "192.0.2.100"
TEST_QFE0, TEST_QFE1 = "192.0.2.10", "192.0.2.11"
HIDDEN = "qfe0hidden"


def holders(topo: Topology, address: str) -> list[str]:
    return [str(link["ifname"]) for link in topo.ip_json("host", "-4", "addr", "show")
            for info in link.get("addr_info", ()) if info.get("local") == address]


def rename(topo: Topology, old: str, new: str) -> None:
    topo.run("host", ["ip", "link", "set", "dev", old, "down"])
    topo.run("host", ["ip", "link", "set", "dev", old, "name", new])
    topo.run("host", ["ip", "link", "set", "dev", new, "up"])


def test_a_nic_missing_at_boot_leaves_its_data_address_on_the_standby(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    topo = make_topology(nics=("qfe0", "qfe1"))
    lab = MpathdLab(topo, tmp_path, "active-standby")
    host = Host(topo, lab.root)
    rename(topo, "qfe0", HIDDEN)
    try:
        boot = topo.run("host", [*lab.env, str(BIN / "ipmp-boot")], check=False)
        assert boot.returncode == 1, boot
        assert boot.stdout.splitlines() == [
            "configuring IPv4 interfaces: qfe1.",
            "moving addresses from failed IPv4 interfaces: qfe0 (moved to qfe1).",
        ]
        assert "Failed to plumb IPv4 interface(s): qfe0" in boot.stderr
        assert holders(topo, MYHOST) == ["qfe1"]
        assert holders(topo, TEST_QFE1) == ["qfe1"]
        assert holders(topo, TEST_QFE0) == []

        lifs = parse_ifconfig(host.ifconfig_ok("-a"))
        assert "STANDBY" not in lifs["qfe1"].flags  # the script's "-standby"
        [data] = [lif for name, lif in lifs.items() if lif.address == MYHOST]
        assert data.name.startswith("qfe1:") and "DEPRECATED" not in data.flags

        # Its rule leads into qfe1's table, and the peer gets answers.
        rules = host.rules()
        assert any(src == MYHOST and table == host.table("qfe1") for _, src, table in rules), rules
        with start_ping(topo, MYHOST) as job:
            time.sleep(0.5)
            report = job.stop()
        assert report[MYHOST].received > 0

        # Booting again: the same lines, and not one kernel change.
        again: list[object] = []
        events = kernel_events_during(host, lambda: again.append(
            topo.run("host", [*lab.env, str(BIN / "ipmp-boot")], check=False)))
        assert events == [], events
        assert holders(topo, MYHOST) == ["qfe1"]
        assert "STANDBY" not in parse_ifconfig(host.ifconfig_ok("-a"))["qfe1"].flags

        # qfe0 appears.  Its boot gives it the test address and leaves myhost
        # where it is: it is never on two NICs.
        rename(topo, HIDDEN, "qfe0")
        boot = topo.run("host", [*lab.env, str(BIN / "ipmp-boot")], check=False)
        assert boot.returncode == 0, boot.stderr
        assert holders(topo, MYHOST) == ["qfe1"]
        assert holders(topo, TEST_QFE0) == ["qfe0"]

        # in.mpathd gives it back to its home (§2.7 invariant 3).
        d = lab.start(settle=False)
        wait_for(lambda: holders(topo, MYHOST) == ["qfe0"] or None, 20.0, "myhost to go home to qfe0",
                 context=d.text)
        assert holders(topo, TEST_QFE1) == ["qfe1"]
    finally:
        lab.close()
        if not topo.run("host", ["ip", "link", "show", "dev", "qfe0"], check=False).returncode == 0:
            rename(topo, HIDDEN, "qfe0")
