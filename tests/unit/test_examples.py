"""Every example under examples/hostname.files: found, parsed, evaluated, planned, applied.

The fake kernel gets the NIC names of each example; each interface is
evaluated with ``bootfiles.boot_config`` and planned with ``apply.make_plan``,
one interface at a time as ``ipmp-boot`` does.  A second plan after executing
the first must be empty.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from ipaddress import ip_interface
from pathlib import Path

import pytest

from ipmp.admin.bootfiles import boot, boot_config
from ipmp.apply import make_plan, sysctl_keys
from ipmp.host import hostfiles, lookups
from ipmp.host.state import Store, Stored
from ipmp.linux.ops import AddAddress
from ipmp.linux.view import Scope, merge
from ipmp.model import Family, KAddress
from tests.fakes import FakeKernel, make_kernel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hostname.files"


@dataclass(frozen=True)
class Addr:
    address: str
    label: str
    test: bool = False  # a test address: deprecated in the kernel


#: example -> NIC -> the IPv4 addresses its boot plan adds.
EXPECTED: dict[str, dict[str, list[Addr]]] = {
    "active-active": {
        "qfe0": [Addr("192.0.2.100/24", "qfe0"), Addr("192.0.2.10/24", "qfe0:1", test=True)],
        "qfe1": [Addr("192.0.2.101/24", "qfe1"), Addr("192.0.2.11/24", "qfe1:1", test=True)],
    },
    "active-standby": {
        "qfe0": [Addr("192.0.2.100/24", "qfe0"), Addr("192.0.2.10/24", "qfe0:1", test=True)],
        "qfe1": [Addr("192.0.2.11/24", "qfe1", test=True)],
    },
    "link-only": {
        "bge0": [Addr("192.0.2.100/24", "bge0")],
        "bge1": [Addr("192.0.2.101/24", "bge1")],
    },
    "single-line": {
        "hme0": [Addr("192.0.2.100/24", "hme0")],
    },
    "test-on-unit0": {
        "ce0": [Addr("192.0.2.10/24", "ce0", test=True), Addr("192.0.2.100/24", "ce0:1")],
        "ce1": [Addr("192.0.2.11/24", "ce1", test=True)],
    },
    # IPv6 addresses have no label (the unit lives in the state store); the
    # test addresses are the kernel's link-locals, which no plan adds.
    "dual-stack": {
        "qfe0": [Addr("192.0.2.100/24", "qfe0"), Addr("192.0.2.10/24", "qfe0:1", test=True),
                 Addr("2001:db8::100/64", "")],
        "qfe1": [Addr("192.0.2.101/24", "qfe1"), Addr("192.0.2.11/24", "qfe1:1", test=True),
                 Addr("2001:db8::101/64", "")],
    },
    "ipv6-only": {
        "e1000g0": [Addr("2001:db8::100/64", "")],
        "e1000g1": [],
    },
}

FOLDERS = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


def test_every_example_folder_is_covered() -> None:
    assert FOLDERS, EXAMPLES
    assert FOLDERS == sorted(EXPECTED)


def files_of(root: Path) -> dict[str, list[tuple[Family, Path]]]:
    files: dict[str, list[tuple[Family, Path]]] = {}
    for ifname, family, path in hostfiles.find_hostname_files(root):
        files.setdefault(ifname, []).append((family, path))
    return files


def added(address: KAddress) -> Addr:
    return Addr(str(address.address), address.label, address.deprecated)


@pytest.mark.parametrize("example", FOLDERS)
def test_example_boots_interface_by_interface(example: str) -> None:
    root = EXAMPLES / example
    files = files_of(root)
    names = list(EXPECTED[example])
    assert sorted(files) == sorted(names)
    env = lookups.read_environment(root)
    # Solaris' defaultrouter is IPv4 only; an IPv6-only host has none.
    assert bool(env.defaultrouters) == any(f is Family.INET for fs in files.values() for f, _ in fs)
    kernel = FakeKernel(make_kernel(*names))
    keys = sysctl_keys(names)
    stored = Stored()
    for name in names:
        current = kernel.state(keys)
        config = merge(current, stored.interfaces)
        desired = boot_config(config, name, files[name], env)
        scope = Scope(frozenset((name, family) for family, _ in files[name]))
        plan = make_plan(current, desired, scope, env.defaultrouters)
        assert plan
        adds = [added(op.address) for op in plan if isinstance(op, AddAddress)]
        assert adds == EXPECTED[example][name]
        assert all(op.address.noprefixroute and op.address.ifname == name
                   for op in plan if isinstance(op, AddAddress))
        kernel.run(plan)
        assert make_plan(kernel.state(keys), desired, scope, env.defaultrouters) == ()
        itf = desired.get(name)
        assert itf is not None
        stored = stored.with_interfaces((itf,))
    final = kernel.state(keys)
    ours = {added(a) for a in final.addresses if a.ifname in names and not a.kernel_owned}
    assert ours == {a for addrs in EXPECTED[example].values() for a in addrs}
    assert all(ip_interface(a.address) in {x.address for x in final.addresses} for a in ours)


def test_ipv6_boot_file_plumbs_and_brings_the_link_local_up(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hostname6.qfe0").write_text("-failover group prod up\naddif 2001:db8::100/64 up\n")
    files = files_of(tmp_path)
    kernel = FakeKernel(make_kernel("qfe0"))
    config = merge(kernel.state(), ())
    desired = boot_config(config, "qfe0", files["qfe0"], lookups.read_environment(tmp_path))
    qfe0 = desired.get("qfe0")
    assert qfe0 is not None
    assert qfe0.plumbed == frozenset({Family.INET6}) and qfe0.group == "prod" and qfe0.link_up
    scope = Scope(frozenset({("qfe0", Family.INET6)}))
    plan = make_plan(kernel.state(sysctl_keys(["qfe0"])), desired, scope, ())
    assert [str(op.address.address) for op in plan if isinstance(op, AddAddress)] == ["2001:db8::100/64"]
    kernel.run(plan)
    assert make_plan(kernel.state(sysctl_keys(["qfe0"])), desired, scope, ()) == ()


@pytest.mark.parametrize("example", FOLDERS)
def test_ipmp_boot_session_on_a_copy_then_check_is_in_sync(example: str, tmp_path: Path) -> None:
    root = tmp_path / example
    shutil.copytree(EXAMPLES / example, root)
    names = list(EXPECTED[example])
    kernel = FakeKernel(make_kernel(*names))
    result = asyncio.run(boot(kernel, root))
    assert result.failures == []
    families = {f for fs in files_of(root).values() for f, _ in fs}
    assert result.configured == {f: names for f in families}
    assert all(result.plans[n] for n in names)
    stored = Store(root).load()
    assert [i.name for i in stored.interfaces] == sorted(names)
    assert stored.defaultrouters == lookups.read_environment(root).defaultrouters
    kernel.reset()
    check = asyncio.run(boot(kernel, root, dry_run=True))
    assert check.failures == []
    assert check.plans == {n: () for n in names}
    assert check.notes == []
    assert check.in_sync
    assert kernel.executed == []
