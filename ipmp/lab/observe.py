"""What a drill sees: the daemon's stamped log, read as it grows, and the kernel's addresses.

Both are independent of the daemon's own account: the log lines are
stamped by :mod:`ipmp.lab.logwrap` as they leave the daemon, and where an
address is comes from the kernel (``ip -o monitor address``).  All times
are CLOCK_MONOTONIC, shared by every process.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ipmp.lab.lab import Lab
from ipmp.lab.logwrap import parse_line

__all__ = ["AddressEvent", "AddressMonitor", "LogTail"]


class LogTail:
    """The daemon's stamped log, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""
        self.lines: list[tuple[float, str]] = []

    def poll(self) -> list[tuple[float, str]]:
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
        except OSError:
            return []
        text = self.partial + chunk
        complete, _, self.partial = text.rpartition("\n")
        new: list[tuple[float, str]] = []
        for line in complete.splitlines() if complete else ():
            parsed = parse_line(line)
            # "# ..." lines are the wrapper's own (start, exit).
            if parsed is not None and not parsed[1].startswith("# "):
                new.append(parsed)
        self.lines.extend(new)
        return new

    def between(self, start: float, end: float) -> list[tuple[float, str]]:
        return [(t, m) for t, m in self.lines if start <= t <= end]


#: ``[Deleted ]3: qfe1    inet 192.0.2.100/24 ... qfe1:2\ ...`` (``-o``: one line per event).
_MONITOR_LINE = re.compile(
    r"(?P<deleted>Deleted )?\d+: (?P<dev>[^\s:@]+)\S*\s+inet6? (?P<addr>[0-9a-fA-F.:]+)/\d+"
)


@dataclass
class AddressEvent:
    t: float
    address: str
    nic: str
    added: bool


class AddressMonitor:
    """Where every address of the host is, from the kernel (``ip -o monitor address``)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.events: list[AddressEvent] = []
        self.where: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._proc = lab.topology.popen(
            "host", ["ip", "-o", "monitor", "address"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._read, name="address-monitor", daemon=True)
        self._thread.start()
        # After the monitor runs, so that no change falls between the two;
        # an event seen twice is harmless (sets).
        time.sleep(0.05)
        for link in lab.topology.ip_json("host", "addr", "show"):
            for a in link.get("addr_info", ()):
                self._apply(str(a["local"]), str(link["ifname"]), True)

    def _apply(self, address: str, nic: str, added: bool) -> None:
        with self._lock:
            nics = self.where.setdefault(address, set())
            if added:
                nics.add(nic)
            else:
                nics.discard(nic)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            now = time.monotonic()
            m = _MONITOR_LINE.match(raw.decode(errors="replace"))
            if m is None:
                continue
            address = str(ipaddress.ip_address(m["addr"]))
            added = m["deleted"] is None
            self._apply(address, m["dev"], added)
            with self._lock:
                self.events.append(AddressEvent(now, address, m["dev"], added))

    def nics_of(self, address: str) -> set[str]:
        with self._lock:
            return set(self.where.get(address, ()))

    def added_since(self, address: str, nic: str, since: float) -> float | None:
        """When ``address`` last appeared on ``nic`` after ``since``."""
        with self._lock:
            times = [e.t for e in self.events
                     if e.address == address and e.nic == nic and e.added and e.t >= since]
        return max(times) if times else None

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._thread.join(2.0)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
