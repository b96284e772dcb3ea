"""In the guest: the hardened units under systemd, checked; the report goes to the host on ttyS1.

Run by ``ipmp-vm-check.service`` once ``ipmp-boot.service`` and
``in.mpathd.service`` are up (standard library only: it runs on the guest's
own python3).  Each check is one ``{"kind": "check", "name", "ok", "detail"}``
message; measurements are ``figure`` messages, long outputs ``text``.  A
carrier cut is asked of the host with a ``link`` message (QMP ``set_link``)
and then seen here in ``/sys/class/net/IF/carrier``.  The last message is
``done``.  Every wait is bounded; a failed check does not stop the others.

The host side is tests/vm/test_hardening.py; the protocol is tests/vm/guest.py's.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

sys.path.insert(0, "/usr/local/lib/ipmp-vm")

# After the sys.path line: python3 -I leaves the script's directory off sys.path.
from ipmpvm import (
    DATA,
    Checks,
    addresses,
    carrier,
    check_addresses,
    cursor,
    emit,
    ipmpstat,
    journal,
    peer_reaches,
    run_steps,
    sh,
    show,
    wait_for,
)

UNITS = ("in.mpathd.service", "ipmp-boot.service")
GROUP = "prod"
#: Linux NIC -> Solaris name (etc/ipmp/ifmap).
NICS = {"ens8": "qfe0", "ens9": "qfe1"}
#: CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
CAPS_MPATHD = (1 << 12) | (1 << 13)
WATCHDOG_SEC = 20
#: The mpathd file's FDT before and after ``systemctl reload``.
FDT_AFTER_RELOAD_MS = 6000


# --------------------------------------------------------------------------


def check_started(c: Checks) -> None:
    boot = show("ipmp-boot.service", "ActiveState", "Result", "ExecMainStatus")
    c.check("ipmp-boot.service ran to completion under its sandbox",
            boot.get("ActiveState") == "active" and boot.get("Result") == "success"
            and boot.get("ExecMainStatus") == "0", boot)
    said = journal("", "-u", "ipmp-boot.service")
    c.check("ipmp-boot configured qfe0 and qfe1", "configuring IPv4 interfaces: qfe0 qfe1." in said,
            said[-2000:])
    try:
        with open("/etc/sysctl.d/90-ipmp.conf") as fh:
            dropin = fh.read()
    except OSError as err:
        dropin = f"{err}"
    c.check("ipmp-boot wrote /etc/sysctl.d/90-ipmp.conf through ReadWritePaths",
            "net.ipv4.conf.ens8.arp_ignore" in dropin or "net/ipv4/conf/ens8" in dropin, dropin[-1500:])
    c.check("the state store is in the runtime directory", os.path.isfile("/run/ipmp/state.json"),
            sorted(os.listdir("/run/ipmp")) if os.path.isdir("/run/ipmp") else "no /run/ipmp")
    # Type=notify: the unit is active only once READY=1 came.
    mpathd = wait_for(lambda: (s := show("in.mpathd.service", "ActiveState", "SubState", "StatusText",
                                          "MainPID", "NRestarts", "WatchdogUSec", "Type"))
                      .get("ActiveState") == "active" and s, 60) or show("in.mpathd.service", "ActiveState")
    c.check("in.mpathd.service is active: READY=1 reached",
            mpathd.get("ActiveState") == "active" and mpathd.get("SubState") == "running"
            and mpathd.get("Type") == "notify", mpathd)
    c.check("in.mpathd.service has the watchdog", mpathd.get("WatchdogUSec") == f"{WATCHDOG_SEC}s", mpathd)


def _mounts(pid: str) -> dict[str, str]:
    """mount point -> per-mount options, of the process's mount namespace (last mount wins)."""
    found: dict[str, str] = {}
    with open(f"/proc/{pid}/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            found[fields[4]] = fields[5]
    return found


def check_sandbox(c: Checks) -> None:
    pid = show("in.mpathd.service", "MainPID").get("MainPID", "0")
    try:
        with open(f"/proc/{pid}/status") as fh:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError as err:
        c.check("in.mpathd's process status is readable", False, str(err))
        return
    bounding = int(status.get("CapBnd", "0"), 16)
    effective = int(status.get("CapEff", "0"), 16)
    c.check("in.mpathd's capabilities are CAP_NET_ADMIN and CAP_NET_RAW only",
            bounding == CAPS_MPATHD and effective == CAPS_MPATHD,
            {"CapBnd": status.get("CapBnd"), "CapEff": status.get("CapEff")})
    c.check("in.mpathd runs with no_new_privs and a seccomp filter",
            status.get("NoNewPrivs") == "1" and status.get("Seccomp") == "2",
            {"NoNewPrivs": status.get("NoNewPrivs"), "Seccomp": status.get("Seccomp")})
    mounts = _mounts(pid)
    opts = {p: mounts.get(p, "absent") for p in ("/", "/etc", "/proc/sys", "/proc/sys/net", "/run/ipmp",
                                                  "/home", "/tmp", "/sys")}
    c.check("in.mpathd sees / read-only, /proc/sys read-only, /proc/sys/net and /run/ipmp writable",
            opts["/"].startswith("ro") and opts["/proc/sys"].startswith("ro")
            and opts["/proc/sys/net"].startswith("rw") and opts["/run/ipmp"].startswith("rw"), opts)
    # What the daemon set through /proc/sys/net under that sandbox (ipmp-boot set it first;
    # the daemon sets it again for a NIC it moves addresses to).
    values = {}
    for nic in NICS:
        with open(f"/proc/sys/net/ipv4/conf/{nic}/arp_ignore") as fh:
            values[nic] = fh.read().strip()
    c.check("the NICs' net sysctls are set (arp_ignore)", all(v != "0" for v in values.values()), values)


def check_boot_sandbox(c: Checks) -> None:
    # Printed by the test's ExecStartPost= drop-in, which runs in ipmp-boot's sandbox.
    said = journal("", "-u", "ipmp-boot.service", "-b")
    status = dict(line.split(":", 1) for line in said.splitlines()
                  if line.split(":", 1)[0] in ("CapBnd", "CapEff", "NoNewPrivs", "Seccomp"))
    status = {k: v.strip() for k, v in status.items()}
    c.check("ipmp-boot's capabilities are CAP_NET_ADMIN only, with no_new_privs and seccomp",
            int(status.get("CapBnd", "0"), 16) == 1 << 12 and status.get("NoNewPrivs") == "1"
            and status.get("Seccomp") == "2", status)
    mounts: dict[str, str] = {}
    for line in said.splitlines():
        if line.startswith("mount "):
            _, at, flags = [*line.split(), "", ""][:3]
            mounts[at] = flags
    opts = {p: mounts.get(p, "absent") for p in ("/", "/proc/sys", "/proc/sys/net", "/run/ipmp",
                                                  "/etc/sysctl.d")}
    c.check("ipmp-boot sees / and /proc/sys read-only, /proc/sys/net, /run/ipmp, /etc/sysctl.d writable",
            opts["/"].startswith("ro") and opts["/proc/sys"].startswith("ro")
            and all(opts[p].startswith("rw") for p in ("/proc/sys/net", "/run/ipmp", "/etc/sysctl.d")),
            opts)


def check_after_boot(c: Checks) -> None:
    check_addresses(c, "after boot")


def check_probing(c: Checks) -> None:
    # Both NICs probe the router (raw ICMP sockets under the sandbox).
    def probing() -> str:
        out = ipmpstat("-i", "-P", "-o", "INTERFACE,PROBE,STATE")
        rows = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return out if all(rows.get(n) == "ok:ok" for n in NICS.values()) else ""

    out = wait_for(probing, 60, 0.5)
    c.check("both NICs probe the router (raw ICMP under the sandbox)", bool(out),
            out or ipmpstat("-i", "-P", "-o", "INTERFACE,PROBE,STATE"))


def check_security(c: Checks) -> None:
    # The same units without their sandbox (as they were before): the baseline score.
    for unit in UNITS:
        with open(f"/etc/systemd/system/{unit}") as fh:
            text = fh.read()
        kept = [line for line in _without_sandbox(text)]
        with open(f"/etc/systemd/system/nosandbox-{unit}", "w") as fh:
            fh.write("".join(kept))
    sh("systemctl", "daemon-reload")
    scores: dict[str, str] = {}
    for unit in (*UNITS, *(f"nosandbox-{u}" for u in UNITS)):
        done = sh("systemd-analyze", "security", "--no-pager", unit, timeout=120)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", done.stdout)
        scores[unit] = f"{m.group(1)} {m.group(2)}" if m else f"? ({done.returncode}: {done.stderr[-300:]})"
        emit("text", name=f"systemd-analyze security {unit}", text=done.stdout)
        if m:
            emit("figure", name=f"exposure {unit}", value=float(m.group(1)), unit=m.group(2))
    ok = all(not s.startswith("?") for s in scores.values())
    c.check("systemd-analyze security rates both units", ok, scores)
    if ok:
        better = all(float(scores[u].split()[0]) < float(scores[f"nosandbox-{u}"].split()[0]) for u in UNITS)
        c.check("the sandbox lowers both exposure scores", better, scores)
    # --man=no: the guest has no man(1) to look the Documentation= pages up with.
    verify = sh("systemd-analyze", "verify", "--man=no", *(f"/etc/systemd/system/{u}" for u in UNITS),
                timeout=120)
    c.check("systemd-analyze verify is clean on the installed units",
            verify.returncode == 0 and not verify.stderr.strip(), verify.stderr[-2000:])


def _without_sandbox(text: str) -> list[str]:
    """The unit's lines without the sandbox section (from "# -- Sandbox" to the next [Section])."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("# -- Sandbox"):
            skipping = True
        elif line.startswith("["):
            skipping = False
        if not skipping:
            kept.append(line)
    return kept


def check_failover(c: Checks) -> None:
    mark = cursor()
    emit("link", nic="ens8", up=False)
    cut = wait_for(lambda: carrier("ens8") == 0, 20, 0.05)
    t0 = time.monotonic()
    c.check("the carrier of ens8 went down (QMP set_link)", bool(cut), {"carrier": carrier("ens8")})

    def failed_over() -> str:
        said = journal(mark, "-t", "in.mpathd")
        ok = ("NIC failure detected on qfe0" in said
              and "Successfully failed over from NIC qfe0 to NIC qfe1" in said)
        return said if ok else ""

    said = wait_for(failed_over, 30, 0.1)
    if said:
        emit("figure", name="carrier cut to 'Successfully failed over' (s)",
             value=round(time.monotonic() - t0, 2))
    c.check("journalctl -t in.mpathd: NIC failure detected, Successfully failed over", bool(said),
            said or journal(mark, "-t", "in.mpathd")[-2000:])
    moved = wait_for(lambda: addresses().get("192.0.2.100") == "ens9", 10)
    c.check("the data address of qfe0 moved to qfe1", bool(moved), addresses())
    c.check("the peer reaches the moved data address", peer_reaches("192.0.2.100"), "")
    c.check("the test address stayed on the failed NIC", addresses().get("192.0.2.10") == "ens8", addresses())

    mark = cursor()
    emit("link", nic="ens8", up=True)
    c.check("the carrier of ens8 came back", bool(wait_for(lambda: carrier("ens8") == 1, 20, 0.05)), "")

    def failed_back() -> str:
        said = journal(mark, "-t", "in.mpathd")
        ok = "NIC repair detected on qfe0" in said and "Successfully failed back to NIC qfe0" in said
        return said if ok else ""

    said = wait_for(failed_back, 60, 0.2)
    c.check("journalctl -t in.mpathd: NIC repair detected, Successfully failed back", bool(said),
            said or journal(mark, "-t", "in.mpathd")[-2000:])
    check_addresses(c, "after failback")


def check_reload(c: Checks) -> None:
    before = show("in.mpathd.service", "MainPID", "NRestarts")
    with open("/etc/default/mpathd") as fh:
        text = fh.read()
    with open("/etc/default/mpathd", "w") as fh:
        fh.write(re.sub(r"(?m)^FAILURE_DETECTION_TIME=.*$", f"FAILURE_DETECTION_TIME={FDT_AFTER_RELOAD_MS}",
                        text))
    mark = cursor()
    started = time.monotonic()
    done = sh("systemctl", "reload", "in.mpathd.service", timeout=120)
    c.check("systemctl reload in.mpathd.service succeeds", done.returncode == 0, done.stderr[-1000:])
    want = f"{FDT_AFTER_RELOAD_MS / 1000:.2f}s"
    fdt = wait_for(lambda: (out := ipmpstat("-g", "-P", "-o", "GROUP,FDT")) == f"{GROUP}:{want}" and out,
                   60, 0.5)
    emit("figure", name="systemctl reload to the new FDT served (s)",
         value=round(time.monotonic() - started, 2))
    after = show("in.mpathd.service", "MainPID", "NRestarts", "ActiveState", "SubState")
    said = journal(mark, "-t", "in.mpathd")
    c.check("the daemon reread /etc/default/mpathd (SIGHUP re-exec, same pid, no restart)",
            bool(fdt) and "SIGHUP: restart and reread config file" in said
            and after.get("MainPID") == before.get("MainPID")
            and after.get("NRestarts") == before.get("NRestarts")
            and after.get("ActiveState") == "active",
            {"before": before, "after": after, "ipmpstat -g": ipmpstat("-g", "-P", "-o", "GROUP,FDT"),
             "journal": said[-1500:]})


def check_watchdog(c: Checks) -> None:
    before = show("in.mpathd.service", "MainPID", "NRestarts")
    pid = int(before.get("MainPID", "0"))
    if pid <= 0:
        c.check("in.mpathd has a main pid to stop", False, before)
        return
    mark = cursor()
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    lost: list[dict[str, str]] = []

    def restarted() -> dict[str, str] | None:
        have = addresses()
        if not all(a in have for a in DATA):
            lost.append({a: have.get(a, "-") for a in DATA})
        now = show("in.mpathd.service", "MainPID", "NRestarts", "ActiveState", "SubState")
        if now.get("MainPID") not in ("0", str(pid)) and now.get("ActiveState") == "active":
            return now
        return None

    # The watchdog fires at most WATCHDOG_SEC after the last WATCHDOG=1 (sent every
    # WATCHDOG_SEC/4); then SIGABRT, RestartSec=2s and a start to READY=1.
    after = wait_for(restarted, WATCHDOG_SEC + 60, 0.5)
    elapsed = time.monotonic() - started
    emit("figure", name="SIGSTOP to a new READY daemon (s)", value=round(elapsed, 1))
    said = journal(mark, "-u", "in.mpathd.service")
    c.check("a stopped daemon is killed on 'Watchdog timeout' and restarted",
            bool(after) and "Watchdog timeout" in said and elapsed <= WATCHDOG_SEC + 30,
            {"before": before, "after": after, "seconds": round(elapsed, 1), "journal": said[-2500:]})
    c.check("no data address was lost while the daemon was stopped and restarted", not lost, lost[:5])
    check_addresses(c, "after the watchdog restart")


def check_stop_keeps_state(c: Checks) -> None:
    # RuntimeDirectory= is deleted when its unit stops unless RuntimeDirectoryPreserve=yes:
    # the state store (what Linux has no flag for) must outlive the daemon.
    stopped = sh("systemctl", "stop", "in.mpathd.service", timeout=120)
    state = show("in.mpathd.service", "ActiveState")
    kept = os.path.isfile("/run/ipmp/state.json")
    c.check("systemctl stop in.mpathd leaves /run/ipmp/state.json (RuntimeDirectoryPreserve=yes)",
            stopped.returncode == 0 and state.get("ActiveState") in ("inactive", "failed") and kept,
            {"stop": stopped.returncode, "state": state,
             "/run/ipmp": sorted(os.listdir("/run/ipmp")) if os.path.isdir("/run/ipmp") else "gone"})
    have = addresses()
    c.check("a stopped daemon leaves the data addresses in place", all(a in have for a in DATA), have)
    started = sh("systemctl", "start", "in.mpathd.service", timeout=120)
    c.check("systemctl start in.mpathd reaches READY again",
            started.returncode == 0
            and show("in.mpathd.service", "ActiveState").get("ActiveState") == "active",
            started.stderr[-1000:])
    check_addresses(c, "after stop and start")


def check_boot_asks_networkd(c: Checks) -> None:
    # ipmp-boot asks systemd-networkd (networkctl, a child process under the
    # sandbox: exec, seccomp, Unix sockets only) whether it manages a NIC of
    # the hostname files, and refuses if so.  Last: networkd then owns ens9.
    os.makedirs("/etc/systemd/network", exist_ok=True)
    with open("/etc/systemd/network/50-ipmpvm-ens9.network", "w") as fh:
        fh.write("[Match]\nName=ens9\n\n[Network]\nKeepConfiguration=yes\nLinkLocalAddressing=no\n"
                 "IPv6AcceptRA=no\n")
    sh("systemctl", "start", "systemd-networkd.service", timeout=120)

    def managed() -> bool:
        out = sh("networkctl", "list", "--no-legend", "--no-pager").stdout
        rows = [line.split() for line in out.splitlines()]
        return any(len(w) >= 5 and w[1] == "ens9" and w[4] != "unmanaged" for w in rows)

    c.check("systemd-networkd manages ens9", bool(wait_for(managed, 60, 0.5)),
            sh("networkctl", "list", "--no-legend", "--no-pager").stdout)
    mark = cursor()
    done = sh("systemctl", "restart", "ipmp-boot.service", timeout=180)
    said = journal(mark, "-u", "ipmp-boot.service")
    c.check("ipmp-boot under its sandbox asks networkd and refuses to fight it",
            done.returncode != 0 and "systemd-networkd manages ens9" in said, said[-2000:])
    c.check("restarting ipmp-boot leaves /run/ipmp/state.json (RuntimeDirectoryPreserve=yes)",
            os.path.isfile("/run/ipmp/state.json"), "")


def check_no_denials(c: Checks) -> None:
    # The sandbox must not have broken anything quietly: an EPERM (SystemCallErrorNumber,
    # capabilities), EROFS (ProtectSystem) or EACCES would show in the units' output.
    said = journal("", "-u", "in.mpathd.service", "-u", "ipmp-boot.service")
    bad = [line for line in said.splitlines()
           if re.search(r"Operation not permitted|Read-only file system|Permission denied|Traceback|Errno",
                        line)]
    c.check("no permission, read-only or Python errors in the units' journal", not bad, bad[:20])


def main() -> int:
    c = Checks()
    emit("hello", uptime=open("/proc/uptime").read().split()[0], python=sys.version.split()[0])
    steps = (check_started, check_sandbox, check_boot_sandbox, check_after_boot, check_probing,
             check_security, check_failover, check_reload, check_watchdog, check_stop_keeps_state,
             check_boot_asks_networkd, check_no_denials)
    run_steps(c, steps)
    emit("text", name="journalctl -u in.mpathd.service -u ipmp-boot.service",
         text=sh("journalctl", "--no-pager", "-o", "short-monotonic", "-u", "in.mpathd.service",
                 "-u", "ipmp-boot.service").stdout[-20000:])
    emit("done", failed=c.failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
