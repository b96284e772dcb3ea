"""Probe bookkeeping of one phyint instance (one NIC, one address family).

What in.mpathd keeps per instance in ``mpd_tables.h`` / ``mpd_probe.c``: the
probe history (a ring of PROBE_STATS_COUNT slots indexed by sequence number),
the probe targets with their conservative round-trip time (CRTT), and the
schedule of the next probe.  It knows nothing of IPv4 versus IPv6, sockets or
clocks: times are arguments (seconds, monotonic), randomness comes from the
caller's ``random.Random`` and, for the first sequence number of an instance,
from a secret the caller passes (``first_seq``).

Pure module: no I/O, no clock.
"""

from __future__ import annotations

import enum
import hashlib
import random
from dataclasses import dataclass, field
from typing import NamedTuple

from ipmp.model import IPAddress

#: Consecutive lost probes that mean failure (``mpd_tables.h``).
NUM_PROBE_FAILS = 5
#: Consecutive acknowledged probes that mean repair (``mpd_tables.h``).
NUM_PROBE_REPAIRS = 10
#: History size: enough for a repair run and a failure run plus the two
#: probes that may be in flight (10 * 5 + 2); also the reply window.
PROBE_STATS_COUNT = NUM_PROBE_REPAIRS * NUM_PROBE_FAILS + 2
#: A probe goes out at a random point in the second half of each interval.
MIN_RANDOM_FACTOR = 0.5
MAX_RANDOM_FACTOR = 1.0
#: At most this many active targets per instance; this many are revived
#: from SLOW/DEAD routers when none is left.
MAX_PROBE_TARGETS = 5
MIN_PROBE_TARGETS = 3
#: A slow or dead router target is reconsidered after this long (s).
MIN_RECOVERY_TIME = 60.0
#: Suspect RTT samples deferred before they are believed.
MAXDEFERREDRTT = 1
#: Sequence numbers are 16 bits on the wire.
SEQ_MOD = 1 << 16


class SlotStatus(enum.Enum):
    UNUSED = "unused"
    UNACKED = "unacked"
    ACKED = "acked"
    LOST = "lost"


class TargetStatus(enum.Enum):
    ACTIVE = "active"
    SLOW = "slow"
    DEAD = "dead"
    UNUSED = "unused"


#: The members the per-probe paths compare against, as plain names: Python
#: 3.11 reaches an enum member through a descriptor, several times slower
#: than a module global, and these comparisons run at every probe.
_UNACKED = SlotStatus.UNACKED
_ACKED = SlotStatus.ACKED
_LOST = SlotStatus.LOST
_ACTIVE = TargetStatus.ACTIVE
#: Half the sequence space: ``seq_before``'s test, inlined where every reply passes.
_HALF_SEQ = (1 << 16) // 2


class ProbeKind(enum.IntEnum):
    """The probe type word in the payload (``mpd_probe.c``)."""

    UNICAST = 0x1234  # failure-detection probe
    MULTICAST = 0x5678  # target discovery to all-hosts
    RTT = 0x9ABC  # RTT-only probe while the FDT is raised


@dataclass(slots=True)
class Target:
    address: IPAddress
    is_router: bool
    status: TargetStatus = TargetStatus.ACTIVE
    #: Jacobson/Karels estimator in integer ms: ``sa`` is 8 x smoothed RTT,
    #: ``sd`` is 4 x mean deviation; -1 means no sample yet.
    sa: int = -1
    sd: int = 0
    #: Suspect samples held back (at most MAXDEFERREDRTT).
    deferred_samples: list[int] = field(default_factory=list)
    consecutive_lost: int = 0
    status_since: float = 0.0

    @property
    def crtt_ms(self) -> int | None:
        """Conservative RTT = smoothed RTT + 4 x deviation (first sample m gives 3m)."""
        if self.sa < 0:
            return None
        return self.sa // 8 + self.sd

    def fold(self, m: int) -> None:
        """Fold one RTT sample (ms) into the estimator."""
        if self.sa < 0:
            self.sa = 8 * m
            self.sd = 2 * m
            return
        err = m - self.sa // 8
        self.sa = max(self.sa + err, 0)
        self.sd += abs(err) - self.sd // 4

    def crtt_with(self, m: int) -> int:
        """The CRTT this sample would give, without keeping it (``fold`` on copies; every reply asks)."""
        sa, sd = self.sa, self.sd
        if sa < 0:
            return (8 * m) // 8 + 2 * m
        err = m - sa // 8
        return max(sa + err, 0) // 8 + sd + abs(err) - sd // 4

    def reset_rtt(self) -> None:
        """Forget the estimate and the loss run (on NIC failure: §2.7 "reset CRTTs")."""
        self.sa, self.sd = -1, 0
        self.deferred_samples.clear()
        self.consecutive_lost = 0


@dataclass(slots=True)
class Slot:
    seq: int
    target: IPAddress
    sent_at: float
    status: SlotStatus = SlotStatus.UNACKED
    acked_at: float | None = None
    #: When the probe was declared lost: its send time plus the wait it was
    #: given (mpd_probe.c ``pr_time_lost`` = start + CRTT, or + the probe
    #: interval without a CRTT), the instant the failure comparison uses.
    lost_at: float | None = None


class Probe(NamedTuple):
    """A probe to send now: the runtime encodes and sends it (a named tuple: one per probe)."""

    kind: ProbeKind
    target: IPAddress | None  # None: multicast discovery (224.0.0.1 / ff02::1)
    seq: int


class Reply(enum.Enum):
    ACCEPTED = "accepted"
    LATE = "late"  # the slot was already LOST: it flips to ACKED
    OUT_OF_WINDOW = "out of window"
    FAKE = "fake"
    DUPLICATE = "duplicate"


# Plain names for the members the per-probe paths use (see ``_UNACKED``).
_UNICAST = ProbeKind.UNICAST
_MULTICAST = ProbeKind.MULTICAST
_RTT = ProbeKind.RTT
_ACCEPTED = Reply.ACCEPTED
_LATE = Reply.LATE
_OUT_OF_WINDOW = Reply.OUT_OF_WINDOW
_FAKE = Reply.FAKE
_DUPLICATE = Reply.DUPLICATE


def first_seq(secret: bytes, serial: int) -> int:
    """The first sequence number of the ``serial``-th probing instance of a daemon.

    Solaris starts every instance at 1 (``pii_snxt = 1``), so a blind forger
    knows which sequence numbers a young instance's replies carry (issue 20;
    see ``icmp`` for the attack).  Here it is a keyed hash of ``serial``
    with the daemon's random ``secret``: as unpredictable as the secret, yet
    a pure function, so the machine stays deterministic for a given secret
    and reads no random source.  Any of the 2**16 values may come out; the
    window and ``seq_before`` work modulo SEQ_MOD, so a start near the top
    just wraps.
    """
    digest = hashlib.blake2b(serial.to_bytes(8, "big", signed=False), digest_size=2, key=secret).digest()
    return int.from_bytes(digest, "big")


def seq_before(a: int, b: int) -> bool:
    """a < b in 16-bit serial arithmetic (the wrap is handled by signed difference)."""
    diff = (a - b) % SEQ_MOD
    return diff >= SEQ_MOD // 2


@dataclass(slots=True)
class Instance:
    """One NIC's probing state for one family (Solaris ``phyint_instance``)."""

    test_address: IPAddress
    created_at: float
    targets: list[Target] = field(default_factory=list)
    history: dict[int, Slot] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)  # seqs, oldest first
    #: The next probe's sequence number.  The machine starts it at
    #: ``first_seq`` (random); 1, Solaris's start, only for instances made by hand.
    snxt: int = 1
    base: float | None = None
    next_send: float | None = None
    fd_next: float | None = None
    rotation: int = 0
    rtt_rotation: int = 0
    #: Whether the quiet period is over early (one of the last two probes acked).
    quiet_over: bool = False
    # Cumulative figures for the SIGUSR1 report (mpd_main.c ``in_signal``).
    sent_total: int = 0
    acked_total: int = 0
    lost_total: int = 0
    #: Probes skipped because the daemon was late, and how many times it was.
    missed_total: int = 0
    missed_times: int = 0
    #: Replies outside the window of recent sequence numbers (``pii_cum_stats.unknown``).
    ambiguous_total: int = 0
    #: ``consecutive_losses()``, kept up to date where slots change (``_lose``,
    #: ``on_reply``, the oldest slot leaving the history, ``clear_history``)
    #: instead of walked again at every ask: several per probe step.
    _losses: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._losses = self._count_losses()

    # -- schedule -----------------------------------------------------------

    def start(self, now: float, interval: float, rng: random.Random) -> None:
        """First base time: now + random(0 .. interval), spreading the NICs."""
        self.base = now + rng.uniform(0.0, interval)
        self.next_send = self.base
        self.fd_next = self.base

    def stop(self) -> None:
        self.base = self.next_send = self.fd_next = None

    def due(self, now: float) -> bool:
        return self.next_send is not None and now >= self.next_send

    def _advance(self, now: float, user_interval: float, rng: random.Random) -> None:
        assert self.base is not None
        # rng.uniform(lo, hi), inlined (the same arithmetic, so the same times).
        lo = MIN_RANDOM_FACTOR * user_interval
        self.next_send = self.base + (lo + (MAX_RANDOM_FACTOR * user_interval - lo) * rng.random())
        self.base += user_interval
        # Late by more than a whole interval: skip the missed probes.
        if self.next_send < now - user_interval:
            missed = int((now - self.base) // user_interval) + 1
            self.missed_total += missed
            self.missed_times += 1
            self.base += missed * user_interval
            self.next_send = self.base + rng.uniform(MIN_RANDOM_FACTOR * user_interval,
                                                     MAX_RANDOM_FACTOR * user_interval)

    # -- targets --------------------------------------------------------------

    def active_targets(self) -> list[Target]:
        return [t for t in self.targets if t.status is _ACTIVE]

    def target(self, address: IPAddress) -> Target | None:
        for t in self.targets:
            # A slot holds its target's own address object: identity first.
            if t.address is address or t.address == address:
                return t
        return None

    @property
    def uses_routers(self) -> bool:
        for t in self.targets:
            if t.is_router:
                return True
        return False

    def set_routers(self, routers: list[IPAddress], now: float) -> bool:
        """Routers from the routing table; they always win over hosts (§2.6)."""
        changed = False
        if routers:
            before = len(self.targets)
            self.targets = [t for t in self.targets if t.is_router]
            changed = len(self.targets) != before
        for t in list(self.targets):
            if t.is_router and t.address not in routers:
                self.targets.remove(t)
                changed = True
        for r in routers:
            if self.target(r) is None:
                status = (TargetStatus.ACTIVE if len(self.active_targets()) < MAX_PROBE_TARGETS
                          else TargetStatus.UNUSED)
                # New targets go to the head of the list (mpd_tables.c).
                self.targets.insert(0, Target(r, True, status, status_since=now))
                changed = True
        self._promote(now)
        return changed

    def add_host(self, address: IPAddress, now: float) -> bool:
        """A responder to multicast discovery (only when there are no routers)."""
        if self.uses_routers or self.target(address) is not None:
            return False
        if len(self.targets) >= MAX_PROBE_TARGETS:
            return False
        self.targets.insert(0, Target(address, False, status_since=now))
        return True

    def flush_hosts(self) -> None:
        self.targets = [t for t in self.targets if t.is_router]

    def _promote(self, now: float) -> None:
        """Keep MAX_PROBE_TARGETS active; revive slow/dead routers when none is left."""
        for t in self.targets:
            resting = t.status in (TargetStatus.SLOW, TargetStatus.DEAD)
            if resting and now - t.status_since >= MIN_RECOVERY_TIME:
                # DEAD -> SLOW -> UNUSED, one step per recovery time (§2.6).
                t.status = TargetStatus.SLOW if t.status is TargetStatus.DEAD else TargetStatus.UNUSED
                t.status_since = now
        for t in self.targets:
            if len(self.active_targets()) >= MAX_PROBE_TARGETS:
                break
            if t.status is TargetStatus.UNUSED:
                t.status = TargetStatus.ACTIVE
                t.status_since = now
        if not self.active_targets():
            rank = {TargetStatus.UNUSED: 0, TargetStatus.SLOW: 1, TargetStatus.DEAD: 2}
            for t in sorted(self.targets, key=lambda x: rank.get(x.status, 3))[:MIN_PROBE_TARGETS]:
                t.status = TargetStatus.ACTIVE
                t.status_since = now

    def drop_dead_target(self, target: Target, now: float) -> None:
        """A target that stopped answering while others answer (§2.6 "Dead target")."""
        if target.is_router:
            target.status = TargetStatus.DEAD
            target.status_since = now
        else:
            self.targets.remove(target)
        target.consecutive_lost = 0
        self._promote(now)

    # -- probes ---------------------------------------------------------------

    def _record(self, slot: Slot) -> None:
        self.history[slot.seq] = slot
        self.order.append(slot.seq)
        self._forget_oldest()

    def _forget_oldest(self) -> None:
        """Keep PROBE_STATS_COUNT slots; a lost one leaving may shorten the run of losses."""
        order, history = self.order, self.history
        while len(order) > PROBE_STATS_COUNT:
            if history.pop(order.pop(0)).status is _LOST:
                self._losses = self._count_losses()

    def next_probe(
        self, now: float, user_interval: float, group_interval: float, rng: random.Random
    ) -> Probe:
        """The probe this tick sends, and the schedule of the next tick (§2.5)."""
        assert self.fd_next is not None
        self._advance(now, user_interval, rng)
        active = [t for t in self.targets if t.status is _ACTIVE]
        if not active:
            return Probe(_MULTICAST, None, 0)
        if group_interval > user_interval and now < self.fd_next:
            # FDT raised: ticks between failure-detection probes only measure RTT.
            t = active[self.rtt_rotation % len(active)]
            self.rtt_rotation += 1
            return Probe(_RTT, t.address, 0)
        self.fd_next = max(self.fd_next + group_interval, now)
        # At most the two most recent probes may be outstanding.
        order, history = self.order, self.history
        if len(order) >= 2:
            prev = history[order[-2]]
            if prev.status is _UNACKED:
                self._lose(prev, prev.sent_at + self.wait(prev, group_interval))
        t = active[self.rotation % len(active)]
        self.rotation += 1
        seq = self.snxt
        self.snxt = (seq + 1) % SEQ_MOD
        history[seq] = Slot(seq, t.address, now)  # ``_record``, inlined
        order.append(seq)
        if len(order) > PROBE_STATS_COUNT and history.pop(order.pop(0)).status is _LOST:
            self._losses = self._count_losses()  # ``_forget_oldest``: one slot at a time here
        self.sent_total += 1
        return Probe(_UNICAST, t.address, seq)

    def _lose(self, slot: Slot, at: float) -> None:
        slot.status = _LOST
        slot.lost_at = at
        self.lost_total += 1
        t = self.target(slot.target)
        if t is not None:
            t.consecutive_lost += 1
        # One of the two newest slots (the only ones pending): it joins the run
        # of losses unless the newest one is newer and acknowledged.
        order = self.order
        if slot.seq == order[-1] or self.history[order[-1]].status is not _ACKED:
            self._losses += 1

    def wait(self, slot: Slot, group_interval: float) -> float:
        """How long ``slot`` may stay unanswered: its target's CRTT, else the group interval.

        mpd_probe.c (``phyint_inst_timer``) takes a CRTT of 0 for "none" (a
        reset one, or no sample yet) and waits the group's probe interval, the
        worst case, instead; so does this: a sample below 1 ms gives CRTT 0.
        """
        t = self.target(slot.target)
        crtt = t.crtt_ms if t is not None else None
        return crtt / 1000.0 if crtt else group_interval

    def expire(self, now: float, group_interval: float) -> bool:
        """An unacknowledged probe is LOST once its wait (``wait``) has passed; True if one was.

        At most the last two probes can be unacknowledged (``next_probe``
        forces older ones LOST), so only they are looked at.  The wait ends
        at ``sent_at + wait``, the instant ``loss_deadline`` names.
        """
        order = self.order
        if not order:
            return False
        history = self.history
        lost = False
        # The older of the two first, then the newest (``order[-2:]``).
        for slot in ((history[order[-2]], history[order[-1]]) if len(order) > 1 else (history[order[-1]],)):
            if slot.status is _UNACKED and now >= (lost_at := slot.sent_at + self.wait(slot, group_interval)):
                self._lose(slot, lost_at)
                lost = True
        return lost

    def loss_deadline(self, group_interval: float) -> float | None:
        """When a pending probe that would complete NUM_PROBE_FAILS consecutive losses expires.

        None while no pending probe's loss could make a failure: such losses
        are settled at the next probe, where mpd_probe.c settles every loss,
        and cost no wake-up.  A loss that may complete the run is judged at
        its own expiry, up to an interval before that (see ``Machine._wake``).
        """
        order, history = self.order, self.history
        if not order:
            return None
        newest = history[order[-1]]
        older = history[order[-2]] if len(order) > 1 else None
        newest_pending = newest.status is _UNACKED
        older_pending = older is not None and older.status is _UNACKED
        if not newest_pending and not older_pending:
            return None  # nothing pending: the case after every reply
        if self._losses + newest_pending + older_pending < NUM_PROBE_FAILS:
            return None  # the case after every probe sent by a NIC that is answered
        pending = [slot for slot, wanted in ((older, older_pending), (newest, newest_pending)) if wanted]
        return min(slot.sent_at + self.wait(slot, group_interval) for slot in pending if slot is not None)

    def on_reply(self, seq: int, source: IPAddress, now: float) -> tuple[Reply, Slot | None]:
        """A failure-detection echo reply (§2.5 "Reply handling")."""
        snxt = self.snxt
        lo = (snxt - PROBE_STATS_COUNT) % SEQ_MOD
        # not seq_before(seq, lo) and seq_before(seq, snxt), inlined
        in_window = (seq - lo) % SEQ_MOD < _HALF_SEQ and (seq - snxt) % SEQ_MOD >= _HALF_SEQ
        slot = self.history.get(seq)
        if not in_window or slot is None:
            self.ambiguous_total += 1
            return _OUT_OF_WINDOW, None
        target = slot.target
        if target is not source and target != source:
            return _FAKE, slot
        status = slot.status
        if status is _ACKED:
            return _DUPLICATE, slot
        late = status is _LOST
        if late:
            self.lost_total -= 1
        slot.status = _ACKED
        slot.acked_at = now
        self.acked_total += 1
        t = self.target(target)
        if t is not None:
            t.consecutive_lost = 0
        order = self.order
        if seq == order[-1] or (len(order) > 1 and seq == order[-2]):
            self.quiet_over = True
        # The run of losses now ends above this slot, unless a newer slot was
        # acknowledged already (then this one was not in it).
        history = self.history
        lost = 0
        for newer in reversed(order):
            if newer == seq:
                self._losses = lost
                break
            status = history[newer].status
            if status is _ACKED:
                break
            if status is _LOST:
                lost += 1
        return (_LATE if late else _ACCEPTED), slot

    def newer_ack_to(self, slot: Slot) -> bool:
        """Whether a newer probe to the same target was already acknowledged."""
        newer = self.order[self.order.index(slot.seq) + 1:]
        return any(
            self.history[s].target == slot.target and self.history[s].status is SlotStatus.ACKED
            for s in newer
        )

    # -- verdicts ---------------------------------------------------------------

    def _run(self, status: SlotStatus) -> tuple[int, Slot | None]:
        """Length of the run of ``status`` among the newest settled probes, and its oldest slot.

        Pending (UNACKED) probes are skipped.  A walk from the newest slot that
        stops at the first other status, without building a list: the failure
        check of a healthy NIC looks at one or two slots.
        """
        n = 0
        first = None
        history = self.history
        for seq in reversed(self.order):
            slot = history[seq]
            if slot.status is _UNACKED:
                continue
            if slot.status is not status:
                break
            n += 1
            first = slot
        return n, first

    def consecutive_losses(self) -> int:
        return self._losses

    def _count_losses(self) -> int:
        """The run of losses, walked: what ``_losses`` must always equal."""
        return self._run(_LOST)[0]

    def consecutive_acks(self) -> int:
        return self._run(_ACKED)[0]

    def first_loss_time(self) -> float | None:
        """When the current run of losses began: the time its oldest probe was declared lost.

        mpd_probe.c ``probe_fail_info`` gives ``pf_tff`` = ``pr_time_lost``
        (send time + CRTT), not the send time: ``failure_state`` calls a
        failure a NIC's only if another member had a reply after that
        instant.  With the send time, a reply another NIC got in the CRTT
        just before the router died counted as "after the first loss", and
        a router's death (every target gone at once) failed a NIC over
        instead of being a group failure.
        """
        first = self._run(_LOST)[1]
        return first.lost_at if first is not None else None  # ``_lose`` sets it on every LOST slot

    def last_ack_time(self) -> float | None:
        times = [s.acked_at for s in self.history.values() if s.acked_at is not None]
        return max(times) if times else None

    def in_quiet_period(self, now: float, quiet_period: float) -> bool:
        return not self.quiet_over and now - self.created_at < quiet_period

    def clear_history(self) -> None:
        """Link down or test address gone: forget the probes (§2.13)."""
        self.history.clear()
        self.order.clear()
        self._losses = 0
        for t in self.targets:
            t.consecutive_lost = 0

    def reset_rtts(self) -> None:
        for t in self.targets:
            t.reset_rtt()
