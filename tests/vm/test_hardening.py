"""The hardened systemd units, proven under systemd in a Debian 13 guest.

The project is installed in the guest as README's "Installing on a host"
says, with ``ipmp-boot.service`` and ``in.mpathd.service`` enabled and a
Solaris group of two NICs (``etc/hostname.qfe0``, ``hostname.qfe1``,
``ipmp/ifmap`` naming the virtio NICs ``ens8`` and ``ens9``); a third NIC on
the same QEMU hub, ``ens10``, sits in a namespace of the guest as the router
that in.mpathd probes and the peer that pings the data addresses.  The
program ``guest_files/hardening/.../hardening_check.py`` then checks, under
the units' sandbox: both units start (in.mpathd reaches READY=1) and the
sandbox is in force (capabilities, no_new_privs, seccomp, read-only mounts);
a carrier cut over QMP ``set_link`` fails over ("NIC failure detected",
"Successfully failed over" in ``journalctl -t in.mpathd``) and back;
``systemctl reload`` rereads ``/etc/default/mpathd``; a ``kill -STOP`` of the
daemon is caught by the watchdog ("Watchdog timeout") and the restarted
daemon keeps every data address; ``systemd-analyze security`` scores both
units, and the same units with their sandbox section removed.

Slow (an image build the first time, then a boot of a few minutes under TCG);
marker ``vm``, run by ``make vm-hardening``.  Needs root, mmdebstrap, QEMU and
the package index; without them it is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.vm import image
from tests.vm.guest import Guest, drive, nic, progress

HERE = Path(__file__).resolve().parent
GUEST_FILES = HERE / "guest_files" / "hardening"
#: ens8 and ens9: the group's NICs (qfe0, qfe1); ens10: the router and peer namespace.
NICS = (nic(8), nic(9), nic(10))
#: The whole guest run, boot to power-off (measured about 3 minutes under TCG here).
RUN_TIMEOUT = 900.0
ENABLE = "systemctl enable ipmp-boot.service in.mpathd.service ipmp-vm-net.service ipmp-vm-check.service"
#: Every check the guest program makes: one missing from the report is a failure too.
EXPECTED_CHECKS = 42


def test_hardened_units_under_systemd_in_a_debian_guest(tmp_path: Path, vm_tools: None) -> None:
    log = progress
    timings: dict[str, float] = {}
    started = time.monotonic()
    disk = image.wheel_disk(tmp_path, image.guest_tree(GUEST_FILES), [ENABLE], timings, log=log)

    with Guest(disk, NICS, log=log, keep_logs=tmp_path / "logs") as guest:
        report = drive(guest, RUN_TIMEOUT)
        console = guest.console()
    timings["whole check, build to power-off"] = time.monotonic() - started
    summary = report.summary(timings)
    print(summary)
    report.assert_passed(summary, console, expected_checks=EXPECTED_CHECKS, links=True)
