"""The loopback on the real kernel: ``lo0`` logicals, ``lo0 inet6 plumb``, and localhost kept.

Each test has a lab host namespace of its own, so its ``lo`` is its own: a
fresh namespace's loopback holds 127.0.0.1/8 and ``::1``/128 with host scope,
as every Linux host's does.  The root has no hostname file, so the host shows
no IPv6 (Solaris then shows no inet6 block for lo0), unless a test says so.

Checked three ways, as in test_ifconfig.py: what ``ifconfig`` prints, what the
kernel holds (``ip -j``, outside the product's code), and that a second look
finds nothing left to do (``ifconfig -n``: the plan of a command already
carried out holds no kernel change, so nothing comes back on every command).

Addresses: the loopback's own (127/8, ``::1``) and documentation ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from labhost import Host, MakeTopology

LO4 = "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
LO6 = "lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n"
LOCALHOST = {"127.0.0.1/8", "::1/128"}


@pytest.fixture
def host(make_topology: MakeTopology, tmp_path: Path) -> Host:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    return Host(make_topology(nics=("qfe0",)), root)


def lo(host: Host) -> dict[str, dict[str, Any]]:
    """The addresses of the namespace's ``lo``, by ``address/prefix``."""
    found: dict[str, dict[str, Any]] = {}
    for link in host.ip_json("addr", "show", "dev", "lo"):
        for a in link.get("addr_info", ()):
            found[f"{a['local']}/{a['prefixlen']}"] = {
                "scope": a.get("scope"), "label": a.get("label"), "broadcast": a.get("broadcast"),
            }
    return found


def assert_localhost(host: Host) -> None:
    held = lo(host)
    assert LOCALHOST <= set(held), held
    assert {held[a]["scope"] for a in LOCALHOST} == {"host"}, held


def no_kernel_change(host: Host, *args: str) -> None:
    """Planning ``args`` finds no kernel change to make (``#`` lines are notes, not changes)."""
    proc = host.ifconfig("-n", *args)
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    assert [line for line in proc.stdout.splitlines() if not line.startswith("#")] == [], proc.stdout


def test_a_fresh_namespace_is_what_every_case_starts_from(host: Host) -> None:
    assert_localhost(host)
    assert host.ifconfig_ok("lo0") == LO4 + "\tinet 127.0.0.1 netmask ff000000 \n"


def test_addif_on_lo0_adds_a_host_scope_address_that_reads_back_in_sync(host: Host) -> None:
    assert host.ifconfig_ok("lo0", "addif", "127.0.0.2/8", "up") == "Created new logical interface lo0:1\n"
    assert lo(host)["127.0.0.2/8"] == {"scope": "host", "label": "lo0:1", "broadcast": None}
    lo0_1 = LO4.replace("lo0:", "lo0:1:", 1)
    assert host.ifconfig_ok("lo0:1") == lo0_1 + "\tinet 127.0.0.2 netmask ff000000 \n"
    no_kernel_change(host, "lo0:1", "up")
    # A service address on lo0 (Solaris' "receive only" lo0:N) keeps universe scope.
    host.ifconfig_ok("lo0", "addif", "192.0.2.5/32", "up")
    assert lo(host)["192.0.2.5/32"] == {"scope": "global", "label": "lo0:2", "broadcast": None}
    no_kernel_change(host, "lo0:2", "up")
    # Down and up again: out of the kernel and back with the same scope.
    host.ifconfig_ok("lo0:1", "down")
    assert "127.0.0.2/8" not in lo(host)
    host.ifconfig_ok("lo0:1", "up")
    assert lo(host)["127.0.0.2/8"]["scope"] == "host"
    assert_localhost(host)


def test_inet6_plumb_of_lo0_keeps_localhost6(host: Host) -> None:
    # No IPv6 in use: lo0 has no inet6 block, as on Solaris, though Linux has ::1.
    hidden = host.ifconfig("lo0", "inet6")
    assert (hidden.returncode, hidden.stderr) == (
        1, "ifconfig: status: SIOCGLIFFLAGS: lo0: no such interface\n")
    assert "::1/128" in lo(host)
    no_kernel_change(host, "lo0", "inet6", "plumb")  # no ``ip -6 addr del ::1/128`` planned
    assert host.ifconfig_ok("lo0", "inet6", "plumb") == ""
    assert_localhost(host)
    assert host.ifconfig_ok("lo0", "inet6") == LO6 + "\tinet6 ::1/128 \n"
    # Plumbing it again says nothing, as Solaris' inetplumb does for lo0.
    assert host.ifconfig_ok("lo0", "inet6", "plumb") == ""
    assert host.ifconfig_ok("lo0", "plumb") == ""
    assert_localhost(host)


@pytest.mark.parametrize(("argv", "error"), [
    (("lo0", "down"),
     "ifconfig: down: lo0: refused: it would take 127.0.0.1 (localhost) off the loopback, "
     "and Linux cannot do without it\n"),
    (("lo0", "inet6", "down"),
     "ifconfig: down: lo0: refused: it would take ::1 (localhost) off the loopback, "
     "and Linux cannot do without it\n"),
    (("-a", "down"),
     "ifconfig: down: lo0: refused: it would take 127.0.0.1 (localhost) off the loopback, "
     "and Linux cannot do without it\n"),
    (("lo0", "unplumb"),
     "ifconfig: unplumb: lo0: the loopback cannot be unplumbed on Linux (it carries the host's 127.0.0.1 "
     "and all local traffic); unplumb its logical interfaces (lo0:N) instead\n"),
    (("lo0", "inet6", "unplumb"),
     "ifconfig: unplumb: lo0: the loopback cannot be unplumbed on Linux (it carries the host's ::1 "
     "and all local traffic); unplumb its logical interfaces (lo0:N) instead\n"),
])
def test_commands_that_take_localhost_away_are_refused_and_change_nothing(
        host: Host, argv: tuple[str, ...], error: str) -> None:
    host.ifconfig_ok("lo0", "inet6", "plumb")
    host.ifconfig_ok("lo0", "addif", "127.0.0.2/8", "up")
    kernel, shown, stored = lo(host), host.ifconfig_ok("-a"), host.state_file.read_bytes()
    proc = host.ifconfig(*argv)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", error)
    assert (lo(host), host.ifconfig_ok("-a"), host.state_file.read_bytes()) == (kernel, shown, stored)
    assert_localhost(host)


def test_what_keeps_localhost_is_done(host: Host) -> None:
    host.ifconfig_ok("lo0", "addif", "127.0.0.2/8", "up")
    host.ifconfig_ok("lo0", "down", "up")  # down and up in one command: 127.0.0.1 never leaves
    host.ifconfig_ok("lo0:1", "unplumb")
    assert "127.0.0.2/8" not in lo(host)
    assert_localhost(host)


def test_boot_with_hostname_lo0_files_keeps_localhost(host: Host) -> None:
    # illumos net-loopback takes /etc/hostname.lo0 and hostname6.lo0 as its
    # sign to plumb lo0 with ifconfig; they are usually empty.
    etc = host.root / "etc"
    (etc / "hostname.lo0").write_text("")
    (etc / "hostname6.lo0").write_text("")
    assert host.boot_ok().stdout == "configuring IPv4 interfaces: lo0.\nconfiguring IPv6 interfaces: lo0.\n"
    assert_localhost(host)
    assert host.ifconfig_ok("lo0") == (LO4 + "\tinet 127.0.0.1 netmask ff000000 \n"
                                       + LO6 + "\tinet6 ::1/128 \n")
    # A later boot without the IPv6 file unplumbs lo0's IPv6 in the view,
    # and still leaves ::1 where Linux needs it.
    (etc / "hostname6.lo0").unlink()
    host.boot_ok()
    assert_localhost(host)
