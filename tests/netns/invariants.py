"""The promise of issue 7, checked on a running lab: no data address lost, routing consistent.

Three readings of the host namespace, cheapest first:

* :func:`holders` -- which host NICs carry each IPv4/IPv6 address (one
  ``ip -j addr``, a few milliseconds; usable every second of a soak);
* :func:`rule_problems` -- every data and test address has its ``from``
  rule into the table of the NIC that holds it, and no other (``ip -j rule``,
  ``ip -j link``; independent of the product's code);
* :func:`plan_left` -- the product's own view: the plan the daemon's rescan
  would carry out for the tracked NICs (``expected(kernel, store)`` against
  the kernel), which must be empty when all is consistent.  This is the
  ``ipmp-boot --check`` idea for the daemon's layout rather than the boot
  files' one.  Runs a short Python in the namespace (~0.5 s).

:func:`layout_problems` combines the first with the lab's own truth (which
NICs the topology has failed) into "every data address on exactly one
interface, a usable one".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from ipmp.lab.topology import Topology

#: The toolkit's rule preferences and table base (linux-mapping.md recipe).
PREF_TEST = 100
PREF_DATA = 200
TABLE_BASE = 1000

PLAN_SCRIPT = r"""
import asyncio, json, sys
from pathlib import Path
from ipmp.apply import make_plan, sysctl_keys
from ipmp.kernel.execute import Kernel
from ipmp.linux.ops import command
from ipmp.host.state import Store
from ipmp.linux.view import Scope, expected

async def main(root, names):
    async with Kernel() as kernel:
        store = Store(root)
        with store.locked(exclusive=False):
            state = await kernel.read(sysctl_keys(names))
            stored = store.load()
    config = expected(state, stored.interfaces)
    pairs = set()
    for name in names:
        itf = config.get(name)
        for family in (itf.plumbed if itf is not None else ()):
            pairs.add((name, family))
    plan = make_plan(state, config, Scope(frozenset(pairs)), stored.defaultrouters)
    json.dump([command(op) for op in plan], sys.stdout)

asyncio.run(main(Path(sys.argv[1]), sys.argv[2:]))
"""


def holders(topo: Topology, family: str = "-4") -> dict[str, list[str]]:
    """Address -> the host NICs the kernel has it on (every address of every NIC)."""
    out: dict[str, list[str]] = {}
    for link in topo.ip_json("host", family, "addr", "show"):
        for info in link.get("addr_info", ()):
            out.setdefault(str(info["local"]), []).append(str(link["ifname"]))
    return out


def usable_nics(topo: Topology) -> set[str]:
    """The host NICs the lab has not failed (carrier or silently)."""
    return set(topo.nics) - set(topo.failed_links) - set(topo.silent_failures)


def layout_problems(topo: Topology, data: Iterable[str], *, usable: set[str] | None = None,
                    family: str = "-4") -> list[str]:
    """What breaks "every data address on exactly one interface, a usable one" (empty: nothing)."""
    held = holders(topo, family)
    problems = []
    for address in data:
        nics = held.get(address, [])
        if len(nics) != 1:
            problems.append(f"{address} is on {len(nics)} interfaces: {nics}")
        elif usable is not None and nics[0] not in usable:
            problems.append(f"{address} is on {nics[0]}, which is not usable (usable: {sorted(usable)})")
    return problems


def rule_problems(topo: Topology, data: Iterable[str], tests: Iterable[str]) -> list[str]:
    """Each address's ``from`` rule points at the table of the NIC holding it, and only there."""
    index = {str(link["ifname"]): int(link["ifindex"]) for link in topo.ip_json("host", "link", "show")}
    held = holders(topo)
    rules = [r for r in topo.ip_json("host", "-4", "rule", "show") if r.get("protocol") == "73"]
    problems = []
    for pref, addresses in ((PREF_DATA, data), (PREF_TEST, tests)):
        for address in addresses:
            mine = sorted((int(r["priority"]), str(r["table"])) for r in rules if r.get("src") == address)
            nics = held.get(address, [])
            want = [(pref, str(TABLE_BASE + index[nics[0]]))] if len(nics) == 1 else []
            if mine != want:
                problems.append(f"rules from {address}: {mine}, want {want} (on {nics})")
    return problems


def plan_left(topo: Topology, root: Path, nics: Iterable[str]) -> list[str]:
    """The product's plan for the tracked NICs against the store (empty when consistent)."""
    proc = topo.run("host", [sys.executable, "-c", PLAN_SCRIPT, str(root), *nics], check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    left: list[str] = json.loads(proc.stdout)
    return left
