"""A NIC that ``/etc/ipmp/ifmap`` names but Linux does not have (yet) is a NIC missing at boot (§6.5).

Found on a real boot (tests/vm/test_boot_order.py, issue 14): with
``hostname.hme0``/``hostname.hme1`` and a map naming ``ens8``/``ens9``, a boot
without ens9 (its driver late, or the NIC removed) refused the whole map
("ifmap: ens9: no such Linux interface ... nothing was configured") and left
*every* NIC unconfigured: no data address at all, where Solaris'
network/physical moves the missing NIC's data addresses to another member of
its group and configures the rest.

Here the active-active example under Solaris names, on NICs named as on a
Linux server; the second NIC is hidden before the boot (renamed, as if its
driver had not attached) and the map still names it.  The boot must say
which map line names a NIC Linux does not have, configure hme0, move hme1's
data address to it (network/physical's console line), report hme1's plumb
failure, and the peer must reach both data addresses.  A map with another
error is still refused whole (tests/netns/test_ifmap.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from labhost import Host, MakeTopology, copy_example
from mpathd_harness import start_ping

from ipmp.lab.topology import Topology

NICS = ("enp1s0f0", "enp1s0f1")
IFMAP = "# Solaris name  Linux NIC\nhme0 enp1s0f0\nhme1 enp1s0f1\n"
D0, D1, T0, T1 = "192.0.2.100", "192.0.2.101", "192.0.2.10", "192.0.2.11"
HIDDEN = "enp1s0f1late"


def solarize(root: Path) -> Path:
    for old, new in (("qfe0", "hme0"), ("qfe1", "hme1")):
        (root / "etc" / f"hostname.{old}").rename(root / "etc" / f"hostname.{new}")
    (root / "etc" / "ipmp").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "ipmp" / "ifmap").write_text(IFMAP)
    return root


def rename(topo: Topology, old: str, new: str) -> None:
    topo.run("host", ["ip", "link", "set", "dev", old, "down"])
    topo.run("host", ["ip", "link", "set", "dev", old, "name", new])
    topo.run("host", ["ip", "link", "set", "dev", new, "up"])


def holders(host: Host, address: str) -> list[str]:
    return [str(link["ifname"]) for link in host.ip_json("-4", "addr", "show")
            for info in link.get("addr_info", ()) if info.get("local") == address]


def test_a_mapped_nic_missing_at_boot_is_rescued_not_a_bad_map(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    topo = make_topology(nics=NICS)
    host = Host(topo, solarize(copy_example("active-active", tmp_path)))
    where = host.root / "etc" / "ipmp" / "ifmap"
    rename(topo, "enp1s0f1", HIDDEN)
    try:
        boot = host.boot()
        assert boot.returncode == 1, boot  # hme1 failed to plumb, as ipmp-boot(8) says
        assert boot.stdout.splitlines() == [
            "configuring IPv4 interfaces: hme0.",
            "moving addresses from failed IPv4 interfaces: hme1 (moved to hme0).",
        ], boot
        lines = boot.stderr.splitlines()
        assert f"{where}:3:6: ifmap: enp1s0f1: no such Linux interface" in lines, boot.stderr
        assert "Failed to plumb IPv4 interface(s): hme1" in lines, boot.stderr
        assert not any("nothing was configured" in line for line in lines), boot.stderr
        assert holders(host, D0) == ["enp1s0f0"]
        assert holders(host, D1) == ["enp1s0f0"]  # rescued (§6.5)
        assert holders(host, T0) == ["enp1s0f0"]
        assert holders(host, T1) == []  # a test address (-failover) is not moved
        with start_ping(topo, D0, D1) as job:
            time.sleep(0.5)
            report = job.stop()
        assert report[D0].received > 0 and report[D1].received > 0, report
    finally:
        if topo.run("host", ["ip", "link", "show", "dev", HIDDEN], check=False).returncode == 0:
            rename(topo, HIDDEN, "enp1s0f1")
