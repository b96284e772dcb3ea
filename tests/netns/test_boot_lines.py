"""Each line of a hostname file is its own command, on the real kernel.

Solaris' network/physical runs every line of ``hostname.<if>`` as its own
``ifconfig`` (illumos usr/src/cmd/svc/shell/net_include.sh,
``inet_process_hostname``: ``$* $ifcmds || retval=$?`` for each line, the
next line read whatever happened): a failing line leaves the lines before
it applied, the lines after it still run, the interface is reported as
failed (exit status 1) and the other interfaces come up.  ``ipmp-boot``
does the same, each line all or nothing, and a failing line never takes an
address away.

The files are active-active's qfe0 written as three lines (Solaris §6.4
puts the same words on one): the data address with the group, then a line
that fails, then the test address on a logical interface.  Without the
middle line they configure exactly what the example does.
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

DATA_LINE = "myhost netmask + broadcast + group prod up\n"
TEST_LINE = "addif myhost-qfe0 deprecated -failover netmask + broadcast + up\n"

#: A second line that fails: (the line, the column of the error, the message as a regular expression).
BAD_LINES = {
    # myhost is already qfe0's address (line 1): the kernel refuses the second copy (EEXIST)
    "address-in-use": ("addif myhost netmask + broadcast + up\n", 1,
                       r"ip -4 addr add 192\.0\.2\.100/24 .*label qfe0:1.*: File exists.*"),
    # a misspelt keyword is an address to Solaris ifconfig, which cannot resolve it
    "unknown-keyword": ("addif 192.0.2.50 netmask + broadcast + deprecatd up\n", 40,
                        r"deprecatd: bad address"),
}


def new_host(make_topology: MakeTopology, tmp_path: Path, qfe0: str) -> Host:
    root = copy_example("active-active", tmp_path)
    (root / "etc" / "hostname.qfe0").write_text(qfe0)
    return Host(make_topology(nics=example_nics(root)), root)


def assert_configured(host: Host, nic: str) -> None:
    """``nic`` holds exactly active-active's addresses and rules, answers pings, and is in group prod."""
    addrs = tuple(a for a in spec("active-active") if a.nic == nic)
    assert host.addresses4(nic) == expected_addresses(addrs, nic)
    assert {r for r in host.rules() if r[2] == host.table(nic)} == expected_rules(host, addrs)
    report = host.topo.ping(host.topo.peer, [a.ip for a in addrs], count=2)
    for a in addrs:
        assert report[a.ip].received == 2, a
    assert "\tgroupname prod" in host.ifconfig_ok(nic)


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_failing_second_line_leaves_the_first_applied_and_the_third_runs(
    make_topology: MakeTopology, tmp_path: Path, case: str
) -> None:
    line, col, message = BAD_LINES[case]
    host = new_host(make_topology, tmp_path, DATA_LINE + line + TEST_LINE)
    bad = host.root / "etc" / "hostname.qfe0"

    proc = host.boot()

    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == configuring_line(["qfe0", "qfe1"])
    located, failed = proc.stderr.splitlines()
    assert re.fullmatch(re.escape(f"{bad}:2:{col}: ") + message, located), located
    assert failed == "Failed to configure IPv4 interface(s): qfe0"
    # Line 1's data address and line 3's test address; nothing of line 2.
    assert_configured(host, "qfe0")
    assert "192.0.2.50" not in host.ifconfig_ok("-a")
    assert_configured(host, "qfe1")
    # --check exits 1: it reports the line again, or (the kernel's refusal
    # only shows in a real boot) still wants what line 2 asks for.
    check = host.boot("--check")
    assert check.returncode == 1, (check.stdout, check.stderr)
    if case == "unknown-keyword":
        assert check.stderr.splitlines() == [located, failed]
        assert check.stdout == ""  # lines 1 and 3 are in place: nothing else to do
    else:
        assert check.stderr == ""
        wanted = [ln for ln in check.stdout.splitlines() if ln.startswith("ip ")]
        assert "ip -4 addr add 192.0.2.100/24 broadcast 192.0.2.255 dev qfe0 label qfe0:1 noprefixroute" \
            in wanted, check.stdout
        assert all("qfe0" in ln for ln in wanted), check.stdout


def test_a_good_file_of_several_lines_configures_what_one_line_does(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    host = new_host(make_topology, tmp_path, DATA_LINE + TEST_LINE)

    proc = host.boot_ok()

    assert proc.stdout == configuring_line(["qfe0", "qfe1"])
    assert_configured(host, "qfe0")
    assert_configured(host, "qfe1")
    before = host.snapshot()
    again = host.boot_ok()
    assert again.stdout == proc.stdout
    assert host.snapshot() == before
    check = host.boot("--check")
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")


def test_a_broken_line_on_a_configured_host_takes_no_address_away(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    host = new_host(make_topology, tmp_path, DATA_LINE + TEST_LINE)
    host.boot_ok()
    before = host.snapshot()
    status = host.ifconfig_ok("-a")
    bad = host.root / "etc" / "hostname.qfe0"
    # A typo in the line of the data address and its group: booting again
    # from a clean slate must not take 192.0.2.100 off the network.
    bad.write_text(DATA_LINE.replace("group", "grup") + TEST_LINE)

    proc = host.boot()

    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"{bad}:1:30: grup: bad address",
                                        "Failed to configure IPv4 interface(s): qfe0"]
    assert host.snapshot() == before
    assert host.ifconfig_ok("-a") == status
    assert_configured(host, "qfe0")
