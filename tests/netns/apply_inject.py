"""Run inside a lab host namespace: ``apply()`` of a boot plan with faults, on the real kernel.

    python apply_inject.py ROOT MODE [K] [NIC]

Computes the boot configuration of every hostname file under ROOT (both
families of every NIC in scope, as ``ipmp-boot`` does) and the plan from the
kernel as it is, then, by MODE:

``every``
    for each op index k: the executor carries out ops[:k], then fails
    (injected ApplyError, EIO) at ops[k]; apply() must revert.
``race K``
    real failure: just before op K (an address add), another actor adds
    that very address; the executor meets the kernel's EEXIST there.
``vanish K NIC``
    real failure: just before op K, NIC is deleted (``ip link del``); the
    rest of the plan meets ENODEV.
``once``
    one plain apply (the test arranged a real conflict beforehand).
``plan``
    nothing: only the plan and the before snapshot.

After each failed apply the namespace is read with iproute2 (``kernelsnap``,
not the product's reader) and compared with the reading taken before.
Prints one JSON document: the plan, the before snapshot, and per run the op
apply() reported, its errno, and the snapshot after.  ``every`` also applies
the plan for real at the end and reports what is left to do (must be none).
"""

from __future__ import annotations

import asyncio
import errno
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kernelsnap import local_ip_json, read_sysctls, snapshot

from ipmp.admin.bootfiles import boot_config
from ipmp.admin.session import read_host
from ipmp.apply import apply, make_plan, sysctl_keys
from ipmp.errors import ApplyError
from ipmp.host import hostfiles, lookups
from ipmp.kernel.execute import Kernel
from ipmp.linux.ops import AddAddress, Op, command
from ipmp.linux.view import Scope
from ipmp.model import Config, Family


def desired(config: Config, root: Path) -> tuple[Config, Scope, Any, list[str]]:
    env = lookups.read_environment(root)
    files: dict[str, list[tuple[Family, Path]]] = {}
    for f in hostfiles.find_hostname_files(root):
        files.setdefault(f.ifname, []).append((f.family, f.path))
    for name in sorted(files):
        config = boot_config(config, name, files[name], env)
    scope = Scope(frozenset((name, fam) for name in files for fam in (Family.INET, Family.INET6)))
    return config, scope, env.defaultrouters, sorted(files)


def snap(keys: list[str]) -> dict[str, list[str]]:
    return snapshot(local_ip_json, sysctls=read_sysctls(keys))


def racer(op: Op) -> None:
    """Another actor adds the address op is about to add (iproute2, as an admin would)."""
    assert isinstance(op, AddAddress), command(op)
    a = op.address
    fam = "-4" if a.family is Family.INET else "-6"
    subprocess.run(["ip", fam, "addr", "add", str(a.address), "dev", a.ifname], check=True)


def vanish(nic: str) -> None:
    """The NIC goes away (hot unplug, or an admin's ``ip link del``); blocking on purpose."""
    subprocess.run(["ip", "link", "del", "dev", nic], check=True)


async def main(root: Path, mode: str, args: list[str]) -> dict[str, Any]:
    real = Kernel.execute
    async with Kernel() as kernel:
        host = await read_host(kernel, root)
        config, scope, routers, names = desired(host.config, root)
        keys = sysctl_keys(names)
        before_state = await kernel.read(keys)
        plan = make_plan(before_state, config, scope, routers)
        before = snap(keys)
        fixed = {"every": list(range(len(plan))), "plan": [], "once": [-1]}
        ks = fixed[mode] if mode in fixed else [int(args[0])]
        runs = []
        for k in ks:
            calls: list[int] = []

            async def faulty(self: Kernel, ops: Any, *, done: Any = None, k: int = k,
                             calls: list[int] = calls) -> None:
                calls.append(len(ops))
                if len(calls) > 1 or k < 0:
                    return await real(self, ops, done=done)  # the revert, or a plain run
                await real(self, ops[:k], done=done)
                if mode == "every":
                    raise ApplyError("injected failure", op=ops[k], errno_=errno.EIO)
                if mode == "race":
                    racer(ops[k])
                else:
                    vanish(args[1])
                return await real(self, ops[k:], done=done)

            Kernel.execute = faulty  # type: ignore[method-assign]
            failed_at: str | None = None
            code = 0
            try:
                await apply(kernel, config, scope, routers, before=before_state)
            except ApplyError as err:
                failed_at = command(err.op) if isinstance(err.op, Op) else None
                code = err.errno_
            finally:
                Kernel.execute = real  # type: ignore[method-assign]
            runs.append({"k": k, "failed_at": failed_at, "errno": code,
                         "first_call": calls[0] if calls else 0, "after": snap(keys)})
        left: list[str] = []
        if mode == "every":
            await apply(kernel, config, scope, routers)
            left = [command(op) for op in make_plan(await kernel.read(keys), config, scope, routers)]
    return {"plan": [command(op) for op in plan], "before": before, "runs": runs, "left": left}


if __name__ == "__main__":
    doc = asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
    json.dump(doc, sys.stdout)
