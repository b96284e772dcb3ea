"""Tracking: which NICs the daemon follows, their test addresses and probe targets (§2.2-§2.6).

Every kernel read (``Resync``) adopts the NICs that appeared (from the
flags in the state store, for restart safety), forgets the ones gone,
selects each NIC's test addresses (one probing instance per family) and
their targets: the routers in the test subnet, or the point-to-point
destination; host targets come later, from multicast discovery.

Pure module: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import replace

from ipmp.model import Family, Interface, IPAddress, Logical
from ipmp.mpathd import hwaddr, transitive
from ipmp.mpathd.detection import Detection
from ipmp.mpathd.phyint import Phyint, State
from ipmp.mpathd.probe import Instance, first_seq
from ipmp.mpathd.steps import Announce, CloseProbe, Log, OpenProbe, Resync

__all__ = ["Tracking"]


class Tracking(Detection):
    """The kernel read, test addresses, targets (module doc)."""

    def _tracked(self, itf: Interface) -> bool:
        if itf.loopback or not itf.multicast or not itf.plumbed:
            return False
        return bool(itf.group) or not self.settings.track_interfaces_only_with_groups

    def _resync(self, ev: Resync) -> None:
        now = ev.now
        self.config = ev.config
        self.routers = ev.routers
        self.routers6 = ev.routers6
        first = not self.started
        self.started = True
        self.next_rescan = now + self.timing.scan_interval
        seen: set[str] = set()
        adopted_down: list[Phyint] = []
        adopted: list[Phyint] = []
        for itf in ev.config.nics:  # an IPMP interface is no phyint: nothing to probe
            if not self._tracked(itf):
                continue
            seen.add(itf.name)
            pi = self.phyints.get(itf.name)
            was_dup = False
            if pi is not None and pi.group != itf.group:
                was_dup = pi.hwaddrdup
                self._forget(pi)  # a group change re-creates the phyint (§2.2)
                pi = None
            if pi is None:
                pi = self._adopt(itf, now)
                # The OFFLINE the store kept was ours, not the admin's.
                pi.hwaddrdup = was_dup and pi.state is State.OFFLINE
                adopted.append(pi)
                if not (itf.link_up and itf.running):
                    adopted_down.append(pi)
            else:
                self._hwaddr_changed(pi, itf.mac, now)
            self._select_tests(pi, itf, now)
        # Links found down are judged once every member is known, so that a
        # dead first NIC is not taken for a dead group (§2.2: the real link
        # state is applied after the phyint is created as RUNNING).
        # A NIC gone from the kernel (unplugged) is forgotten before the group
        # is judged: the checks below read every member's record.
        for name in [n for n in self.phyints if n not in seen]:
            self._forget(self.phyints[name])
            self._log("info", f"inet {name} has been removed from kernel")
        for pi in adopted_down:
            self._link_down(pi, now)
        self._check_homogeneous()
        self._retry(now, skip=adopted_down)
        self._hwaddr_sweep(adopted, now)
        if first:
            # Peers may hold stale caches from before a restart: announce every
            # data address the daemon manages (linux-mapping.md, "Without GARP").
            for pi in self.phyints.values():
                addrs = tuple(lg.address.ip for lg in self._itf(pi.name).logicals
                              if lg.is_data and lg.up and not lg.kernel_owned and lg.address is not None)
                if addrs:
                    self._fx.append(Announce(pi.name, addrs))
        self._rebalance(now)

    def _adopt(self, itf: Interface, now: float) -> Phyint:
        """A NIC appears: start from the flags in the store (restart safety)."""
        state = State.OFFLINE if itf.offline else State.FAILED if itf.failed else State.RUNNING
        pi = Phyint(itf.name, itf.group, state, link_up=True, since=now, appeared=now,
                    hwaddr=hwaddr.normalize(itf.mac))
        self.phyints[itf.name] = pi
        self._group(pi)
        if itf.group and self._group(pi).failed and state is State.RUNNING:
            # A NIC joining a failed group is failed at once (§2.2).
            self._set_state(pi, State.FAILED, now)
            self._put(replace(itf, failed=True))
            self._execute((itf.name,))
        return pi

    # -- duplicate hardware addresses (Solaris 11, ``hwaddr``) -------------------------

    def _hwaddr_changed(self, pi: Phyint, mac: str | None, now: float) -> None:
        """``phyint_link_notify``: the link's address changed; a new duplicate goes offline itself.

        Linux says nothing of a new MAC on its own (a link message with the
        same flags): the change is seen at the next rescan (IF_SCAN_INTERVAL).
        """
        new = hwaddr.normalize(mac)
        if new == pi.hwaddr:
            return
        pi.hwaddr = new
        self._changed = True
        members = list(self.phyints.values())
        if hwaddr.applies(self.config, pi.group) and hwaddr.offline_on_change(pi, members):
            self._hwaddr_offline(pi, now)

    def _hwaddr_sweep(self, adopted: list[Phyint], now: float) -> None:
        """The joins and leaves of a rescan, an admin's offline: who goes offline, who comes back.

        ``self.phyints`` keeps the order the NICs joined in (a group change
        re-creates the phyint at the end): the first one stays.
        """
        groups: dict[str, list[Phyint]] = {}
        for pi in self.phyints.values():
            groups.setdefault(pi.group, []).append(pi)
        for group, members in groups.items():
            rule = hwaddr.applies(self.config, group)
            if rule:
                for pi in adopted:
                    # Adopted OFFLINE from the store with an online twin: as
                    # illumos at start-up, the offline is the duplicate's.
                    if (pi.group == group and pi.state is State.OFFLINE and not pi.hwaddrdup
                            and hwaddr.lookup_hwaddr(pi, members, online_only=True) is not None):
                        self._hwaddr_offline(pi, now)
                for pi in hwaddr.to_offline(members):
                    self._hwaddr_offline(pi, now)
            for pi in hwaddr.to_bring_back(members, rule=rule):
                self._hwaddr_online(pi, now)

    def _hwaddr_offline(self, pi: Phyint, now: float) -> None:
        """``phyint_offline(pi, 0)`` of a duplicate: no redundancy asked, probes stop, data moves away.

        Unlike ``if_mpadm -d`` the test addresses stay up (illumos leaves
        them to if_mpadm, which has no part here).
        """
        pi.hwaddrdup = True
        self._changed = True
        self._log("err", hwaddr.OFFLINING.format(name=pi.name, group=pi.group))
        if pi.state is State.OFFLINE:
            return  # offline already: from now on for its duplicate address
        for family in list(pi.instances):
            self._fx.append(CloseProbe(pi.name, family))
        pi.instances.clear()
        # The rule holds in a group with an IPMP interface only: an OFFLINE
        # member is no longer active and its addresses are re-bound
        # (``binding``); with no active member left they stay parked.
        before = self._active(pi.group)
        self._set_state(pi, State.OFFLINE, now)
        self._put(replace(self._itf(pi.name), offline=True, held_inactive=False))
        if pi.name in before:
            self._activate_another(pi)
        self._rebind(pi.group, before, (pi.name,))

    def _hwaddr_online(self, pi: Phyint, now: float) -> None:
        """``phyint_undo_offline`` of a duplicate whose address is unique again (or no longer judged)."""
        pi.hwaddrdup = False
        self._changed = True
        s11 = self._ipmp(pi.group)
        before = self._active(pi.group) if s11 else ()
        self._set_state(pi, State.RUNNING if pi.link_up else State.FAILED, now)
        # Give the test addresses their time again before complaining (``pi_taddrthresh``).
        pi.appeared = now
        self._put(replace(self._itf(pi.name), offline=False, failed=not pi.link_up))
        done = (Log("err", hwaddr.ONLINING.format(name=pi.name, group=pi.group)),)
        if s11:
            # Activated as by if_mpadm -r: it takes its share (``ipmp_ill_activate``).
            self._rebind(pi.group, before, (pi.name,), done)
        else:
            # The group lost its IPMP interface: the Solaris 10 rescan invariants take over.
            self._execute((pi.name,), done)
        self._select_tests(pi, self._itf(pi.name), now)

    def _forget(self, pi: Phyint) -> None:
        for family in list(pi.instances):
            self._fx.append(CloseProbe(pi.name, family))
        del self.phyints[pi.name]

    def _select_tests(self, pi: Phyint, itf: Interface, now: float) -> None:
        had_any = bool(pi.instances)
        for family in (Family.INET, Family.INET6):
            # A test address, or in a transitive group a data or link address (``transitive``).
            lg = (transitive.probe_source(self.config, itf, family, self.settings.transitive_probing)
                  if pi.state is not State.OFFLINE else None)
            inst = pi.instances.get(family)
            address = lg.address.ip if lg is not None and lg.address is not None else None
            if inst is not None and (address is None or inst.test_address != address):
                del pi.instances[family]
                self._fx.append(CloseProbe(pi.name, family))
                inst = None
            if address is None or lg is None:
                continue
            if self._duplicate_test(pi, family, address):
                if inst is not None:
                    del pi.instances[family]
                    self._fx.append(CloseProbe(pi.name, family))
                continue
            if inst is None:
                inst = Instance(test_address=address, created_at=now,
                                snxt=first_seq(self._seq_secret, self._instances_made))
                self._instances_made += 1
                pi.instances[family] = inst
                self._fx.append(OpenProbe(pi.name, family, address))
                if pi.link_up:
                    inst.start(now, self._group(pi).interval, self.rng)
            self._targets(inst, itf, lg)
        if pi.state is State.OFFLINE:
            return
        if (not pi.instances and not pi.duplicate and now - pi.appeared >= self.timing.testaddr_conf_time
                and not pi.no_test_logged):
            pi.no_test_logged = True
            self._log("err", f"No test address configured on interface {pi.name}; "
                             "disabling probe-based failure detection on it")
        if pi.instances and pi.no_test_logged and not had_any:
            pi.no_test_logged = False
            self._log("err", f"Test address now configured on interface {pi.name}; "
                             "enabling probe-based failure detection on it")

    def _duplicate_test(self, pi: Phyint, family: Family, address: IPAddress) -> bool:
        """§2.3 ``check_addr_unique``: a test address another member probes from disables this one."""
        if not pi.group:
            return False  # not checked in the anonymous group
        dup = any(m is not pi and (i := m.instances.get(family)) is not None and i.test_address == address
                  for m in self._members(pi))
        if dup and family not in pi.duplicate:
            pi.duplicate.add(family)
            self._log("err", f"Test address {address} is not unique in group; disabling probe-based "
                             f"failure detection on {pi.name}")
        elif not dup and family in pi.duplicate:
            pi.duplicate.discard(family)
            self._log("err", f"Test address {address} is unique in group; enabling probe-based "
                             f"failure detection on {pi.name}")
        return dup

    def _check_homogeneous(self) -> None:
        """§2.12: a member missing a family the group uses may not take its addresses."""
        for pi in self.phyints.values():
            if not pi.group:
                continue
            itf = self._itf(pi.name)
            used = {f for m in self._members(pi) for f in self._itf(m.name).plumbed}
            missing = {f for f in used if f not in itf.plumbed}
            for family in sorted(missing - pi.inhomogeneous):
                version = "IPv4" if family is Family.INET else "IPv6"
                self._log("err", f"NIC {pi.name} of group {pi.group} is not plumbed for {version} and may "
                                 "affect failover capability")
            if pi.inhomogeneous and not missing:
                self._log("err", f"NIC {pi.name} is now consistent with group {pi.group} and failover "
                                 "capability is restored")
            pi.inhomogeneous = missing
    def _targets(self, inst: Instance, itf: Interface, lg: Logical) -> None:
        """Routers in the test subnet, or the point-to-point destination (§2.6)."""
        assert lg.address is not None
        if transitive.is_link_address(lg.address.ip):
            # An alternate probes the active members of its group (``transitive``).
            inst.set_routers(transitive.link_targets(self.config, itf, self._usable), inst.created_at)
            return
        if lg.destination is not None:
            inst.set_routers([lg.destination], inst.created_at)
            return
        own = self._own_addresses()
        subnet = lg.address.network
        candidates: list[IPAddress] = list(self.routers)
        if lg.address.version == 6:
            # IPv6: a router goes to the phyint its route leaves through and,
            # in a named group, to every member (§2.6).
            members = {itf.name} | {m.name for m in self.config.group_members(itf.group)}
            candidates += [gw for dev, gw in self.routers6 if dev in members]
        routers = [r for r in dict.fromkeys(candidates)
                   if r.version == lg.address.version and r in subnet and r not in own]
        inst.set_routers(routers, inst.created_at)
