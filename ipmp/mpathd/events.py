"""What in.mpathd publishes on its event streams (``ipc.Broker``), derived from the machine.

Two topics (``protocol.TOPICS``):

``probes``
    One ``probe`` event per failure-detection probe that is acknowledged or
    declared lost, as Solaris 11 in.mpathd published them for
    ``ipmpstat -p`` (§7.2).  ``ProbeTracker`` finds them by comparing the
    probe ledgers (``probe.Instance.history``) with what it already
    reported, so the machine needs no knowledge of subscribers.  A late
    reply turns a lost probe into an acknowledged one: that probe is then
    reported a second time, as ``acked``.
``events``
    Group and interface state changes, the facts Solaris published as
    IPMP sysevents (§2.11): ``group_change`` (a group appears or goes),
    ``group_member_change`` (an interface joins or leaves a group),
    ``if_change`` (an interface's state or type changes) and
    ``group_state`` (a group becomes ok, degraded or failed).  The machine
    says what changed: a ``steps.StateChanged`` effect carries the reported
    states (``steps.Reported``) before and after the step that changed them,
    and ``state_changes`` makes the documents of it.  The machine reports
    only from steps that moved its ``generation``: at 64 NICs a snapshot on
    every probe step cost the daemon half a core (issue 20).

Event objects are JSON-ready dicts with an ``"event"`` key; the broker adds
``"v"`` and ``"topic"``.  Times: ``sent`` is CLOCK_MONOTONIC seconds (the
daemon's clock, which every process on the host shares), ``time`` is the
wall clock (seconds since the epoch); round-trip times are milliseconds.

Pure module: no I/O, no clock (the caller passes ``now`` and ``wall``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ipmp.model import Family
from ipmp.mpathd.phyint import Phyint
from ipmp.mpathd.probe import Instance, SlotStatus, Target
from ipmp.mpathd.snapshot import Snapshot
from ipmp.mpathd.steps import MemberState, Reported

__all__ = [
    "EVENT_NAMES",
    "ProbeTracker",
    "reported_of",
    "state_changes",
]

#: Every ``"event"`` value a stream carries (``overflow`` comes from ``ipc``).
EVENT_NAMES = ("probe", "group_change", "group_member_change", "if_change", "group_state")

_REPORTED = {SlotStatus.ACKED: "acked", SlotStatus.LOST: "lost"}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _stats(target: Target | None) -> dict[str, float | int | None]:
    """The target's smoothed RTT (RTTAVG), mean deviation (RTTDEV) and CRTT, in ms."""
    if target is None or target.sa < 0:
        return {"rttavg_ms": None, "rttdev_ms": None, "crtt_ms": None}
    return {"rttavg_ms": round(target.sa / 8, 3), "rttdev_ms": round(target.sd / 4, 3),
            "crtt_ms": target.crtt_ms}


@dataclass
class _Ledger:
    name: str
    family: Family
    phyint: Phyint
    instance: Instance
    reported: dict[int, SlotStatus] = field(default_factory=dict)
    # The instance's probe counters when its ledger was last read: a send
    # raises ``sent_total``, a loss ``lost_total``, an acknowledgement
    # ``acked_total`` (a late one also lowers ``lost_total``), so while the
    # three stay, no probe of it was settled and it is skipped.
    sent: int = -1
    acked: int = -1
    lost: int = -1


class ProbeTracker:
    """Which probe outcomes of the machine's ledgers have been published.

    ``start`` takes the baseline (nothing before it is reported), ``changes``
    returns the outcomes that are new since the last call, ``stop`` forgets
    everything (no subscriber left).  Cost per call: three counters per
    probing instance, and a pass over at most PROBE_STATS_COUNT slots of the
    few whose counters moved (one or two per probe step).  Given the
    ``Machine.generation``, the list of instances is made again only when it
    moved: until then the machine has the same phyints and instances (they
    change with what ``snapshot`` shows).
    """

    def __init__(self) -> None:
        self.active = False
        self._ledgers: dict[tuple[str, Family], _Ledger] = {}
        self._generation: int | None = None

    def start(self, phyints: Mapping[str, Phyint], *, now: float = 0.0, wall: float = 0.0,
              generation: int | None = None) -> None:
        self._ledgers = {}
        self._generation = None
        self.active = True
        self.changes(phyints, now=now, wall=wall, generation=generation)

    def stop(self) -> None:
        self._ledgers = {}
        self._generation = None
        self.active = False

    def _index(self, phyints: Mapping[str, Phyint]) -> None:
        """The ledgers of the instances the machine has now; the others are forgotten."""
        ledgers: dict[tuple[str, Family], _Ledger] = {}
        for name, pi in phyints.items():
            for family, inst in pi.instances.items():
                key = (name, family)
                ledger = self._ledgers.get(key)
                if ledger is None or ledger.instance is not inst:
                    # A new instance (test address changed, NIC re-created):
                    # its sequence numbers start again.
                    ledger = _Ledger(name, family, pi, inst)
                ledger.phyint = pi
                ledgers[key] = ledger
        self._ledgers = ledgers

    def changes(self, phyints: Mapping[str, Phyint], *, now: float, wall: float,
                generation: int | None = None) -> list[dict[str, Any]]:
        """``probe`` events for the outcomes not reported yet, oldest probe first per instance.

        ``now`` (monotonic) is when the daemon has processed them: RTT is
        measured to it, NETRTT to the moment the reply was read.
        ``generation`` is the machine's (None: unknown, look at every phyint).
        """
        if generation is None or generation != self._generation:
            self._index(phyints)
            self._generation = generation
        out: list[dict[str, Any]] = []
        for ledger in self._ledgers.values():
            inst = ledger.instance
            if (inst.sent_total == ledger.sent and inst.acked_total == ledger.acked
                    and inst.lost_total == ledger.lost):
                continue
            ledger.sent, ledger.acked, ledger.lost = inst.sent_total, inst.acked_total, inst.lost_total
            for seq in inst.order:
                slot = inst.history[seq]
                state = _REPORTED.get(slot.status)
                if state is None or ledger.reported.get(seq) is slot.status:
                    continue
                ledger.reported[seq] = slot.status
                acked_at = slot.acked_at if slot.status is SlotStatus.ACKED else None
                out.append({
                    "event": "probe",
                    "interface": ledger.name,
                    "group": ledger.phyint.group,
                    "family": ledger.family.word,
                    "probe": seq,
                    "state": state,
                    "target": str(slot.target),
                    "sent": round(slot.sent_at, 6),
                    "time": round(wall - (now - slot.sent_at), 6),
                    "netrtt_ms": _ms(acked_at - slot.sent_at) if acked_at is not None else None,
                    "rtt_ms": _ms(now - slot.sent_at) if acked_at is not None else None,
                    **_stats(inst.target(slot.target)),
                })
            if len(ledger.reported) > len(inst.history):
                ledger.reported = {s: st for s, st in ledger.reported.items() if s in inst.history}
        return out


# -- state changes (sysevents) ------------------------------------------------------


def reported_of(snapshot: Snapshot) -> Reported:
    """The reported states a ``Snapshot`` shows (what a ``StateChanged`` compares)."""
    groups = {name: g.state for name, g in snapshot.groups.items() if name}
    members = {name: MemberState(group=i.group, state=i.state, type=i.type, link=i.link, probe=i.probe,
                                 active=i.active)
               for name, i in snapshot.interfaces.items()}
    return Reported(groups, members)


def _member_doc(event: str, name: str, m: MemberState, **extra: object) -> dict[str, Any]:
    return {"event": event, "group": m.group, "interface": name, **extra, "state": m.state, "type": m.type,
            "link": m.link, "probe": m.probe, "active": m.active}


def state_changes(before: Reported, after: Reported, *, wall: float) -> list[dict[str, Any]]:
    """The sysevent-like events that lead from ``before`` to ``after``, in a fixed order.

    New groups first, then members leaving, members joining, interface
    changes, group state changes, and groups going last, so that a reader
    that applies them in order never sees a member of a group it does not
    know.  An interface that moves from one group to another leaves the
    first and joins the second; the anonymous group (``""``) has no
    ``group_change`` or ``group_state`` events.
    """
    out: list[dict[str, Any]] = []
    for group in sorted(set(after.groups) - set(before.groups)):
        out.append({"event": "group_change", "group": group, "op": "add", "state": after.groups[group]})
    for name in sorted(before.members):
        gone = before.members[name]
        stays = after.members.get(name)
        if stays is None or stays.group != gone.group:
            out.append(_member_doc("group_member_change", name, gone, op="remove"))
    for name in sorted(after.members):
        new = after.members[name]
        old = before.members.get(name)
        if old is None or new.group != old.group:
            out.append(_member_doc("group_member_change", name, new, op="add"))
        elif (new.state, new.type) != (old.state, old.type):
            out.append(_member_doc("if_change", name, new, previous_state=old.state, previous_type=old.type))
    for group in sorted(set(after.groups) & set(before.groups)):
        if after.groups[group] != before.groups[group]:
            out.append({"event": "group_state", "group": group, "state": after.groups[group],
                        "previous_state": before.groups[group]})
    for group in sorted(set(before.groups) - set(after.groups)):
        out.append({"event": "group_change", "group": group, "op": "remove"})
    for doc in out:
        doc["time"] = round(wall, 6)
    return out
