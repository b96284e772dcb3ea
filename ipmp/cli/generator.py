"""``ipmp-boot-generator``: order ``ipmp-boot.service`` after the NICs its files name.

A systemd generator (systemd.generator(7)): systemd runs it early at boot,
and again at every ``systemctl daemon-reload``, as ``ipmp-boot-generator
NORMAL EARLY LATE``.  It reads ``/etc/hostname.*``, ``/etc/hostname6.*``
(the names ``ipmp-boot`` takes: ``hostfiles.find_hostname_files``) and
``/etc/ipmp/ifmap`` (Solaris name -> Linux NIC) and writes, in NORMAL:

``ipmp-boot.service.d/50-ipmp-devices.conf``
    ``Wants=`` and ``After=`` ``sys-subsystem-net-devices-NIC.device`` for
    every NIC: ``ipmp-boot`` starts once udev has announced each NIC under its
    final name, instead of racing a driver that loads late (the boot
    otherwise finds no NIC and moves its addresses away, §6.5).
``sys-subsystem-net-devices-NIC.device.d/50-ipmp-timeout.conf``
    ``JobRunningTimeoutSec=`` ``DEVICE_TIMEOUT``: how long the boot waits for
    a NIC that does not come (systemd's own default is 90 s).  This is what
    ``x-systemd.device-timeout=`` does for a file system (fstab-generator
    writes the same drop-in).  The dependency is ``Wants=``, not
    ``Requires=``: when the wait ends, ``ipmp-boot`` still runs, configures
    the NICs that are there and moves the missing NIC's data addresses to
    another member of its group, as Solaris did (§6.5).

A NIC is named by its Linux name: through the map when a file uses a
Solaris name, as is otherwise.  The unit name is the path
``/sys/subsystem/net/devices/NIC`` escaped as ``systemd-escape --path``
does (udev's 99-systemd.rules gives every net device that alias).

Rules of a generator, kept here: it writes nothing but its output
directory (no ``/run/ipmp``, no log file); it is quick (no netlink, no
kernel, only two directory listings and one small file); and it never
fails the boot.  A bad map line or a name that cannot be a Linux NIC is
skipped with a message on standard error, which systemd passes to the
kernel log, and the exit status is 0 whatever happens (2 only for a wrong
command line, which is not systemd's).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = ["DEVICE_TIMEOUT", "device_unit", "dropins", "escape_path", "main", "nics_to_wait_for"]

PROG = "ipmp-boot-generator"
UNIT = "ipmp-boot.service"
#: How long the boot waits for a NIC its files name (s).  A NIC whose driver
#: loads late (firmware, a slow bus) is there within seconds; one that is
#: broken or removed should not hold ``network-online.target`` for systemd's
#: 90 s before the §6.5 rescue moves its addresses.  A drop-in of the
#: administrator's, sorting after ours, can change it.
DEVICE_TIMEOUT = 30
#: Linux interface names: at most IFNAMSIZ - 1 bytes, no "/" and no blank
#: (dev_valid_name in net/core/dev.c), and not "." or "..".
_IFNAMSIZ = 16
_HEADER = "# Written by ipmp-boot-generator from the hostname files and /etc/ipmp/ifmap.\n"
#: systemd's unit name escaping keeps these (unit-name.c, VALID_CHARS minus "-" and "\\").
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")


def escape_path(path: str) -> str:
    """``systemd-escape --path PATH``: "/" becomes "-", other bytes outside [A-Za-z0-9:_.] ``\\xNN``.

    Leading and trailing slashes are dropped and a leading "." is escaped too.
    """
    trimmed = path.strip("/")
    if not trimmed:
        return "-"
    out: list[str] = []
    for index, byte in enumerate(trimmed.encode("utf-8", "surrogateescape")):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif char in _KEPT and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def device_unit(nic: str) -> str:
    return escape_path(f"/sys/subsystem/net/devices/{nic}") + ".device"


def _valid_linux_name(name: str) -> bool:
    size = len(name.encode("utf-8", "surrogateescape"))
    return 0 < size < _IFNAMSIZ and name not in (".", "..") and not any(
        c == "/" or c == ":" or c.isspace() for c in name)


def nics_to_wait_for(
    file_names: Iterable[str], ifmap: Mapping[str, str], warn: list[str]
) -> list[str]:
    """The Linux NICs the hostname files name, in order, once each; ``warn`` gets what is skipped.

    ``file_names``: the interface part of each file name (``hme0``,
    ``hme0:1``); ``ifmap``: Solaris name -> Linux name.
    """
    nics: list[str] = []
    for name in file_names:
        nic = name.partition(":")[0]  # hostname.hme0:1 configures hme0
        nic = ifmap.get(nic, nic)
        if not _valid_linux_name(nic):
            warn.append(f"{PROG}: {nic!r}: not a Linux interface name; not waited for")
            continue
        if nic not in nics:
            nics.append(nic)
    return nics


def dropins(nics: Sequence[str], timeout: int = DEVICE_TIMEOUT) -> dict[str, str]:
    """The files to write, by path relative to the output directory."""
    if not nics:
        return {}
    units = [device_unit(n) for n in nics]
    lines = [_HEADER, "[Unit]\n"]
    lines += [f"Wants={u}\n" for u in units]
    lines += [f"After={u}\n" for u in units]
    files = {f"{UNIT}.d/50-ipmp-devices.conf": "".join(lines)}
    for unit in units:
        files[f"{unit}.d/50-ipmp-timeout.conf"] = (
            f"{_HEADER}# How long the boot waits for this NIC before {UNIT} goes on without it.\n"
            f"[Unit]\nJobRunningTimeoutSec={timeout}s\n")
    return files


def _read(root: Path, warn: list[str]) -> list[str]:
    from ipmp import hostfiles, ifmap

    entries, errors = ifmap.read_ifmap(root)
    warn.extend(f"{PROG}: {e} (line skipped)" for e in errors)
    mapping = {e.solaris: e.linux for e in entries}
    names = [f.ifname for f in hostfiles.find_hostname_files(root)]
    return nics_to_wait_for(names, mapping, warn)


def _write(outdir: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = outdir / relative
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
            os.fchmod(out.fileno(), 0o644)
            out.write(text)


def run(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """The generator's work; its exit status (0 unless the command line is wrong)."""
    if list(argv) == ["--version"]:
        from ipmp import __version__

        print(f"{PROG} {__version__}")
        return 0
    if len(argv) not in (1, 3) or any(not a or a.startswith("-") for a in argv):
        print(f"usage: {PROG} NORMAL-DIR [EARLY-DIR LATE-DIR]", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    warn: list[str] = []
    try:
        from ipmp.hostfiles import root_path

        nics = _read(root_path(None, environ), warn)
        _write(outdir, dropins(nics))
    except Exception as err:  # whatever it is: a generator must never fail the boot
        warn.append(f"{PROG}: {err}; {UNIT} is not ordered after its NICs")
    for line in warn:
        print(line, file=sys.stderr)
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
