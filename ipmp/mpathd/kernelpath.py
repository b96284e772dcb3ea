"""in.mpathd's kernel path: applies, rescans, and the link news from netlink and /sys.

What the daemon knows of the kernel and how it changes it.  An ``Execute``
effect becomes an apply through the same ``apply`` as ``ifconfig``, planned
from the kernel copy the daemon keeps and the store it read last, unless
netlink or the store's file said they changed; its addresses are announced
(gratuitous ARP / unsolicited NA) as soon as they are in.  A rescan reads
kernel and store, tells the machine (``Resync``) and restores what others
undid, as in.mpathd's ``initifs`` rescan does.  Carrier changes come from
netlink, or from /sys for NICs whose events the kernel may batch; each is
handed to the daemon's one entry (``post``) as a ``LinkChanged``.

This is a part of ``Runtime`` (``ipmp.mpathd.runtime``), which owns the
loop: it declares here what it gives this part.
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import Sequence
from dataclasses import replace

from ipmp.apply import Applied, apply, make_plan, sysctl_keys
from ipmp.errors import ApplyError, IpmpError, StateError
from ipmp.kernel.execute import Kernel
from ipmp.kernel.watch import CarrierReader, LinkEvent, Watcher
from ipmp.linux.ops import AddAddress, Plan
from ipmp.linux.view import Scope, expected
from ipmp.model import Config, IPAddress, KernelState
from ipmp.mpathd import transitive
from ipmp.mpathd.announce import ANNOUNCE_COUNT, ANNOUNCE_SPACING, Announcer
from ipmp.mpathd.keeper import STORE_LOCK_POLL, StoreKeeper
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.prober import Prober
from ipmp.mpathd.steps import Effect, Event, Execute, Executed, LinkChanged, Resync

#: How often the carrier bit is looked at (s).  The kernel's netlink events
#: are immediate on veth but batched up to 1 s on physical NICs; a 50 ms
#: poll of /sys bounds link detection there.
POLL_INTERVAL = 0.05
#: Link kinds whose carrier changes the kernel reports at once (linkwatch
#: treats stacked devices, whose iflink is another link, and bonding/team
#: ports as urgent): no polling needed for them.
URGENT_KINDS = frozenset({"veth", "macvlan", "ipvlan", "vlan", "bond", "team"})
#: How long a rescan waits at most for a command that holds the lock before
#: it reads without it (s): reading the kernel between a command's apply and
#: its store write would "restore" what the command just did.
RESYNC_LOCK_PATIENCE = 2.0


def _now() -> float:
    return time.monotonic()


class KernelPath:
    """Applies, rescans and link news: the part of ``Runtime`` that talks to the kernel."""

    machine: Machine
    keeper: StoreKeeper
    prober: Prober
    announcer: Announcer
    background: set[asyncio.Task[None]]

    def __init__(self) -> None:
        self._kernel: Kernel | None = None
        self.watcher: Watcher | None = None
        self.kernel_state = KernelState()
        # ``links`` is what the machine was told of each NIC's carrier (or,
        # for a NIC it does not track, what was seen last).
        self.links: dict[str, bool] = {}
        self._resync_wanted = False
        # A rescan put off while a command held the store lock: not before
        # this, and since when it has been put off.
        self._resync_not_before = 0.0
        self._resync_put_off_since: float | None = None
        # While an apply runs, netlink's "something changed" is mostly the
        # apply's own doing: noted, and looked at once the apply is over.
        self._applying = False
        self._changed_meanwhile = False
        self._polled_names: list[str] | None = None
        # Their carrier files, kept open while the polled NICs stay the same (``_polled``).
        self._carriers = CarrierReader()
        # The sysctls asked of the kernel in the reads behind kernel_state
        # (a key the kernel lacks is asked but not in the result).
        self._sysctls_asked: frozenset[str] = frozenset()

    # What the runtime gives this part (``ipmp.mpathd.runtime.Runtime``).

    def log(self, level: str, message: str) -> None:
        raise NotImplementedError

    def post(self, event: Event) -> None:
        """The daemon's one entry: ``event`` is stepped in its turn."""
        raise NotImplementedError

    def rescan_soon(self) -> None:
        """``_resync_wanted`` was set outside the loop's own work: have it looked at."""
        raise NotImplementedError

    async def _feed(self, event: Event) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    async def _do(self, fx: Effect) -> None:
        raise NotImplementedError

    # -- names and carriers --------------------------------------------------------------

    def _linux(self, name: str) -> str:
        """The kernel's own name of a NIC the daemon knows by its Solaris name (sockets, /sys)."""
        return self._kernel.names.linux(name) if self._kernel is not None else name

    def _polled(self) -> list[str]:
        """Tracked NICs whose carrier events the kernel may batch (physical NICs).

        Kept until the kernel is read again or the tracked NICs change
        (``_resync``, ``_execute``): the loop asks at every wake-up.
        """
        if self._polled_names is None:
            self._carriers.forget()  # the names may be other NICs' now
            links = {lk.name: lk for lk in self.kernel_state.links}
            self._polled_names = [name for name in self.machine.phyints
                                  if (lk := links.get(name)) is None or lk.kind not in URGENT_KINDS]
        return self._polled_names

    def _poll_carriers(self, now: float, names: list[str]) -> None:
        """The carrier bits, read directly (one small read per NIC); a change is posted."""
        phyints, links = self.machine.phyints, self.links
        for name in names:
            if name not in phyints:
                continue
            up = self._carriers(self._linux(name))  # /sys knows only the Linux name
            if up is None:
                self._resync_wanted = True
                continue
            if links.get(name) != up:
                links[name] = up
                self.post(LinkChanged(now, name, up))

    # -- netlink -----------------------------------------------------------------------

    def _drop_own_notifications(self) -> None:
        """After an apply, the kernel's notifications of our own changes are old news.

        ``applied.after`` was read after them; rereading everything before
        the step's other moves (a full resync, tens of ms with many NICs)
        would only delay them.  Link events still count, and a change seen
        during the apply leads to one resync once they are done (``_execute``).
        """
        if self.watcher is not None:
            links, _ = self.watcher.read()
            self._take_link_events(links)

    def _on_netlink(self, watcher: Watcher) -> None:
        """The watcher's socket is readable: read it now (a reader must not stay readable), post the news."""
        links, changed = watcher.read()
        self._take_link_events(links)
        if not changed:
            return
        if self._applying:
            # Most likely the apply's own change: one resync after it
            # (``_execute``), not before the rest of its plan and the moves
            # queued behind it.
            self._changed_meanwhile = True
            return
        self._resync_wanted = True
        self.rescan_soon()

    def _take_link_events(self, links: list[LinkEvent]) -> None:
        now = _now()
        wanted = self._resync_wanted
        for ev in links:
            if ev.gone:
                self._resync_wanted = True
                continue
            if self._kernel is not None:
                ev.name = self._kernel.names.view(ev.name)
            if ev.name in self.machine.phyints and self.links.get(ev.name) != ev.up:
                self.links[ev.name] = ev.up
                self.post(LinkChanged(now, ev.name, ev.up))
        if self._resync_wanted and not wanted:
            self.rescan_soon()

    # -- applies -----------------------------------------------------------------------

    async def _current_kernel(self, keys: list[str], *, fresh: bool = False) -> KernelState:
        """The kernel an apply plans from: the cached read if it is current, else a new read.

        The cached read is current unless netlink said something changed
        since; on a failover that saves a kernel dump (milliseconds, tens of
        them with many NICs).  Only the sysctls of the NICs applied go in:
        the plan compares no others.
        """
        assert self._kernel is not None
        watcher = self.watcher
        if watcher is not None and select.select([watcher.fileno()], [], [], 0)[0]:
            # Changes announced but not read yet (the loop was busy) would
            # be planned over from a stale copy: take them in first.
            self._on_netlink(watcher)
        if fresh or self._resync_wanted or not self._sysctls_asked.issuperset(keys):
            return await self._kernel.read(keys)
        known = dict(self.kernel_state.sysctls)
        return replace(self.kernel_state, sysctls=tuple((k, known[k]) for k in keys if k in known))

    async def _apply(self, config: Config, scope: Scope, routers: Sequence[IPAddress],
                     keys: list[str]) -> Applied:
        """Apply ``config`` to the kernel; a failed apply is tried once more from a new read.

        Decision (bug 8 in RELIABILITY.md): another actor may change the
        kernel between the read a plan starts from and the apply (``ip rule
        flush`` while we restore).  The plan then misses work and the
        read-back fails, and netlink cannot tell their notifications from
        the ones of our own changes.  ``apply`` has already put the kernel
        back; one more try from a fresh read settles it.  A genuine failure
        (an address in use elsewhere, a NIC removed) fails the second time
        too, at the cost of one more apply and revert (milliseconds), and
        only then is it reported (in.mpathd's "failed to apply" line).
        """
        assert self._kernel is not None
        before = await self._current_kernel(keys)
        try:
            return await apply(self._kernel, config, scope, routers, before=before,
                               executed=self._data_path_done, keep_link_identity=True)
        except ApplyError as err:
            self.log("debug", f"apply failed, trying once more from a new kernel read: {err}")
        before = await self._current_kernel(keys, fresh=True)
        return await apply(self._kernel, config, scope, routers, before=before, executed=self._data_path_done,
                           keep_link_identity=True)

    def _data_path_done(self, plan: Plan) -> None:
        """The plan's addresses and rules are in the kernel: announce the moves, then what waited for them."""
        self._announce_moves(plan)
        self._release()

    def _announce_moves(self, plan: Plan) -> None:
        """Gratuitous ARP / unsolicited NA for every address the plan added."""
        moved: dict[str, list[IPAddress]] = {}
        for op in plan:
            if isinstance(op, AddAddress):
                moved.setdefault(op.address.ifname, []).append(op.address.address.ip)
        for ifname, addrs in moved.items():
            self._announce(ifname, tuple(addrs))

    def _announce(self, ifname: str, addresses: tuple[IPAddress, ...]) -> None:
        link = self.kernel_state.link(ifname)
        if link is None or link.mac is None or not addresses:
            return
        # The first round goes out now, the rest of the burst (3 in all, 20 ms
        # apart: linux-mapping.md Q4) from a task.
        for address in addresses:
            try:
                self.announcer.send(self._linux(ifname), link.mac, address)
            except OSError as err:
                self.log("info", f"cannot announce {address} on {ifname}: {err.strerror}")
        task = asyncio.get_running_loop().create_task(self._burst(ifname, link.mac, addresses))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _burst(self, ifname: str, mac: str, addresses: tuple[IPAddress, ...]) -> None:
        try:
            await asyncio.sleep(ANNOUNCE_SPACING)
            await self.announcer.burst(self._linux(ifname), mac, addresses, count=ANNOUNCE_COUNT - 1)
        except OSError as err:
            self.log("info", f"cannot announce {', '.join(map(str, addresses))} on {ifname}: {err.strerror}")

    @staticmethod
    def _scope(config: Config, names: list[str]) -> Scope:
        pairs = set()
        for name in names:
            itf = config.get(name)
            for family in itf.plumbed if itf is not None else ():
                pairs.add((name, family))
        return Scope(frozenset(pairs))

    async def _execute(self, fx: Execute) -> None:
        """Carry out an ``Execute``: the apply, its success or failure effects, then ``Executed`` stepped."""
        assert self._kernel is not None
        names = sorted(set(fx.names))
        ok = True
        error = ""
        keeper = self.keeper
        lock = await keeper.lock()
        try:
            routers = keeper.routers()
            keys = sysctl_keys(names)
            scope = self._scope(fx.config, names)
            self._applying = True
            try:
                applied = await self._apply(fx.config, scope, routers, keys)
            except (ApplyError, IpmpError) as err:
                ok, error = False, str(err)
            else:
                # With the NICs holding addresses homed on these: after a crash
                # between a kernel change and its save, that home is known only
                # from this config, and a save of the home NIC alone drops it.
                homed = {i.name for i in fx.config.interfaces if any(lg.home in names for lg in i.logicals)}
                for name in sorted(set(names) | homed):
                    if (itf := fx.config.get(name)) is not None:
                        keeper.unsaved[name] = itf
                # The read-back has the sysctls of these NICs only; the
                # others' are as they were (the plan touched none of them).
                after = applied.after
                fresh = {k for k, _ in after.sysctls}
                self.kernel_state = replace(after, sysctls=after.sysctls + tuple(
                    kv for kv in self.kernel_state.sysctls if kv[0] not in fresh))
                self._sysctls_asked = self._sysctls_asked | set(keys)
                self._polled_names = None
                self._drop_own_notifications()
            finally:
                self._applying = False
            # What waited for the data path, if the plan had none (``_data_path_done``).
            self._release()
            if lock is not None:
                keeper.flush(lock)
        finally:
            self._release()
            if lock is not None:
                lock.release()
        for effect in fx.success if ok else fx.failure:
            await self._do(effect)
        await self._feed(Executed(_now(), ok, error))
        if not ok or self._changed_meanwhile:
            # Someone else may have changed the kernel while the apply ran:
            # reread it, as after any change notification.
            self._changed_meanwhile = False
            self._resync_wanted = True

    # -- rescans -----------------------------------------------------------------------

    async def _resync(self) -> bool:
        """Read kernel and store, tell the machine, and restore what others undid.

        False when it was put off: a command of root's holds the store lock
        and is between its kernel change and its store write, and a read
        now would "restore" what it just did.  ``_resync_wanted`` is then
        set again, for STORE_LOCK_POLL later; after RESYNC_LOCK_PATIENCE
        the rescan reads without the lock.
        """
        assert self._kernel is not None
        keeper = self.keeper
        try:
            lock = keeper.store.try_lock(exclusive=False)
        except StateError:
            lock = None  # cannot be opened (run read-only or full): read without it
        else:
            if lock is None:
                now = _now()
                if self._resync_put_off_since is None:
                    self._resync_put_off_since = now
                if now - self._resync_put_off_since < RESYNC_LOCK_PATIENCE:
                    self._resync_wanted = True
                    self._resync_not_before = now + STORE_LOCK_POLL
                    return False
                self.log("debug", f"rescanning without the store lock, held for {RESYNC_LOCK_PATIENCE:g} s")
        self._resync_put_off_since = None
        names = [lk.name for lk in self.kernel_state.links]
        try:
            if not names:
                names = [lk.name for lk in (await self._kernel.read()).links]
            keys = sysctl_keys(names)
            kernel = await self._kernel.read(keys)
            if {lk.name for lk in kernel.links} - set(names):
                # A new link: read again with its sysctls (rare; one dump otherwise).
                keys = sysctl_keys([lk.name for lk in kernel.links])
                kernel = await self._kernel.read(keys)
            self._sysctls_asked = frozenset(keys)
            stored = keeper.load()
            keeper.seen = keeper.version()
        finally:
            if lock is not None:
                lock.release()
        self.kernel_state = kernel
        config = expected(kernel, stored.interfaces)
        routers = list(stored.defaultrouters)
        for route in kernel.routes:
            if route.gateway is not None and route.gateway not in routers:
                routers.append(route.gateway)
        # IPv6 routers are the kernel's (router advertisements, static
        # routes), with the link each one is on (§2.6).
        routers6 = await self._kernel.routers6()
        # A carrier change this read sees before its netlink event was read
        # is told to the machine here: the event, once read, equals ``links``
        # and is dropped, and a Resync carries no link change of a tracked
        # NIC, so the machine would never hear of it (a failover or a repair
        # lost for good; seen by bench/failover.py).
        now = _now()
        missed: list[LinkChanged] = []
        for link in kernel.links:
            up = link.up and link.running
            if link.name in self.machine.phyints and self.links.get(link.name) != up:
                missed.append(LinkChanged(now, link.name, up))
            self.links[link.name] = up
        await self._feed(Resync(now, config, tuple(routers), routers6))
        # The link-layer sockets of transitive probing follow the groups' members.
        machine = self.machine
        self.prober.link.sync(transitive.members(machine.config, machine.settings.transitive_probing))
        for change in missed:
            if change.ifname in self.machine.phyints:
                await self._feed(change)
        self._polled_names = None  # new links, or other NICs tracked
        if self.machine.executing:
            return True
        tracked = sorted(self.machine.phyints)
        if not tracked:
            return True
        scope = self._scope(self.machine.config, tracked)
        plan = make_plan(kernel, self.machine.config, scope, stored.defaultrouters, keep_link_identity=True)
        if plan:
            # Someone deleted an address, flushed rules or downed a NIC behind
            # our back: put it back, as in.mpathd's rescan does.
            self.log("err", f"restoring {len(plan)} kernel change(s) undone outside in.mpathd on "
                            f"{', '.join(tracked)}")
            await self._execute(Execute(self.machine.config, tuple(tracked)))
        return True
