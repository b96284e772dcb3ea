"""``ipmp-boot`` with broken hostname files, on the real kernel.

A line with an error is reported as ``FILE:LINE:COL: message`` plus
Solaris' ``Failed to configure IPv4 interface(s): <if>``, the exit status is
1, and every other interface still comes up.  Each line is a command of its
own and all or nothing (tests/netns/test_boot_lines.py has files of several
lines): as in Solaris' network/physical, the interface is plumbed before its
lines run and stays plumbed, so a fresh NIC whose only line fails is left
plumbed without an address, and is listed on the ``configuring`` line as
Solaris lists it.  A NIC configured by an earlier good boot loses nothing.
A file for a NIC that does not exist is a plumb failure.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from labhost import (
    Host,
    MakeTopology,
    configuring_line,
    copy_example,
    example_nics,
    expected_addresses,
    expected_rules,
    spec,
)

#: active-standby's hostname.qfe0 is two physical lines joined by a backslash;
#: each case replaces one word on line 2 (``\taddif myhost-qfe0 deprecated ...``):
#: (old word, new word, its column, the message as a regular expression).
LINE2_CASES = {
    # a misspelt keyword is an address to Solaris ifconfig, which cannot resolve it
    "misspelt-keyword": ("deprecated", "deprecatd", 20, r"deprecatd: bad address"),
    # a Solaris keyword Linux cannot honour (the parser's text carries an
    # "ifconfig: " of its own, which the boot loader passes on)
    "unsupported-keyword": (
        "deprecated", "private", 20, r"(ifconfig: )?private: not supported on Linux \(.+\)"
    ),
    # a host name missing from etc/hosts
    "unknown-host": ("myhost-qfe0", "myhost-qfe9", 8, r"myhost-qfe9: bad address"),
}


def new_host(make_topology: MakeTopology, tmp_path: Path, example: str, nics: tuple[str, ...] = ()) -> Host:
    root = copy_example(example, tmp_path)
    return Host(make_topology(nics=nics or example_nics(root)), root)


def stderr_lines(proc_stderr: str) -> list[str]:
    return proc_stderr.splitlines()


def assert_plumbed_without_address(host: Host, nic: str) -> None:
    """Plumbed for IPv4 (net-physical's ``ifconfig IF plumb`` came first) and nothing else."""
    assert host.addresses4(nic) == []
    status = host.ifconfig(nic)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert re.fullmatch(rf"{nic}: flags=[0-9a-f]+<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index \d+",
                        lines[0]), lines
    assert lines[1].split() == ["inet", "0.0.0.0", "netmask", "0"], lines
    assert "groupname" not in status.stdout


def assert_configured(host: Host, example: str, nic: str) -> None:
    """``nic`` holds exactly its addresses and rules from the example, and answers pings."""
    addrs = tuple(a for a in spec(example) if a.nic == nic)
    assert host.addresses4(nic) == expected_addresses(addrs, nic)
    assert {r for r in host.rules() if r[2] == host.table(nic)} == expected_rules(host, addrs)
    report = host.topo.ping(host.topo.peer, [a.ip for a in addrs], count=2)
    for a in addrs:
        assert report[a.ip].received == 2, a


def test_unknown_host_on_a_fresh_nic(make_topology: MakeTopology, tmp_path: Path) -> None:
    host = new_host(make_topology, tmp_path, "active-active")
    bad = host.root / "etc" / "hostname.qfe1"
    bad.write_text(bad.read_text().replace("myhost-2 ", "myhost-3 ", 1))

    proc = host.boot()

    assert proc.returncode == 1
    assert proc.stdout == configuring_line(["qfe0", "qfe1"])
    assert stderr_lines(proc.stderr) == [
        f"{bad}:1:1: myhost-3: bad address",
        "Failed to configure IPv4 interface(s): qfe1",
    ]
    assert_plumbed_without_address(host, "qfe1")
    assert_configured(host, "active-active", "qfe0")


@pytest.mark.parametrize("case", sorted(LINE2_CASES))
def test_error_on_a_continued_line_costs_the_whole_line_on_a_fresh_nic(
    make_topology: MakeTopology, tmp_path: Path, case: str
) -> None:
    old, new, col, message = LINE2_CASES[case]
    host = new_host(make_topology, tmp_path, "active-standby")
    bad = host.root / "etc" / "hostname.qfe0"
    text = bad.read_text()
    assert text.splitlines()[0].endswith("\\")  # the example really is continued
    bad.write_text(text.replace(f" {old} ", f" {new} ", 1))

    proc = host.boot()

    assert proc.returncode == 1
    assert proc.stdout == configuring_line(["qfe0", "qfe1"])
    located, failed = stderr_lines(proc.stderr)
    assert re.fullmatch(re.escape(f"{bad}:2:{col}: ") + message, located), located
    assert failed == "Failed to configure IPv4 interface(s): qfe0"
    # Physical line 1 (myhost ... group prod up) is part of the failed line: none of it applies.
    assert_plumbed_without_address(host, "qfe0")
    assert_configured(host, "active-standby", "qfe1")


@pytest.mark.parametrize("case", sorted(LINE2_CASES))
def test_error_on_a_continued_line_leaves_a_configured_nic_alone(
    make_topology: MakeTopology, tmp_path: Path, case: str
) -> None:
    old, new, col, message = LINE2_CASES[case]
    host = new_host(make_topology, tmp_path, "active-standby")
    host.boot_ok()
    before = host.snapshot()
    status_before = host.ifconfig_ok("-a")
    bad = host.root / "etc" / "hostname.qfe0"
    # Also change line 1, so that applying the file would change the kernel.
    bad.write_text(bad.read_text().replace("group prod", "group other", 1).replace(f" {old} ", f" {new} ", 1))

    proc = host.boot()

    assert proc.returncode == 1
    assert proc.stdout == configuring_line(["qfe0", "qfe1"])
    located, failed = stderr_lines(proc.stderr)
    assert re.fullmatch(re.escape(f"{bad}:2:{col}: ") + message, located), located
    assert failed == "Failed to configure IPv4 interface(s): qfe0"
    # A failed line takes nothing away: neither the kernel nor the state store moved: qfe0 keeps its old
    # configuration (group prod), qfe1 was re-applied without a change.
    assert host.snapshot() == before
    assert host.ifconfig_ok("-a") == status_before
    assert_configured(host, "active-standby", "qfe0")


def test_hostname_file_for_a_missing_nic(make_topology: MakeTopology, tmp_path: Path) -> None:
    host = new_host(make_topology, tmp_path, "active-active", nics=("qfe0",))

    proc = host.boot()

    assert proc.returncode == 1
    # §6.5: qfe1's data address is not lost with it: qfe0, the other member of prod, takes it.
    assert proc.stdout == (configuring_line(["qfe0"])
                           + "moving addresses from failed IPv4 interfaces: qfe1 (moved to qfe0).\n")
    assert stderr_lines(proc.stderr) == [
        f"{host.root / 'etc' / 'hostname.qfe1'}: plumb: qfe1: no such interface",
        "Failed to plumb IPv4 interface(s): qfe1",
    ]
    rescued = [a for a in host.addresses4("qfe0") if a["local"] == "192.0.2.101"]
    assert len(rescued) == 1, host.addresses4("qfe0")
    own = [a for a in host.addresses4("qfe0") if a["local"] != "192.0.2.101"]
    addrs = tuple(a for a in spec("active-active") if a.nic == "qfe0")
    assert own == expected_addresses(addrs, "qfe0")
    # Its rule leads into qfe0's table; qfe1's test address (-failover) stays behind.
    assert {r[1:] for r in host.rules()} == {(ip, host.table("qfe0"))
                                            for ip in ("192.0.2.100", "192.0.2.10", "192.0.2.101")}
    report = host.topo.ping(host.topo.peer, ["192.0.2.100", "192.0.2.101"], count=2)
    assert report["192.0.2.100"].received == report["192.0.2.101"].received == 2
    check = host.boot("--check")
    assert check.returncode == 1
    assert "Failed to plumb IPv4 interface(s): qfe1" in check.stderr
