"""What every benchmark shares: the lab, stamped observers, statistics, result rows.

Every topology is built with :func:`ipmp.lab.wiring.build` (the one builder
the lab, the tests and the benchmarks share).  Observers run as separate
processes inside the namespaces and stamp with ``time.monotonic()``;
CLOCK_MONOTONIC is system-wide, so all stamps of one run are on one clock:

* :class:`Agent` -- ``python -m bench.agent`` (raw netlink listener or link
  actor) in one namespace;
* :class:`Daemon` -- ``in.mpathd -d`` in the host namespace, each stderr line
  stamped by a reader thread as it arrives (the daemon flushes every message).

Cleanup: every process is started through ``Topology.popen`` and stopped by
its own pid; the topology is destroyed on exit (its namespaces only).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ipmp.lab.addressing import unique_prefix
from ipmp.lab.topology import Topology
from ipmp.lab.wiring import build
from ipmp.mpathd import control, protocol

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "hostname.files"
#: The console scripts of the environment running the benchmarks.
BIN = Path(sys.executable).parent

T = TypeVar("T")


# -- statistics ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default); NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    k = (len(data) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


@dataclass(frozen=True)
class Dist:
    n: int
    p50: float
    p99: float
    max: float
    min: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Dist:
        return cls(len(values), percentile(values, 50), percentile(values, 99),
                   max(values, default=math.nan), min(values, default=math.nan))

    def fmt(self, unit: str = "ms", digits: int = 2) -> str:
        return (f"p50 {self.p50:.{digits}f} / p99 {self.p99:.{digits}f} / max {self.max:.{digits}f} {unit}"
                f" (n={self.n})")


# -- results -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    target: str
    measured: str
    met: bool | None  # None: not applicable / could not be measured
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "target": self.target, "measured": self.measured,
                "met": self.met, "notes": self.notes}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Row:
        return cls(str(doc["figure"]), str(doc["target"]), str(doc["measured"]),
                   None if doc["met"] is None else bool(doc["met"]), [str(n) for n in doc.get("notes", [])])


def say(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.01) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# -- processes in namespaces ---------------------------------------------------------------------


def repo_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for our own Python processes in a namespace (imports this checkout)."""
    env = dict(os.environ)
    # A deployed package has its bytecode cached; an environment that forbids
    # writing it would have every command recompile ipmp at start-up.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


class _Stamped:
    """A process whose output lines are read by a thread and stamped on arrival."""

    def __init__(self, proc: subprocess.Popen[bytes], name: str) -> None:
        self.proc = proc
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name=name, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            stamp = time.monotonic()
            with self.cond:
                self.lines.append((stamp, raw.decode(errors="replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def mark(self) -> int:
        """An index to wait from (lines read so far)."""
        with self.cond:
            return len(self.lines)

    def text(self) -> str:
        with self.cond:
            return "\n".join(line for _, line in self.lines)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(timeout)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Agent(_Stamped):
    """``python -m bench.agent`` in namespace ``ns`` (see that module)."""

    def __init__(self, topo: Topology, ns: str, watch: str = "") -> None:
        argv = [sys.executable, "-m", "bench.agent"]
        if watch:
            argv += ["--watch", watch]
        proc = topo.popen(ns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, env=repo_env(), cwd=str(REPO))
        self.events: list[dict[str, Any]] = []
        super().__init__(proc, f"agent-{ns}")
        first = self.wait(lambda e: e.get("ev") == "ready", 0, 15.0)
        self.pid = int(first["pid"])

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            with self.cond:
                self.events.append(doc)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    def find(self, pred: Callable[[dict[str, Any]], bool], since: int = 0) -> dict[str, Any] | None:
        with self.cond:
            for event in self.events[since:]:
                if pred(event):
                    return event
        return None

    def wait(self, pred: Callable[[dict[str, Any]], bool], since: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            index = since
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if pred(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("agent: no matching event in time")
                if self.proc.poll() is not None and index >= len(self.events):
                    raise RuntimeError(f"agent exited ({self.proc.returncode})")
                self.cond.wait(left)

    def command(self, line: str, timeout: float = 10.0) -> dict[str, Any]:
        """Send one command; returns its ``done`` record (with ``t0`` = just before send)."""
        assert self.proc.stdin is not None
        since = self.mark()
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        reply = self.wait(lambda e: e.get("ev") in ("done", "error"), since, timeout)
        if reply["ev"] == "error" or reply.get("errno"):
            raise RuntimeError(f"agent command {line!r} failed: {reply}")
        return reply


Event = dict[str, Any]


def neigh_is(ip: str, mac: str) -> Callable[[Event], bool]:
    """An agent event: the neighbour entry for ``ip`` now holds ``mac``."""
    return lambda e: e.get("ev") == "neigh" and e.get("ip") == ip and e.get("mac") == mac


def addr_on(ifname: str, addr: str) -> Callable[[Event], bool]:
    """An agent event: ``addr`` was added on ``ifname``."""
    return lambda e: e.get("ev") == "newaddr" and e.get("ifname") == ifname and e.get("addr") == addr


class Daemon(_Stamped):
    """``in.mpathd -d`` in the host namespace of ``topo``, for the alternate root ``root``."""

    def __init__(self, topo: Topology, root: Path, env: dict[str, str],
                 argv: Sequence[str] = ("-d",)) -> None:
        self.root = root
        proc = topo.popen("host", [str(BIN / "in.mpathd"), *argv], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        super().__init__(proc, "in.mpathd-log")
        self.pid = proc.pid

    def wait_line(self, pattern: str, since: int, timeout: float) -> tuple[float, str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            index = since
            while True:
                while index < len(self.lines):
                    stamp, line = self.lines[index]
                    index += 1
                    if rx.search(line):
                        return stamp, line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"in.mpathd did not log {pattern!r} in {timeout:g} s; log tail:\n"
                                       + "\n".join(line for _, line in self.lines[-15:]))
                if self.proc.poll() is not None:
                    raise RuntimeError(f"in.mpathd exited ({self.proc.returncode}):\n" + self.text())
                self.cond.wait(min(left, 0.5))

    def find_line(self, pattern: str, since: int) -> tuple[float, str] | None:
        rx = re.compile(pattern)
        with self.cond:
            for stamp, line in self.lines[since:]:
                if rx.search(line):
                    return stamp, line
        return None

    def query(self) -> dict[str, Any]:
        reply = control.call(self.root, protocol.Request("query"), timeout=5.0)
        if not reply.ok:
            raise RuntimeError(f"in.mpathd query failed: {reply}")
        data: dict[str, Any] = reply.data
        return data

    def wait_ready(self, nics: Sequence[str], quiet_period: float, timeout: float = 60.0) -> None:
        """Answering, every NIC tracked with probe targets, and the quiet period over."""

        def answering() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"in.mpathd exited ({self.proc.returncode}):\n{self.text()}")
            return control.is_running(self.root, timeout=0.5)

        wait_for(answering, timeout, "in.mpathd to answer", interval=0.05)
        started = time.monotonic()

        def tracking() -> bool:
            interfaces = self.query().get("interfaces", {})
            if set(interfaces) != set(nics):
                return False
            return all(p.get("targets") for i in interfaces.values() for p in i.get("probes", {}).values())

        wait_for(tracking, timeout, "in.mpathd to track every NIC with targets", interval=0.1)
        armed = started + quiet_period + 0.3
        time.sleep(max(0.0, armed - time.monotonic()))


# -- the lab -------------------------------------------------------------------------------------


@dataclass
class Lab:
    """A topology plus an alternate root; everything started here is stopped by :meth:`close`."""

    topo: Topology
    root: Path
    tmp: Path
    quiet_period: float = 1.0
    scan_interval: float = 20.0
    daemons: list[Daemon] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return repo_env({
            "IPMP_ROOT": str(self.root),
            "IPMP_FAILURE_DETECTION_QP": f"{self.quiet_period:g}",
            "IPMP_IF_SCAN_INTERVAL": f"{self.scan_interval:g}",
            "SUNW_NO_MPATHD": "1",
        })

    def boot(self) -> subprocess.CompletedProcess[str]:
        proc = self.topo.run("host", [str(BIN / "ipmp-boot")], check=False, env=self.env())
        if proc.returncode != 0:
            raise RuntimeError(f"ipmp-boot failed ({proc.returncode}): {proc.stderr}")
        return proc

    def start_daemon(self, *, settle: bool = True) -> Daemon:
        daemon = Daemon(self.topo, self.root, self.env())
        self.daemons.append(daemon)
        if settle:
            daemon.wait_ready(self.topo.nics, self.quiet_period)
        return daemon

    def agent(self, ns: str, watch: str = "") -> Agent:
        agent = Agent(self.topo, ns, watch)
        self.agents.append(agent)
        return agent

    def close(self) -> None:
        for proc in [*self.daemons, *self.agents]:
            proc.stop()
        self.topo.destroy()
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_root(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def mpathd_conf(fdt_ms: int, failback: bool = True) -> str:
    return f"FAILURE_DETECTION_TIME={fdt_ms}\nFAILBACK={'yes' if failback else 'no'}\n"


@contextmanager
def lab(nics: Sequence[str], files: dict[str, str] | None = None, *, example: str | None = None,
        quiet_period: float = 1.0, scan_interval: float = 20.0, **build_kwargs: Any) -> Iterator[Lab]:
    """A fresh topology with ``nics`` and an alternate root made of ``example`` and/or ``files``."""
    tmp = Path(tempfile.mkdtemp(prefix="ipmp-bench-"))
    root = tmp / "root"
    if example is not None:
        shutil.copytree(EXAMPLES / example, root)
    root.mkdir(exist_ok=True)
    write_root(root, files or {})
    try:
        topo = build(unique_prefix("bn"), nics, **build_kwargs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    the_lab = Lab(topo, root, tmp, quiet_period, scan_interval)
    try:
        yield the_lab
    finally:
        the_lab.close()


# -- generated roots -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupPlan:
    """Hostname files for ``groups`` IPMP groups of ``per_group`` NICs, one /28 subnet per group.

    Subnets come from 198.51.100.0/24 and 203.0.113.0/24 (RFC 5737), 16 /28s
    each, so at most 32 groups.  In subnet ``g``: the router is .1, NIC ``k``
    of the group has test address .(2+k) (``deprecated -failover``) and data
    address .(8+k).  Every router address is in ``etc/defaultrouter``, so each
    group probes its own router address.
    """

    groups: int
    per_group: int = 2
    prefix: str = "qfe"

    def __post_init__(self) -> None:
        if not 1 <= self.groups <= 32 or not 1 <= self.per_group <= 6:
            raise ValueError("1..32 groups of 1..6 NICs")

    @property
    def nics(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(self.groups * self.per_group)]

    def base(self, g: int) -> str:
        net = "198.51.100" if g < 16 else "203.0.113"
        return f"{net}.{(g % 16) * 16}"

    def _addr(self, g: int, host: int) -> str:
        net, last = self.base(g).rsplit(".", 1)
        return f"{net}.{int(last) + host}"

    def router(self, g: int) -> str:
        return self._addr(g, 1)

    def test(self, g: int, k: int) -> str:
        return self._addr(g, 2 + k)

    def data(self, g: int, k: int) -> str:
        return self._addr(g, 8 + k)

    def nic(self, g: int, k: int) -> str:
        return f"{self.prefix}{g * self.per_group + k}"

    def router_addrs(self) -> list[str]:
        return [f"{self.router(g)}/28" for g in range(self.groups)]

    def files(self, fdt_ms: int) -> dict[str, str]:
        out: dict[str, str] = {}
        hosts = ["127.0.0.1\tlocalhost"]
        netmasks = ["# network-number  netmask"]
        for g in range(self.groups):
            netmasks.append(f"{self.base(g)}\t255.255.255.240")
            for k in range(self.per_group):
                nic = self.nic(g, k)
                out[f"etc/hostname.{nic}"] = (
                    f"{self.data(g, k)} netmask + broadcast + group g{g} up "
                    f"addif {self.test(g, k)} deprecated -failover netmask + broadcast + up\n")
                hosts.append(f"{self.data(g, k)}\tdata-{nic}")
                hosts.append(f"{self.test(g, k)}\ttest-{nic}")
        out["etc/hosts"] = "\n".join(hosts) + "\n"
        out["etc/netmasks"] = "\n".join(netmasks) + "\n"
        out["etc/defaultrouter"] = "".join(f"{self.router(g)}\n" for g in range(self.groups))
        out["etc/default/mpathd"] = mpathd_conf(fdt_ms)
        return out


# -- /proc ---------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (/proc/PID/stat fields 14 and 15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@dataclass(frozen=True)
class CpuSample:
    percent: float  # of one core, over the whole window
    windows: list[float]  # per sub-window
    wall: float
    rss_mib: float
    hwm_mib: float


def sample_cpu(pid: int, seconds: float, step: float = 5.0) -> CpuSample:
    """CPU use of ``pid`` over ``seconds`` (sub-windows of ``step``) and its RSS at the end."""
    c_start, w_start = cpu_seconds(pid), time.monotonic()
    windows: list[float] = []
    c0, w0 = c_start, w_start
    while w0 - w_start < seconds - 1e-3:
        time.sleep(min(step, seconds - (w0 - w_start)))
        c1, w1 = cpu_seconds(pid), time.monotonic()
        windows.append(100.0 * (c1 - c0) / (w1 - w0))
        c0, w0 = c1, w1
    hwm = math.nan
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return CpuSample(100.0 * (c0 - c_start) / (w0 - w_start), windows, w0 - w_start, rss_mib(pid), hwm)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ms(seconds: float) -> float:
    return seconds * 1000.0


# -- a wheel install -----------------------------------------------------------------------------

#: What a wheel of the checkout is built from (the rest of the tree is not packaged).
_PACKAGED = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "ipmp", "man")


@contextmanager
def wheel_venv() -> Iterator[Path]:
    """A temporary venv with a wheel of this checkout installed; yields its ``bin`` directory.

    What users run: the package from site-packages, byte-compiled by pip at
    install time, with no editable-install import hook (that hook is a
    ``.pth`` file every interpreter of the editable venv runs at start-up).
    The wheel is built from a copy of the packaged files, so nothing is
    written into the checkout.  The dependencies are not installed again
    (that would need the network): a ``.pth`` line puts the site-packages of
    the running environment after the venv's own, so they resolve to the
    same versions while ``ipmp`` itself comes from the wheel; ``.pth`` files
    of that directory (the editable hook among them) are not run.
    Everything is removed on exit.  Raises ``RuntimeError`` if the wheel
    cannot be built or installed (building needs setuptools >= 77, which pip
    may have to fetch).
    """
    tmp = Path(tempfile.mkdtemp(prefix="ipmp-bench-wheel-"))
    try:
        src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
        src.mkdir()
        for name in _PACKAGED:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif (REPO / name).exists():
                shutil.copy2(REPO / name, src / name)
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # pip byte-compiles the install, as for a user
        env.pop("PYTHONPATH", None)
        steps = [
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        ]
        for argv in steps:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[:4])} failed: {(proc.stderr or proc.stdout)[-300:]}")
        wheels = sorted(dist.glob("ipmp-*.whl"))
        if not wheels:
            raise RuntimeError("pip wheel made no ipmp wheel")
        python = venv / "bin" / "python"
        argv = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                "--no-index", str(wheels[0])]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install of the wheel failed: {(proc.stderr or proc.stdout)[-300:]}")
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              env=env, capture_output=True, text=True, check=True).stdout.strip()
        ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
        Path(site, "zz-bench-deps.pth").write_text("".join(f"{p}\n" for p in ours))
        yield venv / "bin"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
