"""In the guest: bonding, teamd and ipmp, one after the other, on the same two NICs and faults.

Run by ``ipmp-vm-peers.service`` (standard library only: the guest's own
python3).  ``ens8`` and ``ens9`` are the two NICs under test, ``ens10`` (same
QEMU hub) sits in the namespace ``ipmpvm-rt``, which holds two addresses: the
router 192.0.2.1 (ipmp's probe target, the ARP monitors' ``arp_ip_target``)
and the peer 192.0.2.2, which pings the data address 192.0.2.100 at 100/s.

Each configuration (a "row") is set up once, made to prefer ``ens8`` (bonding
``primary``, teamd port ``prio``, ipmp's data address on qfe0 = ens8 with
FAILBACK=yes), then put through ``trials`` rounds of six phases, each with its
own ping run:

* ``carrier``: ``ens8``'s carrier cut by the host (QMP ``set_link``);
* ``carrier-failback``: carrier back;
* ``silent``: every frame in and out of ``ens8`` lost on the wire while
  carrier stays up -- the failure a link monitor cannot see and a probe can.
  The host cuts the wire outside the guest (see ``set_wire``);
* ``silent-failback``: the wire whole again;
* ``router``: the router stops answering (tc in the router's namespace drops
  every ARP and IP frame addressed to 192.0.2.1) while every carrier stays up
  and the peer, a different address on the same segment, keeps pinging.
  Nothing is wrong with either NIC: a monitor that fails over here moves
  traffic for nothing, one that takes the link down cuts the peer off;
* ``router-restore``: the router answers again.

The figures of a phase: the ping sequence numbers missing, the silences
between replies (ms from the fault) and whether replies came up to the end of
the window; and how many times the data address moved between the NICs
(bonding: the kernel's "making interface the new active one"; teamd: its
"Changed active port to"; ipmp: the address appearing on the other NIC, seen
with ``ip monitor address``), with the row's own log lines of the phase.  One
``{"kind": "phase", ...}`` message per phase, one ``trial`` per round (with
the daemon's CPU), one ``row`` per row; ``done`` last.  Every wait is bounded;
a row that fails is reported as such and the next runs.

Options come on the kernel command line (the host's ``--trials``/``--rows``):
``ipmpvm.trials=N`` and ``ipmpvm.rows=0,5,7`` (the rows of ROWS at those
indices; bench/peers.py keeps the same list).

The host side is bench/peers.py; the protocol is tests/vm/guest.py's.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, "/usr/local/lib/ipmp-vm")

# After the sys.path line: python3 -I leaves the script's directory off sys.path.
from ipmpvm import ENV, PEER_NS, carrier, emit, sh, wait_for

PEER_NIC = "ens10"
ROUTER = "192.0.2.1"
#: The peer's own address (net-setup): pings from here keep flowing when the router dies.
PEER = "192.0.2.2"
DATA = "192.0.2.100"
PRIMARY, BACKUP = "ens8", "ens9"
#: A NIC alone on its own QEMU hub: the host flips its carrier once it has cut or
#: mended ens8's wire, which the guest cannot otherwise see (see set_wire).
SIGNAL = "ens11"
#: The peer's ping interval (100/s).
INTERVAL = 0.01
#: How long each phase's ping runs after its fault or undo.  Long enough for the
#: slowest detector that can see the fault to act (ipmp at FDT 1 s repairs after
#: 10 answered probes, 1.4 s; teamd's arp_ping took up to 1 s) and for a router
#: death to show what every row does with it (10 s in issue 14's example: 8 s
#: here); short enough that three trials of eight rows stay under ~25 minutes.
WINDOW = {"carrier": 4.0, "carrier-failback": 4.0, "silent": 7.0, "silent-failback": 5.0,
          "router": 8.0, "router-restore": 5.0}
PHASES = tuple(WINDOW)
#: A silence between replies longer than this many intervals counts as an outage.
SILENCE = 3
#: Baseline before each fault (the ping must be answered then).
LEAD = 1.0
DEFAULT_TRIALS = 3
#: At most this many of a row's log lines are sent per phase (the report channel is a serial port).
EVENTS = 16

def log(text: str) -> None:
    print(text, flush=True)


def peer_reaches() -> bool:
    return sh("ip", "netns", "exec", PEER_NS, "ping", "-n", "-q", "-c", "1", "-W", "1", "-I", PEER, DATA,
              timeout=10).returncode == 0


def clean_nics() -> None:
    for nic in (PRIMARY, BACKUP):
        sh("ip", "link", "set", nic, "nomaster")
        sh("ip", "addr", "flush", "dev", nic)
        sh("ip", "link", "set", nic, "up")
    sh("ip", "-n", PEER_NS, "neigh", "flush", "all")


def options() -> tuple[int, list[int]]:
    """``ipmpvm.trials`` and ``ipmpvm.rows`` (indices into ROWS) from the kernel command line."""
    trials: int = DEFAULT_TRIALS
    rows: list[int] = []
    try:
        with open("/proc/cmdline") as fh:
            words = fh.read().split()
    except OSError:
        words = []
    for word in words:
        key, _, value = word.partition("=")
        if key == "ipmpvm.trials" and value.isdigit() and int(value) > 0:
            trials = int(value)
        elif key == "ipmpvm.rows" and value:
            rows = [int(w) for w in value.split(",") if w.isdigit()]
    return trials, rows


# --------------------------------------------------------------------------
# The journal: each row's own account of what it did in a phase
# --------------------------------------------------------------------------


def journal_cursor() -> str | None:
    out = sh("journalctl", "-n", "1", "-o", "json", "--no-pager", timeout=30).stdout.strip().splitlines()
    try:
        return str(json.loads(out[-1])["__CURSOR"]) if out else None
    except (ValueError, KeyError):
        return None


def journal_since(cursor: str | None) -> list[tuple[str, str]]:
    """(identifier, message) of every journal entry after ``cursor``; the kernel's as ``kernel``."""
    # Entries already sent to journald (the kernel's ring buffer, syslog, stdout) are made visible first.
    sh("journalctl", "--sync", timeout=30)
    argv = ["journalctl", "-o", "json", "--no-pager", "-b"]
    if cursor:
        argv.append(f"--after-cursor={cursor}")
    entries = []
    for line in sh(*argv, timeout=60).stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("MESSAGE")
        if not isinstance(message, str):
            continue  # binary payloads are sent as byte arrays: none of ours
        ident = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or ""
        entries.append((str(ident), message))
    return entries


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

    def mine(self, ident: str, message: str) -> bool:
        """Whether a journal entry is this row's own (its daemon's or its driver's)."""
        raise NotImplementedError

    #: A line of the row's own log that says the data moved to another NIC.
    move_line: re.Pattern[str] | None = None

    def watch(self) -> Any:
        """Start watching for moves of the data address; the token ``moves`` takes."""
        return None

    def moves(self, token: Any, lines: list[str]) -> int:
        """How many times the data address moved to another NIC since ``watch``."""
        assert self.move_line is not None
        return sum(1 for line in lines if self.move_line.search(line))


class Bond(Row):
    # bond_change_activeslave(): printed at every change of the active slave, also "... ms earlier".
    move_line = re.compile(r"making interface the new active one")

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

    def mine(self, ident: str, message: str) -> bool:
        return ident == "kernel" and message.startswith("bond0")


class Team(Row):
    # teamd's activebackup runner, at every change of the active port.
    move_line = re.compile(r'Changed active port to "')

    def __init__(self, name: str, watch: dict[str, Any]) -> None:
        self.name = name
        self.link_watch = watch
        self.pid: int | None = None

    def up(self) -> None:
        conf = {"device": "team0", "runner": {"name": "activebackup"}, "link_watch": self.link_watch,
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
        wait_for(lambda: not os.path.exists("/sys/class/net/team0"), 10, 0.05)
        sh("ip", "link", "del", "team0")
        clean_nics()

    def on_primary(self) -> bool:
        out = sh("teamdctl", "team0", "state", "item", "get", "runner.active_port", timeout=10).stdout
        return out.strip() == PRIMARY

    def daemon_pids(self) -> list[int]:
        return [self.pid] if self.pid else []

    def mine(self, ident: str, message: str) -> bool:
        # teamd -d logs to syslog as teamd_<device>.
        return ident.startswith("teamd")


HOSTNAME_LINK = {"qfe0": "myhost netmask + broadcast + group prod up",
                 "qfe1": "myhost-2 netmask + broadcast + group prod up"}
#: The same, with a test address on each NIC: probe-based detection (Solaris: addif ... -failover).
TEST_ADDRESS = " addif {} deprecated -failover netmask + broadcast + up"
HOSTNAME_PROBE = {"qfe0": HOSTNAME_LINK["qfe0"] + TEST_ADDRESS.format("myhost-qfe0"),
                  "qfe1": HOSTNAME_LINK["qfe1"] + TEST_ADDRESS.format("myhost-qfe1")}


class AddressWatch:
    """``ip -o monitor address``: every NIC the data address appears on, in order, while it runs."""

    def __init__(self, holder: str | None) -> None:
        self.holder = holder
        self.out = open("/run/ipmp-vm-addrmon.out", "w+")
        self.proc = subprocess.Popen(["ip", "-o", "monitor", "address"], stdout=self.out,
                                     stderr=subprocess.DEVNULL, env=ENV)

    def stop(self) -> tuple[int, int]:
        """(moves to another NIC, times the data address was removed from a NIC)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.out.seek(0)
        moves = removed = 0
        holder = self.holder
        for line in self.out:
            m = re.match(r"^(Deleted )?\d+: (\S+)\s+inet (\S+)/", line)
            if not m or m.group(3) != DATA:
                continue
            if m.group(1):
                removed += 1
            elif m.group(2) != holder:
                if holder is not None:
                    moves += 1
                holder = m.group(2)
        self.out.close()
        return moves, removed


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

    def holder(self) -> str | None:
        out = sh("ip", "-j", "-4", "addr", "show").stdout
        try:
            links = json.loads(out or "[]")
        except ValueError:
            return None
        for link in links:
            if any(a.get("local") == DATA for a in link.get("addr_info", [])):
                return str(link.get("ifname"))
        return None

    def on_primary(self) -> bool:
        return self.holder() == PRIMARY

    def daemon_pids(self) -> list[int]:
        pid = sh("systemctl", "show", "in.mpathd.service", "--property=MainPID", "--value").stdout.strip()
        return [int(pid)] if pid.isdigit() and pid != "0" else []

    def mine(self, ident: str, message: str) -> bool:
        return ident == "in.mpathd"

    def watch(self) -> Any:
        # "Successfully failed back" is logged on a repair even when nothing had to move
        # (Solaris's try_failback does so too): the address itself is watched instead.
        return AddressWatch(self.holder())

    def moves(self, token: Any, lines: list[str]) -> int:
        return int(token.stop()[0])


# --------------------------------------------------------------------------
# The peer's ping and its figures
# --------------------------------------------------------------------------

_REPLY = re.compile(r"^\[(\d+\.\d+)\].*icmp_seq=(\d+)")


class Ping:
    """``ping -D -i 0.01`` from the peer's address; the replies' wall-clock stamps and sequence numbers."""

    def __init__(self) -> None:
        self.out = open("/run/ipmp-vm-ping.out", "w+")
        self.started = time.time()
        argv = ["ip", "netns", "exec", PEER_NS, "ping", "-n", "-D", "-i", str(INTERVAL), "-W", "1",
                "-I", PEER, DATA]
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.DEVNULL, env=ENV)

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


def figures(replies: list[tuple[float, int]], started: float, fault_at: float,
            window_end: float) -> dict[str, Any]:
    """What the peer saw: pings lost, the silences between replies, whether replies ran to the end.

    Lost: the sequence numbers (from 1) missing up to the last reply; a
    silence that lasts to the end of the window is ``tail_ms`` instead
    (``recovered`` false), and bench/peers.py counts the pings it held.  Each
    silence longer than SILENCE intervals is ``[start, end, pings lost in
    it]``: one with none lost is replies coming late (TCG's jitter), not an
    outage.  When the first ping went unanswered (a phase that begins in an
    outage, e.g. the restore after a router death took a bond down), the
    ping's start counts as the last reply before the silence.  Times are ms
    from the fault.
    """

    def ms(t: float) -> int:
        return round((t - fault_at) * 1000)

    seqs = sorted({s for _, s in replies})
    timeline = sorted(replies)
    stamps = [t for t, _ in timeline]
    points = ([(started, 0)] if not seqs or seqs[0] > 1 else []) + timeline
    gaps = list(itertools.pairwise(points))
    silences = [[ms(a), ms(b), max(0, sb - sa - 1)] for (a, sa), (b, sb) in gaps
                if b - a > SILENCE * INTERVAL]
    longest = max((b - a for (a, _), (b, _) in gaps), default=0.0)
    last = stamps[-1] if stamps else started
    tail = window_end - last
    return {"lost": (seqs[-1] - len(seqs)) if seqs else 0, "replies": len(stamps),
            # A reply after the last one must have been possible: the window ran on past it.
            "recovered": bool(stamps) and tail < 1.0, "tail_ms": round(tail * 1000),
            "silences_ms": silences, "longest_ms": round(longest * 1000),
            "first_ms": ms(stamps[0]) if stamps else None, "last_ms": ms(last)}


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


# --------------------------------------------------------------------------
# The faults
# --------------------------------------------------------------------------


#: The wire of ens8 (cut or whole) and the signal NIC's carrier, as last set.
_wire = {"cut": False, "signal_up": True}


def set_wire(cut: bool) -> float:
    """Cut ``ens8``'s wire (or mend it) on the host; the moment the guest learnt it was done.

    The host puts (or removes) a QEMU ``filter-redirector`` on ens8's hub
    port that sends every frame to a null chardev, both ways: nothing reaches
    the guest's NIC or leaves it, and its carrier stays up -- a broken cable
    or switch port.  Faults made inside the guest are not silent enough:
    packet sockets (teamd's ARP watcher) see a frame before tc's ingress
    drop, and a tc drop on egress fails the sender's ``sendto`` with ENOBUFS,
    which teamd takes for a failure of its own loop (both made it flap).
    The host then flips the signal NIC's carrier; its change is the moment.
    """
    want = not _wire["signal_up"]
    emit("wire", nic=PRIMARY, cut=cut, signal=SIGNAL, signal_up=want)
    if wait_for(lambda: carrier(SIGNAL) == (1 if want else 0), 20, interval=0.005) is False:
        raise RuntimeError(f"the host did not {'cut' if cut else 'mend'} the wire of {PRIMARY}")
    _wire.update(cut=cut, signal_up=want)
    return time.time()


#: The router's drops, by their filter preference on ens10's ingress (net-setup's clsact qdisc).
ROUTER_DROPS = (("10", "arp", "arp_tip"), ("11", "ip", "dst_ip"))


def router_answers(on: bool) -> float:
    """The router dies (``on`` false) or comes back, the peer's address beside it untouched.

    Every frame for 192.0.2.1 is dropped where it enters the router's
    namespace: ARP requests for it (so nobody learns or refreshes its MAC) and
    IP to it (ICMP probes, from a neighbour entry still valid).  Nothing is
    sent from it then either, as a dead router does; frames for the peer's
    192.0.2.2 pass.  Only filters come and go, both in one tc run: the clsact
    qdisc stays (see hold_static_keys).  The moment is when tc started.
    """
    if on:
        batch = [f"filter del dev {PEER_NIC} ingress pref {pref}" for pref, _, _ in ROUTER_DROPS]
    else:
        batch = [f"filter add dev {PEER_NIC} ingress pref {pref} protocol {proto} flower {field} {ROUTER} "
                 "action drop" for pref, proto, field in ROUTER_DROPS]
    at = time.time()
    sh("tc", "-n", PEER_NS, "-batch", "-", stdin="\n".join(batch) + "\n", check=True)
    return at


def router_dead() -> bool:
    return bool(sh("tc", "-n", PEER_NS, "filter", "show", "dev", PEER_NIC, "ingress").stdout.strip())


_keys: list[socket.socket] = []
#: <asm-generic/socket.h> (x86-64); Python's socket module does not name it.
SO_TIMESTAMP = 29


def hold_static_keys() -> None:
    """Keep the kernel's receive-path static keys on for the whole run.

    ``ping -D`` asks for receive timestamps: each ping run's start and end
    turned ``netstamp_needed_key`` on and off, and the kernel patches its
    receive path in place each time.  Under TCG, one such patch while a packet
    was being received made the guest kernel oops on the int3 of the patch
    (``__netif_receive_skb_core``).  A socket of ours with SO_TIMESTAMP for the
    whole run keeps that key on; net-setup's clsact qdisc on ens10 does the same
    for the tc ingress and egress keys (only the router's filters come and go).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    _keys.append(sock)


def set_carrier(up: bool) -> float:
    """Carrier of ens8 cut or back (by the host, QMP set_link); the moment the guest saw it."""
    emit("link", nic=PRIMARY, up=up)
    # The host serves the request within ~0.1 s; the fault starts when the guest sees it.
    if wait_for(lambda: carrier(PRIMARY) == (1 if up else 0), 20, interval=0.005) is False:
        raise RuntimeError(f"carrier of {PRIMARY} did not go {'up' if up else 'down'}")
    return time.time()


#: Each phase's fault (or undo); it returns the fault's moment (time.time()).
FAULTS: dict[str, Callable[[], float]] = {
    "carrier": lambda: set_carrier(False),
    "carrier-failback": lambda: set_carrier(True),
    "silent": lambda: set_wire(True),
    "silent-failback": lambda: set_wire(False),
    "router": lambda: router_answers(False),
    "router-restore": lambda: router_answers(True),
}
#: After these phases the row must be back on ens8 before the next fault.
SETTLE = {"carrier-failback": 20.0, "silent-failback": 30.0, "router-restore": 30.0}


def undo_faults() -> None:
    """Whatever a failed phase left behind: carrier back, wire mended, router alive."""
    if carrier(PRIMARY) == 0:
        set_carrier(True)
    if _wire["cut"]:
        set_wire(False)
    if router_dead():
        router_answers(True)


def phase(row: Row, trial: int, name: str) -> dict[str, Any]:
    cursor = journal_cursor()
    token = row.watch()
    ping = Ping()
    try:
        time.sleep(LEAD)
        fault_at = FAULTS[name]()
        time.sleep(WINDOW[name])
        window_end = time.time()
    finally:
        # Stopped also when the fault failed: no ping or monitor outlives its phase.
        replies = ping.stop()
        lines = [msg for ident, msg in journal_since(cursor) if row.mine(ident, msg)]
        moves = row.moves(token, lines)
    result = {"row": row.name, "phase": name, "trial": trial,
              **figures(replies, ping.started, fault_at, window_end), "moves": moves}
    emit("phase", **result, events=[line[:200] for line in lines[:EVENTS]])
    log(json.dumps(result))
    return result


def run_row(row: Row, trials: int) -> None:
    log(f"=== {row.name}")
    done = 0
    cursor = journal_cursor()
    try:
        row.up()
        if not wait_for(peer_reaches, 60, interval=0.5) or not wait_for(row.on_primary, 30, 0.05):
            raise RuntimeError("the peer does not reach the data address through ens8")
        for trial in range(1, trials + 1):
            if not wait_for(row.on_primary, 30, 0.05):
                raise RuntimeError(f"trial {trial}: not back on {PRIMARY}")
            ticks = cpu_ticks(row.daemon_pids())
            started = time.monotonic()
            back = True
            for name in PHASES:
                phase(row, trial, name)
                if name in SETTLE:
                    back = bool(wait_for(row.on_primary, SETTLE[name], 0.05)) and back
            elapsed = time.monotonic() - started
            cpu = (cpu_ticks(row.daemon_pids()) - ticks) / os.sysconf("SC_CLK_TCK")
            emit("trial", row=row.name, trial=trial, back_on_primary=back, daemon_cpu_s=round(cpu, 2),
                 seconds=round(elapsed, 1))
            done = trial
        # in.mpathd raises its FDT when probe RTTs do not fit the requested one (Solaris's
        # "Cannot meet requested failure detection time"): the FDT it really ran with.
        fdt = [msg[:200] for ident, msg in journal_since(cursor)
               if row.mine(ident, msg) and "failure detection time" in msg]
        emit("row", row=row.name, ok=True, trials=done, fdt_log=fdt[-EVENTS:])
    except Exception as err:  # a row's failure is reported, the next row runs
        emit("row", row=row.name, ok=False, trials=done, error=str(err)[-1000:])
        log(f"{row.name}: {err}")
        undo_faults()
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
    trials, only = options()
    hold_static_keys()
    clean_nics()
    chosen = [r for i, r in enumerate(ROWS) if not only or i in only]
    emit("start", rows=[r.name for r in chosen], trials=trials, kernel=os.uname().release,
         windows=WINDOW, interval=INTERVAL, lead=LEAD)
    for row in chosen:
        run_row(row, trials)
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
