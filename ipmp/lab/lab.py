"""ipmp-lab's labs: a namespace network built from a directory of Solaris boot files.

A lab is the topology of :mod:`ipmp.lab.topology` (host, switch, router,
peer) with the host's NICs named as in the ``hostname.<if>`` files, a private
copy of the files (the *lab root*), the files applied with ``ipmp-boot -R``
inside the host namespace, and ``in.mpathd -d`` running there with its
messages stamped into a log file (:mod:`ipmp.lab.logwrap`).

Each ``ipmp-lab`` invocation is a separate process, so a lab lives on disk:
``<labs dir>/<name>/`` holds ``lab.json`` (namespace names, addresses,
daemon pids, injected faults), ``root/`` (the lab root) and ``mpathd.log``.
The labs dir is ``$IPMP_LAB_DIR``, else ``<tmp>/ipmp-lab``; it is private to
its owner (mode 0700) and may not be under the real /etc or /run.

Concurrency: an invocation that changes a lab holds an exclusive ``flock`` on
its directory (a drill holds it for its whole run); ``exec`` only checks that
nobody holds it exclusively; ``status`` reads without locking (the state file
is replaced atomically).

Cleanup (``down``, an error or an interrupt half-way through ``up``):

1. the daemon's wrapper and then the daemon, by pid, checked against the
   start time recorded with the pid so that a recycled pid is never hit;
2. any other process inside the lab's namespaces that carries the lab's
   mark (``IPMP_LAB=<prefix>`` in its environment: every command the lab
   runs has it, and so has a daemon an ``ifconfig ... group`` run through
   ``ipmp-lab exec`` started);  a process without the mark is not ours: it
   is reported, never signalled;
3. the namespaces (deleting them removes every veth and the bridge);
4. the lab directory.

Where and how addresses are chosen, :func:`plan_network`.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from ipmp.lab.logwrap import parse_line, process_start_time
from ipmp.lab.topology import LabError, Topology, build, unique_prefix
from ipmp.program import python_module

__all__ = [
    "DEFAULT_NAME",
    "LAB_DIR_ENV",
    "LAB_MARK_ENV",
    "Lab",
    "LabError",
    "NetworkPlan",
    "NicPlan",
    "Proc",
    "check_privileges",
    "create",
    "down",
    "interrupt_on_signals",
    "labs_dir",
    "list_labs",
    "plan_network",
    "validate_name",
]

#: Where labs live, when set; else ``<tmp>/ipmp-lab``.
LAB_DIR_ENV = "IPMP_LAB_DIR"
#: Set to the lab's namespace prefix in the environment of everything the lab
#: runs, so that ``down`` can tell the lab's processes from anybody else's.
LAB_MARK_ENV = "IPMP_LAB"
DEFAULT_NAME = "default"
STATE_FILE = "lab.json"
STATE_VERSION = 1
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
#: How long the daemon may take to open its control socket after start.
DAEMON_START_TIMEOUT = 15.0
#: SIGTERM, then this long, then SIGKILL.
STOP_GRACE = 3.0

Progress = Callable[[str], None]


# --------------------------------------------------------------------------
# Preconditions
# --------------------------------------------------------------------------


def check_privileges() -> str | None:
    """Why the lab cannot run here (a sentence for the user), or None."""
    if os.geteuid() != 0:
        return "must be run as root: it creates network namespaces (try sudo)"
    if shutil.which("ip") is None:
        return "the iproute2 'ip' command is not installed"
    return None


def validate_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise LabError(f"invalid lab name {name!r}: use letters, digits, '.', '_' or '-' (40 at most)")
    return name


def labs_dir() -> Path:
    value = os.environ.get(LAB_DIR_ENV, "")
    return Path(value) if value else Path(tempfile.gettempdir()) / "ipmp-lab"


def _private_dir(path: Path) -> Path:
    """``path`` as a directory only we can use; refuses anything planted there.

    The default lives in the world-writable temporary directory, where
    another user could have created it first, or made it a symlink.
    """
    resolved = path.resolve()
    for system in (Path("/etc"), Path("/run")):
        if resolved.is_relative_to(system):
            raise LabError(f"{path}: labs never live under the real {system}; set {LAB_DIR_ENV} elsewhere")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not path.is_dir() or path.is_symlink():
        raise LabError(f"{path}: not a directory")
    if st.st_uid != os.geteuid():
        raise LabError(f"{path}: owned by uid {st.st_uid}, not by us; set {LAB_DIR_ENV} elsewhere")
    if st.st_mode & 0o022:
        raise LabError(f"{path}: writable by others; set {LAB_DIR_ENV} elsewhere")
    return path


# --------------------------------------------------------------------------
# What to build: NICs, addresses of the router and the peer
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class NicPlan:
    """One host NIC as its boot files configure it (addresses with prefix length)."""

    name: str
    group: str = ""
    standby: bool = False
    test_addresses: tuple[str, ...] = ()
    data_addresses: tuple[str, ...] = ()

    @property
    def has_test(self) -> bool:
        return bool(self.test_addresses)


@dataclass(frozen=True)
class NetworkPlan:
    """What the lab builds for a directory of boot files.

    ``problems`` lists the files the lab could not make sense of; it still
    builds the network, and ``ipmp-boot`` then reports them precisely.
    """

    nics: tuple[NicPlan, ...]
    router4: str | None = None
    peer4: str | None = None
    router6: str | None = None
    peer6: str | None = None
    extra_router: tuple[str, ...] = ()
    extra_peer: tuple[str, ...] = ()
    router_from_files: bool = False
    fdt_ms: int = 10000
    failback: bool = True
    track_all: bool = False
    problems: tuple[str, ...] = ()

    def nic(self, name: str) -> NicPlan:
        for nic in self.nics:
            if nic.name == name:
                return nic
        raise LabError(f"no NIC {name!r} in this lab (NICs: {', '.join(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nics)

    def members(self, group: str) -> tuple[NicPlan, ...]:
        return tuple(n for n in self.nics if group and n.group == group)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.group for n in self.nics if n.group))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> NetworkPlan:
        nics = tuple(
            NicPlan(
                name=str(n["name"]),
                group=str(n["group"]),
                standby=bool(n["standby"]),
                test_addresses=tuple(n["test_addresses"]),
                data_addresses=tuple(n["data_addresses"]),
            )
            for n in doc["nics"]
        )
        rest = {k: v for k, v in doc.items() if k != "nics"}
        for key in ("extra_router", "extra_peer", "problems"):
            rest[key] = tuple(rest.get(key, ()))
        return cls(nics=nics, **rest)


def _free_addresses(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[Any], *, from_top: bool
) -> Iterator[Any]:
    """Host addresses of ``network`` not in ``used``, lowest or highest first (bounded scan)."""
    if network.num_addresses < 4:
        return  # /31, /32, /127, /128: no room for a router and a peer
    first = int(network.network_address) + 1
    last = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    candidates = range(last, first - 1, -1) if from_top else range(first, last + 1)
    for n, value in enumerate(candidates):
        if n > 4096:
            return
        addr = ipaddress.ip_address(value)
        if addr not in used:
            yield addr


def plan_network(source: Path) -> NetworkPlan:
    """Read the boot files under ``source`` (an alternate root) and decide the network.

    * NICs: one per interface named by ``etc/hostname.<if>`` or
      ``etc/hostname6.<if>``, in file order; ``hostname.qfe0:1`` names qfe0.
    * Every IPv4 subnet the files configure gets a router and a peer
      address.  The router's is ``defaultrouter`` where that is in the
      subnet, else the lowest free address; the peer's is the highest free
      one.  "Free" means not configured by the files, not in ``hosts`` and
      not a default router.  Same for global IPv6 subnets.
    * The files are evaluated with the product's own evaluator (they must
      mean the same thing to the lab as to ``ipmp-boot``); a file it rejects
      is noted in ``problems`` and left for ``ipmp-boot`` to report.

    Raises:
        LabError: no hostname files; unreadable hosts, netmasks or
            defaultrouter; a default router on none of the subnets.
    """
    from ipmp.admin.session import boot_lines
    from ipmp.errors import IpmpError
    from ipmp.host.hostfiles import find_hostname_files, read_environment
    from ipmp.model import Config, Family, Interface
    from ipmp.mpathd.settings import parse_settings

    if not (source / "etc").is_dir():
        raise LabError(f"{source}: no etc directory (expected {source}/etc/hostname.<if>)")
    files = find_hostname_files(source)
    if not files:
        raise LabError(f"{source}/etc: no hostname.<if> or hostname6.<if> files")
    try:
        env = read_environment(source)
    except (IpmpError, OSError) as err:
        raise LabError(str(err)) from None
    try:
        settings, _ = parse_settings((source / "etc/default/mpathd").read_text(errors="replace"))
    except OSError:
        settings, _ = parse_settings("")

    names = list(dict.fromkeys(f.ifname.partition(":")[0] for f in files))
    config = Config(tuple(Interface(name, index=i + 1) for i, name in enumerate(names)))
    problems: list[str] = []
    for name in names:
        mine = [(f.family, f.path) for f in files if f.ifname.partition(":")[0] == name]
        try:
            # Line by line, as ipmp-boot configures them: a bad line costs that line only.
            evaluated = boot_lines(config, name, mine, env)
        except (IpmpError, OSError) as err:
            problems.append(str(err))
            continue
        config = evaluated.config
        problems += [failed.message for failed in evaluated.failed]

    nics: list[NicPlan] = []
    subnets4: list[ipaddress.IPv4Network] = []
    subnets6: list[ipaddress.IPv6Network] = []
    used: set[Any] = {addr for _, addr in env.hosts} | set(env.defaultrouters)
    for itf in config.interfaces:
        tests: list[str] = []
        data: list[str] = []
        for lg in itf.logicals:
            if lg.family is Family.INET6 and lg.unit == 0 and lg.nofailover and lg.up:
                # hostname6 "-failover ... up": the kernel's link-local is the
                # test address (solaris-ipmp.md §2.3); its address is only
                # known once the link is up.
                tests.append("link-local")
                continue
            if lg.address is None or lg.kernel_owned:
                continue
            used.add(lg.address.ip)
            if lg.address.version == 4 and lg.address.network not in subnets4:
                subnets4.append(ipaddress.IPv4Network(lg.address.network))
            elif (
                lg.address.version == 6
                and not lg.address.ip.is_link_local
                and lg.address.network not in subnets6
            ):
                subnets6.append(ipaddress.IPv6Network(lg.address.network))
            if lg.up:
                (tests if lg.nofailover else data).append(str(lg.address))
        nics.append(NicPlan(itf.name, itf.group, itf.standby, tuple(tests), tuple(data)))

    routers4 = [a for a in env.defaultrouters if a.version == 4]
    routers6 = [a for a in env.defaultrouters if a.version == 6 and not a.is_link_local]
    if routers4 and subnets4 and not any(routers4[0] in s for s in subnets4):
        nets = ", ".join(map(str, subnets4))
        raise LabError(
            f"defaultrouter {routers4[0]} is on none of the subnets of the hostname files ({nets})"
        )

    def pick(subnets: Sequence[Any], routers: Sequence[Any]) -> tuple[list[str], list[str]]:
        rts: list[str] = []
        peers: list[str] = []
        for net in subnets:
            given = next((r for r in routers if r in net), None)
            router = given if given is not None else next(_free_addresses(net, used, from_top=False), None)
            if router is None:
                continue
            used.add(router)
            peer = next(_free_addresses(net, used, from_top=True), None)
            if peer is None:
                continue
            used.add(peer)
            rts.append(f"{router}/{net.prefixlen}")
            peers.append(f"{peer}/{net.prefixlen}")
        return rts, peers

    r4, p4 = pick(subnets4, routers4)
    r6, p6 = pick(subnets6, routers6)
    return NetworkPlan(
        nics=tuple(nics),
        router4=r4[0] if r4 else None,
        peer4=p4[0] if p4 else None,
        router6=r6[0] if r6 else None,
        peer6=p6[0] if p6 else None,
        extra_router=tuple(r4[1:] + r6[1:]),
        extra_peer=tuple(p4[1:] + p6[1:]),
        router_from_files=bool(routers4 and r4 and r4[0].split("/")[0] == str(routers4[0])),
        fdt_ms=settings.failure_detection_time_ms,
        failback=settings.failback,
        track_all=not settings.track_interfaces_only_with_groups,
        problems=tuple(problems),
    )


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """A process the lab started: its pid and kernel start time (pid reuse guard)."""

    pid: int
    start: int | None

    def alive(self) -> bool:
        now = process_start_time(self.pid)
        if now is None:
            return False
        if _is_zombie(self.pid):
            return False
        return self.start is None or now == self.start

    def stop(self, grace: float = STOP_GRACE) -> bool:
        """SIGTERM, then SIGKILL after ``grace`` seconds; True if it had to be killed."""
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            time.sleep(0.02)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        return True


def _is_zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = text.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


def _marked(pid: int, mark: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{LAB_MARK_ENV}={mark}".encode() in environ.split(b"\0")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _netns_list() -> set[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def _netns_pids(name: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return [int(word) for word in proc.stdout.split() if word.isdigit()]


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Cleanup must run to the end: a second Ctrl-C waits until it is done."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt, like Ctrl-C, so cleanup runs."""

    def raise_interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------
# The state file
# --------------------------------------------------------------------------


@dataclass
class LabState:
    name: str
    prefix: str
    source: str
    root: str
    log: str
    namespaces: dict[str, str]  # role -> namespace name
    nics: list[str]
    ports: dict[str, str] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    status: str = "building"  # building -> up
    created: str = ""
    wrapper: Proc | None = None
    daemon: Proc | None = None
    link_failed: list[str] = field(default_factory=list)
    silent_failed: list[str] = field(default_factory=list)
    router_down: bool = False
    version: int = STATE_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LabState:
        if doc.get("version") != STATE_VERSION:
            raise LabError(f"lab state version {doc.get('version')!r} is not {STATE_VERSION}")
        values = dict(doc)
        for key in ("wrapper", "daemon"):
            proc = values.get(key)
            values[key] = Proc(int(proc["pid"]), proc.get("start")) if proc else None
        return cls(**values)

    @property
    def network(self) -> NetworkPlan:
        return NetworkPlan.from_json(self.plan)


def _save(directory: Path, state: LabState) -> None:
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(tmp, directory / STATE_FILE)


def _load(directory: Path) -> LabState:
    try:
        doc = json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {directory.name!r} (looked in {directory.parent})") from None
    except (OSError, ValueError) as err:
        raise LabError(f"{directory / STATE_FILE}: {err}") from None
    try:
        return LabState.from_json(doc)
    except (TypeError, KeyError, ValueError) as err:
        raise LabError(f"{directory / STATE_FILE}: not a lab state file ({err})") from None


def _iface(text: str | None) -> Any:
    return None if text is None else ipaddress.ip_interface(text)


def _handle(state: LabState, *, owned: bool) -> Topology:
    """A Topology object for a lab built by another process.

    ``owned`` makes :meth:`Topology.destroy` delete the namespaces (the
    object adopts those that exist; the process that built the lab released
    them).
    """
    ns = state.namespaces
    plan = state.network
    topo = Topology(
        prefix=state.prefix,
        host=ns["host"],
        switch=ns["switch"],
        router=ns["router"],
        peer=ns["peer"],
        nics=tuple(state.nics),
        ports=dict(state.ports),
        macs=dict(state.macs),
        router4=_iface(plan.router4),
        peer4=_iface(plan.peer4),
        router6=_iface(plan.router6),
        peer6=_iface(plan.peer6),
        extra_router_addrs=tuple(_iface(a) for a in plan.extra_router),
        extra_peer_addrs=tuple(_iface(a) for a in plan.extra_peer),
    )
    if owned:
        existing = _netns_list()
        topo.adopt(n for n in ns.values() if n in existing)
    return topo


def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _search_path() -> str:
    """PATH for commands in the lab: this package's console scripts come first.

    The venv's bin is where the interpreter running us lives (not resolved:
    a venv's python is a symlink to the system one); the checkout's ``bin``
    shims follow, for a checkout that is not installed.
    """
    first = [str(Path(sys.executable).parent)]
    shims = _package_root() / "bin"
    if shims.is_dir():
        first.append(str(shims))
    rest = [p for p in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep) if p]
    return os.pathsep.join([*first, *(p for p in rest if p not in first)])


# --------------------------------------------------------------------------
# A lab
# --------------------------------------------------------------------------


class Lab:
    """An existing lab, locked by this process (use as a context manager)."""

    def __init__(
        self, directory: Path, state: LabState, topo: Topology, lock_fd: int | None, *, owner: bool = False
    ) -> None:
        self.directory = directory
        self.state = state
        self.topology = topo
        self._lock_fd = lock_fd
        # True in the process that built the lab: its topology object also
        # knows the background processes it started (pingers, monitors).
        self._owner = owner
        #: What ``ipmp-boot`` printed (only for a lab created by this process).
        self.boot_output = ""

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, name: str, *, mode: Literal["exclusive", "check", "none"] = "exclusive") -> Lab:
        directory = labs_dir() / validate_name(name)
        if not (directory / STATE_FILE).is_file():
            raise LabError(
                f"no lab named {name!r} (looked in {directory.parent}); start one with 'ipmp-lab up DIR'"
            )
        fd = None if mode == "none" else _lock(directory, shared=mode == "check")
        try:
            state = _load(directory)
            if mode == "check" and fd is not None:
                # Only to see that no drill or up holds it; commands run unlocked.
                os.close(fd)
                fd = None
            return cls(directory, state, _handle(state, owned=False), fd)
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- facts -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def root(self) -> Path:
        return Path(self.state.root)

    @property
    def log_path(self) -> Path:
        return Path(self.state.log)

    @property
    def network(self) -> NetworkPlan:
        return self.state.network

    def command_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of every command the lab runs in the host namespace."""
        env = dict(os.environ)
        env["IPMP_ROOT"] = self.state.root
        env[LAB_MARK_ENV] = self.state.prefix
        env["PATH"] = _search_path()
        # A user's own ``python -m ipmp...`` in the lab imports this very
        # package, installed or not; the programs the lab itself starts run
        # isolated from the installation (``ipmp.program``).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_package_root()), os.environ.get("PYTHONPATH", "")) if p
        )
        env.update(extra or {})
        return env

    def _require_up(self) -> None:
        if self.state.status != "up":
            raise LabError(
                f"lab {self.name!r} is {self.state.status}, not up; remove it with 'ipmp-lab down'"
            )
        missing = set(self.state.namespaces.values()) - _netns_list()
        if missing:
            raise LabError(
                f"lab {self.name!r} lost its namespaces {sorted(missing)}; remove it with 'ipmp-lab down'"
            )

    # -- faults ----------------------------------------------------------------------

    def fail(self, nic: str, how: Literal["link", "silent"]) -> str:
        self._require_up()
        self.network.nic(nic)
        port = self.topology.port(nic)
        if how == "link":
            self.topology.fail_link(nic)
            if nic not in self.state.link_failed:
                self.state.link_failed.append(nic)
            what = f"link failure on {nic}: switch port {port} is down, {nic} has no carrier"
        else:
            self.topology.fail_silent(nic)
            if nic not in self.state.silent_failed:
                self.state.silent_failed.append(nic)
            what = f"silent failure on {nic}: switch port {port} is out of the bridge, {nic} keeps carrier"
        _save(self.directory, self.state)
        return what

    def repair(self, nic: str) -> str:
        self._require_up()
        self.network.nic(nic)
        # Both repairs are idempotent, and doing both also heals a fault
        # injected by hand, behind the state file's back.
        self.topology.repair_silent(nic)
        self.topology.repair_link(nic)
        faults = (("link", self.state.link_failed), ("silent", self.state.silent_failed))
        was = [kind for kind, nics in faults if nic in nics]
        self.state.link_failed = [n for n in self.state.link_failed if n != nic]
        self.state.silent_failed = [n for n in self.state.silent_failed if n != nic]
        _save(self.directory, self.state)
        if not was:
            return f"{nic}: no fault was injected; its switch port is up and in the bridge"
        return f"{nic}: repaired ({' and '.join(was)} failure); its switch port is up and in the bridge"

    def router(self, up: bool) -> str:
        self._require_up()
        if up:
            self.topology.router_up()
        else:
            self.topology.router_down()
        self.state.router_down = not up
        _save(self.directory, self.state)
        where = self.network.router4 or self.network.router6 or "(no address)"
        return f"router {where} is {'up' if up else 'down: its switch port is down'}"

    # -- commands in the host namespace ----------------------------------------------

    def host_argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.state.namespaces["host"], *argv]

    def exec(self, argv: Sequence[str]) -> int:
        """Run ``argv`` in the host namespace on our terminal; its exit status."""
        self._require_up()
        if not argv:
            raise LabError("exec: no command given (usage: ipmp-lab exec -- COMMAND [ARGS...])")
        try:
            proc = subprocess.Popen(self.host_argv(argv), env=self.command_env())
        except OSError as err:
            raise LabError(f"exec: {err}") from None
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                # Ctrl-C reached the command too (same process group); its
                # exit status is the answer.
                continue

    def run(self, argv: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the host namespace, capturing its output."""
        return self.topology.run("host", argv, check=False, timeout=timeout, env=self.command_env())

    # -- observation -----------------------------------------------------------------

    def log_messages(self, last: int | None = None) -> list[tuple[float, str]]:
        """The daemon's messages so far, ``(monotonic, text)``, without the wrapper's own lines."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            parsed = parse_line(line)
            if parsed is not None and not parsed[1].startswith("# "):
                out.append(parsed)
        return out[-last:] if last else out

    def status(self) -> dict[str, Any]:
        existing = _netns_list()
        st = self.state
        plan = self.network
        daemon = st.daemon
        return {
            "name": st.name,
            "status": st.status,
            "directory": str(self.directory),
            "source": st.source,
            "root": st.root,
            "log": st.log,
            "created": st.created,
            "prefix": st.prefix,
            "namespaces": {role: {"name": n, "exists": n in existing} for role, n in st.namespaces.items()},
            "daemon": None if daemon is None else {"pid": daemon.pid, "running": daemon.alive()},
            "nics": [
                {
                    "name": nic.name,
                    "port": st.ports.get(nic.name),
                    "mac": st.macs.get(nic.name),
                    "group": nic.group,
                    "standby": nic.standby,
                    "test_addresses": list(nic.test_addresses),
                    "data_addresses": list(nic.data_addresses),
                    "fault": "link" if nic.name in st.link_failed
                    else "silent" if nic.name in st.silent_failed else None,
                }
                for nic in plan.nics
            ],
            "router": {
                "addresses": [a for a in (plan.router4, plan.router6, *plan.extra_router) if a],
                "down": st.router_down,
                "from_defaultrouter": plan.router_from_files,
            },
            "peer": {"addresses": [a for a in (plan.peer4, plan.peer6, *plan.extra_peer) if a]},
            "messages": [text for _, text in self.log_messages(last=10)],
        }

    # -- teardown --------------------------------------------------------------------

    def destroy(self) -> list[str]:
        """Remove everything of this lab (see the module docstring); notes for the user."""
        topo = self.topology if self._owner else _handle(self.state, owned=True)
        return _teardown(self.directory, self.state, topo)


def _lock(directory: Path, *, shared: bool) -> int:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LabError(
            f"lab {directory.name!r} is busy: another ipmp-lab (up, drill, down, ...) is working on it"
        ) from None
    return fd


def _teardown(directory: Path, state: LabState, topo: Topology | None) -> list[str]:
    notes: list[str] = []
    with _signals_blocked():
        # The wrapper first: it passes SIGTERM on to the daemon and logs its end.
        for proc in (state.wrapper, state.daemon):
            if proc is not None and proc.stop():
                notes.append(f"pid {proc.pid} did not stop on SIGTERM and was killed")
        existing = _netns_list()
        for ns in state.namespaces.values():
            if ns not in existing:
                continue
            for pid in _netns_pids(ns):
                if _marked(pid, state.prefix):
                    Proc(pid, process_start_time(pid)).stop()
                else:
                    notes.append(f"pid {pid} ({_cmdline(pid)}) runs in {ns} but was not started by the lab")
        if topo is not None:
            try:
                topo.destroy()
            except LabError as err:
                notes.append(str(err))
            left = set(state.namespaces.values()) & _netns_list()
            if left:
                raise LabError(f"could not delete the namespaces {sorted(left)}")
        shutil.rmtree(directory, ignore_errors=True)
    return notes


# --------------------------------------------------------------------------
# up / down
# --------------------------------------------------------------------------


def _copy_root(source: Path, root: Path, fdt_ms: int | None) -> None:
    """The lab root: a private copy of ``source/etc``.

    A copy, never the files themselves: ipmp-boot and in.mpathd write their
    state store under the root, and the drill edits etc/default/mpathd.
    Only ``etc`` is copied: it is all the product reads, and a stale ``run``
    left in the source by an earlier use as a root must not come along.
    Symlinks are copied as the files they point to, so nothing in the lab
    root leads back to a real /etc or /run; anything but plain files and
    directories (a FIFO would block the copy) is left out.
    """

    def special(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if not (os.path.isfile(os.path.join(directory, n))
                                         or os.path.isdir(os.path.join(directory, n)))]

    root.mkdir(mode=0o755)
    shutil.copytree(source / "etc", root / "etc", ignore=special)
    if fdt_ms is not None:
        dfl = root / "etc" / "default" / "mpathd"
        dfl.parent.mkdir(parents=True, exist_ok=True)
        old = dfl.read_text(errors="replace") if dfl.is_file() else ""
        # in.mpathd takes the first FAILURE_DETECTION_TIME= line (defread),
        # so a line on top overrides the file's own and keeps the rest.
        dfl.write_text(f"FAILURE_DETECTION_TIME={fdt_ms}\n{old}")


def _start_daemon(lab: Lab, quiet_period: float | None, scan_interval: float | None) -> None:
    extra: dict[str, str] = {}
    if quiet_period is not None:
        extra["IPMP_FAILURE_DETECTION_QP"] = repr(float(quiet_period))
    if scan_interval is not None:
        extra["IPMP_IF_SCAN_INTERVAL"] = repr(float(scan_interval))
    argv = [
        *python_module("ipmp.lab.logwrap", "--log", str(lab.log_path), "--"),
        *python_module("ipmp.cli.in_mpathd", "-d"),
    ]
    proc = lab.topology.run("host", argv, check=False, timeout=30.0, env=lab.command_env(extra))
    try:
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        doc = {"error": proc.stderr.strip() or "no report from the wrapper"}
    if proc.returncode != 0 or "error" in doc:
        raise LabError(f"cannot start in.mpathd: {doc.get('error')}")
    lab.state.wrapper = Proc(int(doc["wrapper_pid"]), doc.get("wrapper_start"))
    lab.state.daemon = Proc(int(doc["pid"]), doc.get("start"))
    _save(lab.directory, lab.state)
    # Ready once its control socket exists (it opens it after the first
    # look at the kernel), as ifconfig and if_mpadm will need it.
    sock = lab.root / "run" / "ipmp" / "mpathd.sock"
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while not sock.exists():
        if not lab.state.daemon.alive():
            tail = "\n".join(text for _, text in lab.log_messages(last=10))
            raise LabError("in.mpathd exited at start-up" + (f":\n{tail}" if tail else ""))
        if time.monotonic() > deadline:
            raise LabError(f"in.mpathd did not open {sock} within {DAEMON_START_TIMEOUT:.0f} s")
        time.sleep(0.02)


def create(
    name: str,
    source: Path,
    *,
    fdt_ms: int | None = None,
    quiet_period: float | None = None,
    scan_interval: float | None = None,
    progress: Progress | None = None,
) -> Lab:
    """``ipmp-lab up``: build the lab, boot the files, start the daemon.

    Returns the lab, still locked by this process.  On any error or
    interrupt, everything created so far is removed before the exception
    propagates.
    """
    say = progress or (lambda _text: None)
    validate_name(name)
    source = source.resolve()
    if source == Path("/"):
        raise LabError("give a directory holding copies of the boot files (DIR/etc/hostname.*), not /")
    plan = plan_network(source)
    base = _private_dir(labs_dir())
    directory = base / name
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        if not (directory / STATE_FILE).exists():
            # What an 'up' killed before its first write leaves (or one
            # starting right now): nothing of ours to remove.
            raise LabError(
                f"{directory} exists but holds no lab; if no ipmp-lab is running, remove it"
            ) from None
        raise LabError(
            f"lab {name!r} already exists ({directory}); remove it with 'ipmp-lab --name {name} down'"
        ) from None
    lock_fd: int | None = None
    topo: Topology | None = None
    state: LabState | None = None
    try:
        lock_fd = _lock(directory, shared=False)
        prefix = unique_prefix("lab")
        namespaces = {role: f"{prefix}-{suffix}" for role, suffix in
                      (("host", "host"), ("switch", "sw"), ("router", "rt"), ("peer", "peer"))}
        state = LabState(
            name=name,
            prefix=prefix,
            source=str(source),
            root=str(directory / "root"),
            log=str(directory / "mpathd.log"),
            namespaces=namespaces,
            nics=list(plan.names),
            plan=plan.to_json(),
            created=datetime.datetime.now().isoformat(timespec="seconds"),
        )
        # Recorded before anything exists, so that 'down' finds the names
        # even if this process is killed half-way.
        _save(directory, state)
        _copy_root(source, Path(state.root), fdt_ms)
        if fdt_ms is not None:
            state.plan = {**state.plan, "fdt_ms": fdt_ms}
        say(f"creating namespaces {prefix}-{{host,sw,rt,peer}}, NICs {', '.join(plan.names)}")
        try:
            topo = build(
                prefix,
                plan.names,
                router4=plan.router4,
                peer4=plan.peer4,
                router6=plan.router6,
                peer6=plan.peer6,
                extra_router_addrs=plan.extra_router,
                extra_peer_addrs=plan.extra_peer,
            )
        except ValueError as err:  # a NIC name the kernel refuses, and the like
            raise LabError(str(err)) from None
        state.ports = dict(topo.ports)
        state.macs = dict(topo.macs)
        _save(directory, state)
        lab = Lab(directory, state, topo, lock_fd, owner=True)

        say(f"ipmp-boot -R {state.root}")
        boot = lab.run(python_module("ipmp.cli.boot", "-R", state.root), timeout=120.0)
        # The messages name the lab's copy; the user knows the originals.
        output = (boot.stdout + boot.stderr).replace(state.root, str(source))
        lab.boot_output = output
        if boot.returncode != 0:
            raise LabError(f"ipmp-boot failed (exit {boot.returncode}):\n{output.rstrip()}")

        say("starting in.mpathd -d")
        _start_daemon(lab, quiet_period, scan_interval)
        state.status = "up"
        _save(directory, state)
        # From here on the lab outlives this process ('down' deletes the namespaces).
        topo.release()
        return lab
    except BaseException as exc:
        try:
            if state is not None:
                # A topology that failed to build has already removed what
                # it made (and a name that existed before is not ours), so
                # namespaces are only deleted through a topology that built them.
                _teardown(directory, state, topo)
            else:
                shutil.rmtree(directory, ignore_errors=True)
        except Exception as cleanup:  # keep the original error; say what is left
            exc.add_note(f"ipmp-lab: cleanup failed: {cleanup}")
        finally:
            if lock_fd is not None:
                os.close(lock_fd)
        raise


def down(name: str) -> list[str]:
    """``ipmp-lab down``: remove the lab; notes worth telling the user."""
    with Lab.open(name) as lab:
        return lab.destroy()


def list_labs() -> list[Lab]:
    base = labs_dir()
    if not base.is_dir():
        return []
    labs = []
    for entry in sorted(base.iterdir()):
        if (entry / STATE_FILE).is_file():
            with contextlib.suppress(LabError):
                labs.append(Lab.open(entry.name, mode="none"))
    return labs
