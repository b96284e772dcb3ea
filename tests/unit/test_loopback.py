"""The loopback as a Solaris administrator uses it: ``lo0``, its logicals, and localhost kept.

Three things went wrong on the real kernel and are pinned down here on the
pure part (the real kernel is ``tests/netns/test_loopback.py``):

* ``ifconfig lo0 addif 127.0.0.2/8 up``: the address went to the kernel with
  universe scope, which Linux refuses next to 127.0.0.1's host scope; and
  with a broadcast address, which lo0 (not BROADCAST) never has on Solaris.
* ``ifconfig lo0 inet6 plumb`` on a host that shows no IPv6: unit 0 came out
  without an address, so the plan deleted the kernel's ``::1``.  Solaris
  plumbs lo0 with ``::1``/128 (``ill_lookup_on_name``, net-loopback).
* ``lo0 down`` and ``lo0 unplumb`` took 127.0.0.1 away from the host, as a
  boot with an (empty) ``hostname.lo0`` did: refused or kept now.

The loopback is named ``lo0`` here as the view names it (``ifmap.NameMap``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path

import pytest

from ipmp.admin.bootfiles import boot_config
from ipmp.apply import apply, make_plan
from ipmp.config.evaluate import evaluate
from ipmp.config.parse import parse_argv
from ipmp.config.render import render
from ipmp.errors import ConfigError
from ipmp.kernel.decode import RT_SCOPE_HOST, RT_SCOPE_UNIVERSE
from ipmp.kernel.request import encode_request
from ipmp.linux.ops import AddAddress, DelAddress, Plan
from ipmp.linux.plan import diff
from ipmp.linux.view import Scope, merge
from ipmp.model import Config, Environment, Family, KAddress, KernelState
from tests.fakes import FakeKernel, make_kernel

ENV = Environment()
LO4 = "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
LO6 = "lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n"


def kernel() -> KernelState:
    """A fresh namespace with one NIC: ``lo`` holds 127.0.0.1/8 and ``::1``, named lo0 as the view does."""
    state = make_kernel("qfe0")

    def rename(a: KAddress) -> KAddress:
        if a.ifname != "lo":
            return a
        return replace(a, ifname="lo0", label="lo0" if a.label else "")

    return replace(
        state,
        links=tuple(replace(lk, name="lo0") if lk.loopback else lk for lk in state.links),
        addresses=tuple(rename(a) for a in state.addresses),
    )


def run(config: Config, *argv: str) -> tuple[Config, Scope]:
    out = evaluate(config, parse_argv(list(argv)), ENV)
    return out.config, Scope(out.touched)


def plan_of(current: KernelState, *argv: str) -> Plan:
    config, scope = run(merge(current, ()), *argv)
    return make_plan(current, config, scope, ())


# --------------------------------------------------------------------------
# lo0 addif: host scope, no broadcast, reads back in sync
# --------------------------------------------------------------------------


def _scope(op: AddAddress | DelAddress) -> int:
    """The scope byte of the op's ``ifaddrmsg`` (family, prefixlen, flags, scope, index)."""
    request = encode_request(op)
    assert request is not None
    return request[2][3]


def test_loopback_addresses_go_to_the_kernel_with_host_scope() -> None:
    loopback = AddAddress(KAddress("lo", IPv4Interface("127.0.0.2/8"), label="lo0:1"))
    assert _scope(loopback) == RT_SCOPE_HOST == 254
    # A service address on lo0 (lo0:1 192.0.2.5/32, Solaris' "receive only"
    # IRE_LOCAL) keeps the universe scope any Linux tool gives it.
    service = AddAddress(KAddress("lo", IPv4Interface("192.0.2.5/32"), label="lo0:2"))
    assert _scope(service) == RT_SCOPE_UNIVERSE
    # IPv6 scope comes from the address; a delete matches without it.
    assert _scope(AddAddress(KAddress("lo", IPv6Interface("::1/128")))) == RT_SCOPE_UNIVERSE
    assert _scope(DelAddress(KAddress("lo", IPv4Interface("127.0.0.2/8")))) == RT_SCOPE_UNIVERSE


def test_addif_on_lo0_adds_the_address_without_broadcast_and_reads_back_in_sync() -> None:
    current = kernel()
    config, scope = run(merge(current, ()), "lo0", "addif", "127.0.0.2/8", "up")
    plan = make_plan(current, config, scope, ())
    # lo0 is not BROADCAST on Solaris, and the kernel's 127.0.0.1 has none.
    assert plan == (AddAddress(KAddress("lo0", IPv4Interface("127.0.0.2/8"), label="lo0:1")),)
    fake = FakeKernel(current)
    applied = asyncio.run(apply(fake, config, scope, before=current))
    assert applied.plan == plan
    # Read back, nothing is left to do: no diff that comes back on every command.
    assert make_plan(applied.after, config, scope, ()) == ()
    shown = merge(applied.after, config.interfaces)
    assert render(shown, ifname="lo0", unit=1) == (
        "lo0:1: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n"
        "\tinet 127.0.0.2 netmask ff000000 \n")


def test_broadcast_plus_on_lo0_sets_none() -> None:
    # Solaris ``broadcast +`` sets the address again, which gives lo0 no broadcast.
    assert plan_of(kernel(), "lo0", "addif", "127.0.0.3", "netmask", "+", "broadcast", "+", "up") == (
        AddAddress(KAddress("lo0", IPv4Interface("127.0.0.3/8"), label="lo0:1")),)


# --------------------------------------------------------------------------
# lo0 inet6 plumb: ::1 stays
# --------------------------------------------------------------------------


def test_inet6_plumb_of_lo0_keeps_the_kernels_localhost6() -> None:
    current = kernel()
    before = merge(current, ())
    lo = before.get("lo0")
    assert lo is not None and Family.INET6 not in lo.plumbed  # no IPv6 in use: hidden, as on Solaris
    config, scope = run(before, "lo0", "inet6", "plumb")
    assert make_plan(current, config, scope, ()) == ()  # ::1 is not deleted
    assert render(config, ifname="lo0", family=Family.INET6) == LO6 + "\tinet6 ::1/128 \n"


def test_inet6_plumb_of_lo0_without_localhost6_puts_it_back() -> None:
    current = kernel()
    current = replace(current, addresses=tuple(a for a in current.addresses if str(a.address) != "::1/128"))
    assert plan_of(current, "lo0", "inet6", "plumb") == (
        AddAddress(KAddress("lo0", IPv6Interface("::1/128"), noprefixroute=True)),)


def test_plumb_of_a_plumbed_lo0_says_nothing_and_changes_nothing() -> None:
    # Solaris inetplumb returns quietly when lo0 has an address.
    config = merge(kernel(), ())
    out = evaluate(config, parse_argv(["lo0", "plumb"]), ENV)
    assert (out.stderr, out.touched, out.config) == ((), frozenset(), config)


# --------------------------------------------------------------------------
# localhost is never taken away
# --------------------------------------------------------------------------


def with_ipv6_and_a_logical() -> Config:
    config = merge(kernel(), ())
    config, _ = run(config, "lo0", "inet6", "plumb")
    config, _ = run(config, "lo0", "addif", "127.0.0.2/8", "up")
    return config


@pytest.mark.parametrize(("argv", "message"), [
    (["lo0", "down"], "down: lo0: refused: it would take 127.0.0.1 (localhost) off the loopback, "
                      "and Linux cannot do without it"),
    (["lo0", "inet6", "down"],
     "down: lo0: refused: it would take ::1 (localhost) off the loopback, and Linux cannot do without it"),
    (["lo0", "127.0.0.5"], "127.0.0.5: lo0: refused: it would take 127.0.0.1 (localhost) off the loopback"),
    (["-a", "down"], "down: lo0: refused: it would take 127.0.0.1 (localhost) off the loopback"),
    (["lo0", "unplumb"],
     "unplumb: lo0: the loopback cannot be unplumbed on Linux (it carries the host's 127.0.0.1 and all "
     "local traffic); unplumb its logical interfaces (lo0:N) instead"),
    (["lo0", "inet6", "unplumb"], "unplumb: lo0: the loopback cannot be unplumbed on Linux (it carries "
                                  "the host's ::1"),
    (["-a", "unplumb"], "unplumb: lo0: the loopback cannot be unplumbed on Linux"),
])
def test_commands_that_take_localhost_away_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        evaluate(with_ipv6_and_a_logical(), parse_argv(argv), ENV)
    assert message in str(caught.value)


@pytest.mark.parametrize("argv", [
    ["lo0", "down", "up"],  # down and up again in one command: 127.0.0.1 stays
    ["lo0", "up"],
    ["lo0:1", "down"],
    ["lo0:1", "unplumb"],
    ["lo0", "removeif", "127.0.0.2"],
    ["lo0", "netmask", "255.255.0.0"],
    ["lo0", "inet6", "addif", "2001:db8::5/128", "up"],
])
def test_what_keeps_localhost_is_allowed(argv: list[str]) -> None:
    config = with_ipv6_and_a_logical()
    out = evaluate(config, parse_argv(argv), ENV)
    lo = out.config.get("lo0")
    assert lo is not None
    held = {str(lg.address.ip) for lg in lo.logicals if lg.up and lg.address is not None}
    assert {"127.0.0.1", "::1"} <= held


def test_no_plan_deletes_localhost_unless_it_comes_back() -> None:
    current = kernel()
    lo0 = Scope(frozenset({("lo0", Family.INET), ("lo0", Family.INET6)}))
    bare = replace(current, addresses=tuple(a for a in current.addresses if a.ifname != "lo0"))
    assert not [op for op in diff(current, bare, lo0) if isinstance(op, DelAddress)]
    # Another prefix length for 127.0.0.1 is a change, not a loss.
    wider = KAddress("lo0", IPv4Interface("127.0.0.1/16"), label="lo0", noprefixroute=False)
    moved = replace(current, addresses=tuple(wider if str(a.address) == "127.0.0.1/8" else a
                                             for a in current.addresses))
    ops = diff(current, moved, lo0)
    assert [str(op.address.address) for op in ops if isinstance(op, (DelAddress, AddAddress))] == [
        "127.0.0.1/8", "127.0.0.1/16"]
    # Other addresses of the loopback go as anywhere else.
    extra = KAddress("lo0", IPv4Interface("127.0.0.2/8"), label="lo0:1")
    assert diff(replace(current, addresses=(*current.addresses, extra)), current, lo0) == (DelAddress(extra),)


# --------------------------------------------------------------------------
# A boot with hostname.lo0 (illumos net-loopback's sign to plumb lo0 with ifconfig)
# --------------------------------------------------------------------------


def test_boot_with_empty_hostname_lo0_files_keeps_localhost(tmp_path: Path) -> None:
    files = [(Family.INET, tmp_path / "hostname.lo0"), (Family.INET6, tmp_path / "hostname6.lo0")]
    for _, path in files:
        path.write_text("")
    current = kernel()
    config = boot_config(merge(current, ()), "lo0", files, ENV)
    both = Scope(frozenset({("lo0", Family.INET), ("lo0", Family.INET6)}))
    assert make_plan(current, config, both, ()) == ()
    assert render(config, ifname="lo0") == (LO4 + "\tinet 127.0.0.1 netmask ff000000 \n"
                                            + LO6 + "\tinet6 ::1/128 \n")
