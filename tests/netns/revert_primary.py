"""Run inside a lab host namespace: bug 9 of RELIABILITY.md on the real kernel.

    python revert_primary.py

On a host whose kernel keeps ``promote_secondaries`` off (the Linux default),
qfe0 gets four addresses of one subnet (the toolkit turns the sysctl on),
then loses three of them; the revert of that change puts them back after the
one that stayed, which is now the kernel's primary.  The revert to the fresh
kernel must then take every address away without meeting EADDRNOTAVAIL: the
plan turns ``promote_secondaries`` off only after its address deletes.

Prints one JSON document: the primary after the first revert, the error of
the final revert if any, and the differences between the namespace before
and after (iproute2's reading, not the product's).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from kernelsnap import differences, local_ip_json, read_sysctls, snapshot

from ipmp.apply import make_plan, sysctl_keys
from ipmp.config.evaluate import evaluate
from ipmp.config.parse import parse_argv
from ipmp.errors import ApplyError
from ipmp.kernel.execute import Kernel
from ipmp.linux.plan import diff
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Environment, Family

NIC = "qfe0"
SCOPE = Scope(frozenset({(NIC, Family.INET)}))


def run(config: Config, *argv: str) -> Config:
    return evaluate(config, parse_argv(list(argv)), Environment()).config


def promote_secondaries_off() -> None:
    """The host as Linux leaves it: deleting a primary takes its subnet's secondaries along."""
    for dev in ("all", "default", NIC):
        Path(f"/proc/sys/net/ipv4/conf/{dev}/promote_secondaries").write_text("0\n")


def snap(keys: list[str]) -> dict[str, list[str]]:
    return snapshot(local_ip_json, sysctls=read_sysctls(keys))


async def main() -> dict[str, Any]:
    keys = sysctl_keys([NIC])
    async with Kernel() as kernel:
        fresh = await kernel.read(keys)
        before = snap(keys)
        first = run(merge(fresh, ()), NIC, "plumb")
        first = run(first, NIC, "192.0.2.10/24", "up")
        for address in ("192.0.2.11/24", "192.0.2.12/24", "192.0.2.20/24"):
            first = run(first, NIC, "addif", address, "up")
        second = run(first, NIC, "down")
        for address in ("192.0.2.12", "192.0.2.20"):
            second = run(second, NIC, "removeif", address)
        await kernel.execute(make_plan(fresh, first, SCOPE, ()))
        one = await kernel.read(keys)
        await kernel.execute(make_plan(one, second, SCOPE, ()))
        await kernel.execute(diff(await kernel.read(keys), one, SCOPE))
        primary = next(a for a in local_ip_json("-4", "addr", "show", "dev", NIC)[0]["addr_info"])["local"]
        error = ""
        try:
            await kernel.execute(diff(await kernel.read(keys), fresh, SCOPE))
        except ApplyError as err:
            error = str(err)
    return {"primary_before_revert": primary, "error": error, "left": differences(before, snap(keys))}


if __name__ == "__main__":
    promote_secondaries_off()
    print(json.dumps(asyncio.run(main())))
