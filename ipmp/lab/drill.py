"""``ipmp-lab drill``: fail and repair everything while a peer pings, and say what happened.

The drill builds a lab (:func:`ipmp.lab.updown.create`), then runs a script
of steps (:mod:`ipmp.lab.script`), each with the peer pinging every data
address 100 times a second.  What each step should do is worked out before
it runs (:mod:`ipmp.lab.rules`).  A step *misbehaves* when an expected
message is missing, a failure, repair, failover or failback message appears
that should not, a data address is missing or on the wrong NIC when the
step is over, or if_mpadm's exit status or message is not Solaris'.  In a
group with a Solaris 11 IPMP interface a step misbehaves when its data
addresses are not re-bound as the kernel's rules say (:mod:`ipmp.lab.rebind`:
each address of a member that stops being active to the member with the
fewest, a member that becomes active taking its share, no failback home);
each step's report lists the re-bindings it saw.  Lost
pings are measured, never judged: how many a failover costs is the number
the drill is there to show.

Times: *detection* is from the injection to the daemon's failure (or
repair) message; *move* is from the injection (or the if_mpadm command) to
the moment the last moved data address appeared on its new NIC, as the
kernel reported it (:mod:`ipmp.lab.observe`, independent of the daemon).
All clocks are CLOCK_MONOTONIC, shared by every process: the daemon's
lines are stamped by :mod:`ipmp.lab.logwrap` as they are printed.

The report is a JSON-ready dict (see ``REPORT_VERSION``);
:func:`ipmp.lab.picture.svg` draws its timeline.  This module never prints:
progress goes to an :class:`Observer`.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ipmp.lab.errors import LabError
from ipmp.lab.lab import Lab
from ipmp.lab.observe import AddressMonitor, LogTail
from ipmp.lab.pingjob import PingJob
from ipmp.lab.pingreport import PingReport
from ipmp.lab.rebind import final_problems, spread_problems
from ipmp.lab.rules import Expect, Rules, World, bare
from ipmp.lab.script import Step, plan_steps
from ipmp.lab.timeline import Recorder
from ipmp.lab.updown import create
from ipmp.program import python_module

__all__ = ["REPORT_VERSION", "Observer", "run_drill"]

REPORT_VERSION = 1

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
    r"(NIC|IP interface) (failure|repair) detected on .*|All Interfaces in group .* have failed"
    r"|At least 1 interface \(.*\) of group .* has repaired|Successfully failed (over|back) .*"
)
_FAILOVER = re.compile(r"Successfully failed over from NIC (\S+) to NIC (\S+)")


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
        self.record = Recorder(time.monotonic())
        #: When the current step's fault was injected (or its command started).
        self._inject = self.record.t0

    # -- helpers
    def rel(self, t: float) -> float:
        return self.record.rel(t)

    def targets(self) -> list[str]:
        peer_versions = {ipaddress.ip_interface(a).version for a in (self.plan.peer4, self.plan.peer6) if a}
        out = []
        for a in [*(a for n in self.plan.nics for a in n.data_addresses),
                  *(a for i in self.plan.ipmp for a in i.data_addresses)]:
            if ipaddress.ip_interface(a).version in peer_versions:
                out.append(bare(a))
        return out

    def holders(self) -> dict[str, str]:
        """Every data address -> the NIC holding it now (Solaris 11's have no home)."""
        assert self.monitor is not None
        out = dict(self.world.homes())
        for a in self.world.ipmp_addresses():
            out[a] = ",".join(sorted(self.monitor.nics_of(a)))
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
        monitor = self.monitor = AddressMonitor(self.lab)
        try:
            self.obs.phase(f"warming up: in.mpathd finds its probe targets (FDT {self.fdt_ms} ms)")
            # Enough probe rounds for targets and round-trip times (§2.5).
            time.sleep(max(1.0, 1.5 * self.fdt))
            self._pump()
            self.record.t0 = time.monotonic()
            start_holders = self.holders()
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
            monitor.close()
        ok = all(r["ok"] for r in results) and not final
        timeline = self.record.timeline(end, self.log.lines, self.plan, start_holders, monitor.events)
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
                "ipmp_interfaces": [
                    {"name": i.name, "group": i.group, "data_addresses": list(i.data_addresses)}
                    for i in self.plan.ipmp
                ],
                "transitive_probing": self.plan.transitive,
            },
            "notes": notes,
            "duration_s": round(end - self.record.t0, 3),
            "steps": results,
            "final_problems": final,
            "timeline": timeline,
        }

    def run_step(self, step: Step, targets: Sequence[str]) -> dict[str, Any]:
        assert self.monitor is not None
        monitor = self.monitor
        rules = Rules(self.world, monitor.nics_of, self.fdt)
        before = {a: sorted(monitor.nics_of(a)) for a in self.holders()}
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

    def _fault(self, target: str, kind: str, start: bool) -> None:
        self.record.fault(target, kind, start, time.monotonic())

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
            self.record.events.append({"t": self.rel(now), "kind": "command",
                                         "text": f"if_mpadm {flag} {nic} (exit {cmd.rc})"})
            if cmd.rc == 0:
                w.nics[nic].state = "offline" if flag == "-d" else ("ok" if w.nics[nic].link_up else "failed")
                self.record.admin.append((time.monotonic(), nic, "offline" if flag == "-d" else "online"))
            return cmd
        if kind != "baseline":
            self.record.events.append({"t": self.rel(now), "kind": "inject", "text": step.title})
        return None

    def _done(self, e: Expect, monitor: AddressMonitor) -> bool:
        seen = [m for t, m in self.log.lines if t >= self._inject]
        if not all(any(re.fullmatch(p, m) for m in seen) for p in e.messages):
            return False
        if spread_problems(e, monitor.nics_of, self.world.ipmp_addresses()):
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
        placement_after = {a: sorted(monitor.nics_of(a)) for a in before}
        problems += spread_problems(e, monitor.nics_of, self.world.ipmp_addresses())
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
        if e.watch:
            # Solaris 11: whichever addresses were re-bound, the last one's arrival.
            arrivals = [monitor.added_since(a, nic, inject) for a in e.watch for nic in monitor.nics_of(a)]
            seen_at = [t for t in arrivals if t is not None]
            move = round(1000 * (max(seen_at) - inject), 1) if seen_at else None
        elif e.moving:
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
                self.record.losses.setdefault(address, []).append(
                    [self.rel(base + r.start), self.rel(base + r.end), r.count]
                )
        self.record.ping_windows.append([self.rel(pings.start_monotonic), self.rel(pings.end_monotonic)])
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
            "rebound": [f"{a}: {' '.join(before[a]) or '-'} -> {' '.join(placement_after[a]) or '-'}"
                        for a in self.world.ipmp_addresses() if before.get(a) != placement_after.get(a)],
            "command": None if command is None else {
                "argv": command.argv, "exit": command.rc, "expected_exit": e.rc,
                "stdout": command.stdout, "stderr": command.stderr, "seconds": round(command.seconds, 3),
            },
        }

    def final_check(self) -> list[str]:
        """At the end every data address must be home again, once (Solaris 11: ``rebind.final_problems``)."""
        assert self.monitor is not None
        problems = []
        for address, home in self.world.homes().items():
            now = self.monitor.nics_of(address)
            if now != {home}:
                problems.append(f"at the end {address} is on {', '.join(sorted(now)) or 'no interface'}, "
                                f"not on {home}")
        problems += final_problems(self.world, self.monitor.nics_of)
        return problems


def _readable(pattern: str) -> str:
    """A message regex as a person would write it: ``NIC (qfe0|qfe1)`` -> ``NIC qfe0 or qfe1``."""
    text = pattern.replace(r"(\S+)", "<any>").replace(r"\S+", "<any>")
    text = re.sub(r"(?<!\\)\(([^()]*)\)$", lambda m: m[1].replace("|", " or "), text)
    return re.sub(r"\\(.)", r"\1", text)


def run_drill(
    name: str,
    source: Path,
    *,
    script: Path | None = None,
    fdt_ms: int = 1000,
    quiet_period: float | None = None,
    observer: Observer | None = None,
) -> dict[str, Any]:
    """Build the lab, run the drill, remove the lab (whatever happens); the report."""
    obs: Observer = observer or _Quiet()
    qp = quiet_period if quiet_period is not None else max(1.0, 2.0 * fdt_ms / 1000.0)
    started = time.monotonic()
    lab = create(name, source, script=script, fdt_ms=fdt_ms, quiet_period=qp, progress=obs.phase)
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
