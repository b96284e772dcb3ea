"""in.mpathd's state machine under random event sequences (Hypothesis rule-based).

The simulator of ``mpathd_sim`` runs a group of two or three NICs (optionally
with a STANDBY, FAILBACK yes or no); the rules break and mend the world
(silent NIC, link, router), play if_mpadm (offline / undo offline), make
the kernel refuse an apply, and let simulated time pass.  After every step the invariants of §1 and
§2.7-2.9 must hold:

* every data address is on exactly one interface, and none is lost;
* test addresses never move;
* every phyint state change is in ``TRANSITIONS``;
* during a group failure nothing moves by itself (if_mpadm's requests,
  which move addresses whatever the group state, excepted);
* once the machine has had time to act (no change for longer than the
  quiet period + failure + repair time), its view matches the world, and
  while some member is usable no data address sits on an unusable one;
* OFFLINE is refused when it would leave the NIC's data addresses nowhere
  to go, and a granted OFFLINE leaves nothing up on the NIC.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ipmp.mpathd.codes import MPATHD_MIN_RED_ERROR, MPATHD_SUCCESS, MPATHD_SYS_ERROR
from ipmp.mpathd.machine import EINVAL
from ipmp.mpathd.phyint import TRANSITIONS, State
from ipmp.mpathd.probe import NUM_PROBE_FAILS, SlotStatus
from tests.unit.mpathd_sim import GROUP, HEALTHY, Sim, data_ip, make_group, nic_name, placement, test_ip

FDT_MS = 700
QUIET = 0.5
#: Quiet period + failure (<= FDT) + repair (10 acks <= 11.5 intervals), with room.
SETTLE = QUIET + FDT_MS / 1000.0 + 12 * FDT_MS / 7000.0 + 0.5


class MpathdMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(make_group(2))
        self.count = 2
        self.data: set[str] = set()
        self.tests: dict[str, tuple[str, int]] = {}
        self.last_change = 0.0
        self.checked_changes = 0
        self.checked_applied = 0

    @initialize(count=st.integers(2, 3), standby=st.booleans(), failback=st.booleans(),
                seed=st.integers(0, 2**16))
    def setup(self, count: int, standby: bool, failback: bool, seed: int) -> None:
        self.count = count
        cfg = make_group(count, standby=[count - 1] if standby else [])
        self.sim = Sim(cfg, fdt_ms=FDT_MS, failback=failback, quiet_period=QUIET, seed=seed,
                       net_seed=seed + 1)
        self.sim.start()
        self.data = set(placement(cfg))
        self.tests = {}
        for itf in cfg.interfaces:
            for lg in itf.logicals:
                if lg.is_test and lg.address is not None:
                    self.tests[str(lg.address.ip)] = (itf.name, lg.unit)
        self.last_change = self.sim.now

    # -- helpers --------------------------------------------------------------------------

    def _name(self, n: int) -> str:
        return nic_name(n % self.count)

    def _changed(self) -> None:
        self.last_change = self.sim.now

    def _usable(self, name: str) -> bool:
        pi = self.sim.machine.phyints[name]
        return pi.state is State.RUNNING and pi.link_up

    def _group_failed(self) -> bool:
        grp = self.sim.machine.groups.get(GROUP)
        return grp is not None and grp.failed

    def _healthy(self, name: str) -> bool:
        net = self.sim.net.nic(name)
        return net.link and net.mode == HEALTHY and not (set(self.sim.routers) <= self.sim.net.dead_targets)

    # -- rules ------------------------------------------------------------------------------

    @rule(dt=st.sampled_from([0.05, 0.2, 0.7, 1.5]))
    def advance(self, dt: float) -> None:
        self.sim.advance(dt)

    @rule()
    def settle(self) -> None:
        self.sim.advance(SETTLE)

    @rule(n=st.integers(0, 2), silent=st.booleans())
    def silence(self, n: int, silent: bool) -> None:
        self.sim.silent(self._name(n), silent)
        self._changed()

    @rule(n=st.integers(0, 2), up=st.booleans())
    def link(self, n: int, up: bool) -> None:
        self.sim.link(self._name(n), up)
        self._changed()

    @rule(down=st.booleans())
    def router(self, down: bool) -> None:
        self.sim.router_down(down)
        self._changed()

    @rule(n=st.integers(0, 2))
    def offline(self, n: int) -> None:
        name = self._name(n)
        pi = self.sim.machine.phyints[name]
        was = pi.state
        hosted = self.sim.itf(name).hosts_data
        others = [m for m in self.sim.machine.phyints if m != name and self._usable(m)]
        before = placement(self.sim.truth)
        applies = len(self.sim.applied)
        reply = self.sim.offline(name)
        self._changed()
        assert reply is not None, "AdminOffline got no reply"
        if was is State.OFFLINE:
            assert (reply.mpathd_error, reply.sys_error) == (MPATHD_SYS_ERROR, EINVAL)
            return
        if hosted and not others:
            assert reply.mpathd_error != MPATHD_SUCCESS, "OFFLINE granted with nowhere to move to"
        if reply.mpathd_error == MPATHD_SUCCESS:
            assert self.sim.state(name) is State.OFFLINE
            itf = self.sim.itf(name)
            assert itf.offline and not any(lg.up for lg in itf.logicals)
            now = placement(self.sim.truth)
            for ip, where in before.items():
                if where == name:
                    assert now[ip] in others, f"{ip} went to {now[ip]}, not a usable member"
        elif reply.mpathd_error == MPATHD_SYS_ERROR:
            # Only a refused apply may fail it; the machine then rolled back.
            assert any(not ap.ok for ap in self.sim.applied[applies:]), reply
            assert self.sim.state(name) is not State.OFFLINE
        else:
            assert reply.mpathd_error == MPATHD_MIN_RED_ERROR
            assert len(self.sim.applied) == applies
            assert self.sim.state(name) is was
            assert placement(self.sim.truth) == before

    @rule(n=st.integers(0, 2))
    def undo_offline(self, n: int) -> None:
        name = self._name(n)
        was = self.sim.state(name)
        applies = len(self.sim.applied)
        reply = self.sim.undo_offline(name)
        self._changed()
        assert reply is not None
        if was is not State.OFFLINE:
            assert (reply.mpathd_error, reply.sys_error) == (MPATHD_SYS_ERROR, EINVAL)
            return
        # Solaris replies success even when the failback fails (§2.9).
        assert reply.mpathd_error == MPATHD_SUCCESS
        if any(not ap.ok for ap in self.sim.applied[applies:]):
            return  # the kernel refused: the machine rolled back to OFFLINE
        assert self.sim.state(name) is not State.OFFLINE
        assert not self.sim.itf(name).offline

    @precondition(lambda self: self.sim.fail_executes == 0)
    @rule()
    def fail_next_apply(self) -> None:
        """The kernel refuses the next change: the machine rolls back and tries again."""
        self.sim.fail_executes = 1
        self._changed()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def data_addresses_are_each_on_exactly_one_interface(self) -> None:
        for config in (self.sim.truth, self.sim.machine.config):
            seen: dict[str, list[str]] = {}
            for itf in config.interfaces:
                for lg in itf.logicals:
                    if lg.is_data and lg.address is not None:
                        seen.setdefault(str(lg.address.ip), []).append(itf.name)
            assert set(seen) == self.data
            assert all(len(v) == 1 for v in seen.values()), seen

    @invariant()
    def test_addresses_never_move(self) -> None:
        for itf in self.sim.truth.interfaces:
            for lg in itf.logicals:
                if lg.nofailover and lg.address is not None:
                    assert self.tests[str(lg.address.ip)] == (itf.name, lg.unit)
                    assert not lg.home
        on = {str(lg.address.ip) for itf in self.sim.truth.interfaces for lg in itf.logicals
              if lg.is_test and lg.address is not None}
        assert on == set(self.tests)

    @invariant()
    def state_changes_follow_the_table(self) -> None:
        for change in self.sim.changes[self.checked_changes:]:
            assert (change.old, change.new) in TRANSITIONS, change
        self.checked_changes = len(self.sim.changes)

    @invariant()
    def nothing_moves_during_a_group_failure(self) -> None:
        for ap in self.sim.applied[self.checked_applied:]:
            # if_mpadm's requests move addresses whatever the group state (§2.9).
            if ap.ok and ap.still_failed and ap.cause not in ("AdminOffline", "AdminUndoOffline"):
                assert placement(ap.execute.config) == placement(ap.before), ap
        self.checked_applied = len(self.sim.applied)

    @invariant()
    def next_deadline_is_that_of_a_full_scan(self) -> None:
        """The wake-ups kept step by step agree with every deadline computed afresh (§2.5)."""
        m = self.sim.machine
        times = [t for t in (m.next_rescan,) if t is not None]
        times += [g.settling_until for g in m.groups.values() if g.settling_until is not None]
        for pi in m.phyints.values():
            if pi.repair_hold_until is not None:
                times.append(pi.repair_hold_until)
            if pi.state is State.OFFLINE or not pi.link_up:
                continue
            interval = m.groups[pi.group].interval
            for inst in pi.instances.values():
                if inst.next_send is not None:
                    times.append(inst.next_send)
                pending = [inst.history[q] for q in inst.order[-2:]
                           if inst.history[q].status is SlotStatus.UNACKED]
                # A pending probe whose loss would be the NUM_PROBE_FAILS-th in a row.
                if (pi.state is State.RUNNING and pending
                        and inst.consecutive_losses() + len(pending) >= NUM_PROBE_FAILS):
                    times += [slot.sent_at + inst.wait(slot, interval) for slot in pending]
        assert m.next_deadline() == (min(times) if times else None)

    @invariant()
    def settled_view_matches_the_world(self) -> None:
        if self.sim.now - self.last_change < SETTLE or self.sim.fail_executes:
            return
        for name, pi in self.sim.machine.phyints.items():
            if pi.state is State.OFFLINE:
                continue
            assert pi.link_up == self.sim.net.nic(name).link
            assert (pi.state is State.RUNNING) == self._healthy(name), (name, pi.state)
            assert self.sim.itf(name).failed == (pi.state is State.FAILED)

    @invariant()
    def settled_data_is_on_usable_members(self) -> None:
        if self.sim.now - self.last_change < SETTLE or self.sim.fail_executes or self._group_failed():
            return
        usable = {n for n in self.sim.machine.phyints if self._usable(n)}
        if not usable:
            return
        for ip, where in placement(self.sim.truth).items():
            assert where in usable, f"{ip} sits on {where}, usable: {sorted(usable)}"


# Each example simulates a minute or so of probing: shrinking a failure takes
# minutes, so it is left out; add Phase.shrink locally to minimise one.
MpathdMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
TestMpathdMachine = MpathdMachine.TestCase


def test_the_addresses_the_rules_use() -> None:
    # The rules name NICs qfe0..qfe2 and rely on the simulator's address plan.
    assert {str(data_ip(n)) for n in range(3)} == set(placement(make_group(3)))
    assert str(test_ip(2)) == "192.0.2.12"
