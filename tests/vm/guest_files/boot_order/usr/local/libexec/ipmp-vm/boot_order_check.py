"""In the guest: did ipmp-boot.service wait for its NICs?  The report goes to the host on ttyS1.

Run by ``ipmp-vm-boot-order.service`` as early as ipmp-boot.service itself
could start (standard library only: the guest's own python3).  The plan is
on the kernel command line, ``ipmpvm.plan=late`` or ``ipmpvm.plan=never``:

late
    ens9 (hme1) is not there at boot; the host hot-plugs it a few seconds
    after the unit's first message (``early``).  ipmp-boot must be waiting when the
    device appears, configure once udev is done with it, put every address
    on its own NIC, and rescue nothing.
never
    ens9 never comes.  ipmp-boot must configure once its wait timed out
    (ipmp-boot-generator's ``udevadm wait --timeout=``, DEVICE_TIMEOUT s
    from ipmp-boot's turn, not systemd's 90 s), and move hme1's data address
    to hme0 as Solaris' network/physical did (§6.5); the boot does not end
    in emergency mode.

Both: the generator's drop-in is in /run/systemd/generator and in force,
no ordering cycle, ipmp-boot exited before network-online.target was
reached, in.mpathd is active, the peer (a namespace on ens10) reaches every
data address.  Times are systemd's monotonic timestamps, read with
``systemctl show`` once the boot is over; this program's own clock is
CLOCK_MONOTONIC too (``time.monotonic``).

Messages: ``hello`` first (the unit's ExecStartPre= said ``early`` before
this program started), then ``check``, ``figure``, ``text``, ``done``
(tests/vm/guest.py's protocol).  Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, "/usr/local/lib/ipmp-vm")

# After the sys.path line: python3 -I leaves the script's directory off sys.path.
from ipmpvm import (
    DATA,
    IPMPSTAT,
    TEST,
    Checks,
    addresses,
    emit,
    kernel_option,
    peer_reaches,
    sh,
    show,
    wait_for,
)

HELLO_AT = time.monotonic()

#: systemd's own device timeout (DefaultDeviceTimeoutSec=), which the generator's replaces.
SYSTEMD_DEVICE_TIMEOUT = 90
GENERATOR_DIR = "/run/systemd/generator"
NICS = {"ens8": "hme0", "ens9": "hme1"}
DEVICES = {nic: f"sys-subsystem-net-devices-{nic}.device" for nic in NICS}
#: How long the boot may take to finish (the never plan waits DEVICE_TIMEOUT s for ens9).
BOOT_TIMEOUT = 300
#: ipmp-boot-generator's DEVICE_TIMEOUT (s), as the host imported it from ipmp.host.bootorder.
DEVICE_TIMEOUT = int(kernel_option("device_timeout")) if kernel_option("device_timeout").isdigit() else 0


def mono(value: str | None) -> float | None:
    """A ``...TimestampMonotonic`` property (µs) in seconds; None when unset (0)."""
    try:
        usec = int(value or "0")
    except ValueError:
        return None
    return usec / 1e6 if usec else None


# --------------------------------------------------------------------------


def wait_for_boot(c: Checks, plan: str) -> str:
    """Wait until the boot's jobs are done; what ``is-system-running`` then says."""
    def settled() -> str:
        state = sh("systemctl", "is-system-running").stdout.strip()
        return "" if state in ("initializing", "starting", "") else state

    state = wait_for(settled, BOOT_TIMEOUT, 0.5) or sh("systemctl", "is-system-running").stdout.strip()
    out = sh("systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager").stdout
    failed = [line.split()[0] for line in out.splitlines() if line.strip()]
    if plan == "never":
        # ipmp-boot exits 1 for the NIC that failed to plumb (ipmp-boot(8)): its unit, and
        # nothing else, is failed, and the system "degraded", not in emergency mode.
        c.check("the boot finished; only ipmp-boot.service failed (the plumb failure): degraded",
                state == "degraded" and failed == ["ipmp-boot.service"],
                {"is-system-running": state, "failed units": failed})
    else:
        c.check("the boot finished and is not failed: is-system-running says running, no failed unit",
                state == "running" and not failed, {"is-system-running": state, "failed units": failed})
    active = {t: sh("systemctl", "is-active", t).stdout.strip()
              for t in ("emergency.target", "rescue.target", "multi-user.target")}
    c.check("no emergency or rescue mode; multi-user.target reached",
            active == {"emergency.target": "inactive", "rescue.target": "inactive",
                       "multi-user.target": "active"},
            active)
    return state


def check_generator(c: Checks) -> None:
    # systemd 257: the generator has it wait as ipmp-boot's ExecStartPre= (udevadm wait), so
    # that the wait counts from ipmp-boot's turn, not from the start of the boot.
    path = f"{GENERATOR_DIR}/ipmp-boot.service.d/50-ipmp-devices.conf"
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as err:
        text = str(err)
    want = (f"ExecStartPre=-udevadm wait --timeout={DEVICE_TIMEOUT} "
            + " ".join(f'"/sys/class/net/{nic}"' for nic in NICS))
    c.check("the generator wrote ipmp-boot.service.d/50-ipmp-devices.conf: a bounded wait for both NICs",
            DEVICE_TIMEOUT > 0 and want in text.splitlines(), {"want": want, "got": text})
    others = sorted(os.path.relpath(os.path.join(d, f), GENERATOR_DIR)
                    for d, _, files in os.walk(GENERATOR_DIR) for f in files
                    if "ipmp" in f or "sys-subsystem-net-devices" in d)
    c.check("nothing else of the generator's: no device unit drop-in (its clock starts with the boot)",
            others == ["ipmp-boot.service.d/50-ipmp-devices.conf"], others)
    # In force: what systemd loaded, not just what is on disk.
    boot = show("ipmp-boot.service", "ExecStartPre", "DropInPaths")
    pre = boot.get("ExecStartPre", "")
    c.check("systemd loaded it: ipmp-boot.service's ExecStartPre= is the wait, its failure ignored",
            path in boot.get("DropInPaths", "").split()
            and f"argv[]=udevadm wait --timeout={DEVICE_TIMEOUT} /sys/class/net/ens8 /sys/class/net/ens9 ;"
            in pre and "ignore_errors=yes" in pre, boot)
    manager = show(None, "GeneratorsStartTimestampMonotonic", "GeneratorsFinishTimestampMonotonic")
    start, finish = (mono(manager.get(k)) for k in ("GeneratorsStartTimestampMonotonic",
                                                     "GeneratorsFinishTimestampMonotonic"))
    if start is not None and finish is not None:
        emit("figure", name="all generators of the boot (s)", value=round(finish - start, 2))
    said = sh("journalctl", "-b", "--no-pager", "-o", "cat").stdout
    cycles = [line for line in said.splitlines()
              if re.search(r"ordering cycle|to break ordering|ipmp-boot-generator", line, re.I)]
    c.check("no ordering cycle and no generator message in the boot's journal", not cycles, cycles[:20])


def udev_initialized(nic: str) -> float | None:
    """When udev finished with the NIC (its database's USEC_INITIALIZED, CLOCK_MONOTONIC), in s."""
    out = sh("udevadm", "info", "--query=property", f"/sys/class/net/{nic}").stdout
    m = re.search(r"^USEC_INITIALIZED=(\d+)$", out, re.M)
    return int(m.group(1)) / 1e6 if m else None


def boot_times() -> dict[str, float | None]:
    """The boot's moments (s, CLOCK_MONOTONIC) that the checks compare."""
    manager = show(None, "UnitsLoadFinishTimestampMonotonic", "UserspaceTimestampMonotonic")
    boot = show("ipmp-boot.service", "InactiveExitTimestampMonotonic", "ExecMainStartTimestampMonotonic",
                "ExecMainExitTimestampMonotonic")
    online = show("network-online.target", "ActiveEnterTimestampMonotonic")
    ens9 = show(DEVICES["ens9"], "ActiveEnterTimestampMonotonic")
    ens8 = show(DEVICES["ens8"], "ActiveEnterTimestampMonotonic")
    early = show("ipmp-vm-boot-order.service", "InactiveExitTimestampMonotonic")
    return {
        # The boot transaction is queued right after the units are loaded.
        "units loaded": mono(manager.get("UnitsLoadFinishTimestampMonotonic")),
        "userspace": mono(manager.get("UserspaceTimestampMonotonic")),
        "early": mono(early.get("InactiveExitTimestampMonotonic")),
        "hello": HELLO_AT,
        "ens8 appeared": mono(ens8.get("ActiveEnterTimestampMonotonic")),
        "ens9 appeared": mono(ens9.get("ActiveEnterTimestampMonotonic")),
        "ens9 initialized by udev": udev_initialized("ens9"),
        # ipmp-boot's turn: its ExecStartPre=, the wait, begins.
        "ipmp-boot started": mono(boot.get("InactiveExitTimestampMonotonic")),
        # ipmp-boot itself (the wait is over).
        "ipmp-boot configuring": mono(boot.get("ExecMainStartTimestampMonotonic")),
        "ipmp-boot exited": mono(boot.get("ExecMainExitTimestampMonotonic")),
        "network-online": mono(online.get("ActiveEnterTimestampMonotonic")),
    }


def check_boot_ran(c: Checks, times: dict[str, float | None], plan: str) -> str:
    boot = show("ipmp-boot.service", "ActiveState", "Result", "ExecMainStatus")
    said = sh("journalctl", "-b", "--no-pager", "-o", "cat", "-u", "ipmp-boot.service").stdout
    if plan == "never":
        # ipmp-boot(8): a NIC Linux does not have fails to plumb, and the exit status is 1
        # (after the rescue); the unit is then failed, nothing else.
        c.check("ipmp-boot.service ran to completion: the rescue done, exit 1 for the plumb failure only",
                boot.get("ExecMainStatus") == "1" and "Failed to plumb IPv4 interface(s): hme1" in said
                and "Failed to configure" not in said, {**boot, "journal": said[-2000:]})
    else:
        c.check("ipmp-boot.service ran to completion",
                boot.get("ActiveState") == "active" and boot.get("Result") == "success"
                and boot.get("ExecMainStatus") == "0", boot)
    exited, online = times["ipmp-boot exited"], times["network-online"]
    c.check("network-online.target was reached, after ipmp-boot exited",
            exited is not None and online is not None and exited <= online,
            {"ipmp-boot exited": exited, "network-online": online})
    mpathd = wait_for(lambda: (s := show("in.mpathd.service", "ActiveState", "SubState", "Type"))
                      .get("ActiveState") == "active" and s, 60) or show("in.mpathd.service", "ActiveState")
    c.check("in.mpathd.service is active (READY=1)",
            mpathd.get("ActiveState") == "active" and mpathd.get("SubState") == "running", mpathd)
    c.check("no Traceback in ipmp-boot's journal", "Traceback" not in said, said[-2000:])
    return said


def wait_status() -> str:
    """The exit status of ipmp-boot's ExecStartPre= (the wait), as ``systemctl show`` has it ("0", "1")."""
    pre = show("ipmp-boot.service", "ExecStartPre").get("ExecStartPre", "")
    m = re.search(r"status=([^ ;}]+)", pre)
    return m.group(1) if m else ""


def check_late(c: Checks, times: dict[str, float | None], said: str) -> None:
    appeared = times["ens9 appeared"]
    started, configuring = times["ipmp-boot started"], times["ipmp-boot configuring"]
    initialized = times["ens9 initialized by udev"]
    # Late: seconds after ipmp-boot's turn (the host plugs it HOTPLUG_DELAY s after "early").
    c.check("ipmp-boot.service was started, and waiting, when ens9 appeared, a second or more later",
            started is not None and appeared is not None and started + 1.0 < appeared,
            {"ipmp-boot started": started, "ens9 appeared": appeared})
    # udev's own time for the NIC under its final name (USEC_INITIALIZED), which is what
    # udevadm wait waits for.  The device unit's ActiveEnterTimestamp is PID 1's handling of
    # the same udev event: measured here 0.1 s either side of ExecMainStart, as PID 1 sees
    # that event and the wait's exit in either order.
    c.check("ipmp-boot configured once udev was done with ens9 (USEC_INITIALIZED <= ExecMainStart)",
            configuring is not None and initialized is not None and configuring >= initialized,
            {"udev done": initialized, "ipmp-boot configuring": configuring, "ens9 appeared": appeared})
    status = wait_status()
    c.check("the wait ended because ens9 came, not by its timeout", status == "0", status)
    c.check("ipmp-boot configured hme0 and hme1 and rescued nothing (no §6.5 'moving addresses')",
            "configuring IPv4 interfaces: hme0 hme1." in said and "moving addresses" not in said
            and "moved to" not in said, said[-2000:])
    want = {**DATA, **TEST}
    got = wait_for(lambda: (a := addresses()) and all(a.get(k) == v for k, v in want.items()) and a, 30)
    c.check("every data and test address is on its own NIC", bool(got),
            {k: (got or addresses()).get(k) for k in want})

    def both_ok() -> str:
        out = sh(IPMPSTAT, "-i", "-P", "-o", "INTERFACE,STATE", timeout=30).stdout.strip()
        rows = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return out if all(rows.get(n) == "ok" for n in NICS.values()) else ""

    out = wait_for(both_ok, 60, 0.5)
    c.check("in.mpathd has both NICs in the group, ok", bool(out),
            out or sh(IPMPSTAT, "-i", timeout=30).stdout)
    if started is not None and appeared is not None:
        emit("figure", name="ipmp-boot's wait began to ens9 appearing (s)",
             value=round(appeared - started, 2))
    if initialized is not None and configuring is not None:
        emit("figure", name="udev done with ens9 to ipmp-boot configuring (s)",
             value=round(configuring - initialized, 2))


def check_never(c: Checks, times: dict[str, float | None], said: str) -> None:
    c.check("ens9 never appeared",
            not os.path.exists("/sys/class/net/ens9") and times["ens9 appeared"] is None,
            {"ens9 appeared": times["ens9 appeared"]})
    status = wait_status()
    c.check("the wait ended by its timeout (udevadm wait failed, the failure ignored)",
            status not in ("", "0"), {"status": status, "journal": said[-1500:]})
    began, configuring = times["ipmp-boot started"], times["ipmp-boot configuring"]
    waited = None if began is None or configuring is None else configuring - began
    if waited is not None:
        emit("figure", name="ipmp-boot's wait began to ipmp-boot configuring (s)", value=round(waited, 2))
    # Not before the timeout (it did wait), and far from systemd's own 90 s.
    bound = (DEVICE_TIMEOUT + SYSTEMD_DEVICE_TIMEOUT) / 2
    c.check(f"ipmp-boot configured about {DEVICE_TIMEOUT} s after its wait began, "
            f"not {SYSTEMD_DEVICE_TIMEOUT} s",
            waited is not None and DEVICE_TIMEOUT > 0 and DEVICE_TIMEOUT - 1 <= waited < bound,
            {"wait began": began, "ipmp-boot configuring": configuring, "waited": waited})
    c.check("ipmp-boot moved hme1's data address to hme0 (§6.5)",
            "moving addresses from failed IPv4 interfaces: hme1 (moved to hme0)." in said, said[-2000:])
    want = {"192.0.2.100": "ens8", "192.0.2.101": "ens8", "192.0.2.10": "ens8"}
    got = wait_for(lambda: (a := addresses()) and all(a.get(k) == v for k, v in want.items()) and a, 30)
    c.check("both data addresses and hme0's test address are on ens8", bool(got),
            got or addresses())


def check_peer(c: Checks) -> None:
    reached: dict[str, Any] = {a: peer_reaches(a) for a in DATA}
    for a in [a for a, ok in reached.items() if not ok]:
        t0 = time.monotonic()
        later = wait_for(lambda a=a: peer_reaches(a), 15, 0.5)
        reached[a] = f"unanswered, then answered {time.monotonic() - t0:.1f} s later" if later \
            else "unanswered for 15 s more"
    c.check("the peer reaches every data address", all(v is True for v in reached.values()), reached)


def main() -> int:
    which = kernel_option("plan")
    emit("hello", plan=which, monotonic=round(HELLO_AT, 3))
    c = Checks()
    steps: list[tuple[str, Callable[[], Any]]] = []
    times: dict[str, float | None] = {}
    said = ""

    def after_boot() -> None:
        nonlocal times, said
        wait_for_boot(c, which)
        times = boot_times()
        said = check_boot_ran(c, times, which)

    steps.append(("boot", after_boot))
    steps.append(("generator", lambda: check_generator(c)))
    if which == "late":
        steps.append(("late", lambda: check_late(c, times, said)))
    elif which == "never":
        steps.append(("never", lambda: check_never(c, times, said)))
    else:
        steps.append(("plan", lambda: c.check("the kernel command line names a plan", False, which)))
    steps.append(("peer", lambda: check_peer(c)))
    for name, step in steps:
        try:
            step()
        except Exception as err:  # a broken step is a failed check, and the others still run
            c.check(f"step {name} ran", False, f"{type(err).__name__}: {err}")
    emit("text", name="boot times (s, CLOCK_MONOTONIC)", text=json.dumps(times, indent=1))
    emit("text", name="ipmp-boot's journal", text=said[-6000:])
    emit("text", name="systemd-analyze critical-chain ipmp-boot.service",
         text=sh("systemd-analyze", "critical-chain", "--no-pager", "ipmp-boot.service", timeout=60).stdout)
    emit("text", name="ip -4 addr", text=sh("ip", "-4", "addr").stdout)
    emit("done", failed=c.failed)
    sh("systemctl", "--no-block", "poweroff")
    return 0


if __name__ == "__main__":
    sys.exit(main())
