"""Interactive ``ifconfig`` on the real kernel, after ``ipmp-boot`` of an example.

Every command is checked three ways: what it prints (Solaris text), what the
kernel holds afterwards (``ip -j``), and what ``ifconfig`` shows.  Failing
commands must leave the kernel and the state store exactly as they were,
including when the kernel itself refuses an operation half-way through a
plan, and when a failure is injected at any operation of a boot plan.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labhost import (
    REPO,
    ROUTER,
    Addr,
    Host,
    MakeTopology,
    chosen_sources,
    copy_example,
    example_nics,
    expected_addresses,
    expected_routes,
    expected_rules,
    spec,
)

from ipmp.lab.addressing import unique_prefix
from ipmp.lab.wiring import build

QFE0_2 = "192.0.2.20"


def booted(make_topology: MakeTopology, tmp_path: Path, example: str) -> Host:
    root = copy_example(example, tmp_path)
    host = Host(make_topology(nics=example_nics(root)), root)
    host.boot_ok()
    return host


@pytest.fixture
def aa(make_topology: MakeTopology, tmp_path: Path) -> Host:
    """active-active (qfe0, qfe1), booted."""
    return booted(make_topology, tmp_path, "active-active")


@pytest.fixture(scope="module")
def aa_shared(tmp_path_factory: pytest.TempPathFactory, netns_support: None) -> Iterator[Host]:
    """active-active, booted once for the commands that must change nothing.

    Each test compares with its own before-state, so one that wrongly
    changes something still fails alone.
    """
    root = copy_example("active-active", tmp_path_factory.mktemp("errors"))
    topo = build(unique_prefix(), example_nics(root))
    try:
        host = Host(topo, root)
        host.boot_ok()
        yield host
    finally:
        topo.destroy()


def block(name: str, flags: str, inet: str, extra: str = "") -> str:
    """One ``ifconfig`` status block for an address on qfe0 (index 2)."""
    inet_line = f"\tinet {inet} netmask ffffff00 broadcast 192.0.2.255\n"
    return f"{name}: flags={flags} mtu 1500 index 2\n{inet_line}{extra}"


UP_DATA = "1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4>"
DOWN_DATA = "1000842<BROADCAST,RUNNING,MULTICAST,IPv4>"
UP_TEST = "9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>"


# --------------------------------------------------------------------------
# addif / down / up / removeif
# --------------------------------------------------------------------------


def test_addif_puts_a_labelled_address_and_a_rule_in_the_kernel(aa: Host) -> None:
    routes_before = aa.routes()
    rules_before = aa.rules()

    out = aa.ifconfig_ok("qfe0", "addif", f"{QFE0_2}/24", "up")

    assert out == "Created new logical interface qfe0:2\n"
    assert aa.addresses4("qfe0")[-1] == {
        "local": QFE0_2, "prefixlen": 24, "broadcast": "192.0.2.255", "label": "qfe0:2",
        "scope": "global", "secondary": True, "deprecated": False, "noprefixroute": True,
    }
    assert aa.rules() == rules_before | {(200, QFE0_2, aa.table("qfe0"))}
    # No new route: qfe0's main routes keep unit 0's data address as source.
    assert aa.routes() == routes_before
    assert aa.ifconfig_ok("qfe0:2") == block("qfe0:2", UP_DATA, QFE0_2)
    report = aa.topo.ping(aa.topo.peer, [QFE0_2], count=2)
    assert report[QFE0_2].received == 2
    assert aa.topo.neighbour_mac(aa.topo.peer, QFE0_2) == aa.topo.macs["qfe0"]


def test_addif_with_netmask_plus_prints_both_solaris_lines(aa: Host) -> None:
    out = aa.ifconfig_ok("qfe0", "addif", QFE0_2, "netmask", "+", "broadcast", "+", "up")

    assert out == "Created new logical interface qfe0:2\nSetting netmask of qfe0:2 to 255.255.255.0\n"
    assert aa.addresses4("qfe0")[-1]["label"] == "qfe0:2"
    assert aa.addresses4("qfe0")[-1]["prefixlen"] == 24


def test_down_takes_the_address_out_of_the_kernel_and_up_puts_it_back(aa: Host) -> None:
    aa.ifconfig_ok("qfe0", "addif", f"{QFE0_2}/24", "up")
    with_logical = aa.snapshot()
    state = aa.state_file.read_bytes()

    assert aa.ifconfig_ok("qfe0:2", "down") == ""

    assert QFE0_2 not in {a["local"] for a in aa.addresses4("qfe0")}
    assert QFE0_2 not in {r[1] for r in aa.rules()}
    # The logical lives on in the state store, shown without UP.
    assert aa.ifconfig_ok("qfe0:2") == block("qfe0:2", DOWN_DATA, QFE0_2)
    assert aa.ifconfig_ok("-ad") == block("qfe0:2", DOWN_DATA, QFE0_2)

    assert aa.ifconfig_ok("qfe0:2", "up") == ""

    assert aa.snapshot() == with_logical
    assert aa.state_file.read_bytes() == state


def test_removeif_undoes_addif_completely(aa: Host) -> None:
    before = aa.snapshot()
    aa.ifconfig_ok("qfe0", "addif", f"{QFE0_2}/24", "up")

    assert aa.ifconfig_ok("qfe0", "removeif", QFE0_2) == ""

    assert aa.snapshot() == before
    status = aa.ifconfig("qfe0:2")
    assert (status.returncode, status.stdout) == (1, "")
    assert status.stderr == "ifconfig: status: SIOCGLIFFLAGS: qfe0:2: no such interface\n"


# --------------------------------------------------------------------------
# -failover, deprecated, group, standby
# --------------------------------------------------------------------------


def test_failover_and_deprecated_on_a_logical(aa: Host) -> None:
    aa.ifconfig_ok("qfe0", "addif", f"{QFE0_2}/24", "up")
    table = aa.table("qfe0")
    routes = aa.routes()

    aa.ifconfig_ok("qfe0:2", "-failover", "deprecated")

    assert aa.ifconfig_ok("qfe0:2") == block("qfe0:2", UP_TEST, QFE0_2)
    assert (100, QFE0_2, table) in aa.rules()
    assert (200, QFE0_2, table) not in aa.rules()
    (mine,) = [a for a in aa.addresses4("qfe0") if a["local"] == QFE0_2]
    assert (mine["label"], mine["deprecated"], mine["noprefixroute"]) == ("qfe0:2", True, True)
    assert aa.routes() == routes
    assert chosen_sources(aa, ROUTER) == {ROUTER: "192.0.2.100"}

    aa.ifconfig_ok("qfe0:2", "failover", "-deprecated")

    assert aa.ifconfig_ok("qfe0:2") == block("qfe0:2", UP_DATA, QFE0_2)
    assert (200, QFE0_2, table) in aa.rules()
    assert (100, QFE0_2, table) not in aa.rules()
    (mine,) = [a for a in aa.addresses4("qfe0") if a["local"] == QFE0_2]
    assert mine["deprecated"] is False


def test_deprecated_alone_keeps_a_data_address(aa: Host) -> None:
    aa.ifconfig_ok("qfe0", "addif", f"{QFE0_2}/24", "up")

    aa.ifconfig_ok("qfe0:2", "deprecated")

    flags = "1040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4>"
    assert aa.ifconfig_ok("qfe0:2") == block("qfe0:2", flags, QFE0_2)
    assert (200, QFE0_2, aa.table("qfe0")) in aa.rules()
    (mine,) = [a for a in aa.addresses4("qfe0") if a["local"] == QFE0_2]
    assert mine["deprecated"] is True


def test_group_change_shows_in_ifconfig_a_and_leaves_the_kernel(aa: Host) -> None:
    before = aa.snapshot()

    assert aa.ifconfig_ok("qfe0", "group", "prod2") == ""

    out = aa.ifconfig_ok("-a")
    qfe0 = block("qfe0", UP_DATA, "192.0.2.100", "\tgroupname prod2\n\tether 2:0:0:0:1:1 \n")
    assert qfe0 in out
    assert "\tinet 192.0.2.101 netmask ffffff00 broadcast 192.0.2.255\n\tgroupname prod\n" in out
    assert aa.snapshot() == before

    assert aa.ifconfig_ok("qfe0", "group", "") == ""

    assert block("qfe0", UP_DATA, "192.0.2.100", "\tether 2:0:0:0:1:1 \n") in aa.ifconfig_ok("-a")
    assert aa.snapshot() == before


def test_standby_on_a_nic_with_only_a_test_address_is_inactive(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    host = booted(make_topology, tmp_path, "test-on-unit0")
    before = host.snapshot()
    tail = (
        "\tinet 192.0.2.11 netmask ffffff00 broadcast 192.0.2.255\n"
        "\tgroupname accgrp\n"
        "\tether 2:0:0:0:1:2 \n"
    )

    assert host.ifconfig_ok("ce1", "standby") == ""

    assert host.ifconfig_ok("ce1") == (
        "ce1: flags=69040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>"
        " mtu 1500 index 3\n" + tail
    )
    assert host.snapshot() == before

    assert host.ifconfig_ok("ce1", "-standby") == ""

    assert host.ifconfig_ok("ce1") == f"ce1: flags={UP_TEST} mtu 1500 index 3\n" + tail


# --------------------------------------------------------------------------
# unplumb, address change, --dry-run
# --------------------------------------------------------------------------


def test_unplumb_removes_the_nic_from_the_kernel(aa: Host) -> None:
    qfe0_before = aa.nic_view("qfe0")

    assert aa.ifconfig_ok("qfe1", "unplumb") == ""

    assert aa.addresses4("qfe1") == []
    qfe0_only = tuple(a for a in spec("active-active") if a.nic == "qfe0")
    assert aa.rules() == expected_rules(aa, qfe0_only)
    assert aa.routes() == expected_routes(aa, qfe0_only)
    assert "UP" not in aa.ip_json("link", "show", "dev", "qfe1")[0]["flags"]
    assert aa.nic_view("qfe0") == qfe0_before
    assert "qfe1" not in aa.ifconfig_ok("-a")
    status = aa.ifconfig("qfe1")
    assert status.returncode == 1
    assert status.stderr == "ifconfig: status: SIOCGLIFFLAGS: qfe1: no such interface\n"


def test_new_address_for_the_only_address_of_a_nic(make_topology: MakeTopology, tmp_path: Path) -> None:
    """Deleting a NIC's last IPv4 address flushes its routes in every table: the plan re-adds them."""
    host = booted(make_topology, tmp_path, "link-only")

    assert host.ifconfig_ok("bge1", "192.0.2.102") == ""

    addrs = (*(a for a in spec("link-only") if a.nic == "bge0"), Addr("bge1", "bge1", "192.0.2.102", False))
    assert host.addresses4("bge1") == expected_addresses(addrs, "bge1")
    assert host.rules() == expected_rules(host, addrs)
    assert host.routes() == expected_routes(host, addrs)
    assert host.topo.ping(host.topo.peer, ["192.0.2.102"], count=2)["192.0.2.102"].received == 2
    assert host.boot("--check").returncode == 1  # the files still say 192.0.2.101


def test_dry_run_prints_the_plan_and_changes_nothing(aa: Host) -> None:
    before = aa.snapshot()
    state = aa.state_file.read_bytes()

    out = aa.ifconfig_ok("--dry-run", "qfe0", "addif", f"{QFE0_2}/24", "up")

    table = aa.table("qfe0")
    assert out.splitlines() == [
        f"ip -4 addr add {QFE0_2}/24 broadcast 192.0.2.255 dev qfe0 label qfe0:2 noprefixroute",
        f"ip -4 rule add pref 200 from {QFE0_2} lookup {table} proto 73",
    ]
    assert aa.snapshot() == before
    assert aa.state_file.read_bytes() == state
    assert aa.ifconfig("qfe0:2").returncode == 1


# --------------------------------------------------------------------------
# errors: Solaris text, exit 1, nothing changed
# --------------------------------------------------------------------------

ERRORS = {
    "removeif-unit-0": (
        ("qfe0", "removeif", "192.0.2.100"),
        "ifconfig: removeif: can't remove interface: qfe0",
    ),
    "group-on-logical": (
        ("qfe0:1", "group", "other"),
        "ifconfig: setifgroupname: SIOCSLIFGROUPNAME: qfe0:1: Invalid argument",
    ),
    "unknown-word": (("qfe0", "frobnicate"), "ifconfig: frobnicate: bad address"),
    "unknown-word-after-addif": (
        ("qfe0", "addif", f"{QFE0_2}/24", "up", "frobnicate"),
        "ifconfig: frobnicate: bad address",
    ),
    "addif-on-logical": (
        ("qfe0:1", "addif", f"{QFE0_2}/24"),
        "ifconfig: addif: bad physical interface name qfe0:1",
    ),
    "unplumb-unit-0-by-name": (
        ("qfe0:0", "unplumb"),
        "ifconfig: unplumb: Cannot unplumb qfe0:0: Invalid interface",
    ),
    "missing-argument": (("qfe0", "group"), "ifconfig: no argument for group"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_exits_1_with_solaris_text_and_changes_nothing(aa_shared: Host, case: str) -> None:
    argv, message = ERRORS[case]
    aa = aa_shared
    before = aa.snapshot()
    state = aa.state_file.read_bytes()

    proc = aa.ifconfig(*argv)

    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", message + "\n")
    assert aa.snapshot() == before
    assert aa.state_file.read_bytes() == state


# --------------------------------------------------------------------------
# IPv6 next to IPv4
# --------------------------------------------------------------------------


def test_inet6_leaves_ipv4_alone(aa: Host) -> None:
    v4 = (aa.addresses4("qfe0"), aa.rules("-4"), aa.routes("-4"))
    table = aa.table("qfe0")

    aa.ifconfig_ok("qfe0", "inet6", "plumb")
    assert (aa.addresses4("qfe0"), aa.rules("-4"), aa.routes("-4")) == v4

    out = aa.ifconfig_ok("qfe0", "inet6", "addif", "2001:db8::5/64", "up")

    assert out == "Created new logical interface qfe0:1\n"
    assert (aa.addresses4("qfe0"), aa.rules("-4"), aa.routes("-4")) == v4
    assert aa.rules("-6") == {(200, "2001:db8::5", table)}
    assert aa.routes("-6") == {
        ("main", "2001:db8::/64", "qfe0", None, "2001:db8::5", 102),
        # IPv6 has no metric 0: the kernel stores (and ip shows) 1024.
        (table, "2001:db8::/64", "qfe0", None, None, 1024),
    }
    report = aa.topo.ping(aa.topo.peer, ["2001:db8::5"], count=2)
    assert report["2001:db8::5"].received == 2
    assert aa.topo.neighbour_mac(aa.topo.peer, "2001:db8::5") == aa.topo.macs["qfe0"]
    assert "\tinet6 2001:db8::5/64 \n" in aa.ifconfig_ok("qfe0:1", "inet6")


# --------------------------------------------------------------------------
# revert: a real kernel refusal, and an injected failure at every op
# --------------------------------------------------------------------------


def _disable_ipv6(host: Host, nic: str) -> None:
    proc = host.sh(f"echo 1 > /proc/sys/net/ipv6/conf/{nic}/disable_ipv6")
    assert proc.returncode == 0, proc.stderr


def test_kernel_refusal_after_plumb_is_reverted(aa: Host) -> None:
    _disable_ipv6(aa, "qfe0")
    aa.ifconfig_ok("qfe0", "inet6", "plumb")
    before = aa.snapshot()
    state = aa.state_file.read_bytes()

    proc = aa.ifconfig("qfe0", "inet6", "addif", "2001:db8::5/64", "up")

    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("ifconfig: ip -6 addr add 2001:db8::5/64 dev qfe0 "), proc.stderr
    assert "Permission denied" in proc.stderr
    assert aa.snapshot() == before
    assert aa.state_file.read_bytes() == state
    assert aa.ifconfig("qfe0:1", "inet6").returncode == 1


def test_kernel_refusal_in_mid_plan_is_reverted(aa: Host) -> None:
    """plumb + addif in one command: the sysctl writes before the refused address are undone."""
    _disable_ipv6(aa, "qfe0")
    argv = ("qfe0", "inet6", "plumb", "addif", "2001:db8::5/64", "up")
    plan = aa.ifconfig_ok("--dry-run", *argv).splitlines()
    first_addr = next(i for i, line in enumerate(plan) if line.startswith("ip -6 addr add"))
    assert any(line.startswith("sysctl -w net.ipv6.conf.qfe0.") for line in plan[:first_addr]), plan
    before = aa.snapshot()
    state = aa.state_file.read_bytes()

    proc = aa.ifconfig(*argv)

    assert (proc.returncode, proc.stdout) == (1, "")
    assert "Permission denied" in proc.stderr
    assert aa.snapshot() == before
    assert aa.state_file.read_bytes() == state
    assert "inet6" not in aa.ifconfig_ok("-a")


#: Runs inside the host namespace.  Computes the boot plan of ROOT (after
#: applying START's configuration, if given) and, for every op index k, makes
#: Kernel.execute carry out ops[:k] and then fail at ops[k] with ApplyError;
#: apply() must revert.  Prints JSON: the plan, the managed kernel state
#: before, and per k the op apply() reported and the state after.
INJECT_SCRIPT = r"""
import asyncio, errno, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from ipmp.host import hostfiles, lookups
from ipmp.apply import apply, make_plan, sysctl_keys
from ipmp.errors import ApplyError
from ipmp.model import Family
from ipmp.kernel.execute import Kernel
from ipmp.linux.ops import command
from ipmp.admin.bootfiles import boot_config
from ipmp.admin.session import read_host
from ipmp.linux.view import Scope


def desired(config, root):
    env = lookups.read_environment(root)
    files = {}
    for f in hostfiles.find_hostname_files(root):
        files.setdefault(f.ifname, []).append((f.family, f.path))
    for name in sorted(files):
        config = boot_config(config, name, files[name], env)
    scope = Scope(frozenset((name, Family.INET) for name in files))
    return config, scope, env.defaultrouters, sorted(files)


def managed(state, names):
    return {
        "links": sorted(repr((k.name, k.up, k.mtu, k.mac, k.noarp)) for k in state.links if k.name in names),
        "addresses": sorted(repr(a) for a in state.addresses if a.ifname in names and not a.kernel_owned),
        "routes": sorted(repr(r) for r in state.routes),
        "rules": sorted(repr(r) for r in state.rules),
        "sysctls": sorted(repr(s) for s in state.sysctls),
    }


async def main(root, start):
    real = Kernel.execute
    async with Kernel() as kernel:
        if start is not None:
            host = await read_host(kernel, start)
            config, scope, routers, _ = desired(host.config, start)
            await apply(kernel, config, scope, routers)
        host = await read_host(kernel, root)
        config, scope, routers, names = desired(host.config, root)
        keys = sysctl_keys(names)
        before = await kernel.read(keys)
        plan = make_plan(before, config, scope, routers)
        runs = []
        for k in range(len(plan)):
            calls = []

            async def failing(self, ops, *, done=None, k=k, calls=calls):
                calls.append([command(op) for op in ops])
                if len(calls) > 1:
                    return await real(self, ops, done=done)  # the revert
                await real(self, ops[:k], done=done)
                raise ApplyError("injected failure", op=ops[k], errno_=errno.EIO)

            Kernel.execute = failing
            try:
                await apply(kernel, config, scope, routers, before=before)
                failed_at = None
            except ApplyError as err:
                failed_at = command(err.op)
            finally:
                Kernel.execute = real
            after = await kernel.read(keys)
            runs.append({"k": k, "failed_at": failed_at, "first_call": calls[0] if calls else None,
                         "after": managed(after, names)})
        await apply(kernel, config, scope, routers, before=before)
        left = make_plan(await kernel.read(keys), config, scope, routers)
    json.dump({"plan": [command(op) for op in plan], "before": managed(before, names), "runs": runs,
               "left": [command(op) for op in left]}, sys.stdout)


asyncio.run(main(Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
"""


@pytest.mark.parametrize(
    ("example", "start"),
    [("active-active", None), ("active-standby", "active-active")],
    ids=["active-active-from-scratch", "active-active-to-active-standby"],
)
def test_injected_failure_at_every_op_is_reverted(
    make_topology: MakeTopology, tmp_path: Path, example: str, start: str | None
) -> None:
    root = copy_example(example, tmp_path)
    args = [str(REPO), str(root)]
    if start is not None:
        args.append(str(copy_example(start, tmp_path)))
    host = Host(make_topology(nics=example_nics(root)), root)

    argv = [sys.executable, "-c", INJECT_SCRIPT, *args]
    proc = host.topo.run(host.topo.host, argv, check=False, timeout=120)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    plan = result["plan"]
    # The plan holds every kind of op worth reverting.
    if start is None:
        assert len(plan) >= 25, plan  # 10 per-NIC sysctls (none host-wide), links, addresses, rules, routes
        kinds = ("sysctl -w ", "ip link set dev ", "ip -4 addr add ", "ip -4 route add ", "ip -4 rule add ")
    else:
        # No "ip -4 route del": the kernel drops those routes with their addresses
        # (plan.diff leaves them out), and the revert has to put them back.
        kinds = ("ip -4 rule del ", "ip -4 addr del ", "ip -4 addr add ", "ip -4 route add ")
    for kind in kinds:
        assert any(line.startswith(kind) for line in plan), (kind, plan)
    assert len(result["runs"]) == len(plan)
    for run in result["runs"]:
        k = run["k"]
        assert run["first_call"] == plan, k
        assert run["failed_at"] == plan[k], k
        assert run["after"] == result["before"], f"not reverted after a failure at op {k}: {plan[k]}"
    assert result["left"] == []
