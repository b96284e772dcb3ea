"""``netlink.CarrierReader`` on a real kernel: kept /sys descriptors read like a fresh open.

in.mpathd polls the carrier of physical NICs every 50 ms.  The reader keeps
each NIC's ``/sys/class/net/IF/carrier`` open and re-reads it with pread(2);
these tests hold it to an open, read and close of that file each time
(``carrier`` in the script) through carrier up, admin down, the NIC deleted,
and a new NIC of the same name.  Runs in the lab's host namespace
(sysfs shows the devices of the namespace it is mounted in).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ipmp.lab.topology import Topology

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from ipmp.kernel.watch import CarrierReader

def carrier(ifname):
    # The file opened afresh: None when gone, False when admin down (EINVAL).
    try:
        with open(f"/sys/class/net/{ifname}/carrier", "rb") as fh:
            return fh.read(1) == b"1"
    except FileNotFoundError:
        return None
    except OSError:
        return False

def ip(*args):
    subprocess.run(["ip", *args], check=True)

def settle(want):
    deadline = time.monotonic() + 10
    while carrier("nic0") is not want and time.monotonic() < deadline:
        time.sleep(0.02)

reader = CarrierReader()
seen = []
def look(what):
    seen.append([what, reader("nic0"), carrier("nic0")])

ip("link", "set", "dev", "nic0", "up"); settle(True); look("up")
fds = dict(reader._fds)
look("again")
same_fd = reader._fds == fds
ip("link", "set", "dev", "nic0", "down"); look("admin down")
ip("link", "set", "dev", "nic0", "up"); settle(True); look("up again")
ip("link", "del", "dev", "nic0"); look("deleted")
ip("link", "add", "nic0", "type", "veth", "peer", "name", "nic0peer")
ip("link", "set", "dev", "nic0peer", "up"); ip("link", "set", "dev", "nic0", "up")
settle(True); look("new nic0")
reopened = reader._fds.get("nic0") is not None
reader.close()
print(json.dumps({"seen": seen, "same_fd": same_fd, "reopened": reopened, "left": len(reader._fds)}))
"""


def test_the_kept_carrier_descriptors_read_as_carrier_does(topology: Topology) -> None:
    proc = topology.run("host", [sys.executable, "-W", "error", "-c", SCRIPT, str(ROOT)])
    doc = json.loads(proc.stdout)
    assert [(what, mine) for what, mine, _ in doc["seen"]] == [
        ("up", True), ("again", True), ("admin down", False), ("up again", True), ("deleted", None),
        ("new nic0", True)]
    assert all(mine == theirs for _, mine, theirs in doc["seen"]), doc
    assert doc["same_fd"] and doc["reopened"] and doc["left"] == 0
