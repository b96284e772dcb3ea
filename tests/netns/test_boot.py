"""``ipmp-boot`` on the real kernel, for every example under examples/hostname.files.

Each test builds a lab topology whose host NICs carry the names of the
example's hostname files, boots a private copy of the example into it, and
checks the kernel (``ip -j``), the ``ifconfig -a`` text (golden files), the
traffic the peer sees, the source address unbound sockets pick, and that
booting again (or ``--check``/``--dry-run``) changes nothing.

Golden files: ``tests/netns/golden/<example>.ifconfig-a``.  To regenerate
after a deliberate output change, run with ``IPMP_UPDATE_GOLDEN=1`` and
review the diff by eye against solaris-ipmp.md §4.6 before committing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labhost import (
    GOLDEN,
    ROUTER,
    Host,
    MakeTopology,
    chosen_sources,
    configuring_lines,
    copy_example,
    example_names,
    example_nics,
    expected_addresses,
    expected_addresses6,
    expected_routes,
    expected_rules,
    kernel_events_during,
    spec,
)

from ipmp.lab.addressing import unique_prefix
from ipmp.lab.wiring import build

EXAMPLES = example_names()
#: An off-link destination, reached through the default route.
OFF_LINK = "203.0.113.9"
#: The router's IPv6 address (on-link; the examples have no IPv6 default router).
ROUTER6 = "2001:db8::1"


def new_host(make_topology: MakeTopology, tmp_path: Path, example: str) -> Host:
    root = copy_example(example, tmp_path)
    return Host(make_topology(nics=example_nics(root)), root)


@dataclass
class Booted:
    example: str
    host: Host
    boot: subprocess.CompletedProcess[str]
    #: ``Host.sysctls()`` just before the boot.
    sysctls_before: dict[str, str]


@pytest.fixture(scope="module", params=EXAMPLES)
def first_boot(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, netns_support: None
) -> Iterator[Booted]:
    """One fresh topology per example, booted once, shared by this module's tests.

    They only look, or (boot again) assert that they changed nothing; that
    one is defined last so that pytest runs it last on each topology.
    """
    example = str(request.param)
    root = copy_example(example, tmp_path_factory.mktemp("boot"))
    topo = build(unique_prefix(), example_nics(root))
    try:
        host = Host(topo, root)
        before = host.sysctls()
        yield Booted(example, host, host.boot(), before)
    finally:
        topo.destroy()


def test_every_example_has_expectations() -> None:
    assert EXAMPLES, "no example folders found"
    for example in EXAMPLES:
        assert spec(example), example


def test_boot_configures_the_kernel(first_boot: Booted) -> None:
    addrs = spec(first_boot.example)
    host, proc = first_boot.host, first_boot.boot
    assert {a.nic for a in addrs} == set(host.topo.nics)

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == configuring_lines(host)
    for nic in host.topo.nics:
        assert host.addresses4(nic) == expected_addresses(addrs, nic), nic
        if any(a.nic == nic and a.version == 6 for a in addrs):
            # The kernel's link-local is there, out of DAD (ipmp-boot waited).
            assert host.addresses6(nic) == expected_addresses6(addrs, nic), nic
        link = host.ip_json("link", "show", "dev", nic)[0]
        assert "UP" in link["flags"], nic
    assert host.rules("-4") == expected_rules(host, addrs)
    assert host.rules("-6") == expected_rules(host, addrs, 6)
    assert host.routes("-4") == expected_routes(host, addrs)
    assert host.routes("-6") == expected_routes(host, addrs, 6)
    # noprefixroute everywhere: the kernel added no subnet route of its own.
    kernel_subnet_routes = [
        r for r in host.ip_json("-4", "route", "show", "table", "all")
        if r.get("protocol") == "kernel" and r.get("type") is None
    ]
    assert kernel_subnet_routes == []
    # The sysctls of the recipe, for each NIC and never host-wide: conf/all and
    # conf/default are exactly as they were.
    sysctls = host.sysctls()
    before = first_boot.sysctls_before
    host_wide = {k: v for k, v in sysctls.items() if k.split("/")[3] in ("all", "default")}
    assert host_wide == {k: v for k, v in before.items() if k.split("/")[3] in ("all", "default")}
    nics4 = sorted({a.nic for a in addrs if a.version == 4})
    grouped = "group" in "".join((host.root / "etc" / f"hostname.{nic}").read_text() for nic in nics4)
    for nic in nics4:
        for key, value in (("arp_ignore", "1"), ("arp_announce", "2"), ("promote_secondaries", "1"),
                           ("ignore_routes_with_linkdown", "1")):
            assert sysctls[f"net/ipv4/conf/{nic}/{key}"] == value, (nic, key)
        # Loose reverse-path filtering only where addresses move: in a group.
        rp_filter = "2" if grouped else before[f"net/ipv4/conf/{nic}/rp_filter"]
        assert sysctls[f"net/ipv4/conf/{nic}/rp_filter"] == rp_filter, nic
    # Admin-down must not flush the IPv6 addresses of a NIC plumbed for IPv6.
    for nic in sorted({a.nic for a in addrs if a.version == 6}):
        assert sysctls[f"net/ipv6/conf/{nic}/keep_addr_on_down"] == "1", nic
        assert sysctls[f"net/ipv6/conf/{nic}/ignore_routes_with_linkdown"] == "1", nic


def test_ifconfig_a_matches_golden(first_boot: Booted) -> None:
    host = first_boot.host

    out = host.ifconfig_ok("-a")

    golden = GOLDEN / f"{first_boot.example}.ifconfig-a"
    if os.environ.get("IPMP_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(out)
    assert golden.is_file(), f"missing golden file {golden}"
    assert out == golden.read_text()
    # The ether line (root only, unit 0 only, in each family's block) is
    # lowercase hex without leading zeros and ends with a space (§4.6).
    addrs = spec(first_boot.example)
    for nic, mac in host.topo.macs.items():
        ether = "\tether " + ":".join(f"{int(b, 16):x}" for b in mac.split(":")) + " \n"
        families = {a.version for a in addrs if a.nic == nic}
        assert out.count(ether) == len(families), nic


def test_peer_reaches_every_address_on_its_nic(first_boot: Booted) -> None:
    # The link-locals are the lab's own business (a scoped address).
    addrs = [a for a in spec(first_boot.example) if not a.link_local]
    topo = first_boot.host.topo

    report = topo.ping(topo.peer, [a.ip for a in addrs], count=3)

    for a in addrs:
        stats = report[a.ip]
        assert stats.received == stats.sent == 3, (a.ip, stats)
        # arp_ignore/arp_announce: only the NIC holding an address answers for it.
        assert topo.neighbour_mac(topo.peer, a.ip, dev=topo.peer_ifname) == topo.macs[a.nic], a


def test_unbound_socket_picks_a_data_address(first_boot: Booted) -> None:
    addrs = spec(first_boot.example)
    host = first_boot.host
    for version, destinations in ((4, (ROUTER, OFF_LINK)), (6, (ROUTER6,))):
        # The first data address of the lowest-index NIC holding one: that
        # NIC's main-table routes have the lowest metric (IPv6 honours a
        # route's src as well).
        data = [a for a in addrs if not a.test and a.version == version]
        if not data:
            continue
        first_nic = min({a.nic for a in data}, key=host.ifindex)
        want = min((a for a in data if a.nic == first_nic), key=lambda a: a.unit).ip

        sources = chosen_sources(host, *destinations)

        assert sources == dict.fromkeys(destinations, want)
        assert not {a.ip for a in addrs if a.test} & set(sources.values())


#: sysctl(8) is not in every image: the printed ``sysctl -w k=v`` lines are
#: carried out with a shell function writing /proc/sys instead.
_SYSCTL_SHIM = (
    'sysctl() { shift; key=$(printf %s "${1%%=*}" | tr . /); printf %s "${1#*=}" > "/proc/sys/$key"; }\n'
)


def test_dry_run_changes_nothing_and_prints_what_boot_does(
    first_boot: Booted, make_topology: MakeTopology, tmp_path: Path
) -> None:
    example = first_boot.example
    addrs = spec(example)
    host = new_host(make_topology, tmp_path, example)
    before = host.snapshot()

    proc = host.boot("--dry-run")

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert host.snapshot() == before
    assert not host.state_file.exists()
    lines = proc.stdout.splitlines()
    for nic in host.topo.nics:
        assert f"# {nic}" in lines
        assert f"ip link set dev {nic} up" in lines
    for a in addrs:
        if a.link_local:
            continue  # the kernel's, never in a plan
        pref = 100 if a.test else 200
        if a.version == 6:
            # No label (IPv6 has none), nodad: DAD would leave it unusable for 1-2 s.
            assert f"ip -6 addr add {a.ip}/{a.prefixlen} dev {a.nic} noprefixroute nodad" in lines
            assert f"ip -6 rule add pref {pref} from {a.ip} lookup {host.table(a.nic)} proto 73" in lines
            continue
        deprecated = " preferred_lft 0" if a.test else ""
        assert (
            f"ip -4 addr add {a.ip}/24 broadcast {a.broadcast} dev {a.nic} label {a.label}"
            f"{deprecated} noprefixroute"
        ) in lines
        assert f"ip -4 rule add pref {pref} from {a.ip} lookup {host.table(a.nic)} proto 73" in lines
    commands = [line for line in lines if not line.startswith("#")]
    assert all(line.startswith(("ip ", "sysctl -w ")) for line in commands), commands

    # The printed commands, run by a shell on this still fresh host, build
    # the same kernel state as the real boot did on the module's host.
    ran = host.sh("set -e\n" + _SYSCTL_SHIM + proc.stdout)
    assert ran.returncode == 0, ran.stderr
    assert host.snapshot() == first_boot.host.snapshot()


def test_boot_again_changes_nothing(first_boot: Booted) -> None:
    """Last of the tests on ``first_boot``: if it fails, it may leave changes behind."""
    host = first_boot.host
    check = host.boot("--check")
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
    before = host.snapshot()
    state_before = host.state_file.read_bytes()
    results = []

    events = kernel_events_during(host, lambda: results.append(host.boot()))

    (again,) = results
    assert again.returncode == 0, again.stderr
    assert again.stdout == configuring_lines(host)
    assert events == []
    assert host.snapshot() == before
    assert host.state_file.read_bytes() == state_before
