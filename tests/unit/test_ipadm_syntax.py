"""``ipadm`` command lines: each subcommand's option table, options after the
operand, long options, and the usage errors with the texts of the Solaris 11
``ipadm.c`` (``die``, ``die_opterr``, ``usage``) and Oracle's ipadm(8)
(https://docs.oracle.com/cd/E88353_01/html/E72487/ipadm-8.html)."""

from __future__ import annotations

import pytest

from ipmp.config.ipadm_options import SUBCOMMANDS, usage_text
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError, parse_argv, refusal


def _error(argv: list[str]) -> str:
    with pytest.raises(IpadmError) as info:
        parse_argv(argv)
    assert info.value.status == 1
    return info.value.message


# -- the tables -------------------------------------------------------------------------------


def test_bare_ipadm_is_the_listing() -> None:
    assert parse_argv([]) == IpadmCommand("")


@pytest.mark.parametrize("sub", ["create-ip", "disable-if", "enable-if"])
def test_interface_commands_take_t_and_one_interface(sub: str) -> None:
    assert parse_argv([sub, "-t", "net0"]) == IpadmCommand(sub, "net0", temporary=True)
    assert parse_argv([sub, "net0", "--temporary"]) == IpadmCommand(sub, "net0", temporary=True)


def test_create_ip_is_persistent_by_default() -> None:
    assert parse_argv(["create-ip", "net0"]) == IpadmCommand("create-ip", "net0")


@pytest.mark.parametrize("sub", ["disable-if", "enable-if"])
def test_disable_and_enable_need_t(sub: str) -> None:
    assert _error([sub, "net0"]) == f"ipadm: persistent operation not supported for {sub}"


def test_delete_ip_takes_no_option_at_all() -> None:
    assert parse_argv(["delete-ip", "net0"]) == IpadmCommand("delete-ip", "net0")
    assert _error(["delete-ip", "-t", "net0"]) == "ipadm: usage: \tdelete-ip\t<IP-interface>"


def test_create_ipmp_collects_every_i_in_order() -> None:
    got = parse_argv(["create-ipmp", "-i", "net0,net1", "-i", "net2", "ipmp0"])
    assert got == IpadmCommand("create-ipmp", "ipmp0", interfaces=("net0", "net1", "net2"))


def test_create_ipmp_without_members() -> None:
    assert parse_argv(["create-ipmp", "ipmp0"]) == IpadmCommand("create-ipmp", "ipmp0")


def test_options_may_follow_the_operand() -> None:
    # Oracle 11.4 accepts them there; libc getopt_long permutes.
    got = parse_argv(["create-ipmp", "ipmp0", "-t", "-inet0", "--interface=net1"])
    assert got == IpadmCommand("create-ipmp", "ipmp0", temporary=True, interfaces=("net0", "net1"))


def test_double_dash_ends_the_options() -> None:
    assert parse_argv(["create-ip", "--", "-odd"]) == IpadmCommand("create-ip", "-odd")


def test_empty_names_between_commas_name_nothing() -> None:
    assert parse_argv(["add-ipmp", "-i", "net0,,net1,", "ipmp0"]).interfaces == ("net0", "net1")


@pytest.mark.parametrize("sub", ["add-ipmp", "remove-ipmp"])
def test_add_and_remove_need_i(sub: str) -> None:
    assert parse_argv([sub, "-t", "-i", "net0", "ipmp0"]) == IpadmCommand(
        sub, "ipmp0", temporary=True, interfaces=("net0",))
    assert _error([sub, "ipmp0"]) == f"ipadm: usage: {SUBCOMMANDS[sub].usage}"


def test_delete_ipmp_takes_f_not_t() -> None:
    assert parse_argv(["delete-ipmp", "-f", "ipmp0"]) == IpadmCommand("delete-ipmp", "ipmp0", force=True)
    assert parse_argv(["delete-ipmp", "ipmp0", "--force"]).force
    assert _error(["delete-ipmp", "-t", "ipmp0"]).startswith("ipadm: unrecognized option '-t'\nusage: ")


def test_create_addr_static_with_local() -> None:
    got = parse_argv(["create-addr", "-T", "static", "-a", "local=192.0.2.10/24", "ipmp0/v4"])
    assert got == IpadmCommand("create-addr", "ipmp0/v4", address="192.0.2.10/24")


def test_create_addr_type_implied_and_interface_operand() -> None:
    # Solaris 11.4: -T static is the default; the addrobj is chosen later.
    got = parse_argv(["create-addr", "-a", "192.0.2.10/24", "ipmp0"])
    assert got == IpadmCommand("create-addr", "ipmp0", address="192.0.2.10/24")


def test_create_addr_local_and_remote_down_temporary() -> None:
    got = parse_argv(["create-addr", "ipmp0/p2p", "-td", "--address", "local=192.0.2.1,remote=192.0.2.2"])
    assert got == IpadmCommand("create-addr", "ipmp0/p2p", temporary=True, address="192.0.2.1",
                               remote="192.0.2.2", down=True)


def test_create_addr_ipv6() -> None:
    got = parse_argv(["create-addr", "-a", "2001:db8::10/64", "ipmp0/v6"])
    assert got.address == "2001:db8::10/64"


@pytest.mark.parametrize(("argv", "message"), [
    (["create-addr", "ipmp0/v4"], "invalid arguments"),
    (["create-addr", "-a", "192.0.2.1/24"], "invalid arguments"),
    (["create-addr", "-a", "192.0.2.1/24", "ipmp0/"], "invalid address object name: ipmp0/"),
    (["create-addr", "-a", "192.0.2.1/24", "/v4"], "invalid address object name: /v4"),
    (["create-addr", "-T", "static", "-w", "5", "-a", "192.0.2.1/24", "net0/v4"],
     "invalid arguments for type static"),
    (["create-addr", "-a", "remote=192.0.2.2", "net0/v4"], "missing local address"),
    (["create-addr", "-a", "a,b", "net0/v4"], "invalid address provided"),
    (["create-addr", "-T", "dhcp", "-a", "192.0.2.1/24", "net0/v4"], "invalid arguments for type dhcp"),
])
def test_create_addr_usage_errors(argv: list[str], message: str) -> None:
    assert _error(argv) == f"ipadm: {message}\nusage: {SUBCOMMANDS['create-addr'].usage}"


def test_create_addr_unknown_type_and_duplicates() -> None:
    assert _error(["create-addr", "-T", "vrrp", "net0/v4"]) == "ipadm: invalid address type vrrp"
    assert _error(["create-addr", "-a", "local=192.0.2.1,local=192.0.2.3", "n/v4"]) == \
        "ipadm: multiple local addresses provided"


def test_create_addr_dhcp_type_is_recognised() -> None:
    assert parse_argv(["create-addr", "-T", "dhcp", "net0/dhcp"]).addr_type == "dhcp"


def test_delete_addr_takes_r() -> None:
    assert parse_argv(["delete-addr", "ipmp0/v4"]) == IpadmCommand("delete-addr", "ipmp0/v4")
    assert parse_argv(["delete-addr", "-r", "net0/v4"]).release


def test_set_ifprop() -> None:
    got = parse_argv(["set-ifprop", "-p", "standby=on", "-m", "ip", "net1"])
    assert got == IpadmCommand("set-ifprop", "net1", properties=(("standby", "on"),), protocol="ip")
    got = parse_argv(["set-ifprop", "net1", "--prop=standby=off", "--module", "ip", "-t"])
    assert got == IpadmCommand("set-ifprop", "net1", temporary=True, properties=(("standby", "off"),),
                               protocol="ip")


def test_reset_ifprop() -> None:
    got = parse_argv(["reset-ifprop", "-p", "standby", "-m", "ip", "net1"])
    assert got == IpadmCommand("reset-ifprop", "net1", properties=(("standby", None),), protocol="ip")


@pytest.mark.parametrize(("argv", "message"), [
    (["set-ifprop", "-p", "standby", "-m", "ip", "net1"], "please specify the value to be set.\n{use}"),
    (["set-ifprop", "-p", "standby=", "-m", "ip", "net1"], "please specify the value to be set.\n{use}"),
    (["set-ifprop", "-p", "a=b=c", "-m", "ip", "net1"],
     "cannot specify more than one prop=val at a time.\n{use}"),
    (["set-ifprop", "-p", "standby=on", "-p", "standby=off", "-m", "ip", "n"],
     "-p must be specified once only"),
    (["set-ifprop", "-p", "standby=on", "-m", "ip", "-m", "ip", "n"], "-m must be specified once only"),
    (["set-ifprop", "-p", "standby=on", "net1"], "usage: {use}"),
    (["set-ifprop", "-p", "standby=on", "-m", "ip"], "usage: {use}"),
    (["set-ifprop", "-p", "standby=on", "-m", "ether", "net1"], "invalid protocol 'ether' specified"),
    (["set-ifprop", "-m", "ip", "net1", "-p"], "option '-p' requires a value\nusage: {use}"),
])
def test_set_ifprop_errors(argv: list[str], message: str) -> None:
    assert _error(argv) == "ipadm: " + message.format(use=SUBCOMMANDS["set-ifprop"].usage)


def test_reset_ifprop_refuses_a_value() -> None:
    assert _error(["reset-ifprop", "-p", "standby=on", "-m", "ip", "n"]) == \
        f"ipadm: incorrect syntax used for -p.\n{SUBCOMMANDS['reset-ifprop'].usage}"


def test_show_ifprop_p_is_a_property_and_c_is_parsable() -> None:
    got = parse_argv(["show-ifprop", "-c", "-o", "current", "-p", "standby", "net1"])
    assert got == IpadmCommand("show-ifprop", "net1", properties=(("standby", None),), protocol="ip",
                               fields=("current",), parsable=True)
    got = parse_argv(["show-ifprop", "-p", "standby,group", "-p", "standby", "--parsable", "-ocurrent"])
    assert got.properties == (("standby", None), ("group", None))
    assert got.parsable


def test_show_ifprop_defaults_to_ip_and_checks_m() -> None:
    assert parse_argv(["show-ifprop"]) == IpadmCommand("show-ifprop", protocol="ip")
    assert _error(["show-ifprop", "-m", "ip", "-m", "ipv4"]) == "ipadm: cannot specify more than one -m"
    assert _error(["show-ifprop", "-p", "standby=on"]) == "ipadm: invalid interface properties specified"
    assert _error(["show-ifprop", "-m", "nope"]) == "ipadm: invalid protocol 'nope' specified"


@pytest.mark.parametrize("sub", ["show-if", "show-addr"])
def test_show_p_is_parsable_and_needs_o(sub: str) -> None:
    assert parse_argv([sub, "-p", "-o", "state"]) == IpadmCommand(sub, fields=("state",), parsable=True)
    assert parse_argv([sub, "-po", "a,b"]).fields == ("a", "b")
    assert parse_argv([sub, "x", "--output=all"]) == IpadmCommand(sub, "x", fields=("all",))
    assert _error([sub, "-p"]) == "ipadm: -p requires -o"
    # do_show_if's optstring has no leading ':': a missing value reads as unrecognized.
    assert _error([sub, "-o"]) == f"ipadm: unrecognized option '-o'\nusage: {SUBCOMMANDS[sub].usage}"


@pytest.mark.parametrize("sub", ["show-if", "show-addr", "show-ifprop"])
def test_show_takes_at_most_one_operand(sub: str) -> None:
    assert _error([sub, "a", "b"]) == f"ipadm: usage: {SUBCOMMANDS[sub].usage}"


def test_show_if_takes_no_t() -> None:
    assert _error(["show-if", "-t"]).startswith("ipadm: unrecognized option '-t'\n")


def test_long_options_are_per_subcommand() -> None:
    for word, shown in (("--interface=net0", "--interface"), ("--verbose", "--verbose"),
                        ("--temporary=yes", "--temporary")):
        assert _error(["create-ip", word, "x"]).startswith(f"ipadm: unrecognized option '{shown}'\n")


def test_unknown_subcommand_prints_every_usage() -> None:
    message = _error(["create-vlan", "x"])
    assert message.startswith("ipadm: unknown subcommand 'create-vlan'\n"
                              "usage:  ipadm <subcommand> <args> ...\n")
    assert message.endswith(usage_text())
    for spec in SUBCOMMANDS.values():
        assert spec.usage in message


def test_an_option_where_the_subcommand_should_be() -> None:
    assert _error(["-t"]).startswith("ipadm: unknown subcommand '-t'\n")


def test_wrong_operand_counts() -> None:
    assert _error(["create-ip"]) == f"ipadm: usage: {SUBCOMMANDS['create-ip'].usage}"
    assert _error(["create-ipmp", "a", "b"]) == f"ipadm: usage: {SUBCOMMANDS['create-ipmp'].usage}"
    assert _error(["delete-addr"]) == f"ipadm: usage: {SUBCOMMANDS['delete-addr'].usage}"


@pytest.mark.parametrize(("argv", "message"), [
    (["create-ip", "net0"], "cannot create interface net0"),
    (["delete-ipmp", "ipmp0"], "cannot delete IPMP interface ipmp0"),
    (["remove-ipmp", "-i", "net1,net0", "ipmp0"], "cannot remove net1 from ipmp0"),
    (["reset-ifprop", "-p", "standby", "-m", "ip", "net1"], "reset-ifprop: standby"),
    (["create-addr", "-a", "192.0.2.1/24", "net0/v4"], "cannot create address"),
])
def test_refusal_texts(argv: list[str], message: str) -> None:
    refused = refusal(parse_argv(argv), "Insufficient privileges")
    assert (refused.message, refused.status) == (f"ipadm: {message}: Insufficient privileges", 1)
