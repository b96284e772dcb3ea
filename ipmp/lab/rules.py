"""The drill's model of the daemon: what each step must, and must not, produce.

What a step should do is worked out before it runs, from the boot files and
the daemon's state as its own messages reported it, with the rules of
reference solaris-ipmp.md (§2.7 failure and repair, §2.8 destinations and
FAILBACK, §2.9 offline, §2.12 the messages, §5 if_mpadm).  A group with a
Solaris 11 IPMP interface has no failover and no failback: its data
addresses are re-bound (:mod:`ipmp.lab.rebind`, illumos ``ipmp.c``) and
in.mpathd says "IP interface" where Solaris 10's says "NIC" (Clearview
``mpd_probe.c``).

Pure: the addresses' whereabouts come in as a function, the messages as
text; nothing here reads the clock, the kernel or a file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ipmp.lab.rebind import active, expect_rebind, group_addresses

if TYPE_CHECKING:
    # Types only: the plan module evaluates boot files through the product,
    # which this pure module must not load.
    from ipmp.lab.plan import NetworkPlan, NicPlan

__all__ = ["MSG_MIN_RED", "Expect", "NicState", "Rules", "World", "bare"]

#: if_mpadm's Solaris texts (reference §5).
MSG_MIN_RED = (
    "Offline failed as there is no other functional interface available in the multipathing group "
    "for failing over the network access."
)


@dataclass
class NicState:
    plan: NicPlan
    state: str = "ok"  # the daemon's view: ok, failed, offline
    link_up: bool = True  # as the daemon knows it (from its link messages)
    link_ok: bool = True  # the wire, as the drill set it
    silent_ok: bool = True
    #: Solaris 11, FAILBACK=no: repaired but held INACTIVE (in.mpathd ``phyint_transition_to_running``).
    held: bool = False


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
        return self.members_of(self.nics[nic].plan.group)

    def members_of(self, group: str) -> list[NicState]:
        return [s for s in self.nics.values() if group and s.plan.group == group]

    def s11(self, group: str) -> bool:
        """Whether ``group`` has a Solaris 11 IPMP interface: re-binding, not failover."""
        return self.plan.ipmp_interface(group) is not None

    def probed(self, s: NicState) -> bool:
        """Probes watch ``s``: a test address, or transitive probing."""
        return self.plan.probed(s.plan)

    def ipmp_addresses(self) -> list[str]:
        """Every data address of an IPMP interface (bare); they have no home NIC."""
        return [a for i in self.plan.ipmp for a in group_addresses(self, i.group)]

    def usable(self, s: NicState) -> bool:
        return s.state == "ok" and s.link_up

    def tracked(self, nic: str) -> bool:
        return bool(self.nics[nic].plan.group) or self.plan.track_all

    def homes(self) -> dict[str, str]:
        """Data address (bare) -> the NIC whose files configure it."""
        return {bare(a): n.name for n in self.plan.nics for a in n.data_addresses}

    # -- learning from what happened
    def on_message(self, text: str) -> None:
        if m := re.fullmatch(r"(?:NIC|IP interface) failure detected on (\S+)( of group \S+)?", text):
            if m[1] in self.nics and self.nics[m[1]].state != "offline":
                self.nics[m[1]].state = "failed"
        elif m := re.fullmatch(r"(?:NIC|IP interface) repair detected on (\S+)( of group \S+)?", text):
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


def bare(address: str) -> str:
    return str(ipaddress.ip_interface(address).ip)


def _group_of(s: NicState) -> str:
    return f" of group {s.plan.group}" if s.plan.group else ""


def _what(world: World, s: NicState) -> str:
    """Clearview in.mpathd (``mpd_probe.c``) says "IP interface" in a group with an IPMP interface."""
    return "IP interface" if world.s11(s.plan.group) else "NIC"


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
    #: Solaris 11: (active members, IP version, their sorted address counts) after the step.
    spread: list[tuple[tuple[str, ...], int, list[int]]] = field(default_factory=list)
    #: Solaris 11: addresses that may be re-bound (the move time is taken over them).
    watch: set[str] = field(default_factory=set)


def _lit(text: str) -> str:
    return re.escape(text)


class Rules:
    """Expectations of each kind of step, given the world before it."""

    def __init__(self, world: World, where: Callable[[str], set[str]], fdt: float) -> None:
        self.world = world
        self.where = where
        self.fdt = fdt

    def placement_now(self) -> dict[str, set[str]]:
        return {a: self.where(a) for a in [*self.world.homes(), *self.world.ipmp_addresses()]}

    def _hosted(self, nic: str) -> list[str]:
        return [a for a in [*self.world.homes(), *self.world.ipmp_addresses()] if nic in self.where(a)]

    def _failover(self, e: Expect, nic: str, candidates: list[str], *, message: bool = True) -> None:
        """Data addresses on ``nic`` go to one of ``candidates`` (reference §2.8).

        Solaris 11: re-bound to the active members instead, with no message.
        """
        group = self.world.nics[nic].plan.group
        if self.world.s11(group):
            expect_rebind(self.world, self.where, group, e, gone={nic})
            return
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
        group = self.world.nics[nic].plan.group
        if self.world.s11(group):
            # Activated, not failed back: it takes its share (``ipmp_ill_activate``).
            self.world.nics[nic].held = False
            expect_rebind(self.world, self.where, group, e, back={nic})
            return
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
        capable = [m for m in members if w.probed(m) and m.state != "offline"]
        if not s.plan.group or capable == [s]:
            nic_failure = True
        elif link:
            nic_failure = bool(others)
        else:
            # A NIC failure needs another member whose probes are still
            # answered (§2.7 rule 4); otherwise the whole group failed.
            nic_failure = any(w.probed(m) for m in others)
        if nic_failure:
            e.detect = rf"{_what(w, s)} failure detected on {_lit(nic)}{_lit(_group_of(s))}"
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
        e.detect = rf"{_what(w, s)} repair detected on {_lit(nic)}{_lit(_group_of(s))}"
        e.messages.append(e.detect)
        if s.plan.group and w.group_failed.get(s.plan.group):
            group = _lit(s.plan.group)
            e.messages.append(rf"At least 1 interface \({_lit(nic)}\) of group {group} has repaired")
        if w.s11(s.plan.group):
            # FAILBACK=no: a non-STANDBY member comes back INACTIVE unless none
            # is active (in.mpathd ``phyint_transition_to_running``); else it is activated.
            s.held = (not w.plan.failback and not s.plan.standby
                      and bool(active(w, s.plan.group, self.where, gone={nic})))
            expect_rebind(w, self.where, s.plan.group, e, back={nic})
            return e
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
        if w.s11(s.plan.group):
            # Refused when its addresses could go nowhere (EMINRED, as in.mpathd's offline).
            candidates = active(w, s.plan.group, self.where, gone={nic})
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
        s.held = False
        if s.link_up:
            self._failback(e, nic)
        return e

    def router_down(self) -> Expect:
        """Every probe fails at once: a group failure, never a failover (§2.7)."""
        w = self.world
        e = Expect(placement=self.placement_now())
        for group in w.plan.groups:
            members = [s for s in w.nics.values() if s.plan.group == group]
            capable = [s for s in members if w.probed(s) and w.usable(s)]
            if not capable:
                continue
            probing = [s for s in members if w.probed(s) and s.state != "offline"]
            if any("link-local" in s.plan.test_addresses for s in capable):
                # IPv6 probes go to what ff02::1 discovery found, the peer
                # among them (the lab's router sends no advertisements): the
                # router's outage fails no IPv6 instance, and a NIC fails only
                # when every probing instance does (§2.6, §2.7).
                continue
            if len(capable) == 1 and len(probing) == 1:
                s = capable[0]
                e.messages.append(
                    rf"{_what(w, s)} failure detected on {_lit(s.plan.name)} of group {_lit(group)}")
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
                      if s.plan.group == group and s.state == "failed" and w.probed(s)
                      and s.link_up and s.link_ok and s.silent_ok]
            for s in failed:
                e.messages.append(
                    rf"{_what(w, s)} repair detected on {_lit(s.plan.name)} of group {_lit(group)}")
                if w.plan.failback and not s.plan.standby and not w.s11(group):
                    self._failback(e, s.plan.name)
            if failed and w.s11(group):
                expect_rebind(w, self.where, group, e, back={s.plan.name for s in failed})
            if failed and w.group_failed.get(group):
                e.messages.append(rf"At least 1 interface \(\S+\) of group {_lit(group)} has repaired")
            if failed and e.detect is None:
                e.detect = rf"(?:NIC|IP interface) repair detected on \S+ of group {_lit(group)}"
        return e
