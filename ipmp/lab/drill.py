"""``ipmp-lab drill``: fail and repair everything while a peer pings, and say what happened.

The drill builds a lab (:func:`ipmp.lab.lab.create`), then runs a script of
steps, each with the peer pinging every data address 100 times a second:

* for every NIC in a group: link failure and repair, then (if it has a test
  address, so that probes can notice) silent failure and repair;
* for every group of two or more: ``if_mpadm -d`` and ``-r`` of each member,
  and the refusal to offline the last usable one;
* a router outage (probes fail everywhere at once: group failure, no
  failover) and its end.

What each step should do is worked out before it runs, from the boot files
and the daemon's state as its own messages reported it, with the rules of
reference solaris-ipmp.md (§2.7 failure and repair, §2.8 destinations and
FAILBACK, §2.9 offline, §2.12 the messages, §5 if_mpadm).  A step
*misbehaves* when an expected message is missing, a failure, repair,
failover or failback message appears that should not, a data address is
missing or on the wrong NIC when the step is over, or if_mpadm's exit
status or message is not Solaris'.  Lost pings are measured, never judged:
how many a failover costs is the number the drill is there to show.

Times: *detection* is from the injection to the daemon's failure (or
repair) message; *move* is from the injection (or the if_mpadm command) to
the moment the last moved data address appeared on its new NIC, as the
kernel reported it (``ip monitor address``, independent of the daemon).
All clocks are CLOCK_MONOTONIC, shared by every process: the daemon's
lines are stamped by :mod:`ipmp.lab.logwrap` as they are printed.

The report is a JSON-ready dict (see ``REPORT_VERSION``); :func:`svg`
draws its timeline.  This module never prints: progress goes to an
:class:`Observer`.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape

from ipmp.lab.lab import Lab, LabError, NetworkPlan, NicPlan, create
from ipmp.lab.logwrap import parse_line
from ipmp.lab.pinger import PingReport
from ipmp.lab.topology import PingJob
from ipmp.program import python_module

__all__ = ["REPORT_VERSION", "STEP_KINDS", "Observer", "run_drill", "svg", "write_svg"]

REPORT_VERSION = 1
STEP_KINDS = (
    "baseline",
    "link-fail",
    "link-repair",
    "silent-fail",
    "silent-repair",
    "offline",
    "undo-offline",
    "refuse-offline",
    "router-down",
    "router-up",
)

#: The peer's traffic: 100 rounds a second, one echo to every data address.
PING_INTERVAL = 0.01
#: A reply later than this counts as lost (and the pinger waits this long at the end).
PING_TIMEOUT = 0.5
#: Traffic before the fault, so that a loss right at the injection is seen.
BASELINE = 0.3
#: Observation after a step did what it should: late extra messages, a
#: wrong failover, the peer's traffic settling on the new path.
SETTLE = 0.6
POLL = 0.02

#: Solaris message shapes (reference §2.12) that change what the host does;
#: one of these that no rule predicted is a misbehaviour.
_CRITICAL = re.compile(
    r"NIC failure detected on .*|NIC repair detected on .*|All Interfaces in group .* have failed"
    r"|At least 1 interface \(.*\) of group .* has repaired|Successfully failed (over|back) .*"
)
_FAILOVER = re.compile(r"Successfully failed over from NIC (\S+) to NIC (\S+)")

#: if_mpadm's Solaris texts (reference §5).
MSG_MIN_RED = (
    "Offline failed as there is no other functional interface available in the multipathing group "
    "for failing over the network access."
)


class Observer(Protocol):
    """Progress of a drill, for a live display."""

    def phase(self, text: str) -> None: ...

    def step_started(self, index: int, total: int, title: str) -> None: ...

    def message(self, t_ms: float, text: str) -> None: ...

    def step_finished(self, result: dict[str, Any]) -> None: ...


class _Quiet:
    def phase(self, text: str) -> None:
        pass

    def step_started(self, index: int, total: int, title: str) -> None:
        pass

    def message(self, t_ms: float, text: str) -> None:
        pass

    def step_finished(self, result: dict[str, Any]) -> None:
        pass


# --------------------------------------------------------------------------
# Observation: the daemon's log, the kernel's addresses
# --------------------------------------------------------------------------


class LogTail:
    """The daemon's stamped log, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""
        self.lines: list[tuple[float, str]] = []

    def poll(self) -> list[tuple[float, str]]:
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
        except OSError:
            return []
        text = self.partial + chunk
        complete, _, self.partial = text.rpartition("\n")
        new: list[tuple[float, str]] = []
        for line in complete.splitlines() if complete else ():
            parsed = parse_line(line)
            # "# ..." lines are the wrapper's own (start, exit).
            if parsed is not None and not parsed[1].startswith("# "):
                new.append(parsed)
        self.lines.extend(new)
        return new

    def between(self, start: float, end: float) -> list[tuple[float, str]]:
        return [(t, m) for t, m in self.lines if start <= t <= end]


#: ``[Deleted ]3: qfe1    inet 192.0.2.100/24 ... qfe1:2\ ...`` (``-o``: one line per event).
_MONITOR_LINE = re.compile(
    r"(?P<deleted>Deleted )?\d+: (?P<dev>[^\s:@]+)\S*\s+inet6? (?P<addr>[0-9a-fA-F.:]+)/\d+"
)


@dataclass
class AddressEvent:
    t: float
    address: str
    nic: str
    added: bool


class AddressMonitor:
    """Where every address of the host is, from the kernel (``ip -o monitor address``)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.events: list[AddressEvent] = []
        self.where: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._proc = lab.topology.popen(
            "host", ["ip", "-o", "monitor", "address"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._read, name="address-monitor", daemon=True)
        self._thread.start()
        # After the monitor runs, so that no change falls between the two;
        # an event seen twice is harmless (sets).
        time.sleep(0.05)
        for link in lab.topology.ip_json("host", "addr", "show"):
            for a in link.get("addr_info", ()):
                self._apply(str(a["local"]), str(link["ifname"]), True)

    def _apply(self, address: str, nic: str, added: bool) -> None:
        with self._lock:
            nics = self.where.setdefault(address, set())
            if added:
                nics.add(nic)
            else:
                nics.discard(nic)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            now = time.monotonic()
            m = _MONITOR_LINE.match(raw.decode(errors="replace"))
            if m is None:
                continue
            address = str(ipaddress.ip_address(m["addr"]))
            added = m["deleted"] is None
            self._apply(address, m["dev"], added)
            with self._lock:
                self.events.append(AddressEvent(now, address, m["dev"], added))

    def nics_of(self, address: str) -> set[str]:
        with self._lock:
            return set(self.where.get(address, ()))

    def added_since(self, address: str, nic: str, since: float) -> float | None:
        """When ``address`` last appeared on ``nic`` after ``since``."""
        with self._lock:
            times = [e.t for e in self.events
                     if e.address == address and e.nic == nic and e.added and e.t >= since]
        return max(times) if times else None

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._thread.join(2.0)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


# --------------------------------------------------------------------------
# The drill's model of the daemon (reference §2.7-2.9)
# --------------------------------------------------------------------------


@dataclass
class NicState:
    plan: NicPlan
    state: str = "ok"  # the daemon's view: ok, failed, offline
    link_up: bool = True  # as the daemon knows it (from its link messages)
    link_ok: bool = True  # the wire, as the drill set it
    silent_ok: bool = True


@dataclass
class World:
    plan: NetworkPlan
    nics: dict[str, NicState]
    group_failed: dict[str, bool] = field(default_factory=dict)
    router_up: bool = True

    @classmethod
    def of(cls, plan: NetworkPlan) -> World:
        return cls(plan, {n.name: NicState(n) for n in plan.nics}, {g: False for g in plan.groups})

    def members(self, nic: str) -> list[NicState]:
        group = self.nics[nic].plan.group
        return [s for s in self.nics.values() if group and s.plan.group == group]

    def usable(self, s: NicState) -> bool:
        return s.state == "ok" and s.link_up

    def tracked(self, nic: str) -> bool:
        return bool(self.nics[nic].plan.group) or self.plan.track_all

    def homes(self) -> dict[str, str]:
        """Data address (bare) -> the NIC whose files configure it."""
        return {_bare(a): n.name for n in self.plan.nics for a in n.data_addresses}

    # -- learning from what happened
    def on_message(self, text: str) -> None:
        if m := re.fullmatch(r"NIC failure detected on (\S+)( of group \S+)?", text):
            if m[1] in self.nics and self.nics[m[1]].state != "offline":
                self.nics[m[1]].state = "failed"
        elif m := re.fullmatch(r"NIC repair detected on (\S+)( of group \S+)?", text):
            if m[1] in self.nics and self.nics[m[1]].state != "offline":
                self.nics[m[1]].state = "ok"
        elif m := re.fullmatch(r"All Interfaces in group (\S+) have failed", text):
            self.group_failed[m[1]] = True
            for s in self.nics.values():
                if s.plan.group == m[1] and s.state != "offline":
                    s.state = "failed"
        elif m := re.fullmatch(r"At least 1 interface \((\S+)\) of group (\S+) has repaired", text):
            self.group_failed[m[2]] = False
        elif m := re.fullmatch(r"The link has gone down on (\S+)", text):
            if m[1] in self.nics:
                self.nics[m[1]].link_up = False
        elif (m := re.fullmatch(r"The link has come up on (\S+)", text)) and m[1] in self.nics:
            self.nics[m[1]].link_up = True


def _bare(address: str) -> str:
    return str(ipaddress.ip_interface(address).ip)


def _group_of(s: NicState) -> str:
    return f" of group {s.plan.group}" if s.plan.group else ""


@dataclass
class Expect:
    """What a step must (and must not) produce."""

    messages: list[str] = field(default_factory=list)  # regexes, each must match a line
    detect: str | None = None  # the message that counts as detection
    placement: dict[str, set[str]] = field(default_factory=dict)  # address -> allowed NICs
    moving: set[str] = field(default_factory=set)  # addresses expected to change NIC
    rc: int | None = None
    stderr: str | None = None
    extra_settle: float = 0.0
    notes: list[str] = field(default_factory=list)


def _lit(text: str) -> str:
    return re.escape(text)


class Rules:
    """Expectations of each kind of step, given the world before it."""

    def __init__(self, world: World, where: Callable[[str], set[str]], fdt: float) -> None:
        self.world = world
        self.where = where
        self.fdt = fdt

    def placement_now(self) -> dict[str, set[str]]:
        return {a: self.where(a) for a in self.world.homes()}

    def _hosted(self, nic: str) -> list[str]:
        return [a for a in self.world.homes() if nic in self.where(a)]

    def _failover(self, e: Expect, nic: str, candidates: list[str], *, message: bool = True) -> None:
        """Data addresses on ``nic`` go to one of ``candidates`` (reference §2.8)."""
        hosted = self._hosted(nic)
        if not hosted:
            return
        if not candidates:
            e.notes.append(f"no usable interface to take {', '.join(hosted)}: nothing may move")
            return
        if message:
            dest = "|".join(map(re.escape, candidates))
            e.messages.append(rf"Successfully failed over from NIC {_lit(nic)} to NIC ({dest})")
        for a in hosted:
            e.placement[a] = set(candidates)
            e.moving.add(a)

    def _failback(self, e: Expect, nic: str) -> None:
        """``do_failback``: pull back every address whose home is ``nic`` (§2.8).

        in.mpathd attempts the failback from every other member of the
        group, whether or not anything is to move, and logs ``Successfully
        failed back`` whenever it attempted one while FAILED or OFFLINE is
        still set -- which it is on a repair or an undo-offline.  So the
        message is due even when no address moves (S10 ``do_failback``).
        """
        if len(self.world.members(nic)) > 1:
            e.messages.append(rf"Successfully failed back to NIC {_lit(nic)}")
        for a, home in self.world.homes().items():
            if home == nic and nic not in self.where(a):
                e.placement[a] = {nic}
                e.moving.add(a)

    def failure(self, nic: str, *, link: bool) -> Expect:
        w = self.world
        s = w.nics[nic]
        e = Expect(placement=self.placement_now())
        if link:
            e.messages.append(rf"The link has gone down on {_lit(nic)}")
        if not w.tracked(nic) or s.state != "ok":
            e.notes.append(f"{nic} is not tracked or not running: no failure detection")
            e.messages = e.messages if w.tracked(nic) else []
            return e
        members = w.members(nic)
        others = [m for m in members if m is not s and w.usable(m)]
        capable = [m for m in members if m.plan.has_test and m.state != "offline"]
        if not s.plan.group or capable == [s]:
            nic_failure = True
        elif link:
            nic_failure = bool(others)
        else:
            # A NIC failure needs another member whose probes are still
            # answered (§2.7 rule 4); otherwise the whole group failed.
            nic_failure = any(m.plan.has_test for m in others)
        if nic_failure:
            e.detect = rf"NIC failure detected on {_lit(nic)}{_lit(_group_of(s))}"
            e.messages.append(e.detect)
            if s.plan.group:
                self._failover(e, nic, [m.plan.name for m in others])
        else:
            e.detect = rf"All Interfaces in group {_lit(s.plan.group)} have failed"
            e.messages.append(e.detect)
            e.extra_settle = self.fdt
        return e

    def repair(self, nic: str, *, link: bool) -> Expect:
        w = self.world
        s = w.nics[nic]
        e = Expect(placement=self.placement_now())
        if link:
            e.messages.append(rf"The link has come up on {_lit(nic)}")
        if not w.tracked(nic) or s.state != "failed":
            return e
        e.detect = rf"NIC repair detected on {_lit(nic)}{_lit(_group_of(s))}"
        e.messages.append(e.detect)
        if s.plan.group and w.group_failed.get(s.plan.group):
            group = _lit(s.plan.group)
            e.messages.append(rf"At least 1 interface \({_lit(nic)}\) of group {group} has repaired")
        # A standby only loses FAILED; FAILBACK=no means no failback (§2.7, §2.8).
        if s.plan.group and w.plan.failback and not s.plan.standby:
            self._failback(e, nic)
        return e

    def offline(self, nic: str) -> Expect:
        """``if_mpadm -d`` (§2.9 MI_OFFLINE, §5)."""
        w = self.world
        s = w.nics[nic]
        e = Expect(placement=self.placement_now())
        if s.state == "offline":
            e.rc, e.stderr = 1, "Interface already offlined"
            return e
        members = w.members(nic)
        if not s.plan.group:
            count = 0
        elif w.group_failed.get(s.plan.group):
            count = sum(1 for m in members if m.state != "offline")
        else:
            count = sum(1 for m in members if m.state == "ok")
        candidates = [m.plan.name for m in members if m is not s and w.usable(m)]
        if count < 1 or (self._hosted(nic) and not candidates):
            e.rc, e.stderr = 1, MSG_MIN_RED
            e.extra_settle = 0.5
            return e
        e.rc = 0
        self._failover(e, nic, candidates)
        return e

    def undo_offline(self, nic: str) -> Expect:
        """``if_mpadm -r``: always fails back, whatever FAILBACK says (§2.9)."""
        s = self.world.nics[nic]
        e = Expect(placement=self.placement_now())
        if s.state != "offline":
            e.rc, e.stderr = 1, "Interface not offlined"
            return e
        e.rc = 0
        if s.link_up:
            self._failback(e, nic)
        return e

    def router_down(self) -> Expect:
        """Every probe fails at once: a group failure, never a failover (§2.7)."""
        w = self.world
        e = Expect(placement=self.placement_now())
        for group in w.plan.groups:
            members = [s for s in w.nics.values() if s.plan.group == group]
            capable = [s for s in members if s.plan.has_test and w.usable(s)]
            if not capable:
                continue
            probing = [s for s in members if s.plan.has_test and s.state != "offline"]
            if any("link-local" in s.plan.test_addresses for s in capable):
                # IPv6 probes go to what ff02::1 discovery found, the peer
                # among them (the lab's router sends no advertisements): the
                # router's outage fails no IPv6 instance, and a NIC fails only
                # when every probing instance does (§2.6, §2.7).
                continue
            if len(capable) == 1 and len(probing) == 1:
                s = capable[0]
                e.messages.append(rf"NIC failure detected on {_lit(s.plan.name)} of group {_lit(group)}")
                others = [m.plan.name for m in members if m is not s and w.usable(m)]
                self._failover(e, s.plan.name, others)
            else:
                e.messages.append(rf"All Interfaces in group {_lit(group)} have failed")
        e.detect = e.messages[0] if e.messages else None
        # Long enough for a wrong failover to show up after the group failure.
        e.extra_settle = self.fdt
        return e

    def router_up(self) -> Expect:
        w = self.world
        e = Expect(placement=self.placement_now())
        for group in w.plan.groups:
            failed = [s for s in w.nics.values()
                      if s.plan.group == group and s.state == "failed" and s.plan.has_test
                      and s.link_up and s.link_ok and s.silent_ok]
            for s in failed:
                e.messages.append(rf"NIC repair detected on {_lit(s.plan.name)} of group {_lit(group)}")
                if w.plan.failback and not s.plan.standby:
                    self._failback(e, s.plan.name)
            if failed and w.group_failed.get(group):
                e.messages.append(rf"At least 1 interface \(\S+\) of group {_lit(group)} has repaired")
            if failed and e.detect is None:
                e.detect = rf"NIC repair detected on \S+ of group {_lit(group)}"
        return e


# --------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: str
    nic: str | None = None
    title: str = ""


def plan_steps(plan: NetworkPlan) -> tuple[list[Step], list[str]]:
    """The script for ``plan``, and notes about what it leaves out and why."""
    steps: list[Step] = [Step("baseline", None, "baseline: every data address answers")]
    notes: list[str] = []
    for nic in plan.nics:
        if not nic.group and not plan.track_all:
            notes.append(f"{nic.name} is in no group: in.mpathd does not track it, nothing to drill")
            continue
        steps.append(Step("link-fail", nic.name, f"{nic.name}: link failure"))
        steps.append(Step("link-repair", nic.name, f"{nic.name}: link repair"))
        if nic.has_test:
            steps.append(Step("silent-fail", nic.name, f"{nic.name}: silent failure"))
            steps.append(Step("silent-repair", nic.name, f"{nic.name}: silent repair"))
        else:
            notes.append(f"{nic.name} has no test address: a silent failure cannot be detected, not drilled")
    for group in plan.groups:
        members = [m.name for m in plan.members(group)]
        if len(members) < 2:
            notes.append(f"group {group} has one member: no offline drill")
            continue
        for m in members[:-1]:
            steps.append(Step("offline", m, f"if_mpadm -d {m}"))
            steps.append(Step("undo-offline", m, f"if_mpadm -r {m}"))
        steps.append(Step("offline", members[-1], f"if_mpadm -d {members[-1]}"))
        for m in members[1:-1]:
            steps.append(Step("offline", m, f"if_mpadm -d {m}"))
        steps.append(Step("refuse-offline", members[0], f"if_mpadm -d {members[0]} refused (last one)"))
        for m in reversed(members[1:]):
            steps.append(Step("undo-offline", m, f"if_mpadm -r {m}"))
    if any(n.has_test and n.group for n in plan.nics):
        steps.append(Step("router-down", None, "router outage"))
        steps.append(Step("router-up", None, "router back"))
    else:
        notes.append("no test addresses: probes never reach the router, so no router outage drill")
    return steps, notes


@dataclass
class _Command:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float


class Drill:
    def __init__(self, lab: Lab, fdt_ms: int, observer: Observer) -> None:
        self.lab = lab
        self.fdt_ms = fdt_ms
        self.fdt = fdt_ms / 1000.0
        self.obs = observer
        self.plan = lab.network
        self.world = World.of(self.plan)
        self.log = LogTail(lab.log_path)
        self.monitor: AddressMonitor | None = None
        self.t0 = time.monotonic()
        #: When the current step's fault was injected (or its command started).
        self._inject = self.t0
        self.timeline_events: list[dict[str, Any]] = []
        self.admin: list[tuple[float, str, str]] = []  # (t, nic, "offline"/"online")
        self.losses: dict[str, list[list[float]]] = {}
        self.ping_windows: list[list[float]] = []
        # Injected faults: (target, kind) -> start; closed ones as [t0, t1, kind] per target.
        self._open_faults: dict[tuple[str, str], float] = {}
        self.faults: dict[str, list[list[Any]]] = {}

    # -- helpers
    def rel(self, t: float) -> float:
        return round(t - self.t0, 4)

    def targets(self) -> list[str]:
        peer_versions = {ipaddress.ip_interface(a).version for a in (self.plan.peer4, self.plan.peer6) if a}
        out = []
        for home in self.plan.nics:
            for a in home.data_addresses:
                if ipaddress.ip_interface(a).version in peer_versions:
                    out.append(_bare(a))
        return out

    def _pump(self) -> None:
        for t, text in self.log.poll():
            self.world.on_message(text)
            self.obs.message((t - self._inject) * 1000.0, text)

    def _if_mpadm(self, flag: str, nic: str) -> _Command:
        argv = python_module("ipmp.cli.if_mpadm", flag, nic)
        start = time.monotonic()
        proc = self.lab.run(argv, timeout=60.0)
        return _Command(["if_mpadm", flag, nic], proc.returncode, proc.stdout, proc.stderr,
                        time.monotonic() - start)

    # -- the script
    def run(self) -> dict[str, Any]:
        targets = self.targets()
        if not targets:
            raise LabError("the files configure no data address the peer could ping; nothing to drill")
        self.monitor = AddressMonitor(self.lab)
        try:
            self.obs.phase(f"warming up: in.mpathd finds its probe targets (FDT {self.fdt_ms} ms)")
            # Enough probe rounds for targets and round-trip times (§2.5).
            time.sleep(max(1.0, 1.5 * self.fdt))
            self._pump()
            self.t0 = time.monotonic()
            steps, notes = plan_steps(self.plan)
            results = []
            for i, step in enumerate(steps, start=1):
                self.obs.step_started(i, len(steps), step.title)
                result = self.run_step(step, targets)
                results.append(result)
                self.obs.step_finished(result)
            final = self.final_check()
            end = time.monotonic()
            self._pump()
        finally:
            self.monitor.close()
        ok = all(r["ok"] for r in results) and not final
        return {
            "version": REPORT_VERSION,
            "ok": ok,
            "source": self.lab.state.source,
            "fdt_ms": self.fdt_ms,
            "failback": self.plan.failback,
            "ping": {"interval_s": PING_INTERVAL, "timeout_s": PING_TIMEOUT, "targets": targets},
            "lab": {
                "name": self.lab.name,
                "prefix": self.lab.state.prefix,
                "router": [a for a in (self.plan.router4, self.plan.router6) if a],
                "peer": [a for a in (self.plan.peer4, self.plan.peer6) if a],
                "nics": [
                    {"name": n.name, "group": n.group, "standby": n.standby,
                     "test_addresses": list(n.test_addresses), "data_addresses": list(n.data_addresses)}
                    for n in self.plan.nics
                ],
            },
            "notes": notes,
            "duration_s": round(end - self.t0, 3),
            "steps": results,
            "final_problems": final,
            "timeline": self.timeline(end),
        }

    def run_step(self, step: Step, targets: Sequence[str]) -> dict[str, Any]:
        assert self.monitor is not None
        monitor = self.monitor
        rules = Rules(self.world, monitor.nics_of, self.fdt)
        before = {a: sorted(monitor.nics_of(a)) for a in self.world.homes()}
        expect = self._expect(rules, step)
        job: PingJob = self.lab.topology.start_ping(
            "peer", targets, interval=PING_INTERVAL, timeout=PING_TIMEOUT
        )
        try:
            start = time.monotonic()
            time.sleep(BASELINE if step.kind != "baseline" else 1.0)
            self._inject = time.monotonic()
            command = self._act(step)
            # Probe repairs take NUM_PROBE_REPAIRS (10) intervals of FDT/7,
            # failures at most FDT; a slow host may have doubled the FDT.
            deadline = time.monotonic() + 4.0 * self.fdt + 3.0
            while True:
                self._pump()
                if self._done(expect, monitor) or time.monotonic() > deadline:
                    break
                time.sleep(POLL)
            settle_until = time.monotonic() + SETTLE + expect.extra_settle
            while time.monotonic() < settle_until:
                self._pump()
                time.sleep(POLL)
            end = time.monotonic()
            pings = job.stop()
        finally:
            job.kill()
        self._pump()
        return self._evaluate(step, expect, before, start, end, command, pings)

    def _expect(self, rules: Rules, step: Step) -> Expect:
        nic = step.nic or ""
        kind = step.kind
        if kind == "baseline":
            return Expect(placement=rules.placement_now())
        if kind in ("link-fail", "silent-fail"):
            return rules.failure(nic, link=kind == "link-fail")
        if kind in ("link-repair", "silent-repair"):
            return rules.repair(nic, link=kind == "link-repair")
        if kind in ("offline", "refuse-offline"):
            e = rules.offline(nic)
            if kind == "refuse-offline" and e.rc != 1:
                e.notes.append("the drill expected this offline to be refused; its model says otherwise")
            return e
        if kind == "undo-offline":
            return rules.undo_offline(nic)
        if kind == "router-down":
            return rules.router_down()
        return rules.router_up()

    def _fault(self, target: str, kind: str, start: bool, at: float | None = None) -> None:
        now = self.rel(time.monotonic() if at is None else at)
        if start:
            self._open_faults.setdefault((target, kind), now)
        elif (target, kind) in self._open_faults:
            t0 = self._open_faults.pop((target, kind))
            self.faults.setdefault(target, []).append([t0, now, kind])

    def _act(self, step: Step) -> _Command | None:
        nic = step.nic or ""
        w = self.world
        now = time.monotonic()
        kind = step.kind
        if kind == "link-fail":
            self.lab.fail(nic, "link")
            w.nics[nic].link_ok = False
            self._fault(nic, "link", True)
        elif kind == "silent-fail":
            self.lab.fail(nic, "silent")
            w.nics[nic].silent_ok = False
            self._fault(nic, "silent", True)
        elif kind in ("link-repair", "silent-repair"):
            self.lab.repair(nic)
            w.nics[nic].link_ok = w.nics[nic].silent_ok = True
            self._fault(nic, "link", False)
            self._fault(nic, "silent", False)
        elif kind == "router-down":
            self.lab.router(False)
            w.router_up = False
            self._fault("router", "down", True)
        elif kind == "router-up":
            self.lab.router(True)
            w.router_up = True
            self._fault("router", "down", False)
        elif kind in ("offline", "refuse-offline", "undo-offline"):
            flag = "-r" if kind == "undo-offline" else "-d"
            cmd = self._if_mpadm(flag, nic)
            self.timeline_events.append({"t": self.rel(now), "kind": "command",
                                         "text": f"if_mpadm {flag} {nic} (exit {cmd.rc})"})
            if cmd.rc == 0:
                w.nics[nic].state = "offline" if flag == "-d" else ("ok" if w.nics[nic].link_up else "failed")
                self.admin.append((time.monotonic(), nic, "offline" if flag == "-d" else "online"))
            return cmd
        if kind != "baseline":
            self.timeline_events.append({"t": self.rel(now), "kind": "inject", "text": step.title})
        return None

    def _done(self, e: Expect, monitor: AddressMonitor) -> bool:
        seen = [m for t, m in self.log.lines if t >= self._inject]
        if not all(any(re.fullmatch(p, m) for m in seen) for p in e.messages):
            return False
        return all(monitor.nics_of(a) and monitor.nics_of(a) <= allowed for a, allowed in e.placement.items())

    def _evaluate(
        self,
        step: Step,
        e: Expect,
        before: dict[str, list[str]],
        start: float,
        end: float,
        command: _Command | None,
        pings: PingReport,
    ) -> dict[str, Any]:
        assert self.monitor is not None
        monitor = self.monitor
        inject = self._inject
        window = self.log.between(start, end)
        after = [(t, m) for t, m in window if t >= inject]
        problems: list[str] = []
        for pattern in e.messages:
            if not any(re.fullmatch(pattern, m) for _, m in after):
                problems.append(f"expected message missing: {_readable(pattern)}")
        for t, m in window:
            if _CRITICAL.fullmatch(m) and not any(re.fullmatch(p, m) for p in e.messages):
                what = "a failover that should not have happened" if _FAILOVER.fullmatch(m) else "unexpected"
                problems.append(f"{what}: {m!r} at {1000 * (t - inject):+.0f} ms")
        placement_after = {a: sorted(monitor.nics_of(a)) for a in self.world.homes()}
        for address, allowed in e.placement.items():
            now = monitor.nics_of(address)
            if not now:
                problems.append(f"address lost: {address} is on no interface")
            elif len(now) > 1:
                problems.append(f"{address} is on several interfaces: {', '.join(sorted(now))}")
            elif not now <= allowed:
                where, wanted = ", ".join(sorted(now)), " or ".join(sorted(allowed))
                problems.append(f"{address} is on {where}, expected on {wanted}")
        for _, m in after:
            fo = _FAILOVER.fullmatch(m)
            if fo and step.nic == fo[1]:
                strays = [a for a in e.moving if monitor.nics_of(a) and monitor.nics_of(a) != {fo[2]}]
                if strays:
                    problems.append(f"the daemon said {fo[2]} but {', '.join(strays)} went elsewhere")
        if command is not None and e.rc is not None:
            if command.rc != e.rc:
                problems.append(f"{' '.join(command.argv)} exited {command.rc}, expected {e.rc}")
            if e.stderr and e.stderr not in command.stderr:
                problems.append(f"{' '.join(command.argv)} did not say {e.stderr!r}")
        if step.kind == "baseline":
            lost = sum(s.lost for s in pings.targets.values())
            if lost:
                problems.append(f"{lost} pings lost before any fault: the lab is not healthy")
        detection: float | None = None
        if e.detect is not None:
            hits = [t for t, m in after if re.fullmatch(e.detect, m)]
            detection = round(1000 * (min(hits) - inject), 1) if hits else None
        move: float | None = None
        if e.moving:
            times: list[float] = []
            for a in e.moving:
                for nic in monitor.nics_of(a) & e.placement.get(a, set()):
                    added = monitor.added_since(a, nic, inject)
                    if added is not None:
                        times.append(added)
            move = round(1000 * (max(times) - inject), 1) if len(times) >= len(e.moving) else None
        lost_total = 0
        max_gap = 0.0
        per_address = {}
        for address, stats in pings.targets.items():
            lost_total += stats.lost
            max_gap = max(max_gap, stats.max_consecutive_lost * pings.interval * 1000)
            per_address[address] = {"sent": stats.sent, "lost": stats.lost,
                                    "max_consecutive_lost": stats.max_consecutive_lost}
            for r in stats.lost_ranges:
                base = pings.start_monotonic
                self.losses.setdefault(address, []).append(
                    [self.rel(base + r.start), self.rel(base + r.end), r.count]
                )
        self.ping_windows.append([self.rel(pings.start_monotonic), self.rel(pings.end_monotonic)])
        return {
            "kind": step.kind,
            "interface": step.nic,
            "title": step.title,
            "ok": not problems,
            "problems": problems,
            "notes": e.notes,
            "t_start": self.rel(start),
            "t_inject": self.rel(inject),
            "t_end": self.rel(end),
            "detection_ms": detection,
            "move_ms": move,
            "pings": {"sent": sum(s.sent for s in pings.targets.values()), "lost": lost_total,
                      "max_gap_ms": round(max_gap, 1), "per_address": per_address},
            "messages": [{"t_ms": round(1000 * (t - inject), 1), "text": m} for t, m in window],
            "expected_messages": [_readable(p) for p in e.messages],
            "addresses_before": before,
            "addresses_after": placement_after,
            "command": None if command is None else {
                "argv": command.argv, "exit": command.rc, "expected_exit": e.rc,
                "stdout": command.stdout, "stderr": command.stderr, "seconds": round(command.seconds, 3),
            },
        }

    def final_check(self) -> list[str]:
        """At the end every data address must be home again, once."""
        assert self.monitor is not None
        problems = []
        for address, home in self.world.homes().items():
            now = self.monitor.nics_of(address)
            if now != {home}:
                problems.append(f"at the end {address} is on {', '.join(sorted(now)) or 'no interface'}, "
                                f"not on {home}")
        return problems

    # -- timeline for the picture
    def _closed_faults(self, end: float) -> dict[str, list[list[Any]]]:
        out = {k: list(v) for k, v in self.faults.items()}
        for (target, kind), t0 in self._open_faults.items():
            out.setdefault(target, []).append([t0, self.rel(end), kind])
        return out

    def timeline(self, end: float) -> dict[str, Any]:
        assert self.monitor is not None
        messages = [(t, m) for t, m in self.log.lines if self.t0 <= t <= end]
        states: dict[str, list[list[Any]]] = {}
        current = {n: "ok" for n in self.plan.names}
        since = {n: 0.0 for n in self.plan.names}
        changes: list[tuple[float, str, str]] = []
        for t, m in messages:
            if mm := re.fullmatch(r"NIC failure detected on (\S+).*", m):
                changes.append((t, mm[1], "failed"))
            elif mm := re.fullmatch(r"NIC repair detected on (\S+).*", m):
                changes.append((t, mm[1], "ok"))
            elif mm := re.fullmatch(r"All Interfaces in group (\S+) have failed", m):
                changes += [(t, n.name, "failed") for n in self.plan.members(mm[1])]
        changes += [(t, nic, "offline" if what == "offline" else "online") for t, nic, what in self.admin]
        offline: set[str] = set()
        for t, nic, state in sorted(changes):
            if nic not in current:
                continue
            if state == "offline":
                offline.add(nic)
                new = "offline"
            elif state == "online":
                offline.discard(nic)
                new = "ok"
            else:
                new = "offline" if nic in offline else state
            if new != current[nic]:
                states.setdefault(nic, []).append([since[nic], self.rel(t), current[nic]])
                current[nic], since[nic] = new, self.rel(t)
        for nic in self.plan.names:
            states.setdefault(nic, []).append([since[nic], self.rel(end), current[nic]])
        holders: dict[str, list[list[Any]]] = {}
        homes = self.world.homes()
        for address, home in homes.items():
            segs: list[list[Any]] = []
            holder, t_from = home, 0.0
            for ev in sorted(self.monitor.events, key=lambda e: e.t):
                if ev.address != address or ev.t < self.t0 or ev.t > end:
                    continue
                if ev.added and ev.nic != holder:
                    segs.append([t_from, self.rel(ev.t), holder])
                    holder, t_from = ev.nic, self.rel(ev.t)
                elif not ev.added and ev.nic == holder:
                    segs.append([t_from, self.rel(ev.t), holder])
                    holder, t_from = "", self.rel(ev.t)
            segs.append([t_from, self.rel(end), holder])
            holders[address] = [s for s in segs if s[1] > s[0]]
        events = [{"t": self.rel(t), "kind": "message", "text": m} for t, m in messages]
        return {
            "end": self.rel(end),
            "interfaces": states,
            "addresses": holders,
            "losses": self.losses,
            "ping_windows": self.ping_windows,
            "faults": self._closed_faults(end),
            "events": sorted(self.timeline_events + events, key=lambda e: float(e["t"])),
        }


def _readable(pattern: str) -> str:
    """A message regex as a person would write it: ``NIC (qfe0|qfe1)`` -> ``NIC qfe0 or qfe1``."""
    text = pattern.replace(r"(\S+)", "<any>").replace(r"\S+", "<any>")
    text = re.sub(r"(?<!\\)\(([^()]*)\)$", lambda m: m[1].replace("|", " or "), text)
    return re.sub(r"\\(.)", r"\1", text)


def run_drill(
    name: str,
    source: Path,
    *,
    fdt_ms: int = 1000,
    quiet_period: float | None = None,
    observer: Observer | None = None,
) -> dict[str, Any]:
    """Build the lab, run the drill, remove the lab (whatever happens); the report."""
    obs: Observer = observer or _Quiet()
    qp = quiet_period if quiet_period is not None else max(1.0, 2.0 * fdt_ms / 1000.0)
    started = time.monotonic()
    lab = create(name, source, fdt_ms=fdt_ms, quiet_period=qp, progress=obs.phase)
    with lab:
        try:
            report = Drill(lab, fdt_ms, obs).run()
        except BaseException as exc:
            obs.phase("removing the lab")
            try:
                lab.destroy()
            except Exception as cleanup:
                exc.add_note(f"ipmp-lab: cleanup failed: {cleanup}")
            raise
        obs.phase("removing the lab")
        report["cleanup_notes"] = lab.destroy()
    report["quiet_period_s"] = qp
    report["total_s"] = round(time.monotonic() - started, 3)
    return report


# --------------------------------------------------------------------------
# The picture
# --------------------------------------------------------------------------

_STATE_COLOURS = {"ok": "#4caf50", "failed": "#e53935", "offline": "#9e9e9e"}
_FAULT_COLOURS = {"link": "#000000", "silent": "#6d4c41", "down": "#000000"}
_NIC_COLOURS = ("#1e88e5", "#8e24aa", "#fb8c00", "#00897b", "#6d4c41", "#3949ab", "#c0ca33", "#d81b60")


def svg(report: dict[str, Any]) -> str:
    """The drill's timeline as a standalone SVG document.

    One lane per interface (the daemon's view: ok, failed, offline), one
    lane per data address (which NIC holds it; red ticks where the peer's
    pings were lost), the steps as numbered bands, and a legend.
    """
    tl = report["timeline"]
    steps = report["steps"]
    nics = [n["name"] for n in report["lab"]["nics"]]
    addresses = list(tl["addresses"])
    end = max(float(tl["end"]), 0.001)
    left, right, width = 170, 20, 1100
    plot = width - left - right
    lane, gap = 22, 8
    top = 60
    rows = len(nics) + 1 + len(addresses)
    plot_h = rows * (lane + gap) + 10
    legend_y = top + plot_h + 40
    legend_rows = (len(steps) + 2) // 3
    height = legend_y + 40 + legend_rows * 16 + 20

    def x(t: float) -> float:
        return left + plot * max(0.0, min(float(t), end)) / end

    out: list[str] = []
    add = out.append
    add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">')
    add(f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>')
    verdict = "all steps behaved" if report["ok"] else "SOME STEPS MISBEHAVED"
    add(f'<text x="{left}" y="22" font-size="15" font-weight="bold">'
        f'{escape("ipmp-lab drill: " + Path(str(report["source"])).name)}</text>')
    subtitle = f"FDT {report['fdt_ms']} ms, {verdict}"
    add(f'<text x="{left}" y="40" fill="#555">{escape(subtitle)}</text>')
    # Step bands, alternating shades, numbered at the top.
    for i, st in enumerate(steps, start=1):
        x0, x1 = x(st["t_start"]), x(st["t_end"])
        fill = "#f3f3f3" if i % 2 else "#e8eef7"
        if not st["ok"]:
            fill = "#fde0dc"
        tip = escape(f"{i}. {st['title']}")
        add(f'<rect x="{x0:.1f}" y="{top - 12}" width="{max(x1 - x0, 1):.1f}" height="{plot_h + 12}" '
            f'fill="{fill}"><title>{tip}</title></rect>')
        add(f'<text x="{(x0 + x1) / 2:.1f}" y="{top - 2}" text-anchor="middle" font-size="10">{i}</text>')
        xi = x(st["t_inject"])
        add(f'<line x1="{xi:.1f}" y1="{top - 12}" x2="{xi:.1f}" y2="{top + plot_h}" stroke="#333" '
            f'stroke-dasharray="2,2" stroke-width="0.8"/>')
    colour = {nic: _NIC_COLOURS[i % len(_NIC_COLOURS)] for i, nic in enumerate(nics)}
    faults = tl.get("faults", {})
    y = top + 4

    def fault_strips(target: str, y: float) -> None:
        # What the drill did to the wire, under what the daemon made of it.
        for t0, t1, kind in faults.get(target, ()):
            fill = _FAULT_COLOURS.get(kind, "#000")
            add(f'<rect x="{x(t0):.1f}" y="{y + lane - 5}" width="{max(x(t1) - x(t0), 1):.1f}" height="5" '
                f'fill="{fill}"><title>{escape(f"{target}: {kind} failure injected")}</title></rect>')

    for nic in nics:
        add(f'<text x="{left - 8}" y="{y + lane * 0.7:.1f}" text-anchor="end">{escape(nic)}</text>')
        for t0, t1, state in tl["interfaces"].get(nic, ()):
            fill = _STATE_COLOURS.get(state, "#ccc")
            add(f'<rect x="{x(t0):.1f}" y="{y}" width="{max(x(t1) - x(t0), 0.5):.1f}" height="{lane}" '
                f'fill="{fill}"><title>{escape(f"{nic} {state}")}</title></rect>')
        fault_strips(nic, y)
        y += lane + gap
    add(f'<text x="{left - 8}" y="{y + lane * 0.7:.1f}" text-anchor="end">router</text>')
    add(f'<rect x="{left}" y="{y + lane - 5}" width="{plot}" height="5" fill="#c8e6c9"/>')
    fault_strips("router", y)
    y += lane + gap
    for address in addresses:
        add(f'<text x="{left - 8}" y="{y + lane * 0.7:.1f}" text-anchor="end">{escape(address)}</text>')
        for t0, t1, holder in tl["addresses"][address]:
            fill = colour.get(holder, "#bbb") if holder else "#fff"
            tip = escape(f"{address} on {holder or 'no interface'}")
            w = max(x(t1) - x(t0), 0.5)
            add(f'<rect x="{x(t0):.1f}" y="{y + 4}" width="{w:.1f}" height="{lane - 8}" '
                f'fill="{fill}" fill-opacity="0.75" stroke="#999" stroke-width="0.3">'
                f'<title>{tip}</title></rect>')
            if x(t1) - x(t0) > 34 and holder:
                add(f'<text x="{x(t0) + 3:.1f}" y="{y + lane * 0.68:.1f}" font-size="10" fill="white">'
                    f'{escape(holder)}</text>')
        for t0, t1, count in tl["losses"].get(address, ()):
            add(f'<rect x="{x(t0):.1f}" y="{y}" width="{max(x(t1) - x(t0), 1.5):.1f}" height="{lane}" '
                f'fill="#d50000"><title>{escape(f"{count} pings to {address} lost")}</title></rect>')
        y += lane + gap
    # Time axis.
    axis_y = top + plot_h
    add(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="#333"/>')
    tick = next(s for s in (1, 2, 5, 10, 20, 30, 60, 120, 300) if end / s <= 15)
    t = 0
    while t <= end:
        add(f'<line x1="{x(t):.1f}" y1="{axis_y}" x2="{x(t):.1f}" y2="{axis_y + 5}" stroke="#333"/>')
        add(f'<text x="{x(t):.1f}" y="{axis_y + 18}" text-anchor="middle" font-size="10">{t} s</text>')
        t += tick
    # Legend: colours, then the numbered steps in three columns.
    lx = left
    for label, fill in (("ok", _STATE_COLOURS["ok"]), ("failed", _STATE_COLOURS["failed"]),
                        ("offline", _STATE_COLOURS["offline"]), ("pings lost", "#d50000"),
                        ("link failure / router down", "#000000"), ("silent failure", "#6d4c41"),
                        *((f"on {n}", colour[n]) for n in nics)):
        add(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="{fill}"/>')
        add(f'<text x="{lx + 16}" y="{legend_y}">{escape(label)}</text>')
        lx += 30 + 7 * len(label)
    col_w = plot // 3
    for i, st in enumerate(steps):
        cx = left + (i // legend_rows) * col_w if legend_rows else left
        cy = legend_y + 24 + (i % legend_rows) * 16
        mark = "" if st["ok"] else "  ✗"
        label = escape(f"{i + 1}. {st['title']}{mark}")
        add(f'<text x="{cx}" y="{cy}" font-size="11">{label}</text>')
    add("</svg>")
    return "\n".join(out) + "\n"


def write_svg(report: dict[str, Any], path: Path) -> None:
    path.write_text(svg(report), encoding="utf-8")
