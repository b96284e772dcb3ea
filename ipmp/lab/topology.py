"""A built lab network: run commands in its namespaces, inspect it, inject failures, remove it.

The network is four namespaces around one software switch, built by
:func:`ipmp.lab.wiring.build`, the one builder the lab, the tests and the
benchmarks share, so that every measurement is made on the same wiring::

    <prefix>-host             <prefix>-sw                    <prefix>-rt
    nic0 ---- veth ---- h0p -+                  +- rtp ---- veth ---- rt0  (router4, router6)
    nic1 ---- veth ---- h1p -+-- br0 (bridge) --+
    ...                      |                  +- pep ---- veth ---- pe0  (peer4, peer6)
                                                                  <prefix>-peer

* ``host`` is where the product runs.  Its NICs are created admin-DOWN with no
  addresses: configuring them is the product's job.  Only ``lo`` is up.
* ``sw`` holds a plain learning bridge: no STP, forward delay 0, multicast
  snooping off (so IPv6 neighbour discovery and GARPs are flooded like on a
  dumb switch).  Nothing in ``sw`` has an address or sends anything.
* ``rt`` is the default router and the natural probe target; it forwards, and
  the kernel answers ICMP echo.  ``peer`` is a second station on the link
  (the "client" in failover drills); its default route points at the router.

Everything is created *inside* its namespace (``ip link add ... netns X``), so
the root namespace is never touched, and deleting the four namespaces removes
every link.  MAC addresses are fixed (locally administered) and depend only on
the NIC's index, never on the prefix, so golden outputs stay the same from run
to run.

Failure injection (all done on the switch side, the host never notices how):

* :meth:`Topology.fail_link` -- carrier loss: the switch-side veth end goes
  admin-down, so the host NIC loses carrier (IFF_RUNNING clears).
* :meth:`Topology.fail_silent` -- the port is taken out of the bridge
  (``nomaster``) but stays up: the host keeps carrier and can still transmit,
  yet nothing gets through in either direction.  This is deliberately *not*
  done with the bridge port state (``bridge link set state 0``): the kernel
  resets a disabled port to forwarding on every carrier change of that port,
  including one caused by the product bringing its NIC down and up, which
  would silently end the injected failure.  Detaching survives that, so the
  two failure kinds can be combined freely on one port.
* :meth:`Topology.router_down` -- the router's switch port goes down; the host
  keeps carrier and just stops hearing from the router.

Commands run through iproute2 (``ip -batch`` keeps a build at a few dozen
milliseconds), never through pyroute2: the lab must not share code paths with
the product it tests.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Unpack

from ipmp.lab.addressing import (
    BRIDGE,
    PEER_IFNAME,
    PEER_MAC,
    PEER_PORT,
    ROLE_SUFFIX,
    ROUTER_IFNAME,
    ROUTER_MAC,
    ROUTER_PORT,
    AddressLike,
    IPInterface,
    bare_address,
)
from ipmp.lab.errors import CommandError, LabError
from ipmp.lab.pingjob import PingerRun, PingJob, PingOptions, pinger_env, stop_process
from ipmp.lab.pingreport import PingReport, parse_output
from ipmp.lab.procs import netns_list

__all__ = ["DEFAULT_TIMEOUT", "LinkInfo", "Topology", "destroy"]

_ROLE_ALIASES = {"sw": "switch", "rt": "router"}

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class LinkInfo:
    """What ``ip link`` says about one interface."""

    ifname: str
    admin_up: bool  # IFF_UP
    carrier: bool  # LOWER_UP: the link layer is up
    operstate: str  # "UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN", ...
    mac: str
    master: str | None


@dataclass(eq=False)
class Topology:
    """A built lab network.  Create it with :func:`build`; it is a context manager."""

    prefix: str
    host: str  # namespace names
    switch: str
    router: str
    peer: str
    nics: tuple[str, ...]
    ports: dict[str, str]  # host NIC -> its switch-side port (in ``switch``)
    macs: dict[str, str]  # host NIC -> MAC
    router4: ipaddress.IPv4Interface | None
    peer4: ipaddress.IPv4Interface | None
    router6: ipaddress.IPv6Interface | None
    peer6: ipaddress.IPv6Interface | None
    extra_router_addrs: tuple[IPInterface, ...] = ()
    extra_peer_addrs: tuple[IPInterface, ...] = ()
    bridge: str = BRIDGE
    router_ifname: str = ROUTER_IFNAME
    peer_ifname: str = PEER_IFNAME
    router_port: str = ROUTER_PORT
    peer_port: str = PEER_PORT
    router_mac: str = ROUTER_MAC
    peer_mac: str = PEER_MAC
    # Namespaces this object created (only these are ever deleted).
    _created: list[str] = field(default_factory=list, repr=False)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _link_failed: set[str] = field(default_factory=set, repr=False)
    _silent_failed: set[str] = field(default_factory=set, repr=False)
    _destroyed: bool = field(default=False, repr=False)

    # ----------------------------------------------------------- names
    @property
    def namespaces(self) -> tuple[str, str, str, str]:
        return (self.host, self.switch, self.router, self.peer)

    def ns(self, which: str) -> str:
        """Namespace name for a role (host/switch/sw/router/rt/peer) or one of ours.

        Refusing anything else guarantees that lab commands only ever run in
        namespaces this topology owns.
        """
        role = _ROLE_ALIASES.get(which, which)
        if role in ROLE_SUFFIX:
            return str(getattr(self, role))
        if which in self.namespaces:
            return which
        raise ValueError(f"not a namespace of topology {self.prefix}: {which!r}")

    def port(self, nic: str) -> str:
        try:
            return self.ports[nic]
        except KeyError:
            raise ValueError(f"not a host NIC of this topology: {nic!r}") from None

    def router_ip(self, version: int = 4) -> str:
        """The router's address without prefix length, e.g. '192.0.2.1'."""
        iface = self.router4 if version == 4 else self.router6
        if iface is None:
            raise LabError(f"router has no IPv{version} address in this topology")
        return str(iface.ip)

    def peer_ip(self, version: int = 4) -> str:
        iface = self.peer4 if version == 4 else self.peer6
        if iface is None:
            raise LabError(f"peer has no IPv{version} address in this topology")
        return str(iface.ip)

    @property
    def failed_links(self) -> frozenset[str]:
        return frozenset(self._link_failed)

    @property
    def silent_failures(self) -> frozenset[str]:
        return frozenset(self._silent_failed)

    # ------------------------------------------------------- commands
    def _alive(self) -> None:
        if self._destroyed:
            raise LabError(f"topology {self.prefix} has been destroyed")

    def _cmd(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = DEFAULT_TIMEOUT,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def run(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = DEFAULT_TIMEOUT,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside namespace ``ns`` (``ip netns exec``), capturing text output.

        ``ip netns exec`` also mounts a private /sys, so /sys/class/net shows
        the namespace's own interfaces.
        """
        self._alive()
        return self._cmd(
            ["ip", "netns", "exec", self.ns(ns), *argv], check=check, timeout=timeout, input=input, env=env
        )

    def exec_host(
        self, argv: Sequence[str], *, check: bool = True, timeout: float | None = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return self.run("host", argv, check=check, timeout=timeout)

    def ip(
        self, ns: str, *args: str, check: bool = True, timeout: float | None = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """``ip -n <ns> ARGS``: cheaper than :meth:`run` (no exec, no /sys remount)."""
        self._alive()
        return self._cmd(["ip", "-n", self.ns(ns), *args], check=check, timeout=timeout)

    def ip_json(self, ns: str, *args: str) -> Any:
        out = self.ip(ns, "-j", *args).stdout.strip()
        return json.loads(out) if out else []

    def batch(self, ns: str | None, lines: Iterable[str], *, force: bool = False) -> None:
        """Run iproute2 commands, one a line, with ``ip -batch`` (in ``ns``, or the caller's)."""
        argv = ["ip"]
        if ns is not None:
            argv += ["-n", ns]
        if force:
            argv.append("-force")
        self._cmd([*argv, "-batch", "-"], input="".join(line + "\n" for line in lines), check=not force)

    def popen(self, ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``ns`` in the background.

        The process is tracked and, if still running, terminated (by its pid)
        when the topology is destroyed: a process left inside a deleted
        namespace would keep that namespace -- and its links -- alive.  ``ip
        netns exec`` execs in place, so the pid is the command's own.
        """
        self._alive()
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(ns), *argv], **kwargs
        )
        self._procs = [p for p in self._procs if p.poll() is None]
        self._procs.append(proc)
        return proc

    def add_namespaces(self) -> None:
        """Create the four namespaces; a name that already exists is an error, and not ours."""
        for name in self.namespaces:
            # Recorded *before* the command: if we are interrupted while `ip`
            # runs, the namespace may exist and must still be cleaned up.
            self._created.append(name)
            proc = self._cmd(["ip", "netns", "add", name], check=False)
            if proc.returncode != 0:
                self._created.remove(name)  # e.g. it already existed: not ours
                raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        _live.add(self)

    # ------------------------------------------------------ inspection
    def link(self, ns: str, ifname: str) -> LinkInfo:
        doc = self.ip_json(ns, "link", "show", "dev", ifname)
        if not doc:
            raise LabError(f"no interface {ifname} in {self.ns(ns)}")
        d = doc[0]
        flags = set(d.get("flags", ()))
        return LinkInfo(
            ifname=str(d["ifname"]),
            admin_up="UP" in flags,
            carrier="LOWER_UP" in flags,
            operstate=str(d.get("operstate", "UNKNOWN")),
            mac=str(d.get("address", "")),
            master=d.get("master"),
        )

    def carrier(self, nic: str) -> bool:
        """Whether host NIC ``nic`` has carrier (only meaningful while it is admin-up)."""
        self.port(nic)
        return self.link("host", nic).carrier

    def neighbour_mac(self, ns: str, address: AddressLike, dev: str | None = None) -> str | None:
        """The link-layer address ``ns`` has cached for ``address``, or None.

        Entries without one (INCOMPLETE, FAILED) count as None.
        """
        args = ["neigh", "show", "to", bare_address(address)]
        if dev is not None:
            args += ["dev", dev]
        for entry in self.ip_json(ns, *args):
            mac = entry.get("lladdr")
            if mac:
                return str(mac)
        return None

    def flush_neighbours(self, ns: str) -> None:
        """Forget every neighbour cache entry in ``ns`` (both families)."""
        self.ip(ns, "neigh", "flush", "all")

    # ------------------------------------------------- failure injection
    def fail_link(self, nic: str) -> None:
        """Carrier loss on ``nic``: its switch-side veth end goes admin-down.

        Returns when the command is done; the host sees IFF_RUNNING clear a
        fraction of a millisecond later (the kernel's linkwatch worker).
        """
        self.ip("switch", "link", "set", "dev", self.port(nic), "down")
        self._link_failed.add(nic)

    def repair_link(self, nic: str) -> None:
        self.ip("switch", "link", "set", "dev", self.port(nic), "up")
        self._link_failed.discard(nic)

    def fail_silent(self, nic: str) -> None:
        """Silent failure of ``nic``: carrier stays up, no frame passes either way.

        The switch port is detached from the bridge but left up (see the module
        docstring for why not ``bridge link set state 0``).
        """
        self.ip("switch", "link", "set", "dev", self.port(nic), "nomaster")
        self._silent_failed.add(nic)

    def repair_silent(self, nic: str) -> None:
        # With STP off the port forwards as soon as it is enslaved (given
        # carrier); the bridge relearns the NIC's MAC from its next frame.
        self.ip("switch", "link", "set", "dev", self.port(nic), "master", self.bridge)
        self._silent_failed.discard(nic)

    def router_down(self) -> None:
        """The router vanishes from the link; host NICs keep carrier."""
        self.ip("switch", "link", "set", "dev", self.router_port, "down")

    def router_up(self) -> None:
        self.ip("switch", "link", "set", "dev", self.router_port, "up")

    # ------------------------------------------------------------ pinging
    def ping(
        self, ns: str, addrs: Sequence[AddressLike], *, count: int = 5, **options: Unpack[PingOptions]
    ) -> PingReport:
        """Ping ``addrs`` from ``ns`` with :mod:`ipmp.lab.pinger`; blocks until done.

        ``options``: ``interval``, ``timeout``, ``source``, ``device`` (see :class:`PingOptions`).
        """
        if count < 1:
            raise ValueError("ping() needs count >= 1; use start_ping() for open-ended runs")
        run = PingerRun(addrs, count, **options)
        # Generous: interpreter start-up plus the run plus the reply timeout.
        limit = 10.0 + count * run.interval + run.timeout
        proc = self.run(ns, run.argv(ready=False), check=False, timeout=limit, env=pinger_env())
        if proc.returncode != 0:
            raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return parse_output(proc.stdout)

    def start_ping(
        self,
        ns: str,
        addrs: Sequence[AddressLike],
        *,
        count: int = 0,
        ready_timeout: float = 10.0,
        **options: Unpack[PingOptions],
    ) -> PingJob:
        """Start pinging in the background; returns once the pinger is sending.

        ``count=0`` pings until :meth:`PingJob.stop`.  Use the job as a context
        manager so that it is stopped on errors too.  ``options`` as for :meth:`ping`.
        """
        argv = PingerRun(addrs, count, **options).argv(ready=True)
        proc = self.popen(
            ns,
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=pinger_env(),
        )
        job = PingJob(proc)
        try:
            job.wait_ready(ready_timeout)
        except BaseException:
            job.kill()
            raise
        return job

    # ------------------------------------------------------------ teardown
    def release(self) -> None:
        """Hand the namespaces to another process: this one no longer removes them at exit.

        ``ipmp-lab up`` leaves its lab running when it exits; ``ipmp-lab
        down``, another process, rebuilds the record and adopts them (:meth:`adopt`).
        """
        _live.discard(self)

    def adopt(self, names: Iterable[str]) -> None:
        """Own these existing namespaces of the topology: :meth:`destroy` removes them."""
        mine = set(self.namespaces)
        self._created.extend(n for n in names if n in mine and n not in self._created)

    def destroy(self) -> None:
        """Delete the namespaces this object created; idempotent.

        Background processes started with :meth:`popen` are stopped first (by
        pid).  Any *other* process still inside is not ours to kill, so the
        namespaces are deleted anyway and then LabError names the pids: such a
        process keeps its namespace -- and its links -- alive, nameless, until
        it exits, which is a leak the caller has to fix.
        """
        for proc in self._procs:
            stop_process(proc)
        self._procs.clear()
        self._destroyed = True
        mine = list(self._created)
        if not mine:
            _live.discard(self)
            return
        stray = self._batch_output(f"netns pids {name}" for name in mine).split()
        # One batch with -force: names already gone just print an error.
        self.batch(None, (f"netns delete {name}" for name in mine), force=True)
        left = set(mine) & netns_list()
        for name in left:
            self._cmd(["ip", "netns", "delete", name], check=False)
        left = set(mine) & netns_list()
        self._created[:] = [n for n in mine if n in left]
        if left:
            raise LabError(f"could not delete namespaces: {sorted(left)}")
        _live.discard(self)
        if stray:
            raise LabError(
                f"processes still running in the deleted namespaces of {self.prefix}: pids {', '.join(stray)}"
            )

    def _batch_output(self, lines: Iterable[str]) -> str:
        return self._cmd(
            ["ip", "-force", "-batch", "-"], input="".join(line + "\n" for line in lines), check=False
        ).stdout

    def __enter__(self) -> Topology:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()


# Topologies not yet destroyed, so an interpreter exiting early (sys.exit in a
# test helper, an unhandled error outside pytest) still cleans up.  Strong
# references on purpose: a topology dropped without destroy() must not take
# its namespaces' only record with it.
_live: set[Topology] = set()


@atexit.register
def _destroy_leftovers() -> None:
    for topo in list(_live):
        try:
            topo.destroy()
        except Exception as exc:  # keep going: other topologies still need deleting
            print(f"ipmp.lab: cleanup of {topo.prefix} failed: {exc}", file=sys.stderr)


def destroy(topo: Topology) -> None:
    """Delete ``topo``'s namespaces (same as ``topo.destroy()``)."""
    topo.destroy()

