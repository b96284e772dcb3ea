"""A logical interface's own MTU, ``router``, ``token`` and ``subnet`` on the real kernel.

The hostname file line is a real Solaris 10 host's, which came up there and
was refused here: ``addif 192.0.2.132 netmask + broadcast + mtu 1380 up``.
Solaris keeps the MTU per logical interface (ifconfig(1M) "mtu n: [...] sets
the FIXEDMTU flag", ``ip_sioctl_mtu``); on Linux it is the ``mtu`` of that
unit's routes, and the kernel must then send from that unit's subnet with
it.  ``router`` is the NIC's forwarding sysctl, for the whole group
(ifconfig(1M): "Enabling ROUTER on any IP interface in an IPMP group enables
it on all IP interfaces in that IPMP group"); ``token`` is ``ip token``;
``subnet`` the address's prefix length.

The host's netmasks split 192.0.2.0/24 in two /25s: ce0's address in the
lower one, ce0:1's in the upper one, where the router is.  The peer has an
address in each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from labhost import PROTO, Host, MakeTopology

from ipmp.lab.addressing import unique_prefix

UNIT = "192.0.2.132"
PEER_LOW = "192.0.2.50"
PEER_HIGH = "192.0.2.150"
ROUTER_HIGH = "192.0.2.129"

FILES = {
    "hostname.ce0": "192.0.2.10 netmask + broadcast + group prod up\n",
    "hostname.ce1": "192.0.2.11 netmask + broadcast + group prod up\n",
    "netmasks": "192.0.2.0\t255.255.255.128\n192.0.2.128\t255.255.255.128\n",
    "hosts": "127.0.0.1\tlocalhost\n",
    "defaultrouter": f"{ROUTER_HIGH}\n",
}

#: Sends 1400 bytes of UDP with "don't fragment" from SRC to DST and prints
#: the path MTU the kernel gives the socket and what the send did.
PROBE = """
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
s.connect((sys.argv[2], 9))
mtu = s.getsockopt(socket.IPPROTO_IP, 14)  # IP_MTU
try:
    s.send(b"x" * 1400)
    print(mtu, "sent")
except OSError as e:
    print(mtu, errno.errorcode[e.errno])
"""


@pytest.fixture
def ce(make_topology: MakeTopology, tmp_path: Path) -> Host:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name, text in FILES.items():
        (root / "etc" / name).write_text(text)
    topo = make_topology(nics=("ce0", "ce1"), router4=f"{ROUTER_HIGH}/25", peer4=f"{PEER_LOW}/25",
                         extra_peer_addrs=(f"{PEER_HIGH}/25",))
    host = Host(topo, root)
    host.boot_ok()
    return host


def routes(host: Host, family: str = "-4") -> dict[tuple[str, str, str | None], int | None]:
    """``(table, dst, gateway) -> mtu`` of the toolkit's routes on ce0."""
    out: dict[tuple[str, str, str | None], int | None] = {}
    for r in host.ip_json(family, "route", "show", "table", "all"):
        if r.get("protocol") == PROTO and r["dev"] == "ce0":
            metrics: list[dict[str, Any]] = r.get("metrics", [])
            mtu = next((m["mtu"] for m in metrics if "mtu" in m), None)
            out[(str(r.get("table", "main")), r["dst"], r.get("gateway"))] = mtu
    return out


def sysctl(host: Host, key: str) -> str:
    return str(host.topo.run(host.topo.host, ["cat", f"/proc/sys/{key}"]).stdout).strip()


def header(host: Host, name: str) -> str:
    """The status line of ``name`` in ``ifconfig -a``."""
    (line,) = [x for x in host.ifconfig_ok("-a").splitlines() if x.startswith(f"{name}: ")]
    return str(line)


def test_addif_with_mtu_gives_the_unit_its_mtu_in_the_kernel(ce: Host) -> None:
    index = ce.ifindex("ce0")
    table = ce.table("ce0")

    out = ce.ifconfig_ok("ce0", "addif", UNIT, "netmask", "+", "broadcast", "+", "mtu", "1380", "up")

    assert out == "Created new logical interface ce0:1\nSetting netmask of ce0:1 to 255.255.255.128\n"
    text = ce.ifconfig_ok("-a")
    assert (f"ce0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index {index}\n"
            "\tinet 192.0.2.10 netmask ffffff80 broadcast 192.0.2.127\n") in text
    assert (f"ce0:1: flags=1001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,FIXEDMTU> mtu 1380 index {index}\n"
            f"\tinet {UNIT} netmask ffffff80 broadcast 192.0.2.255\n") in text
    assert ce.ip_json("link", "show", "dev", "ce0")[0]["mtu"] == 1500  # the link keeps its MTU
    # The unit's subnet routes (both tables) and the default routes through
    # the router of that subnet carry its MTU; ce0's own subnet does not.
    got = routes(ce)
    assert got[(table, "192.0.2.128/25", None)] == 1380
    assert got[("main", "192.0.2.128/25", None)] == 1380
    assert got[(table, "default", ROUTER_HIGH)] == 1380
    assert got[("main", "default", ROUTER_HIGH)] == 1380
    assert got[(table, "192.0.2.0/25", None)] is None
    assert got[("main", "192.0.2.0/25", None)] is None
    # The kernel sends with it: 1400 bytes with DF do not fit from the unit,
    # and do from ce0's own address.
    assert ce.python(PROBE, UNIT, PEER_HIGH).stdout.split() == ["1380", "EMSGSIZE"]
    assert ce.python(PROBE, "192.0.2.10", PEER_LOW).stdout.split() == ["1500", "sent"]
    report = ce.topo.ping(ce.topo.peer, [UNIT], count=2)
    assert report[UNIT].received == 2
    # The files and the kernel agree: nothing left to do.
    assert ce.ifconfig_ok("ce0:1", "mtu", "1380") == ""
    assert routes(ce) == got


def test_a_unit_mtu_above_the_links_fails_and_changes_nothing(ce: Host) -> None:
    before = ce.snapshot()
    state = ce.state_file.read_bytes()

    proc = ce.ifconfig("ce0", "addif", UNIT, "netmask", "+", "broadcast", "+", "mtu", "1501", "up")

    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, "", "ifconfig: setifmtu: SIOCSLIFMTU: ce0:1: Invalid argument\n")
    assert ce.snapshot() == before
    assert ce.state_file.read_bytes() == state


def test_router_forwards_for_the_whole_group_and_token_sets_ip_token(ce: Host) -> None:
    assert sysctl(ce, "net/ipv4/conf/ce0/forwarding") == "0"

    assert ce.ifconfig_ok("ce1", "router") == ""

    for nic in ("ce0", "ce1"):
        assert sysctl(ce, f"net/ipv4/conf/{nic}/forwarding") == "1"
        assert ",ROUTER," in header(ce, nic)
    assert ce.ifconfig_ok("ce0", "-router") == ""
    for nic in ("ce0", "ce1"):
        assert sysctl(ce, f"net/ipv4/conf/{nic}/forwarding") == "0"
        assert "ROUTER" not in header(ce, nic)

    ce.ifconfig_ok("ce0", "inet6", "plumb")
    ce.ifconfig_ok("ce0", "inet6", "router")
    assert sysctl(ce, "net/ipv6/conf/ce0/forwarding") == "1"
    assert sysctl(ce, "net/ipv6/conf/ce1/forwarding") == "0"  # not plumbed for IPv6
    assert sysctl(ce, "net/ipv4/conf/ce0/forwarding") == "0"
    ce.ifconfig_ok("ce0", "inet6", "-router")

    assert ce.ifconfig_ok("ce0", "inet6", "token", "::1:2:3:4/64") == ""
    token = ce.topo.run(ce.topo.host, ["ip", "token", "get", "dev", "ce0"]).stdout
    assert token.split() == ["token", "::1:2:3:4", "dev", "ce0"]
    bad = ce.ifconfig("ce0", "inet6", "token", "::1:2:3:5")
    assert (bad.returncode, bad.stderr) == (1, "ifconfig: Missing prefix length in subnet ::1:2:3:5\n")
    assert ce.topo.run(ce.topo.host, ["ip", "token", "get", "dev", "ce0"]).stdout == token


def test_subnet_is_the_prefix_of_the_address(ce: Host) -> None:
    table = ce.table("ce0")

    assert ce.ifconfig_ok("ce0", "subnet", "192.0.2.0/26") == ""

    (addr,) = ce.addresses4("ce0")
    assert (addr["local"], addr["prefixlen"], addr["broadcast"]) == ("192.0.2.10", 26, "192.0.2.127")
    got = routes(ce)
    assert (table, "192.0.2.0/26", None) in got and ("main", "192.0.2.0/26", None) in got
    assert (table, "192.0.2.0/25", None) not in got
    assert "\tinet 192.0.2.10 netmask ffffffc0 broadcast 192.0.2.127\n" in ce.ifconfig_ok("ce0")
    bad = ce.ifconfig("ce0", "subnet", "192.0.2.10/26")
    assert (bad.returncode, bad.stderr) == (1, "ifconfig: SIOCSLIFSUBNET: ce0: Invalid argument\n")


def test_an_ipv6_unit_mtu_is_its_routes_mtu(ce: Host) -> None:
    ce.ifconfig_ok("ce0", "inet6", "plumb", "up")
    table = ce.table("ce0")

    out = ce.ifconfig_ok("ce0", "inet6", "addif", "2001:db8::132/64", "mtu", "1400", "up")

    assert out == "Created new logical interface ce0:1\n"
    (line,) = [x for x in ce.ifconfig_ok("ce0:1", "inet6").splitlines() if x.startswith("ce0:1:")]
    assert line.startswith("ce0:1: flags=1002000841<UP,RUNNING,MULTICAST,IPv6,FIXEDMTU> mtu 1400 ")
    mtus = routes(ce, "-6")
    assert mtus[(table, "2001:db8::/64", None)] == 1400
    assert mtus[("main", "2001:db8::/64", None)] == 1400
    # A unit below IPv6's minimum is refused, as ip_sioctl_mtu refuses it.
    bad = ce.ifconfig("ce0:1", "inet6", "mtu", "1279")
    assert (bad.returncode, bad.stderr) == (1, "ifconfig: setifmtu: SIOCSLIFMTU: ce0:1: Invalid argument\n")



#: Does in.mpathd's watcher hear of a forwarding sysctl written by someone
#: else?  It must, or a failover planned from its last read would switch the
#: administrator's ROUTER back.  Run in a namespace of its own whose only
#: link is down and has no addresses: nothing else happens there.
WATCH = """
import select, sys
from ipmp.kernel.watch import Watcher
w = Watcher()
w.read()
with open(f"/proc/sys/net/{sys.argv[1]}/conf/fbq0/forwarding", "w") as f:
    f.write("1")
changed = False
while not changed and select.select([w], [], [], 10)[0]:
    changed = w.read()[1]
print(changed)
"""


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_the_daemons_watcher_hears_a_forwarding_change(netns_support: None, family: str) -> None:
    ns = f"{unique_prefix()}-watch"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "fbq0", "type", "veth", "peer", "name", "fbq1"],
                       check=True)
        proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", WATCH, family],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (proc.stdout, proc.stderr) == ("True\n", "")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
