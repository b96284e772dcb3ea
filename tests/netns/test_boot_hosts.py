"""``ipmp-boot`` reads /etc/hosts as glibc does: a bad line is skipped, with a warning.

One stray line (an address without a name, a name without an address) once
made ``ipmp-boot`` configure nothing at all.  glibc's files backend skips
such a line, and so does Solaris' ifconfig; the boot now does the same,
names each skipped line on stderr as ``FILE:LINE:COL: warning: ...``, and
exits 0 when nothing else is wrong.  Names compare without regard to ASCII
case, as glibc compares them.
"""

from __future__ import annotations

from pathlib import Path

from labhost import Host, MakeTopology, configuring_lines, copy_example, expected_addresses, spec

EXAMPLE = "active-active"


def test_a_stray_hosts_line_boots_every_interface_and_warns(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    root = copy_example(EXAMPLE, tmp_path)
    hosts = root / "etc" / "hosts"
    lines = hosts.read_text().splitlines(keepends=True)
    assert lines[2] == "192.0.2.101\tmyhost-2\n"
    lines[2] = "192.0.2.101\tMyHost-2\n"  # hostname.qfe1 says myhost-2
    lines[2:2] = ["192.0.2.77\n", "  myhost-9 192.0.2.9   # swapped\n"]
    hosts.write_text("".join(lines))
    host = Host(make_topology(nics=("qfe0", "qfe1")), root)

    proc = host.boot()

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == configuring_lines(host)
    assert proc.stderr.splitlines() == [
        f"{hosts}:3:1: warning: hosts: 192.0.2.77: no host name; line ignored",
        f"{hosts}:4:3: warning: hosts: myhost-9: not an IP address; line ignored",
    ]
    addrs = spec(EXAMPLE)
    for nic in host.topo.nics:
        assert host.addresses4(nic) == expected_addresses(addrs, nic), nic
    report = host.topo.ping(host.topo.peer, [a.ip for a in addrs], count=2)
    assert all(report[a.ip].received == 2 for a in addrs), report

    # --check keeps stderr for errors (configuration management reads it); --dry-run warns.
    check = host.boot("--check")
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
    dry = host.boot("--dry-run")
    assert (dry.returncode, dry.stdout) == (0, "")
    assert dry.stderr == proc.stderr


def test_debian_127_0_1_1_host_line_is_refused_for_a_nic(make_topology: MakeTopology, tmp_path: Path) -> None:
    """Issue 14: Debian maps the host's name to 127.0.1.1; that is no address for a NIC.

    The first matching hosts line wins (glibc), so ``myhost`` resolves to
    127.0.1.1 even with the Solaris line below it.  The interface is
    refused at its word, naming the hosts line; the other one still boots.
    """
    root = copy_example(EXAMPLE, tmp_path)
    hosts = root / "etc" / "hosts"
    lines = hosts.read_text().splitlines(keepends=True)
    lines[1:1] = ["127.0.1.1\tmyhost.example.org\tmyhost\n"]
    hosts.write_text("".join(lines))
    host = Host(make_topology(nics=("qfe0", "qfe1")), root)
    hostname = root / "etc" / "hostname.qfe0"

    dry = host.boot("--dry-run")
    assert dry.returncode == 1
    assert "127.0.1.1" not in dry.stdout and "127.0.0.0" not in dry.stdout
    assert "# qfe1" in dry.stdout  # the other interface is still planned
    assert dry.stderr.splitlines()[0] == (
        f"{hostname}:1:1: myhost: the hosts file gives 127.0.1.1 ({hosts}:2), a loopback address, "
        f"which qfe0 cannot hold; put a line with the host's own address before line 2 of {hosts} "
        "(the first match wins), or write the address itself in hostname.qfe0")

    proc = host.boot()
    assert proc.returncode == 1
    assert "Failed to configure IPv4 interface(s): qfe0" in proc.stderr
    assert host.addresses4("qfe0") == []
    assert [a["local"] for a in host.addresses4("qfe1")] == ["192.0.2.101", "192.0.2.11"]
