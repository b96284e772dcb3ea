"""The boot waits for a NIC that comes late, and goes on without one that never comes: a real boot.

``ipmp-boot-generator`` (ipmp/host/bootorder.py) makes ``ipmp-boot.service``
wait for the NICs the hostname files name, ``DEVICE_TIMEOUT`` s at most from
its turn in the boot (under this systemd, 257: ``ExecStartPre=-udevadm
wait``).  Here a Debian 13 guest proves it: the project installed from the
wheel as README says, the generator linked into
``/etc/systemd/system-generators`` as ``ipmp-boot-generator(8)`` says for a
wheel, Solaris files for a group of two NICs (``hostname.hme0``,
``hostname.hme1``, ``/etc/ipmp/ifmap`` naming ``ens8`` and ``ens9``), the
router and the peer in a namespace on ``ens10``.  Two guests of the same disk:

1. **late**: ens9 is not plugged at start.  The check program in the guest
   (``guest_files/boot_order/.../boot_order_check.py``) is ordered after
   exactly what ipmp-boot is ordered after, so its unit's first message
   (``early``, from a shell) means "ipmp-boot could start now but for its
   NICs"; the host then waits
   ``HOTPLUG_DELAY`` s and hot-plugs ens9 (QMP ``device_add``).  ipmp-boot
   must be waiting when the device appears, configure once udev is done
   with it, rescue nothing and put every address on its own NIC.
2. **never**: ens9 is never plugged.  ipmp-boot must configure
   ``DEVICE_TIMEOUT`` s after its wait began (not systemd's 90 s), move
   hme1's data address to hme0 (Solaris §6.5), and the boot must not end in
   emergency mode (ipmp-boot.service itself fails: exit 1 for the NIC that
   failed to plumb, as ipmp-boot(8) says).

In both: the generator's output is in ``/run/systemd/generator`` and in
force, no ordering cycle, network-online.target reached after ipmp-boot,
in.mpathd active, the peer reaches every data address.

What the first real boots showed, and what the checks keep fixed: the
device units' ``JobRunningTimeoutSec=`` (the generator's first form) counts
from the start of the boot, and this slow boot spent it before ens9 came;
and a map line naming a NIC Linux does not have made ipmp-boot refuse the
whole map, leaving no address at all (tests/netns/test_boot_absent_mapped_nic.py).

The wheel rather than the Debian package: the disk is then the cached base
plus a pip install (seconds, no .deb build and no apt in the guest), and it
proves the wheel's documented generator installation, which no other test
boots; the package's own placement of the generator is checked by
tests/test_deb.py and booted by test_package.py.

Marker ``vm``; needs root, mmdebstrap, QEMU and the package index; without
them it is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ipmp.host.bootorder import DEVICE_TIMEOUT
from tests.vm import image
from tests.vm.guest import Guest, drive, nic, progress

HERE = Path(__file__).resolve().parent
GUEST_FILES = HERE / "guest_files" / "boot_order"
#: ens8 (hme0) always there; ens9 (hme1) hot-plugged late or never; ens10 the router and peer.
NICS = (nic(8), nic(9, plugged=False), nic(10))
#: The wheel's generator, installed as ipmp-boot-generator(8) says for a virtualenv.
COMMANDS = (
    "mkdir -p /etc/systemd/system-generators",
    "ln -s /opt/ipmp/bin/ipmp-boot-generator /etc/systemd/system-generators/ipmp-boot-generator",
    "systemctl enable ipmp-boot.service in.mpathd.service ipmp-vm-net.service ipmp-vm-boot-order.service",
)
#: From the guest's early message to the hot-plug: long enough that the NIC is
#: plainly late (ipmp-boot is waiting by then), short enough that it comes well
#: inside DEVICE_TIMEOUT, which counts from ipmp-boot's turn, on a slow machine too.
HOTPLUG_DELAY = 5.0
#: QEMU start to the guest's early message (measured 23-89 s under TCG, quiet to loaded).
EARLY_TIMEOUT = 300.0
#: A whole guest run, QEMU start to power-off (measured 2-3 minutes under TCG here).
RUN_TIMEOUT = 600.0
#: Every check each plan makes: one missing from the report is a failure too.
EXPECTED_CHECKS = {"late": 17, "never": 16}


@dataclass(frozen=True)
class Prepared:
    disk: image.Disk
    timings: dict[str, float]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, vm_tools: None) -> Iterator[Prepared]:
    timings: dict[str, float] = {}
    mark = time.monotonic()
    base = image.build_base(log=progress)
    timings["base image (mmdebstrap, or the cache)"] = time.monotonic() - mark
    mark = time.monotonic()
    dist = image.python_dist(tmp_path_factory.mktemp("dist"), log=progress)
    timings["wheel and dependencies"] = time.monotonic() - mark
    mark = time.monotonic()
    disk = image.assemble(base, dist, image.guest_tree(GUEST_FILES), COMMANDS, log=progress)
    timings["disk (install into the image, mkfs; or the cache)"] = time.monotonic() - mark
    yield Prepared(disk, timings)


def _until_early(guest: Guest, timeout: float) -> list[dict[str, Any]]:
    """The guest's messages up to its first, ``early`` (bounded; the guest must still run)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and guest.alive:
        for msg in guest.messages():
            msg["at"] = round(time.monotonic() - guest.started_at, 2)
            seen.append(msg)
            if msg.get("kind") == "early":
                return seen
        time.sleep(0.1)
    raise AssertionError(f"no early message from the guest in {timeout:g} s (alive: {guest.alive})\n"
                         f"--- console:\n{guest.console()}")


def _boot(prepared: Prepared, plan: str, tmp_path: Path) -> None:
    timings = dict(prepared.timings)
    # The plan and the generator's timeout reach the check program on the kernel command line.
    cmdline = [f"ipmpvm.plan={plan}", f"ipmpvm.device_timeout={DEVICE_TIMEOUT}"]
    with Guest(prepared.disk, NICS, cmdline=cmdline, log=progress, keep_logs=tmp_path / "logs") as guest:
        early = _until_early(guest, EARLY_TIMEOUT)
        early_at = time.monotonic() - guest.started_at
        if plan == "late":
            time.sleep(HOTPLUG_DELAY)
            guest.device_add("ens9")
            progress(f"{time.monotonic() - guest.started_at:7.1f} s  hot-plugged ens9 "
                     f"({HOTPLUG_DELAY:g} s after the guest's early message)")
        report = drive(guest, RUN_TIMEOUT)
        report.messages[:0] = early
        report.boot_seconds = early_at
        console = guest.console()
    summary = report.summary(timings, first="QEMU start to the guest's early message")
    print(summary)
    hello = report.of_kind("hello")
    assert hello and hello[0].get("plan") == plan, f"{hello}\n{summary}"
    report.assert_passed(summary, console, expected_checks=EXPECTED_CHECKS[plan])


def test_boot_waits_for_a_nic_that_comes_late(prepared: Prepared, tmp_path: Path) -> None:
    _boot(prepared, "late", tmp_path)


def test_boot_goes_on_without_a_nic_that_never_comes(prepared: Prepared, tmp_path: Path) -> None:
    assert DEVICE_TIMEOUT < 90  # else "not systemd's 90 s" would prove nothing
    _boot(prepared, "never", tmp_path)
