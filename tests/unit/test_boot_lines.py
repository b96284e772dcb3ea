"""Each line of a hostname file is its own command (net_include.sh ``inet_process_hostname``).

network/physical hands every line of ``hostname.<if>`` to ``ifconfig`` on its
own (``$* $ifcmds || retval=$?``): a failing line is remembered for the exit
status and the next line still runs.  ``ipmp-boot`` does the same, each line
all or nothing, on the fake kernel here (tests/netns/test_boot_lines.py does
it on the real one).
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_interface
from pathlib import Path

from ipmp.admin.bootfiles import boot, boot_lines, boot_steps
from ipmp.admin.session import read_host
from ipmp.config.bootsteps import LINE, PLUMB, UP, run_steps
from ipmp.host.hostfiles import parse_hostname_commands
from ipmp.host.lookups import read_environment
from ipmp.linux.ops import AddAddress
from ipmp.linux.view import merge
from ipmp.model import Family
from tests.fakes import FakeKernel, make_kernel

V4, V6 = Family.INET, Family.INET6


def write(root: Path, **files: str) -> dict[str, Path]:
    """``hostname_qfe0="..."`` -> ``root/etc/hostname.qfe0`` (``_`` for the first dot, ``__`` for ``:``)."""
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    paths = {}
    for key, text in files.items():
        name = key.replace("__", ":").replace("_", ".", 1)
        (etc / name).write_text(text)
        paths[name] = etc / name
    return paths


def addresses(kernel: FakeKernel, nic: str) -> list[str]:
    return sorted(str(a.address) for a in kernel.state().addresses
                  if a.ifname == nic and not a.kernel_owned and not a.address.ip.is_link_local)


def test_a_line_that_does_not_parse_comes_back_with_its_error() -> None:
    found = parse_hostname_commands("192.0.2.10/24 up\n  192.0.2.11 mtu x\naddif 192.0.2.20/24 up\n",
                                    "qfe0", V4, "hostname.qfe0")
    assert [(str(c.position), c.error is None, c.command is not None) for c in found] == [
        ("hostname.qfe0:1:1", True, True),
        ("hostname.qfe0:2:3", False, False),
        ("hostname.qfe0:3:1", True, True),
    ]
    assert found[1].error is not None and str(found[1].error).startswith("hostname.qfe0:2:18: ")


def test_the_lines_before_and_after_a_failing_line_still_apply(tmp_path: Path) -> None:
    paths = write(tmp_path,
                  hostname_qfe0="192.0.2.10/24 group prod up\n"
                                "addif 192.0.2.20/24 deprecatd up\n"  # a misspelt keyword is an address
                                "addif 192.0.2.30/24 up\n",
                  hostname_qfe1="192.0.2.11/24 group prod up\n")
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"))

    result = asyncio.run(boot(kernel, tmp_path))

    bad = paths["hostname.qfe0"]
    assert [(f.ifname, f.family, f.message, f.kind) for f in result.failures] == [
        ("qfe0", V4, f"{bad}:2:21: deprecatd: bad address", "configure"),
    ]
    assert result.configured == {V4: ["qfe0", "qfe1"]}
    assert addresses(kernel, "qfe0") == ["192.0.2.10/24", "192.0.2.30/24"]
    assert addresses(kernel, "qfe1") == ["192.0.2.11/24"]
    qfe0 = asyncio.run(read_host(kernel, tmp_path)).config.get("qfe0")
    assert qfe0 is not None and qfe0.group == "prod"
    # Line 3 ran after the failure, on the interface as lines 1 and 2 left it: it took unit 1.
    unit1 = qfe0.logical(V4, 1)
    assert unit1 is not None and unit1.address == ip_interface("192.0.2.30/24") and unit1.up


def test_an_addif_of_an_address_in_use_fails_in_the_kernel_and_costs_only_its_line(tmp_path: Path) -> None:
    paths = write(tmp_path,
                  hostname_qfe0="192.0.2.10/24 group prod up\n"
                                "addif 192.0.2.10/24 up\n"  # already on unit 0: the kernel says EEXIST
                                "addif 192.0.2.20/24 up\n",
                  hostname_qfe1="192.0.2.11/24 group prod up\n")
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"))

    result = asyncio.run(boot(kernel, tmp_path))

    (failure,) = result.failures
    assert failure.message.startswith(f"{paths['hostname.qfe0']}:2:1: ip -4 addr add 192.0.2.10/24 ")
    assert "File exists" in failure.message
    assert result.configured == {V4: ["qfe0", "qfe1"]}
    assert addresses(kernel, "qfe0") == ["192.0.2.10/24", "192.0.2.20/24"]
    assert addresses(kernel, "qfe1") == ["192.0.2.11/24"]
    # The store agrees with the kernel: no logical for the refused line.
    qfe0 = asyncio.run(read_host(kernel, tmp_path)).config.get("qfe0")
    assert qfe0 is not None and qfe0.group == "prod"
    assert [(lg.unit, str(lg.address)) for lg in qfe0.logicals_of(V4)] == [
        (0, "192.0.2.10/24"), (1, "192.0.2.20/24")]


def test_dry_run_reports_every_failing_line_and_plans_the_others(tmp_path: Path) -> None:
    paths = write(tmp_path, hostname_qfe0="192.0.2.10/24 group prod bogus-word up\n"
                                          "addif 192.0.2.20/24 up\n"
                                          "addif 192.0.2.30/24 private up\n")
    kernel = FakeKernel(make_kernel("qfe0"))

    result = asyncio.run(boot(kernel, tmp_path, dry_run=True))

    bad = paths["hostname.qfe0"]
    messages = [f.message for f in result.failures]
    assert len(messages) == 2
    assert messages[0] == f"{bad}:1:26: bogus-word: bad address"
    assert messages[1].startswith(f"{bad}:3:21: private: not supported on Linux")
    added = [str(op.address.address) for op in result.plans["qfe0"] if isinstance(op, AddAddress)]
    assert added == ["192.0.2.20/24"]
    assert kernel.executed == []


def test_a_failed_line_takes_nothing_away_from_a_configured_interface(tmp_path: Path) -> None:
    good = "192.0.2.10/24 group prod up\naddif 192.0.2.20/24 up\n"
    paths = write(tmp_path, hostname_qfe0=good)
    kernel = FakeKernel(make_kernel("qfe0"))
    assert asyncio.run(boot(kernel, tmp_path)).failures == []
    before = kernel.state()

    # A typo in the group line, and one in the addif line: each fails alone.
    paths["hostname.qfe0"].write_text("192.0.2.10/24 grup prod up\naddif 192.0.2.20/24 upp\n")
    result = asyncio.run(boot(kernel, tmp_path))

    assert len(result.failures) == 2
    assert kernel.state() == before
    qfe0 = asyncio.run(read_host(kernel, tmp_path)).config.get("qfe0")
    assert qfe0 is not None and qfe0.group == "prod"
    assert addresses(kernel, "qfe0") == ["192.0.2.10/24", "192.0.2.20/24"]
    # Fixed again, the file is in sync: nothing was lost or doubled meanwhile.
    paths["hostname.qfe0"].write_text(good)
    check = asyncio.run(boot(kernel, tmp_path, dry_run=True))
    assert check.failures == [] and check.in_sync


def test_an_ipv6_file_with_a_failed_line_gets_no_inet6_up(tmp_path: Path) -> None:
    """net-physical: ``inet6_process_hostname ... && ifconfig IF inet6 up``."""
    config = merge(make_kernel("qfe0"), ())
    write(tmp_path, hostname6_qfe0="-failover group prod\naddif 2001:db8::100/64 up\n")
    files = [(V6, tmp_path / "etc" / "hostname6.qfe0")]
    good = boot_lines(config, "qfe0", files, read_environment(tmp_path))
    qfe0 = good.config.get("qfe0")
    unit0 = qfe0.logical(V6, 0) if qfe0 is not None else None
    assert good.failed == () and unit0 is not None and unit0.up

    write(tmp_path, hostname6_qfe0="-failover group prod\naddif 2001:db8::100/64 upp\n"
                                   "addif 2001:db8::5/64 up\n")
    bad = boot_lines(config, "qfe0", files, read_environment(tmp_path))
    qfe0 = bad.config.get("qfe0")
    assert qfe0 is not None and [f.step.kind for f in bad.failed] == [LINE]
    unit0 = qfe0.logical(V6, 0)
    assert unit0 is not None and not unit0.up and unit0.nofailover and qfe0.group == "prod"
    assert [str(lg.address) for lg in qfe0.logicals_of(V6) if lg.unit] == ["2001:db8::5/64"]


def test_a_logical_file_that_cannot_plumb_is_skipped_and_the_rest_applies(tmp_path: Path) -> None:
    # hostname.qfe0:1 without hostname.qfe0: IPv4 is not plumbed on qfe0, so
    # qfe0:1 cannot be (Solaris: it is not in inet_plumbed, its lines never run).
    paths = write(tmp_path, hostname_qfe0__1="192.0.2.20/24 up\n",
                  hostname6_qfe0="-failover group prod\naddif 2001:db8::100/64 up\n")
    kernel = FakeKernel(make_kernel("qfe0"))

    result = asyncio.run(boot(kernel, tmp_path))

    assert [f.message for f in result.failures] == [
        f"{paths['hostname.qfe0:1']}:1:1: plumb: qfe0:1: no such interface"]
    assert result.configured == {V6: ["qfe0"]}
    assert addresses(kernel, "qfe0") == ["2001:db8::100/64"]


def test_a_kernel_refusal_no_line_asked_for_leaves_the_interface_as_it_was(tmp_path: Path) -> None:
    write(tmp_path, hostname_qfe0="192.0.2.10/24 group prod up\naddif 192.0.2.20/24 up\n",
          hostname_qfe1="192.0.2.11/24 group prod up\n")
    kernel = FakeKernel(make_kernel("qfe0", "qfe1"), fail_at=0)  # qfe0's first op: a sysctl of its plumb
    before = kernel.state()

    result = asyncio.run(boot(kernel, tmp_path))

    assert [(f.ifname, "injected failure" in f.message) for f in result.failures] == [("qfe0", True)]
    assert result.configured == {V4: ["qfe1"]}
    assert addresses(kernel, "qfe0") == [] and addresses(kernel, "qfe1") == ["192.0.2.11/24"]
    assert [a for a in kernel.state().addresses if a.ifname == "qfe0"] == \
        [a for a in before.addresses if a.ifname == "qfe0"]


def test_an_unreadable_file_fails_as_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "etc" / "hostname.qfe0"
    steps = boot_steps("qfe0", [(V4, missing)])
    assert [s.kind for s in steps] == [PLUMB, LINE]
    evaluated = run_steps(merge(make_kernel("qfe0"), ()), steps, read_environment(tmp_path))
    (failed,) = evaluated.failed
    assert failed.message == f"{missing}: No such file or directory"
    qfe0 = evaluated.config.get("qfe0")
    assert qfe0 is not None and qfe0.plumbed == frozenset({V4})  # the plumb before it stays
    assert UP not in [s.kind for s in steps]

