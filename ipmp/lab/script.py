"""The drill's script: which steps a configuration gets, in which order, and what is left out.

* for every NIC in a group: link failure and repair, then (if it has a test
  address, or its group probes transitively, so that probes can notice)
  silent failure and repair;
* for every group of two or more: ``if_mpadm -d`` and ``-r`` of each member,
  and the refusal to offline the last usable one;
* a router outage (probes fail everywhere at once: group failure, no
  failover) and its end.

Pure: a plan in, a list of steps out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Types only: the plan module evaluates boot files through the product,
    # which this pure module must not load.
    from ipmp.lab.plan import NetworkPlan

__all__ = ["STEP_KINDS", "Step", "plan_steps"]

STEP_KINDS = (
    "baseline",
    "link-fail",
    "link-repair",
    "silent-fail",
    "silent-repair",
    "offline",
    "undo-offline",
    "refuse-offline",
    "router-down",
    "router-up",
)


@dataclass(frozen=True)
class Step:
    kind: str
    nic: str | None = None
    title: str = ""


def plan_steps(plan: NetworkPlan) -> tuple[list[Step], list[str]]:
    """The script for ``plan``, and notes about what it leaves out and why."""
    steps: list[Step] = [Step("baseline", None, "baseline: every data address answers")]
    notes: list[str] = []
    for nic in plan.nics:
        if not nic.group and not plan.track_all:
            notes.append(f"{nic.name} is in no group: in.mpathd does not track it, nothing to drill")
            continue
        steps.append(Step("link-fail", nic.name, f"{nic.name}: link failure"))
        steps.append(Step("link-repair", nic.name, f"{nic.name}: link repair"))
        if plan.probed(nic):
            steps.append(Step("silent-fail", nic.name, f"{nic.name}: silent failure"))
            steps.append(Step("silent-repair", nic.name, f"{nic.name}: silent repair"))
        else:
            notes.append(f"{nic.name} has no test address: a silent failure cannot be detected, not drilled")
    for group in plan.groups:
        members = [m.name for m in plan.members(group)]
        if len(members) < 2:
            notes.append(f"group {group} has one member: no offline drill")
            continue
        for m in members[:-1]:
            steps.append(Step("offline", m, f"if_mpadm -d {m}"))
            steps.append(Step("undo-offline", m, f"if_mpadm -r {m}"))
        steps.append(Step("offline", members[-1], f"if_mpadm -d {members[-1]}"))
        for m in members[1:-1]:
            steps.append(Step("offline", m, f"if_mpadm -d {m}"))
        steps.append(Step("refuse-offline", members[0], f"if_mpadm -d {members[0]} refused (last one)"))
        for m in reversed(members[1:]):
            steps.append(Step("undo-offline", m, f"if_mpadm -r {m}"))
    if any(n.has_test and n.group for n in plan.nics):
        steps.append(Step("router-down", None, "router outage"))
        steps.append(Step("router-up", None, "router back"))
    elif any(plan.probed(n) for n in plan.nics):
        # Which transitive prober is to blame when the targets vanish is our
        # rule, not Solaris' (ipmp.mpathd.transitive): nothing to check it against.
        notes.append("transitive probing only: a router outage has no Solaris behaviour to check, "
                     "not drilled")
    else:
        notes.append("no test addresses: probes never reach the router, so no router outage drill")
    return steps, notes
