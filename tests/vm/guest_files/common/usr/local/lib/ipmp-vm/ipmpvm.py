"""In the guest: what every check program of tests/vm shares.

The report channel to the host (``emit``: one ``IPMPVM {json}`` line per
message on ttyS1, tests/vm/guest.py's protocol), commands with a bound
(``sh``), systemd's and the journal's word (``show``, ``cursor``,
``journal``), bounded waits, the test group's addresses and the peer that
pings them from the router namespace, the checks and the steps that make
them, and a sampler thread.

Standard library only: it runs on the guest's own python3.  The programs
run under ``python3 -I`` (no script directory on sys.path) and import it
after ``sys.path.insert(0, LIB)``; tests/vm/image.py puts it into every
image with a check program (``image.guest_tree``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import tty
from collections.abc import Callable, Iterable
from typing import Any, Self

#: Where this module lives in the guest.
LIB = "/usr/local/lib/ipmp-vm"
CTL = "/dev/ttyS1"
PREFIX = "IPMPVM "
ENV = dict(os.environ, LC_ALL="C", SYSTEMD_COLORS="0", SYSTEMD_PAGER="", PAGER="cat")
#: The router (192.0.2.1) and peer namespace on ens10 (each image's net-setup).
PEER_NS = "ipmpvm-rt"
#: The group's data and test addresses -> their Linux NIC (ens8: qfe0/hme0, ens9: qfe1/hme1).
DATA = {"192.0.2.100": "ens8", "192.0.2.101": "ens9"}
TEST = {"192.0.2.10": "ens8", "192.0.2.11": "ens9"}
#: The wheel install's, or the Debian package's.
IPMPSTAT = "/opt/ipmp/bin/ipmpstat" if os.path.exists("/opt/ipmp/bin/ipmpstat") else "/usr/bin/ipmpstat"

_ctl: Any = None


def emit(kind: str, **fields: Any) -> None:
    """One message to the host."""
    global _ctl
    if _ctl is None:
        fd = os.open(CTL, os.O_WRONLY | os.O_NOCTTY)
        tty.setraw(fd)  # no echo, no \n -> \r\n
        _ctl = os.fdopen(fd, "w", buffering=1)
    _ctl.write(PREFIX + json.dumps({"kind": kind, **fields}) + "\n")
    _ctl.flush()


def sh(*argv: str, timeout: float = 60, env: dict[str, str] | None = None, cwd: str | None = None,
       stdin: str | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command, bounded: a timeout is exit 124; ``check``: RuntimeError on a failure."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env or ENV, cwd=cwd, input=stdin,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout} s")
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


def show(unit: str | None, *props: str) -> dict[str, str]:
    """``systemctl show`` of ``unit`` (None: the manager itself)."""
    out = sh("systemctl", "show", *([unit] if unit else []), *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def cursor() -> str:
    """The journal's cursor now ("" if none), for ``journal`` to read what comes after."""
    out = sh("journalctl", "--show-cursor", "-n", "0", "--quiet").stdout
    m = re.search(r"-- cursor: (\S+)", out)
    return m.group(1) if m else ""


def journal(after: str, *selectors: str) -> str:
    args = ["journalctl", "--no-pager", "-o", "cat", *selectors]
    if after:
        args.append(f"--after-cursor={after}")
    return sh(*args).stdout


def wait_for(what: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """``what()`` once it is true, or its last value once ``timeout`` is up."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def kernel_option(key: str) -> str:
    """``ipmpvm.KEY=VALUE`` of the kernel command line (the host's word), or "?"."""
    with open("/proc/cmdline") as fh:
        m = re.search(rf"(?:^|\s)ipmpvm\.{key}=(\S+)", fh.read())
    return m.group(1) if m else "?"


def addresses() -> dict[str, str]:
    """IPv4 address -> Linux NIC, in the guest's own namespace."""
    found: dict[str, str] = {}
    for link in json.loads(sh("ip", "-j", "-4", "addr", "show").stdout or "[]"):
        for a in link.get("addr_info", []):
            found[a["local"]] = link["ifname"]
    return found


def carrier(nic: str) -> int | None:
    try:
        with open(f"/sys/class/net/{nic}/carrier") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def ipmpstat(*args: str) -> str:
    return sh(IPMPSTAT, *args, timeout=30).stdout.strip()


def network_state() -> str:
    """The guest's and the peer's addresses, routes, rules, neighbours and links, and ipmpstat."""
    parts = []
    for argv in (("ip", "-4", "addr"), ("ip", "-4", "route"), ("ip", "-4", "rule"), ("ip", "-4", "neigh"),
                 ("ip", "-s", "link"), ("ip", "netns", "exec", PEER_NS, "ip", "-4", "neigh"),
                 ("ip", "netns", "exec", PEER_NS, "ip", "-s", "link"),
                 (IPMPSTAT, "-an"), (IPMPSTAT, "-i")):
        done = sh(*argv, timeout=20)
        parts.append(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
    return "\n".join(parts)


#: What the last unanswered ping said (its exit status and output), for the report.
unanswered: dict[str, str] = {}

#: How long the peer may take to get an answer (s).  Up to three pings, one
#: second apart: a single echo lost under an emulated CPU is no finding, an
#: address that stays unanswered is (the loss at a move is measured by the
#: samplers and by bench/peers.py, not here).
REACH_WITHIN = 8.0


def peer_reaches(addr: str) -> bool:
    """The peer's ping to ``addr`` is answered within REACH_WITHIN; an unanswered one is recorded."""
    deadline = time.monotonic() + REACH_WITHIN
    for attempt in range(3):
        t0 = time.monotonic()
        done = sh("ip", "netns", "exec", PEER_NS, "ping", "-n", "-c", "1", "-W", "2", addr, timeout=10)
        if done.returncode == 0:
            return True
        unanswered[addr] = (f"try {attempt + 1}: exit {done.returncode} after {time.monotonic() - t0:.2f} s: "
                            f"{done.stdout.strip()} {done.stderr.strip()}")
        emit("text", name=f"ping {addr} from the peer went unanswered",
             text=f"{unanswered[addr]}\n{network_state()}")
        if time.monotonic() + 3 > deadline:
            break
        time.sleep(1)
    return False


class Checks:
    """The checks made so far: each one a ``check`` message to the host."""

    def __init__(self) -> None:
        self.failed = 0

    def check(self, name: str, ok: bool, detail: Any = "") -> bool:
        if not ok:
            self.failed += 1
        emit("check", name=name, ok=bool(ok), detail=detail)
        return ok


def run_steps(c: Checks, steps: Iterable[Callable[[Checks], Any]]) -> None:
    """Each step in turn: a broken step is a failed check, and the others still run."""
    for step in steps:
        try:
            step(c)
        except Exception as err:
            c.check(f"step {getattr(step, '__name__', '?')} ran", False, f"{type(err).__name__}: {err}")


def check_addresses(c: Checks, when: str) -> None:
    """Every data and test address on its own NIC, and the peer reaches every data address."""
    want = {**DATA, **TEST}
    got = wait_for(lambda: (a := addresses()) and all(a.get(k) == v for k, v in want.items()) and a, 30)
    c.check(f"{when}: data and test addresses on their NICs", bool(got),
            {k: (got or addresses()).get(k) for k in want})
    reached = {a: peer_reaches(a) for a in DATA}
    c.check(f"{when}: the peer reaches every data address", all(reached.values()),
            {a: ok or unanswered.get(a, "") for a, ok in reached.items()})


# --------------------------------------------------------------------------
# programs that reboot the guest between phases
# --------------------------------------------------------------------------

#: Where such a program keeps the phase it is in across reboots.
PHASE = "/var/lib/ipmp-vm/phase"


def phase(first: str) -> str:
    """The phase of this boot: the one the last boot recorded, else ``first``."""
    try:
        with open(PHASE) as fh:
            return fh.read().strip()
    except OSError:
        return first


def next_phase(name: str) -> None:
    """Record the phase of the next boot (written whole and synced: a reset follows)."""
    os.makedirs(os.path.dirname(PHASE), exist_ok=True)
    with open(PHASE + ".new", "w") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(PHASE + ".new", PHASE)


def after_exit(action: str) -> None:
    """``systemctl reboot``/``poweroff`` two seconds after this program has exited.

    Not from here directly: the reboot stops this unit, and a oneshot stopped
    while its program still runs fails, which is ``FailureAction=poweroff-force``
    (measured: the first boot powered off instead of rebooting).  A transient
    timer starts it once the unit is done.
    """
    out = sh("systemd-run", "--quiet", "--on-active=2", "--timer-property=AccuracySec=100ms",
             "/usr/bin/systemctl", "--no-block", action)
    if out.returncode != 0:
        emit("text", name=f"systemd-run {action}", text=out.stdout + out.stderr)


def reboot_into(c: Checks, now: str, following: str) -> bool:
    """End the phase ``now``; when every check passed and a ``following`` phase
    is due, record it and reboot into it (True).  Otherwise False: the caller
    reports and powers off."""
    emit("phase", phase=now, failed=c.failed)
    if following == "done" or c.failed:
        return False
    next_phase(following)
    sh("sync")
    after_exit("reboot")
    return True


def daemon_journal(chars: int = 20000) -> str:
    """This boot's journal of in.mpathd and ipmp-boot, its last ``chars`` characters."""
    return sh("journalctl", "--no-pager", "-o", "short-monotonic", "-b", "-u", "in.mpathd.service",
              "-u", "ipmp-boot.service").stdout[-chars:]


def end_run(c: Checks, now: str, following: str,
            report: Callable[[], None] | None = None) -> int:
    """The end of a phased program's boot: reboot into ``following`` when all
    passed, else report (the daemon's journal, or ``report``) and power off."""
    if reboot_into(c, now, following):
        return 0
    if report is None:
        emit("text", name=f"journalctl -u in.mpathd.service -u ipmp-boot.service ({now})",
             text=daemon_journal())
    else:
        report()
    emit("done", failed=c.failed, phase=now)
    after_exit("poweroff")
    return 0


class Sampler:
    """``sample()`` in a thread every ``interval`` s (0: as fast as it goes) while in the ``with`` block."""

    interval = 0.2

    def __init__(self) -> None:
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self.samples += 1
            if self.interval:
                self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
