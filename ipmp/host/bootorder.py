"""What ``ipmp-boot-generator`` writes: ipmp-boot.service waits, a bounded time, for its NICs.

A systemd generator (systemd.generator(7)): systemd runs it early at boot,
and again at every ``systemctl daemon-reload``, as ``ipmp-boot-generator
NORMAL EARLY LATE``.  It reads ``/etc/hostname.*``, ``/etc/hostname6.*``
(the names ``ipmp-boot`` takes: ``hostfiles.find_hostname_files``) and
``/etc/ipmp/ifmap`` (Solaris name -> Linux NIC) and writes, in NORMAL, the
drop-in ``ipmp-boot.service.d/50-ipmp-devices.conf``, so that ``ipmp-boot``
configures each NIC once udev has announced it under its final name,
instead of racing a driver that loads late (the boot otherwise finds no NIC
and moves its addresses away, §6.5).  How, depends on systemd:

systemd 251 and later (``$SYSTEMD_SCOPE`` set, as those run generators)
    ``ExecStartPre=-udevadm wait --timeout=DEVICE_TIMEOUT /sys/class/net/NIC
    ...``: when ipmp-boot's turn comes, it waits for the NICs that are not
    there yet, ``DEVICE_TIMEOUT`` s at most, from that moment.
older systemd
    ``Wants=`` and ``After=`` ``sys-subsystem-net-devices-NIC.device``, and
    ``JobRunningTimeoutSec=DEVICE_TIMEOUT`` in a drop-in of each device unit
    (what fstab-generator writes for ``x-systemd.device-timeout=``).

Why not the device units everywhere (measured on a Debian 13 guest,
tests/vm/test_boot_order.py): systemd queues a device's start job with the
boot transaction and runs it at once, so ``JobRunningTimeoutSec=`` counts
from the start of the boot, not from ipmp-boot's turn.  A slow boot spends
the budget before any NIC can be late: there the coldplugged ens8 was
announced 26-36 s after the wait began, and a NIC hot-plugged 5 s after
ipmp-boot's other dependencies were done found its job timed out already.
A server whose udev works through many disks first is such a boot.  Either
way the wait ends: ``ipmp-boot`` then runs (the ``-`` prefix, ``Wants=`` not
``Requires=``), configures the NICs that are there and moves the missing
NIC's data addresses to another member of its group, as Solaris did (§6.5).
Where udev does not run (``/sys`` read-only: a container) nothing is
written, as PID 1 then has no device units to wait for either.

A NIC is named by its Linux name: through the map when a file uses a
Solaris name, as is otherwise.  Device unit names are the path
``/sys/subsystem/net/devices/NIC`` escaped as ``systemd-escape --path``
does (udev's 99-systemd.rules gives every net device that alias).

Rules of a generator, kept here: it writes nothing but its output
directory (no ``/run/ipmp``, no log file); it is quick (no netlink, no
kernel, no other program run: two directory listings, one small file and a
``statvfs`` of /sys); and it never fails the boot.  A bad map line or a name
that cannot be a Linux NIC is skipped with a message on standard error,
which systemd passes to the kernel log, and the exit status is 0 whatever
happens (2 only for a wrong command line, which is not systemd's).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ipmp.host import hostfiles, ifmap

__all__ = [
    "DEVICE_TIMEOUT",
    "device_unit",
    "dropins",
    "escape_path",
    "exec_argument",
    "generate",
    "nics_to_wait_for",
    "udev_runs",
    "udevadm_wait_works",
]

PROG = "ipmp-boot-generator"
UNIT = "ipmp-boot.service"
#: How long the boot waits for a NIC its files name (s).  A NIC whose driver
#: loads late (firmware, a slow bus) is there within seconds; one that is
#: broken or removed should not hold ``network-online.target`` for systemd's
#: 90 s before the §6.5 rescue moves its addresses.  A drop-in of the
#: administrator's, sorting after ours, can change it.
DEVICE_TIMEOUT = 30
#: Where udev shows a net device under its final name; ``udevadm wait`` takes /sys paths.
_SYS_CLASS_NET = "/sys/class/net"
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


def exec_argument(word: str) -> str:
    """``word`` as one argument of an ``Exec*=`` line: quoted, with nothing systemd would expand.

    A Linux interface name may hold ``%`` (a specifier), ``$`` (a variable),
    quotes, backslashes or ``;``; inside double quotes with those escaped
    (systemd.service(5), "Command lines") it reaches the program as it is.
    """
    out: list[str] = []
    for byte in word.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "%":
            out.append("%%")
        elif char == "$":
            out.append("$$")
        elif 0x20 < byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def udev_runs(sys_path: str = "/sys") -> bool:
    """Whether udev can run here: not with ``/sys`` read-only, as in a container.

    systemd-udevd.service has ``ConditionPathIsReadWrite=/sys`` (systemd's
    container interface mounts it read-only), and PID 1 then has no device
    units either.  Without udev no NIC is ever "initialized": ``udevadm wait``
    would hold every boot for the whole timeout, so nothing is written.
    """
    try:
        return not os.statvfs(sys_path).f_flag & os.ST_RDONLY
    except OSError:
        return True  # cannot tell: wait, bounded, rather than race


def udevadm_wait_works(environ: Mapping[str, str]) -> bool:
    """Whether the systemd running the generator has ``udevadm wait`` (251 and later).

    systemd 251 is also the first to give generators ``$SYSTEMD_SCOPE``
    (systemd.generator(7)): no program needs to be run to know.
    """
    return bool(environ.get("SYSTEMD_SCOPE"))


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


def dropins(nics: Sequence[str], timeout: int = DEVICE_TIMEOUT, *, udevadm_wait: bool = True
            ) -> dict[str, str]:
    """The files to write, by path relative to the output directory.

    ``udevadm_wait``: the wait runs as ipmp-boot's ``ExecStartPre=`` (systemd
    251 and later); otherwise the device units are waited for (see the module).
    """
    if not nics:
        return {}
    if udevadm_wait:
        paths = " ".join(exec_argument(f"{_SYS_CLASS_NET}/{n}") for n in nics)
        return {f"{UNIT}.d/50-ipmp-devices.conf": (
            f"{_HEADER}"
            f"# ipmp-boot configures these NICs: it waits for those not there yet, {timeout} s at most\n"
            "# from its own start; then it goes on without them (\"-\": the wait's end is no failure).\n"
            f"[Service]\nExecStartPre=-udevadm wait --timeout={timeout} {paths}\n")}
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


def generate(outdir: Path, root: Path, environ: Mapping[str, str], warn: list[str]) -> None:
    """Write the drop-ins for the hostname files under ``root`` into ``outdir``; ``warn``: what is skipped.

    Raises:
        OSError, IpmpError: a file cannot be read or written (the shell says
            so and still exits 0: a generator never fails the boot).
    """
    nics = _read(root, warn) if udev_runs(str(root / "sys")) else []
    _write(outdir, dropins(nics, udevadm_wait=udevadm_wait_works(environ)))
