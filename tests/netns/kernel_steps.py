"""One ``Kernel`` driven step by step in a namespace of the lab: the helper of the kernel tests.

``ipmp.kernel`` works in the network namespace of its own process, so each
call runs one small Python process in ``topo.host`` (``ip netns exec``).  The
process gets a list of steps as a pickle in argv and answers with a pickle of
the results, so the assertions compare real ``KernelState`` values.

Steps:

* ``("read", keys)`` -> ``KernelState``;
* ``("settle", keys)`` -> ``KernelState``, once two reads 50 ms apart agree;
* ``("execute", ops)`` -> ``("ok", done)`` or ``("error", message, errno, op, done)``;
* ``("ip", ops)`` -> each op's ``ip`` command run, ``[(exit status, stderr)]``.
"""

from __future__ import annotations

import base64
import pickle
import sys
from pathlib import Path
from typing import Any

from ipmp.lab.topology import Topology

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, base64, pickle, subprocess, sys
sys.path.insert(0, sys.argv[1])
from ipmp.errors import ApplyError
from ipmp.kernel.execute import Kernel

async def main(steps):
    out = []
    async with Kernel() as kernel:
        for what, arg in steps:
            if what == "read":
                out.append(await kernel.read(arg))
            elif what == "settle":
                state = await kernel.read(arg)
                for _ in range(60):
                    await asyncio.sleep(0.05)
                    again = await kernel.read(arg)
                    if again == state:
                        break
                    state = again
                out.append(state)
            elif what == "ip":
                runs = [subprocess.run(op.argv(), capture_output=True, text=True, check=False) for op in arg]
                out.append([(run.returncode, run.stderr) for run in runs])
            elif what == "execute":
                done = []
                try:
                    await kernel.execute(arg, done=done.append)
                except ApplyError as e:
                    out.append(("error", e.message, e.errno_, e.op, done))
                else:
                    out.append(("ok", done))
            else:
                raise ValueError(f"unknown step {what!r}")
    return out

steps = pickle.loads(base64.b64decode(sys.argv[2]))
sys.stdout.write(base64.b64encode(pickle.dumps(asyncio.run(main(steps)))).decode())
"""


def run_steps(topo: Topology, *steps: tuple[Any, ...]) -> list[Any]:
    """Run ``steps`` with one ``Kernel`` in the host namespace; return their results."""
    payload = base64.b64encode(pickle.dumps(list(steps))).decode()
    # -W error: a pyroute2 warning in the child must fail the test like one here.
    proc = topo.run(topo.host, [sys.executable, "-W", "error", "-c", SCRIPT, str(ROOT), payload])
    result: list[Any] = pickle.loads(base64.b64decode(proc.stdout))
    return result
