"""The Debian package on a real boot: installed with apt in a Debian 13 guest, then rebooted.

The host builds the package (``tools/build-deb``, as ``make deb``) twice: the
tree's version and a newer one (``<version>+1``) for the upgrade.  Both go
into a flat apt repository (``image.apt_repository``) baked into the image
at ``/srv/ipmp-apt``, the guest's only package source (it has no route out).
The base has the package's Debian dependencies (python3-click, python3-rich,
python3-ply) from mmdebstrap's package list, so apt resolves them offline.
The project itself is not in the image: the guest installs it.

The same .deb is tested on Debian 13 (trixie) and Debian 12 (bookworm),
each with its own cached base.  The program in the guest (``guest_files/package/.../package_check.py``, run at
every boot) installs the .deb with ``apt-get install ./ipmp_<v>_all.deb``,
writes the Solaris files (``hostname.hme0``/``hme1`` in group ``prod``,
``hosts``, ``netmasks``, ``defaultrouter``, ``ipmp/ifmap`` naming ``ens8`` and
``ens9``), enables the units and **reboots**; after the first and the second
reboot it checks that the addresses were there when ``network-online.target``
was reached and that in.mpathd is active (READY) and that the peer (a
namespace on ``ens10``, as in test_hardening) reaches every data address;
after the second: carrier cut over QMP and back, ``kill -9`` of the daemon,
``if_mpadm -d/-r``, and an ``apt-get install`` of the newer build while the
peer pings.  QEMU runs without ``-no-reboot`` (``Guest(reboot=True)``): a
reboot in the guest is a reset of the same machine and disk.

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
REPO = HERE.parents[1]
GUEST_FILES = HERE / "guest_files" / "package"
HARDENING_FILES = HERE / "guest_files" / "hardening"
#: The router/peer namespace is test_hardening's, shared.
SHARED = ("/etc/systemd/system/ipmp-vm-net.service", "/usr/local/libexec/ipmp-vm/net-setup")
#: The package's Depends (debian/control) that the essential set lacks, preinstalled: the guest is offline.
DEB_DEPENDS = ("python3-click", "python3-rich", "python3-ply")
NICS = (nic(8), nic(9), nic(10))
#: Three boots, an apt install, the checks (measured about 6 minutes under TCG here).
RUN_TIMEOUT = 1800.0
COMMANDS = (
    # The guest's only source is the local repository.
    "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources",
    "systemctl enable ipmp-vm-net.service ipmp-vm-online.service ipmp-vm-pkg.service",
)
PHASES = ("install", "boot1", "boot2")
#: Every check the guest program makes (install 14, each reboot 6, then 24): one missing is a failure too.
EXPECTED_CHECKS = 50
#: Debian 13 first, then Debian 12: the same .deb (arch all) on both.
SUITES = ("trixie", "bookworm")


def _files(first: str, second: str) -> dict[str, image.GuestFile]:
    files = image.guest_tree(GUEST_FILES)
    files.update({guest: image.guest_file(HARDENING_FILES / guest.lstrip("/")) for guest in SHARED})
    files["/etc/ipmp-vm.json"] = image.GuestFile(json.dumps({"first": first, "second": second}) + "\n")
    return files


@pytest.mark.parametrize("suite", SUITES)
def test_debian_package_installed_with_apt_survives_reboots(
        suite: str, debs: tuple[str, str, list[Path], float], tmp_path: Path) -> None:
    log = progress
    first, second, files, seconds = debs
    timings: dict[str, float] = {"make deb, twice (once per pytest run)": seconds}
    started = time.monotonic()
    repo = image.apt_repository(files, tmp_path / "repo", log=log)
    mark = time.monotonic()
    base = image.build_base(suite=suite, packages=(*image.BASE_PACKAGES, *DEB_DEPENDS), variant="debpkg",
                            log=log)
    timings["base image (mmdebstrap, or the cache)"] = time.monotonic() - mark
    mark = time.monotonic()
    disk = image.assemble(base, None, _files(first, second), COMMANDS, trees={"/srv/ipmp-apt": repo},
                          log=log, keep=4)
    timings["disk (or the cache)"] = time.monotonic() - mark

    with Guest(disk, NICS, log=log, keep_logs=tmp_path / "logs", reboot=True) as guest:
        report = drive(guest, RUN_TIMEOUT)
        console = guest.console()
    timings[f"whole test ({suite}), image to power-off"] = time.monotonic() - started
    for hello in report.of_kind("hello"):
        timings[f"QEMU start to the check program, phase {hello.get('phase')}"] = float(hello["at"])
    summary = report.summary(timings)
    print(summary)

    report.assert_passed(summary, console, expected_checks=EXPECTED_CHECKS, phases=PHASES, links=True)
