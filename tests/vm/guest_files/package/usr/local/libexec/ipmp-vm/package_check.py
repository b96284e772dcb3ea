"""In the guest: the Debian package installed with apt and driven across reboots, as an admin would.

Run by ``ipmp-vm-pkg.service`` at every boot.  The phase is kept in
``/var/lib/ipmp-vm/phase``:

``install``  (first boot) ``apt-get install ./ipmp_<v>_all.deb`` from the local
             repository ``/srv/ipmp-apt``; the Solaris files put in ``/etc``
             (``hostname.hme0``, ``hostname.hme1`` in group ``prod``, hosts,
             netmasks, defaultrouter, ``ipmp/ifmap``); the units enabled; reboot.
``boot1``    the addresses were there when ``network-online.target`` was
             reached, in.mpathd is active (READY=1), the peer reaches every data
             address; reboot.
``boot2``    the same, then: carrier cut over QMP and back (failover, failback,
             the Solaris lines in ``journalctl -t in.mpathd``), ``kill -9`` of
             the daemon (systemd restarts it, no data address lost),
             ``if_mpadm -d``/``-r``, and ``apt-get install`` of a newer build
             while the peer pings; then power-off.

The helpers (report channel, ``systemctl show``, journal cursors, bounded
waits, addresses, peer pings) are ipmpvm.py's, the guest programs' library.
Standard library only: it runs on the guest's own python3.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, "/usr/local/lib/ipmp-vm")

# After the sys.path line: python3 -I leaves the script's directory off sys.path.
import ipmpvm as vm

REPO = "/srv/ipmp-apt"
#: Written by the host (tests/vm/test_package.py): the package versions in the repository.
VERSIONS = "/etc/ipmp-vm.json"
#: Linux NIC -> Solaris name (/etc/ipmp/ifmap below).
NICS = {"ens8": "hme0", "ens9": "hme1"}
DATA = vm.DATA  # 192.0.2.100 on ens8 (hme0), 192.0.2.101 on ens9 (hme1)
WANT = {**vm.DATA, **vm.TEST}
APT_ENV = dict(vm.ENV, DEBIAN_FRONTEND="noninteractive")

SOLARIS_FILES = {
    "/etc/hostname.hme0": "myhost netmask + broadcast + group prod up"
                          " addif myhost-hme0 deprecated -failover netmask + broadcast + up\n",
    "/etc/hostname.hme1": "myhost-2 netmask + broadcast + group prod up"
                          " addif myhost-hme1 deprecated -failover netmask + broadcast + up\n",
    "/etc/netmasks": "192.0.2.0\t255.255.255.0\n",
    "/etc/defaultrouter": "192.0.2.1\n",
    "/etc/ipmp/ifmap": "# solaris  linux\nhme0       ens8\nhme1       ens9\n",
}
HOSTS = ("192.0.2.100\tmyhost\tloghost\n192.0.2.101\tmyhost-2\n192.0.2.10\tmyhost-hme0\n"
         "192.0.2.11\tmyhost-hme1\n192.0.2.1\trouter\n")


def versions() -> dict[str, str]:
    with open(VERSIONS) as fh:
        found: dict[str, str] = json.load(fh)
    return found


def installed_version() -> str:
    out = vm.sh("dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", "ipmp")
    return out.stdout.strip() if out.returncode == 0 else ""


def mpathd_ready(timeout: float = 90) -> dict[str, str]:
    def ready() -> dict[str, str] | None:
        s = vm.show("in.mpathd.service", "ActiveState", "SubState", "Type", "MainPID", "NRestarts")
        return s if s.get("ActiveState") == "active" and s.get("SubState") == "running" else None

    got: dict[str, str] | None = vm.wait_for(ready, timeout, 0.5)
    return got or vm.show("in.mpathd.service", "ActiveState", "SubState", "Type", "MainPID", "Result")


# --------------------------------------------------------------------------
# install (first boot)
# --------------------------------------------------------------------------


def do_install(c: vm.Checks) -> str:
    v = versions()
    c.check("install: ipmp is not installed before apt", installed_version() == "", installed_version())
    upd = vm.sh("apt-get", "update", timeout=300, env=APT_ENV)
    c.check("install: apt-get update from the local repository only", upd.returncode == 0,
            (upd.stdout + upd.stderr)[-2000:])
    t0 = time.monotonic()
    # As README says: apt installs the file and takes its dependencies from the sources.
    inst = vm.sh("apt-get", "install", "-y", "--no-install-recommends", f"./ipmp_{v['first']}_all.deb",
                 cwd=REPO, env=APT_ENV, timeout=600)
    vm.emit("figure", name="apt-get install ./ipmp_*.deb (s)", value=round(time.monotonic() - t0, 1))
    c.check("install: apt-get install ./ipmp_<v>_all.deb succeeds", inst.returncode == 0,
            (inst.stdout + inst.stderr)[-3000:])
    c.check("install: dpkg says installed, the first version",
            installed_version() == f"installed {v['first']}", installed_version())
    for path in ("/usr/sbin/in.mpathd", "/usr/sbin/ipmp-boot", "/usr/sbin/if_mpadm", "/usr/bin/ipmpstat",
                 "/etc/default/mpathd"):
        c.check(f"install: {path} is there", os.path.exists(path), "")
    # The package starts in.mpathd (no group yet: it just waits) and enables ipmp-boot for the next boot.
    st = mpathd_ready(60)
    c.check("install: in.mpathd.service started by the package, READY", st.get("ActiveState") == "active"
            and st.get("Type") == "notify", st)

    # The admin's part: the Solaris files, then enable.
    for path, text in SOLARIS_FILES.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    with open("/etc/hosts", "a") as fh:
        fh.write(HOSTS)
    with open("/etc/default/mpathd") as fh:
        mpathd = fh.read()
    # A shorter FDT than Solaris' 10 s, so that a probe-based repair takes seconds here.
    mpathd, n = re.subn(r"(?m)^#?\s*FAILURE_DETECTION_TIME=.*$", "FAILURE_DETECTION_TIME=3000", mpathd)
    if n == 0:
        mpathd += "FAILURE_DETECTION_TIME=3000\n"
    with open("/etc/default/mpathd", "w") as fh:
        fh.write(mpathd)
    dry = vm.sh("/usr/sbin/ipmp-boot", "--dry-run", timeout=60)
    c.check("install: ipmp-boot --dry-run accepts the files", dry.returncode == 0,
            (dry.stdout + dry.stderr)[-3000:])
    vm.emit("text", name="ipmp-boot --dry-run", text=(dry.stdout + dry.stderr)[-6000:])
    en = vm.sh("systemctl", "enable", "ipmp-boot.service", "in.mpathd.service")
    c.check("install: systemctl enable ipmp-boot in.mpathd", en.returncode == 0, en.stderr[-1000:])
    for unit in ("ipmp-boot.service", "in.mpathd.service"):
        state = vm.sh("systemctl", "is-enabled", unit).stdout.strip()
        c.check(f"install: {unit} is enabled", state == "enabled", state)
    return "boot1"


# --------------------------------------------------------------------------
# after a reboot
# --------------------------------------------------------------------------


def _online_addresses() -> dict[str, str]:
    try:
        with open("/run/ipmp-vm-online.json") as fh:
            links = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {a["local"]: link["ifname"] for link in links for a in link.get("addr_info", [])}


def check_boot(c: vm.Checks, when: str) -> None:
    boot = vm.show("ipmp-boot.service", "ActiveState", "Result", "ExecMainStatus",
                   "ExecMainExitTimestampMonotonic")
    c.check(f"{when}: ipmp-boot.service ran to completion", boot.get("ActiveState") == "active"
            and boot.get("Result") == "success" and boot.get("ExecMainStatus") == "0", boot)
    vm.wait_for(lambda: vm.show("ipmp-vm-online.service", "ActiveState").get("ActiveState") == "active", 60)
    online = vm.show("network-online.target", "ActiveState", "ActiveEnterTimestampMonotonic")
    done_us = int(boot.get("ExecMainExitTimestampMonotonic", "0") or 0)
    online_us = int(online.get("ActiveEnterTimestampMonotonic", "0") or 0)
    c.check(f"{when}: ipmp-boot finished before network-online.target was reached",
            0 < done_us <= online_us, {"ipmp-boot exit (us)": done_us, "network-online (us)": online_us})
    if done_us and online_us:
        vm.emit("figure", name=f"{when}: ipmp-boot done, s after kernel start", value=round(done_us / 1e6, 1))
        vm.emit("figure", name=f"{when}: network-online.target, s after kernel start",
                value=round(online_us / 1e6, 1))
    at_online = _online_addresses()
    c.check(f"{when}: every data and test address was on its NIC when network-online.target was reached",
            all(at_online.get(a) == nic for a, nic in WANT.items()), at_online)
    st = mpathd_ready(90)
    c.check(f"{when}: in.mpathd.service is active and READY (Type=notify)",
            st.get("ActiveState") == "active" and st.get("Type") == "notify", st)
    vm.check_addresses(c, when)


def _in_mpathd_lines(mark: str) -> str:
    return vm.journal(mark, "-t", "in.mpathd")


def check_failover(c: vm.Checks) -> None:
    mark = vm.cursor()
    vm.emit("link", nic="ens8", up=False)
    cut = vm.wait_for(lambda: vm.carrier("ens8") == 0, 20, 0.05)
    t0 = time.monotonic()
    c.check("carrier of ens8 (hme0) cut over QMP", bool(cut), {"carrier": vm.carrier("ens8")})

    def failed_over() -> str:
        said = _in_mpathd_lines(mark)
        return said if ("NIC failure detected on hme0" in said
                        and "Successfully failed over from NIC hme0 to NIC hme1" in said) else ""

    said = vm.wait_for(failed_over, 30, 0.1)
    if said:
        vm.emit("figure", name="carrier cut to 'Successfully failed over' (s)",
                value=round(time.monotonic() - t0, 2))
    c.check("journalctl -t in.mpathd: NIC failure detected on hme0, Successfully failed over to hme1",
            bool(said), said or _in_mpathd_lines(mark)[-2000:])
    moved = vm.wait_for(lambda: vm.addresses().get("192.0.2.100") == "ens9", 10)
    c.check("failover: the data address of hme0 is on hme1 and the peer reaches it",
            bool(moved) and vm.peer_reaches("192.0.2.100"), vm.addresses())

    mark = vm.cursor()
    vm.emit("link", nic="ens8", up=True)
    c.check("carrier of ens8 back", bool(vm.wait_for(lambda: vm.carrier("ens8") == 1, 20, 0.05)), "")

    def failed_back() -> str:
        said = _in_mpathd_lines(mark)
        return said if ("NIC repair detected on hme0" in said
                        and "Successfully failed back to NIC hme0" in said) else ""

    said = vm.wait_for(failed_back, 60, 0.2)
    c.check("journalctl -t in.mpathd: NIC repair detected on hme0, Successfully failed back",
            bool(said), said or _in_mpathd_lines(mark)[-2000:])
    vm.check_addresses(c, "after failback")


class Sampler(vm.Sampler):
    """The data addresses every 0.2 s: any sample missing one is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: list[dict[str, str]] = []

    def sample(self) -> None:
        have = vm.addresses()
        if not all(a in have for a in DATA):
            self.lost.append({a: have.get(a, "-") for a in DATA})


def check_kill9(c: vm.Checks) -> None:
    before = vm.show("in.mpathd.service", "MainPID", "NRestarts")
    pid = int(before.get("MainPID", "0") or 0)
    if pid <= 0:
        c.check("kill -9: in.mpathd has a main pid", False, before)
        return
    t0 = time.monotonic()
    with Sampler() as sampler:
        os.kill(pid, signal.SIGKILL)

        def restarted() -> dict[str, str] | None:
            now = vm.show("in.mpathd.service", "MainPID", "NRestarts", "ActiveState", "SubState")
            fresh = now.get("MainPID") not in ("0", str(pid)) and now.get("ActiveState") == "active"
            return now if fresh else None

        after = vm.wait_for(restarted, 60, 0.25)
        elapsed = time.monotonic() - t0
        time.sleep(2)  # the new daemon has taken the group over: keep sampling a little
    vm.emit("figure", name="kill -9 to a new READY daemon (s)", value=round(elapsed, 1))
    c.check("kill -9: systemd restarted in.mpathd (Restart=on-failure), READY again", bool(after),
            {"before": before, "after": after})
    c.check("kill -9: no data address lost at any 0.2 s sample", not sampler.lost and sampler.samples > 5,
            {"samples": sampler.samples, "lost": sampler.lost[:5]})
    vm.check_addresses(c, "after kill -9")


def check_if_mpadm(c: vm.Checks) -> None:
    off = vm.sh("/usr/sbin/if_mpadm", "-d", "hme0", timeout=60)
    c.check("if_mpadm -d hme0 succeeds", off.returncode == 0, (off.stdout + off.stderr)[-1500:])
    moved = vm.wait_for(lambda: vm.addresses().get("192.0.2.100") == "ens9", 20)
    c.check("if_mpadm -d hme0: its data address moved to hme1, the peer reaches it",
            bool(moved) and vm.peer_reaches("192.0.2.100"), vm.addresses())
    on = vm.sh("/usr/sbin/if_mpadm", "-r", "hme0", timeout=60)
    c.check("if_mpadm -r hme0 succeeds", on.returncode == 0, (on.stdout + on.stderr)[-1500:])
    back = vm.wait_for(lambda: vm.addresses().get("192.0.2.100") == "ens8", 30)
    c.check("if_mpadm -r hme0: the data address is back on hme0", bool(back), vm.addresses())
    vm.check_addresses(c, "after if_mpadm -r")


def check_upgrade(c: vm.Checks) -> None:
    v = versions()
    before = vm.show("in.mpathd.service", "MainPID")
    # The peer pings the first data address 10 times a second through the upgrade.
    ping = subprocess.Popen(["ip", "netns", "exec", vm.PEER_NS, "ping", "-n", "-q", "-i", "0.1", "-W", "1",
                             "192.0.2.100"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=vm.ENV)
    t0 = time.monotonic()
    with Sampler() as sampler:
        up = vm.sh("apt-get", "install", "-y", "--no-install-recommends", "-o",
                   "Dpkg::Options::=--force-confold", f"./ipmp_{v['second']}_all.deb", cwd=REPO, env=APT_ENV,
                   timeout=600)
        took = time.monotonic() - t0
        st = mpathd_ready(60)
        time.sleep(2)
    ping.send_signal(signal.SIGINT)
    try:
        out, _ = ping.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        ping.kill()
        out, _ = ping.communicate(timeout=10)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out or "")
    sent, got = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    vm.emit("figure", name="apt-get install of the newer build (s)", value=round(took, 1))
    vm.emit("figure", name="peer pings during the upgrade (sent/received)", value=f"{sent}/{got}")
    c.check("upgrade: apt-get install of the newer build succeeds", up.returncode == 0,
            (up.stdout + up.stderr)[-3000:])
    c.check("upgrade: dpkg says the newer version", installed_version() == f"installed {v['second']}",
            installed_version())
    c.check("upgrade: in.mpathd is back, READY, a new process",
            st.get("ActiveState") == "active" and st.get("MainPID") not in ("0", before.get("MainPID")),
            {"before": before, "after": st})
    c.check("upgrade: no data address lost at any 0.2 s sample", not sampler.lost and sampler.samples > 5,
            {"samples": sampler.samples, "lost": sampler.lost[:5]})
    # Generous: the addresses never left; a lost reply or two is the emulated guest's scheduling.
    c.check("upgrade: the peer's pings were answered (>= 90 %)", sent >= 20 and got >= 0.9 * sent,
            {"sent": sent, "received": got, "ping": (out or "")[-500:]})
    vm.check_addresses(c, "after the upgrade")


def main() -> int:
    c = vm.Checks()
    now = vm.phase("install")
    vm.emit("hello", phase=now, uptime=open("/proc/uptime").read().split()[0])
    steps: tuple[Any, ...]
    following = "done"
    if now == "install":
        steps = ()
        try:
            following = do_install(c)
        except Exception as err:  # reported; the run ends
            c.check("step do_install ran", False, f"{type(err).__name__}: {err}")
    elif now == "boot1":
        steps = (lambda c: check_boot(c, "first reboot"),)
        following = "boot2"
    elif now == "boot2":
        steps = (lambda c: check_boot(c, "second reboot"), check_failover, check_kill9, check_if_mpadm,
                 check_upgrade)
    else:
        steps = ()
        c.check(f"a known phase ({now!r})", False, now)
    vm.run_steps(c, steps)
    return vm.end_run(c, now, following)


if __name__ == "__main__":
    sys.exit(main())
