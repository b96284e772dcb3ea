"""The long fuzzing run (``make fuzz``): the properties of ``properties.py``, a million inputs.

Usage (from the repository root)::

    python -m tests.fuzz.run [--inputs 1000000] [--jobs 2] [--seed 1] [--targets argv,ipc]
    python -m tests.fuzz.run --replay argv:12345 [--seed 1]

The inputs are split evenly over the targets (hostname files, ifconfig argv,
/etc/default/mpathd, hosts/netmasks/defaultrouter, IPC requests).  Input
``i`` of a target is generated from ``Random("<seed>:<target>:<i>")``, so a
failure is reproduced on its own with ``--replay target:i``.  Chunks of
inputs run in ``--jobs`` worker processes (``--jobs 1``: in this process).

Prints one line per target (inputs, CPU seconds, inputs per CPU second,
violations) and the wall-clock time, shows up to five failing inputs per
target with their errors, and exits 1 if any property failed.  Pure: no
kernel, no network, no files written.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import random
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.fuzz.properties import TARGETS, generate, run_target

CHUNK = 2000
SHOWN = 5


@dataclass
class Tally:
    inputs: int = 0
    cpu: float = 0.0
    failures: int = 0
    examples: list[str] = field(default_factory=list)


def _input(seed: int, target: str, index: int) -> object:
    return generate(target, random.Random(f"{seed}:{target}:{index}"))


def _one(seed: int, target: str, index: int) -> str | None:
    """None if the properties hold for input ``index``; otherwise what went wrong."""
    value = _input(seed, target, index)
    try:
        run_target(target, value)
    except Exception as err:  # anything escaping is a finding
        where = traceback.extract_tb(err.__traceback__)[-1]
        return (f"{target}:{index} input={value!r:.300}\n    {type(err).__name__}: {str(err)[:300]}"
                f" ({where.filename}:{where.lineno})")
    return None


def _chunk(job: tuple[int, str, int, int]) -> tuple[str, int, float, list[str]]:
    seed, target, start, stop = job
    t0 = time.process_time()
    bad = [msg for i in range(start, stop) if (msg := _one(seed, target, i)) is not None]
    return target, stop - start, time.process_time() - t0, bad


def _jobs(seed: int, targets: list[str], per_target: int) -> Iterator[tuple[int, str, int, int]]:
    # Interleaved, so every target progresses from the start.
    for start in range(0, per_target, CHUNK):
        for target in targets:
            yield seed, target, start, min(per_target, start + CHUNK)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="inputs in all, split over the targets")
    ap.add_argument("--jobs", type=int, default=max(1, multiprocessing.cpu_count()))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}")
    ap.add_argument("--replay", metavar="TARGET:INDEX", help="run one input and show the full traceback")
    args = ap.parse_args(argv)

    if args.replay:
        target, _, index = args.replay.partition(":")
        value = _input(args.seed, target, int(index))
        print(f"{target}:{index} input={value!r}")
        run_target(target, value)  # a failure shows its traceback
        print("properties hold")
        return 0

    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        ap.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    per_target = args.inputs // len(targets)
    tallies = {t: Tally() for t in targets}
    print(f"fuzzing {per_target * len(targets)} inputs ({per_target} per target), seed {args.seed}, "
          f"{args.jobs} job(s)", flush=True)
    wall0 = time.monotonic()
    last_report = wall0
    done = 0
    pool = multiprocessing.Pool(args.jobs) if args.jobs > 1 else None  # one job: in this process
    results = (pool.imap_unordered(_chunk, _jobs(args.seed, targets, per_target)) if pool is not None
               else map(_chunk, _jobs(args.seed, targets, per_target)))
    with pool if pool is not None else contextlib.nullcontext():
        for target, count, cpu, bad in results:
            tally = tallies[target]
            tally.inputs += count
            tally.cpu += cpu
            tally.failures += len(bad)
            tally.examples.extend(bad[: SHOWN - len(tally.examples)])
            done += count
            now = time.monotonic()
            if now - last_report >= 30:
                last_report = now
                rate = done / (now - wall0)
                print(f"  {done} inputs, {now - wall0:.0f} s, {rate:.0f} inputs/s", flush=True)
    wall = time.monotonic() - wall0

    print(f"{'target':<12} {'inputs':>9} {'cpu s':>8} {'inputs/cpu s':>13} {'violations':>10}")
    for target, tally in tallies.items():
        rate = tally.inputs / tally.cpu if tally.cpu else 0.0
        print(f"{target:<12} {tally.inputs:>9} {tally.cpu:>8.1f} {rate:>13.0f} {tally.failures:>10}")
    total = sum(t.inputs for t in tallies.values())
    failures = sum(t.failures for t in tallies.values())
    print(f"total: {total} inputs in {wall:.1f} s wall ({total / wall:.0f} inputs/s with "
          f"{args.jobs} job(s)), {failures} violation(s)")
    for tally in tallies.values():
        for example in tally.examples:
            print(f"FAIL {example}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
