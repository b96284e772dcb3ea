"""Solaris names on Linux NICs, coexistence with NetworkManager / networkd, drift checks (issue 9).

The host's NICs are called as on a real Linux server (``enp1s0f0``,
``enp1s0f1``); the boot files are the ``active-active`` example unchanged but
for their names (``hostname.hme0``, ``hostname.hme1``) plus
``etc/ipmp/ifmap``.  The kernel is read back with ``ip -j``; ``ifconfig -a``
and in.mpathd's messages must speak of hme0 and hme1 only.

NetworkManager and systemd-networkd are stood in for by fake ``nmcli`` and
``networkctl`` scripts in the root's usr/bin, which log how they were called; the
drop-ins are checked as files under the test's root.

Only documentation addresses, only in the fixtures' namespaces.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from labhost import (
    BIN,
    Addr,
    Host,
    MakeTopology,
    copy_example,
    expected_addresses,
    expected_routes,
    expected_rules,
    kernel_events_during,
    spec,
)
from mpathd_harness import MpathdLab, wait_for

from ipmp.lab.topology import Topology

NICS = ("enp1s0f0", "enp1s0f1")
SOLARIS = {"enp1s0f0": "hme0", "enp1s0f1": "hme1"}
LINUX = {v: k for k, v in SOLARIS.items()}
IFMAP = "# Solaris name  Linux NIC\nhme0 enp1s0f0\nhme1 enp1s0f1   # second port\n"
D0, D1, T0, T1 = "192.0.2.100", "192.0.2.101", "192.0.2.10", "192.0.2.11"
ADD_D0 = "ip -4 addr add 192.0.2.100/24 broadcast 192.0.2.255 dev enp1s0f0 label hme0 noprefixroute"
NM_FILE = Path("etc/NetworkManager/conf.d/90-ipmp.conf")
SYSCTL_FILE = Path("etc/sysctl.d/90-ipmp.conf")
_HEADER = re.compile(r"^(\S+?): flags=", re.MULTILINE)


def solarize(root: Path, ifmap: str = IFMAP) -> Path:
    """The example's files under Solaris names, and the map."""
    for old, new in (("qfe0", "hme0"), ("qfe1", "hme1")):
        (root / "etc" / f"hostname.{old}").rename(root / "etc" / f"hostname.{new}")
    (root / "etc" / "ipmp").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "ipmp" / "ifmap").write_text(ifmap)
    return root


def new_host(make_topology: MakeTopology, tmp_path: Path, ifmap: str = IFMAP) -> Host:
    root = solarize(copy_example("active-active", tmp_path), ifmap)
    return Host(make_topology(nics=NICS), root)


def addrs() -> tuple[Addr, ...]:
    """The example's expectations with Linux NICs and Solaris labels."""
    return tuple(replace(a, nic=LINUX[a.nic.replace("qfe", "hme")], label=a.label.replace("qfe", "hme"))
                 for a in spec("active-active"))


def altnames(host: Host, nic: str) -> list[str]:
    return list(host.ip_json("link", "show", "dev", nic)[0].get("altnames", []))


def logical_names(ifconfig_a: str) -> list[str]:
    return _HEADER.findall(ifconfig_a)


def run(host: Host, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = ["env", f"IPMP_ROOT={host.root}", "SUNW_NO_MPATHD=1"]
    return host.topo.run(host.topo.host, [*env, *argv], check=False)


def boot(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    return run(host, [str(BIN / "ipmp-boot"), *args])


# --------------------------------------------------------------------------
# Booting Solaris files through the map
# --------------------------------------------------------------------------


def test_boot_through_the_map(make_topology: MakeTopology, tmp_path: Path) -> None:
    host = new_host(make_topology, tmp_path)

    proc = host.boot()

    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout == "configuring IPv4 interfaces: hme0 hme1.\n"
    expected = addrs()
    for nic in NICS:
        # Nothing renamed: the Solaris name is an altname the kernel resolves.
        assert altnames(host, nic) == [SOLARIS[nic]]
        assert host.ip_json("link", "show", "dev", SOLARIS[nic])[0]["ifname"] == nic
        # Labels carry the Solaris logical names.
        assert host.addresses4(nic) == expected_addresses(expected, nic), nic
    assert host.rules("-4") == expected_rules(host, expected)
    assert host.routes("-4") == expected_routes(host, expected)
    sysctls = host.sysctls()
    for nic in NICS:
        assert sysctls[f"net/ipv4/conf/{nic}/arp_ignore"] == "1"
        assert sysctls[f"net/ipv4/conf/{nic}/rp_filter"] == "2"

    # ifconfig -a: the Solaris names only, so scripts that parse it keep working.
    out = host.ifconfig_ok("-a4")
    assert logical_names(out) == ["lo0", "hme0", "hme0:1", "hme1", "hme1:1"]
    assert "enp1s0f" not in out
    assert "\tgroupname prod\n" in out
    # Either name is accepted; the Solaris one is shown.
    assert logical_names(host.ifconfig_ok("enp1s0f1")) == ["hme1"]
    assert logical_names(host.ifconfig_ok("enp1s0f0:1")) == ["hme0:1"]

    # Commands by either name land on the NIC.
    created = host.ifconfig_ok("hme0", "addif", "192.0.2.102/24", "up")
    assert created == "Created new logical interface hme0:2\n"
    assert [a["label"] for a in host.addresses4("enp1s0f0")] == ["hme0", "hme0:1", "hme0:2"]
    host.ifconfig_ok("enp1s0f0", "removeif", "192.0.2.102")
    assert host.addresses4("enp1s0f0") == expected_addresses(expected, "enp1s0f0")

    # The sysctls for the next boot, by Linux name.
    text = (host.root / SYSCTL_FILE).read_text()
    assert ".all." not in text  # per NIC only: conf.all stays the host's
    assert "net.ipv4.conf.enp1s0f0.rp_filter = 2\n" in text
    assert "net.ipv4.conf.enp1s0f1.promote_secondaries = 1\n" in text
    assert "hme" not in text

    # In sync: --check is silent; booting again changes nothing at all.
    checks = (host.boot("--check"), host.ifconfig("--check", "hme0"), host.ifconfig("--check", "enp1s0f1"))
    for check in checks:
        assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
    before = host.snapshot()
    results: list[subprocess.CompletedProcess[str]] = []
    events = kernel_events_during(host, lambda: results.append(host.boot()))
    assert results[0].returncode == 0 and events == []
    assert host.snapshot() == before


def test_dry_run_prints_the_altnames_and_runnable_commands(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    host = new_host(make_topology, tmp_path)
    before = host.snapshot()

    proc = host.boot("--dry-run")

    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert host.snapshot() == before
    assert altnames(host, "enp1s0f0") == []
    assert not host.state_file.exists() and not (host.root / SYSCTL_FILE).exists()
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["# etc/ipmp/ifmap", "ip link property add dev enp1s0f0 altname hme0",
                         "ip link property add dev enp1s0f1 altname hme1"]
    assert "# hme0" in lines and "# hme1" in lines
    assert ADD_D0 in lines
    assert "sysctl -w net.ipv4.conf.enp1s0f0.rp_filter=2" in lines
    assert f"# would write {host.root / SYSCTL_FILE} (the sysctls above, for the next boot)" in lines
    # Printed with the kernel's names, the plan runs as it is.
    shim = ('sysctl() { shift; key=$(printf %s "${1%%=*}" | tr . /); '
            'printf %s "${1#*=}" > "/proc/sys/$key"; }\n')
    ran = host.sh("set -e\n" + shim + proc.stdout)
    assert ran.returncode == 0, ran.stderr
    assert altnames(host, "enp1s0f0") == ["hme0"]
    assert host.addresses4("enp1s0f1") == expected_addresses(addrs(), "enp1s0f1")


_ALTNAME_SCRIPT = """
import asyncio
from ipmp.errors import ApplyError
from ipmp.host.ifmap import parse_ifmap
from ipmp.kernel.execute import Kernel

async def main():
    async with Kernel() as kernel:
        await kernel.add_altname("enp1s0f0", "hme0")
        print({lk.name: lk.altnames for lk in await kernel.linux_links()}["enp1s0f0"])
        try:
            await kernel.add_altname("enp1s0f1", "hme0")
        except ApplyError as err:
            print(err)
    entries, _ = parse_ifmap("hme0 enp1s0f0\\nhme1 enp1s0f1\\n")
    async with Kernel(entries) as kernel:
        state = await kernel.read(["net/ipv4/conf/hme1/arp_ignore"])
        print([(lk.name, lk.altnames) for lk in state.links if not lk.loopback])
        print(state.sysctls)

asyncio.run(main())
"""


def test_kernel_altnames_and_the_translation(make_topology: MakeTopology, tmp_path: Path) -> None:
    """What the kernel does with altnames, through ipmp.kernel.execute.Kernel (nothing booted)."""
    host = new_host(make_topology, tmp_path)
    proc = host.python(_ALTNAME_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "('hme0',)",
        # Another link's name: the kernel refuses (EEXIST), as it does for any name in use.
        "ip link property add dev enp1s0f1 altname hme0: File exists",
        # hme1 is not an altname yet, but the map is valid: the view uses it anyway.
        "[('hme0', ('enp1s0f0',)), ('hme1', ('enp1s0f1',))]",
        "(('net/ipv4/conf/hme1/arp_ignore', '0'),)",
    ]


# --------------------------------------------------------------------------
# Drift
# --------------------------------------------------------------------------


def test_check_reports_drift(make_topology: MakeTopology, tmp_path: Path) -> None:
    host = new_host(make_topology, tmp_path)
    host.boot_ok()

    host.topo.ip(host.topo.host, "addr", "del", f"{D0}/24", "dev", "enp1s0f0")
    host.topo.ip(host.topo.host, "link", "property", "del", "dev", "enp1s0f1", "altname", "hme1")

    check = host.boot("--check")
    assert (check.returncode, check.stderr) == (1, "")
    lines = check.stdout.splitlines()
    assert lines[:2] == ["# etc/ipmp/ifmap", "ip link property add dev enp1s0f1 altname hme1"]
    assert "# hme0" in lines and ADD_D0 in lines
    assert "# hme1" not in lines

    one = host.ifconfig("--check", "hme0")
    assert (one.returncode, one.stderr) == (1, "")
    assert one.stdout.splitlines()[0] == "# hme0" and ADD_D0 in one.stdout.splitlines()
    same = host.ifconfig("--check", "enp1s0f0")
    assert (same.returncode, same.stdout) == (1, one.stdout)
    # hme1 lost only its altname: that is its drift.
    other = host.ifconfig("--check", "enp1s0f1")
    assert (other.returncode, other.stderr) == (1, "")
    assert other.stdout == "ip link property add dev enp1s0f1 altname hme1\n"
    nofile = host.ifconfig("--check", "lo")
    assert nofile.returncode == 1 and "--check: lo: no hostname file" in nofile.stderr

    host.boot_ok()
    for again in (host.boot("--check"), host.ifconfig("--check", "hme0"), host.ifconfig("--check", "hme1")):
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert altnames(host, "enp1s0f1") == ["hme1"]


# --------------------------------------------------------------------------
# A bad map: every line reported, nothing done
# --------------------------------------------------------------------------

BAD_MAP = """hme0 enp1s0f0
hme1
hme0 enp1s0f1
qfe0 enp1s0f0
qfe1 ens9
averylongname0 enp1s0f1
enp1s0f1 lo
hme-1 enp1s0f1
"""


def test_a_bad_map_is_reported_line_by_line_and_nothing_is_applied(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    host = new_host(make_topology, tmp_path, BAD_MAP)
    before = host.snapshot()
    where = host.root / "etc" / "ipmp" / "ifmap"

    for args in ((), ("--check",), ("--dry-run",)):
        proc = host.boot(*args)
        assert (proc.returncode, proc.stdout) == (1, ""), args
        assert proc.stderr.splitlines() == [
            f"{where}:2:1: ifmap: expected 'solaris-name linux-name', got 1 word(s)",
            f"{where}:3:1: ifmap: hme0: mapped already, on line 1",
            f"{where}:4:6: ifmap: enp1s0f0: already mapped to hme0, on line 1",
            f"{where}:5:6: ifmap: ens9: no such Linux interface",
            f"{where}:6:1: ifmap: averylongname0: Solaris name too long: at most 12 characters, so that the "
            "logical interface label averylongname0:N fits Linux's 15",
            f"{where}:7:1: ifmap: enp1s0f1: already a name of Linux interface enp1s0f1",
            f"{where}:8:1: ifmap: hme-1: not a Solaris interface name (a letter, then letters, digits "
            "or '_', ending in the instance number)",
            f"Failed to apply the interface map {where}: nothing was configured",
        ], args
    assert host.snapshot() == before
    for nic in NICS:
        assert altnames(host, nic) == []
    assert not host.state_file.exists()
    assert not (host.root / SYSCTL_FILE).exists()


# --------------------------------------------------------------------------
# in.mpathd speaks Solaris names
# --------------------------------------------------------------------------


def test_failover_messages_name_the_solaris_interfaces(make_topology: MakeTopology, tmp_path: Path) -> None:
    topo: Topology = make_topology(nics=NICS)
    lab = MpathdLab(topo, tmp_path, "active-active")
    try:
        solarize(lab.root)
        lab.boot()
        d = lab.start(settle=False)

        def tracking() -> bool:
            interfaces = lab.query().get("interfaces", {})
            probes = [p for info in interfaces.values() for p in info.get("probes", {}).values()]
            return set(interfaces) == {"hme0", "hme1"} and all(p.get("targets") for p in probes)

        wait_for(tracking, 20, "in.mpathd to track hme0 and hme1", context=d.text)
        assert d.ready_at is not None
        armed = d.ready_at + lab.quiet_period + 0.3
        wait_for(lambda: time.monotonic() >= armed, lab.quiet_period + 5, "the quiet period to end")
        assert lab.layout().placement() == {D0: "hme0", T0: "hme0:1", D1: "hme1", T1: "hme1:1"}

        t0 = time.monotonic()
        topo.fail_link("enp1s0f0")
        d.wait_line("^The link has gone down on hme0$", since=t0, timeout=5)
        d.wait_line("^NIC failure detected on hme0 of group prod$", since=t0, timeout=5)
        d.wait_line("^Successfully failed over from NIC hme0 to NIC hme1$", since=t0, timeout=5)
        lay = lab.wait_layout(lambda lay: lay.nic_of(D0) == "hme1", f"{D0} on hme1")
        assert "FAILED" in lay.nic_flags("hme0"), lay.text
        moved = [a for a in host_addresses(topo, "enp1s0f1") if a["local"] == D0]
        assert len(moved) == 1 and moved[0]["label"].startswith("hme1:"), moved

        t1 = time.monotonic()
        topo.repair_link("enp1s0f0")
        d.wait_line("^The link has come up on hme0$", since=t1, timeout=5)
        d.wait_line("^Successfully failed back to NIC hme0$", since=t1, timeout=10)
        lab.wait_layout(lambda lay: lay.nic_of(D0) == "hme0", f"{D0} back on hme0")

        # if_mpadm takes the Linux name too.
        off = lab.if_mpadm("-d", "enp1s0f0")
        assert off.returncode == 0, off.stderr
        lay = lab.wait_layout(lambda lay: lay.nic_of(D0) == "hme1" and "OFFLINE" in lay.nic_flags("hme0"),
                              "hme0 offline")
        on = lab.if_mpadm("-r", "hme0")
        assert on.returncode == 0, on.stderr
        lab.wait_layout(lambda lay: lay.nic_of(D0) == "hme0", f"{D0} back on hme0 after -r")

        assert not d.matching("enp1s0f"), d.text()
    finally:
        lab.close()


def host_addresses(topo: Topology, nic: str) -> list[dict[str, str]]:
    return [info for link in topo.ip_json("host", "-4", "addr", "show", "dev", nic)
            for info in link.get("addr_info", ())]


# --------------------------------------------------------------------------
# NetworkManager and systemd-networkd (fake tools)
# --------------------------------------------------------------------------


def fake_tools(root: Path, *, nmcli: str | None = None, networkctl: str | None = None,
               released: str | None = None, flush: tuple[str, ...] = ()) -> Path:
    """``nmcli`` and ``networkctl`` in the root's ``usr/bin`` (where ipmp-boot looks for them:
    ``coexist.find_tool``) that print the given text, or fail as when the service is down.

    With ``released``, a service that lets go when told to reload: from then on its
    listing is ``released``, and the reload flushes the addresses of ``flush``, as
    NetworkManager does to a device it stops managing.
    """
    bindir = root / "usr" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name, out in (("nmcli", nmcli), ("networkctl", networkctl)):
        body = (f"cat <<'EOF'\n{out}EOF\n" if out is not None
                else "echo 'Error: the service is not running.' >&2\nexit 8\n")
        if released is not None and out is not None:
            flushes = "".join(f"ip addr flush dev {nic}\n" for nic in flush)
            body = (f'case "$*" in *reload*) touch "{bindir}/{name}.reloaded"\n{flushes}exit 0;; esac\n'
                    f'if [ -e "{bindir}/{name}.reloaded" ]; then cat <<\'EOF\'\n{released}EOF\nexit 0; fi\n'
                    + body)
        script = bindir / name
        script.write_text(f'#!/bin/sh\necho "{name} LC_ALL=$LC_ALL $*" >> "{bindir}/calls"\n{body}')
        script.chmod(0o755)
    (bindir / "calls").unlink(missing_ok=True)
    for name in ("nmcli", "networkctl"):
        (bindir / f"{name}.reloaded").unlink(missing_ok=True)
    return bindir


def test_networkmanager_refused_then_taken_over(make_topology: MakeTopology, tmp_path: Path) -> None:
    host = new_host(make_topology, tmp_path)
    tools = fake_tools(host.root, nmcli="lo:unmanaged\nenp1s0f0:connected\nenp1s0f1:disconnected\n")
    before = host.snapshot()
    dropin = host.root / NM_FILE

    refused = boot(host)

    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.splitlines() == [
        "ipmp-boot: NetworkManager manages enp1s0f0 (hme0), enp1s0f1 (hme1), which the hostname files "
        "configure: it would undo in.mpathd's address moves.  Nothing was changed.",
        f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over': it writes {dropin}, runs "
        "'nmcli general reload conf' and waits until NetworkManager lets go, then configures them.",
        "ipmp-boot: or, until NetworkManager restarts: nmcli device set enp1s0f0 managed no; "
        "nmcli device set enp1s0f1 managed no",
    ]
    assert host.snapshot() == before and altnames(host, "enp1s0f0") == []
    assert not dropin.exists() and not host.state_file.exists()
    assert (tools / "calls").read_text().splitlines() == [
        "nmcli LC_ALL=C -t -f DEVICE,STATE device", "networkctl LC_ALL=C list --no-legend --no-pager"]

    dry = boot(host, "--dry-run", "--take-over")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == (
        f"# --take-over: would write {dropin} (NetworkManager lets go of enp1s0f0 enp1s0f1)")
    assert not dropin.exists() and host.snapshot() == before

    # A NetworkManager that flushes the NICs as it lets go (as it does, tests/vm/test_coexist.py):
    # the take-over has it read the drop-in first, then configures them.
    listing = "lo:unmanaged\nenp1s0f0:connected\nenp1s0f1:disconnected\n"
    letting_go = fake_tools(host.root, nmcli=listing, released="enp1s0f0:unmanaged\nenp1s0f1:unmanaged\n",
                            flush=("enp1s0f0", "enp1s0f1"))
    taken = boot(host, "--take-over")
    assert (taken.returncode, taken.stderr) == (0, "")
    assert taken.stdout.splitlines() == [
        f"ipmp-boot: wrote {dropin}: NetworkManager lets go of enp1s0f0 enp1s0f1 once it reads it "
        "('nmcli general reload conf')",
        "ipmp-boot: ran 'nmcli general reload conf': NetworkManager let go of enp1s0f0 enp1s0f1",
        "configuring IPv4 interfaces: hme0 hme1.",
    ]
    assert (letting_go / "calls").read_text().splitlines()[2:4] == [
        "nmcli LC_ALL=C general reload conf", "nmcli LC_ALL=C -t -f DEVICE,STATE device"]
    assert dropin.read_text().splitlines()[1:] == [
        "[keyfile]", "unmanaged-devices+=interface-name:enp1s0f0;interface-name:enp1s0f1;"]
    assert host.addresses4("enp1s0f0") == expected_addresses(addrs(), "enp1s0f0")
    assert host.addresses4("enp1s0f1") == expected_addresses(addrs(), "enp1s0f1")

    # The file is there but NetworkManager has not read it (it says managed): say so, reload.
    fake_tools(host.root, nmcli=listing, released="enp1s0f0:unmanaged\nenp1s0f1:unmanaged\n")
    again = boot(host, "--take-over")
    assert again.returncode == 0
    assert again.stdout.splitlines()[:2] == [
        f"ipmp-boot: {dropin} already marks enp1s0f0 enp1s0f1 unmanaged; NetworkManager has not read it "
        "yet: run 'nmcli general reload conf'",
        "ipmp-boot: ran 'nmcli general reload conf': NetworkManager let go of enp1s0f0 enp1s0f1"]
    tools = fake_tools(host.root, nmcli=listing)

    # --check: in sync with the files, but a service still holds the NICs: not ok.
    check = boot(host, "--check", "--take-over")
    assert (check.returncode, check.stderr) == (1, "")
    assert check.stdout == f"# --take-over: {dropin} is written; NetworkManager has not read it yet\n"

    # Once it lets go, boot goes on quietly.
    fake_tools(host.root, nmcli="enp1s0f0:unmanaged\nenp1s0f1:unmanaged\n")
    quiet = boot(host)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert quiet.stdout == "configuring IPv4 interfaces: hme0 hme1.\n"


def test_networkd_refused_then_taken_over(make_topology: MakeTopology, tmp_path: Path) -> None:
    host = new_host(make_topology, tmp_path)
    i0, i1 = host.ifindex("enp1s0f0"), host.ifindex("enp1s0f1")
    listing = (f"  1 lo       loopback carrier    unmanaged\n"
               f"{i0:3d} enp1s0f0 ether    routable   configured\n"
               f"{i1:3d} enp1s0f1 ether    no-carrier unmanaged\n")
    fake_tools(host.root, networkctl=listing)
    before = host.snapshot()
    dropin = host.root / "etc" / "systemd" / "network" / "10-ipmp-enp1s0f0.network"
    conf = host.root / "etc" / "systemd" / "networkd.conf.d" / "90-ipmp.conf"

    refused = boot(host)

    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.splitlines() == [
        "ipmp-boot: systemd-networkd manages enp1s0f0 (hme0), which the hostname files configure: it would "
        "undo in.mpathd's address moves.  Nothing was changed.",
        f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over': it writes {dropin}, {conf}, runs "
        "'networkctl reload' and waits until systemd-networkd lets go, then configures them.",
    ]
    assert host.snapshot() == before and not dropin.exists() and not conf.exists()

    fake_tools(host.root, networkctl=listing,
                            released=listing.replace("routable   configured", "routable   unmanaged"))
    taken = boot(host, "--take-over")
    assert (taken.returncode, taken.stderr) == (0, "")
    assert taken.stdout.splitlines()[:3] == [
        f"ipmp-boot: wrote {dropin}: systemd-networkd lets go of enp1s0f0 once it reads it "
        "('networkctl reload')",
        f"ipmp-boot: wrote {conf}: systemd-networkd leaves in.mpathd's routing policy rules alone from its "
        "next start",
        "ipmp-boot: ran 'networkctl reload': systemd-networkd let go of enp1s0f0"]
    assert conf.read_text().splitlines()[1:] == ["[Network]", "ManageForeignRoutingPolicyRules=no"]
    assert dropin.read_text().splitlines()[1:] == ["[Match]", "Name=enp1s0f0", "", "[Link]", "Unmanaged=yes"]
    assert sorted(p.name for p in dropin.parent.iterdir()) == ["10-ipmp-enp1s0f0.network"]
    assert altnames(host, "enp1s0f0") == ["hme0"]

    # The same name at another index is another namespace's link: not ours.
    fake_tools(host.root, networkctl=listing.replace(f"{i0:3d} enp1s0f0", f"{i0 + 40:3d} enp1s0f0"))
    quiet = boot(host)
    assert (quiet.returncode, quiet.stderr) == (0, "")
