"""Run inside a lab host namespace: bug 8 made deterministic on the real kernel.

    python stale_apply.py ROOT

The host is booted (``ipmp-boot``).  A daemon runtime (``Runtime``, with the
real netlink ``Kernel``) keeps its copy of the kernel, as in.mpathd does
between applies; then another actor flushes the IPv4 rules (``ip rule
flush`` and the ``main``/``default`` rules put back, as an admin would), and
no netlink notification reaches the runtime before it applies a failover of
qfe0 to qfe1.  Its plan, made from the copy, misses the flushed rules; the
read-back fails; the runtime must try once more from a fresh read.

Prints one JSON document: the runtime's log lines, the plan still left
afterwards by the product's planner from a fresh read, and the IPv4 rules
as iproute2 shows them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ipmp.apply import make_plan, sysctl_keys
from ipmp.host.state import Store
from ipmp.kernel.execute import Kernel
from ipmp.linux.ops import command
from ipmp.linux.view import Scope, expected
from ipmp.model import Family
from ipmp.mpathd.failover import fail_over
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import Timing
from ipmp.mpathd.runtime import Runtime
from ipmp.mpathd.settings import Settings
from ipmp.mpathd.steps import Execute

NICS = ("qfe0", "qfe1")


def flush_rules() -> None:
    """Another actor: every IPv4 rule gone, then the two an admin knows to put back."""
    subprocess.run(["ip", "-4", "rule", "flush"], check=True)
    for pref, table in (("32766", "main"), ("32767", "default")):
        subprocess.run(["ip", "-4", "rule", "add", "pref", pref, "table", table], check=True)


async def main(root: Path) -> dict[str, Any]:
    lines: list[str] = []
    keys = sysctl_keys(list(NICS))
    async with Kernel() as kernel:
        runtime = Runtime(root, Machine(Settings(), Timing()), lambda level, message: lines.append(message))
        runtime._kernel = kernel
        runtime.kernel_state = await kernel.read(keys)  # the copy, current when read
        runtime._sysctls_asked = frozenset(keys)
        stored = Store(root).load()
        config = expected(runtime.kernel_state, stored.interfaces)
        moved = fail_over(config, "qfe0", "qfe1")
        flush_rules()
        await runtime._execute(Execute(moved, NICS))
        scope = Scope(frozenset((n, f) for n in NICS for f in (Family.INET, Family.INET6)))
        left = make_plan(await kernel.read(keys), moved, scope, stored.defaultrouters)
    return {"log": lines, "left": [command(op) for op in left]}


if __name__ == "__main__":
    result = asyncio.run(main(Path(sys.argv[1])))
    rules = subprocess.run(["ip", "-4", "rule", "show"], check=True, capture_output=True, text=True).stdout
    print(json.dumps({**result, "rules": rules.splitlines()}))
