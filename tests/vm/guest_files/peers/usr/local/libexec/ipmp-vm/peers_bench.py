"""In the guest: bonding, teamd and ipmp, one after the other, on the same two NICs and faults.

Run by ``ipmp-vm-peers.service`` (standard library only: the guest's own
python3).  ``ens8`` and ``ens9`` are the two NICs under test, ``ens10`` (same
QEMU hub) sits in the namespace ``ipmpvm-rt`` as the router 192.0.2.1 and as
the peer, which pings the data address 192.0.2.100 at 100/s.

Each configuration (a "row") is set up, made to prefer ``ens8`` (bonding
``primary``, teamd port ``prio``, ipmp's data address on qfe0 = ens8 with
FAILBACK=yes), then put through four phases, each with its own ping run:

* ``carrier``: ``ens8``'s carrier cut by the host (QMP ``set_link``);
* ``carrier-failback``: carrier back;
* ``silent``: every frame in and out of ``ens8`` dropped (tc ``matchall``
  ``drop`` on the NIC's ingress and egress) while carrier stays up -- the
  failure a link monitor cannot see and a probe can;
* ``silent-failback``: the drop removed.

The figures of a phase: pings lost, the longest silence between two replies,
and the time from the fault to the first good reply after it.  One
``{"kind": "phase", ...}`` message per phase; ``done`` last.  Every wait is
bounded; a row that fails to come up is reported as such and the next runs.

The host side is bench/peers.py; the protocol is tests/vm/guest.py's.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import tty
from collections.abc import Callable
from typing import Any

CTL = "/dev/ttyS1"
PREFIX = "IPMPVM "
PEER_NS = "ipmpvm-rt"
ROUTER = "192.0.2.1"
DATA = "192.0.2.100"
PRIMARY, BACKUP = "ens8", "ens9"
#: The peer's ping interval (100/s).
INTERVAL = 0.01
#: How long each phase's ping runs after its fault: long enough for the slowest
#: detector that can detect it (ipmp at FDT 1 s, repair after NUM_PROBE_REPAIRS).
WINDOW = {"carrier": 6.0, "carrier-failback": 6.0, "silent": 8.0, "silent-failback": 8.0}
#: A silence between replies longer than this many intervals counts as an outage.
SILENCE = 3
#: Baseline before each fault (the ping must be answered then).
LEAD = 1.0
IPMP_BIN = "/opt/ipmp/bin"
ENV = dict(os.environ, LC_ALL="C", SYSTEMD_COLORS="0", SYSTEMD_PAGER="", PAGER="cat")

_ctl: Any = None


def emit(kind: str, **fields: Any) -> None:
    global _ctl
    if _ctl is None:
        fd = os.open(CTL, os.O_WRONLY | os.O_NOCTTY)
        tty.setraw(fd)  # no echo, no \n -> \r\n
        _ctl = os.fdopen(fd, "w", buffering=1)
    _ctl.write(PREFIX + json.dumps({"kind": kind, **fields}) + "\n")
    _ctl.flush()


def log(text: str) -> None:
    print(text, flush=True)


def sh(*argv: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout} s")
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


def wait_for(what: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def carrier(nic: str) -> int | None:
    try:
        with open(f"/sys/class/net/{nic}/carrier") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def peer_reaches() -> bool:
    return sh("ip", "netns", "exec", PEER_NS, "ping", "-n", "-q", "-c", "1", "-W", "1", DATA,
              timeout=10).returncode == 0


def clean_nics() -> None:
    for nic in (PRIMARY, BACKUP):
        sh("ip", "link", "set", nic, "nomaster")
        sh("ip", "addr", "flush", "dev", nic)
        sh("tc", "qdisc", "del", "dev", nic, "clsact")
        sh("ip", "link", "set", nic, "up")
    sh("ip", "-n", PEER_NS, "neigh", "flush", "all")


# --------------------------------------------------------------------------
# The rows
# --------------------------------------------------------------------------


class Row:
    name = ""

    def up(self) -> None:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def on_primary(self) -> bool:
        """Whether the data address is served through ens8 again (failback done)."""
        raise NotImplementedError

    def daemon_pids(self) -> list[int]:
        return []


class Bond(Row):
    def __init__(self, name: str, options: list[str]) -> None:
        self.name = name
        self.options = options

    def up(self) -> None:
        sh("ip", "link", "add", "bond0", "type", "bond", "mode", "active-backup", *self.options, check=True)
        for nic in (PRIMARY, BACKUP):
            sh("ip", "link", "set", nic, "down", check=True)
            sh("ip", "link", "set", nic, "master", "bond0", check=True)
        # primary: fail back to ens8 when it returns (primary_reselect=always, the default),
        # as ipmp's FAILBACK=yes does.
        sh("ip", "link", "set", "bond0", "type", "bond", "primary", PRIMARY, check=True)
        sh("ip", "link", "set", "bond0", "up", check=True)
        sh("ip", "addr", "add", f"{DATA}/24", "dev", "bond0", check=True)

    def down(self) -> None:
        sh("ip", "link", "del", "bond0")
        clean_nics()

    def on_primary(self) -> bool:
        try:
            with open("/sys/class/net/bond0/bonding/active_slave") as fh:
                return fh.read().strip() == PRIMARY
        except OSError:
            return False


class Team(Row):
    def __init__(self, name: str, watch: dict[str, Any]) -> None:
        self.name = name
        self.watch = watch
        self.pid: int | None = None

    def up(self) -> None:
        conf = {"device": "team0", "runner": {"name": "activebackup"}, "link_watch": self.watch,
                # prio: ens8 preferred, and taken back when it returns (sticky is false by default).
                "ports": {PRIMARY: {"prio": 100}, BACKUP: {"prio": 50}}}
        with open("/run/ipmp-vm-team0.conf", "w") as fh:
            json.dump(conf, fh)
        for nic in (PRIMARY, BACKUP):
            sh("ip", "link", "set", nic, "down", check=True)
        sh("teamd", "-d", "-r", "-f", "/run/ipmp-vm-team0.conf", "-p", "/run/ipmp-vm-team0.pid", check=True,
           timeout=60)
        sh("ip", "link", "set", "team0", "up", check=True)
        sh("ip", "addr", "add", f"{DATA}/24", "dev", "team0", check=True)
        with open("/run/ipmp-vm-team0.pid") as fh:
            self.pid = int(fh.read().strip())

    def down(self) -> None:
        sh("teamd", "-k", "-t", "team0", "-p", "/run/ipmp-vm-team0.pid", timeout=30)
        wait_for(lambda: not os.path.exists("/sys/class/net/team0"), 10)
        sh("ip", "link", "del", "team0")
        clean_nics()

    def on_primary(self) -> bool:
        out = sh("teamdctl", "team0", "state", "item", "get", "runner.active_port", timeout=10).stdout
        return out.strip() == PRIMARY

    def daemon_pids(self) -> list[int]:
        return [self.pid] if self.pid else []


HOSTNAME_LINK = {"qfe0": "myhost netmask + broadcast + group prod up",
                 "qfe1": "myhost-2 netmask + broadcast + group prod up"}
#: The same, with a test address on each NIC: probe-based detection (Solaris: addif ... -failover).
TEST_ADDRESS = " addif {} deprecated -failover netmask + broadcast + up"
HOSTNAME_PROBE = {"qfe0": HOSTNAME_LINK["qfe0"] + TEST_ADDRESS.format("myhost-qfe0"),
                  "qfe1": HOSTNAME_LINK["qfe1"] + TEST_ADDRESS.format("myhost-qfe1")}


class Ipmp(Row):
    """ipmp-boot and in.mpathd under their own systemd units, as installed."""

    def __init__(self, name: str, fdt_ms: int | None) -> None:
        self.name = name
        self.fdt_ms = fdt_ms

    def up(self) -> None:
        files = HOSTNAME_PROBE if self.fdt_ms is not None else HOSTNAME_LINK
        for ifname, text in files.items():
            with open(f"/etc/hostname.{ifname}", "w") as fh:
                fh.write(text + "\n")
        with open("/etc/defaultrouter", "w") as fh:
            fh.write(ROUTER + "\n")
        with open("/etc/default/mpathd", "w") as fh:
            # Link-only: no test addresses, so no probes; the FDT does not matter then.
            fh.write(f"FAILURE_DETECTION_TIME={self.fdt_ms or 10000}\nFAILBACK=yes\n"
                     "TRACK_INTERFACES_ONLY_WITH_GROUPS=yes\n")
        sh("systemctl", "restart", "ipmp-boot.service", check=True, timeout=120)
        sh("systemctl", "restart", "in.mpathd.service", check=True, timeout=120)

    def down(self) -> None:
        sh("systemctl", "stop", "in.mpathd.service", "ipmp-boot.service", timeout=120)
        for path in ("/run/ipmp/state.json", "/etc/hostname.qfe0", "/etc/hostname.qfe1",
                     "/etc/defaultrouter"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        sh("ip", "route", "del", "default")
        clean_nics()

    def on_primary(self) -> bool:
        out = sh("ip", "-j", "-4", "addr", "show", "dev", PRIMARY).stdout
        try:
            links = json.loads(out or "[]")
            return any(a.get("local") == DATA for link in links for a in link.get("addr_info", []))
        except ValueError:
            return False

    def daemon_pids(self) -> list[int]:
        pid = sh("systemctl", "show", "in.mpathd.service", "--property=MainPID", "--value").stdout.strip()
        return [int(pid)] if pid.isdigit() and pid != "0" else []


# --------------------------------------------------------------------------
# The peer's ping and its figures
# --------------------------------------------------------------------------

_REPLY = re.compile(r"^\[(\d+\.\d+)\].*icmp_seq=(\d+)")


class Ping:
    """``ping -D -i 0.01`` from the peer namespace; the replies' wall-clock stamps and sequence numbers."""

    def __init__(self) -> None:
        self.out = open("/run/ipmp-vm-ping.out", "w+")
        self.proc = subprocess.Popen(["ip", "netns", "exec", PEER_NS, "ping", "-n", "-D", "-i", str(INTERVAL),
                                      "-W", "1", DATA], stdout=self.out, stderr=subprocess.DEVNULL,
                                     env=ENV)
        self.started = time.time()

    def stop(self) -> list[tuple[float, int]]:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.out.seek(0)
        replies = []
        for line in self.out:
            m = _REPLY.match(line)
            if m:
                replies.append((float(m.group(1)), int(m.group(2))))
        self.out.close()
        return replies


def figures(replies: list[tuple[float, int]], fault_at: float, window_end: float) -> dict[str, Any]:
    """Pings lost, the longest silence, and the time from the fault to the first good reply after it.

    Lost: sequence numbers missing between the first and the last reply (the
    ping ran through the whole window, so a loss at its end would show as an
    outage that never ended: ``recovered`` is false then).
    """
    if not replies:
        return {"lost": None, "gap_s": None, "first_reply_s": None, "recovered": False}
    seqs = sorted({s for _, s in replies})
    lost = (seqs[-1] - seqs[0] + 1) - len(seqs)
    stamps = sorted(t for t, _ in replies)
    gaps = [(b - a, a, b) for a, b in itertools.pairwise(stamps)]
    longest = max(gaps, default=(0.0, 0.0, 0.0))
    # A reply after the last one must have been possible: the window ran past it.
    tail = window_end - stamps[-1]
    recovered = tail < 1.0
    # Time to the first good reply: from the fault to the end of the longest silence that
    # overlaps it (none if no reply was missed).
    first = 0.0
    # A silence of more than SILENCE intervals is an outage (TCG's jitter stays under it).
    if lost and longest[0] > SILENCE * INTERVAL and longest[2] >= fault_at - INTERVAL:
        first = max(0.0, longest[2] - fault_at)
    if not recovered:
        first = None  # type: ignore[assignment]
    return {"lost": lost, "gap_s": round(max(longest[0], tail if not recovered else 0.0), 3),
            "first_reply_s": None if first is None else round(first, 3), "recovered": recovered}


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def tc_drop(nic: str, on: bool) -> None:
    if on:
        sh("tc", "qdisc", "add", "dev", nic, "clsact", check=True)
        for direction in ("ingress", "egress"):
            sh("tc", "filter", "add", "dev", nic, direction, "matchall", "action", "drop", check=True)
    else:
        sh("tc", "qdisc", "del", "dev", nic, "clsact", check=True)


def phase(row: Row, name: str, fault: Callable[[], None]) -> dict[str, Any]:
    ping = Ping()
    time.sleep(LEAD)
    fault()
    fault_at = time.time()
    time.sleep(WINDOW[name])
    window_end = time.time()
    replies = ping.stop()
    result = {"row": row.name, "phase": name, **figures(replies, fault_at, window_end),
              "replies": len(replies)}
    # The raw replies (ms from the fault), so that the host can recompute.
    stamps = [round((t - fault_at) * 1000) for t, _ in replies]
    emit("phase", **result, stamps_ms=stamps)
    log(json.dumps(result))
    return result


def set_carrier(up: bool) -> None:
    emit("link", nic=PRIMARY, up=up)
    # The host serves the request within ~0.1 s; the fault starts when the guest sees it.
    if wait_for(lambda: carrier(PRIMARY) == (1 if up else 0), 20, interval=0.005) is False:
        raise RuntimeError(f"carrier of {PRIMARY} did not go {'up' if up else 'down'}")


def run_row(row: Row) -> None:
    log(f"=== {row.name}")
    try:
        row.up()
        if not wait_for(peer_reaches, 60, interval=0.5) or not wait_for(row.on_primary, 30):
            raise RuntimeError("the peer does not reach the data address through ens8")
        ticks = cpu_ticks(row.daemon_pids())
        started = time.monotonic()
        phase(row, "carrier", lambda: set_carrier(False))
        phase(row, "carrier-failback", lambda: set_carrier(True))
        wait_for(row.on_primary, 20)
        phase(row, "silent", lambda: tc_drop(PRIMARY, True))
        phase(row, "silent-failback", lambda: tc_drop(PRIMARY, False))
        back = bool(wait_for(row.on_primary, 30))
        elapsed = time.monotonic() - started
        cpu = (cpu_ticks(row.daemon_pids()) - ticks) / os.sysconf("SC_CLK_TCK")
        emit("row", row=row.name, ok=True, back_on_primary=back, daemon_cpu_s=round(cpu, 2),
             seconds=round(elapsed, 1))
    except Exception as err:  # a row's failure is reported, the next row runs
        emit("row", row=row.name, ok=False, error=str(err)[-1000:])
        log(f"{row.name}: {err}")
        if carrier(PRIMARY) == 0:
            set_carrier(True)
    finally:
        row.down()


ARP = {"interval": 100, "source_host": DATA, "target_host": ROUTER, "validate_active": True,
       "validate_inactive": True}
ROWS: list[Row] = [
    Bond("bonding miimon=100", ["miimon", "100"]),
    Bond("bonding miimon=10", ["miimon", "10"]),
    Bond("bonding arp_interval=100", ["arp_interval", "100", "arp_ip_target", ROUTER, "arp_validate", "all"]),
    Team("teamd ethtool", {"name": "ethtool"}),
    Team("teamd arp_ping 100 ms", {"name": "arp_ping", **ARP}),
    Ipmp("ipmp link-only", None),
    Ipmp("ipmp FDT 1 s", 1000),
    Ipmp("ipmp FDT 100 ms", 100),
]


def main() -> int:
    only = os.environ.get("IPMP_PEERS_ROWS", "")
    clean_nics()
    emit("start", rows=[r.name for r in ROWS], kernel=os.uname().release)
    for row in ROWS:
        if not only or any(word in row.name for word in only.split(",")):
            run_row(row)
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
