"""One Debian guest under QEMU: boot, talk to it, cut a NIC's carrier, and clean up.

The guest boots straight into its kernel (``-kernel``/``-initrd`` from
``image.Disk``, root on a virtio disk) with a qcow2 overlay of the cached
disk, so nothing it writes reaches the cache.  Its NICs are virtio-net
devices on one QEMU hub and nowhere else (``-nodefaults``, no ``-nic``
user networking): frames go between the guest's own NICs only, so a guest
has no route out whatever it is configured with.  A NIC in PCI slot N is
``ensN`` in the guest (systemd's naming from the ACPI slot), and its QEMU
device id is that same name, which is what QMP ``set_link`` takes.

Two serial ports: ``ttyS0`` is the console (kernel and systemd messages, to
``console.log``), ``ttyS1`` the report channel: the program in the guest
writes one line per message, ``IPMPVM {json}``, to ``ctl.log``, which the
host reads as it grows (``messages``).  A message ``{"kind": "link", "nic":
"ens8", "up": false}`` asks the host to set that NIC's link (``drive`` does it
over QMP); every other message is the guest's report, returned by ``drive``.

Every wait is bounded.  Cleanup, also on failure: the QEMU process is
stopped by its own pid (QMP ``quit``, then SIGTERM, then SIGKILL), and the
run's directory (overlay, logs, sockets) is removed by its exact path.  If
the test process itself dies, QEMU gets SIGKILL from the kernel
(``PR_SET_PDEATHSIG``), and the next run removes the dead run's directory,
killing its QEMU if still there by the pid QEMU wrote, checked against that
process's command line.

Acceleration: ``$IPMP_VM_ACCEL`` = ``tcg``, ``kvm`` or ``auto`` (default).
``auto`` uses KVM only if it demonstrably works: a bounded probe boots the
guest kernel with no root file system, which must panic (and QEMU exit,
``-no-reboot``) within ``KVM_PROBE_TIMEOUT``; otherwise TCG.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.vm.image import Disk, cache_dir

__all__ = ["Guest", "Nic", "Report", "Request", "choose_accel", "drive", "nic", "progress", "set_link"]

QEMU = "qemu-system-x86_64"
#: The report channel's line prefix.
PREFIX = "IPMPVM "
KVM_PROBE_TIMEOUT = 20.0
#: How long QEMU may take to stop on QMP quit / SIGTERM before the next step.
STOP_GRACE = 10.0
QMP_TIMEOUT = 10.0
#: How much of the daemon's journal a failed run's assertion carries (its last characters).
DAEMON_TAIL = 6000

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def progress(line: str) -> None:
    """A ``Log`` for the tests and the bench: the line printed at once (``pytest -rP`` shows it)."""
    print(line, flush=True)


#: QEMU's device models a test may give a NIC: virtio (the usual guest NIC) and
#: e1000 (a second driver, which reports carrier its own way).
NIC_MODELS = ("virtio-net-pci", "e1000")


@dataclass(frozen=True)
class Nic:
    """A NIC: ``ens<slot>`` in the guest, and QEMU's device id.

    ``plugged`` False: the NIC's hub port exists from the start but the device is
    hot-plugged later (:meth:`Guest.device_add`), as a NIC whose driver loads late.
    """

    name: str
    slot: int
    mac: str
    model: str = "virtio-net-pci"
    plugged: bool = True


def nic(slot: int, *, model: str = "virtio-net-pci", plugged: bool = True) -> Nic:
    """The NIC in PCI slot ``slot`` (3..31), with a locally administered MAC derived from it."""
    if not 3 <= slot <= 31:
        raise ValueError(f"PCI slot {slot} is not free on the pc machine")
    if model not in NIC_MODELS:
        raise ValueError(f"NIC model {model!r} is not one of {', '.join(NIC_MODELS)}")
    return Nic(f"ens{slot}", slot, f"52:54:00:49:50:{slot:02x}", model, plugged)


def _device(n: Nic) -> str:
    return f"{n.model},netdev=hub-{n.name},id={n.name},mac={n.mac},addr={n.slot:#x}"


# --------------------------------------------------------------------------
# Acceleration
# --------------------------------------------------------------------------

_accel_verdict: str | None = None


def _kvm_works(kernel: Path, log: Log) -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="ipmp-kvm-probe.") as tmp:
        console = Path(tmp) / "console.log"
        argv = [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-accel", "kvm", "-cpu", "host", "-m", "256", "-kernel", str(kernel),
                "-append", "console=ttyS0 panic=-1", "-serial", f"file:{console}"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        try:
            proc.wait(timeout=KVM_PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"kvm probe: no panic in {KVM_PROBE_TIMEOUT:g} s (a hung guest): using tcg")
            return False
        finally:
            _stop(proc)
        text = console.read_text(errors="replace") if console.exists() else ""
        ok = "Kernel panic" in text
        log(f"kvm probe: {'works' if ok else f'qemu exited {proc.returncode} without booting'}")
        return ok


def choose_accel(kernel: Path, log: Log = _quiet) -> str:
    """``kvm`` or ``tcg`` as ``$IPMP_VM_ACCEL`` says (``auto``: probe once per process)."""
    global _accel_verdict
    wanted = os.environ.get("IPMP_VM_ACCEL", "auto").strip().lower() or "auto"
    if wanted in ("tcg", "kvm"):
        return wanted
    if wanted != "auto":
        raise ValueError(f"IPMP_VM_ACCEL={wanted!r}: expected tcg, kvm or auto")
    if _accel_verdict is None:
        _accel_verdict = "kvm" if _kvm_works(kernel, log) else "tcg"
    return _accel_verdict


def _accel_args(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    # Multi-threaded TCG: one host thread per guest CPU.
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, whatever kills it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop one process of ours by its Popen object: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_GRACE)


def _runs_dir() -> Path:
    runs = cache_dir() / "runs"
    runs.mkdir(exist_ok=True)
    return runs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_runs(log: Log = _quiet) -> None:
    """Remove the directories of runs whose test process is gone, and their QEMU if still running."""
    for run in _runs_dir().iterdir():
        parts = run.name.split("-", 2)
        if len(parts) != 3 or parts[0] != "run" or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        pidfile = run / "qemu.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if str(run) in cmdline:  # that pid is still the QEMU of that run, not a reused one
                os.kill(pid, signal.SIGKILL)
                log(f"killed the QEMU (pid {pid}) of a dead run")
        shutil.rmtree(run, ignore_errors=True)


# --------------------------------------------------------------------------
# The guest
# --------------------------------------------------------------------------


@dataclass
class Report:
    """What ``drive`` collected: the guest's messages and when each came (s since boot)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds from QEMU's start to the guest's first message (its program has started).
    boot_seconds: float | None = None
    total_seconds: float = 0.0
    exit_code: int | None = None
    finished: bool = False

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("kind") == kind]

    def summary(self, timings: Mapping[str, float], *, first: str = "guest boot to the check program") -> str:
        """The host's timings, then the guest's figures, checks (a failed one with its detail) and texts.

        ``first`` names what ``boot_seconds`` measured up to.
        """
        lines = [f"{name}: {seconds:.0f} s" for name, seconds in timings.items()]
        if self.boot_seconds is not None:
            lines.append(f"{first}: {self.boot_seconds:.0f} s")
        lines.append(f"guest run, QEMU start to power-off: {self.total_seconds:.0f} s "
                     f"(exit {self.exit_code})")
        for fig in self.of_kind("figure"):
            unit = f" {fig['unit']}" if fig.get("unit") else ""
            lines.append(f"figure: {fig['name']} = {fig['value']}{unit}")
        for check in self.of_kind("check"):
            lines.append(f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']}"
                         + ("" if check["ok"] else f"\n     {json.dumps(check.get('detail'))[:3000]}"))
        for text in self.of_kind("text"):
            lines.append(f"--- {text['name']}\n{text['text']}")
        return "\n".join(lines)

    def assert_passed(self, summary: str, console: str, *, expected_checks: int,
                      phases: Sequence[str] | None = None, links: bool = False) -> None:
        """The guest finished its checks, at least ``expected_checks`` (a missing one fails too), none failed.

        ``phases``: the ``hello`` of each boot, in order; ``links``: the guest asked
        for carrier changes and each was made.
        """
        assert self.finished, f"the guest did not finish its checks\n{summary}\n--- console:\n{console}"
        if phases is not None:
            seen = [m.get("phase") for m in self.of_kind("hello")]
            assert seen == list(phases), f"boots seen: {seen}, expected {list(phases)}\n{summary}"
        if links:
            asked = self.of_kind("link")
            assert asked and all(m.get("error") is None for m in asked), asked
        checks = self.of_kind("check")
        failed = [m for m in checks if not m["ok"]]
        # What the guest held when a ping of the peer went unanswered (ipmpvm.peer_reaches).
        states = "\n".join(f"--- {m.get('name')}:\n{m.get('text')}" for m in self.of_kind("text")
                           if "unanswered" in str(m.get("name")))
        # And the daemon's own account, its tail: in the assertion, which a CI log cut short
        # still shows, unlike the summary printed after it.
        daemon = "\n".join(f"--- {m.get('name')} (tail):\n{str(m.get('text'))[-DAEMON_TAIL:]}"
                           for m in self.of_kind("text") if "in.mpathd" in str(m.get("name")))
        assert not failed, json.dumps(failed, indent=2) + "\n" + states + "\n" + daemon
        assert len(checks) >= expected_checks, f"only {len(checks)} checks reported\n{summary}"


class Guest:
    """A running QEMU guest (a context manager: ``with Guest(...) as g:``)."""

    def __init__(self, disk: Disk, nics: Sequence[Nic], *, memory_mb: int = 1024, cpus: int = 2,
                 cmdline: Sequence[str] = (), log: Log = _quiet, keep_logs: Path | None = None,
                 reboot: bool = False) -> None:
        #: True: a reboot in the guest resets it (the same disk boots again) instead of ending QEMU.
        self.reboot = reboot
        self.disk = disk
        self.nics = tuple(nics)
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.cmdline = tuple(cmdline)
        self.log = log
        self.keep_logs = keep_logs
        self.accel = ""
        self.run_dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._ctl_offset = 0
        self._ctl_partial = b""

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Guest:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _argv(self, run: Path) -> list[str]:
        append = ["root=/dev/vda", "rw", "console=ttyS0", "panic=-1", "quiet", "loglevel=3",
                  "systemd.show_status=error", *self.cmdline]
        argv = [QEMU, "-name", "ipmp-vm", "-machine", "pc", "-nodefaults", "-no-user-config",
                "-display", "none", *([] if self.reboot else ["-no-reboot"]), *_accel_args(self.accel),
                "-smp", str(self.cpus), "-m", str(self.memory_mb),
                "-kernel", str(self.disk.kernel), "-initrd", str(self.disk.initrd),
                "-append", " ".join(append),
                "-drive", f"file={run / 'overlay.qcow2'},if=virtio,format=qcow2,cache=unsafe",
                "-device", "virtio-rng-pci",
                "-chardev", f"file,id=console,path={run / 'console.log'}", "-serial", "chardev:console",
                "-chardev", f"file,id=ctl,path={run / 'ctl.log'}", "-serial", "chardev:ctl",
                "-qmp", f"unix:{run / 'qmp.sock'},server=on,wait=off",
                "-pidfile", str(run / "qemu.pid")]
        for n in self.nics:
            # A hub port and nothing else: no host network, no user-mode NAT.
            argv += ["-netdev", f"hubport,id=hub-{n.name},hubid=0"]
            if n.plugged:
                argv += ["-device", _device(n)]
        return argv

    def start(self) -> None:
        reap_stale_runs(self.log)
        self.accel = choose_accel(self.disk.kernel, self.log)
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=_runs_dir()))
        run = self.run_dir
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(self.disk.disk),
                        str(run / "overlay.qcow2")], check=True, timeout=60, stdin=subprocess.DEVNULL)
        (run / "ctl.log").touch()
        argv = self._argv(run)
        self.log(f"qemu ({self.accel}): {' '.join(argv)}")
        with open(run / "qemu.stderr", "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()

    def close(self) -> None:
        """Stop QEMU (QMP quit, SIGTERM, SIGKILL: by its own pid) and remove the run's directory."""
        proc, run = self.proc, self.run_dir
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError, TimeoutError, ValueError):
                self.qmp("quit", timeout=2.0)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                _stop(proc)
        if run is not None:
            if self.keep_logs is not None:
                self.keep_logs.mkdir(parents=True, exist_ok=True)
                for name in ("console.log", "ctl.log", "qemu.stderr"):
                    with contextlib.suppress(OSError):
                        shutil.copyfile(run / name, self.keep_logs / name)
            shutil.rmtree(run, ignore_errors=True)
        self.proc = None
        self.run_dir = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for QEMU to exit (the guest powered off); its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    # -- QMP -----------------------------------------------------------------

    def qmp(self, command: str, arguments: dict[str, Any] | None = None, *,
            timeout: float = QMP_TIMEOUT) -> Any:
        """Run one QMP command on a fresh connection; its ``return`` value (RuntimeError on ``error``)."""
        assert self.run_dir is not None
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.run_dir / "qmp.sock"))
            reader = sock.makefile("rb")

            def answer() -> dict[str, Any]:
                while time.monotonic() < deadline:
                    line = reader.readline()
                    if not line:
                        raise OSError("QMP connection closed")
                    msg: dict[str, Any] = json.loads(line)
                    if "return" in msg or "error" in msg:
                        return msg
                raise TimeoutError(f"QMP {command}: no answer in {timeout:g} s")

            json.loads(reader.readline())  # the greeting
            sock.sendall(b'{"execute": "qmp_capabilities"}\n')
            answer()
            request: dict[str, Any] = {"execute": command}
            if arguments:
                request["arguments"] = arguments
            sock.sendall(json.dumps(request).encode() + b"\n")
            msg = answer()
        if "error" in msg:
            raise RuntimeError(f"QMP {command}: {msg['error']}")
        return msg["return"]

    def set_link(self, name: str, up: bool) -> None:
        """Carrier on or off for the guest's NIC ``name`` (the virtio device reports it)."""
        if name not in {n.name for n in self.nics}:
            raise ValueError(f"no NIC {name} in this guest")
        self.qmp("set_link", {"name": name, "up": up})

    def device_add(self, name: str) -> None:
        """Hot-plug the NIC ``name`` given with ``plugged=False`` (ACPI PCI hot-plug of the pc machine)."""
        found = [n for n in self.nics if n.name == name]
        if not found:
            raise ValueError(f"no NIC {name} in this guest")
        n = found[0]
        self.qmp("device_add", {"driver": n.model, "netdev": f"hub-{n.name}", "id": n.name, "mac": n.mac,
                                "addr": f"{n.slot:#x}"})

    # -- the report channel ------------------------------------------------------

    def messages(self) -> Iterator[dict[str, Any]]:
        """The report messages written since the last call."""
        assert self.run_dir is not None
        with open(self.run_dir / "ctl.log", "rb") as fh:
            fh.seek(self._ctl_offset)
            data = fh.read()
        self._ctl_offset += len(data)
        data = self._ctl_partial + data
        lines = data.split(b"\n")
        self._ctl_partial = lines.pop()
        for raw in lines:
            text = raw.decode(errors="replace").strip("\r\x00 ")
            start = text.find(PREFIX)
            if start < 0:
                continue
            with contextlib.suppress(ValueError):
                msg = json.loads(text[start + len(PREFIX):])
                if isinstance(msg, dict):
                    yield msg

    def console(self, tail: int = 20000) -> str:
        """The end of the console log (kernel and systemd messages), for a failure's context."""
        assert self.run_dir is not None
        try:
            data = (self.run_dir / "console.log").read_bytes()
        except OSError:
            return ""
        return data[-tail:].decode(errors="replace")


#: A request of the guest to the host (a message of a kind ``drive`` is given a handler for),
#: made over QMP; an exception is the request's ``error``.
Request = Callable[["Guest", dict[str, Any]], None]


def set_link(guest: Guest, msg: dict[str, Any]) -> None:
    """``{"kind": "link", "nic": "ens8", "up": false}``: that NIC's carrier."""
    guest.set_link(str(msg.get("nic")), bool(msg.get("up")))


def drive(guest: Guest, timeout: float, *, poll: float = 0.1,
          requests: Mapping[str, Request] | None = None) -> Report:
    """Serve the guest's requests and collect its report until it powers off or ``timeout``.

    ``link`` requests are served (``set_link``), and those of ``requests``
    (kind -> handler); each gets an ``error`` field, None if it was done.
    The guest's last message is ``{"kind": "done"}``; ``Report.finished``
    says whether it came.  The guest is left to power off by itself (bounded
    by ``timeout`` too); the caller's ``close`` cleans up either way.
    """
    handlers: dict[str, Request] = {"link": set_link, **(requests or {})}
    report = Report()
    deadline = guest.started_at + timeout
    while True:
        # Looked at before reading, so that the lines of a guest that just
        # powered off are all read once more.
        running = guest.alive
        for msg in guest.messages():
            now = time.monotonic() - guest.started_at
            msg["at"] = round(now, 2)
            if report.boot_seconds is None:
                report.boot_seconds = now
            kind = str(msg.get("kind"))
            handler = handlers.get(kind)
            if handler is not None:
                error = None
                try:
                    handler(guest, msg)
                except (OSError, RuntimeError, TimeoutError, ValueError) as err:
                    error = str(err)
                guest.log(f"{now:7.1f} s  {json.dumps(msg)}" + (f": {error}" if error else ""))
                msg["error"] = error
            elif kind == "text":
                size = len(str(msg.get("text", "")))
                guest.log(f"{now:7.1f} s  text: {msg.get('name')} ({size} characters)")
            else:
                guest.log(f"{now:7.1f} s  {json.dumps(msg)[:300]}")
            report.messages.append(msg)
            if kind == "done":
                report.finished = True
        if not running:
            report.exit_code = guest.proc.returncode if guest.proc is not None else None
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    report.total_seconds = time.monotonic() - guest.started_at
    return report
