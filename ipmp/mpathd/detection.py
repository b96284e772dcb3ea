"""Failure detection: link state and probe verdicts (§2.4-§2.7).

A link going down fails the NIC at once; a link coming up repairs a
link-only NIC unless the link flaps.  Each ``Tick`` sends the probes that
are due, settles the ones overdue and judges the phyints it touched:
NUM_PROBE_FAILS consecutive losses fail a NIC, NUM_PROBE_REPAIRS
acknowledgements repair it.  Replies fold round-trip samples into the
targets' CRTT, which may raise or lower the group's failure detection
time (§2.6), and multicast discovery finds host targets.

Pure module: no I/O, no clock.
"""

from __future__ import annotations

from ipmp.model import Family, IPAddress
from ipmp.mpathd import transitive
from ipmp.mpathd.actions import Actions
from ipmp.mpathd.phyint import (
    EXCEPTION_FACTOR,
    FDT_DIVISOR,
    LINK_UP_PERMIN,
    LINK_UP_WINDOW,
    LOWER_FDT_TRIGGER,
    MIN_SETTLING_TIME,
    NEXT_FDT_MULTIPLE,
    Group,
    Phyint,
    State,
)
from ipmp.mpathd.probe import (
    MAXDEFERREDRTT,
    NUM_PROBE_FAILS,
    NUM_PROBE_REPAIRS,
    PROBE_STATS_COUNT,
    Instance,
    Probe,
    ProbeKind,
    Reply,
    SlotStatus,
    Target,
    TargetStatus,
)
from ipmp.mpathd.steps import LinkChanged, ProbeReplied, SendProbe

__all__ = ["SLOT_STATUS_CODES", "Detection"]

#: The members the per-probe paths test, as plain names (see ``probe._UNACKED``).
_RUNNING = State.RUNNING
_FAILED = State.FAILED
_OFFLINE = State.OFFLINE
_MULTICAST = ProbeKind.MULTICAST
_RTT = ProbeKind.RTT
_ACCEPTED = Reply.ACCEPTED
_LATE = Reply.LATE
_ACTIVE = TargetStatus.ACTIVE

#: ``pr_status`` numbers of the probe history, as the Solaris traces print them.
SLOT_STATUS_CODES = {SlotStatus.UNUSED: 0, SlotStatus.UNACKED: 1, SlotStatus.ACKED: 2, SlotStatus.LOST: 3}


class Detection(Actions):
    """Link state and probe verdicts (module doc)."""

    def _link(self, ev: LinkChanged) -> None:
        pi = self.phyints.get(ev.ifname)
        if pi is None or pi.link_up == ev.up:
            return
        if ev.up:
            self._link_up(pi, ev.now)
        else:
            self._link_down(pi, ev.now)

    def _link_down(self, pi: Phyint, now: float) -> None:
        pi.link_up = False
        self._log("err", f"The link has gone down on {pi.name}")
        for inst in pi.instances.values():
            inst.clear_history()
            inst.stop()
        # Link-down is judged at once, whatever the quiet period (§2.5).
        if pi.state is State.RUNNING:
            self._failure(pi, now, link_down=True)

    def _link_up(self, pi: Phyint, now: float) -> None:
        pi.link_up = True
        self._log("err", f"The link has come up on {pi.name}")
        pi.link_ups = [t for t in pi.link_ups if now - t < LINK_UP_WINDOW] + [now]
        for inst in pi.instances.values():
            inst.start(now, self._group(pi).interval, self.rng)
        if pi.state is State.FAILED and not self._probe_capable(pi):
            self._try_link_repair(pi, now)

    def _try_link_repair(self, pi: Phyint, now: float) -> None:
        """A link-only NIC repairs on link up, unless the link is flapping (§2.7)."""
        recent = [t for t in pi.link_ups if now - t < LINK_UP_WINDOW]
        if len(recent) > LINK_UP_PERMIN:
            pi.repair_hold_until = min(recent) + LINK_UP_WINDOW
            if not pi.flap_logged:
                pi.flap_logged = True
                self._log("err", f"The link has come up on {pi.name} more than {LINK_UP_PERMIN} times "
                                 "in the last minute; disabling failback until it stabilizes")
            return
        pi.repair_hold_until = None
        pi.flap_logged = False
        self._repaired(pi, now)

    # -- probes --------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        if self.next_rescan is not None and now >= self.next_rescan:
            # The runtime rereads the kernel now; the retry rules run here too,
            # so a change the kernel refused earlier is tried again.
            self.next_rescan = now + self.timing.scan_interval
            self._resched_all = True
            self._retry(now)
        if self._settling_at is not None and now >= self._settling_at:
            self._resched_all = True
            for grp in self.groups.values():
                if grp.settling_until is not None and now >= grp.settling_until:
                    grp.settling_until = None
                    self._rebalance(now)  # members still failing now give their addresses away
        # Only the phyints whose wake-up has come: nothing is due on the others.
        for pi in self._due(now):
            if pi.repair_hold_until is not None and now >= pi.repair_hold_until:
                pi.repair_hold_until = None
                if pi.state is State.FAILED and pi.link_up and not self._probe_capable(pi):
                    self._try_link_repair(pi, now)
            if pi.state is _OFFLINE or not pi.link_up:
                continue
            interval = self._group(pi).interval
            user_interval = self._user_interval
            ticked = False
            for family, inst in pi.instances.items():
                if inst.expire(now, interval):
                    ticked = True  # a loss may have completed the run: judge now (``_wake``)
                due = inst.next_send
                if due is None or now < due:  # not ``inst.due(now)``
                    continue
                ticked = True
                self._dead_targets(pi, inst, now)
                probe = inst.next_probe(now, user_interval, interval, self.rng)
                self._fx.append(SendProbe(pi.name, family, inst.test_address, probe.target, probe.seq,
                                          probe.kind))  # ``_send``
                if not inst.uses_routers and len(inst.active_targets()) == 1:
                    # One host target is not enough: keep discovering (§2.5 step 5).
                    self._send(pi, family, inst, Probe(ProbeKind.MULTICAST, None, 0))
            if ticked:
                self._judge(pi, now)

    def _send(self, pi: Phyint, family: Family, inst: Instance, probe: Probe) -> None:
        self._fx.append(SendProbe(pi.name, family, inst.test_address, probe.target, probe.seq, probe.kind))

    def _dead_targets(self, pi: Phyint, inst: Instance, now: float) -> None:
        """A target that lost NUM_PROBE_FAILS probes while others answer is dropped (§2.6)."""
        if pi.state is not _RUNNING:
            return
        dead = [t for t in inst.targets if t.status is _ACTIVE and t.consecutive_lost >= NUM_PROBE_FAILS]
        if not dead or inst.consecutive_losses() >= NUM_PROBE_FAILS:
            return
        self._changed = True  # the targets change
        for t in dead:
            inst.drop_dead_target(t, now)
            if not t.is_router:
                self._send(pi, Family(t.address.version), inst, Probe(ProbeKind.MULTICAST, None, 0))

    def _judge(self, pi: Phyint, now: float) -> None:
        if pi.state is _RUNNING:
            # failure_state() needs NUM_PROBE_FAILS losses on every probing
            # instance: without them on one at least, nothing to judge (most ticks).
            for inst in pi.instances.values():
                if inst.consecutive_losses() >= NUM_PROBE_FAILS:
                    break
            else:
                return
            if any(i.in_quiet_period(now, self.timing.quiet_period) for i in pi.instances.values()):
                return
            self._failure(pi, now, link_down=False)
        elif pi.state is _FAILED and pi.link_up:
            if any(i.consecutive_acks() >= NUM_PROBE_REPAIRS for i in pi.instances.values()):
                self._repaired(pi, now)

    def _reply(self, ev: ProbeReplied) -> bool:
        """A probe reply; False when it cannot have moved the phyint's wake-up or verdict (see below)."""
        pi = self.phyints.get(ev.ifname)
        if pi is None or not pi.link_up:
            return True  # replies while the link is down are ignored (§2.4)
        inst = pi.instances.get(ev.family)
        if inst is None:
            return True
        kind = ev.kind
        if kind is _MULTICAST:
            self._discovered(pi, ev.family, ev.source, ev.now)
            return True
        if kind is _RTT:
            t = inst.target(ev.source)
            if t is not None and t.crtt_ms is not None and t.crtt_with(ev.rtt_ms) < t.crtt_ms:
                t.fold(ev.rtt_ms)  # RTT-only replies may only lower the CRTT
            return True
        # Far from failing (at most the two pending probes could be lost on
        # top of the run) and not reported failing: the instance has no loss
        # deadline before this reply nor after it, and an acknowledgement
        # cannot make the verdict "failing", so the phyint's wake-up and
        # verdict stay (``_wake``, ``_verdicts_moved``).  Nearly every reply.
        settled = inst.consecutive_losses() + 2 < NUM_PROBE_FAILS and not self._failing.get(pi.name, False)
        verdict, slot = inst.on_reply(ev.seq, ev.source, ev.now)
        if verdict is _ACCEPTED or verdict is _LATE:
            assert slot is not None
            grp = self._group(pi)
            # An RTT sample counts only from a running NIC of a working group,
            # if not absurd, and, for a late reply, if no newer probe to that
            # target was answered already.
            if (pi.state is _RUNNING and not grp.failed
                    and ev.rtt_ms <= PROBE_STATS_COUNT * grp.interval * 1000
                    and (verdict is _ACCEPTED or not inst.newer_ack_to(slot))):
                t = inst.target(slot.target)  # the reply's source (not FAKE), as the slot holds it
                if t is not None:
                    self._rtt(pi, inst, t, ev.rtt_ms, ev.now, ev.family, grp)
            return verdict is _LATE or not settled  # a late reply shortens the run of losses
        if verdict is Reply.OUT_OF_WINDOW:
            self._log("debug", f"out of window probe seq {ev.seq} snxt {inst.snxt} on {pi.name} "
                               f"from {ev.source}")
            return True
        assert slot is not None  # FAKE or DUPLICATE
        what = "Fake probe reply" if verdict is Reply.FAKE else "Duplicate probe reply"
        self._log("debug", f"probe status {SLOT_STATUS_CODES[slot.status]} {what} seq {ev.seq} "
                           f"snxt {inst.snxt} on {pi.name} from {ev.source}")
        return True

    def _rtt(self, pi: Phyint, inst: Instance, t: Target, m: int, now: float, family: Family,
             grp: Group) -> None:
        """Fold an RTT sample of ``t`` (a reply of ``pi``'s, whose group is ``grp``)."""
        interval_ms = grp.interval * 1000
        # A sample that alone would push the CRTT above the interval is
        # suspect, also the first one after a reset (CRTT = 3 x sample):
        # at FDT 100 ms one scheduling hiccup would otherwise raise the FDT.
        if t.crtt_with(m) > interval_ms:
            if len(t.deferred_samples) < MAXDEFERREDRTT:
                t.deferred_samples.append(m)  # a suspect sample is deferred once
                return
            for sample in t.deferred_samples:  # the second suspect one: believe both
                t.fold(sample)
        t.deferred_samples.clear()
        t.fold(m)
        crtt = t.crtt_ms
        assert crtt is not None
        if crtt > interval_ms:
            others = [o for o in inst.active_targets() if o is not t]
            exception = len(inst.active_targets()) >= 4 and all(
                o.crtt_ms is not None and o.crtt_ms <= interval_ms / EXCEPTION_FACTOR for o in others
            )
            self._changed = True  # a target goes, or the group's FDT rises
            if exception:
                inst.drop_dead_target(t, now)
                return
            new_interval_ms = NEXT_FDT_MULTIPLE * crtt
            grp.fdt_ms = int(new_interval_ms * FDT_DIVISOR)
            self.last_raise = now
            self._resched_all = True  # every member's losses now wait the new interval
            if grp.name:
                self._log("err", f"Cannot meet requested failure detection time of "
                                 f"{self.settings.failure_detection_time_ms} ms on ({family.word} {pi.name}) "
                                 f"new failure detection time for group \"{grp.name}\" is {grp.fdt_ms} ms")
            return
        user_fdt = self.settings.failure_detection_time_ms
        # The cheap test first: the FDT is nearly always the user's.
        if (grp.fdt_ms > user_fdt and crtt < interval_ms / LOWER_FDT_TRIGGER
                and now - self.last_raise >= MIN_SETTLING_TIME and self._all_fast(grp, interval_ms)):
            grp.fdt_ms = max(grp.fdt_ms // NEXT_FDT_MULTIPLE, user_fdt)
            self._changed = True
            self._resched_all = True
            if grp.name:
                self._log("err", f"Improved failure detection time {grp.fdt_ms} ms on "
                                 f"({family.word} {pi.name}) for group \"{grp.name}\"")

    def _all_fast(self, grp: Group, interval_ms: float) -> bool:
        for pi in self.phyints.values():
            if pi.group != grp.name or pi.state is not State.RUNNING:
                continue
            for inst in pi.instances.values():
                for t in inst.active_targets():
                    if t.crtt_ms is None or t.crtt_ms > interval_ms / LOWER_FDT_TRIGGER:
                        return False
        return True

    def _discovered(self, pi: Phyint, family: Family, source: IPAddress, now: float) -> None:
        """A multicast discovery responder becomes a host target, group-wide (§2.6)."""
        if int(source) == 0 or source in self._own_addresses():
            return
        for member in self._members(pi):
            inst = member.instances.get(family)
            itf = self.config.get(member.name)
            if inst is None or itf is None:
                continue
            lg = transitive.probe_source(self.config, itf, family, self.settings.transitive_probing)
            if lg is None or lg.address is None or source not in lg.address.network:
                continue
            if inst.add_host(source, now):
                self._changed = True  # a new target, of this member or another
