"""Solaris 11.4's per-group ``allow-xprobe`` on the real kernel: the IPMP interface decides, not SMF.

The host has bge0 and bge1 in the group of the IPMP interface ``ipmp0``,
neither with an address of its own (``group ipmp0 up``); ``ipmp0`` has one
data address, 192.0.2.100, put in the state store unbound as ``ipadm
create-ipmp``/``create-addr`` leave it: in.mpathd binds it to one member
(that member probes the router with ICMP from it), the other is an
alternate (it sends our link-layer frames to the first).  The property is
set with the real ``ipadm set-ifprop -t -p allow-xprobe=... -m ip ipmp0``.

* ``config/transitive-probing`` off, ``allow-xprobe=on``: probes flow, and a
  silent alternate (its switch port gone, ``fail_silent``: the carrier stays
  up) is FAILED by probes alone.
* switch on, ``allow-xprobe=off``: nothing is probed; ``reset-ifprop`` (back
  to ``inherit``) lets the switch decide again, and the running daemon,
  which rescans the store, starts probing.

FDT is 700 ms; the bounds are generous (a shared VM).  Addresses are of the
documentation range: data 192.0.2.100, router 192.0.2.1.
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from mpathd_harness import BIN, MpathdLab, figures, wait_for

from ipmp.host.state import Store
from ipmp.lab.topology import Topology
from ipmp.model import Family, Interface, Logical
from ipmp.mpathd import control

DATA = "192.0.2.100"
NICS = ("bge0", "bge1")
FDT_MS = 700
DETECT_WITHIN = 15.0
#: How long a daemon that must not probe is watched (many FDTs, many scans).
QUIET_FOR = 6.0


def _lab(make_topology: Any, tmp_path: Path) -> MpathdLab:
    topo: Topology = make_topology(nics=NICS)
    lab = MpathdLab(topo, tmp_path, "link-only", fdt_ms=FDT_MS, failback=True)
    etc = lab.root / "etc"
    for old in etc.glob("hostname.*"):
        old.unlink()
    for nic in NICS:
        (etc / f"hostname.{nic}").write_text("group ipmp0 up\n")
    lab.boot()
    ipmp0 = Interface("ipmp0", plumbed=frozenset({Family.INET}), link_up=True, group="ipmp0", ipmp=True,
                      logicals=(Logical(Family.INET, 0, IPv4Interface(f"{DATA}/24"), up=True,
                                        broadcast=IPv4Address("192.0.2.255"), addrobj="ipmp0/v4"),))
    store = Store(lab.root)
    with store.locked():
        store.save(store.load().with_interfaces((ipmp0,)))
    return lab


def _run(lab: MpathdLab, *argv: str) -> str:
    proc = lab.topo.run("host", [*lab.env, str(BIN / argv[0]), *argv[1:]], check=False)
    assert proc.returncode == 0, f"{argv}: {proc.returncode} {proc.stdout} {proc.stderr}"
    return proc.stdout


def _smf(lab: MpathdLab, on: bool) -> None:
    value = "true" if on else "false"
    _run(lab, "svccfg", "-s", "svc:/network/ipmp", "setprop", f"config/transitive-probing={value}")
    _run(lab, "svcadm", "refresh", "svc:/network/ipmp:default")
    assert _run(lab, "svcprop", "-p", "config/transitive-probing", "ipmp") == f"{value}\n"


def _xprobe(lab: MpathdLab, value: str | None) -> None:
    if value is None:
        _run(lab, "ipadm", "reset-ifprop", "-t", "-p", "allow-xprobe", "-m", "ip", "ipmp0")
        value = "inherit"
    else:
        _run(lab, "ipadm", "set-ifprop", "-t", "-p", f"allow-xprobe={value}", "-m", "ip", "ipmp0")
    assert _run(lab, "ipadm", "show-ifprop", "-c", "-o", "current", "-p", "allow-xprobe", "ipmp0") == \
        f"{value}\n"


def _interfaces(lab: MpathdLab) -> dict[str, Any]:
    try:
        return dict(lab.query()["interfaces"])
    except control.IpcError:
        return {}


def _roles(lab: MpathdLab) -> tuple[str, str] | None:
    """(active, alternate) once the data address is bound and both probe transitively, else None."""
    itfs = _interfaces(lab)
    if set(itfs) != set(NICS):
        return None
    for active, alternate in (NICS, NICS[::-1]):
        a = itfs[active]["probes"].get("inet")
        b = itfs[alternate]["probes"].get("inet")
        if (a is not None and a["test_address"].startswith(DATA) and a["targets"]
                and b is not None and b["mode"] == "transitive" and b["targets"] == [active]
                and itfs[active]["probe"] == "ok" and itfs[alternate]["probe"] == "ok"):
            return active, alternate
    return None


def test_on_probes_with_the_switch_off_and_fails_a_silent_alternate(make_topology: Any,
                                                                    tmp_path: Path) -> None:
    lab = _lab(make_topology, tmp_path)
    try:
        _smf(lab, False)
        _xprobe(lab, "on")
        daemon = lab.start(settle=False)
        roles: list[tuple[str, str]] = []

        def running() -> bool:
            found = _roles(lab)
            roles[:] = [found] if found else []
            return found is not None

        wait_for(running, 30.0, "transitive probing to run on ipmp0's members",
                 context=lambda: f"{_interfaces(lab)}\n{daemon.text()}")
        active, alternate = roles[0]
        t0 = time.monotonic()
        lab.topo.fail_silent(alternate)
        line = daemon.wait_line(f"IP interface failure detected on {alternate} of group ipmp0",
                                timeout=DETECT_WITHIN)
        figures("allow-xprobe=on alternate", detect_s=line.t - t0)
        assert lab.topo.carrier(alternate), "the carrier must stay up: probes found the failure"
        assert not daemon.matching("The link has gone down")
        itfs = _interfaces(lab)
        assert itfs[alternate]["state"] == "failed" and itfs[alternate]["probe"] == "failed", itfs
        assert itfs[active]["state"] == "ok", itfs
    finally:
        lab.close()


def test_off_silences_the_switch_and_reset_gives_it_back(make_topology: Any, tmp_path: Path) -> None:
    lab = _lab(make_topology, tmp_path)
    try:
        _smf(lab, True)
        _xprobe(lab, "off")
        daemon = lab.start(settle=False)
        wait_for(lambda: set(_interfaces(lab)) == set(NICS), 20.0, "both members tracked",
                 context=daemon.text)
        end = time.monotonic() + QUIET_FOR
        while time.monotonic() < end:
            itfs = _interfaces(lab)
            assert all(info["probes"] == {} and info["probe"] == "disabled" for info in itfs.values()), itfs
            time.sleep(0.5)
        # Back to inherit: the SMF switch (on) decides, the running daemon follows the store.
        _xprobe(lab, None)
        wait_for(lambda: _roles(lab) is not None, 30.0, "transitive probing after reset-ifprop",
                 context=lambda: f"{_interfaces(lab)}\n{daemon.text()}")
    finally:
        lab.close()


_IPADM_CONF = (
    "_ifname=bge0;_family=2;_ifclass=0;\n"
    "_ifname=bge1;_family=2;_ifclass=0;\n"
    "_ifname=ipmp0;_family=2;_ifclass=1;\n"
    "_ifname=ipmp0;_underif=bge0;\n"
    "_ifname=ipmp0;_underif=bge1;\n"
    f"_ifname=ipmp0;_aobjname=ipmp0/v4;_ipv4addr={DATA},;\n"
    "_ifname=ipmp0;_aobjname=ipmp0/v4;prefixlen=24;\n"
    "_ifname=ipmp0;_protocol=ip;allow-xprobe=on;\n"
)


def test_the_persistent_property_is_applied_at_boot(make_topology: Any, tmp_path: Path) -> None:
    """``allow-xprobe=on`` in /etc/ipadm/ipadm.conf: ipmp-boot sets it, the daemon probes, SMF off."""
    lab = MpathdLab(make_topology(nics=NICS), tmp_path, "link-only", fdt_ms=FDT_MS, failback=True)
    try:
        etc = lab.root / "etc"
        for old in etc.glob("hostname.*"):
            old.unlink()
        (etc / "ipadm").mkdir(exist_ok=True)
        (etc / "ipadm" / "ipadm.conf").write_text(_IPADM_CONF)
        lab.boot()
        assert _run(lab, "ipadm", "show-ifprop", "-c", "-o", "current,persistent", "-p", "allow-xprobe",
                    "ipmp0") == "on:on\n"
        _smf(lab, False)
        daemon = lab.start(settle=False)
        wait_for(lambda: _roles(lab) is not None, 30.0, "transitive probing from the booted property",
                 context=lambda: f"{_interfaces(lab)}\n{daemon.text()}")
    finally:
        lab.close()
