"""``ipmp-boot`` with 32 hostname files, then the re-apply.

32 NICs in 16 groups (``GroupPlan``: a data and a test address per NIC, one
/28 and one router per group, 16 default routers).  On a fresh topology:

1. ``ipmp-boot`` -- the first apply, timed;
2. a pause, so the kernel's own follow-ups (IPv6 link-local DAD) are over;
3. ``ipmp-boot --check`` -- must say "in sync" (exit 0), timed;
4. ``ipmp-boot`` again -- the re-apply, timed, while a raw netlink listener in
   the host namespace counts every link, address, route, rule and netconf
   message: a re-apply that changes nothing produces none.

Every command runs from a timer process inside the host namespace (no
``ip netns exec`` in the figure), beside ``python -c pass``.  Repeated on
fresh topologies.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench.common import BIN, Dist, GroupPlan, Lab, Row, lab, ms, repo_env, say

NAME = "boot"
GROUPS = 16


def _time(the_lab: Lab, commands: list[tuple[str, list[str]]], rounds: int = 1,
          check: bool = True) -> dict[str, list[float]]:
    env = repo_env({"IPMP_ROOT": str(the_lab.root)})
    proc = the_lab.topo.run("host", [sys.executable, "-m", "bench.timer", "--rounds", str(rounds),
                                     "--warmup", "0", "--json", json.dumps(commands)],
                            env=env, check=False, timeout=600)
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    if check and (proc.returncode != 0 or "error" in doc):
        raise RuntimeError(f"timer failed: {doc.get('error') or proc.stderr}")
    return {k: [float(x) for x in v] for k, v in doc.items() if k != "error"}


def run(quick: bool) -> list[Row]:
    repeats = 1 if quick else 3
    plan = GroupPlan(GROUPS)
    boot = [str(BIN / "ipmp-boot")]
    first: list[float] = []
    again: list[float] = []
    checks: list[float] = []
    base: list[float] = []
    changes: list[int] = []
    kinds: dict[str, int] = {}
    for r in range(repeats):
        say(f"{NAME}: {len(plan.nics)} hostname files, fresh topology {r + 1}/{repeats}")
        with lab(plan.nics, plan.files(10000), extra_router_addrs=plan.router_addrs()) as the_lab:
            first += [ms(t) for t in _time(the_lab, [("boot", boot)])["boot"]]
            time.sleep(3.0)
            pair = [("check", [*boot, "--check"]), ("pass", [sys.executable, "-c", "pass"])]
            checked = _time(the_lab, pair, check=False)
            if "check" not in checked:
                raise RuntimeError("ipmp-boot --check says the kernel is not in sync right after the boot")
            checks += [ms(t) for t in checked["check"]]
            base += [ms(t) for t in checked["pass"]]
            agent = the_lab.agent("host", "link,addr,route,rule,netconf")
            mark = agent.mark()
            again += [ms(t) for t in _time(the_lab, [("again", boot)])["again"]]
            time.sleep(0.2)
            with agent.cond:
                seen = [e for e in agent.events[mark:] if e.get("ev") != "overrun"]
            changes.append(len(seen))
            for e in seen:
                key = str(e.get("ev")) + (f":{e['type']}" if "type" in e else "")
                kinds[key] = kinds.get(key, 0) + 1
    f, a, c, b = Dist.of(first), Dist.of(again), Dist.of(checks), Dist.of(base)
    say(f"{NAME}: first {f.fmt(digits=0)}; re-apply {a.fmt(digits=0)} with {changes} kernel messages")
    met = f.max <= 1500 and a.max <= 1500 and max(changes) == 0
    notes = [f"{len(plan.nics)} NICs in {GROUPS} groups, 2 addresses each, {GROUPS} default routers; "
             f"{repeats} fresh topologies",
             f"first boot: {f.fmt(digits=0)}",
             f"re-apply: {a.fmt(digits=0)}; kernel messages seen during it: {changes}"
             + (f" ({kinds})" if kinds else ""),
             f"ipmp-boot --check (in sync, exit 0): {c.fmt(digits=0)}",
             f"python -c pass in the same runs: {b.fmt(digits=0)}"]
    measured = (f"first boot median {f.p50:.0f} ms (max {f.max:.0f}); re-apply median {a.p50:.0f} ms "
                f"(max {a.max:.0f}), {max(changes)} kernel changes")
    return [Row("`ipmp-boot` with 32 hostname files; re-apply", "<= 1.5 s; re-apply makes 0 kernel changes",
                measured, met, notes)]
