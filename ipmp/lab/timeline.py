"""What a drill records as it runs -- faults, commands, losses, state changes -- and its timeline.

Every time is kept as seconds since the drill's origin ``t0`` (monotonic),
so the report and its picture share one axis with the daemon's stamped
messages and the kernel's address events.

Pure: the times come in as arguments; nothing here reads the clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Types only: the monitor runs ``ip monitor`` and the plan evaluates boot
    # files through the product, neither of which this pure module may load.
    from ipmp.lab.observe import AddressEvent
    from ipmp.lab.plan import NetworkPlan

__all__ = ["Recorder"]


@dataclass
class Recorder:
    """The drill's record on one time axis; :meth:`timeline` turns it into the report's."""

    t0: float
    #: Injections and commands, as the picture marks them.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: (monotonic time, nic, "offline" or "online") for each if_mpadm that worked.
    admin: list[tuple[float, str, str]] = field(default_factory=list)
    #: address -> [start, end, count] of each run of lost pings.
    losses: dict[str, list[list[float]]] = field(default_factory=dict)
    ping_windows: list[list[float]] = field(default_factory=list)
    #: Injected faults: (target, kind) -> start; closed ones as [t0, t1, kind] per target.
    open_faults: dict[tuple[str, str], float] = field(default_factory=dict)
    faults: dict[str, list[list[Any]]] = field(default_factory=dict)

    def rel(self, t: float) -> float:
        return round(t - self.t0, 4)

    def fault(self, target: str, kind: str, start: bool, at: float) -> None:
        """A fault on ``target`` began (``start``) or ended at monotonic time ``at``."""
        now = self.rel(at)
        if start:
            self.open_faults.setdefault((target, kind), now)
        elif (target, kind) in self.open_faults:
            t0 = self.open_faults.pop((target, kind))
            self.faults.setdefault(target, []).append([t0, now, kind])

    def closed_faults(self, end: float) -> dict[str, list[list[Any]]]:
        out = {k: list(v) for k, v in self.faults.items()}
        for (target, kind), t0 in self.open_faults.items():
            out.setdefault(target, []).append([t0, self.rel(end), kind])
        return out

    def timeline(
        self,
        end: float,
        log_lines: Sequence[tuple[float, str]],
        plan: NetworkPlan,
        homes: dict[str, str],
        address_events: Sequence[AddressEvent],
    ) -> dict[str, Any]:
        """Interface states (from the daemon's messages), address holders (from the kernel), the rest."""
        messages = [(t, m) for t, m in log_lines if self.t0 <= t <= end]
        states: dict[str, list[list[Any]]] = {}
        current = {n: "ok" for n in plan.names}
        since = {n: 0.0 for n in plan.names}
        changes: list[tuple[float, str, str]] = []
        for t, m in messages:
            # "IP interface": Clearview in.mpathd's word in a group with an IPMP interface.
            if mm := re.fullmatch(r"(?:NIC|IP interface) failure detected on (\S+).*", m):
                changes.append((t, mm[1], "failed"))
            elif mm := re.fullmatch(r"(?:NIC|IP interface) repair detected on (\S+).*", m):
                changes.append((t, mm[1], "ok"))
            elif mm := re.fullmatch(r"All Interfaces in group (\S+) have failed", m):
                changes += [(t, n.name, "failed") for n in plan.members(mm[1])]
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
        for nic in plan.names:
            states.setdefault(nic, []).append([since[nic], self.rel(end), current[nic]])
        holders: dict[str, list[list[Any]]] = {}
        for address, home in homes.items():
            segs: list[list[Any]] = []
            holder, t_from = home, 0.0
            for ev in sorted(address_events, key=lambda e: e.t):
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
            "faults": self.closed_faults(end),
            "events": sorted(self.events + events, key=lambda e: float(e["t"])),
        }
