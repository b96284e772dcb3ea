"""ipmp next to NetworkManager, and next to systemd-networkd, in real Debian 13 guests, across a reboot.

One guest per network manager, each enabled and configured as an admin left
it before ipmp came: a static address and gateway on ``ens8``, DHCP on
``ens9`` (an e1000 NIC: a second driver beside virtio), a static address on
the management NIC ``ens11``.  The router and peer namespace sits on
``ens10``, moved there before ``network-pre.target`` so the manager never
sees it, with a capture of every DHCP request on the QEMU hub from early boot
(``sniff.py``).  The program in the guest
(``guest_files/coexist/common/.../coexist_check.py``) installs the Debian
package with apt from the local repository (as test_package.py), writes the
Solaris files (group ``prod`` of ``hme0`` = ens8 and ``hme1`` = ens9 with
test addresses), and checks that ``ipmp-boot`` refuses with its message and
changes nothing; ``ipmp-boot --take-over``, which has the manager read its
drop-ins and let go before it configures the NICs; then
**reboots**, and checks that the addresses were there at
``network-online.target``, in.mpathd is READY, the peer reaches every data
address, the manager reports ens8 and ens9 unmanaged (and keeps ens11), and
nothing of the manager's is on them: no address, no route, no DHCP request
on the hub, no activation in its journal, ipmp's policy rules in place; and
when the manager configures its own NIC again (``nmcli connection up``,
``networkctl reconfigure``) ipmp's rules are never missing at any look of a
sampler (networkd removes every rule it did not make unless told not to).
Then carrier cuts over QMP on the e1000 and on the virtio NIC (failover,
``journalctl -t in.mpathd``, failback), and a silent failure: tc in the
router namespace drops every frame of ens8 while its carrier stays up, which
only the probes detect.

Marker ``vm`` (``make vm-test``).  Needs root, mmdebstrap, QEMU, the Debian
toolchain of ``make deb`` and the package mirror; without them it is
skipped, except under CI, where it fails.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.vm import image
from tests.vm.guest import Guest, drive, nic, progress

HERE = Path(__file__).resolve().parent
FILES = HERE / "guest_files"
GUEST_FILES = FILES / "coexist"
#: What this test shares with test_package.py (the apt source, its phases and checks, the unit
#: that records the addresses at network-online.target) and test_hardening.py (net-setup).
SHARED = {
    "/etc/apt/sources.list.d/ipmp-local.sources": FILES / "package",
    "/etc/systemd/system/ipmp-vm-online.service": FILES / "package",
    "/usr/local/libexec/ipmp-vm/package_check.py": FILES / "package",
    "/usr/local/libexec/ipmp-vm/net-setup": FILES / "hardening",
}
#: The package's Depends that the essential set lacks (test_package.DEB_DEPENDS): the guest is offline.
DEB_DEPENDS = ("python3-click", "python3-rich", "python3-ply")
#: ens8: virtio, hme0; ens9: e1000, hme1; ens10: the router and peer namespace; ens11: management.
NICS = (nic(8), nic(9, model="e1000"), nic(10), nic(11))
#: Two boots, an apt install, the checks (about 5 minutes under TCG here).
RUN_TIMEOUT = 1200.0
PHASES = ("install", "boot1")
#: The manager under test -> (the base's extra packages and its family name, the commands).
MANAGERS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    # network-manager enables NetworkManager.service (and its wait-online) itself.
    "networkmanager": (("network-manager",), "coexist-nm", ("systemctl enable NetworkManager.service",)),
    # systemd-networkd is part of trixie's systemd.  dbus: systemd recommends it, so a default
    # install has it, and 'networkctl reload' needs it (without it, ipmp-boot --take-over says
    # to restart networkd: tests/unit/test_coexist.py).
    "networkd": (("dbus",), "coexist-networkd", ("systemctl enable systemd-networkd.service",)),
}
COMMANDS = (
    # The guest's only package source is the local repository.
    "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources",
    "systemctl enable ipmp-vm-net.service ipmp-vm-sniff.service ipmp-vm-online.service "
    "ipmp-vm-coexist.service",
)
#: Every check the guest program makes (install 17 for NetworkManager, 19 for networkd, which
#: has three drop-ins; the boot after it 49): one missing is a failure too.
EXPECTED_CHECKS = 66


def _files(manager: str, first: str, second: str) -> dict[str, image.GuestFile]:
    files = image.guest_tree(GUEST_FILES / "common")
    for path, spec in image.tree_files(GUEST_FILES / manager).items():
        # NetworkManager ignores a keyfile that others may read: an admin's are 0600.
        files[path] = image.GuestFile(spec.text, 0o600) if path.endswith(".nmconnection") else spec
    files.update({guest: image.guest_file(tree / guest.lstrip("/")) for guest, tree in SHARED.items()})
    files["/etc/ipmp-vm.json"] = image.GuestFile(json.dumps({"first": first, "second": second,
                                                             "manager": manager}) + "\n")
    return files


@pytest.mark.parametrize("manager", sorted(MANAGERS))
def test_network_manager_lets_go_of_the_group_after_take_over_and_reboot(
        manager: str, debs: tuple[str, str, list[Path], float], tmp_path: Path) -> None:
    log = progress
    first, second, built, seconds = debs
    packages, family, commands = MANAGERS[manager]
    timings: dict[str, float] = {"make deb (once per pytest run)": seconds}
    started = time.monotonic()
    # The tree's version only: nothing here upgrades.
    repo = image.apt_repository([d for d in built if d.name == f"ipmp_{first}_all.deb"], tmp_path / "repo",
                                log=log)
    mark = time.monotonic()
    base = image.build_base(suite="trixie", packages=(*image.BASE_PACKAGES, *DEB_DEPENDS, *packages),
                            variant=family, log=log)
    timings["base image (mmdebstrap, or the cache)"] = time.monotonic() - mark
    mark = time.monotonic()
    disk = image.assemble(base, None, _files(manager, first, second), (*COMMANDS, *commands),
                          trees={"/srv/ipmp-apt": repo}, log=log, keep=6)
    timings["disk (or the cache)"] = time.monotonic() - mark

    with Guest(disk, NICS, log=log, keep_logs=tmp_path / "logs", reboot=True) as guest:
        report = drive(guest, RUN_TIMEOUT)
        console = guest.console()
    timings[f"whole test ({manager}), image to power-off"] = time.monotonic() - started
    for hello in report.of_kind("hello"):
        timings[f"QEMU start to the check program, phase {hello.get('phase')}"] = float(hello["at"])
    summary = report.summary(timings)
    print(summary)

    report.assert_passed(summary, console, expected_checks=EXPECTED_CHECKS, phases=PHASES, links=True)
