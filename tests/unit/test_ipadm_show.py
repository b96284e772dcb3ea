"""``ipadm show-if``, ``show-addr``, ``show-ifprop`` and the bare listing, byte for byte.

The transcripts are written out by hand, not computed by the code under
test, in the layout of Oracle's documentation examples:

* ipadm(8), Oracle Solaris 11.4, https://docs.oracle.com/cd/E88353_01/html/E72487/ipadm-8.html :
  the ``show-if`` header ``IFNAME     CLASS    STATE    ACTIVE OVER``, the
  ``show-addr`` header ``ADDROBJ           TYPE     STATE        ADDR``, the
  ``show-ifprop`` columns, and the bare ``ipadm`` listing (NAME, CLASS/TYPE,
  STATE, UNDER, ADDR, addresses indented under their interface);
* "Configuring IPMP Groups", Oracle Solaris 11.4 "Administering TCP/IP
  Networks, IPMP, and IP Tunnels", https://docs.oracle.com/cd/E37838_01/html/E60991/gfyeh.html :
  ``ipmp0`` over ``net0`` and ``net1``, OVER listing the members, its data
  addresses ``ipmp0/v4`` and ``ipmp0/v4a``;

with the column widths of the Solaris 11 ``ipadm.c`` field tables
(``show_if_fields`` 11/9/9/7/14/11/44, ``show_addr_fields`` 18/9/13/8/11/46,
``intfprop_fields`` 12/16/6/5/11/11/11/16) and its flag letters
(``print_si_cb``: CURRENT ``bm46pvsliVaZ``, PERSISTENT ``46sl``).  The states
of an IPMP interface without members (``failed``) and with members but no
data address (``down``) are the issue's.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ipmp.admin.ipadm_show import show
from ipmp.config.ipadm_db import IpadmDb, parse_db
from ipmp.config.ipadm_syntax import IpadmError, parse_argv
from ipmp.model import Config, Interface, Logical
from tests.unit.builders import LO0, V4, V4V6, nic, v4, v6


def ipmp0(*logicals: Logical, running: bool = True) -> Interface:
    return Interface("ipmp0", index=4, plumbed=V4, link_up=True, running=running, group="ipmp0",
                     ipmp=True, logicals=logicals)


def two_members() -> Config:
    """ipmp0 over net0 and net1: net0 holds ipmp0/v4, net1 a test address and ipmp0/v4a."""
    net0 = nic("net0", 2, v4(1, "192.0.2.10/24", up=True, ipmp_unit=0, addrobj="ipmp0/v4"), group="ipmp0")
    net1 = nic("net1", 3, v4(0, "192.0.2.21/24", up=True, deprecated=True, nofailover=True),
               v4(1, "192.0.2.11/24", up=True, ipmp_unit=1, addrobj="ipmp0/v4a"), group="ipmp0")
    return Config((LO0, net0, net1, ipmp0()))


#: The persistent file of that host: net1 added first, net1 a persistent standby.
DB = parse_db(
    "_ifname=net0;_family=2;_ifclass=0;\n"
    "_ifname=net1;_family=2;_ifclass=0;\n"
    "_ifname=ipmp0;_family=2;_ifclass=1;\n"
    "_ifname=ipmp0;_family=26;_ifclass=1;\n"
    "_ifname=ipmp0;_underif=net1;\n"
    "_ifname=ipmp0;_underif=net0;\n"
    "_ifname=ipmp0;_aobjname=ipmp0/v4;_ipv4addr=192.0.2.10,;\n"
    "_ifname=ipmp0;_aobjname=ipmp0/v4;prefixlen=24;\n"
    "_ifname=net1;_protocol=ip;standby=on;\n"
)


def run(argv: list[str], config: Config | None = None, db: IpadmDb = DB) -> tuple[str, ...]:
    output = show(two_members() if config is None else config, db, parse_argv(argv))
    assert (output.stderr, output.status) == ((), 0)
    return output.stdout


# -- show-if ------------------------------------------------------------------------------


def test_show_if() -> None:
    assert run(["show-if"]) == (
        "IFNAME     CLASS    STATE    ACTIVE OVER",
        "lo0        loopback ok       yes    --",
        "net0       ip       ok       yes    --",
        "net1       ip       ok       yes    --",
        "ipmp0      ipmp     ok       yes    net1 net0",
    )


def test_show_if_all_fields() -> None:
    assert run(["show-if", "-o", "all"]) == (
        "IFNAME     CLASS    STATE    ACTIVE CURRENT       PERSISTENT OVER",
        "lo0        loopback ok       yes    -m4--v------  ----       --",
        "net0       ip       ok       yes    bm4----l----  4--l       --",
        "net1       ip       ok       yes    bm4----l----  4-sl       --",
        "ipmp0      ipmp     ok       yes    bm4---------  46--       net1 net0",
    )


def test_over_lists_members_in_the_order_they_were_added() -> None:
    # Without a persistent order (temporary members): the view's order.
    assert run(["show-if", "-p", "-o", "over", "ipmp0"], db=IpadmDb()) == ("net0 net1",)
    assert run(["show-if", "-p", "-o", "over", "ipmp0"]) == ("net1 net0",)


def test_ipmp_interface_without_members_is_failed() -> None:
    config = Config((LO0, ipmp0(running=False)))
    assert run(["show-if", "ipmp0"], config, IpadmDb()) == (
        "IFNAME     CLASS    STATE    ACTIVE OVER",
        "ipmp0      ipmp     failed   no     --",
    )


def test_ipmp_interface_with_members_but_no_data_address_is_down() -> None:
    config = Config((LO0, nic("net0", 2, group="ipmp0"), ipmp0()))
    assert run(["show-if", "-p", "-o", "ifname,state,active"], config, IpadmDb()) == (
        "lo0:ok:yes", "net0:ok:yes", "ipmp0:down:no")


def test_member_states() -> None:
    base = two_members()
    net0, net1 = base.get("net0"), base.get("net1")
    assert net0 is not None and net1 is not None
    config = Config((LO0, replace(net0, failed=True), replace(net1, offline=True), ipmp0()))
    assert run(["show-if", "-p", "-o", "ifname,state,active"], config) == (
        "lo0:ok:yes", "net0:failed:no", "net1:offline:no", "ipmp0:ok:yes")
    unplugged = Config((LO0, replace(net0, running=False), net1, ipmp0()))
    assert run(["show-if", "-p", "-o", "state", "net0"], unplugged) == ("failed",)


def test_standby_member_is_inactive() -> None:
    standby = nic("net2", 5, group="ipmp0", standby=True)
    config = Config((*two_members().interfaces, standby))
    assert run(["show-if", "-p", "-o", "ifname,active,current", "net2"], config) == ("net2:no:bm4---sli---",)


def test_loopback_is_multicast_even_where_linux_says_not() -> None:
    config = Config((replace(LO0, multicast=False),))
    assert run(["show-if", "-p", "-o", "current"], config, IpadmDb()) == ("-m4--v------",)


def test_a_link_local_never_brought_up_is_no_address() -> None:
    config = Config((nic("net3", 6, v6(0, "fe80::1/10", kernel_owned=True), plumbed=V4V6),
                     nic("net4", 7, v6(0, "fe80::2/10", up=True, kernel_owned=True), plumbed=V4V6)))
    assert run(["show-addr", "-p", "-o", "addrobj,type,state"], config, IpadmDb()) == (
        "net4/?:addrconf:ok",)


def test_plain_interface_without_an_up_address_is_down() -> None:
    # ipadm create-ip net3: plumbed, nothing up yet (the kernel's link-local does not count).
    config = Config((LO0, nic("net3", 6, v6(0, "fe80::1/10", up=True, kernel_owned=True), plumbed=V4V6)))
    assert run(["show-if", "-p", "-o", "state,active,current", "net3"], config, IpadmDb()) == (
        "down:no:bm46--------",)


def test_unplumbed_nic_is_no_ip_interface() -> None:
    config = Config((LO0, nic("net4", 7, plumbed=frozenset())))
    assert run(["show-if", "-p", "-o", "ifname"], config, IpadmDb()) == ("lo0",)


def test_persistent_only_interface_is_disabled() -> None:
    db = parse_db(DB.lines[0].text + "\n_ifname=net9;_family=2;_ifclass=0;\n")
    assert run(["show-if", "-o", "ifname,class,state,active,persistent", "net9"], db=db) == (
        "IFNAME     CLASS    STATE    ACTIVE PERSISTENT",
        "net9       ip       disabled no     4---",
    )


def test_a_name_wider_than_its_column_pushes_the_line_right() -> None:
    config = Config((nic("verylongname0", 2, v4(0, "192.0.2.5/24", up=True)),))
    assert run(["show-if"], config, IpadmDb())[1] == "verylongname0 ip    ok       yes    --"


def test_show_if_unknown_interface() -> None:
    with pytest.raises(IpadmError) as info:
        show(two_members(), DB, parse_argv(["show-if", "net7"]))
    assert info.value.message == "ipadm: cannot get information for interface(s): No such interface"


# -- fields ---------------------------------------------------------------------------------


def test_unknown_field_is_a_warning_in_human_mode() -> None:
    output = show(two_members(), DB, parse_argv(["show-if", "-o", "ifname,bogus", "lo0"]))
    assert output.stdout == ("IFNAME", "lo0")
    assert output.stderr == ("ipadm: warning: ignoring unknown output field: `bogus'",)


@pytest.mark.parametrize(("argv", "message"), [
    (["show-if", "-p", "-o", "ifname,bogus"], "ipadm: unknown output field: `bogus'"),
    (["show-if", "-p", "-o", "all"], "ipadm: output field `all' invalid in parsable mode"),
    (["show-addr", "-o", "bogus"], "ipadm: no valid output fields"),
    (["show-ifprop", "-c"], "ipadm: output fields must be specified in parsable mode"),
])
def test_field_errors(argv: list[str], message: str) -> None:
    with pytest.raises(IpadmError) as info:
        show(two_members(), DB, parse_argv(argv))
    assert info.value.message == message


def test_field_names_are_case_insensitive() -> None:
    assert run(["show-if", "-p", "-o", "IfName,Class", "ipmp0"]) == ("ipmp0:ipmp",)


# -- show-addr --------------------------------------------------------------------------------


def test_show_addr() -> None:
    assert run(["show-addr"]) == (
        "ADDROBJ           TYPE     STATE        ADDR",
        "lo0/v4            static   ok           127.0.0.1/8",
        "net1/?            static   ok           192.0.2.21/24",
        "ipmp0/v4          static   ok           192.0.2.10/24",
        "ipmp0/v4a         static   ok           192.0.2.11/24",
    )


def test_show_addr_all_fields() -> None:
    assert run(["show-addr", "-o", "all", "ipmp0/"]) == (
        "ADDROBJ           TYPE     STATE        CURRENT PERSISTENT ADDR",
        "ipmp0/v4          static   ok           U----   U--        192.0.2.10/24",
        "ipmp0/v4a         static   ok           U----   ---        192.0.2.11/24",
    )


def test_show_addr_of_an_interface_and_of_one_object() -> None:
    assert run(["show-addr", "-p", "-o", "addrobj", "ipmp0"]) == ("ipmp0/v4", "ipmp0/v4a")
    assert run(["show-addr", "-p", "-o", "addrobj,current", "net1/"]) == ("net1/?:U---d",)
    assert run(["show-addr", "-p", "-o", "addr", "ipmp0/v4a"]) == ("192.0.2.11/24",)


def test_show_addr_ipv6_after_ipv4_and_escaped_when_parsable() -> None:
    base = two_members()
    net0 = base.get("net0")
    assert net0 is not None
    net0 = replace(net0, plumbed=V4V6, logicals=(*net0.logicals, v6(
        1, "2001:db8::10/64", up=True, ipmp_unit=0, addrobj="ipmp0/v6")))
    config = Config((LO0, net0, *base.interfaces[2:]))
    assert run(["show-addr", "-p", "-o", "addrobj,addr"], config) == (
        "lo0/v4:127.0.0.1/8", "net1/?:192.0.2.21/24", "ipmp0/v4:192.0.2.10/24", "ipmp0/v4a:192.0.2.11/24",
        "ipmp0/v6:2001\\:db8\\:\\:10/64")
    # One field: printed as it is.
    assert run(["show-addr", "-p", "-o", "addr", "ipmp0/v6"], config) == ("2001:db8::10/64",)


def test_unbound_data_address_and_failed_group() -> None:
    # No member can hold it: the address is on the IPMP interface's record.
    config = Config((LO0, ipmp0(v4(0, "192.0.2.10/24", up=True, addrobj="ipmp0/v4"), running=False)))
    assert run(["show-addr", "-p", "-o", "addrobj,state", "ipmp0"], config) == ("ipmp0/v4:inaccessible",)


def test_down_and_disabled_addresses() -> None:
    net1 = nic("net1", 3, v4(0, "192.0.2.21/24", addrobj="net1/test"))
    config = Config((LO0, net1))
    assert run(["show-addr", "-p", "-o", "addrobj,state,addr"], config) == (
        "lo0/v4:ok:127.0.0.1/8", "net1/test:down:192.0.2.21/24", "ipmp0/v4:disabled:192.0.2.10/24")


def test_show_addr_errors() -> None:
    with pytest.raises(IpadmError) as info:
        show(two_members(), DB, parse_argv(["show-addr", "ipmp0/v9"]))
    assert info.value.message == "ipadm: address object not found"
    with pytest.raises(IpadmError) as info:
        show(two_members(), DB, parse_argv(["show-addr", "net7/"]))
    assert info.value.message == "ipadm: cannot get address information: No such interface"


# -- show-ifprop ------------------------------------------------------------------------------


def test_show_ifprop_standby() -> None:
    assert run(["show-ifprop", "-p", "standby", "net1"]) == (
        "IFNAME      PROPERTY        PROTO PERM CURRENT    PERSISTENT DEFAULT    POSSIBLE",
        "net1        standby         ip    rw   off        on         off        on,off",
    )


def test_show_ifprop_every_property_of_a_member() -> None:
    assert run(["show-ifprop", "-m", "ip", "net0"]) == (
        "IFNAME      PROPERTY        PROTO PERM CURRENT    PERSISTENT DEFAULT    POSSIBLE",
        "net0        group           ip    rw   ipmp0      ipmp0      --         --",
        "net0        standby         ip    rw   off        --         off        on,off",
    )


def test_show_ifprop_parsable() -> None:
    standby = replace(two_members(), interfaces=tuple(
        replace(i, standby=True) if i.name == "net1" else i for i in two_members().interfaces))
    assert run(["show-ifprop", "-c", "-o", "current", "-p", "standby", "net1"], standby) == ("on",)
    assert run(["show-ifprop", "-c", "-o", "ifname,property,persistent", "-p", "standby"]) == (
        "lo0:standby:", "net0:standby:", "net1:standby:on", "ipmp0:standby:")


def test_show_ifprop_other_protocols_have_none_of_these() -> None:
    assert run(["show-ifprop", "-m", "ipv4", "net1"]) == ()


def test_show_ifprop_unknown_property_warns_and_fails() -> None:
    output = show(two_members(), DB, parse_argv(["show-ifprop", "-p", "mtu,standby", "net1"]))
    assert output.stderr == ("ipadm: warning: cannot get property 'mtu' for 'net1': Unknown property",)
    assert output.status == 1
    assert output.stdout[1].startswith("net1        standby ")


def test_show_ifprop_unknown_interface() -> None:
    with pytest.raises(IpadmError) as info:
        show(two_members(), DB, parse_argv(["show-ifprop", "net7"]))
    assert info.value.message == "ipadm: no such object 'net7': No such interface"


# -- the bare listing -------------------------------------------------------------------------


def test_bare_ipadm_lists_interfaces_and_their_addresses() -> None:
    assert run([]) == (
        "NAME              CLASS/TYPE STATE        UNDER      ADDR",
        "lo0               loopback   ok           --         --",
        "   lo0/v4         static     ok           --         127.0.0.1/8",
        "net0              ip         ok           ipmp0      --",
        "net1              ip         ok           ipmp0      --",
        "   net1/?         static     ok           --         192.0.2.21/24",
        "ipmp0             ipmp       ok           --         --",
        "   ipmp0/v4       static     ok           --         192.0.2.10/24",
        "   ipmp0/v4a      static     ok           --         192.0.2.11/24",
    )


def test_nothing_to_show_prints_no_header() -> None:
    assert run(["show-addr"], Config(()), IpadmDb()) == ()
