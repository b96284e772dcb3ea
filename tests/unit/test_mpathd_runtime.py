"""The runtime's own decisions, on an in-memory kernel (``tests.fakes.FakeKernel``).

What reaches the machine when (a carrier change seen by a rescan before its
netlink event), and the order of work at a failover: the kernel's data path
first, then the log lines, the event streams and the state store.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

from ipmp.apply import make_plan, sysctl_keys
from ipmp.host.ifmap import NameMap
from ipmp.host.state import Store, Stored
from ipmp.kernel.watch import CarrierReader, LinkEvent
from ipmp.linux.ops import Op
from ipmp.model import Family, KernelState
from ipmp.mpathd import wakeups
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import State, Timing
from ipmp.mpathd.probe import ProbeKind
from ipmp.mpathd.runtime import Chore, Runtime
from ipmp.mpathd.settings import Settings
from ipmp.mpathd.steps import Effect, Event, LinkChanged, OpenProbe, ProbeReplied, Tick
from tests.fakes import FakeKernel
from tests.unit.test_reliability_regressions import BOTH, NAMES, _booted

DATA0 = IPv4Address("192.0.2.100")  # myhost, on qfe0


class _Kernel(FakeKernel):
    """The fake kernel with what the daemon asks of ``ipmp.kernel.execute.Kernel`` beyond ``KernelIO``."""

    def __init__(self, state: KernelState, journal: list[str]) -> None:
        super().__init__(state)
        self.names = NameMap()
        self.journal = journal

    async def routers6(self) -> tuple[tuple[str, IPv6Address], ...]:
        return ()

    async def execute(self, ops: Sequence[Op]) -> None:
        await super().execute(ops)
        self.journal.extend(f"kernel {type(op).__name__}" for op in ops)


def _runtime(tmp_path: Path, journal: list[str]) -> tuple[Runtime, _Kernel]:
    """A runtime over the booted active-active example, its probes not opened (no NIC to bind)."""
    fresh, env, config = _booted()
    kernel = _Kernel(fresh, journal)
    kernel.run(make_plan(kernel.state(sysctl_keys(NAMES)), config, BOTH, env.defaultrouters))
    runtime = Runtime(tmp_path, Machine(Settings(), Timing()),
                      lambda level, message: journal.append(message))  # type: ignore[arg-type]
    runtime.store.save(Stored(config.interfaces, env.defaultrouters))  # as ipmp-boot leaves it
    runtime._kernel = kernel  # type: ignore[assignment]  # the fake stands for ipmp.kernel.execute.Kernel

    def no_socket(fx: OpenProbe, ifindex: int) -> None:
        return None

    runtime.prober.open = no_socket  # type: ignore[method-assign]
    runtime._announce_moves = lambda plan: journal.append("announce")  # type: ignore[method-assign]
    return runtime, kernel


def _home_of(kernel: FakeKernel, ip: IPv4Address) -> str:
    return next(a.ifname for a in kernel.state().addresses if a.address.ip == ip)



async def _drain(runtime: Runtime) -> None:
    """Step the machine for every event posted while the loop did not run, as the loop would."""
    while runtime._inbox:
        item = runtime._inbox.popleft()
        if not isinstance(item, Chore):
            await runtime._feed(item)


def _running(runtime: Runtime, loop: object) -> None:
    """The runtime as ``run`` leaves it once started: its entry takes what is posted."""
    runtime._aloop = loop  # type: ignore[assignment]
    runtime._finished = asyncio.get_running_loop().create_future()


async def _job_over(runtime: Runtime) -> None:
    """Wait for the job under way (an apply), and for the inbox taken again after it."""
    job = runtime._job
    while job is not None:
        await asyncio.wait([job])
        await asyncio.sleep(0)  # its done callback takes the inbox again, which may start another
        job = runtime._job

def test_a_carrier_loss_a_rescan_reads_before_its_netlink_event_still_fails_the_nic_over(
        tmp_path: Path) -> None:
    """Found by bench/failover.py (a failback never came, 1 trial in ~50): a rescan
    read the kernel after a carrier change and before the netlink event of that
    change was read.  It recorded the new carrier as known, the event was then
    dropped as old news, and the machine never heard of it."""
    journal: list[str] = []
    runtime, kernel = _runtime(tmp_path, journal)

    async def scenario() -> None:
        assert await runtime._resync()
        assert runtime.machine.phyints["qfe0"].link_up
        kernel.set_carrier("qfe0", False)
        assert await runtime._resync()  # reads the carrier loss first ...
        index = next(lk.index for lk in kernel.state().links if lk.name == "qfe0")
        runtime._take_link_events([LinkEvent(index, "qfe0", False, False)])  # ... then its event comes
        await _drain(runtime)

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()

    pi = runtime.machine.phyints["qfe0"]
    assert not pi.link_up and pi.state is State.FAILED, journal
    assert "NIC failure detected on qfe0 of group prod" in journal
    assert "Successfully failed over from NIC qfe0 to NIC qfe1" in journal
    assert _home_of(kernel, DATA0) == "qfe1"
    assert journal.count("NIC failure detected on qfe0 of group prod") == 1


def test_a_carrier_repair_a_rescan_reads_first_still_reaches_the_machine(tmp_path: Path) -> None:
    """The same race the other way: the link coming up is not lost either (with
    probe targets, the repair itself then waits for NUM_PROBE_REPAIRS replies)."""
    journal: list[str] = []
    runtime, kernel = _runtime(tmp_path, journal)
    index = next(lk.index for lk in kernel.state().links if lk.name == "qfe0")

    async def scenario() -> None:
        assert await runtime._resync()
        kernel.set_carrier("qfe0", False)
        runtime._take_link_events([LinkEvent(index, "qfe0", False, False)])
        await _drain(runtime)
        assert _home_of(kernel, DATA0) == "qfe1"
        kernel.set_carrier("qfe0", True)
        assert await runtime._resync()
        runtime._take_link_events([LinkEvent(index, "qfe0", True, False)])
        await _drain(runtime)

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()

    assert runtime.machine.phyints["qfe0"].link_up, journal
    assert journal.count("The link has come up on qfe0") == 1


@pytest.mark.parametrize("stepped", ["at once", "in its turn"])
def test_at_a_carrier_loss_the_addresses_move_and_are_announced_before_anything_else(
        tmp_path: Path, stepped: str) -> None:
    """The order of work at a failure (issue 14, "The peers"): the address moves
    and rules, then the gratuitous ARP, then the log lines, the event streams
    and the state store.  "at once": the event is stepped where it is read
    (the loop idle); "in its turn": it waits on the inbox while a job is under
    way, and is taken when that is over."""
    journal: list[str] = []
    runtime, kernel = _runtime(tmp_path, journal)
    save, publish = runtime.store.save, runtime._publish

    def saving(stored: Stored) -> None:
        journal.append("store")
        save(stored)

    def publishing() -> None:
        journal.append("publish")
        publish()

    runtime.store.save = saving  # type: ignore[method-assign]
    runtime._publish = publishing  # type: ignore[method-assign]
    index = next(lk.index for lk in kernel.state().links if lk.name == "qfe0")

    async def scenario() -> None:
        assert await runtime._resync()
        journal.clear()
        kernel.set_carrier("qfe0", False)
        _running(runtime, asyncio.get_running_loop())
        runtime._busy = stepped != "at once"  # "in its turn": as while a job is under way
        runtime._take_link_events([LinkEvent(index, "qfe0", False, False)])
        if stepped == "at once":
            assert runtime._job is not None and not runtime._inbox  # stepped: its apply is under way
        else:
            assert runtime._job is None and len(runtime._inbox) == 1  # waits its turn
            runtime._busy = False
            runtime._drain()
        await _job_over(runtime)
        assert not runtime._inbox and not runtime._busy
        if runtime._timer is not None:
            runtime._timer.cancel()

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()

    assert _home_of(kernel, DATA0) == "qfe1", journal
    moved = journal.index("kernel AddAddress")
    order = [moved, journal.index("announce"), journal.index("The link has gone down on qfe0"),
             journal.index("NIC failure detected on qfe0 of group prod"), journal.index("store"),
             journal.index("Successfully failed over from NIC qfe0 to NIC qfe1")]
    assert order == sorted(order), journal
    assert journal.index("kernel DelAddress") < moved
    assert all(line.startswith("kernel ") for line in journal[:moved]), journal
    assert "publish" in journal[journal.index("announce"):journal.index("store")], journal


class _Handle:
    def cancel(self) -> None:
        pass


class _Loop:
    """What the runtime asks of the event loop: its timer (``Runtime._arm``), recorded; jobs."""

    def __init__(self) -> None:
        self.armed: list[float] = []

    def call_at(self, when: float, callback: object) -> _Handle:
        self.armed.append(when)
        return _Handle()

    def create_task(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(work)


def test_quiet_carrier_and_store_polls_start_no_job_and_a_change_is_stepped_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A physical NIC's carrier is read every POLL_INTERVAL, by the clock's
    turn of the one entry (``Due``).  A poll that finds nothing changed costs
    no task (a round of one for each cost many times the read) and leaves the
    timer armed for the next; a change is stepped right there, before the
    clock's Tick, and its apply is the job."""
    journal: list[str] = []
    runtime, kernel = _runtime(tmp_path, journal)
    for name in NAMES:  # physical NICs (not veth): their carrier events may come late, so polled
        kernel._links[name] = replace(kernel._links[name], kind="e1000")
    carriers = {"qfe0": True, "qfe1": True}
    reads: list[str] = []

    class Carriers(CarrierReader):
        def __call__(self, ifname: str) -> bool | None:
            reads.append(ifname)
            return carriers.get(ifname)

    clock = [5000.0]
    runtime._carriers = Carriers()
    monkeypatch.setattr(wakeups, "_now", lambda: clock[0])
    loop = _Loop()

    async def scenario() -> None:
        assert await runtime._resync()
        assert runtime._polled() == NAMES
        _running(runtime, loop)
        runtime._next_poll = runtime._next_store = clock[0]
        runtime._drain()  # as at start: arms the timer for the polls
        for _ in range(6):  # the clock's turns, polls due, nothing changed
            assert runtime._timer_at is not None
            clock[0] = max(clock[0], runtime._timer_at)
            runtime._on_timer()
            assert runtime._job is None and not runtime._inbox and not runtime._busy
            assert runtime._next_poll > clock[0] and loop.armed[-1] > clock[0]
        assert reads.count("qfe0") == 6
        carriers["qfe0"] = False
        runtime._timer_at = None  # the fake loop's timers never fire: the next one, by hand
        clock[0] = max(clock[0], runtime._next_poll)
        runtime._on_timer()
        assert runtime._job is not None  # the carrier loss was stepped: its apply is under way
        await _job_over(runtime)
        if runtime._timer is not None:
            runtime._timer.cancel()

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()

    assert "The link has gone down on qfe0" in journal
    assert "Successfully failed over from NIC qfe0 to NIC qfe1" in journal


def test_an_apply_takes_the_default_routers_of_the_store_as_it_is_now(tmp_path: Path) -> None:
    """The store is not read again before each move (a stat tells whether it is another
    file since the last read); a store another command rewrote is."""
    journal: list[str] = []
    runtime, _kernel = _runtime(tmp_path, journal)
    reads = 0
    load = runtime.store.load

    def counted() -> Stored:
        nonlocal reads
        reads += 1
        return load()

    runtime.store.load = counted  # type: ignore[method-assign]
    try:
        assert asyncio.run(runtime._resync())
    finally:
        runtime.announcer.close()
    first = reads
    assert runtime.keeper.routers() == (IPv4Address("192.0.2.1"),)
    assert runtime.keeper.routers() == (IPv4Address("192.0.2.1"),)
    assert reads == first  # unchanged: no read
    other = Store(tmp_path)  # another command's write, within the same clock tick as can be
    for router in ("198.51.100.1", "203.0.113.1"):
        other.save(replace(other.load(), defaultrouters=(IPv4Address(router),)))
        assert runtime.keeper.routers() == (IPv4Address(router),)
    assert reads == first + 2


def test_a_store_rewritten_within_one_tick_of_the_clock_is_seen_by_the_poll(tmp_path: Path) -> None:
    """The store poll tells a new file as the apply's routers do (inode, size and mtime):
    with the mtime alone, ``ifconfig``'s save within one tick of a coarse file clock
    after the daemon's own looked unchanged, and the change waited for the next rescan."""
    journal: list[str] = []
    runtime, _kernel = _runtime(tmp_path, journal)
    try:
        assert asyncio.run(runtime._resync())
    finally:
        runtime.announcer.close()
    runtime._poll_store()
    assert not runtime._resync_wanted  # nothing new
    path = runtime.store.path
    seen = os.stat(path)
    other = Store(tmp_path)  # another command's save
    other.save(replace(other.load(), defaultrouters=(IPv4Address("198.51.100.1"),)))
    os.utime(path, ns=(seen.st_atime_ns, seen.st_mtime_ns))  # the same tick of the clock
    runtime._poll_store()
    assert runtime._resync_wanted
    runtime._resync_wanted = False
    runtime._poll_store()
    assert not runtime._resync_wanted  # seen once


def test_family_of_the_example_is_ipv4_only() -> None:
    """The scenarios above move IPv4 data addresses only (a guard on the fixture)."""
    _fresh, _env, config = _booted()
    assert all(lg.family is Family.INET for itf in config.interfaces for lg in itf.logicals
               if lg.is_data and itf.name in NAMES)


def test_what_comes_in_during_a_step_waits_for_it_no_step_is_taken_inside_another(tmp_path: Path) -> None:
    """One entry, no re-entry (illumos asserts its timeouts never re-enter): an
    event posted while a step is under way (as a socket's reader would, were it
    run from inside one) is stepped after that step and its effects, not inside it."""
    journal: list[str] = []
    runtime, _kernel = _runtime(tmp_path, journal)
    calls: list[str] = []
    step = runtime.machine.step

    def stepping(event: Event) -> list[Effect]:
        calls.append(f"in {type(event).__name__}")
        if isinstance(event, LinkChanged):
            runtime.post(Tick(event.now))  # arrives meanwhile
            assert calls[-1].startswith("in"), "stepped inside the step"
        effects = step(event)
        calls.append(f"out {type(event).__name__}")
        return effects

    async def scenario() -> None:
        assert await runtime._resync()
        _running(runtime, asyncio.get_running_loop())
        runtime.machine.step = stepping  # type: ignore[method-assign]
        runtime.post(LinkChanged(0.0, "qfe1", True))  # no change: no apply
        assert not runtime._inbox and runtime._job is None
        if runtime._timer is not None:
            runtime._timer.cancel()

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()
    assert calls == ["in LinkChanged", "out LinkChanged", "in Tick", "out Tick"]


def test_a_stop_that_comes_during_an_apply_is_taken_once_the_apply_is_over(tmp_path: Path) -> None:
    """SIGTERM arrives as an event like any other: the failover under way is
    finished (addresses moved, lines logged) before the loop ends."""
    journal: list[str] = []
    runtime, kernel = _runtime(tmp_path, journal)
    index = next(lk.index for lk in kernel.state().links if lk.name == "qfe0")

    async def scenario() -> None:
        assert await runtime._resync()
        kernel.set_carrier("qfe0", False)
        _running(runtime, asyncio.get_running_loop())
        runtime._take_link_events([LinkEvent(index, "qfe0", False, False)])
        assert runtime._job is not None
        runtime.stop()
        assert runtime._finished is not None and not runtime._finished.done()
        await runtime._finished
        assert runtime.stopping.is_set()
        if runtime._timer is not None:
            runtime._timer.cancel()

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()
    assert _home_of(kernel, DATA0) == "qfe1"
    assert "Successfully failed over from NIC qfe0 to NIC qfe1" in journal


def test_a_step_that_raises_ends_the_loop_with_its_exception(tmp_path: Path) -> None:
    """A bug in a step stops the daemon (systemd restarts it) rather than
    leaving a loop that no longer steps: ``run`` raises what the step raised,
    and nothing is stepped after it."""
    journal: list[str] = []
    runtime, _kernel = _runtime(tmp_path, journal)
    steps: list[Event] = []

    def broken(event: Event) -> list[Effect]:
        steps.append(event)
        raise ZeroDivisionError("a bug")

    async def scenario() -> None:
        assert await runtime._resync()
        _running(runtime, asyncio.get_running_loop())
        runtime.machine.step = broken  # type: ignore[method-assign]
        runtime.post(Tick(1.0))
        runtime.post(Tick(2.0))
        assert runtime._finished is not None
        with pytest.raises(ZeroDivisionError):
            await runtime._finished

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()
    assert steps == [Tick(1.0)]


def test_replies_that_came_during_a_job_are_stepped_before_the_clocks_tick_judges_losses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timer fires while an apply runs and probe replies come in after it:
    all wait on the inbox.  The Tick judges probes at the time it is taken, so
    the replies that came before it are stepped first; judged behind them,
    their probes would count as lost on every NIC at once (a group failure the
    daemon's own delay made)."""
    journal: list[str] = []
    runtime, kernel = _runtime(tmp_path, journal)
    index = next(lk.index for lk in kernel.state().links if lk.name == "qfe0")
    stepped: list[str] = []
    step = runtime.machine.step

    def recording(event: Event) -> list[Effect]:
        stepped.append(type(event).__name__)
        return step(event)

    clock = [0.0]
    monkeypatch.setattr(wakeups, "_now", lambda: clock[0])

    async def scenario() -> None:
        assert await runtime._resync()
        kernel.set_carrier("qfe0", False)
        _running(runtime, asyncio.get_running_loop())
        runtime.machine.step = recording  # type: ignore[method-assign]
        runtime._take_link_events([LinkEvent(index, "qfe0", False, False)])
        assert runtime._job is not None  # the failover's apply is under way
        deadline = runtime.machine.next_deadline()
        assert deadline is not None
        clock[0] = deadline + 1.0  # the machine's deadline has passed: the clock's turn has a Tick
        runtime.post(wakeups.DUE)  # the timer fired during the apply
        runtime.post(ProbeReplied(deadline + 0.5, "qfe1", Family.INET, 1, IPv4Address("192.0.2.1"), 1,
                                  ProbeKind.UNICAST))  # then a reply came in
        await _job_over(runtime)
        if runtime._timer is not None:
            runtime._timer.cancel()

    try:
        asyncio.run(scenario())
    finally:
        runtime.announcer.close()
    after = stepped[stepped.index("LinkChanged") + 1:]
    assert "Tick" in after and "ProbeReplied" in after, stepped
    assert after.index("ProbeReplied") < after.index("Tick"), stepped
