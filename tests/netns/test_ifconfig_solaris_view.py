"""``ifconfig`` on the real kernel printing what a Solaris host printed.

Three facts Solaris users and the parsers of Solaris output rely on, each
checked byte for byte on a lab host:

* the order of ``ifconfig -a``: a Solaris 10 host printed ``ce5``, ``ce6``,
  ``ce6:1``, ``ce6:2``, ``ce10`` although ``ce10`` had the lowest index
  (community.unix.com thread 215150; illumos ``ip_sioctl_get_lifconf``,
  ``ill_glist_insert``, ``ill_compare_ppa``);
* the unit 0 a failover leaves behind: ``inet 0.0.0.0 netmask 0`` with
  ``mtu 0`` (Solaris 10 IP Services guide, "What Happens During Interface
  Failover", example 30-2; ``ipif_move`` builds it from ``ipif_zero``), a
  standby's one DEPRECATED when the address it lost was, and the address
  that comes home taking that unit 0 again;
* the loopback as ``lo0`` (``flags=2001000849 ... mtu 8232``, IPv6
  ``flags=2002000849 ... mtu 8252``) and ``lo0`` accepted as its name.

Addresses: documentation ranges only, inside the lab's namespaces.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from mpathd_harness import FAILOVER, MpathdLab, wait_for

from ipmp.lab.topology import Topology

MakeTopology = Callable[..., Topology]

LO4 = ("lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
       "\tinet 127.0.0.1 netmask ff000000 \n")
LO6 = ("lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n"
       "\tinet6 ::1/128 \n")


def headers(text: str) -> list[str]:
    return [line.split(": flags=")[0] for line in text.splitlines() if not line.startswith("\t")]


def ok(proc: object) -> str:
    import subprocess

    assert isinstance(proc, subprocess.CompletedProcess)
    assert (proc.returncode, proc.stderr) == (0, ""), (proc.returncode, proc.stderr)
    return str(proc.stdout)


def ether(mac: str) -> str:
    return ":".join(f"{int(b, 16):x}" for b in mac.split(":"))


def index_of(topo: Topology, nic: str) -> int:
    return int(topo.ip_json("host", "link", "show", "dev", nic)[0]["ifindex"])


def lab_with(make_topology: MakeTopology, tmp_path: Path, nics: tuple[str, ...], example: str,
             files: dict[str, str]) -> MpathdLab:
    """A lab whose root is ``example`` with its hostname files replaced by ``files``."""
    lab = MpathdLab(make_topology(nics=nics), tmp_path, example)
    for old in (lab.root / "etc").glob("hostname*.*"):
        old.unlink()
    for name, text in files.items():
        (lab.root / "etc" / name).write_text(text)
    return lab


# --------------------------------------------------------------------------
# Order
# --------------------------------------------------------------------------

#: The Solaris 10 host of community.unix.com thread 215150, its addresses moved
#: into the documentation ranges.  ce6's second data address ("super") is put
#: on ce6 by its own file here (the thread does not show where it came from).
CE_FILES = {
    "hosts": ("127.0.0.1 localhost\n192.0.2.64 super loghost\n192.0.2.74 super-ce6\n"
              "192.0.2.84 super-ce10\n192.0.2.108 super-dummy\n198.51.100.112 super-ce5\n"),
    "netmasks": "192.0.2.0 255.255.255.0\n198.51.100.0 255.255.255.0\n",
    "hostname.ce5": "super-ce5 netmask + broadcast + deprecated -failover up\n",
    "hostname.ce6": ("super-ce6 netmask + broadcast + group accgrp deprecated -failover up "
                     "addif super-dummy netmask + broadcast + deprecated up "
                     "addif super netmask + broadcast + up\n"),
    "hostname.ce10": "super-ce10 netmask + broadcast + group accgrp deprecated -failover up\n",
}


def test_ifconfig_a_orders_by_type_and_instance_not_by_index(make_topology: MakeTopology,
                                                                 tmp_path: Path) -> None:
    # Links created in the order ce10, ce5, ce6: ce10 gets the lowest index,
    # as on the real host.
    lab = lab_with(make_topology, tmp_path, ("ce10", "ce5", "ce6"), "active-active", CE_FILES)
    lab.boot()
    topo = lab.topo
    idx = {nic: index_of(topo, nic) for nic in topo.nics}
    assert idx["ce10"] < idx["ce5"] < idx["ce6"], idx
    mac = {nic: ether(topo.macs[nic]) for nic in topo.nics}
    test = "9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>"
    expected = (
        LO4
        + f"ce5: flags={test} mtu 1500 index {idx['ce5']}\n"
        "\tinet 198.51.100.112 netmask ffffff00 broadcast 198.51.100.255\n"
        f"\tether {mac['ce5']} \n"
        f"ce6: flags={test} mtu 1500 index {idx['ce6']}\n"
        "\tinet 192.0.2.74 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname accgrp\n"
        f"\tether {mac['ce6']} \n"
        f"ce6:1: flags=1040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4> mtu 1500 index {idx['ce6']}\n"
        "\tinet 192.0.2.108 netmask ffffff00 broadcast 192.0.2.255\n"
        f"ce6:2: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index {idx['ce6']}\n"
        "\tinet 192.0.2.64 netmask ffffff00 broadcast 192.0.2.255\n"
        f"ce10: flags={test} mtu 1500 index {idx['ce10']}\n"
        "\tinet 192.0.2.84 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname accgrp\n"
        f"\tether {mac['ce10']} \n"
    )
    assert ok(lab.ifconfig("-a")) == expected
    assert headers(ok(lab.ifconfig("-a4"))) == ["lo0", "ce5", "ce6", "ce6:1", "ce6:2", "ce10"]


# --------------------------------------------------------------------------
# The failover placeholder
# --------------------------------------------------------------------------


def qfe1_blocks(lab: MpathdLab) -> str:
    """qfe1's IPv4 blocks, as ``ifconfig -a4`` prints them (``ifconfig qfe1`` is unit 0 only)."""
    out: list[str] = []
    keep = False
    for line in ok(lab.ifconfig("-a4")).splitlines(keepends=True):
        if not line.startswith("\t"):
            keep = line.split(": flags=")[0].partition(":")[0] == "qfe1"
        if keep:
            out.append(line)
    return "".join(out)


def test_probe_failure_leaves_the_placeholder_solaris_prints(make_lab: Callable[..., MpathdLab]) -> None:
    lab = make_lab("active-active")
    d = lab.start()
    idx = index_of(lab.topo, "qfe0")
    t0 = time.monotonic()
    lab.topo.fail_silent("qfe0")
    try:
        d.wait_line(FAILOVER.format(src="qfe0", dst="qfe1"), since=t0, timeout=15)
        lay = lab.wait_layout(lambda lay: lay.nic_of("192.0.2.100") == "qfe1", "192.0.2.100 up on qfe1")
        # Example 30-2: a probe failure keeps RUNNING; the placeholder has mtu 0.
        assert ok(lab.ifconfig("qfe0", "inet")) == (
            f"qfe0: flags=19000842<BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER,FAILED> mtu 0 index {idx}\n"
            "\tinet 0.0.0.0 netmask 0 \n"
            "\tgroupname prod\n"
        ), lay.text
        assert ok(lab.ifconfig("qfe0:1", "inet")) == (
            "qfe0:1: flags=19040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,FAILED>"
            f" mtu 1500 index {idx}\n"
            "\tinet 192.0.2.10 netmask ffffff00 broadcast 192.0.2.255\n"
        )
        moved = lay.holder("192.0.2.100")
        assert moved is not None and moved.name == "qfe1:2", lay.text
    finally:
        lab.topo.repair_silent("qfe0")
    # The failback consumes the placeholder: unit 0 is the data address again.
    back = lab.wait_layout(lambda lay: lay.nic_of("192.0.2.100") == "qfe0", "the failback to qfe0",
                           timeout=60)
    home = back.holder("192.0.2.100")
    assert home is not None and home.name == "qfe0", back.text
    assert ok(lab.ifconfig("qfe0", "inet")) == (
        f"qfe0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index {idx}\n"
        "\tinet 192.0.2.100 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname prod\n"
    )


def test_standby_placeholder_and_the_address_that_comes_home(make_topology: MakeTopology,
                                                              tmp_path: Path) -> None:
    # qfe1 is a standby whose unit 0 carries a deprecated data address (no
    # -failover): in.mpathd moves it to qfe0 (a standby holds only test
    # addresses, §2.7 invariant 1) and leaves the placeholder behind.
    files = {
        "hosts": ("127.0.0.1 localhost\n192.0.2.100 myhost\n192.0.2.10 myhost-qfe0\n"
                  "192.0.2.11 myhost-qfe1\n192.0.2.12 myhost-qfe1-data\n"),
        "hostname.qfe0": ("myhost netmask + broadcast + group prod up "
                          "addif myhost-qfe0 deprecated -failover netmask + broadcast + up\n"),
        "hostname.qfe1": ("myhost-qfe1-data netmask + broadcast + deprecated group prod standby up "
                          "addif myhost-qfe1 deprecated -failover netmask + broadcast + up\n"),
    }
    lab = lab_with(make_topology, tmp_path, ("qfe0", "qfe1"), "active-standby", files)
    lab.boot()
    d = lab.start()
    idx = index_of(lab.topo, "qfe1")
    lab.wait_layout(lambda lay: lay.nic_of("192.0.2.12") == "qfe0", "the standby to be emptied", timeout=30)
    assert qfe1_blocks(lab) == (
        "qfe1: flags=69040842<BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>"
        f" mtu 0 index {idx}\n"
        "\tinet 0.0.0.0 netmask 0 \n"
        "\tgroupname prod\n"
        "qfe1:1: flags=69040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>"
        f" mtu 1500 index {idx}\n"
        "\tinet 192.0.2.11 netmask ffffff00 broadcast 192.0.2.255\n"
    )
    # qfe0 fails: its own data address takes qfe1's lowest free unit; the
    # standby's address is going home and takes unit 0 (ipif_move:
    # IPIF_REPL_CHECK and the original ifindex).
    t0 = time.monotonic()
    lab.topo.fail_link("qfe0")
    d.wait_line(FAILOVER.format(src="qfe0", dst="qfe1"), since=t0, timeout=15)
    lay = lab.wait_layout(
        lambda lay: lay.nic_of("192.0.2.100") == "qfe1" and lay.nic_of("192.0.2.12") == "qfe1",
        "both data addresses on qfe1")
    assert qfe1_blocks(lab) == (
        f"qfe1: flags=21040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,STANDBY> mtu 1500 index {idx}\n"
        "\tinet 192.0.2.12 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname prod\n"
        "qfe1:1: flags=29040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY>"
        f" mtu 1500 index {idx}\n"
        "\tinet 192.0.2.11 netmask ffffff00 broadcast 192.0.2.255\n"
        f"qfe1:2: flags=21000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,STANDBY> mtu 1500 index {idx}\n"
        "\tinet 192.0.2.100 netmask ffffff00 broadcast 192.0.2.255\n"
    ), lay.text


# --------------------------------------------------------------------------
# The loopback
# --------------------------------------------------------------------------


def test_the_loopback_is_lo0_in_output_and_commands(make_lab: Callable[..., MpathdLab]) -> None:
    lab = make_lab("active-active")
    # IPv6 plumbed on a NIC (hostname6 files on Solaris) brings lo0's IPv6 block.
    ok(lab.ifconfig("qfe0", "inet6", "plumb", "up"))
    wait_for(lambda: "inet6 ::1/128" in ok(lab.ifconfig("-a6")), 10, "lo0's IPv6 block")
    text = ok(lab.ifconfig("-a"))
    assert text.startswith(LO4)
    assert LO6 in text and text.index(LO6) > text.index("qfe1:1:")
    assert ok(lab.ifconfig("lo0")) == LO4 + LO6
    assert ok(lab.ifconfig("lo0", "inet")) == LO4
    assert ok(lab.ifconfig("lo0", "inet6")) == LO6
    assert ok(lab.ifconfig("-a6")).startswith(LO6)
    # The Linux name still works and shows the Solaris one.
    assert ok(lab.ifconfig("lo")) == LO4 + LO6
    # Commands name it lo0 in their errors, as Solaris did.
    refused = lab.ifconfig("lo0", "group", "prod")
    assert (refused.returncode, refused.stderr) == (
        1, "ifconfig: setifgroupname: SIOCSLIFGROUPNAME: lo0: Invalid argument\n")
    missing = lab.ifconfig("lo0:7")
    assert (missing.returncode, missing.stderr) == (
        1, "ifconfig: status: SIOCGLIFFLAGS: lo0:7: no such interface\n")
    # Nothing renamed in the kernel: Linux still calls it lo.
    links = {link["ifname"] for link in json.loads(lab.topo.run("host", ["ip", "-j", "link"]).stdout)}
    assert "lo" in links and "lo0" not in links
