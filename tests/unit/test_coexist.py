"""NetworkManager / systemd-networkd detection and the drop-in files (``ipmp.host.coexist``).

The tools' outputs here are written by hand in the formats of ``nmcli -t``
and ``networkctl list --no-legend``; tests/netns/test_ifmap.py runs
``ipmp-boot`` with fake tools in its root's usr/bin.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from ipmp.host import coexist, dropins
from ipmp.host.coexist import Managed, detect, parse_networkctl, parse_nmcli
from ipmp.host.dropins import networkd_dropin, nm_dropin
from ipmp.model import Family
from tests.public_tmp import public_tempdir

NOBODY = 65534

NMCLI = ("lo:unmanaged\nenp1s0f0:connected\nenp1s0f1:unavailable\nveth\\:x:connected (externally)\n"
         "wlan0:unmanaged\n")
NETWORKCTL = (
    "  1 lo       loopback carrier  unmanaged\n"
    "  2 enp1s0f0 ether    routable configured\n"
    "  3 enp1s0f1 ether    no-carrier unmanaged\n"
    "  9 eth7     ether    off      configuring\n"
)


def test_parse_nmcli_unescapes_colons() -> None:
    assert parse_nmcli(NMCLI) == {
        "lo": "unmanaged", "enp1s0f0": "connected", "enp1s0f1": "unavailable",
        "veth:x": "connected (externally)", "wlan0": "unmanaged",
    }


def test_parse_networkctl() -> None:
    assert parse_networkctl(NETWORKCTL) == {
        "lo": (1, "unmanaged"), "enp1s0f0": (2, "configured"), "enp1s0f1": (3, "unmanaged"),
        "eth7": (9, "configuring"),
    }
    assert parse_networkctl("") == {}


class Tools:
    def __init__(self, nmcli: str | None = None, networkctl: str | None = None) -> None:
        self.out = {"nmcli": nmcli, "networkctl": networkctl}
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str | None:
        self.calls.append(list(argv))
        return self.out[argv[0]]


def test_detect_every_state_but_unmanaged_counts() -> None:
    tools = Tools(nmcli=NMCLI)
    found = detect({"enp1s0f0": 2, "enp1s0f1": 3, "wlan0": 4}, run=tools)
    assert found == [Managed("NetworkManager", ("enp1s0f0", "enp1s0f1"))]
    assert tools.calls == [["nmcli", "-t", "-f", "DEVICE,STATE", "device"],
                           ["networkctl", "list", "--no-legend", "--no-pager"]]


def test_detect_networkd_needs_name_and_index() -> None:
    tools = Tools(networkctl=NETWORKCTL)
    assert detect({"enp1s0f0": 2, "enp1s0f1": 3}, run=tools) == [Managed("systemd-networkd", ("enp1s0f0",))]
    # Another namespace's enp1s0f0 (other index) is not ours.
    assert detect({"enp1s0f0": 5}, run=tools) == []


def test_detect_nothing_when_tools_are_missing_or_fail() -> None:
    assert detect({"enp1s0f0": 2}, run=Tools()) == []


def _tool(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_run_tool_runs_the_roots_tool_by_absolute_path(tmp_path: Path) -> None:
    _tool(tmp_path / "usr/bin/nmcli", 'echo "lo:unmanaged $LC_ALL $0 $*"')
    _tool(tmp_path / "bin/networkctl", "echo 'Failed to connect system bus' >&2; exit 1")
    assert coexist.run_tool(["nmcli", "-t"], tmp_path) == f"lo:unmanaged C {tmp_path}/usr/bin/nmcli -t\n"
    assert coexist.run_tool(["networkctl", "list"], tmp_path) is None
    assert coexist.run_tool(["no-such-tool-here"], tmp_path) is None
    # usr/sbin first, as on a host.
    _tool(tmp_path / "usr/sbin/nmcli", "echo sbin")
    assert coexist.run_tool(["nmcli"], tmp_path) == "sbin\n"
    assert coexist.detect({"lo": 1}, root=tmp_path) == []


def test_run_tool_never_looks_in_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tool(tmp_path / "elsewhere/nmcli", "echo 'lo:connected'")
    monkeypatch.setenv("PATH", f"{tmp_path / 'elsewhere'}{os.pathsep}{os.environ.get('PATH', '')}")
    (tmp_path / "root").mkdir()
    assert coexist.run_tool(["nmcli"], tmp_path / "root") is None
    assert coexist.detect({"lo": 1}, root=tmp_path / "root") == []


def test_a_tool_others_could_replace_is_not_run(tmp_path: Path) -> None:
    tool = _tool(tmp_path / "usr/bin/nmcli", "echo ran")
    assert coexist.find_tool(tmp_path, "nmcli") == tool
    (tmp_path / "usr/bin").chmod(0o777)  # anyone could put their own nmcli there
    assert coexist.find_tool(tmp_path, "nmcli") is None and coexist.run_tool(["nmcli"], tmp_path) is None
    (tmp_path / "usr/bin").chmod(0o1777)  # sticky: only we can rename or remove ours
    assert coexist.find_tool(tmp_path, "nmcli") == tool
    tool.chmod(0o777)
    assert coexist.find_tool(tmp_path, "nmcli") is None
    # A writable tool in an earlier directory is not skipped for a later one: nothing runs.
    tool.chmod(0o755)
    _tool(tmp_path / "usr/sbin/nmcli", "echo planted").chmod(0o757)
    assert coexist.find_tool(tmp_path, "nmcli") is None


def test_a_tool_planted_by_another_user_is_never_run() -> None:
    """Attack: an unprivileged user owns a directory in root's PATH, or under the root, and puts
    an ``nmcli`` there; ipmp-boot (root) must run neither."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the attacker is uid 65534, the victim root")
    top = public_tempdir("ipmp-coexist-tools.")
    try:
        ran = top / "ran"
        planted = [top / "path" / "nmcli", top / "root" / "usr" / "bin" / "nmcli"]
        for path in planted:
            path.parent.mkdir(parents=True)
            os.chown(path.parent, NOBODY, NOBODY)
        script = f"#!/bin/sh\necho \"ran as $(id -u)\" >> {ran}\necho 'lo:connected'\n"
        for path in planted:
            done = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                   "sh", "-c", f"cat > {path} && chmod 0755 {path}"], input=script, text=True,
                                  capture_output=True, timeout=30, check=False)
            assert done.returncode == 0 and path.stat().st_uid == NOBODY, done.stderr
        ran.touch(0o666)
        ran.chmod(0o666)  # the planted tool, run as nobody, could write here: proof it ran at all
        old = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{top / 'path'}{os.pathsep}{old}"
        try:
            coexist.run_tool(["nmcli", "-t", "-f", "DEVICE,STATE", "device"])
            coexist.detect({"lo": 1}, root=top / "root")
        finally:
            os.environ["PATH"] = old
        assert ran.read_text() == ""
    finally:
        shutil.rmtree(top)


def test_networkmanager_dropin_appends_and_keeps_earlier_names() -> None:
    text = nm_dropin(["enp1s0f0", "enp1s0f1"])
    assert text.splitlines()[1:] == [
        "[keyfile]", "unmanaged-devices+=interface-name:enp1s0f0;interface-name:enp1s0f1;"]
    assert text.startswith("#")
    again = nm_dropin(["enp1s0f1", "eth2"], existing=text)
    assert again.splitlines()[-1] == (
        "unmanaged-devices+=interface-name:enp1s0f0;interface-name:enp1s0f1;interface-name:eth2;")


def test_networkd_dropin() -> None:
    assert networkd_dropin("enp1s0f0").splitlines()[1:] == [
        "[Match]", "Name=enp1s0f0", "", "[Link]", "Unmanaged=yes"]


def test_managed_says_how_to_reload_and_where_it_writes(tmp_path: Path) -> None:
    nm = Managed("NetworkManager", ("enp1s0f0", "enp1s0f1"))
    nd = Managed("systemd-networkd", ("enp1s0f0",))
    assert nm.reload == "nmcli general reload conf" and nd.reload == "networkctl reload"
    assert nm.dropins(tmp_path) == (tmp_path / "etc/NetworkManager/conf.d/90-ipmp.conf",)
    assert nd.dropins(tmp_path) == (tmp_path / "etc/systemd/network/10-ipmp-enp1s0f0.network",
                                    tmp_path / "etc/systemd/networkd.conf.d/90-ipmp.conf")
    assert nm.release() == "nmcli device set enp1s0f0 managed no; nmcli device set enp1s0f1 managed no"
    assert nd.release() is None


class Service:
    """nmcli or networkctl of a running service that lets go ``polls`` looks after its reload (never: -1)."""

    def __init__(self, managing: str, released: str, polls: int = 1, reload_ok: bool = True) -> None:
        self.managing, self.released, self.polls, self.reload_ok = managing, released, polls, reload_ok
        self.calls: list[list[str]] = []
        self.reloaded = False

    def __call__(self, argv: Sequence[str]) -> str | None:
        self.calls.append(list(argv))
        if "reload" in argv:
            self.reloaded = True
            return "" if self.reload_ok else None
        if argv[0] != "nmcli":
            return None  # networkctl: networkd is not running here
        if self.reloaded and self.polls == 0:
            return self.released
        if self.reloaded and self.polls > 0:
            self.polls -= 1
        return self.managing


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


NM_MANAGING = "lo:unmanaged\nens8:connected\nens9:connecting (getting IP configuration)\n"
NM_RELEASED = "lo:unmanaged\nens8:unmanaged\nens9:unmanaged\n"


def test_hand_over_reloads_then_waits_until_the_service_lets_go() -> None:
    # NetworkManager flushes every address of a device it stops managing: the take-over
    # has it read the drop-in and waits for "unmanaged" before anything is configured.
    nm = Service(NM_MANAGING, NM_RELEASED, polls=2)
    clock = Clock()
    managed = [Managed("NetworkManager", ("ens8", "ens9"))]
    lines, errors = coexist.hand_over(managed, {"ens8": 2, "ens9": 3}, run=nm, sleep=clock.sleep, clock=clock)
    assert errors == []
    assert lines == ["ipmp-boot: ran 'nmcli general reload conf': NetworkManager let go of ens8 ens9"]
    assert nm.calls[0] == ["nmcli", "general", "reload", "conf"]
    assert nm.calls.count(["nmcli", "-t", "-f", "DEVICE,STATE", "device"]) == 3
    assert clock.sleeps == [coexist.RELEASE_POLL] * 2


def test_hand_over_gives_up_when_the_service_keeps_the_nics() -> None:
    nm = Service(NM_MANAGING, NM_RELEASED, polls=-1)
    clock = Clock()
    managed = [Managed("NetworkManager", ("ens8", "ens9"))]
    lines, errors = coexist.hand_over(managed, {"ens8": 2, "ens9": 3}, run=nm, sleep=clock.sleep, clock=clock,
                                      timeout=5.0)
    assert lines == []
    assert errors == ["ipmp-boot: NetworkManager still manages ens8 ens9 5 s after "
                      "'nmcli general reload conf' ('nmcli device show ens8' says why: another file "
                      "of its own may match first).  Nothing was configured."]
    # Bounded: it looked until the time was up, and no longer.
    assert sum(clock.sleeps) == 5.0


def test_hand_over_when_networkctl_reload_fails_says_to_restart() -> None:
    # networkctl reload goes over D-Bus: without a D-Bus daemon (seen on a Debian 13 guest
    # without recommends) networkd never reads the drop-in, and the NICs stay managed.
    listing = "  1 lo   loopback carrier  unmanaged\n  2 ens8 ether    routable configured\n"

    def networkctl(argv: Sequence[str]) -> str | None:
        return None if argv[0] == "nmcli" or "reload" in argv else listing

    clock = Clock()
    lines, errors = coexist.hand_over([Managed("systemd-networkd", ("ens8",))], {"ens8": 2}, run=networkctl,
                                      sleep=clock.sleep, clock=clock, timeout=2.0)
    assert lines == []
    assert errors == ["ipmp-boot: systemd-networkd still manages ens8: 'networkctl reload' failed "
                      "(it needs a D-Bus daemon), so it has not read the drop-in.  Restart it "
                      "('systemctl restart systemd-networkd.service'), then run 'ipmp-boot' again.  "
                      "Nothing was configured."]


def test_hand_over_says_a_failed_reload_of_a_service_that_holds_nothing() -> None:
    nm = Service(NM_MANAGING, NM_RELEASED, polls=0, reload_ok=False)
    clock = Clock()
    lines, errors = coexist.hand_over([Managed("NetworkManager", ("ens8",))], {"ens8": 2}, run=nm,
                                      sleep=clock.sleep, clock=clock)
    # The fake still lets go (it was asked to reload): only the NICs of this Managed are waited for.
    assert errors == []
    assert lines == ["ipmp-boot: 'nmcli general reload conf' failed, and NetworkManager manages none of ens8"]


def test_hand_over_reloads_the_services_netplan_renders_for_and_nothing_for_ifupdown() -> None:
    tools = Service(NM_MANAGING, NM_RELEASED, polls=0)
    clock = Clock()
    found = [Managed("ifupdown", ("ens7",)),
             Managed("netplan", ("ens8",), renderers=("systemd-networkd", "NetworkManager"))]
    lines, errors = coexist.hand_over(found, {"ens7": 1, "ens8": 2}, run=tools, sleep=clock.sleep,
                                      clock=clock)
    assert [c for c in tools.calls if "reload" in c] == [["networkctl", "reload"],
                                                        ["nmcli", "general", "reload", "conf"]]
    assert errors == [] and clock.sleeps == []
    assert lines == ["ipmp-boot: ran 'networkctl reload': systemd-networkd let go of ens8",
                     "ipmp-boot: ran 'nmcli general reload conf': NetworkManager let go of ens8"]
    ifupdown_only = Service(NM_MANAGING, NM_RELEASED)
    assert coexist.hand_over([Managed("ifupdown", ("ens7",))], {"ens7": 1}, run=ifupdown_only) == ([], [])
    assert ifupdown_only.calls == []


def test_networkd_take_over_also_keeps_networkd_off_ipmps_rules(tmp_path: Path) -> None:
    # networkd removes every routing policy rule it did not make when it configures a link it
    # manages, in.mpathd's too (seen on a Debian 13 guest): the take-over turns that off.
    nd = Managed("systemd-networkd", ("ens8", "ens9"))
    conf = tmp_path / "etc/systemd/networkd.conf.d/90-ipmp.conf"
    dry = dropins.take_over_service(tmp_path, nd, write=False)
    assert dry[-1] == (f"# --take-over: would write {conf} (systemd-networkd leaves in.mpathd's routing "
                       "policy rules alone)")
    assert not conf.exists()
    done = dropins.take_over_service(tmp_path, nd, write=True)
    assert done == [
        f"ipmp-boot: wrote {tmp_path}/etc/systemd/network/10-ipmp-ens8.network: systemd-networkd lets go of "
        "ens8 ens9 once it reads it ('networkctl reload')",
        f"ipmp-boot: wrote {tmp_path}/etc/systemd/network/10-ipmp-ens9.network: systemd-networkd lets go of "
        "ens8 ens9 once it reads it ('networkctl reload')",
        f"ipmp-boot: wrote {conf}: systemd-networkd leaves in.mpathd's routing policy rules alone from its "
        "next start"]
    assert conf.read_text().splitlines()[1:] == ["[Network]", "ManageForeignRoutingPolicyRules=no"]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644
    # Written once: the .network files are named again (networkd has not read them), the conf is not.
    again = dropins.take_over_service(tmp_path, nd, write=True)
    assert len(again) == 2 and all("already marks" in line for line in again)
    assert dropins.take_over_service(tmp_path, nd, write=False) == [
        f"# --take-over: {tmp_path}/etc/systemd/network/10-ipmp-{n}.network is written; systemd-networkd has "
        "not read it yet" for n in ("ens8", "ens9")]


def test_sysctl_dropin_lists_the_recipe_per_nic_and_family() -> None:
    text = dropins.sysctl_dropin([
        dropins.DropinNic("enp1s0f0", frozenset({Family.INET}), grouped=True),
        dropins.DropinNic("eth0.100", frozenset({Family.INET, Family.INET6}), grouped=True),
        dropins.DropinNic("eno3", frozenset({Family.INET}), grouped=False),
    ])
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    # Nothing host-wide: conf.all (and default) stay the administrator's.
    assert not [line for line in lines if ".all." in line or "/all/" in line or "default" in line]
    assert lines[:5] == [
        "net.ipv4.conf.enp1s0f0.arp_ignore = 1", "net.ipv4.conf.enp1s0f0.arp_announce = 2",
        "net.ipv4.conf.enp1s0f0.rp_filter = 2", "net.ipv4.conf.enp1s0f0.promote_secondaries = 1",
        "net.ipv4.conf.enp1s0f0.ignore_routes_with_linkdown = 1",
    ]
    assert not any(line.startswith("net.ipv6.conf.enp1s0f0.") for line in lines)
    # A name with a dot keeps the "/" separators, which sysctl.d also reads.
    assert "net/ipv6/conf/eth0.100/keep_addr_on_down = 1" in lines
    assert "net/ipv6/conf/eth0.100/ignore_routes_with_linkdown = 1" in lines
    assert "net/ipv4/conf/eth0.100/arp_ignore = 1" in lines
    # Loose reverse-path filtering is for group members only.
    assert "net.ipv4.conf.eno3.arp_ignore = 1" in lines
    assert not any("eno3" in line and "rp_filter" in line for line in lines)


#: What ipmp-boot 0.1.0 wrote: host-wide lines first.
OLD_DROPIN = """\
# Written by ipmp-boot: IP multipathing (in.mpathd) owns these settings.
# Host-wide: answer ARP only on the NIC that holds the address, loose
# reverse-path filter, keep secondaries, skip routes of links that are down.
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
net.ipv4.conf.all.rp_filter = 2
net.ipv4.conf.all.promote_secondaries = 1
net.ipv4.conf.all.ignore_routes_with_linkdown = 1
net.ipv6.conf.all.ignore_routes_with_linkdown = 1
# qfe0
net.ipv4.conf.qfe0.arp_ignore = 1
net.ipv4.conf.qfe0.rp_filter = 2
net/ipv4/conf/eth0.100/rp_filter = 2
"""


def test_an_old_dropin_loses_its_host_wide_lines() -> None:
    healed = dropins.without_host_wide(OLD_DROPIN)
    assert healed == (
        "# Written by ipmp-boot: IP multipathing (in.mpathd) owns these settings.\n"
        "# qfe0\n"
        "net.ipv4.conf.qfe0.arp_ignore = 1\n"
        "net.ipv4.conf.qfe0.rp_filter = 2\n"
        "net/ipv4/conf/eth0.100/rp_filter = 2\n"
    )
    # Every spelling sysctl.d accepts for an "all" key goes.
    assert dropins.without_host_wide("net/ipv4/conf/all/rp_filter=2\n-net.ipv6.conf.all.x = 1\n"
                                     "  net.ipv4.conf.all.y=1\nnet.ipv4.conf.allx.rp_filter = 2\n") == (
        "net.ipv4.conf.allx.rp_filter = 2\n")
    assert dropins.without_host_wide(healed) == healed


def test_write_text_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "sysctl.d" / "90-ipmp.conf"
    assert dropins.write_text(path, "a = 1\n")
    mtime = path.stat().st_mtime_ns
    assert not dropins.write_text(path, "a = 1\n")
    assert path.stat().st_mtime_ns == mtime
    assert dropins.write_text(path, "a = 2\n") and path.read_text() == "a = 2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["90-ipmp.conf"]
