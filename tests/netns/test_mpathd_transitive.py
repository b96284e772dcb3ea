"""Transitive probing on the real kernel: no test address anywhere, carrier up, failures found by probes.

The host has bge0 and bge1 in group ``prod`` on one bridge with the
router; only bge0 holds a data address (192.0.2.100) and neither has a
test address.  With ``config/transitive-probing`` off the group is
link-only: nothing is probed.  Switched on the Solaris 11 way (``svccfg
setprop`` + ``svcadm refresh``, which tells the running daemon), bge0
probes the router with ICMP from its data address and bge1 sends our
link-layer frames to bge0, which answers them.

Failures are made on the switch side with ``fail_silent`` (the port leaves
the bridge but stays up): the host NIC keeps its carrier, so only probes
can tell.  FDT is 700 ms; the bounds below are generous (a shared VM).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mpathd_harness import BIN, MpathdLab, _with_repo_path, figures, wait_for

from ipmp.lab.addressing import PEER_IFNAME
from ipmp.lab.topology import Topology
from ipmp.mpathd import control

DATA = "192.0.2.100"
NICS = ("bge0", "bge1")
FDT_MS = 700
#: Detection is due within the FDT; the machine is shared and slow: generous.
DETECT_WITHIN = 15.0


def _lab(make_topology: Any, tmp_path: Path) -> MpathdLab:
    topo: Topology = make_topology(nics=NICS)
    lab = MpathdLab(topo, tmp_path, "link-only", fdt_ms=FDT_MS, failback=True)
    # A data address on bge0 only; bge1 is a member without addresses.
    (lab.root / "etc" / "hostname.bge1").write_text("group prod up\n")
    lab.boot()
    return lab


def _svc(lab: MpathdLab, *argv: str) -> subprocess.CompletedProcess[str]:
    proc = lab.topo.run("host", [*lab.env, str(BIN / argv[0]), *argv[1:]], check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stderr}"
    return proc


def _switch_on(lab: MpathdLab) -> None:
    _svc(lab, "svccfg", "-s", "svc:/network/ipmp", "setprop", "config/transitive-probing", "=", "boolean:",
         "true")
    _svc(lab, "svcadm", "refresh", "svc:/network/ipmp:default")
    assert _svc(lab, "svcprop", "-p", "config/transitive-probing", "ipmp").stdout == "true\n"


def _probes(lab: MpathdLab) -> dict[str, Any]:
    return {name: info for name, info in lab.query()["interfaces"].items()}


def _transitive_running(lab: MpathdLab) -> bool:
    try:
        itfs = _probes(lab)
    except control.IpcError:
        return False  # re-executing after SIGHUP: the socket is back in a moment
    if set(itfs) != set(NICS):
        return False
    b0 = itfs["bge0"]["probes"].get("inet")
    b1 = itfs["bge1"]["probes"].get("inet")
    return (b0 is not None and b0["test_address"].startswith(DATA) and bool(b0["targets"])
            and b1 is not None and b1["mode"] == "transitive" and b1["targets"] == ["bge0"]
            and itfs["bge0"]["probe"] == "ok" and itfs["bge1"]["probe"] == "ok")


def test_switch_off_is_link_only_and_refresh_turns_probing_on(make_topology: Any, tmp_path: Path) -> None:
    lab = _lab(make_topology, tmp_path)
    try:
        daemon = lab.start()
        itfs = _probes(lab)
        assert all(info["probes"] == {} and info["probe"] == "disabled" for info in itfs.values()), itfs
        since = daemon.lines[-1].t if daemon.lines else 0.0
        _switch_on(lab)
        # svcadm refresh sends SIGHUP: the daemon re-executes itself and probes now.
        daemon.wait_line("SIGHUP: restart and reread config file", since=since, timeout=10.0)
        wait_for(lambda: _transitive_running(lab), 30.0, "transitive probing to run",
                 context=lambda: f"{_probes(lab)}\n{daemon.text()}")
    finally:
        lab.close()


def test_silent_alternate_is_failed_with_carrier_up(make_topology: Any, tmp_path: Path) -> None:
    lab = _lab(make_topology, tmp_path)
    try:
        _switch_on(lab)  # before the start: read at start-up
        daemon = lab.start()
        wait_for(lambda: _transitive_running(lab), 30.0, "transitive probing to run",
                 context=lambda: f"{_probes(lab)}\n{daemon.text()}")
        t0 = time.monotonic()
        lab.topo.fail_silent("bge1")
        line = daemon.wait_line("NIC failure detected on bge1 of group prod", timeout=DETECT_WITHIN)
        figures("transitive alternate", detect_s=line.t - t0)
        assert lab.topo.carrier("bge1"), "the carrier must stay up: probes found the failure"
        assert not daemon.matching("The link has gone down")
        itfs = _probes(lab)
        assert itfs["bge1"]["state"] == "failed" and itfs["bge1"]["probe"] == "failed"
        assert itfs["bge0"]["state"] == "ok"
        assert lab.layout().nic_of(DATA) == "bge0"
        lab.topo.repair_silent("bge1")
        daemon.wait_line("NIC repair detected on bge1 of group prod", since=line.t, timeout=DETECT_WITHIN * 2)
    finally:
        lab.close()


def test_silent_active_fails_over_to_the_alternate(make_topology: Any, tmp_path: Path) -> None:
    lab = _lab(make_topology, tmp_path)
    try:
        _switch_on(lab)
        daemon = lab.start()
        wait_for(lambda: _transitive_running(lab), 30.0, "transitive probing to run",
                 context=lambda: f"{_probes(lab)}\n{daemon.text()}")
        t0 = time.monotonic()
        lab.topo.fail_silent("bge0")
        line = daemon.wait_line("NIC failure detected on bge0 of group prod", timeout=DETECT_WITHIN)
        moved = daemon.wait_line("Successfully failed over from NIC bge0 to NIC bge1", timeout=DETECT_WITHIN)
        figures("transitive active", detect_s=line.t - t0, failover_s=moved.t - t0)
        assert lab.topo.carrier("bge0")
        lab.wait_layout(lambda lay: lay.nic_of(DATA) == "bge1", "the data address on bge1")
        assert not daemon.matching("NIC failure detected on bge1")
        assert not daemon.matching("All Interfaces in group prod have failed")
    finally:
        lab.close()


#: Run in the peer's namespace: a station on the link that is no member of the group.
_STRANGER = r"""
import select, socket, struct, sys, time
from ipmp.mpathd.transitive import ETHERTYPE, Frame, FrameKind, encode_frame
dst = bytes.fromhex(sys.argv[1].replace(":", ""))
target = int(sys.argv[2])
ifname = sys.argv[3]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
sock.bind((ifname, ETHERTYPE))
own = sock.getsockname()[4][:6]
got = 0
for seq in range(20):
    # A request naming the target NIC, from a MAC outside the group, as a scanner would send it.
    sock.send(encode_frame(Frame(dst, own, FrameKind.REQUEST, seq, 9999, target, 0, b"01234567")))
    end = time.monotonic() + 0.1
    while (left := end - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            data, addr = sock.recvfrom(2048)
            if addr[2] == 0:  # PACKET_HOST: to the stranger's MAC
                got += 1
print(got)
"""


def test_frames_from_outside_the_group_are_never_answered(make_topology: Any, tmp_path: Path) -> None:
    lab = _lab(make_topology, tmp_path)
    try:
        _switch_on(lab)
        daemon = lab.start()
        wait_for(lambda: _transitive_running(lab), 30.0, "transitive probing to run",
                 context=lambda: f"{_probes(lab)}\n{daemon.text()}")
        bge0 = lab.topo.ip_json("host", "link", "show", "dev", "bge0")[0]
        proc = lab.topo.run("peer", [sys.executable, "-c", _STRANGER, bge0["address"], str(bge0["ifindex"]),
                                     PEER_IFNAME], check=False, env=_with_repo_path())
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "0", f"bge0 answered a stranger: {proc.stdout}"
        # The members still answer each other.
        assert _transitive_running(lab), _probes(lab)
    finally:
        lab.close()
