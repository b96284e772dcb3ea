"""An existing lab: open and lock it, inject and repair faults, run commands in its host, remove it.

A lab is the topology of :mod:`ipmp.lab.topology` (host, switch, router,
peer) with the host's NICs named as in the ``hostname.<if>`` files, a private
copy of the files (the *lab root*), the files applied with ``ipmp-boot -R``
inside the host namespace, and ``in.mpathd -d`` running there with its
messages stamped into a log file (:mod:`ipmp.lab.logwrap`).  It is built by
:mod:`ipmp.lab.updown` and lives on disk (:mod:`ipmp.lab.store`).

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
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ipmp.lab.addressing import IPInterface, interface4, interface6
from ipmp.lab.errors import LabError
from ipmp.lab.logwrap import parse_line, process_start_time
from ipmp.lab.plan import NetworkPlan
from ipmp.lab.procs import LAB_MARK_ENV, Proc, cmdline, marked, netns_list, netns_pids, signals_blocked
from ipmp.lab.store import STATE_FILE, LabState, labs_dir, load_state, lock, save_state, validate_name
from ipmp.lab.topology import Topology

__all__ = ["Lab", "check_privileges", "teardown"]


def check_privileges() -> str | None:
    """Why the lab cannot run here (a sentence for the user), or None."""
    if os.geteuid() != 0:
        return "must be run as root: it creates network namespaces (try sudo)"
    if shutil.which("ip") is None:
        return "the iproute2 'ip' command is not installed"
    return None


def _interfaces(texts: Sequence[str]) -> tuple[IPInterface, ...]:
    return tuple(ipaddress.ip_interface(text) for text in texts)


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
        router4=interface4(plan.router4, "router4"),
        peer4=interface4(plan.peer4, "peer4"),
        router6=interface6(plan.router6, "router6"),
        peer6=interface6(plan.peer6, "peer6"),
        extra_router_addrs=_interfaces(plan.extra_router),
        extra_peer_addrs=_interfaces(plan.extra_peer),
    )
    if owned:
        existing = netns_list()
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
        #: The ipadm script's read-only commands and their output (likewise).
        self.script_output = ""

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, name: str, *, mode: Literal["exclusive", "check", "none"] = "exclusive") -> Lab:
        directory = labs_dir() / validate_name(name)
        if not (directory / STATE_FILE).is_file():
            raise LabError(
                f"no lab named {name!r} (looked in {directory.parent}); start one with 'ipmp-lab up DIR'"
            )
        fd = None if mode == "none" else lock(directory, shared=mode == "check")
        try:
            state = load_state(directory)
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
        missing = set(self.state.namespaces.values()) - netns_list()
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
        save_state(self.directory, self.state)
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
        save_state(self.directory, self.state)
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
        save_state(self.directory, self.state)
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
        existing = netns_list()
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
            "ipmp_interfaces": [
                {"name": i.name, "group": i.group, "data_addresses": list(i.data_addresses)}
                for i in plan.ipmp
            ],
            "transitive_probing": plan.transitive,
            "script": plan.script or None,
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
        return teardown(self.directory, self.state, topo)


def teardown(directory: Path, state: LabState, topo: Topology | None) -> list[str]:
    notes: list[str] = []
    with signals_blocked():
        # The wrapper first: it passes SIGTERM on to the daemon and logs its end.
        for proc in (state.wrapper, state.daemon):
            if proc is not None and proc.stop():
                notes.append(f"pid {proc.pid} did not stop on SIGTERM and was killed")
        existing = netns_list()
        for ns in state.namespaces.values():
            if ns not in existing:
                continue
            for pid in netns_pids(ns):
                if marked(pid, state.prefix):
                    Proc(pid, process_start_time(pid)).stop()
                else:
                    notes.append(f"pid {pid} ({cmdline(pid)}) runs in {ns} but was not started by the lab")
        if topo is not None:
            try:
                topo.destroy()
            except LabError as err:
                notes.append(str(err))
            left = set(state.namespaces.values()) & netns_list()
            if left:
                raise LabError(f"could not delete the namespaces {sorted(left)}")
        shutil.rmtree(directory, ignore_errors=True)
    return notes
