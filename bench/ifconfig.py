"""Start-up of the commands scripts call in loops, beside ``python -c pass`` and net-tools.

``ifconfig -a``, ``ifconfig qfe0`` and ``ipmpstat -i`` (issue 15, point 7:
porting scripts run ``ifconfig IF`` per interface every few seconds).  All
commands run round-robin from a timer process inside the host namespace of
the booted active-active example, with in.mpathd running (so there is a
group, test addresses and a state store to show, and a daemon for
``ipmpstat`` to ask), each to completion.  Ours run twice per round:

* from a wheel of this checkout installed in a temporary venv
  (``common.wheel_venv``): what users run, and what the target is judged on;
* from the environment running the benchmarks (the editable install of
  ``make venv``, with ``PYTHONPATH`` at the checkout), as a developer runs it.

The target is a ratio to ``python -c pass`` of the same interpreter in the
same rounds, so that the VM's speed of the hour cancels out.  The console
scripts pip writes start as ``#!<venv>/bin/python`` without options; the
wheel's interpreter gets ``-E`` here, for the commands and for ``python -c
pass`` alike, so that the benchmark's ``PYTHONPATH`` cannot shadow the
installed package (the Debian wrappers use ``-I``, which is ``-E`` plus
``-s`` and no script directory on ``sys.path``: the same imports).  The two
installs differ in start-up: every interpreter of an editable venv first
runs the install's import hook (a ``.pth`` file), which its ``python -c
pass`` includes.  If the wheel cannot be built (pip may need the network for
setuptools), the rows say so and are judged on the editable run.  The
net-tools binary is looked up on PATH and in the usual sbin directories,
skipping our own console script; if it is not installed the rows say so.
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
WHEEL = "wheel"
EDITABLE = "editable"
#: The target of issue 15: each command at most this many times ``python -c pass``.
TARGET_RATIO = 2.5
#: (label, our console script, its arguments, net-tools ifconfig arguments or None).
COMMANDS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...] | None], ...] = (
    ("ifconfig -a", "ifconfig", ("-a",), ("-a",)),
    ("ifconfig qfe0", "ifconfig", ("qfe0",), ("qfe0",)),
    ("ipmpstat -i", "ipmpstat", ("-i",), None),
)
#: (label, module, the commands it bounds): the one import that sets a floor
#: under a command's time (not targets; they say where the rest goes).
#: The first two: the standard modules the read path of ``ifconfig`` imports
#: before any code of ours (``ipmp.kernel.read`` alone needs ``typing``,
#: ``socket`` and ``shlex``), without and with ``dataclasses`` (the model's).
_READ_PATH_STDLIB = "re, ipaddress, json, enum, struct, fcntl, typing, socket, shlex"
FLOORS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (f"import {_READ_PATH_STDLIB}", _READ_PATH_STDLIB, ("ifconfig -a", "ifconfig qfe0")),
    (f"import {_READ_PATH_STDLIB}, dataclasses", f"{_READ_PATH_STDLIB}, dataclasses",
     ("ifconfig -a", "ifconfig qfe0")),
    ("import ipmp.model", "ipmp.model", ("ifconfig -a", "ifconfig qfe0")),
    ("import ipmp.mpathd.control", "ipmp.mpathd.control", ("ipmpstat -i",)),
)


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


def _label(install: str, what: str) -> str:
    return f"{what} ({install})"


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
        net_tools = net_tools_ifconfig()
        for what, script, args, nt_args in COMMANDS:
            if wheel_bin is not None:
                # The console script as its shebang would run it, plus -E (see above).
                commands.append((_label(WHEEL, what), [str(wheel_bin / "python"), "-E",
                                                       str(wheel_bin / script), *args]))
            commands.append((_label(EDITABLE, what), [str(BIN / script), *args]))
            if net_tools is not None and nt_args is not None:
                commands.append((_label("net-tools", what), [net_tools, *nt_args]))
        if wheel_bin is not None:
            commands.append((_label(WHEEL, "python -c pass"),
                             [str(wheel_bin / "python"), "-E", "-c", "pass"]))
        floor_python = [str(wheel_bin / "python"), "-E"] if wheel_bin is not None else [sys.executable]
        for label, module, _bounded in FLOORS:
            commands.append((_label("floor", label), [*floor_python, "-c", f"import {module}"]))
        commands.append((_label(EDITABLE, "python -c pass"), [sys.executable, "-c", "pass"]))
        files = {"etc/default/mpathd": mpathd_conf(10000)}
        with lab(("qfe0", "qfe1"), files, example="active-active") as the_lab:
            the_lab.boot()
            the_lab.start_daemon()
            say(f"{NAME}: {rounds} rounds of {len(commands)} commands")
            proc = the_lab.topo.run("host", [sys.executable, "-m", "bench.timer", "--rounds", str(rounds),
                                             "--json", json.dumps(commands)],
                                    env=repo_env({"IPMP_ROOT": str(the_lab.root)}), check=False, timeout=1200)
    doc = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    if proc.returncode != 0 or "error" in doc:
        raise RuntimeError(f"timer failed: {doc.get('error') or proc.stderr}")
    d = {label: Dist.of([ms(t) for t in v]) for label, v in doc.items()}
    for label, dist in d.items():
        say(f"{NAME}: {label:36s} {dist.fmt(digits=1)}")
    judged = WHEEL if wheel_bin is not None else EDITABLE
    base = {install: d[_label(install, "python -c pass")] for install in (WHEEL, EDITABLE)
            if _label(install, "python -c pass") in d}
    rows: list[Row] = []
    # What the rows share goes with the first one (the details list every row's notes).
    notes = [f"{rounds} rounds, round-robin with {len(commands)} commands, from inside the host "
             "namespace, in.mpathd running"]
    if judged == WHEEL:
        notes.append("judged on the wheel install (a temporary venv, removed afterwards)")
    else:
        notes.append(f"no wheel install ({wheel_error}): judged on the editable install")
    notes += [f"{label}: {d[label].fmt(digits=1)}" for label in d if label.startswith("python -c pass (")]
    for what, _script, _args, nt_args in COMMANDS:
        ours = d[_label(judged, what)]
        ratio = ours.p50 / base[judged].p50
        measured = (f"{judged}: median {ours.p50:.0f} ms (p99 {ours.p99:.0f}) = {ratio:.1f}x "
                    f"python -c pass ({base[judged].p50:.0f} ms)")
        for install in (WHEEL, EDITABLE):
            label = _label(install, what)
            if install == judged or label not in d:
                continue
            other = d[label].p50 / base[install].p50
            measured += (f"; {install}: median {d[label].p50:.0f} ms = {other:.1f}x "
                         f"its python -c pass ({base[install].p50:.0f} ms)")
        nt_label = _label("net-tools", what)
        if nt_label in d:
            measured += f"; net-tools {d[nt_label].p50:.1f} ms (ours {ours.p50 / d[nt_label].p50:.0f}x that)"
        elif nt_args is not None:
            notes.append("net-tools ifconfig is not installed on this machine: no comparison")
        notes += [f"{label}: {d[label].fmt(digits=1)}" for label in d if label.startswith(f"{what} (")]
        for label, _module, bounded in FLOORS:
            floor = d[_label("floor", label)]
            if what in bounded:
                notes.append(f"(not a target) `python -c '{label}'` alone, {judged} venv: median "
                             f"{floor.p50:.0f} ms = {floor.p50 / base[judged].p50:.1f}x python -c pass")
        rows.append(Row(f"`{what}` wall time", f"<= {TARGET_RATIO:g}x python -c pass (median)", measured,
                        ratio <= TARGET_RATIO, notes))
        notes = []
    return rows
