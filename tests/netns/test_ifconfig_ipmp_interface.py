"""``ifconfig`` and ``ipmpstat`` on the real kernel with a Solaris 11 IPMP interface in the state store.

The lab host boots net0 (no address, group ipmp0) and net1 (a test address,
group ipmp0) from hostname files; then the IPMP interface ``ipmp0`` is made
as ``ipadm create-ipmp`` + ``create-addr`` leave it: a record in the store
and two data addresses held by the members in the kernel (``ipmp0`` on net0,
``ipmp0:1`` on net1), applied through the product's apply path under the
store lock.  ``ifconfig -a`` must show the IPMP interface's own blocks
(Oracle "How IPMP Works", https://docs.oracle.com/cd/E37838_01/html/E60991/gfbby.html ;
flags from ifconfig(8) of Solaris 11.4 and illumos ``net/if.h``), the members
without the data addresses, and ``ifconfig ipmp0 <word>`` must be refused
with nothing changed.

Addresses: 192.0.2.0/24 only, inside the lab's namespaces.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from mpathd_harness import BIN, MpathdLab, wait_for

from ipmp.lab.topology import Topology

MakeTopology = Callable[..., Topology]

#: Run in the host namespace: the IPMP interface and its bound data addresses.
MAKE_IPMP0 = r"""
import asyncio, sys
from ipaddress import IPv4Interface
from pathlib import Path
from ipmp.admin.session import read_host
from ipmp.apply import apply_and_record
from ipmp.host.state import Store
from ipmp.kernel.execute import Kernel
from ipmp.linux.view import Scope
from ipmp.model import Family, Interface, Logical

INET = Family.INET


async def main(root: Path) -> None:
    async with Kernel() as kernel:
        with Store(root).locked(exclusive=True):
            host = await read_host(kernel, root)
            held = []
            for name, k, ip in (("net0", 0, "192.0.2.10/24"), ("net1", 1, "192.0.2.11/24")):
                nic = host.config.get(name)
                aobj = "ipmp0/v4" + ("a" if k else "")
                held.append(nic.with_logical(Logical(INET, nic.free_unit(INET), IPv4Interface(ip), up=True,
                                                     ipmp_unit=k, addrobj=aobj)))
            record = Interface("ipmp0", plumbed=frozenset({INET}), group="ipmp0", ipmp=True)
            config = host.config
            for itf in (*held, record):
                config = config.with_interface(itf)
            scope = Scope(frozenset((i.name, INET) for i in held))
            stored = host.stored.with_interfaces((*held, record))
            await apply_and_record(kernel, config, scope, stored.defaultrouters,
                                   lambda _: host.store.save(stored), before=host.kernel)


asyncio.run(main(Path(sys.argv[1])))
"""

FILES = {
    "hostname.net0": "group ipmp0 up\n",
    "hostname.net1": "192.0.2.21 netmask 255.255.255.0 broadcast + group ipmp0 deprecated -failover up\n",
}


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert (proc.returncode, proc.stderr) == (0, ""), (proc.returncode, proc.stderr)
    return proc.stdout


def ether(mac: str) -> str:
    return ":".join(f"{int(b, 16):x}" for b in mac.split(":"))


def indexes(topo: Topology) -> dict[str, int]:
    return {link["ifname"]: int(link["ifindex"]) for link in topo.ip_json("host", "link", "show")}


def ipv4_on(topo: Topology, nic: str) -> set[str]:
    shown = topo.ip_json("host", "-4", "addr", "show", "dev", nic)
    return {f"{a['local']}/{a['prefixlen']}" for entry in shown for a in entry.get("addr_info", [])}


def make_lab(make_topology: MakeTopology, tmp_path: Path) -> MpathdLab:
    lab = MpathdLab(make_topology(nics=("net0", "net1")), tmp_path, "active-active")
    for old in (lab.root / "etc").glob("hostname*.*"):
        old.unlink()
    for name, text in FILES.items():
        (lab.root / "etc" / name).write_text(text)
    lab.boot()
    proc = lab.topo.run("host", [sys.executable, "-W", "error", "-c", MAKE_IPMP0, str(lab.root)], check=False)
    assert proc.returncode == 0, proc.stderr
    return lab


def test_ifconfig_shows_the_ipmp_interface_and_refuses_to_change_it(make_topology: MakeTopology,
                                                                     tmp_path: Path) -> None:
    lab = make_lab(make_topology, tmp_path)
    topo = lab.topo
    idx = indexes(topo)
    mac = {nic: ether(topo.macs[nic]) for nic in ("net0", "net1")}
    # The toolkit's index for ipmp0: after every Linux link (linux/view.merge).
    ipmp_index = max(idx.values()) + 1
    assert ipv4_on(topo, "net0") == {"192.0.2.10/24"}
    assert ipv4_on(topo, "net1") == {"192.0.2.21/24", "192.0.2.11/24"}

    ipmp_blocks = (
        f"ipmp0: flags=108001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,IPMP,PHYSRUNNING> mtu 1500 "
        f"index {ipmp_index}\n"
        "\tinet 192.0.2.10 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname ipmp0\n"
        f"ipmp0:1: flags=108001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,IPMP,PHYSRUNNING> mtu 1500 "
        f"index {ipmp_index}\n"
        "\tinet 192.0.2.11 netmask ffffff00 broadcast 192.0.2.255\n"
    )
    expected = (
        "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
        "\tinet 127.0.0.1 netmask ff000000 \n"
        "net0: flags=100001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,PHYSRUNNING> mtu 1500 "
        f"index {idx['net0']}\n"
        "\tinet 0.0.0.0 netmask ff000000 \n"
        "\tgroupname ipmp0\n"
        f"\tether {mac['net0']} \n"
        "net1: flags=100009040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,PHYSRUNNING> "
        f"mtu 1500 index {idx['net1']}\n"
        "\tinet 192.0.2.21 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname ipmp0\n"
        f"\tether {mac['net1']} \n"
        + ipmp_blocks
    )
    assert ok(lab.ifconfig("-a")) == expected
    # A family named: no ``ether`` lines (Solaris prints them only without one).
    no_ether = "".join(line for line in expected.splitlines(keepends=True) if not line.startswith("\tether"))
    assert ok(lab.ifconfig("-a4")) == no_ether
    # ``ifconfig IF`` is unit 0 only, as on Solaris.
    assert ok(lab.ifconfig("ipmp0")) == ipmp_blocks[:ipmp_blocks.index("ipmp0:1:")]
    assert ok(lab.ifconfig("ipmp0:1")) == ipmp_blocks[ipmp_blocks.index("ipmp0:1:"):]
    assert ok(lab.ifconfig("-au4")) == no_ether
    assert ok(lab.ifconfig("-ad4")) == ""

    store = lab.root / "run" / "ipmp"
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    for words in (["ipmp0", "down"], ["ipmp0:1", "192.0.2.99"], ["ipmp0", "unplumb"]):
        proc = lab.ifconfig(*words)
        assert proc.returncode == 1, (words, proc)
        assert proc.stderr == f"ifconfig: {words[0]}: is an IPMP interface managed by ipadm; use ipadm\n"
        assert ipv4_on(topo, "net0") == {"192.0.2.10/24"}
        assert ipv4_on(topo, "net1") == {"192.0.2.21/24", "192.0.2.11/24"}
        assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before

    # Both links down: no member usable, the IPMP interface is FAILED.
    topo.fail_link("net0")
    topo.fail_link("net1")
    text = ok(lab.ifconfig("ipmp0"))
    assert text.startswith("ipmp0: flags=8011000803<UP,BROADCAST,MULTICAST,IPv4,FAILED,IPMP> mtu 1500 "), text


def ipmpstat(lab: MpathdLab, mode: str, fields: str) -> list[str]:
    argv = [*lab.env, str(BIN / "ipmpstat"), "-P", "-o", fields, f"-{mode}"]
    proc = lab.topo.run("host", argv, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_ipmpstat_names_the_ipmp_interface_and_keeps_its_nominee(make_topology: MakeTopology,
                                                                   tmp_path: Path) -> None:
    # illumos ipmpstat.c: GROUP is the IPMP interface (gr_ifname), INBOUND
    # the bound member; ipmp.c ipmp_illgrp_set_cast: the m/b nominee is the
    # first active member and moves only when it stops being active.
    lab = make_lab(make_topology, tmp_path)
    try:
        lab.start()

        def view() -> tuple[list[str], list[str], list[str]]:
            return (ipmpstat(lab, "g", "group,groupname,state,interfaces"),
                    sorted(ipmpstat(lab, "a", "address,state,group,inbound,outbound")),
                    ipmpstat(lab, "i", "interface,active,group,flags"))

        wait_for(lambda: view() == (
            ["ipmp0:ipmp0:ok:net0 net1"],
            ["192.0.2.10:up:ipmp0:net0:net0", "192.0.2.11:up:ipmp0:net1:net1"],
            ["net0:yes:ipmp0:--mb---", "net1:yes:ipmp0:-------"],
        ), 20.0, "ipmpstat to show ipmp0 over net0 and net1", context=lambda: repr(view()))

        lab.topo.fail_link("net0")
        wait_for(lambda: view() == (
            ["ipmp0:ipmp0:degraded:net1 [net0]"],
            ["192.0.2.10:up:ipmp0:net1:net1", "192.0.2.11:up:ipmp0:net1:net1"],
            ["net0:no:ipmp0:-------", "net1:yes:ipmp0:--mb---"],
        ), 20.0, "net1 to hold both addresses and the nomination", context=lambda: repr(view()))

        lab.topo.repair_link("net0")
        wait_for(lambda: view()[0] == ["ipmp0:ipmp0:ok:net0 net1"] and "net0" in "".join(view()[1]),
                 20.0, "net0 to be active again with an address", context=lambda: repr(view()))
        # No fail-back of the nomination.
        assert view()[2] == ["net0:yes:ipmp0:-------", "net1:yes:ipmp0:--mb---"]
    finally:
        lab.close()
