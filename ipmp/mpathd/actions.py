"""The machine's actions: failure and repair verdicts, failover, failback, the retry invariants.

``failure_state`` (§2.7) tells a NIC failure (fail its data addresses over)
from a group failure (all members lost their probes together: nothing to
move to); a repair fails them back (FAILBACK=yes) or holds the NIC
INACTIVE; ``_rebalance`` runs the retry invariants of every rescan.  The
address moves themselves are ``failover``'s pure functions over the
``Config``; the apply is an ``Execute`` effect.  In a group with a Solaris
11 IPMP interface its data addresses are re-bound instead (``config.binding``):
no failover, no failback, and the Clearview in.mpathd log lines.

Pure module: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ipmp.config import binding
from ipmp.model import Config, Interface
from ipmp.mpathd import failover, transitive
from ipmp.mpathd.core import Core
from ipmp.mpathd.phyint import Group, Phyint, State, of_group
from ipmp.mpathd.probe import NUM_PROBE_FAILS
from ipmp.mpathd.steps import Effect, Log

__all__ = ["Actions"]


class Actions(Core):
    """Failure, repair, failover, failback (module doc)."""

    def _failure(self, pi: Phyint, now: float, *, link_down: bool) -> None:
        """``failure_state``: nothing, a NIC failure, or a group failure (§2.7)."""
        first_loss: float | None = None
        if not link_down:
            capable = [i for i in pi.instances.values() if i.active_targets()]
            if not capable or any(i.consecutive_losses() < NUM_PROBE_FAILS for i in capable):
                return
            losses = [t for i in capable if (t := i.first_loss_time()) is not None]
            first_loss = min(losses) if losses else now
            # A transitive group blames by role, not by the others' replies (``transitive``).
            xverdict = transitive.verdict(self.config, self.settings.transitive_probing, pi,
                                          self._members(pi), self._usable, first_loss)
            if xverdict is not None:
                if xverdict is transitive.Verdict.NIC:
                    self._nic_failure(pi, now)
                elif xverdict is transitive.Verdict.GROUP:
                    self._group_failure(self._group(pi), now)
                return
        grp = self._group(pi)
        others = [m for m in self._members(pi) if m is not pi]
        capable_members = [m for m in self._members(pi) if self._probe_capable(m)]
        if not pi.group or capable_members == [pi]:
            self._nic_failure(pi, now)
            return
        alive = [m for m in others if m.state is State.RUNNING and m.link_up and not grp.failed]
        if link_down:
            nic = bool(alive)
        else:
            assert first_loss is not None
            nic = any(
                (t := i.last_ack_time()) is not None and t > first_loss
                for m in alive for i in m.instances.values()
            ) or any(not self._probe_capable(m) for m in alive)
        if nic:
            self._nic_failure(pi, now)
        else:
            self._group_failure(grp, now)

    def _nic_failure(self, pi: Phyint, now: float) -> None:
        s11 = self._ipmp(pi.group)
        # The member was active up to now, whatever its link says already.
        before = self._active(pi.group, also=pi.name) if s11 else ()
        # Clearview in.mpathd (mpd_probe.c ``phyint_inst_check_for_failure``) says "IP interface".
        what = "IP interface" if s11 else "NIC"
        self._log("err", f"{what} failure detected on {of_group(pi.name, pi.group)}")
        itf = self._itf(pi.name)
        was_inactive = itf.inactive
        self._set_state(pi, State.FAILED, now)
        for inst in pi.instances.values():
            inst.reset_rtts()
        self._put(replace(itf, failed=True, held_inactive=False))
        if s11:
            if pi.name in before:
                self._activate_another(pi)
            self._rebind(pi.group, before, (pi.name,))
            return
        if pi.group and not itf.offline and not was_inactive and itf.hosts_data:
            if self._move_away(pi.name, log=True):
                return
        self._execute((pi.name,))

    def _move_away(self, name: str, *, log: bool, emptying_standby: bool = False,
                   reply: tuple[Effect, ...] = (), reply_fail: tuple[Effect, ...] = ()) -> bool:
        """Fail the data addresses of ``name`` over; False when there is nowhere to go."""
        dest = failover.choose_destination(self.config, name, usable=self._usable,
                                           emptying_standby=emptying_standby)
        if dest is None:
            return False
        self.config = failover.fail_over(self.config, name, dest)
        success: tuple[Effect, ...] = reply
        if log:
            success = (Log("err", f"Successfully failed over from NIC {name} to NIC {dest}"), *reply)
        self._execute((name, dest), success, reply_fail)
        return True

    def _group_failure(self, grp: Group, now: float) -> None:
        """All members lost their probes together: no failover (§2.7)."""
        self._log("err", f"All Interfaces in group {grp.name} have failed")
        self._set_failed(grp, True)
        names: list[str] = []
        for m in self.phyints.values():
            if m.group != grp.name or m.state is State.OFFLINE:
                continue
            if m.state is State.RUNNING:
                self._set_state(m, State.FAILED, now)
            for inst in m.instances.values():
                inst.reset_rtts()
                inst.flush_hosts()
            self._put(replace(self._itf(m.name), failed=True))
            names.append(m.name)
        self._execute(tuple(names))

    def _repaired(self, pi: Phyint, now: float) -> None:
        s11 = self._ipmp(pi.group)
        before = self._active(pi.group) if s11 else ()
        what = "IP interface" if s11 else "NIC"  # Clearview: ``phyint_check_for_repair``
        self._log("err", f"{what} repair detected on {of_group(pi.name, pi.group)}")
        grp = self._group(pi)
        recovered: tuple[Effect, ...] = ()
        if grp.failed:
            self._set_failed(grp, False)
            grp.settling_until = now + grp.fdt_ms / 1000.0
            self._resched_all = True
            # Solaris logs this after the failback attempt of the repair.
            recovered = (Log("err", f"At least 1 interface ({pi.name}) of group {grp.name} has repaired"),)
        itf = self._itf(pi.name)
        if pi.state is not State.OFFLINE:
            self._set_state(pi, State.RUNNING, now)
        itf = replace(itf, failed=False)
        self._put(itf)
        if s11:
            self._s11_repaired(pi, itf, before, recovered)
            return
        alone = len(self._members(pi)) < 2
        if pi.state is State.OFFLINE or itf.standby or not pi.group or alone:
            self._fx.extend(recovered)
            self._execute((pi.name,))
            self._rebalance(now)
            return
        if self.settings.failback:
            # try_failback: a failback is tried from every other member, and
            # "Successfully failed back" is logged even when nothing had to
            # move (the NIC still had FAILED set when it was tried, §2.8).
            self._fail_back(pi.name, log=True, reply=recovered)
            return
        if not itf.hosts_data:
            # FAILBACK=no: the repaired NIC is held INACTIVE, a de-facto standby (§2.8).
            self._put(replace(itf, held_inactive=True))
        self._fx.extend(recovered)
        self._execute((pi.name,))
        self._rebalance(now)

    def _fail_back(self, name: str, *, log: bool, reply: tuple[Effect, ...] = (),
                   extra: Callable[[Config], Config] | None = None) -> None:
        group = self._itf(name).group
        if self._ipmp(group):
            # Solaris 11 (if_mpadm -r): no failback, the member is activated.
            before = self._active(group)
            if extra is not None:
                self.config = extra(self.config)
            self._rebind(group, before, (name,), reply, reply)
            return
        names = {name} | {i.name for i in self.config.interfaces
                          if any(lg.home == name for lg in i.logicals)}
        self.config = failover.fail_back(self.config, name)
        if extra is not None:
            self.config = extra(self.config)
        success: tuple[Effect, ...] = reply
        if log:
            success = (Log("err", f"Successfully failed back to NIC {name}"), *reply)
        self._execute(tuple(sorted(names)), success, reply)

    def _retry(self, now: float, skip: list[Phyint] | None = None) -> None:
        """Judge again a link-down failure whose apply the kernel refused."""
        for pi in list(self.phyints.values()):
            if pi.state is State.RUNNING and not pi.link_up and pi not in (skip or ()):
                self._failure(pi, now, link_down=True)

    def _still_failing(self, pi: Phyint, now: float) -> bool:
        """Invariant 2's failure test: link down, or every probing instance still losing."""
        if not pi.link_up:
            return True
        grp = self._group(pi)
        if grp.settling_until is not None and now < grp.settling_until:
            return False  # the group has just recovered: give it the FDT to come back
        capable = [i for i in pi.instances.values() if i.active_targets()]
        return bool(capable) and all(i.consecutive_losses() >= NUM_PROBE_FAILS for i in capable)

    def _rebalance(self, now: float) -> None:
        """The retry invariants of every rescan (§2.7), while no group has failed.

        1. a FAILED or OFFLINE member that still hosts data addresses fails them over,
           and a STANDBY member holding its own data addresses gives them to an active one;
        2. (failback below covers a standby hosting addresses whose home is usable again);
        3. a RUNNING member whose addresses are elsewhere takes them back (FAILBACK=yes).
        """
        if self.executing:
            return
        for group in sorted({pi.group for pi in self.phyints.values() if self._ipmp(pi.group)}):
            # Solaris 11: addresses on members that are not active, or not bound yet,
            # and a member new to the group (an active one holding nothing while
            # others hold some) takes its share (``ipmp_ill_activate``); in the
            # kernel's balance such a member can take nothing, so this is safe.
            active = self._active(group)
            held = binding.holding(self.config, group)
            before = tuple(n for n in active if n in held) or active
            if self._rebind(group, before, active, always=False):
                return
        for pi in list(self.phyints.values()):
            if not pi.group or self._group(pi).failed or self._ipmp(pi.group):
                continue
            itf = self._itf(pi.name)
            if itf.hosts_data and (pi.state is State.OFFLINE
                                   or (pi.state is State.FAILED and self._still_failing(pi, now))):
                if self._move_away(pi.name, log=pi.state is State.FAILED):
                    return
            if pi.state is State.RUNNING and failover.standby_to_empty(self.config, pi.name):
                # A standby that holds its own data addresses gives them to an
                # active member (Solaris kernel INACTIVE rule, invariant 1).
                if self._move_away(pi.name, log=False, emptying_standby=True):
                    return
            if (pi.state is State.RUNNING and pi.link_up and not itf.standby and self.settings.failback
                    and failover.addresses_elsewhere(self.config, pi.name)):
                self._fail_back(pi.name, log=False)
                return
        # Re-assert the FAILED flag where something else cleared it, and clear it
        # where it is left over on a running NIC (§2.7, end).
        for pi in self.phyints.values():
            itf = self._itf(pi.name)
            want = pi.state is State.FAILED
            if itf.failed != want:
                self._put(replace(itf, failed=want))
                self._execute((pi.name,))
                return

    # -- Solaris 11: the IPMP interface's data addresses (``binding``) ----------------------

    def _ipmp(self, group: str) -> bool:
        """Whether ``group`` has an IPMP interface: its addresses follow ``binding``, not failover."""
        return bool(group) and self.config.ipmp_interface(group) is not None

    def _active(self, group: str, also: str = "") -> tuple[str, ...]:
        usable = self._usable if not also else (lambda n: n == also or self._usable(n))
        return binding.active_members(self.config, group, usable)

    def _activate_another(self, pi: Phyint) -> None:
        """An active member failed: a member held INACTIVE takes its place (``binding.activate_another``)."""
        name = binding.activate_another(self.config, pi.group, pi.name, self._usable)
        if name is not None:
            self._put(replace(self._itf(name), held_inactive=False))

    def _rebind(self, group: str, before: tuple[str, ...], names: tuple[str, ...],
                success: tuple[Effect, ...] = (), failure: tuple[Effect, ...] = (), *,
                always: bool = True) -> bool:
        """Re-bind ``group``'s data addresses to its active members and apply it.

        Clearview in.mpathd logs no "Successfully failed over/back": the
        kernel re-binds by itself when a member's flags change.  Applied
        with ``names`` even when nothing moved (a flag changed) unless not
        ``always``; False when there was nothing to apply.
        """
        old = self.config
        self.config = binding.rebind(old, group, before, self._active(group))
        moved = binding.changed_members(old, self.config)
        if not moved and not always:
            return False
        self._execute(tuple(sorted(set(names) | moved)), success, failure)
        return True

    def _s11_repaired(self, pi: Phyint, itf: Interface, before: tuple[str, ...],
                      recovered: tuple[Effect, ...]) -> None:
        """A repaired member of a group with an IPMP interface (mpd_probe.c ``phyint_transition_to_running``).

        With FAILBACK=no a non-STANDBY member comes back INACTIVE, unless no
        member is active (case 3, "unless the group was failed"); a STANDBY
        one is active only while the group is below capacity
        (``binding.active_members``); otherwise it is activated and takes its
        share of the addresses.  An offline member stays out until if_mpadm -r.
        """
        hold = (pi.state is not State.OFFLINE and not itf.standby and not self.settings.failback
                and bool(before))
        self._put(replace(itf, held_inactive=hold))
        self._fx.extend(recovered)
        self._rebind(pi.group, before, (pi.name,))

    def _offline_rebind(self, pi: Phyint) -> tuple[str, ...] | None:
        """if_mpadm -d of a member of a group with an IPMP interface: its addresses re-bound.

        The kernel deactivates an OFFLINE member (``ipmp_ill_is_active``).
        Returns the other members that changed, () outside such a group, or
        None when the member holds addresses no other member can take: the
        offline is refused (EMINRED), as a Solaris 10 one with no failover
        destination is.
        """
        if not self._ipmp(pi.group):
            return ()
        old = self.config
        before = self._active(pi.group)
        if pi.name in before:
            self._activate_another(pi)  # as for a failure (in.mpathd ``phyint_offline``)
        after = binding.active_members(self.config, pi.group, lambda n: n != pi.name and self._usable(n))
        new = binding.rebind(self.config, pi.group, before, after)
        held = new.get(pi.name)
        if held is None or any(binding.is_ipmp_data(lg) for lg in held.logicals):
            self.config = old
            return None
        self.config = new
        return tuple(sorted(binding.changed_members(old, new) - {pi.name}))
