"""Solaris 11 ``ipadm`` on a real boot: a persistent IPMP interface survives reboots in a Debian guest.

The project is installed as README's "Installing on a host" says, with
``ipmp-boot.service`` and ``in.mpathd.service`` enabled, ``/etc/ipmp/ifmap``
naming the virtio NICs ``ens8`` and ``ens9`` ``net0`` and ``net1`` (Solaris 11
names) and no hostname file.  The program
``guest_files/ipadm/.../ipadm_check.py`` runs at every boot: it makes the
group with ``ipadm`` as Oracle's guide does (two persistent data addresses,
one temporary), reboots, checks that ``ipmp-boot`` made the persistent ones
again from ``/etc/ipadm/ipadm.conf`` and not the temporary one, cuts net0's
carrier over QMP (its address is re-bound to net1) and restores it (one comes
back), deletes one address, reboots and checks it stayed deleted.  The peer
that pings is the namespace on ``ens10`` of test_hardening.

Marker ``vm``.  Needs root, mmdebstrap, QEMU and the package index; without
them it is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.vm import image
from tests.vm.guest import Guest, drive, nic, progress

HERE = Path(__file__).resolve().parent
GUEST_FILES = HERE / "guest_files" / "ipadm"
HARDENING_FILES = HERE / "guest_files" / "hardening"
#: The router/peer namespace is test_hardening's, shared.
SHARED = ("/etc/systemd/system/ipmp-vm-net.service", "/usr/local/libexec/ipmp-vm/net-setup")
NICS = (nic(8), nic(9), nic(10))
#: Three boots and the checks under TCG.
RUN_TIMEOUT = 1500.0
ENABLE = "systemctl enable ipmp-boot.service in.mpathd.service ipmp-vm-net.service ipmp-vm-ipadm.service"
PHASES = ("configure", "boot1", "boot2")
#: configure 12, first reboot 20, second reboot 9: one missing is a failure too.
EXPECTED_CHECKS = 41


def test_ipadm_ipmp_interface_survives_reboots(tmp_path: Path, vm_tools: None) -> None:
    log = progress
    timings: dict[str, float] = {}
    started = time.monotonic()
    files = image.guest_tree(GUEST_FILES)
    files.update({guest: image.guest_file(HARDENING_FILES / guest.lstrip("/")) for guest in SHARED})
    disk = image.wheel_disk(tmp_path, files, [ENABLE], timings, log=log)

    with Guest(disk, NICS, log=log, keep_logs=tmp_path / "logs", reboot=True) as guest:
        report = drive(guest, RUN_TIMEOUT)
        console = guest.console()
    timings["whole test, build to power-off"] = time.monotonic() - started
    for hello in report.of_kind("hello"):
        timings[f"QEMU start to the check program, phase {hello.get('phase')}"] = float(hello["at"])
    summary = report.summary(timings)
    print(summary)
    report.assert_passed(summary, console, expected_checks=EXPECTED_CHECKS, phases=PHASES, links=True)
