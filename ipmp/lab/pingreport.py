"""The pinger's report: per-target loss runs and round-trip times, and its JSON form.

:mod:`ipmp.lab.pinger` prints one report as the last line of its output;
the topology, the drill, the tests and the benchmarks read it back with
:func:`parse_output`.

Pure: no sockets, no clock; the pinger measures, this only counts.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["LossRange", "PingReport", "TargetStats", "parse_output", "seq_ranges"]


def seq_ranges(values: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted integers -> inclusive runs: [0,1,2,5] -> [(0,2),(5,5)]."""
    out: list[tuple[int, int]] = []
    for v in sorted(values):
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


@dataclass(frozen=True)
class LossRange:
    """A run of consecutive lost sequence numbers, with their send times.

    ``start``/``end`` are seconds since the run started (monotonic), so
    ``PingReport.start_monotonic + start`` is comparable with
    ``time.monotonic()`` taken in another process: CLOCK_MONOTONIC is
    system-wide.
    """

    first: int
    last: int
    start: float
    end: float

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class TargetStats:
    """Per-target result of one pinger run."""

    address: str
    sent: int
    received: int
    late: int
    duplicates: int
    errors: dict[str, int]
    replied: tuple[tuple[int, int], ...]  # inclusive seq ranges that got a timely reply
    lost_ranges: tuple[LossRange, ...]
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def max_consecutive_lost(self) -> int:
        return max((r.count for r in self.lost_ranges), default=0)

    def replied_seqs(self) -> set[int]:
        return {s for a, b in self.replied for s in range(a, b + 1)}


@dataclass(frozen=True)
class PingReport:
    """The whole run: per-target stats plus timing facts about the sender."""

    ident: int
    interval: float
    timeout: float
    rounds: int
    start_monotonic: float
    end_monotonic: float
    max_send_lag_ms: float  # worst delay of a round behind its schedule
    targets: dict[str, TargetStats]

    def __getitem__(self, address: object) -> TargetStats:
        """Look a target up by the address as given, or any equal address form."""
        key = str(address).split("/")[0]
        if key in self.targets:
            return self.targets[key]
        want = ipaddress.ip_address(key.split("%")[0])
        for name, stats in self.targets.items():
            if ipaddress.ip_address(name.split("%")[0]) == want:
                return stats
        raise KeyError(address)

    def to_json(self) -> dict[str, Any]:
        return {
            "ident": self.ident,
            "interval": self.interval,
            "timeout": self.timeout,
            "rounds": self.rounds,
            "start_monotonic": self.start_monotonic,
            "end_monotonic": self.end_monotonic,
            "max_send_lag_ms": self.max_send_lag_ms,
            "targets": {
                name: {
                    "sent": t.sent,
                    "received": t.received,
                    "lost": t.lost,
                    "late": t.late,
                    "duplicates": t.duplicates,
                    "errors": t.errors,
                    "rtt_ms": None
                    if t.rtt_min_ms is None
                    else {"min": t.rtt_min_ms, "avg": t.rtt_avg_ms, "max": t.rtt_max_ms},
                    "replied": [list(r) for r in t.replied],
                    "lost_ranges": [
                        {"first": r.first, "last": r.last, "start": r.start, "end": r.end}
                        for r in t.lost_ranges
                    ],
                    "max_consecutive_lost": t.max_consecutive_lost,
                }
                for name, t in self.targets.items()
            },
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PingReport:
        targets: dict[str, TargetStats] = {}
        for name, t in doc["targets"].items():
            rtt = t["rtt_ms"]
            targets[name] = TargetStats(
                address=name,
                sent=int(t["sent"]),
                received=int(t["received"]),
                late=int(t["late"]),
                duplicates=int(t["duplicates"]),
                errors={str(k): int(v) for k, v in t["errors"].items()},
                replied=tuple((int(a), int(b)) for a, b in t["replied"]),
                lost_ranges=tuple(
                    LossRange(int(r["first"]), int(r["last"]), float(r["start"]), float(r["end"]))
                    for r in t["lost_ranges"]
                ),
                rtt_min_ms=None if rtt is None else float(rtt["min"]),
                rtt_avg_ms=None if rtt is None else float(rtt["avg"]),
                rtt_max_ms=None if rtt is None else float(rtt["max"]),
            )
        return cls(
            ident=int(doc["ident"]),
            interval=float(doc["interval"]),
            timeout=float(doc["timeout"]),
            rounds=int(doc["rounds"]),
            start_monotonic=float(doc["start_monotonic"]),
            end_monotonic=float(doc["end_monotonic"]),
            max_send_lag_ms=float(doc["max_send_lag_ms"]),
            targets=targets,
        )


def parse_output(stdout: str) -> PingReport:
    """The report from the pinger's stdout (the last line; a ready line may precede it)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("pinger printed nothing")
    doc = json.loads(lines[-1])
    if "targets" not in doc:
        raise ValueError(f"not a pinger report: {lines[-1][:200]!r}")
    return PingReport.from_json(doc)


