"""Drive in.mpathd end to end in a lab topology: boot, run, observe, stop.

:class:`MpathdLab` owns one alternate root (a private copy of an
``examples/hostname.files`` folder under ``tmp_path`` with its own
``etc/default/mpathd``), boots it into the topology's host namespace with
``ipmp-boot`` and starts ``in.mpathd -d`` there with the test environment
(short quiet period and rescan interval, ``SUNW_NO_MPATHD`` so that nothing
else starts a daemon).  Each daemon is a :class:`Daemon`: its stdout+stderr
go through a pipe to a reader thread that stamps every line with
``time.monotonic()`` as it arrives (the daemon flushes each message) and also
copies it to a log file under ``tmp_path``, so a test can both wait for a
message and measure when it came.  CLOCK_MONOTONIC is system-wide, so those
stamps compare with the pinger's.

What the host looks like is read the Solaris way, with ``ifconfig -a4`` in
the host namespace, and parsed into :class:`Lif` records (logical name,
flags, address).  Every wait polls a condition with a generous deadline and
never sleeps for a fixed long time.

Cleanup: :meth:`MpathdLab.close` stops every daemon it started with SIGTERM
(SIGKILL after a grace period), by its own Popen object; the topology then
kills, by PID, anything else it started.  Only the fixture's namespaces and
documentation addresses are ever used.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ipmp.lab.pingjob import PingJob
from ipmp.lab.pingreport import PingReport, TargetStats
from ipmp.lab.topology import Topology
from ipmp.mpathd import control, protocol

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "hostname.files"
BIN = Path(sys.executable).parent
RESPONDER = Path(__file__).resolve().parent / "echo_responder.py"

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not become true in time (a test failure, with context)."""


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, *,
             interval: float = 0.02, context: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{context()}" if context is not None else ""
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# ifconfig -a parsing
# --------------------------------------------------------------------------

_HEADER = re.compile(r"^(?P<name>[^\s:]+(?::\d+)?): flags=(?P<hex>[0-9a-f]+)(?:<(?P<names>[^>]*)>)?")
# "\tinet 192.0.2.10 netmask ..." or "\tinet6 2001:db8::100/64 " (the prefix is dropped).
_INET = re.compile(r"^\tinet6? (?P<addr>[^\s/]+)(?:/\d+)? ")
_GROUP = re.compile(r"^\tgroupname (?P<group>\S+)")


@dataclass(frozen=True)
class Lif:
    """One logical interface of ``ifconfig -a4``."""

    name: str  # "qfe0" or "qfe0:2"
    flags: frozenset[str]
    address: str | None
    group: str | None = None

    @property
    def nic(self) -> str:
        return self.name.partition(":")[0]

    @property
    def unit(self) -> int:
        tail = self.name.partition(":")[2]
        return int(tail) if tail else 0

    @property
    def up(self) -> bool:
        return "UP" in self.flags


def parse_ifconfig(text: str) -> dict[str, Lif]:
    """``ifconfig -a4`` or ``-a6`` text -> logical name -> Lif (one family: names repeat across them)."""
    out: dict[str, Lif] = {}
    current: dict[str, Any] | None = None

    def flush() -> None:
        if current is not None:
            out[current["name"]] = Lif(current["name"], frozenset(current["flags"]), current["address"],
                                       current["group"])

    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            flush()
            names = m.group("names") or ""
            current = {"name": m.group("name"), "flags": [n for n in names.split(",") if n],
                       "address": None, "group": None}
            continue
        if current is None:
            continue
        if (m := _INET.match(line)) is not None:
            current["address"] = m.group("addr")
        elif (m := _GROUP.match(line)) is not None:
            current["group"] = m.group("group")
    flush()
    return out


@dataclass(frozen=True)
class Layout:
    """Who holds what, from one ``ifconfig -a4``."""

    lifs: dict[str, Lif]
    text: str

    def holders(self, address: str) -> list[Lif]:
        """Every UP logical that carries ``address``."""
        return [lif for lif in self.lifs.values() if lif.address == address and lif.up]

    def holder(self, address: str) -> Lif | None:
        """The one UP logical carrying ``address`` (None if none; an error if several)."""
        found = self.holders(address)
        assert len(found) <= 1, f"{address} is up on several logicals: {[f.name for f in found]}\n{self.text}"
        return found[0] if found else None

    def nic_of(self, address: str) -> str | None:
        lif = self.holder(address)
        return None if lif is None else lif.nic

    def nic_flags(self, nic: str) -> frozenset[str]:
        """Flags of unit 0 (where FAILED, OFFLINE, STANDBY, INACTIVE live)."""
        return self.lifs[nic].flags

    def of_nic(self, nic: str) -> list[Lif]:
        return sorted((lif for lif in self.lifs.values() if lif.nic == nic), key=lambda lif: lif.unit)

    def placement(self) -> dict[str, str]:
        """Every non-zero address that is UP -> the logical name holding it."""
        return {lif.address: lif.name for lif in self.lifs.values()
                if lif.up and lif.address not in (None, "0.0.0.0", "::") and lif.nic != "lo0"}


# --------------------------------------------------------------------------
# The daemon process
# --------------------------------------------------------------------------


#: What in.mpathd logs for the NICs of group prod (the exact texts), as patterns for
#: :meth:`Daemon.wait_line` once formatted with the NIC names.
FAILURE = "^NIC failure detected on {nic} of group prod$"
FAILOVER = "^Successfully failed over from NIC {src} to NIC {dst}$"
REPAIR = "^NIC repair detected on {nic} of group prod$"
FAILBACK = "^Successfully failed back to NIC {nic}$"
LINK_DOWN = "^The link has gone down on {nic}$"
LINK_UP = "^The link has come up on {nic}$"


@dataclass(frozen=True)
class LogLine:
    t: float  # time.monotonic() when the line was read
    text: str


class Daemon:
    """One ``in.mpathd -d`` process and its stamped output."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.started = time.monotonic()
        self.ready_at: float | None = None
        self.lines: list[LogLine] = []
        self.returncode: int | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, name=f"mpathd-log-{proc.pid}", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in iter(self.proc.stdout.readline, b""):
                stamp = time.monotonic()
                log.write(raw)
                log.flush()
                with self._lock:
                    self.lines.append(LogLine(stamp, raw.decode(errors="replace").rstrip("\n")))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def snapshot(self) -> list[LogLine]:
        with self._lock:
            return list(self.lines)

    def text(self) -> str:
        return "\n".join(line.text for line in self.snapshot())

    def matching(self, pattern: str, since: float = 0.0) -> list[LogLine]:
        """Lines matching the regex ``pattern`` (``re.search``) read at or after ``since``."""
        rx = re.compile(pattern)
        return [line for line in self.snapshot() if line.t >= since and rx.search(line.text)]

    def wait_line(self, pattern: str, *, since: float = 0.0, timeout: float = 10.0) -> LogLine:
        """The first line matching ``pattern`` read at or after ``since`` (waits for it)."""

        def found() -> LogLine | None:
            hits = self.matching(pattern, since)
            if hits:
                return hits[0]
            if not self.alive():
                raise AssertionError(f"in.mpathd exited ({self.proc.returncode}) before logging "
                                     f"{pattern!r}:\n{self.text()}")
            return None

        return wait_for(found, timeout, f"in.mpathd to log {pattern!r}",
                        context=lambda: f"log so far:\n{self.text()}")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 10.0) -> int:
        rc = self.proc.wait(timeout)
        self._thread.join(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.returncode = rc
        return rc

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it does not go; returns the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait_exit(timeout)


# --------------------------------------------------------------------------
# The echo responder (router namespace)
# --------------------------------------------------------------------------


class Responder:
    """``echo_responder.py`` running in the router namespace (see its docstring)."""

    def __init__(self, topo: Topology, *, loss: float = 0.0, delay_ms: float = 0.0, jitter_ms: float = 0.0,
                 seed: int = 1, addresses: Iterable[str] | None = None) -> None:
        self.topo = topo
        # Only the router namespace of this test's topology, never anything else.
        topo.run("router", ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all"])
        addrs = list(addresses) if addresses is not None else [topo.router_ip(4)]
        argv = [sys.executable, str(RESPONDER), "--loss", repr(loss), "--delay-ms", repr(delay_ms),
                "--jitter-ms", repr(jitter_ms), "--seed", str(seed)]
        for a in addrs:
            argv += ["--address", a]
        self.proc = topo.popen("router", argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        self._out = bytearray()
        self._err = bytearray()
        self._read_until(lambda: b"\n" in self._out, time.monotonic() + 10.0)
        first = bytes(self._out).split(b"\n", 1)[0]
        if first.strip() != b'{"event": "ready"}':
            self.stop()
            err = self._err.decode(errors="replace")
            raise AssertionError(f"echo responder did not start: {first!r} {err}")

    def _read_until(self, done: Callable[[], bool], deadline: float | None) -> None:
        pairs = ((self.proc.stdout, self._out), (self.proc.stderr, self._err))
        streams = {s.fileno(): buf for s, buf in pairs if s is not None and not s.closed}
        with selectors.DefaultSelector() as sel:
            for fd in streams:
                sel.register(fd, selectors.EVENT_READ)
            while streams and not done():
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return
                for key, _ in sel.select(wait):
                    chunk = os.read(int(key.fd), 65536)
                    if chunk:
                        streams[int(key.fd)] += chunk
                    else:
                        sel.unregister(key.fd)
                        del streams[int(key.fd)]

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """Stop it; returns its counters (empty if it printed none)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self._read_until(lambda: False, time.monotonic() + timeout)
        self.proc.wait(timeout)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        lines = [ln for ln in bytes(self._out).decode(errors="replace").splitlines() if ln.strip()]
        doc = json.loads(lines[-1]) if lines else {}
        return {k: int(v) for k, v in doc.items() if k != "event"}


# --------------------------------------------------------------------------
# The peer's pings
# --------------------------------------------------------------------------

#: The peer sends one echo to each data address every 10 ms.
PING_INTERVAL = 0.01
#: A reply later than this counts as lost (the pinger's own notion of loss).
PING_TIMEOUT = 0.5


def start_ping(topo: Topology, *addrs: str) -> PingJob:
    """100 echoes/s from the peer; returns once the peer has resolved every address."""
    job = topo.start_ping("peer", list(addrs), interval=PING_INTERVAL, timeout=PING_TIMEOUT)
    try:
        for addr in addrs:
            wait_for(lambda a=addr: topo.neighbour_mac("peer", a), 5.0, f"the peer to resolve {addr}")  # type: ignore[misc]
    except BaseException:
        job.kill()
        raise
    return job


def rel(report: PingReport, t: float) -> float:
    """A monotonic time as seconds into the pinger run."""
    return t - report.start_monotonic


def lost_after(stats: TargetStats, t_rel: float, interval: float) -> int:
    """Echoes scheduled at or after ``t_rel`` s into the pinger run that got no timely reply."""
    first_seq = int(t_rel / interval + 0.999999)
    return sum(max(0, r.last - max(r.first, first_seq) + 1) for r in stats.lost_ranges)


# --------------------------------------------------------------------------
# The lab
# --------------------------------------------------------------------------


class MpathdLab:
    """One example root booted into ``topo``'s host, with in.mpathd on it."""

    def __init__(self, topo: Topology, tmp_path: Path, example: str = "active-active", *,
                 fdt_ms: int | None = 700, failback: bool | None = True, quiet_period: float = 1.0,
                 scan_interval: float = 5.0, extra_config: str = "") -> None:
        self.topo = topo
        self.example = example
        self.tmp = tmp_path
        self.root = tmp_path / f"root-{topo.prefix}"
        shutil.copytree(EXAMPLES / example, self.root)
        self.quiet_period = quiet_period
        lines = []
        if fdt_ms is not None:
            lines.append(f"FAILURE_DETECTION_TIME={fdt_ms}")
        if failback is not None:
            lines.append(f"FAILBACK={'yes' if failback else 'no'}")
        (self.root / "etc" / "default").mkdir(parents=True, exist_ok=True)
        (self.root / "etc" / "default" / "mpathd").write_text("\n".join(lines) + "\n" + extra_config)
        self.env = ["env", f"IPMP_ROOT={self.root}", f"IPMP_FAILURE_DETECTION_QP={quiet_period:g}",
                    f"IPMP_IF_SCAN_INTERVAL={scan_interval:g}", "SUNW_NO_MPATHD=1"]
        self.daemons: list[Daemon] = []

    # ------------------------------------------------------------ running
    @property
    def daemon(self) -> Daemon:
        assert self.daemons, "no in.mpathd started"
        return self.daemons[-1]

    def boot(self) -> None:
        proc = self.topo.run("host", [*self.env, str(BIN / "ipmp-boot")], check=False)
        assert proc.returncode == 0, f"ipmp-boot failed ({proc.returncode}): {proc.stderr}"

    def start(self, *, timeout: float = 20.0, settle: bool = True) -> Daemon:
        """Start ``in.mpathd -d``; return once it answers on its control socket.

        With ``settle`` also wait until every grouped NIC is tracked with its
        probe targets, and until the quiet period is over, so probe-based
        detection is armed when the caller injects a failure.
        """
        n = len(self.daemons)
        log_path = self.tmp / f"in.mpathd-{self.topo.prefix}-{n}.log"
        proc = self.topo.popen("host", [*self.env, str(BIN / "in.mpathd"), "-d"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        daemon = Daemon(proc, log_path)
        self.daemons.append(daemon)

        def answering() -> bool:
            if not daemon.alive():
                raise AssertionError(f"in.mpathd exited ({proc.returncode}) at start:\n{daemon.text()}")
            return control.is_running(self.root, timeout=0.5)

        wait_for(answering, timeout, "in.mpathd to answer on its control socket",
                 context=daemon.text)
        daemon.ready_at = time.monotonic()
        if settle:
            wait_for(self._tracking, timeout, "in.mpathd to track every grouped NIC",
                     context=lambda: json.dumps(self.query(), indent=1))
            armed = daemon.ready_at + self.quiet_period + 0.3
            wait_for(lambda: time.monotonic() >= armed, self.quiet_period + 5, "the quiet period to end")
        return daemon

    def query(self) -> dict[str, Any]:
        reply = control.call(self.root, protocol.Request("query"), timeout=5.0)
        assert reply.ok, reply
        return reply.data

    def _tracking(self) -> bool:
        data = self.query()
        interfaces = data.get("interfaces", {})
        if set(interfaces) != set(self.topo.nics):
            return False
        for info in interfaces.values():
            for probe in info.get("probes", {}).values():
                if not probe.get("targets"):
                    return False
        return True

    def close(self) -> None:
        """Stop every daemon still running (SIGTERM, then SIGKILL)."""
        for daemon in self.daemons:
            if daemon.returncode is None:
                daemon.stop()

    # ----------------------------------------------------------- commands
    def ifconfig(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.topo.run("host", [*self.env, str(BIN / "ifconfig"), *args], check=False)

    def layout(self, family: int = 4) -> Layout:
        """``ifconfig -a4`` (or ``-a6``) parsed."""
        proc = self.ifconfig(f"-a{family}")
        assert proc.returncode == 0, f"ifconfig -a{family} failed: {proc.stderr}"
        return Layout(parse_ifconfig(proc.stdout), proc.stdout)

    def wait_layout(self, condition: Callable[[Layout], bool], what: str, timeout: float = 10.0,
                    family: int = 4) -> Layout:
        last: list[Layout] = []

        def check() -> Layout | None:
            lay = self.layout(family)
            last[:] = [lay]
            return lay if condition(lay) else None

        def context() -> str:
            shown = last[0].text if last else "(no ifconfig output)"
            log = self.daemon.text() if self.daemons else ""
            return f"ifconfig -a{family}:\n{shown}\nin.mpathd log:\n{log}"

        return wait_for(check, timeout, what, interval=0.05, context=context)

    def if_mpadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*self.env, sys.executable, "-m", "ipmp.cli.if_mpadm", *args]
        return self.topo.run("host", argv, check=False, env=_with_repo_path())

    def in_mpathd(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """Run another in.mpathd to completion (e.g. one that must refuse to start)."""
        return self.topo.run("host", [*self.env, str(BIN / "in.mpathd"), *args], check=False, timeout=timeout)


#: The ``make_lab`` fixture (conftest.py): ``make_lab(example, **MpathdLab kwargs)`` -> a booted lab.
MakeLab = Callable[..., MpathdLab]


def _with_repo_path() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def figures(test: str, **values: object) -> None:
    """Print measured figures; ``pytest -rP`` shows them for passed tests."""
    shown = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    print(f"FIGURES {test}: {shown}")
