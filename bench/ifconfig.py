"""``ifconfig -a`` wall time, beside net-tools ``ifconfig -a`` and ``python -c pass``.

All commands run round-robin from a timer process inside the host namespace
of the booted active-active example (so ours has a group, test addresses and
the state store to show), each to completion.  Ours runs twice per round:

* from a wheel of this checkout installed in a temporary venv
  (``common.wheel_venv``): what users run, and what the target is judged on;
* from the environment running the benchmarks (the editable install of
  ``make venv``, with ``PYTHONPATH`` at the checkout), as a developer runs it.

The two differ in start-up: every interpreter of an editable venv first runs
the install's import hook (a ``.pth`` file), which ``python -c pass`` in each
venv shows.  The wheel's interpreter gets ``-E`` so that the benchmark's
``PYTHONPATH`` cannot shadow the installed package; nothing else in the
environment concerns Python.  If the wheel cannot be built (pip may need the
network for setuptools), the row says so and is judged on the editable run.
The net-tools binary is looked up on PATH and in the usual sbin directories,
skipping our own console script; if it is not installed the row says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from bench.common import BIN, Dist, Row, lab, mpathd_conf, ms, repo_env, say, wheel_venv

NAME = "ifconfig"
WHEEL = "ours, wheel install"
EDITABLE = "ours, editable install"
PASS_WHEEL = "python -c pass (wheel venv)"
PASS = "python -c pass (editable venv)"


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
    with contextlib.ExitStack() as stack:
        wheel_error = ""
        try:
            wheel_bin: Path | None = stack.enter_context(wheel_venv())
        except RuntimeError as err:
            wheel_bin, wheel_error = None, str(err).splitlines()[0][:200]
            say(f"{NAME}: no wheel install: {wheel_error}")
        commands: list[tuple[str, list[str]]] = []
        if wheel_bin is not None:
            # The console script as its shebang would run it, plus -E (see above).
            commands.append((WHEEL, [str(wheel_bin / "python"), "-E", str(wheel_bin / "ifconfig"), "-a"]))
        commands.append((EDITABLE, [str(BIN / "ifconfig"), "-a"]))
        other = net_tools_ifconfig()
        if other is not None:
            commands.append(("net-tools", [other, "-a"]))
        if wheel_bin is not None:
            commands.append((PASS_WHEEL, [str(wheel_bin / "python"), "-E", "-c", "pass"]))
        commands.append((PASS, [sys.executable, "-c", "pass"]))
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
        say(f"{NAME}: {label:30s} {dist.fmt(digits=1)}")
    judged = WHEEL if WHEEL in d else EDITABLE
    ours = d[judged]
    base = d[PASS_WHEEL] if judged == WHEEL else d[PASS]
    notes = [f"{rounds} rounds, round-robin, from inside the host namespace"]
    if judged == WHEEL:
        notes.append("the target is judged on the wheel install (a temporary venv, removed afterwards)")
    else:
        notes.append(f"no wheel install ({wheel_error}): judged on the editable install")
    notes += [f"{label}: {dist.fmt(digits=1)}" for label, dist in d.items()]
    ratio = f"{ours.p50 / base.p50:.1f}x python -c pass"
    if "net-tools" in d:
        ratio += f", {ours.p50 / d['net-tools'].p50:.0f}x net-tools"
    else:
        notes.append("net-tools ifconfig is not installed on this machine: no comparison")
    edit = d[EDITABLE]
    measured = (f"{'wheel' if judged == WHEEL else 'editable'} install: median {ours.p50:.0f} ms "
                f"(p99 {ours.p99:.0f})")
    if judged == WHEEL:
        measured += f"; editable install: median {edit.p50:.0f} ms (p99 {edit.p99:.0f})"
    measured += ("; net-tools " + (f"{d['net-tools'].p50:.1f} ms" if "net-tools" in d else "not installed")
                 + f"; python -c pass {base.p50:.0f} ms"
                 + (f" (editable venv {d[PASS].p50:.0f} ms)" if judged == WHEEL else "")
                 + f"; ours = {ratio}")
    return [Row("`ifconfig -a` wall time", "<= 100 ms median", measured, ours.p50 <= 100, notes)]
