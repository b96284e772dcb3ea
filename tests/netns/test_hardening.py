"""Issue 20 on the real kernel: a local user cannot stop, freeze or take over in.mpathd,
and no persistence fault stops a failover.

Each test does the attack as it was reproduced, as the unprivileged user
``nobody`` (uid 65534, through ``setpriv``) where the attacker is a local
user, and each failed on the code before the fix:

* code planted in the directory root runs ``ifconfig ... group`` from, or
  the daemon was started in, runs as root (``ipmp.program``);
* ``nobody`` holding the state-store lock froze failover; root's own
  command holding it (a wedged ``ifconfig``) did too (``ipmp.host.state``, the
  daemon's ``_store_lock``);
* ``nobody`` holding the daemon's instance lock made a SIGHUP reload exit;
* a ``run/ipmp`` the daemon cannot write made it exit in the middle of a
  failover, and ``ifconfig`` left a change in the kernel it could not
  record;
* the daemon feeds systemd's watchdog from its loop, so a stopped loop
  stops feeding it (the restart itself is proven under systemd in the
  Debian guest, ``tests/vm``).

The lab's root lives in a world-traversable temporary directory so that
``nobody`` can reach ``run/ipmp`` at all (pytest's own is private to root).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mpathd_harness import BIN, FAILOVER, FAILURE, Daemon, MpathdLab, wait_for

from ipmp.host.state import Store
from ipmp.lab.topology import Topology
from ipmp.mpathd import control, ipc, protocol

MakeTopology = Callable[..., Topology]

D0, D1 = "192.0.2.100", "192.0.2.101"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
#: How long a failover may take here, lock or no lock: the detection is a
#: carrier loss (immediate), the bound is the noisy machine's.
FAILOVER_BOUND = 5.0
#: In flock(1)'s -c command: says it holds the lock, then holds it.
HOLD = "echo locked; exec sleep 600"


@pytest.fixture
def lab(public_lab: MpathdLab) -> MpathdLab:
    return public_lab


class Holder:
    """``flock(1)`` holding, or waiting for, a lock file, as ``nobody`` or as root, until stopped.

    ``wait`` says whether it got the lock: "locked" on its stdout, or its
    exit (it cannot open the file).  A holder that waits is an attacker
    too: it gets the lock the moment its holder lets go.
    """

    def __init__(self, path: Path, *, as_nobody: bool, shared: bool = True) -> None:
        argv = ["flock", "-s" if shared else "-x", str(path), "-c", HOLD]
        # A session of its own: flock(1) runs the command as its child, which
        # inherits the lock; stopping means ending both, by process group.
        self.proc = subprocess.Popen([*(NOBODY if as_nobody else []), *argv], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.holds = False
        self.error = ""

    def wait(self, timeout: float = 10.0) -> bool:
        """Whether it holds the lock, once it says so or exits (False if still waiting at ``timeout``)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if sel.select(timeout):
                self.holds = self.proc.stdout.readline().decode().strip() == "locked"
                if not self.holds:
                    self.proc.wait(10)
                    self.error = self.proc.stderr.read().decode()
        return self.holds

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def fail_over(lab: MpathdLab, d: Daemon, *, timeout: float = FAILOVER_BOUND) -> float:
    """Cut qfe0's carrier; wait for the failover and for D0 on qfe1; the seconds it took."""
    t0 = time.monotonic()
    lab.topo.fail_link("qfe0")
    line = d.wait_line(FAILOVER.format(src="qfe0", dst="qfe1"), since=t0, timeout=timeout)
    # From the kernel: ``ifconfig -a`` would wait for a command that holds the store lock.
    wait_for(lambda: holders(lab, D0) == ["qfe1"], timeout, f"{D0} to be on qfe1 only")
    return line.t - t0


def holders(lab: MpathdLab, address: str) -> list[str]:
    """The host NICs the kernel has ``address`` on."""
    return [str(link["ifname"]) for link in lab.topo.ip_json("host", "-4", "addr", "show")
            for info in link.get("addr_info", ()) if info.get("local") == address]


def stored_failed(lab: MpathdLab, nic: str) -> bool:
    itf = Store(lab.root).load().get(nic)
    return itf is not None and itf.failed


def daemon_pid(root: Path) -> int:
    """The pid of the daemon serving ``root`` (SO_PEERCRED of a connection to its socket)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        sock.connect(str(control.socket_path(root)))
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", creds)
    return int(pid)


# --------------------------------------------------------------------------
# 1. Root never runs code from the caller's directory
# --------------------------------------------------------------------------


def plant(directory: Path) -> Path:
    """A package ``ipmp.cli.in_mpathd`` in ``directory``, owned by nobody, that leaves a mark."""
    mark = directory / "ran-as"
    pkg = directory / "ipmp" / "cli"
    pkg.mkdir(parents=True)
    (directory / "ipmp" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "in_mpathd.py").write_text(f"import os\nopen({str(mark)!r}, 'w').write(str(os.getuid()))\n")
    for path in (directory, *directory.rglob("*")):
        os.chown(path, 65534, 65534)
    return mark


def test_ifconfig_group_starts_the_daemon_by_absolute_path_not_from_the_cwd(lab: MpathdLab) -> None:
    trap = lab.tmp / "trap"
    mark = plant(trap)
    env = [arg for arg in lab.env if arg != "SUNW_NO_MPATHD=1"]
    argv = ["ip", "netns", "exec", lab.topo.ns("host"), *env, str(BIN / "ifconfig"), "qfe0", "group", "prod"]
    proc = subprocess.run(argv, cwd=trap, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # The real daemon starts (and is stopped here, by its pid); the planted one never ran.
    wait_for(lambda: control.is_running(lab.root, timeout=0.5), 20, "the daemon ifconfig started to answer")
    pid = daemon_pid(lab.root)
    try:
        assert not mark.exists(), f"planted code ran as uid {mark.read_text()}"
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert os.path.isabs(cmdline[0].decode()) and b"-I" in cmdline, cmdline
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the started daemon to exit")


def test_a_sighup_reload_does_not_run_code_from_the_directory_the_daemon_started_in(lab: MpathdLab) -> None:
    trap = lab.tmp / "trap"
    mark = plant(trap)
    log = lab.tmp / "in.mpathd-hup.log"
    proc = lab.topo.popen("host", [*lab.env, str(BIN / "in.mpathd"), "-d"], cwd=trap,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    d = Daemon(proc, log)
    lab.daemons.append(d)
    wait_for(lambda: control.is_running(lab.root, timeout=0.5), 20, "in.mpathd to answer", context=d.text)
    t0 = time.monotonic()
    d.signal(signal.SIGHUP)
    d.wait_line("SIGHUP: restart and reread config file", since=t0)
    # Answering again means the re-executed daemon is the real one.
    wait_for(lambda: control.is_running(lab.root, timeout=0.5) and d.alive(), 20,
             "the re-executed daemon to answer", context=d.text)
    assert not mark.exists(), f"planted code ran as uid {mark.read_text()}"
    assert d.alive(), d.text()


# --------------------------------------------------------------------------
# 2. No lock a local user can take; the daemon never waits on one
# --------------------------------------------------------------------------


def test_a_local_user_cannot_hold_the_store_lock_to_freeze_failover(lab: MpathdLab) -> None:
    d = lab.start()
    lock = lab.root / "run/ipmp/lock"
    holder = Holder(lock, as_nobody=True)
    try:
        holder.wait()
        took = fail_over(lab, d)
        wait_for(lambda: stored_failed(lab, "qfe0"), 5, "qfe0's FAILED flag to be recorded")
        assert not holder.holds, "nobody could open and hold the store lock"
        assert "Permission denied" in holder.error, holder.error
        assert lock.stat().st_mode & 0o777 == 0o600
    finally:
        holder.stop()
    print(f"FIGURES failover with nobody attacking the store lock: {took * 1000:.0f} ms")


def test_failover_does_not_wait_for_a_command_that_holds_the_store_lock(lab: MpathdLab) -> None:
    """Root's own command may hold the lock (an ifconfig stuck on a slow kernel): failover goes on."""
    d = lab.start()
    holder = Holder(lab.root / "run/ipmp/lock", as_nobody=False, shared=False)
    try:
        assert holder.wait(), holder.error
        t = time.monotonic()
        assert control.call(lab.root, protocol.Request("ping"), timeout=2.0).ok
        ping = time.monotonic() - t
        took = fail_over(lab, d)
        # The kernel moved, the store could not be written yet: it waits for the lock.
        assert not stored_failed(lab, "qfe0")
    finally:
        holder.stop()
    wait_for(lambda: stored_failed(lab, "qfe0"), 5, "qfe0's FAILED flag to be recorded once the lock is free")
    assert d.alive(), d.text()
    print(f"FIGURES failover with the store lock held by root: {took * 1000:.0f} ms, "
          f"ping {ping * 1000:.0f} ms")


def test_a_store_lock_of_an_older_version_is_narrowed_and_cannot_be_held(lab: MpathdLab) -> None:
    lock = lab.root / "run/ipmp/lock"
    lock.chmod(0o644)  # as the previous version left it
    d = lab.start()
    lab.topo.fail_link("qfe0")  # the failover's store write opens the lock
    d.wait_line(FAILURE.format(nic="qfe0"), timeout=FAILOVER_BOUND)
    wait_for(lambda: lock.stat().st_mode & 0o777 == 0o600, 5, "the lock to be narrowed to 0600")
    holder = Holder(lock, as_nobody=True)
    try:
        assert not holder.wait()
    finally:
        holder.stop()


def test_a_local_user_cannot_make_a_reload_fail_through_the_instance_lock(lab: MpathdLab) -> None:
    d = lab.start()
    lock = ipc.lock_path(control.socket_path(lab.root))
    holder = Holder(lock, as_nobody=True)
    try:
        # The daemon holds it: nobody waits for it (old code), or is refused at once.
        holder.wait(0.5)
        t0 = time.monotonic()
        d.signal(signal.SIGHUP)
        d.wait_line("SIGHUP: restart and reread config file", since=t0)
        wait_for(lambda: control.is_running(lab.root, timeout=0.5), 20, "the re-executed daemon to answer",
                 context=d.text)
        assert d.alive(), d.text()
        assert not d.matching("already active", since=t0), d.text()
        assert not holder.holds, "nobody held the daemon's instance lock"
        assert "Permission denied" in holder.error, holder.error
        assert lock.stat().st_mode & 0o777 == 0o600
    finally:
        holder.stop()
    fail_over(lab, d)


# --------------------------------------------------------------------------
# 4. A state store that cannot be written stops no failover, and no command
#    leaves behind a change it could not record
# --------------------------------------------------------------------------


def _mount_ns(pid: int, *argv: str) -> None:
    subprocess.run(["nsenter", "-t", str(pid), "-m", *argv], check=True, capture_output=True)


def test_failover_goes_on_when_the_state_store_cannot_be_written(lab: MpathdLab) -> None:
    d = lab.start()
    run_dir = str(lab.root / "run/ipmp")
    # Read-only for the daemon only: a bind mount in its own mount namespace
    # (``ip netns exec`` gave it one), gone with it if it dies.
    _mount_ns(d.pid, "mount", "--bind", run_dir, run_dir)
    _mount_ns(d.pid, "mount", "-o", "remount,bind,ro", run_dir)
    try:
        t0 = time.monotonic()
        fail_over(lab, d)
        d.wait_line(r"^cannot record the state of .*qfe0.*Read-only file system; failure detection and "
                    r"failover go on from memory", since=t0)
        assert d.alive(), d.text()
        assert holders(lab, D1) == ["qfe1"]
    finally:
        if d.alive():
            _mount_ns(d.pid, "umount", run_dir)
    d.wait_line(r"^recorded the state in .* again after \d+ failed attempt", since=t0, timeout=5)
    assert stored_failed(lab, "qfe0")
    # Only one complaint for all the failed attempts (at most one a minute).
    assert len(d.matching("^cannot record", since=t0)) == 1, d.text()
    lab.topo.repair_link("qfe0")
    lab.wait_layout(lambda lay: lay.nic_of(D0) == "qfe0", f"{D0} back on qfe0", 10)


def _in_run(lab: MpathdLab, setup: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` in the lab's host namespace, with ``run/ipmp`` changed by the shell ``setup`` first.

    In a mount namespace of its own (``unshare``): the change is gone with the command.
    """
    script = f"set -e; {setup}; exec ip netns exec {lab.topo.ns('host')} \"$@\""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           *lab.env, *argv], capture_output=True, text=True, check=False, timeout=60)


def test_ifconfig_takes_back_a_change_it_cannot_record(lab: MpathdLab) -> None:
    """A full ``/run``: the lock opens, the store write fails; the kernel must be as before."""
    run_dir = lab.root / "run/ipmp"
    before = (run_dir / "state.json").read_text()
    copy = lab.tmp / "run-copy"
    full = (f"cp -a {run_dir} {copy}; mount -t tmpfs -o size=64k,mode=0755 ipmp-full {run_dir}; "
            f"cp -a {copy}/. {run_dir}/; dd if=/dev/zero of={run_dir}/fill bs=4k 2>/dev/null || true")
    proc = _in_run(lab, full, str(BIN / "ifconfig"), "qfe0", "addif", "192.0.2.60/24", "up")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    taken_back = r"No space left on device: cannot record the change, so it was taken back"
    assert re.search(taken_back, proc.stderr), proc.stderr
    assert holders(lab, "192.0.2.60") == []
    assert (run_dir / "state.json").read_text() == before
    # Read-only: the lock cannot even be opened; nothing is tried.
    ro = f"mount --bind {run_dir} {run_dir}; mount -o remount,bind,ro {run_dir}"
    proc = _in_run(lab, ro, str(BIN / "ifconfig"), "qfe0", "addif", "192.0.2.60/24", "up")
    assert proc.returncode == 1 and "Read-only file system" in proc.stderr, proc.stderr
    assert holders(lab, "192.0.2.60") == []


# --------------------------------------------------------------------------
# The systemd watchdog is fed by the loop itself
# --------------------------------------------------------------------------


def test_the_watchdog_is_fed_by_the_event_loop_and_stops_with_it(lab: MpathdLab) -> None:
    path = lab.tmp / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    lab.env += [f"NOTIFY_SOCKET={path}", "WATCHDOG_USEC=400000"]
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)

    def feeds(seconds: float) -> list[float]:
        got: list[float] = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if sel.select(left):
                with_dgram = sock.recv(4096).decode()
                if "WATCHDOG=1" in with_dgram.split("\n"):
                    got.append(time.monotonic())
        return got

    try:
        d = lab.start()
        running = feeds(2.0)
        # A quarter of the 0.4 s period: about 20 in 2 s; a busy machine may send fewer.
        assert len(running) >= 8, running
        os.kill(d.pid, signal.SIGSTOP)
        try:
            feeds(0.3)  # what was sent before the stop
            assert feeds(1.0) == []
        finally:
            os.kill(d.pid, signal.SIGCONT)
        assert len(feeds(1.0)) >= 3
    finally:
        sel.close()
        sock.close()
