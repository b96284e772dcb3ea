"""ifconfig end to end on the fake kernel: what a command sets is what the next one sees.

Each command goes through ``session.run_command`` (evaluate, plan, apply,
save the store); the next command reads the kernel and the store back with
``session.read_host``.  The Solaris view it gets must be the one the
evaluator produced, so ``ifconfig -a`` shows what was configured.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ipmp.admin.bootfiles import boot
from ipmp.admin.session import read_host, run_command
from ipmp.config.parse import parse_argv
from ipmp.model import Config, Family, Interface, Logical
from tests.fakes import FakeKernel, make_kernel

SEQUENCE: list[list[str]] = [
    ["qfe0", "plumb"],
    ["qfe0", "192.0.2.100", "netmask", "255.255.255.0", "broadcast", "+", "group", "prod", "up"],
    ["qfe0", "addif", "192.0.2.10", "deprecated", "-failover", "netmask", "255.255.255.0", "up"],
    ["qfe0", "addif", "192.0.2.20"],  # a down logical: in the store only
    ["qfe0:2", "up"],
    ["qfe0:1", "down"],
    ["qfe0:1", "up"],
    ["qfe0", "inet6", "plumb"],
    ["qfe0", "inet6", "addif", "2001:db8::100/64", "up"],
    ["qfe0", "inet6", "addif", "2001:db8::10/64", "-failover", "up"],
    ["qfe0", "inet6", "removeif", "2001:db8::100"],
    ["qfe0", "inet6", "addif", "2001:db8::200/64", "up"],  # takes unit 1 again
    ["qfe1", "plumb"],
    ["qfe1", "192.0.2.11", "netmask", "255.255.255.0", "deprecated", "-failover", "group", "prod", "standby",
     "up"],
    ["qfe0", "removeif", "192.0.2.20"],
    ["qfe0", "broadcast", "192.0.2.127"],
    ["qfe0", "192.0.2.101", "netmask", "255.255.255.0"],  # new data address on unit 0
    ["qfe0", "mtu", "9000"],
    ["qfe0", "-arp"],
    ["qfe0", "ether", "2:0:0:0:0:aa"],
    ["qfe1", "-standby"],
    ["qfe0:1", "unplumb"],
    ["qfe0", "group", ""],
    ["qfe0", "unplumb"],
    ["qfe0", "inet6", "unplumb"],
]


def shown(itf: Interface) -> tuple[object, ...]:
    """What ``ifconfig -a`` shows of an interface, but the kernel's own addresses."""
    logicals = sorted(
        (lg.family, lg.unit, str(lg.address), lg.up, str(lg.broadcast), lg.deprecated, lg.nofailover, lg.home)
        for lg in itf.logicals
        if not lg.kernel_owned and lg.address is not None
    )
    return (itf.plumbed, itf.link_up, itf.mtu, itf.noarp, itf.mac, itf.group, itf.standby, itf.failed,
            itf.inactive, logicals)


def test_each_command_is_seen_by_the_next(tmp_path: Path) -> None:
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"))

    async def session() -> None:
        for argv in SEQUENCE:
            host = await read_host(kernel, tmp_path)
            result = await run_command(kernel, host, parse_argv(argv), dry_run=False)
            intended: Config = result.outcome.config
            seen = (await read_host(kernel, tmp_path)).config
            for name in ("qfe0", "qfe1"):
                want, got = intended.get(name), seen.get(name)
                assert want is not None and got is not None
                assert shown(got) == shown(want), (argv, name)

    asyncio.run(session())
    seen = asyncio.run(read_host(kernel, tmp_path)).config
    qfe0, qfe1 = seen.get("qfe0"), seen.get("qfe1")
    assert qfe0 is not None and qfe1 is not None
    assert (qfe0.plumbed, qfe0.group, qfe0.link_up) == (frozenset(), "", False)
    assert [(lg.unit, str(lg.address)) for lg in qfe1.logicals if lg.family is Family.INET] == [
        (0, "192.0.2.11/24")
    ]
    assert all(a.ifname != "qfe0" or a.kernel_owned for a in kernel.state().addresses)
    assert not any(r.dev == "qfe0" for r in kernel.state().routes)


def test_a_down_logical_comes_back_with_its_flags(tmp_path: Path) -> None:
    kernel = FakeKernel(make_kernel("qfe0"))

    async def session() -> Logical:
        for argv in (["qfe0", "plumb"], ["qfe0", "192.0.2.100", "up"],
                     ["qfe0", "addif", "192.0.2.10", "deprecated", "-failover", "up"],
                     ["qfe0:1", "down"], ["qfe0:1", "up"]):
            await run_command(kernel, await read_host(kernel, tmp_path), parse_argv(argv), dry_run=False)
        itf = (await read_host(kernel, tmp_path)).config.get("qfe0")
        assert itf is not None
        found = itf.logical(Family.INET, 1)
        assert found is not None
        return found

    logical = asyncio.run(session())
    assert (str(logical.address), logical.up, logical.deprecated, logical.nofailover) == (
        "192.0.2.10/24", True, True, True
    )


def test_ipv6_boot_then_check_is_in_sync(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hostname.qfe0").write_text("192.0.2.100/24 group prod up\n")
    (etc / "hostname6.qfe0").write_text("-failover group prod up\naddif 2001:db8::100/64 up\n")
    kernel = FakeKernel(make_kernel("qfe0"))
    result = asyncio.run(boot(kernel, tmp_path))
    assert result.failures == []
    assert result.configured == {Family.INET: ["qfe0"], Family.INET6: ["qfe0"]}
    check = asyncio.run(boot(kernel, tmp_path, dry_run=True))
    assert (check.plans, check.notes) == ({"qfe0": ()}, [])
    itf = asyncio.run(read_host(kernel, tmp_path)).config.get("qfe0")
    assert itf is not None
    unit0 = itf.logical(Family.INET6, 0)
    assert unit0 is not None and unit0.kernel_owned and unit0.nofailover and unit0.is_test
