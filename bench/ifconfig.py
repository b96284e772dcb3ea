"""``ifconfig -a`` wall time, beside net-tools ``ifconfig -a`` and ``python -c pass``.

All three run round-robin from a timer process inside the host namespace of
the booted active-active example (so ours has a group, test addresses and the
state store to show), each to completion.  Two more commands show where the
time goes: ``python -c 'import asyncio'`` and ``python -c 'import pyroute2'``
(what ``ipmp.netlink`` imports before it can read anything).  The net-tools binary is looked up
on PATH and in the usual sbin directories, skipping our own console script;
if it is not installed the row says so.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from bench.common import BIN, Dist, Row, lab, mpathd_conf, ms, repo_env, say

NAME = "ifconfig"


def net_tools_ifconfig() -> str | None:
    ours = (BIN / "ifconfig").resolve()
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    dirs += ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    for d in dirs:
        found = shutil.which("ifconfig", path=d)
        if found is None or Path(found).resolve() == ours:
            continue
        with open(found, "rb") as fh:
            if fh.read(4) == b"\x7fELF":
                return found
    return None


def run(quick: bool) -> list[Row]:
    rounds = 10 if quick else 40
    commands: list[tuple[str, list[str]]] = [
        ("ours", [str(BIN / "ifconfig"), "-a"]),
        ("python -c pass", [sys.executable, "-c", "pass"]),
        # Where the time goes (not part of the target): the imports alone.
        ("python -c 'import asyncio'", [sys.executable, "-c", "import asyncio"]),
        ("python -c 'import pyroute2'", [sys.executable, "-c", "import pyroute2"]),
    ]
    other = net_tools_ifconfig()
    if other is not None:
        commands.insert(1, ("net-tools", [other, "-a"]))
    files = {"etc/default/mpathd": mpathd_conf(10000)}
    with lab(("qfe0", "qfe1"), files, example="active-active") as the_lab:
        the_lab.boot()
        say(f"{NAME}: {rounds} rounds of {', '.join(label for label, _ in commands)}")
        proc = the_lab.topo.run("host", [sys.executable, "-m", "bench.timer", "--rounds", str(rounds),
                                         "--json", json.dumps(commands)],
                                env=repo_env({"IPMP_ROOT": str(the_lab.root)}), check=False, timeout=600)
    doc = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    if proc.returncode != 0 or "error" in doc:
        raise RuntimeError(f"timer failed: {doc.get('error') or proc.stderr}")
    d = {label: Dist.of([ms(t) for t in v]) for label, v in doc.items()}
    for label, dist in d.items():
        say(f"{NAME}: {label:15s} {dist.fmt(digits=1)}")
    ours = d["ours"]
    base = d["python -c pass"]
    notes = [f"{rounds} rounds, round-robin, from inside the host namespace"]
    notes += [f"{label}: {dist.fmt(digits=1)}" for label, dist in d.items()]
    ratio = f"{ours.p50 / base.p50:.1f}x python -c pass"
    if "net-tools" in d:
        ratio += f", {ours.p50 / d['net-tools'].p50:.0f}x net-tools"
    else:
        notes.append("net-tools ifconfig is not installed on this machine: no comparison")
    measured = (f"median {ours.p50:.0f} ms (p99 {ours.p99:.0f}); net-tools "
                + (f"{d['net-tools'].p50:.1f} ms" if "net-tools" in d else "not installed")
                + f"; python -c pass {base.p50:.0f} ms; ours = {ratio}")
    return [Row("`ifconfig -a` wall time", "<= 100 ms median", measured, ours.p50 <= 100, notes)]
