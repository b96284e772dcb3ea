"""in.mpathd's brain: a pure state machine (events in, effects out).

The runtime turns netlink messages, probe replies, admin requests and timers
into ``Event`` values and feeds them to ``Machine.step``; the machine returns
``Effect`` values (send a probe, apply a configuration, log, reply, tell a
state change) and says by ``next_deadline`` when it next needs a ``Tick``.
It never reads the clock or touches a socket, so tests drive it with
explicit times.  The event and effect types are in ``steps.py``; queries
get a typed ``snapshot.Snapshot``.

Glossary (the Solaris words): a *phyint* is a tracked NIC; an *instance* is
its IPv4 or IPv6 probing state (``probe.Instance``); a NIC is *probe-capable*
when an instance has a test address and targets; the *anonymous group* holds
group-less NICs when TRACK_INTERFACES_ONLY_WITH_GROUPS=no.

The machine is one class built in layers, one job per module:

``phyint``     the records (phyint, group, states, transitions, constants)
``core``       the state and its chokepoints: ``_set_state`` (every phyint
               state change, checked against ``TRANSITIONS`` and a no-op when
               unchanged, as ``phyint_chstate``), ``_set_failed``, ``_execute``
               and its rollback, the wake-ups
``actions``    failure and repair verdicts, failover, failback, the retry invariants
``detection``  link state and probe verdicts
``tracking``   the kernel read: tracked NICs, test addresses, targets
``machine``    the step, admin requests (if_mpadm), queries, state-change reports

Pure module: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import replace

from ipmp.model import Config, Logical
from ipmp.mpathd import failover, hwaddr, transitive
from ipmp.mpathd.codes import IPMP_EHWADDRDUP, MPATHD_MIN_RED_ERROR, MPATHD_SYS_ERROR
from ipmp.mpathd.phyint import Phyint, State
from ipmp.mpathd.probe import NUM_PROBE_FAILS
from ipmp.mpathd.snapshot import AddressState, GroupState, InterfaceState, ProbeState, Snapshot
from ipmp.mpathd.steps import (
    AdminOffline,
    AdminUndoOffline,
    CloseProbe,
    Effect,
    Event,
    Executed,
    LinkChanged,
    Log,
    MemberState,
    ProbeReplied,
    ReplyTo,
    Reported,
    Resync,
    StateChanged,
    Tick,
)
from ipmp.mpathd.tracking import Tracking

__all__ = ["EINVAL", "Machine"]


#: errno of a refused admin request, as in.mpathd sets ``sys_error`` (the
#: libipmp numbers for replies are ``codes``'s).
EINVAL = 22


class Machine(Tracking):
    """The daemon's state and its one ``step`` function."""

    #: What was reported last (``_chstate``): a new machine reports nothing.
    _reported: Reported = Reported()
    #: Solaris 11: (group, member) for each group with an IPMP interface whose
    #: broadcast and multicast one member receives (``_nominate``).
    _casts: tuple[tuple[str, str], ...] = ()

    # -- the API --------------------------------------------------------------------

    def step(self, event: Event) -> list[Effect]:
        fx = self._fx = []
        self._step_config = self.config
        if self._undo_states:
            self._undo_states = {}  # a new one: a pending rollback may hold the old
        if self._undo_groups:
            self._undo_groups = {}
        # The two events of every probe first; the others may change anything,
        # so every wake-up is computed again after them (``_reschedule``).
        if isinstance(event, ProbeReplied):
            if self._reply(event):
                self._touched.add(event.ifname)
        elif isinstance(event, Tick):
            self._tick(event.now)
        else:
            self._resched_all = True
            self._changed = True
            match event:
                case Resync():
                    self._resync(event)
                case LinkChanged():
                    self._link(event)
                case AdminOffline():
                    self._offline(event)
                case AdminUndoOffline():
                    self._undo_offline(event)
                case Executed():
                    self.executing = False
                    if event.ok:
                        if transitive.anywhere(self.config, self.settings.transitive_probing):
                            # Data addresses moved: who probes with ICMP and who
                            # transitively changes with them (``transitive``).
                            # Only those groups: the others' test addresses did not move.
                            enabled = self.settings.transitive_probing
                            xgroups = {g for g in {pi.group for pi in self.phyints.values()}
                                       if transitive.transitive_group(self.config, g, enabled)}
                            for pi in [p for p in self.phyints.values() if p.group in xgroups]:
                                self._select_tests(pi, self._itf(pi.name), event.now)
                        # One move at a time: what else the invariants want comes now.
                        self._rebalance(event.now)
                    else:
                        self._log("err", f"failed to apply the new configuration: {event.error}")
                        self._roll_back()
        # Before ``_reschedule``, which forgets the phyints this step touched.
        if self._changed or self.config is not self._step_config or self._verdicts_moved():
            self.generation += 1
            if self._changed:
                self._changed = False
                self._failing = {name: self._losing(pi) for name, pi in self.phyints.items()}
            self._nominate()
            self._chstate()
        self._reschedule()
        return fx

    def snapshot(self) -> Snapshot:
        """The daemon's view for queries (``ipmpstat``, ``if_mpadm``, the streams' start).

        Group state follows Solaris 11's ipmpstat: ``ok`` when every member is
        usable, ``failed`` when none is, ``degraded`` in between.  ``probe`` is
        ``ok``/``failed`` while probing, ``unknown`` without targets and
        ``disabled`` without a test address; ``active`` means the interface
        carries data addresses now.  ``snapshot.to_wire`` makes its JSON.
        """
        members = self._by_group()
        casts = dict(self._casts)

        def ipmp_name(group: str) -> str:
            ipmpif = self.config.ipmp_interface(group)
            return ipmpif.name if ipmpif is not None else ""

        groups = {name: GroupState(name, self._group_state(name, members[name]), grp.fdt_ms,
                                   tuple(sorted(p.name for p in members[name])),
                                   interface=ipmp_name(name), cast=casts.get(name, ""))
                  for name, grp in self.groups.items() if members.get(name)}
        interfaces: dict[str, InterfaceState] = {}
        addresses: list[AddressState] = []
        for name, pi in sorted(self.phyints.items()):
            itf = self._itf(name)
            interfaces[name] = InterfaceState(
                name=name, group=pi.group, state=self.reported_state(name),
                type="standby" if itf.standby else "normal", link="up" if pi.link_up else "down",
                probe=self._probe_state(pi), active=itf.hosts_data, standby=itf.standby,
                inactive=itf.inactive, failed=itf.failed, offline=itf.offline, hwaddrdup=pi.hwaddrdup,
                probes={f.word: transitive.probe_state(self.config, i, ProbeState(
                                    test_address=str(i.test_address),
                                    targets=tuple(str(t.address) for t in i.active_targets()),
                                    mode="routes" if i.uses_routers else "multicast",
                                    crtt_ms={str(t.address): t.crtt_ms for t in i.active_targets()}))
                        for f, i in pi.instances.items()},
            )
            for lg in itf.logicals:
                if not lg.is_data or lg.kernel_owned or lg.address is None:
                    continue
                # A Solaris 11 data address belongs to the IPMP interface: its logical there.
                home = (lg.home or name) if lg.ipmp_unit is None else Logical(lg.family, lg.ipmp_unit).name(
                    ipmp_name(pi.group) or pi.group)
                addresses.append(AddressState(address=str(lg.address), family=lg.family.word,
                                              interface=lg.name(name), home=home,
                                              group=pi.group, up=lg.up))
        for record in self.config.interfaces:
            # Solaris 11: data addresses no member holds yet are the IPMP
            # interface's own, bound nowhere (``ipmpstat -a`` INBOUND empty).
            for lg in record.logicals if record.ipmp and record.group in self.groups else ():
                if lg.is_data and not lg.kernel_owned and lg.address is not None:
                    addresses.append(AddressState(
                        address=str(lg.address), family=lg.family.word, interface="",
                        home=Logical(lg.family, lg.unit if lg.ipmp_unit is None else lg.ipmp_unit
                                     ).name(record.name),
                        group=record.group, up=lg.up))
        return Snapshot(fdt_ms=self.settings.failure_detection_time_ms, failback=self.settings.failback,
                        groups=groups, interfaces=interfaces, addresses=tuple(addresses))

    # -- reported states -------------------------------------------------------------------

    def _nominate(self) -> None:
        """Solaris 11: who receives each IPMP group's broadcast and multicast (``ipmpstat -i`` m/b/M).

        illumos ``ipmp.c``: ``ipmp_ill_activate`` nominates the first member
        to become active (``ipmp_illgrp_set_cast``), and ``ipmp_ill_deactivate``
        nominates the head of the active list only when the nominee stops
        being active; a repaired former nominee does not take it back.
        [INF] The head of the kernel's list is its longest-active member;
        the daemon keeps no activation order (``binding``), so the first
        active member in group order stands for it.
        """
        casts = dict(self._casts)
        chosen: dict[str, str] = {}
        for group in self.groups:
            if not self._ipmp(group):
                continue
            actif = self._active(group)
            cast = casts.get(group, "")
            if cast not in actif:
                cast = actif[0] if actif else ""
            if cast:
                chosen[group] = cast
        self._casts = tuple(sorted(chosen.items()))

    def _by_group(self) -> dict[str, list[Phyint]]:
        members: dict[str, list[Phyint]] = {}
        for pi in self.phyints.values():
            members.setdefault(pi.group, []).append(pi)
        return members

    def _group_state(self, name: str, members: list[Phyint]) -> str:
        """``ok``, ``degraded`` or ``failed`` (``snapshot``)."""
        usable = [p for p in members if p.state is State.RUNNING and p.link_up]
        if self.groups[name].failed or not usable:
            return "failed"
        return "degraded" if len(usable) < len(members) else "ok"

    def _probe_state(self, pi: Phyint) -> str:
        if not pi.instances:
            return "disabled"
        if not self._probe_capable(pi):
            return "unknown"
        if any(i.consecutive_losses() >= NUM_PROBE_FAILS for i in pi.instances.values()):
            return "failed"
        return "ok"

    def _chstate(self) -> None:
        """Report what the step changed of the reported states (``StateChanged``).

        Called at the end of every step that may have changed them (the
        ``generation`` moved): every way a state moves ends here, as every
        phyint state change ends in ``phyint_chstate``.  The effect goes
        first in the step's list, so that a runtime that holds the step's
        effects until its apply is over holds it with them.
        """
        members = self._by_group()
        reported = Reported(
            groups={name: self._group_state(name, members[name])
                    for name in self.groups if name and members.get(name)},
            members={name: MemberState(group=pi.group, state=self.reported_state(name),
                                       type="standby" if (itf := self._itf(name)).standby else "normal",
                                       link="up" if pi.link_up else "down", probe=self._probe_state(pi),
                                       active=itf.hosts_data)
                     for name, pi in sorted(self.phyints.items())},
        )
        if reported != self._reported:
            self._fx.insert(0, StateChanged(self._reported, reported))
            self._reported = reported

    # -- if_mpadm ------------------------------------------------------------------------

    def _offline(self, ev: AdminOffline) -> None:
        pi = self.phyints.get(ev.ifname)
        if pi is None or pi.state is State.OFFLINE:
            self._fx.append(ReplyTo(ev.request_id, MPATHD_SYS_ERROR, EINVAL))
            return
        grp = self._group(pi)
        if not pi.group:
            usable = 0
        elif grp.failed:
            usable = sum(1 for m in self._members(pi) if m.state is not State.OFFLINE)
        else:
            usable = sum(1 for m in self._members(pi) if m.state is State.RUNNING)
        if usable < ev.min_redundancy:
            self._fx.append(ReplyTo(ev.request_id, MPATHD_MIN_RED_ERROR))
            return
        itf = self._itf(pi.name)
        rebound = self._offline_rebind(pi)  # Solaris 11: its addresses re-bound (``binding``)
        if rebound is None:
            self._fx.append(ReplyTo(ev.request_id, MPATHD_MIN_RED_ERROR))
            return
        if itf.hosts_data and not rebound:
            dest = failover.choose_destination(self.config, pi.name, usable=self._usable)
            if dest is None:
                self._fx.append(ReplyTo(ev.request_id, MPATHD_MIN_RED_ERROR))
                return
            self.config = failover.fail_over(self.config, pi.name, dest)
            names: tuple[str, ...] = (pi.name, dest)
            done = f"Successfully failed over from NIC {pi.name} to NIC {dest}"
            logs: tuple[Effect, ...] = (Log("err", done),)
        else:
            names, logs = (pi.name, *rebound), ()
        # if_mpadm -d downs every logical of the NIC, test addresses too (§5);
        # here it is part of the same apply, so it is all or nothing.  The
        # kernel's IPv6 link-local stays in the kernel; only its UP flag (in
        # the store) goes, so it is no test address until if_mpadm -r.
        itf = self._itf(pi.name)
        self._put(replace(itf, offline=True, held_inactive=False,
                          logicals=tuple(replace(lg, up=False) for lg in itf.logicals)))
        self._set_state(pi, State.OFFLINE, ev.now)
        for family in list(pi.instances):
            self._fx.append(CloseProbe(pi.name, family))
        pi.instances.clear()
        ok = ReplyTo(ev.request_id)
        fail = ReplyTo(ev.request_id, MPATHD_SYS_ERROR, 5)  # EIO: the apply failed
        self._execute(names, (*logs, ok), (fail,))
        # A member offlined as its duplicate comes back (illumos ``phyint_offline``).
        self._hwaddr_sweep([], ev.now)

    def _undo_offline(self, ev: AdminUndoOffline) -> None:
        pi = self.phyints.get(ev.ifname)
        if pi is None or pi.state is not State.OFFLINE:
            self._fx.append(ReplyTo(ev.request_id, MPATHD_SYS_ERROR, EINVAL))
            return
        if hwaddr.applies(self.config, pi.group) and hwaddr.lookup_hwaddr(
                pi, list(self.phyints.values()), online_only=True) is not None:
            # illumos ``phyint_undo_offline``: refused while an online member
            # has its address, and from now on it comes back by itself.
            pi.hwaddrdup = True
            self._fx.append(ReplyTo(ev.request_id, IPMP_EHWADDRDUP))
            return
        if pi.hwaddrdup:
            pi.hwaddrdup = False
            self._log("err", hwaddr.ONLINING.format(name=pi.name, group=pi.group))
        self._set_state(pi, State.RUNNING if pi.link_up else State.FAILED, ev.now)

        def reattach(config: Config) -> Config:
            itf = config.get(pi.name)
            assert itf is not None
            # if_mpadm -r brings up the test addresses only (§5).
            logicals = tuple(replace(lg, up=True) if lg.nofailover and lg.address is not None else lg
                             for lg in itf.logicals)
            return config.with_interface(replace(itf, offline=False, failed=not pi.link_up,
                                                 logicals=logicals))

        ok = ReplyTo(ev.request_id)
        if pi.link_up:
            # -r always fails back, whatever FAILBACK says (§2.9).
            self._fail_back(pi.name, log=True, reply=(ok,), extra=reattach)
        else:
            self.config = reattach(self.config)
            self._execute((pi.name,), (ok,), (ok,))
        itf = self._itf(pi.name)
        self._select_tests(pi, itf, ev.now)
