"""In the guest: ipmp installed where NetworkManager or systemd-networkd manages the NICs.

Run by ``ipmp-vm-coexist.service`` at every boot; the phase is kept in
``/var/lib/ipmp-vm/phase`` (package_check.py's helpers) and the network
manager under test is named in ``/etc/ipmp-vm.json`` (``networkmanager`` or
``networkd``).  The guest has the group's NICs ``ens8`` (virtio) and ``ens9``
(e1000, a second driver), the router and peer namespace on ``ens10`` and a
management NIC ``ens11`` that the network manager keeps.

``install``  (first boot, the manager enabled and configured as an admin left
             it: a static address and gateway on ens8, DHCP on ens9, a static
             address on ens11) the manager manages ens8 and ens9 (its tool says
             so, its address is on ens8, ens9's DHCP requests are seen on the
             hub); ``apt-get install`` of the package; the Solaris files;
             ``ipmp-boot`` refuses with its message and changes nothing, and so
             does ``ipmp-boot.service``; ``ipmp-boot --take-over`` (it has the
             manager read the drop-ins and waits until it lets go): the
             addresses of the files, nothing of the manager's; the units
             enabled; reboot.
``boot1``    the addresses were there when ``network-online.target`` was
             reached, in.mpathd active (READY), the peer reaches every data
             address; the manager reports ens8 and ens9 unmanaged and keeps
             ens11; nothing of the manager's on ens8 or ens9 (no address, no
             route, no DHCP request on the hub since boot, ipmp's rules in
             place); the manager configures ens11 again and ipmp's rules are
             never missing; carrier cut over QMP on ens9 (e1000) and on ens8 (virtio):
             failover, the Solaris lines in ``journalctl -t in.mpathd``,
             failback; a silent failure of ens8 (the router namespace drops
             its frames with tc while carrier stays up): probe-based failure
             detection, failover, repair once the drop is removed; the manager
             still leaves ens8 and ens9 alone; power-off.

Standard library only: it runs on the guest's own python3.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any

sys.path.insert(0, "/usr/local/lib/ipmp-vm")
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))

# After the sys.path lines: python3 -I leaves the script's directory off sys.path.
import ipmpvm as vm
import package_check as pc

NM = "networkmanager"
NETWORKD = "networkd"
#: The group's NICs (Linux -> Solaris), their MACs (tests/vm/guest.py nic()) and drivers.
GROUP = {"ens8": "hme0", "ens9": "hme1"}
MACS = {"ens8": "52:54:00:49:50:08", "ens9": "52:54:00:49:50:09"}
#: The NIC the manager keeps, and its address.
MGMT, MGMT_ADDR = "ens11", "198.51.100.11"
#: What the admin's configuration of the manager puts on ens8 (an address, a gateway).
THEIRS_ADDR, THEIRS_GATEWAY = "203.0.113.8", "203.0.113.1"
SNIFF = "/run/ipmp-vm-sniff.jsonl"
#: The routing protocol number of ipmp's routes and rules (ipmp.model.RTPROT_IPMP).
RTPROT_IPMP = "73"
#: /etc/default/mpathd FAILURE_DETECTION_TIME here (ms).
FDT_MS = 3000
#: How often a check looks for in.mpathd's lines (s).  Each look is a journalctl process, which
#: under TCG costs the guest a good part of a vCPU: every 0.1 s was load beside the daemon under
#: test that the figures do not need.
JOURNAL_POLL = 0.25
#: The router namespace's NIC on the hub, where tc drops a NIC's frames (the silent failure).
ROUTER_NIC = "ens10"


def manager() -> str:
    return str(pc.versions()["manager"])


def service() -> str:
    return "NetworkManager" if manager() == NM else "systemd-networkd"


def reload_command() -> tuple[str, ...]:
    return ("nmcli", "general", "reload", "conf") if manager() == NM else ("networkctl", "reload")


def dropins() -> dict[str, str]:
    """The files ``--take-over`` writes -> a line each must hold."""
    if manager() == NM:
        return {"/etc/NetworkManager/conf.d/90-ipmp.conf":
                "unmanaged-devices+=interface-name:ens8;interface-name:ens9;"}
    return {**{f"/etc/systemd/network/10-ipmp-{nic}.network": "Unmanaged=yes" for nic in GROUP},
            # networkd removes the rules it did not make, in.mpathd's too, unless told not to.
            "/etc/systemd/networkd.conf.d/90-ipmp.conf": "ManageForeignRoutingPolicyRules=no"}


def link_states() -> dict[str, str]:
    """The manager's own word for each link: NIC -> state (NetworkManager) or setup state (networkd)."""
    states: dict[str, str] = {}
    if manager() == NM:
        for line in vm.sh("nmcli", "-t", "-f", "DEVICE,STATE", "device").stdout.splitlines():
            name, _, state = line.partition(":")
            states[name] = state
    else:
        for line in vm.sh("networkctl", "list", "--no-legend", "--no-pager").stdout.splitlines():
            words = line.split()
            if len(words) >= 5:
                states[words[1]] = words[4]
    return states


def managed(state: str | None) -> bool:
    return state not in (None, "", "unmanaged")


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def sniffed(since: float = 0.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    try:
        with open(SNIFF) as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if float(entry.get("t", 0)) >= since:
                    found.append(entry)
    except OSError:
        pass
    return found


def dhcp_from(nics: tuple[str, ...], since: float = 0.0) -> list[dict[str, Any]]:
    macs = {MACS[n]: n for n in nics}
    return [dict(e, nic=macs[e["src"]]) for e in sniffed(since)
            if e.get("src") in macs and e.get("kind") in ("dhcp4", "dhcp6")]


def routes_on(nics: tuple[str, ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for family in ("-4", "-6"):
        out = vm.sh("ip", "-j", family, "route", "show", "table", "all").stdout
        for route in json.loads(out or "[]"):
            if route.get("dev") in nics:
                found.append(dict(route, family=family))
    return found


def addresses6_on(nics: tuple[str, ...]) -> dict[str, str]:
    out = vm.sh("ip", "-j", "-6", "addr", "show").stdout
    return {f"{a['local']}/{a['prefixlen']}": link["ifname"] for link in json.loads(out or "[]")
            if link.get("ifname") in nics for a in link.get("addr_info", [])}


def foreign_routes(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The routes that are neither ipmp's (proto 73) nor the kernel's own.

    ipmp's addresses are ``noprefixroute``: an IPv4 ``proto kernel`` route in
    a table other than ``local`` is the prefix route of an address that is not
    ipmp's (NetworkManager's come that way, metric 100 and up).
    """
    return [r for r in routes if r.get("protocol") not in ("kernel", RTPROT_IPMP)
            or (r["family"] == "-4" and r.get("protocol") == "kernel" and r.get("table") != "local")]


def ipmp_rules() -> list[str]:
    out = vm.sh("ip", "-d", "-4", "rule", "show").stdout
    return [line.strip() for line in out.splitlines() if re.search(rf"\bproto {RTPROT_IPMP}\b", line)]


def manager_journal(mark: str = "") -> str:
    unit = "NetworkManager.service" if manager() == NM else "systemd-networkd.service"
    return vm.journal(mark, "-b", "-u", unit)


def manager_lines_about(text: str, nics: tuple[str, ...]) -> list[str]:
    """The manager's journal lines that name one of ``nics``."""
    pattern = re.compile(r"\b(" + "|".join(nics) + r")\b")
    return [line for line in text.splitlines() if pattern.search(line)]


#: Words of the manager's journal that mean it acted on a NIC (NetworkManager: an activation,
#: its DHCP client; networkd: its DHCP client, an address or route it set).
#: (Both log carrier and the kernel's own link-local address, "Gained IPv6LL", for links they
#: leave alone too: those only observe.)
ACTING = re.compile(r"activation|dhcp|ip-config|ip-check|Setting address|Configuring route", re.IGNORECASE)


# --------------------------------------------------------------------------
# install (first boot)
# --------------------------------------------------------------------------


def check_premise(c: vm.Checks) -> None:
    """The manager really manages the group's NICs: otherwise the rest would prove nothing."""
    want = (*GROUP, MGMT)
    states = vm.wait_for(lambda: (s := link_states()) and all(managed(s.get(n)) for n in want) and s, 90, 1)
    c.check(f"before ipmp: {service()} manages ens8, ens9 and ens11", bool(states), link_states())
    got = vm.wait_for(lambda: (a := vm.addresses()).get(THEIRS_ADDR) == "ens8"
                      and a.get(MGMT_ADDR) == MGMT, 60)
    c.check(f"before ipmp: {service()} put its address on ens8 (and ens11's)", bool(got), vm.addresses())
    route = [r for r in routes_on(("ens8",))
             if r.get("dst") == "default" and r.get("gateway") == THEIRS_GATEWAY]
    c.check(f"before ipmp: {service()}'s default route via ens8", bool(route), routes_on(("ens8",)))
    dhcp = vm.wait_for(lambda: dhcp_from(("ens9",)), 90, 1)
    c.check(f"before ipmp: the capture on the hub sees {service()}'s DHCP requests from ens9",
            bool(dhcp), {"dhcp": (dhcp or [])[:3], "sniffed": sniffed()[:10]})


def install_package(c: vm.Checks) -> None:
    v = pc.versions()
    upd = vm.sh("apt-get", "update", timeout=300, env=pc.APT_ENV)
    c.check("apt-get update from the local repository only", upd.returncode == 0,
            (upd.stdout + upd.stderr)[-2000:])
    t0 = time.monotonic()
    inst = vm.sh("apt-get", "install", "-y", "--no-install-recommends", f"./ipmp_{v['first']}_all.deb",
                 cwd=pc.REPO, env=pc.APT_ENV, timeout=600)
    vm.emit("figure", name="apt-get install ./ipmp_*.deb (s)", value=round(time.monotonic() - t0, 1))
    c.check("apt-get install ./ipmp_<v>_all.deb succeeds", inst.returncode == 0 and pc.installed_version()
            == f"installed {v['first']}", (inst.stdout + inst.stderr)[-3000:])
    for path, text in pc.SOLARIS_FILES.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    with open("/etc/hosts", "a") as fh:
        fh.write(pc.HOSTS)
    with open("/etc/default/mpathd") as fh:
        mpathd = fh.read()
    mpathd, n = re.subn(r"(?m)^#?\s*FAILURE_DETECTION_TIME=.*$", f"FAILURE_DETECTION_TIME={FDT_MS}", mpathd)
    with open("/etc/default/mpathd", "w") as fh:
        fh.write(mpathd if n else mpathd + f"FAILURE_DETECTION_TIME={FDT_MS}\n")


def check_refusal(c: vm.Checks) -> None:
    name = service()
    done = vm.sh("/usr/sbin/ipmp-boot", timeout=120)
    said = done.stdout + done.stderr
    vm.emit("text", name="ipmp-boot (refused)", text=said)
    c.check(f"ipmp-boot refuses: exit 1, '{name} manages ens8 (hme0), ens9 (hme1)', "
            "nothing changed, --take-over named",
            done.returncode == 1 and f"{name} manages ens8 (hme0), ens9 (hme1)" in said
            and "Nothing was changed" in said and "ipmp-boot --take-over" in said, said)
    ours = {a: n for a, n in vm.addresses().items() if a in pc.WANT}
    c.check("ipmp-boot's refusal changed nothing: no address of the Solaris files on a NIC", not ours, ours)
    c.check(f"ipmp-boot's refusal left {name}'s address on ens8",
            vm.addresses().get(THEIRS_ADDR) == "ens8", vm.addresses())
    # At boot it is the unit that runs it, under its sandbox (nmcli over D-Bus, networkctl over varlink).
    mark = vm.cursor()
    unit = vm.sh("systemctl", "start", "ipmp-boot.service", timeout=180)
    journal = vm.journal(mark, "-u", "ipmp-boot.service")
    c.check("systemctl start ipmp-boot.service fails with the same message under its sandbox",
            unit.returncode != 0 and f"{name} manages ens8 (hme0), ens9 (hme1)" in journal, journal[-2500:])
    vm.sh("systemctl", "reset-failed", "ipmp-boot.service")


def check_take_over(c: vm.Checks) -> None:
    """``ipmp-boot --take-over`` as the refusal said: the drop-in, the service told to read it, the NICs."""
    name = service()
    reload = " ".join(reload_command())
    since = boottime()
    done = vm.sh("/usr/sbin/ipmp-boot", "--take-over", timeout=180)
    said = done.stdout + done.stderr
    vm.emit("text", name="ipmp-boot --take-over", text=said)
    c.check(f"ipmp-boot --take-over succeeds, names the drop-in, ran '{reload}' and saw {name} let go",
            done.returncode == 0 and all(path in said for path in dropins())
            and f"ran '{reload}': {name} let go of ens8 ens9" in said, said)
    for path, line in dropins().items():
        try:
            st = os.stat(path)
            with open(path) as fh:
                text = fh.read()
        except OSError as err:
            c.check(f"--take-over wrote {path}", False, str(err))
            continue
        c.check(f"--take-over wrote {path} (0644, root), marking the NICs unmanaged",
                line in text and (st.st_mode & 0o777) == 0o644 and st.st_uid == 0, text)
    states = link_states()
    c.check(f"after --take-over: {name} reports ens8 and ens9 unmanaged, keeps ens11",
            all(states.get(n) == "unmanaged" for n in GROUP) and managed(states.get(MGMT)), states)
    # What the admin finds now, without a reboot: ipmp's addresses in place, the manager's gone.
    vm.check_addresses(c, "after --take-over")
    left = {a: n for a, n in vm.addresses().items() if n in GROUP and a not in pc.WANT}
    theirs = foreign_routes(routes_on(tuple(GROUP)))
    vm.emit("text", name="after --take-over: addresses and routes on ens8, ens9",
            text=json.dumps({"addresses": {a: n for a, n in vm.addresses().items() if n in GROUP},
                             "routes": routes_on(tuple(GROUP)),
                             "dhcp since --take-over": dhcp_from(tuple(GROUP), since)}, indent=1))
    c.check(f"after --take-over: no address or route of {name}'s left on ens8 or ens9",
            not left and not theirs, {"addresses": left, "routes": theirs})


def enable_units(c: vm.Checks) -> None:
    en = vm.sh("systemctl", "enable", "ipmp-boot.service", "in.mpathd.service")
    c.check("systemctl enable ipmp-boot in.mpathd", en.returncode == 0, en.stderr[-1000:])


# --------------------------------------------------------------------------
# after the reboot
# --------------------------------------------------------------------------


def check_left_alone(c: vm.Checks, when: str) -> None:
    name = service()
    states = link_states()
    c.check(f"{when}: {name} reports ens8 and ens9 unmanaged",
            all(states.get(n) == "unmanaged" for n in GROUP), states)
    have = vm.addresses()
    c.check(f"{when}: {name} still manages ens11, with its address",
            managed(states.get(MGMT)) and have.get(MGMT_ADDR) == MGMT, {"states": states, "addresses": have})
    extra = {a: n for a, n in have.items() if n in GROUP and a not in pc.WANT}
    c.check(f"{when}: ens8 and ens9 hold no IPv4 address but the Solaris files'", not extra,
            {a: n for a, n in have.items() if n in GROUP})
    v6 = {a: n for a, n in addresses6_on(tuple(GROUP)).items() if not a.startswith("fe80:")}
    c.check(f"{when}: ens8 and ens9 hold no IPv6 address but the kernel's link-local", not v6, v6)
    routes = routes_on(tuple(GROUP))
    foreign = foreign_routes(routes)
    ours = [r for r in routes if r.get("protocol") == RTPROT_IPMP]
    c.check(f"{when}: every route on ens8 and ens9 is ipmp's (proto 73) or the kernel's",
            bool(ours) and not foreign, {"foreign": foreign, "ipmp's": len(ours)})
    rules = ipmp_rules()
    missing = [a for a in vm.DATA if not any(f"from {a} " in r for r in rules)]
    c.check(f"{when}: ipmp's policy rules (proto 73) are all there", not missing,
            {"missing": missing, "rules": rules})
    dhcp = dhcp_from(tuple(GROUP))
    seen = {e["src"] for e in sniffed() if e.get("kind") == "first"}
    c.check(f"{when}: no DHCP request from ens8 or ens9 on the hub since boot (the capture sees both NICs)",
            not dhcp and all(MACS[n] in seen for n in GROUP), {"dhcp": dhcp[:5], "capture saw": sorted(seen)})
    lines = manager_lines_about(manager_journal(), tuple(GROUP))
    acting = [line for line in lines if ACTING.search(line)]
    c.check(f"{when}: {name}'s journal shows it did nothing on ens8 or ens9 this boot", not acting,
            {"acting": acting[:10], "all lines about them": lines[-15:]})


class RuleSampler(vm.Sampler):
    """ipmp's policy rules as fast as ``ip rule`` goes, in a thread: which went missing, how long."""

    interval = 0.0

    def __init__(self, want: list[str]) -> None:
        super().__init__()
        self.want = set(want)
        self.missing: dict[str, float] = {}  # rule -> first time (monotonic) it was missing
        self.back: dict[str, float] = {}  # rule -> first time it was there again

    def sample(self) -> None:
        have = set(ipmp_rules())
        now = time.monotonic()
        for rule in self.want - have:
            self.missing.setdefault(rule, now)
        for rule in self.missing:
            if rule in have:
                self.back.setdefault(rule, now)


def check_manager_reconfigures(c: vm.Checks) -> None:
    """The manager configures its own NIC again: ipmp's addresses, routes and policy rules stay.

    systemd-networkd removes every routing policy rule it did not make when it
    configures a link (networkd.conf ``ManageForeignRoutingPolicyRules=``,
    default yes), ipmp's per-address rules included; ``--take-over`` turns
    that off.  A rule sampler runs meanwhile: a rule removed and put back by
    in.mpathd within the next look is still caught.
    """
    before_rules = ipmp_rules()
    before_routes = [r for r in routes_on(tuple(GROUP)) if r.get("protocol") == RTPROT_IPMP]
    with RuleSampler(before_rules) as sampler:
        time.sleep(0.5)
        if manager() == NM:
            done = vm.sh("nmcli", "connection", "up", "mgmt", timeout=60)
        else:
            done = vm.sh("networkctl", "reconfigure", MGMT, timeout=60)
        again = vm.wait_for(lambda: vm.addresses().get(MGMT_ADDR) == MGMT
                            and link_states().get(MGMT) in ("connected", "configured"), 30, 0.5)
        time.sleep(3)
    c.check(f"{service()} configured ens11 again ({' '.join(done.args[:3])})",
            done.returncode == 0 and bool(again), {"out": done.stdout + done.stderr, "states": link_states()})
    after_rules = ipmp_rules()
    after_routes = [r for r in routes_on(tuple(GROUP)) if r.get("protocol") == RTPROT_IPMP]
    gone = {rule: round(sampler.back[rule] - t, 2) if rule in sampler.back else "not back"
            for rule, t in sampler.missing.items()}
    if gone:
        vm.emit("text", name=f"{service()} removed ipmp's policy rules (s until they were back)",
                text=json.dumps(gone, indent=1))
    c.check(f"while {service()} configured ens11 again: ipmp's policy rules never missing "
            f"(sampled {sampler.samples} times)", bool(before_rules) and not gone and sampler.samples > 10,
            {"missing (s until back)": gone, "samples": sampler.samples})
    c.check(f"after {service()} configured ens11 again: ipmp's policy rules and routes all there",
            sorted(after_rules) == sorted(before_rules) and len(after_routes) == len(before_routes)
            and bool(before_rules), {"before": before_rules, "after": after_rules,
                                     "routes before": len(before_routes), "routes after": len(after_routes)})
    vm.check_addresses(c, f"after {service()} configured ens11 again")


def check_failover(c: vm.Checks, nic: str, other: str, driver: str) -> None:
    name, other_name = GROUP[nic], GROUP[other]
    data = next(a for a, n in vm.DATA.items() if n == nic)
    mark = vm.cursor()
    vm.emit("link", nic=nic, up=False)
    cut = vm.wait_for(lambda: vm.carrier(nic) == 0, 20, 0.05)
    t0 = time.monotonic()
    c.check(f"carrier of {nic} ({name}, {driver}) cut over QMP", bool(cut), {"carrier": vm.carrier(nic)})
    lines = (f"NIC failure detected on {name}",
             f"Successfully failed over from NIC {name} to NIC {other_name}")
    said = vm.wait_for(lambda: (s := pc._in_mpathd_lines(mark)) and all(x in s for x in lines) and s, 30,
                      JOURNAL_POLL)
    if said:
        vm.emit("figure", name=f"{driver} carrier cut to 'Successfully failed over' (s)",
                value=round(time.monotonic() - t0, 2))
    c.check(f"{driver}: journalctl -t in.mpathd: {lines[0]}, {lines[1]}", bool(said),
            said or pc._in_mpathd_lines(mark)[-2000:])
    moved = vm.wait_for(lambda: vm.addresses().get(data) == other, 10)
    c.check(f"{driver}: the data address {data} is on {other} and the peer reaches it",
            bool(moved) and vm.peer_reaches(data), vm.addresses())
    mark = vm.cursor()
    vm.emit("link", nic=nic, up=True)
    c.check(f"carrier of {nic} back", bool(vm.wait_for(lambda: vm.carrier(nic) == 1, 20, 0.05)), "")
    lines = (f"NIC repair detected on {name}", f"Successfully failed back to NIC {name}")
    said = vm.wait_for(lambda: (s := pc._in_mpathd_lines(mark)) and all(x in s for x in lines) and s, 60, 0.2)
    c.check(f"{driver}: journalctl -t in.mpathd: {lines[0]}, {lines[1]}", bool(said),
            said or pc._in_mpathd_lines(mark)[-2000:])
    vm.check_addresses(c, f"after the failback of {name} ({driver})")


def _tc(*args: str) -> Any:
    return vm.sh("ip", "netns", "exec", vm.PEER_NS, "tc", *args, timeout=30)


def check_silent_failure(c: vm.Checks) -> None:
    """Frames of ens8 dropped at the router while its carrier stays up: only the probes can tell."""
    mac = MACS["ens8"]
    mark = vm.cursor()
    setup = [_tc("qdisc", "add", "dev", ROUTER_NIC, "clsact"),
             _tc("filter", "add", "dev", ROUTER_NIC, "egress", "protocol", "all", "pref", "1", "flower",
                 "dst_mac", mac, "action", "drop"),
             _tc("filter", "add", "dev", ROUTER_NIC, "ingress", "protocol", "all", "pref", "1", "flower",
                 "src_mac", mac, "action", "drop")]
    # From the moment the last filter is in: no probe of ens8 reaches the router, no reply comes back.
    t0 = time.monotonic()
    try:
        c.check("silent failure: tc in the router namespace drops every frame from and to ens8",
                all(s.returncode == 0 for s in setup), [s.stderr for s in setup])
        lines = ("NIC failure detected on hme0", "Successfully failed over from NIC hme0 to NIC hme1")
        said = vm.wait_for(lambda: (s := pc._in_mpathd_lines(mark)) and lines[0] in s and s, 60, JOURNAL_POLL)
        detected = time.monotonic() - t0
        if said:
            vm.emit("figure", value=round(detected, 2),
                    name=f"silent failure: frames dropped to '{lines[0]}' (s; FDT {FDT_MS / 1000:g} s)")
        c.check(f"silent failure: '{lines[0]}' from the probes, within 2 x FDT, carrier still up",
                bool(said) and detected <= 2 * FDT_MS / 1000 and vm.carrier("ens8") == 1,
                {"seconds": round(detected, 2), "carrier": vm.carrier("ens8"),
                 "said": (said or pc._in_mpathd_lines(mark))[-1500:]})
        said = vm.wait_for(lambda: (s := pc._in_mpathd_lines(mark)) and lines[1] in s and s, 30, JOURNAL_POLL)
        c.check(f"silent failure: '{lines[1]}'", bool(said), pc._in_mpathd_lines(mark)[-1500:])
        moved = vm.wait_for(lambda: vm.addresses().get("192.0.2.100") == "ens9", 10)
        c.check("silent failure: 192.0.2.100 is on ens9 and the peer reaches it",
                bool(moved) and vm.peer_reaches("192.0.2.100"), vm.addresses())
        mark = vm.cursor()
    finally:
        removed = _tc("qdisc", "del", "dev", ROUTER_NIC, "clsact")
    c.check("silent failure: the drop removed", removed.returncode == 0, removed.stderr)
    lines = ("NIC repair detected on hme0", "Successfully failed back to NIC hme0")
    said = vm.wait_for(lambda: (s := pc._in_mpathd_lines(mark)) and all(x in s for x in lines) and s, 90, 0.2)
    c.check(f"silent failure: the drop removed: '{lines[0]}', '{lines[1]}'", bool(said),
            said or pc._in_mpathd_lines(mark)[-2000:])
    vm.check_addresses(c, "after the silent failure's repair")


# --------------------------------------------------------------------------


def main() -> int:
    c = vm.Checks()
    now = vm.phase("install")
    vm.emit("hello", phase=now, manager=manager(), uptime=open("/proc/uptime").read().split()[0])
    steps: tuple[Any, ...]
    following = "done"
    if now == "install":
        steps = (check_premise, install_package, check_refusal, check_take_over, enable_units)
        following = "boot1"
    elif now == "boot1":
        steps = (lambda c: pc.check_boot(c, "after the reboot"),
                 lambda c: check_left_alone(c, "after the reboot"),
                 check_manager_reconfigures,
                 lambda c: check_failover(c, "ens9", "ens8", "e1000"),
                 lambda c: check_failover(c, "ens8", "ens9", "virtio"),
                 check_silent_failure,
                 lambda c: check_left_alone(c, "after the faults"))
    else:
        steps = ()
        c.check(f"a known phase ({now!r})", False, now)
    vm.run_steps(c, steps)

    def report() -> None:
        vm.emit("text", name=f"journalctl -u in.mpathd -u ipmp-boot ({now})", text=vm.daemon_journal(12000))
        vm.emit("text", name=f"journalctl -u {service()} ({now})", text=manager_journal()[-12000:])
        vm.emit("text", name=f"network state ({now})", text=vm.network_state())

    return vm.end_run(c, now, following, report)


if __name__ == "__main__":
    sys.exit(main())
