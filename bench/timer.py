"""Wall time of commands, run from *inside* a namespace (no ``ip netns exec`` in the figure).

``python -m bench.timer --rounds N --json '[["label", [argv...]], ...]'`` runs
the commands round-robin (one of each per round, so a noisy neighbour hits
them all alike), each to completion with its output discarded, and prints
``{"label": [seconds, ...], ...}`` on stdout.  A command that fails is
reported as ``{"error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.timer")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", required=True, help='[["label", ["argv0", ...]], ...]')
    args = p.parse_args(argv)
    commands: list[tuple[str, list[str]]] = [(str(a), [str(x) for x in b]) for a, b in json.loads(args.json)]
    times: dict[str, list[float]] = {label: [] for label, _ in commands}
    for r in range(args.warmup + args.rounds):
        for label, cmd in commands:
            t0 = time.monotonic()
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
            t1 = time.monotonic()
            if proc.returncode != 0:
                err = proc.stderr.decode(errors="replace")[-500:]
                print(json.dumps({"error": f"{label}: exit {proc.returncode}: {err}"}))
                return 1
            if r >= args.warmup:
                times[label].append(t1 - t0)
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
