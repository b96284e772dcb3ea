"""In the guest: a Solaris 11 IPMP configuration made with ``ipadm``, kept across reboots.

Run by ``ipmp-vm-ipadm.service`` at every boot.  The phase is kept in
``/var/lib/ipmp-vm/phase``:

``configure``  (first boot) the commands of Oracle's "Configuring an Active-Active
               IPMP group" (https://docs.oracle.com/cd/E37838_01/html/E60991/gfbby.html):
               ``ipadm create-ip net0``/``net1``, ``create-ipmp -i net0,net1 ipmp0``,
               ``create-addr -T static -a ... ipmp0`` twice (persistent) and once with
               ``-t`` (temporary); the data addresses are bound to the members and the
               peer reaches them; reboot.
``boot1``      ``ipmp-boot`` made the persistent configuration again and only it (the
               temporary address is gone); ``ipadm show-if``/``show-addr`` say so; a
               carrier cut of net0 re-binds its address to net1 and the restored link
               takes one back (illumos ``ipmp_ill_activate``); ``delete-addr`` of one
               persistent address; reboot.
``boot2``      the deleted address stayed deleted, the other is back; power-off.

The helpers are ipmpvm.py's, the guest programs' library.  Standard library
only: it runs on the guest's own python3.
"""

from __future__ import annotations

import sys
from typing import Any

sys.path.insert(0, "/usr/local/lib/ipmp-vm")

# After the sys.path line: python3 -I leaves the script's directory off sys.path.
import ipmpvm as vm

IPADM = "/opt/ipmp/bin/ipadm"
DB = "/etc/ipadm/ipadm.conf"
FIRST, SECOND, TEMPORARY = "192.0.2.100", "192.0.2.101", "192.0.2.102"
MEMBERS = ("ens8", "ens9")  # net0, net1 (/etc/ipmp/ifmap)


def ipadm(c: vm.Checks, *args: str, want: str | None = None) -> str:
    done = vm.sh(IPADM, *args, timeout=60)
    ok = done.returncode == 0 and (want is None or done.stdout.strip() == want)
    c.check(f"ipadm {' '.join(args)}" + (f" prints {want}" if want else ""), ok,
            {"exit": done.returncode, "stdout": done.stdout[-800:], "stderr": done.stderr[-800:]})
    return done.stdout


def mpathd_active(c: vm.Checks, when: str) -> None:
    state = vm.wait_for(
        lambda: vm.show("in.mpathd.service", "ActiveState").get("ActiveState") == "active", 90)
    c.check(f"{when}: in.mpathd.service is active", bool(state), vm.show("in.mpathd.service", "ActiveState"))


def held(addr: str) -> str:
    return vm.addresses().get(addr, "")


def reaches(c: vm.Checks, when: str, *addrs: str) -> None:
    for addr in addrs:
        c.check(f"{when}: the data address {addr} is on a member and the peer reaches it",
                held(addr) in MEMBERS and vm.peer_reaches(addr), vm.addresses())


def do_configure(c: vm.Checks) -> None:
    mpathd_active(c, "configure")
    ipadm(c, "create-ip", "net0")
    ipadm(c, "create-ip", "net1")
    ipadm(c, "create-ipmp", "-i", "net0,net1", "ipmp0")
    ipadm(c, "create-addr", "-T", "static", "-a", f"{FIRST}/24", "ipmp0", want="ipmp0/v4")
    ipadm(c, "create-addr", "-T", "static", "-a", f"{SECOND}/24", "ipmp0", want="ipmp0/v4a")
    ipadm(c, "create-addr", "-t", "-T", "static", "-a", f"{TEMPORARY}/24", "ipmp0", want="ipmp0/v4b")
    c.check("configure: the two persistent addresses are bound to different members (the fewest first)",
            {held(FIRST), held(SECOND)} == set(MEMBERS), vm.addresses())
    reaches(c, "configure", FIRST, SECOND, TEMPORARY)
    try:
        with open(DB) as fh:
            text = fh.read()
    except OSError as err:
        text = str(err)
    c.check(f"configure: {DB} holds the persistent addresses and not the temporary one",
            FIRST in text and SECOND in text and TEMPORARY not in text, text[-2000:])


def check_boot(c: vm.Checks, when: str, *, present: tuple[str, ...], absent: tuple[str, ...]) -> None:
    boot = vm.show("ipmp-boot.service", "ActiveState", "Result", "ExecMainStatus")
    c.check(f"{when}: ipmp-boot.service ran to completion", boot.get("ActiveState") == "active"
            and boot.get("Result") == "success" and boot.get("ExecMainStatus") == "0", boot)
    mpathd_active(c, when)
    reaches(c, when, *present)
    now = vm.addresses()
    c.check(f"{when}: gone after the reboot: {', '.join(absent)}", not any(a in now for a in absent), now)
    shown = ipadm(c, "show-if", "-p", "-o", "ifname,class,over")
    c.check(f"{when}: show-if lists ipmp0 as an IPMP interface over net0 and net1",
            "ipmp0:ipmp:net0 net1" in shown.splitlines(), shown)
    addrs = ipadm(c, "show-addr", "-p", "-o", "addrobj,addr")
    want = {"ipmp0/v4": f"{FIRST}/24", "ipmp0/v4a": f"{SECOND}/24"}
    for obj, addr in want.items():
        line = f"{obj}:{addr}"
        listed = line in addrs.splitlines()
        c.check(f"{when}: show-addr lists {line}" if addr.split("/")[0] in present else
                f"{when}: show-addr no longer lists {line}", listed == (addr.split("/")[0] in present), addrs)


def check_rebind(c: vm.Checks) -> None:
    on_net0 = [a for a in (FIRST, SECOND) if held(a) == "ens8"]
    mark = vm.cursor()
    vm.emit("link", nic="ens8", up=False)
    cut = vm.wait_for(lambda: vm.carrier("ens8") == 0, 20, 0.05)
    c.check("carrier of ens8 (net0) cut over QMP", bool(cut), {"carrier": vm.carrier("ens8")})
    said = vm.wait_for(lambda: "The link has gone down on net0" in vm.journal(mark, "-t", "in.mpathd"),
                       30, 0.2)
    c.check("journalctl -t in.mpathd: The link has gone down on net0", bool(said),
            vm.journal(mark, "-t", "in.mpathd")[-2000:])
    moved = vm.wait_for(lambda: all(held(a) == "ens9" for a in (FIRST, SECOND)), 30)
    c.check(f"net0 failed: its address(es) {on_net0} re-bound to net1", bool(moved), vm.addresses())
    reaches(c, "net0 failed", FIRST, SECOND)
    vm.emit("link", nic="ens8", up=True)
    c.check("carrier of ens8 back", bool(vm.wait_for(lambda: vm.carrier("ens8") == 1, 20, 0.05)), "")
    spread = vm.wait_for(lambda: {held(FIRST), held(SECOND)} == set(MEMBERS), 60)
    c.check("net0 repaired: it takes one address back (two members, two addresses: one each)",
            bool(spread), vm.addresses())
    reaches(c, "net0 repaired", FIRST, SECOND)


def main() -> int:
    c = vm.Checks()
    now = vm.phase("configure")
    vm.emit("hello", phase=now, uptime=open("/proc/uptime").read().split()[0])
    steps: tuple[Any, ...]
    following = "done"
    if now == "configure":
        steps = (do_configure,)
        following = "boot1"
    elif now == "boot1":
        steps = (lambda c: check_boot(c, "first reboot", present=(FIRST, SECOND), absent=(TEMPORARY,)),
                 check_rebind,
                 lambda c: ipadm(c, "delete-addr", "ipmp0/v4a"))
        following = "boot2"
    elif now == "boot2":
        steps = (lambda c: check_boot(c, "second reboot", present=(FIRST,), absent=(SECOND, TEMPORARY)),)
    else:
        steps = ()
        c.check(f"a known phase ({now!r})", False, now)
    vm.run_steps(c, steps)
    return vm.end_run(c, now, following)


if __name__ == "__main__":
    sys.exit(main())
