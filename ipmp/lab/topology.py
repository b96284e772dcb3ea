"""The lab network: four namespaces around one software switch.

This is the one topology builder the lab, the tests and the benchmarks share,
so that every measurement is made on the same wiring::

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
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import count as _counter
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict, Unpack

from ipmp.lab.pinger import PingReport, parse_output
from ipmp.program import python_module

__all__ = [
    "BRIDGE",
    "PEER_IFNAME",
    "PEER_MAC",
    "ROUTER_IFNAME",
    "ROUTER_MAC",
    "CommandError",
    "LabError",
    "LinkInfo",
    "PingJob",
    "Topology",
    "build",
    "destroy",
    "host_mac",
    "host_port",
    "unique_prefix",
]

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
AddressLike = str | ipaddress.IPv4Address | ipaddress.IPv6Address | IPInterface

BRIDGE = "br0"
ROUTER_IFNAME = "rt0"
PEER_IFNAME = "pe0"
ROUTER_PORT = "rtp"
PEER_PORT = "pep"
# Host NIC i is 02:00:00:00:01:<i+1>; router and peer get their own "blocks";
# the switch's own ports use fd/fe so that every MAC on the wire is fixed.
ROUTER_MAC = "02:00:00:00:02:01"
PEER_MAC = "02:00:00:00:03:01"
_BRIDGE_MAC = "02:00:00:00:fd:00"
_ROUTER_PORT_MAC = "02:00:00:00:fd:01"
_PEER_PORT_MAC = "02:00:00:00:fd:02"
MAX_NICS = 200

_ROLE_SUFFIX = {"host": "host", "switch": "sw", "router": "rt", "peer": "peer"}
_ROLE_ALIASES = {"sw": "switch", "rt": "router"}
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# Names the kernel or sysctl treats specially in every namespace.
_RESERVED_IFNAMES = {"lo", "all", "default", ".", ".."}

DEFAULT_TIMEOUT = 30.0


class LabError(RuntimeError):
    """The lab could not do what was asked (the environment, not the product)."""


class CommandError(subprocess.CalledProcessError, LabError):
    """A command failed; unlike CalledProcessError, str() shows its stderr."""

    def __str__(self) -> str:
        err = self.stderr.strip() if isinstance(self.stderr, str) else ""
        return f"{super().__str__()}{': ' + err if err else ''}"


def host_mac(index: int) -> str:
    """The MAC of host NIC number ``index`` (0-based) in every topology."""
    if not 0 <= index < MAX_NICS:
        raise ValueError(f"NIC index out of range: {index}")
    return f"02:00:00:00:01:{index + 1:02x}"


def host_port(index: int) -> str:
    """Switch-side port name of host NIC number ``index``."""
    return f"h{index}p"


def _host_port_mac(index: int) -> str:
    return f"02:00:00:00:fe:{index + 1:02x}"


_sequence = _counter()
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if not n:
            return out


def unique_prefix(tag: str = "ipt") -> str:
    """A short name prefix unique to this process and call, e.g. ``ipt1ny0k3q``.

    pid + counter keeps concurrent runs apart and makes leftovers traceable to
    a process; the random tail guards against a recycled pid meeting a leftover
    from a killed run (build refuses existing names anyway).
    """
    if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", tag):
        raise ValueError(f"tag must be 1-6 lower-case letters/digits: {tag!r}")
    rand = "".join(secrets.choice(_B36) for _ in range(3))
    return f"{tag}{_b36(os.getpid())}{_b36(next(_sequence))}{rand}"


def _bare(address: AddressLike) -> str:
    """'192.0.2.1/24', IPv4Interface(...), IPv4Address(...) -> '192.0.2.1'."""
    if isinstance(address, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(address.ip)
    text = str(address).split("/")[0]
    ipaddress.ip_address(text.split("%")[0])  # validate early, before any command
    return text


def _iface4(text: str | None, what: str) -> ipaddress.IPv4Interface | None:
    iface = _iface(text, what)
    if iface is not None and not isinstance(iface, ipaddress.IPv4Interface):
        raise ValueError(f"{what}: not an IPv4 address: {text!r}")
    return iface


def _iface6(text: str | None, what: str) -> ipaddress.IPv6Interface | None:
    iface = _iface(text, what)
    if iface is not None and not isinstance(iface, ipaddress.IPv6Interface):
        raise ValueError(f"{what}: not an IPv6 address: {text!r}")
    return iface


def _iface(text: str | None, what: str) -> IPInterface | None:
    if text is None:
        return None
    # Without an explicit length ip_interface() would silently pick /32 or
    # /128, which makes the router unreachable in a surprising way.
    if "/" not in text:
        raise ValueError(f"{what}: needs a prefix length: {text!r}")
    return ipaddress.ip_interface(text)


def _check_present(iface: IPInterface | None) -> IPInterface:
    assert iface is not None  # only None for a None input, which callers never pass
    return iface


def _check_ifname(name: str) -> None:
    # The kernel's rules (dev_valid_name) plus a few names that would clash
    # with sysctl directories or the loopback device.
    if not name or len(name) > 15:
        raise ValueError(f"interface name must be 1-15 characters: {name!r}")
    if name in _RESERVED_IFNAMES or any(c in name for c in "/:") or not name.isprintable():
        raise ValueError(f"invalid interface name: {name!r}")
    if any(c.isspace() for c in name) or not name.isascii():
        raise ValueError(f"invalid interface name: {name!r}")


def _addr_args(iface: IPInterface, dev: str) -> str:
    # nodad: router and peer addresses must answer at once, not after ~1-2 s
    # of duplicate address detection.
    return f"addr add {iface} dev {dev}" + (" nodad" if iface.version == 6 else "")


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
        if role in _ROLE_SUFFIX:
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

    def _batch(self, ns: str | None, lines: Iterable[str], *, force: bool = False) -> None:
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
        args = ["neigh", "show", "to", _bare(address)]
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
        self, ns: str, addrs: Sequence[AddressLike], *, count: int = 5, **options: Unpack[_PingOptions]
    ) -> PingReport:
        """Ping ``addrs`` from ``ns`` with :mod:`ipmp.lab.pinger`; blocks until done.

        ``options``: ``interval``, ``timeout``, ``source``, ``device`` (see :class:`_PingOptions`).
        """
        if count < 1:
            raise ValueError("ping() needs count >= 1; use start_ping() for open-ended runs")
        run = _PingerRun(addrs, count, **options)
        # Generous: interpreter start-up plus the run plus the reply timeout.
        limit = 10.0 + count * run.interval + run.timeout
        proc = self.run(ns, run.argv(ready=False), check=False, timeout=limit, env=_pinger_env())
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
        **options: Unpack[_PingOptions],
    ) -> PingJob:
        """Start pinging in the background; returns once the pinger is sending.

        ``count=0`` pings until :meth:`PingJob.stop`.  Use the job as a context
        manager so that it is stopped on errors too.  ``options`` as for :meth:`ping`.
        """
        argv = _PingerRun(addrs, count, **options).argv(ready=True)
        proc = self.popen(
            ns,
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_pinger_env(),
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
            _stop_process(proc)
        self._procs.clear()
        self._destroyed = True
        mine = list(self._created)
        if not mine:
            _live.discard(self)
            return
        stray = self._batch_output(f"netns pids {name}" for name in mine).split()
        # One batch with -force: names already gone just print an error.
        self._batch(None, (f"netns delete {name}" for name in mine), force=True)
        left = set(mine) & _list_netns()
        for name in left:
            self._cmd(["ip", "netns", "delete", name], check=False)
        left = set(mine) & _list_netns()
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


class _PingOptions(TypedDict, total=False):
    """The pinger settings :meth:`Topology.ping` and :meth:`Topology.start_ping` share.

    ``interval``: seconds between rounds (default 0.01); ``timeout``: a reply
    later than this counts as lost (default 1.0); ``source``: addresses to send
    from (default: the kernel picks); ``device``: the interface to bind to.
    """

    interval: float
    timeout: float
    source: Sequence[AddressLike]
    device: str | None


@dataclass(frozen=True)
class _PingerRun:
    """One run of :mod:`ipmp.lab.pinger`: its settings, defaults filled in, and its command line."""

    addrs: Sequence[AddressLike]
    count: int
    interval: float = 0.01
    timeout: float = 1.0
    source: Sequence[AddressLike] = ()
    device: str | None = None

    def argv(self, *, ready: bool) -> list[str]:
        argv = python_module("ipmp.lab.pinger", "--count", str(self.count))
        argv += ["--interval", repr(float(self.interval)), "--timeout", repr(float(self.timeout))]
        for src in self.source:
            argv += ["--source", _bare(src)]
        if self.device is not None:
            argv += ["--device", self.device]
        if ready:
            argv.append("--ready")
        return [*argv, "--", *(_bare(a) for a in self.addrs)]


class PingJob:
    """A background pinger (see :meth:`Topology.start_ping`)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.start_monotonic: float | None = None
        self._out = bytearray()
        self._err = bytearray()
        self._open: dict[int, bytearray] = {}
        if proc.stdout is not None:
            self._open[proc.stdout.fileno()] = self._out
        if proc.stderr is not None:
            self._open[proc.stderr.fileno()] = self._err

    @property
    def stderr(self) -> str:
        return self._err.decode(errors="replace")

    def _pump(self, deadline: float | None, stop_at_line: bool) -> None:
        # Raw os.read on the fds, never the file objects: mixing buffered reads
        # with select() would hide data inside Python's buffers.
        with selectors.DefaultSelector() as sel:
            for fd in self._open:
                sel.register(fd, selectors.EVENT_READ)
            while self._open:
                if stop_at_line and b"\n" in self._out:
                    return
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return
                for key, _ in sel.select(wait):
                    fd = int(key.fd)
                    chunk = os.read(fd, 65536)
                    if chunk:
                        self._open[fd] += chunk
                    else:
                        sel.unregister(fd)
                        del self._open[fd]

    def wait_ready(self, timeout: float = 10.0) -> float:
        """Block until the pinger has its sockets open; returns its start time (monotonic)."""
        self._pump(time.monotonic() + timeout, stop_at_line=True)
        line = bytes(self._out).split(b"\n", 1)[0]
        try:
            doc = json.loads(line) if b"\n" in self._out else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("event") != "ready":
            raise LabError(f"pinger did not start: {self.stderr.strip() or line.decode(errors='replace')}")
        self.start_monotonic = float(doc["start_monotonic"])
        return self.start_monotonic

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> PingReport:
        """Wait for the pinger to finish on its own (``count`` reached) and return its report."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._pump(deadline, stop_at_line=False)
        try:
            rc = self.proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise LabError("pinger did not finish in time") from None
        _close_streams(self.proc)
        if rc != 0:
            raise LabError(f"pinger failed (exit {rc}): {self.stderr.strip()}")
        return parse_output(self._out.decode())

    def stop(self, timeout: float = 10.0) -> PingReport:
        """Stop sending; the pinger still collects in-flight replies, then reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def kill(self) -> None:
        _stop_process(self.proc)

    def __enter__(self) -> PingJob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate one process we started, by its pid; escalate to SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _close_streams(proc)


def _close_streams(proc: subprocess.Popen[bytes]) -> None:
    # Unclosed pipes raise ResourceWarning at garbage collection, which the
    # test suite turns into errors.
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _pinger_env() -> dict[str, str]:
    # The pinger runs as `python -m ipmp.lab.pinger` in a fresh process; make
    # sure it imports this very checkout even when it is not installed.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _list_netns() -> set[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    # Lines look like "name" or "name (id: 3)".
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


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


def build(
    prefix: str,
    nics: Sequence[str] = ("nic0", "nic1"),
    *,
    router4: str | None = "192.0.2.1/24",
    peer4: str | None = "192.0.2.50/24",
    router6: str | None = "2001:db8::1/64",
    peer6: str | None = "2001:db8::50/64",
    extra_router_addrs: Sequence[str] = (),
    extra_peer_addrs: Sequence[str] = (),
) -> Topology:
    """Create the four namespaces and wire them; see the module docstring.

    Everything is validated before the first command runs.  If anything fails
    (or is interrupted) half-way, whatever was created is deleted and the
    error re-raised.  A name that already exists is an error, and such a
    namespace is never deleted: it is not ours.
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"prefix must match {_PREFIX_RE.pattern}: {prefix!r}")
    nics = tuple(nics)
    if not 1 <= len(nics) <= MAX_NICS:
        raise ValueError(f"need 1..{MAX_NICS} host NICs, got {len(nics)}")
    for nic in nics:
        _check_ifname(nic)
    if len(set(nics)) != len(nics):
        raise ValueError(f"duplicate NIC names: {nics}")
    r4 = _iface4(router4, "router4")
    p4 = _iface4(peer4, "peer4")
    r6 = _iface6(router6, "router6")
    p6 = _iface6(peer6, "peer6")
    extra_r: list[IPInterface] = []
    for a in extra_router_addrs:
        extra_r.append(_check_present(_iface(a, "extra_router_addrs")))
    extra_p: list[IPInterface] = []
    for a in extra_peer_addrs:
        extra_p.append(_check_present(_iface(a, "extra_peer_addrs")))

    names = {role: f"{prefix}-{suffix}" for role, suffix in _ROLE_SUFFIX.items()}
    topo = Topology(
        prefix=prefix,
        host=names["host"],
        switch=names["switch"],
        router=names["router"],
        peer=names["peer"],
        nics=nics,
        ports={nic: host_port(i) for i, nic in enumerate(nics)},
        macs={nic: host_mac(i) for i, nic in enumerate(nics)},
        router4=r4,
        peer4=p4,
        router6=r6,
        peer6=p6,
        extra_router_addrs=tuple(extra_r),
        extra_peer_addrs=tuple(extra_p),
    )
    try:
        _wire(topo)
    except BaseException:
        topo.destroy()
        raise
    return topo


def _sysctl(topo: Topology, ns: str, values: dict[str, str]) -> None:
    # A sysctl is per network namespace and only reachable from a process
    # inside it.  Plain sh + /proc rather than sysctl(8): procps is missing
    # from many minimal CI images.  Keys and values are ours, never user input.
    script = " && ".join(f"echo {v} > /proc/sys/{k}" for k, v in values.items())
    topo.run(ns, ["sh", "-c", script])


def _wire(topo: Topology) -> None:
    for name in topo.namespaces:
        # Recorded *before* the command: if we are interrupted while `ip`
        # runs, the namespace may exist and must still be cleaned up.
        topo._created.append(name)
        proc = topo._cmd(["ip", "netns", "add", name], check=False)
        if proc.returncode != 0:
            topo._created.remove(name)  # e.g. it already existed: not ours
            raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    _live.add(topo)

    # The switch: every veth is created from here with its other end placed
    # straight into the host/router/peer namespace.  addrgenmode none keeps
    # the switch silent (no IPv6 link-local, no DAD or MLD frames of its own).
    sw: list[str] = [
        "link set dev lo up",
        f"link add {topo.bridge} address {_BRIDGE_MAC} type bridge"
        " stp_state 0 forward_delay 0 mcast_snooping 0",
        f"link set dev {topo.bridge} addrgenmode none",
    ]
    ends = [
        (topo.ports[nic], _host_port_mac(i), nic, topo.macs[nic], topo.host)
        for i, nic in enumerate(topo.nics)
    ]
    ends.append((topo.router_port, _ROUTER_PORT_MAC, topo.router_ifname, topo.router_mac, topo.router))
    ends.append((topo.peer_port, _PEER_PORT_MAC, topo.peer_ifname, topo.peer_mac, topo.peer))
    for port, port_mac, far, far_mac, far_ns in ends:
        sw.append(
            f"link add {port} address {port_mac} type veth peer name {far} address {far_mac} netns {far_ns}"
        )
        sw.append(f"link set dev {port} addrgenmode none")
        sw.append(f"link set dev {port} master {topo.bridge} up")
    sw.append(f"link set dev {topo.bridge} up")
    topo._batch(topo.switch, sw)

    # Before the links come up: the router forwards, and neither station
    # runs DAD on its link-local address (it would be tentative for ~1-2 s).
    _sysctl(
        topo,
        "router",
        {
            "net/ipv4/ip_forward": "1",
            "net/ipv6/conf/all/forwarding": "1",
            f"net/ipv6/conf/{topo.router_ifname}/accept_dad": "0",
        },
    )
    _sysctl(topo, "peer", {f"net/ipv6/conf/{topo.peer_ifname}/accept_dad": "0"})

    rt = ["link set dev lo up", f"link set dev {topo.router_ifname} up"]
    rt += [
        _addr_args(a, topo.router_ifname)
        for a in (topo.router4, topo.router6, *topo.extra_router_addrs)
        if a is not None
    ]
    topo._batch(topo.router, rt)

    pe = ["link set dev lo up", f"link set dev {topo.peer_ifname} up"]
    pe += [
        _addr_args(a, topo.peer_ifname)
        for a in (topo.peer4, topo.peer6, *topo.extra_peer_addrs)
        if a is not None
    ]
    # The peer reaches off-link addresses through the router, if it can.
    for mine, gw in ((topo.peer4, topo.router4), (topo.peer6, topo.router6)):
        if mine is not None and gw is not None and gw.ip in mine.network and gw.ip != mine.ip:
            pe.append(f"route add default via {gw.ip} dev {topo.peer_ifname}")
    topo._batch(topo.peer, pe)

    # Host NICs stay down and bare: that is the product's job.
    topo._batch(topo.host, ["link set dev lo up"])
