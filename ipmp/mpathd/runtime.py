"""in.mpathd's body: an asyncio loop around the pure ``Machine``.

It turns I/O into events (netlink link changes and "something changed", the
carrier bit polled directly, probe replies, admin requests over the control
socket, the clock) and effects into I/O (probe packets, applies through the
same ``apply`` as ``ifconfig``, gratuitous ARP / unsolicited NA, syslog lines,
replies).  Effects are carried out in order, one at a time, so the kernel sees
address moves in sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import syslog
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, Protocol

from ipmp.apply import apply, make_plan, sysctl_keys
from ipmp.errors import ApplyError, IpmpError
from ipmp.ifmap import MapEntry, canonical_name, read_ifmap
from ipmp.model import Config, Family, IPAddress, KernelState
from ipmp.mpathd import events, icmp, ipc
from ipmp.mpathd.announce import ANNOUNCE_COUNT, ANNOUNCE_SPACING, Announcer
from ipmp.mpathd.machine import (
    AdminOffline,
    AdminUndoOffline,
    Announce,
    CloseProbe,
    Effect,
    Event,
    Execute,
    Executed,
    LinkChanged,
    Log,
    Machine,
    OpenProbe,
    ProbeReplied,
    ReplyTo,
    Resync,
    SendProbe,
    Tick,
)
from ipmp.mpathd.probe import ProbeKind
from ipmp.netlink import Kernel, LinkEvent, Watcher, carrier
from ipmp.ops import AddAddress, Plan
from ipmp.state import Store
from ipmp.view import Scope, expected

#: How often the carrier bit and the state store are looked at (s).  The
#: kernel's netlink events are immediate on veth but batched up to 1 s on
#: physical NICs; a 50 ms poll of /sys bounds link detection there.
POLL_INTERVAL = 0.05
#: How often the state store's mtime is looked at (s): ifconfig and
#: ipmp-boot changes (a group, a flag) reach the daemon within this.
STORE_POLL_INTERVAL = 0.5
#: Link kinds whose carrier changes the kernel reports at once (linkwatch
#: treats stacked devices, whose iflink is another link, and bonding/team
#: ports as urgent): no polling needed for them.
URGENT_KINDS = frozenset({"veth", "macvlan", "ipvlan", "vlan", "bond", "team"})
#: How long an admin request may wait for the machine (s).
REQUEST_TIMEOUT = 10.0

#: All-hosts groups for target discovery (§2.6).
MULTICAST: dict[Family, IPAddress] = {
    Family.INET: IPv4Address("224.0.0.1"),
    Family.INET6: IPv6Address("ff02::1"),
}


class SyslogBackend(Protocol):
    """What ``Logger`` uses of the ``syslog`` module (tests pass a stand-in)."""

    LOG_PID: int
    LOG_DAEMON: int
    LOG_ERR: int
    LOG_INFO: int
    LOG_DEBUG: int

    def openlog(self, ident: str, logoption: int, facility: int) -> None: ...

    def syslog(self, priority: int, message: str) -> None: ...


class Logger:
    """syslog (facility daemon, ident in.mpathd, pid) or, in debug mode, stderr.

    Through syslog the messages reach ``/dev/log``, where syslogd or the
    systemd journal reads them: level ``err`` is LOG_ERR (every state change,
    with the Solaris 10 texts), ``info`` LOG_INFO, ``debug`` LOG_DEBUG (only
    with ``debug``).  On stderr each message is one flushed line.
    """

    def __init__(self, *, to_stderr: bool, debug: bool, backend: SyslogBackend | Any = syslog) -> None:
        self.to_stderr = to_stderr
        self.debug = debug
        self.backend: SyslogBackend = backend
        if not to_stderr:
            backend.openlog("in.mpathd", backend.LOG_PID, backend.LOG_DAEMON)

    def __call__(self, level: str, message: str) -> None:
        if level == "debug" and not self.debug:
            return
        if not self.to_stderr:
            b = self.backend
            prio = {"err": b.LOG_ERR, "info": b.LOG_INFO}.get(level, b.LOG_DEBUG)
            # syslog() encodes strictly: an undecodable byte of a hostname file
            # (a group name read with surrogateescape) must not stop the daemon.
            b.syslog(prio, message.encode("utf-8", "backslashreplace").decode("utf-8"))
            return
        print(message, file=sys.stderr, flush=True)


@dataclass
class _Probe:
    sock: icmp.ProbeSocket
    ident: int


def _ifmap_entries(root: Path) -> tuple[MapEntry, ...]:
    """The well-formed lines of ``etc/ipmp/ifmap`` (ipmp-boot reports the others)."""
    try:
        return read_ifmap(root)[0]
    except OSError:
        return ()


def _now() -> float:
    return time.monotonic()


def _stamp_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


class Runtime:
    def __init__(self, root: Path, machine: Machine, log: Logger) -> None:
        self.root = root
        self.machine = machine
        self.log = log
        self.store = Store(root)
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.probes: dict[tuple[str, Family], _Probe] = {}
        self.pending: dict[int, asyncio.Future[ReplyTo]] = {}
        self.request_ids = itertools.count(1)
        self.kernel_state = KernelState()
        self.links: dict[str, bool] = {}
        self.store_mtime: float | None = None
        self.stopping = asyncio.Event()
        self.announcer = Announcer()
        self.background: set[asyncio.Task[None]] = set()
        self._kernel: Kernel | None = None
        self.watcher: Watcher | None = None
        self._resync_wanted = False
        # Event streams (ipmpstat -p, integrations): work only while subscribed.
        self.broker = ipc.Broker(on_subscribe=self._on_subscribe)
        self.probe_tracker = events.ProbeTracker()
        self._view: events.View | None = None
        self._publish_failed = False

    # -- the loop --------------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        watcher = self.watcher = Watcher()
        loop.add_reader(watcher.fileno(), self._on_netlink, watcher)
        server = await ipc.serve(ipc.socket_path(self.root), self._handle, log=lambda m: self.log("err", m),
                                 broker=self.broker)
        try:
            # Solaris names (etc/ipmp/ifmap), as read at start: the daemon's
            # messages, state and control requests use them.
            async with Kernel(_ifmap_entries(self.root)) as kernel:
                self._kernel = kernel
                await self._resync()
                if ready is not None:
                    ready()
                await self._loop()
        finally:
            loop.remove_reader(watcher.fileno())
            watcher.close()
            server.close()  # removes the socket file, if it is still ours
            for probe in self.probes.values():
                with contextlib.suppress(OSError):
                    loop.remove_reader(probe.sock.fileno())
                probe.sock.close()
            for task in list(self.background):
                task.cancel()
            self.announcer.close()

    async def _loop(self) -> None:
        next_poll = next_store = _now()
        while not self.stopping.is_set():
            now = _now()
            deadline = self.machine.next_deadline()
            polled = self._polled()
            wake = min(next_poll if polled else next_store, next_store)
            if deadline is not None:
                wake = min(wake, deadline)
            event: Event | None = None
            try:
                # asyncio.timeout, not wait_for: no task made at every wake-up.
                async with asyncio.timeout(max(0.0, wake - now)):
                    event = await self.queue.get()
            except TimeoutError:
                pass
            now = _now()
            if event is not None:
                await self._feed(event)
            if polled and now >= next_poll:
                next_poll = now + POLL_INTERVAL
                await self._poll_carriers(now, polled)
            if now >= next_store:
                next_store = now + STORE_POLL_INTERVAL
                self._poll_store()
            rescan = self.machine.next_rescan
            if self._resync_wanted or (rescan is not None and now >= rescan):
                self._resync_wanted = False
                await self._resync()
            deadline = self.machine.next_deadline()
            if deadline is not None and _now() >= deadline:
                await self._feed(Tick(_now()))

    def _polled(self) -> list[str]:
        """Tracked NICs whose carrier events the kernel may batch (physical NICs)."""
        out = []
        for name in self.machine.phyints:
            link = self.kernel_state.link(name)
            if link is None or link.kind not in URGENT_KINDS:
                out.append(name)
        return out

    async def _poll_carriers(self, now: float, names: list[str]) -> None:
        """The carrier bits, read directly (one small read per NIC)."""
        for name in names:
            if name not in self.machine.phyints:
                continue
            up = carrier(self._linux(name))  # /sys knows only the Linux name
            if up is None:
                self._resync_wanted = True
                continue
            if self.links.get(name) != up:
                self.links[name] = up
                await self._feed(LinkChanged(now, name, up))

    def _poll_store(self) -> None:
        try:
            mtime = self.store.path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime != self.store_mtime:
            # ifconfig or ipmp-boot changed the store (a group, a flag, an address).
            self.store_mtime = mtime
            self._resync_wanted = True

    def _drop_own_notifications(self) -> None:
        """After an apply, the kernel's notifications of our own changes are old news.

        ``applied.after`` was read after them; rereading everything for each
        (a full resync, tens of ms) would only delay the next move.  Link
        events still count; anything someone else changed meanwhile is seen
        at the next rescan at the latest.
        """
        if self.watcher is not None:
            links, _ = self.watcher.read()
            self._take_link_events(links)

    def _on_netlink(self, watcher: Watcher) -> None:
        links, changed = watcher.read()
        self._take_link_events(links)
        if changed:
            self._resync_wanted = True

    def _take_link_events(self, links: list[LinkEvent]) -> None:
        now = _now()
        for ev in links:
            if ev.gone:
                self._resync_wanted = True
                continue
            if self._kernel is not None:
                ev.name = self._kernel.names.view(ev.name)
            if ev.name in self.machine.phyints and self.links.get(ev.name) != ev.up:
                self.links[ev.name] = ev.up
                self.queue.put_nowait(LinkChanged(now, ev.name, ev.up))

    async def _feed(self, event: Event) -> None:
        effects = self.machine.step(event)
        self._publish()
        for effect in effects:
            await self._do(effect)

    # -- event streams -----------------------------------------------------------------

    def _on_subscribe(self, topic: str) -> None:
        """A first subscriber: take the baseline its events are changes from."""
        with contextlib.suppress(Exception):  # else the first _publish takes it
            if topic == "probes" and not self.probe_tracker.active:
                self.probe_tracker.start(self.machine.phyints, now=_now(), wall=time.time())
            elif topic == "events" and self._view is None:
                self._view = events.view_of(self.machine.snapshot())

    def _publish(self) -> None:
        """After a step: publish probe outcomes and state changes to the subscribers, if any."""
        try:
            if self.broker.subscribers("probes"):
                for doc in self.probe_tracker.changes(self.machine.phyints, now=_now(), wall=time.time()):
                    self.broker.publish("probes", doc)
            elif self.probe_tracker.active:
                self.probe_tracker.stop()
            if self.broker.subscribers("events"):
                view = events.view_of(self.machine.snapshot())
                if self._view is not None:
                    for doc in events.state_changes(self._view, view, wall=time.time()):
                        self.broker.publish("events", doc)
                self._view = view
            else:
                self._view = None
        except Exception as err:  # publishing must never stop failure detection
            if not self._publish_failed:
                self._publish_failed = True
                self.log("err", f"cannot publish events: {err!r}")

    # -- effects ----------------------------------------------------------------------

    async def _do(self, fx: Effect) -> None:
        match fx:
            case SendProbe():
                self._send(fx)
            case OpenProbe():
                self._open(fx)
            case CloseProbe():
                self._close(fx.ifname, fx.family)
            case Log():
                self.log(fx.level, fx.message)
            case ReplyTo():
                fut = self.pending.pop(fx.request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(fx)
            case Announce():
                self._announce(fx.ifname, fx.addresses)
            case Execute():
                await self._execute(fx)

    def _send(self, fx: SendProbe) -> None:
        probe = self.probes.get((fx.ifname, fx.family))
        if probe is None:
            return
        target = fx.target if fx.target is not None else MULTICAST[fx.family]
        data = icmp.encode_echo(fx.family, probe.ident, fx.seq, _stamp_ms(), int(fx.kind))
        try:
            probe.sock.send(target, data)
        except OSError as err:
            self.log("debug", f"probe send on {fx.ifname} to {target}: {err.strerror}")

    def _linux(self, name: str) -> str:
        """The kernel's own name of a NIC the daemon knows by its Solaris name (sockets, /sys)."""
        return self._kernel.names.linux(name) if self._kernel is not None else name

    def _open(self, fx: OpenProbe) -> None:
        self._close(fx.ifname, fx.family)
        link = self.kernel_state.link(fx.ifname)
        index = link.index if link is not None else 0
        try:
            sock = icmp.ProbeSocket(self._linux(fx.ifname), fx.source, ifindex=index or None)
        except OSError as err:
            self.log("err", f"cannot open probe socket on {fx.ifname} ({fx.source}): {err.strerror}")
            return
        probe = _Probe(sock, icmp.probe_ident(os.getpid(), index))
        self.probes[(fx.ifname, fx.family)] = probe
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_probe, fx.ifname, fx.family, probe)

    def _close(self, ifname: str, family: Family) -> None:
        probe = self.probes.pop((ifname, family), None)
        if probe is None:
            return
        with contextlib.suppress(OSError, ValueError):
            asyncio.get_running_loop().remove_reader(probe.sock.fileno())
        probe.sock.close()

    def _on_probe(self, ifname: str, family: Family, probe: _Probe) -> None:
        now = _now()
        stamp = _stamp_ms()
        wall_ns = time.time_ns()
        try:
            packets = probe.sock.receive()
        except OSError:
            return
        for data, source, arrived_ns in packets:
            reply = icmp.decode_echo_reply(family, data, source, ident=probe.ident)
            if reply is None:
                continue
            if isinstance(reply, icmp.BadReply):
                self.log("info", reply.message(ifname))
                continue
            if reply.ident != probe.ident:
                continue  # another instance's probe, or someone else's ping
            try:
                kind = ProbeKind(reply.probe_type)
            except ValueError:
                continue
            rtt = (stamp - reply.timestamp_ms) & 0xFFFFFFFF
            if arrived_ns:
                # The time the reply waited in the socket for the loop is not
                # part of its round trip.  The kernel stamps CLOCK_REALTIME: a
                # step of that clock makes the wait negative or too long, so it
                # is bounded by [0, rtt].
                waited = (wall_ns - arrived_ns) // 1_000_000
                rtt -= min(max(waited, 0), rtt)
            self.queue.put_nowait(ProbeReplied(now, ifname, family, reply.seq, reply.source, rtt, kind))

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

    async def _execute(self, fx: Execute) -> None:
        assert self._kernel is not None
        names = sorted(set(fx.names))
        ok = True
        error = ""
        with self.store.locked():
            stored = self.store.load()
            keys = sysctl_keys(names)
            # The cached read is current unless netlink said something changed
            # since; on a failover that saves a kernel dump (milliseconds).
            before = self.kernel_state
            if self._resync_wanted or not set(keys) <= dict(before.sysctls).keys():
                before = await self._kernel.read(keys)
            scope = self._scope(fx.config, names)
            try:
                applied = await apply(self._kernel, fx.config, scope, stored.defaultrouters, before=before,
                                      executed=self._announce_moves)
            except (ApplyError, IpmpError) as err:
                ok, error = False, str(err)
            else:
                # With the NICs holding addresses homed on these: after a crash
                # between a kernel change and its save, that home is known only
                # from this config, and a save of the home NIC alone drops it.
                homed = {i.name for i in fx.config.interfaces if any(lg.home in names for lg in i.logicals)}
                changed = tuple(i for n in sorted(set(names) | homed) if (i := fx.config.get(n)) is not None)
                self.store.save(stored.with_interfaces(changed))
                self.kernel_state = applied.after
                self._drop_own_notifications()
            with contextlib.suppress(OSError):
                self.store_mtime = self.store.path.stat().st_mtime
        for effect in fx.success if ok else fx.failure:
            await self._do(effect)
        await self._feed(Executed(_now(), ok, error))
        if not ok:
            self._resync_wanted = True

    def _announce_moves(self, plan: Plan) -> None:
        """Gratuitous ARP / unsolicited NA for every address the plan added."""
        moved: dict[str, list[IPAddress]] = {}
        for op in plan:
            if isinstance(op, AddAddress):
                moved.setdefault(op.address.ifname, []).append(op.address.address.ip)
        for ifname, addrs in moved.items():
            self._announce(ifname, tuple(addrs))

    @staticmethod
    def _scope(config: Config, names: list[str]) -> Scope:
        pairs = set()
        for name in names:
            itf = config.get(name)
            for family in itf.plumbed if itf is not None else ():
                pairs.add((name, family))
        return Scope(frozenset(pairs))

    # -- resync ------------------------------------------------------------------------

    async def _resync(self) -> None:
        """Read kernel and store, tell the machine, and restore what others undid."""
        assert self._kernel is not None
        names = [lk.name for lk in self.kernel_state.links]
        if not names:
            names = [lk.name for lk in (await self._kernel.read()).links]
        with self.store.locked(exclusive=False):
            kernel = await self._kernel.read(sysctl_keys(names))
            if {lk.name for lk in kernel.links} - set(names):
                # A new link: read again with its sysctls (rare; one dump otherwise).
                kernel = await self._kernel.read(sysctl_keys([lk.name for lk in kernel.links]))
            stored = self.store.load()
            with contextlib.suppress(OSError):
                self.store_mtime = self.store.path.stat().st_mtime
        self.kernel_state = kernel
        config = expected(kernel, stored.interfaces)
        routers = list(stored.defaultrouters)
        for route in kernel.routes:
            if route.gateway is not None and route.gateway not in routers:
                routers.append(route.gateway)
        # IPv6 routers are the kernel's (router advertisements, static
        # routes), with the link each one is on (§2.6).
        routers6 = await self._kernel.routers6()
        for link in kernel.links:
            if link.name in self.machine.phyints or link.name not in self.links:
                self.links[link.name] = link.up and link.running
        await self._feed(Resync(_now(), config, tuple(routers), routers6))
        if self.machine.executing:
            return
        tracked = sorted(self.machine.phyints)
        if not tracked:
            return
        scope = self._scope(self.machine.config, tracked)
        plan = make_plan(kernel, self.machine.config, scope, stored.defaultrouters)
        if plan:
            # Someone deleted an address, flushed rules or downed a NIC behind
            # our back: put it back, as in.mpathd's rescan does.
            self.log("err", f"restoring {len(plan)} kernel change(s) undone outside in.mpathd on "
                            f"{', '.join(tracked)}")
            await self._execute(Execute(self.machine.config, tuple(tracked)))

    # -- control socket ------------------------------------------------------------------

    async def _handle(self, request: ipc.Request, peer: ipc.Peer) -> ipc.Reply:
        if request.op == "ping":
            return ipc.Reply()
        if request.op == "query":
            return ipc.Reply(data=self.machine.snapshot())
        if request.op == "subscribe":
            # The state the events that follow are changes from; clocks so
            # that a client can place the probes' monotonic send times.
            return ipc.Reply(data={"topic": request.topic, "now": _now(), "time": time.time(),
                                   "snapshot": self.machine.snapshot()})
        rid = next(self.request_ids)
        fut: asyncio.Future[ReplyTo] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        # if_mpadm may name the NIC by any of its names (Linux name, altname).
        ifname = canonical_name(self.kernel_state, request.ifname)
        if request.op == "offline":
            self.queue.put_nowait(AdminOffline(_now(), ifname, request.min_redundancy, rid))
        else:
            self.queue.put_nowait(AdminUndoOffline(_now(), ifname, rid))
        try:
            result = await asyncio.wait_for(fut, REQUEST_TIMEOUT)
        except TimeoutError:
            self.pending.pop(rid, None)
            return ipc.Reply(mpathd_error=ipc.MPATHD_SYS_ERROR, sys_error=11)  # EAGAIN: busy
        return ipc.Reply(mpathd_error=result.mpathd_error, sys_error=result.sys_error)

    def stop(self) -> None:
        self.stopping.set()
        self.queue.put_nowait(Tick(_now()))

