"""Boot files under an alternate root: discovery, §6.3 line rules, hosts/netmasks/defaultrouter."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmp.admin.bootfiles import boot_config
from ipmp.config.commands import Action, Command
from ipmp.errors import ConfigError, ParseError, Position, UnsupportedError
from ipmp.host.hostfiles import (
    HostnameFile,
    find_hostname_files,
    hostname_lines,
    parse_hostname_text,
    read_hostname_file,
    root_path,
)
from ipmp.host.lookups import (
    FileWarning,
    environment_warnings,
    parse_defaultrouter,
    parse_hosts,
    parse_netmasks,
    read_environment,
    scan_hosts,
    scan_netmasks,
)
from ipmp.model import Config, Environment, Family, Interface

SRC = "hostname.hme0"


def cmds(data: str, family: Family = Family.INET) -> tuple[Command, ...]:
    return parse_hostname_text(data, "hme0", family, SRC)


def words(command: Command) -> list[tuple[str, str | None]]:
    return [(a.keyword, a.argument) for a in command.actions]


def P(line: int, col: int) -> Position:
    return Position(SRC, line, col)


IMPLICIT = [("netmask", "+"), ("broadcast", "+"), ("up", None)]


# --------------------------------------------------------------------------
# Discovery (spec §6.1)
# --------------------------------------------------------------------------


def make_etc(root: Path, names: list[str]) -> Path:
    etc = root / "etc"
    etc.mkdir(parents=True)
    for name in names:
        (etc / name).write_text("")
    return etc


def test_find_hostname_files_rules(tmp_path: Path) -> None:
    etc = make_etc(
        tmp_path,
        [
            "hostname.qfe0",
            "hostname.hme0",
            "hostname.hme0:1",  # logical: valid
            "hostname.hme0.bak",  # does not end in a digit
            "hostname.hme0.1",  # extra dot after the interface
            "hostname.hme10",
            "hostname.e1000g0~",  # editor backup
            "hostname.lo",  # no digit
            "hostname.",  # nothing
            "hostname.xx0",  # ignored by the S10 script
            "hostname6.hme0",
            "hostname6.xx0",  # the IPv6 list has no xx0 rule
            "hostname6.hme0.old1",
            "hostnamex.hme0",
            "hosts",
        ],
    )
    (etc / "hostname.dir0").mkdir()
    found = find_hostname_files(tmp_path)
    assert found == [
        HostnameFile("hme0", Family.INET, etc / "hostname.hme0"),
        HostnameFile("hme0:1", Family.INET, etc / "hostname.hme0:1"),
        HostnameFile("hme10", Family.INET, etc / "hostname.hme10"),
        HostnameFile("qfe0", Family.INET, etc / "hostname.qfe0"),
        HostnameFile("hme0", Family.INET6, etc / "hostname6.hme0"),
        HostnameFile("xx0", Family.INET6, etc / "hostname6.xx0"),
    ]
    # plain tuples, as callers unpack them
    ifname, family, path = found[0]
    assert (ifname, family, path.name) == ("hme0", Family.INET, "hostname.hme0")


def test_find_hostname_files_without_etc(tmp_path: Path) -> None:
    assert find_hostname_files(tmp_path) == []
    assert find_hostname_files(tmp_path / "missing") == []


# --------------------------------------------------------------------------
# §6.3: one test per edge case
# --------------------------------------------------------------------------


def test_single_line_file_gets_implicit_words() -> None:
    (command,) = cmds("myhost\n")
    assert command == Command(
        "hme0",
        Family.INET,
        (
            Action("address", "myhost", P(1, 1), P(1, 1)),
            Action("netmask", "+", P(1, 7), P(1, 7), implicit=True),
            Action("broadcast", "+", P(1, 7), P(1, 7), implicit=True),
            Action("up", None, P(1, 7), implicit=True),
        ),
        P(1, 1),
    )


def test_blank_lines_before_the_command_are_ignored() -> None:
    (command,) = cmds("\n   \n\t 192.0.2.5  \n")
    assert words(command) == [("address", "192.0.2.5"), *IMPLICIT]
    assert command.position == P(3, 3)
    # the implicit words point at the end of that line (after the last word)
    assert command.actions[1].position == P(3, 12)


def test_trailing_blank_line_makes_a_multi_line_file() -> None:
    (command,) = cmds("myhost\n\n")
    assert words(command) == [("address", "myhost")]
    (command,) = cmds("myhost up\n \t \n")
    assert words(command) == [("address", "myhost"), ("up", None)]
    assert not any(a.implicit for a in command.actions)


def test_multi_line_file_runs_each_line_as_given() -> None:
    data = "192.0.2.5 netmask + broadcast + group prod up\n\naddif 192.0.2.6 deprecated -failover up\n"
    first, second = cmds(data)
    assert words(first) == [
        ("address", "192.0.2.5"),
        ("netmask", "+"),
        ("broadcast", "+"),
        ("group", "prod"),
        ("up", None),
    ]
    assert words(second) == [("addif", "192.0.2.6"), ("deprecated", None), ("-failover", None), ("up", None)]
    assert second.position == P(3, 1)
    assert not any(a.implicit for c in (first, second) for a in c.actions)


def test_continuation_lines_keep_physical_positions() -> None:
    data = "192.0.2.5 netmask + \\\n\tgroup prod \\\n  up\n"
    (command,) = cmds(data)
    assert command.actions == (
        Action("address", "192.0.2.5", P(1, 1), P(1, 1)),
        Action("netmask", "+", P(1, 11), P(1, 19)),
        Action("group", "prod", P(2, 2), P(2, 8)),
        Action("up", None, P(3, 3)),
        Action("netmask", "+", P(3, 5), P(3, 5), implicit=True),
        Action("broadcast", "+", P(3, 5), P(3, 5), implicit=True),
        Action("up", None, P(3, 5), implicit=True),
    )


def test_continuation_joins_without_a_blank() -> None:
    (command,) = cmds("192.0.2.\\\n5 up\n")
    assert command.actions[0] == Action("address", "192.0.2.5", P(1, 1), P(1, 1))
    assert command.actions[1] == Action("up", None, P(2, 3))


def test_error_on_a_continued_line_points_at_that_line() -> None:
    with pytest.raises(ParseError) as info:
        cmds("192.0.2.5 up \\\n   mtu nine\n")
    assert info.value.position == P(2, 8)
    assert str(info.value) == f"{SRC}:2:8: ifconfig: mtu: nine: not a decimal number"


def test_group_double_quotes_are_literal() -> None:
    (command,) = cmds('myhost group "" up\n')
    assert words(command)[:3] == [("address", "myhost"), ("group", '""'), ("up", None)]


def test_backslash_escapes_are_removed() -> None:
    (command,) = cmds("my\\host gr\\oup pr\\\\od\n")
    assert words(command)[:2] == [("address", "myhost"), ("group", "pr\\od")]
    # the escaped character is located at its backslash
    assert command.actions[0].position == P(1, 1)


def test_escaped_blank_still_splits_words() -> None:
    # read keeps "a b"; the unquoted $ifcmds is then split on the blank.
    (command,) = cmds("192.0.2.5\\ up\n")
    assert words(command) == [("address", "192.0.2.5"), ("up", None), *IMPLICIT]


def test_escaped_blank_alone_is_a_line() -> None:
    # read returns " " (escaped blanks are not stripped), so the line counts:
    # "myhost" is run as given, then ifconfig with no words (status).
    first, second = cmds("myhost\n\\ \n")
    assert words(first) == [("address", "myhost")]
    assert second.actions == ()


def test_empty_file_gives_no_commands() -> None:
    assert cmds("") == ()
    assert cmds("\n \n\t\n") == ()


def test_last_line_without_newline_is_used() -> None:
    assert cmds("myhost") == cmds("myhost\n")
    (command,) = cmds("myhost up \\")
    assert words(command) == [("address", "myhost"), ("up", None), *IMPLICIT]


def test_comment_lines_are_ignored_and_do_not_count() -> None:
    data = "# primary interface\n  # indented comment\nmyhost group prod\n# trailing comment\n"
    (command,) = cmds(data)
    assert words(command) == [("address", "myhost"), ("group", "prod"), *IMPLICIT]
    assert command.position == P(3, 1)


def test_comments_between_lines_of_a_multi_line_file() -> None:
    first, second = cmds("a up\n# test address\naddif b -failover up\n")
    assert words(first) == [("address", "a"), ("up", None)]
    assert second.position == P(3, 1)


def test_comment_line_does_not_continue() -> None:
    (command,) = cmds("# old: 10.0.0.1 \\\nmyhost\n")
    assert words(command) == [("address", "myhost"), *IMPLICIT]


def test_hash_elsewhere_is_a_word() -> None:
    (command,) = cmds("\\#host up\n")
    assert command.actions[0] == Action("address", "#host", P(1, 1), P(1, 1))
    (command,) = cmds("myhost #note\n")
    assert command.actions[1] == Action("address", "#note", P(1, 8), P(1, 8))


def test_ipv6_file_runs_every_nonempty_line_without_implicit_words() -> None:
    first, second = cmds("-failover group prod up\n\naddif 2001:db8::5/64 up\n", Family.INET6)
    assert first.family is Family.INET6
    assert words(first) == [("-failover", None), ("group", "prod"), ("up", None)]
    assert words(second) == [("addif", "2001:db8::5/64"), ("up", None)]
    (single,) = cmds("-failover group prod\n", Family.INET6)
    assert not any(a.implicit for a in single.actions)
    assert cmds("", Family.INET6) == ()


def test_ipv6_file_rejects_inet_words() -> None:
    with pytest.raises(ParseError) as info:
        cmds("up\nnetmask +\n", Family.INET6)
    assert info.value.message == "ifconfig: Operation netmask not supported for inet6"
    assert info.value.position == P(2, 1)


def test_implicit_words_are_parsed_with_the_line() -> None:
    # Exactly what the script does: the words are appended to the text, so a
    # dangling "group" takes "netmask" as its name.
    (command,) = cmds("myhost group\n")
    assert words(command)[:2] == [("address", "myhost"), ("group", "netmask")]
    assert command.actions[1].implicit is False
    assert command.actions[1].argument_position == P(1, 13)


def test_unsupported_word_in_file() -> None:
    with pytest.raises(UnsupportedError) as info:
        cmds("myhost -xmit\n")
    assert info.value.position == P(1, 8)
    assert "-xmit" in info.value.message


def test_hostname_lines_map_every_character() -> None:
    (line,) = hostname_lines("a \\\n b\n", Family.INET)
    assert line.text == "a  b netmask + broadcast + up"
    assert line.line_map[:4] == ((1, 1), (1, 2), (2, 1), (2, 2))
    assert line.implicit_from == 5
    assert len(line.line_map) == len(line.text)
    assert line.line == 1


def test_read_hostname_file(tmp_path: Path) -> None:
    path = tmp_path / "hostname.qfe0"
    path.write_bytes(b"192.0.2.7 netmask + broadcast + deprecated -failover group prod standby up\n")
    (command,) = read_hostname_file(path, "qfe0", Family.INET)
    assert command.ifname == "qfe0"
    assert command.position == Position(str(path), 1, 1)
    assert ("standby", None) in words(command)
    path.write_bytes(b"192.0.2.7 mtu x\n")
    with pytest.raises(ParseError) as info:
        read_hostname_file(path, "qfe0", Family.INET)
    assert str(info.value).startswith(f"{path}:1:15: ")
    with pytest.raises(OSError):
        read_hostname_file(tmp_path / "missing", "qfe0", Family.INET)


# --------------------------------------------------------------------------
# hosts, netmasks, defaultrouter
# --------------------------------------------------------------------------


def test_parse_hosts() -> None:
    data = "# comment\n127.0.0.1\tlocalhost loghost\n\n192.0.2.5 myhost myhost-hme0 # data\n::1 localhost\n"
    assert parse_hosts(data, "hosts") == (
        ("localhost", IPv4Address("127.0.0.1")),
        ("loghost", IPv4Address("127.0.0.1")),
        ("myhost", IPv4Address("192.0.2.5")),
        ("myhost-hme0", IPv4Address("192.0.2.5")),
        ("localhost", IPv6Address("::1")),
        # glibc: an IPv4 lookup reads the ::1 line as 127.0.0.1
        ("localhost", IPv4Address("127.0.0.1")),
    )


# --------------------------------------------------------------------------
# hosts as glibc's nss_files reads it (files-parse.c, files-hosts.c)
# --------------------------------------------------------------------------


def hosts_env(data: str) -> Environment:
    return Environment(hosts=parse_hosts(data, "hosts"))


@pytest.mark.parametrize(
    ("line", "word", "col", "why"),
    [
        ("192.0.2.5\n", "192.0.2.5", 1, "no host name"),  # the stray line of the report
        ("  192.0.2.5   # myhost\n", "192.0.2.5", 3, "no host name"),  # the name is a comment
        ("192.0.2.5#myhost\n", "192.0.2.5", 1, "no host name"),  # '#' cuts inside a word too
        ("192.0.2.256 myhost\n", "192.0.2.256", 1, "not an IP address"),
        ("192.0.2 myhost\n", "192.0.2", 1, "not an IP address"),  # inet_pton: four parts only
        ("192.0.02.5 myhost\n", "192.0.02.5", 1, "not an IP address"),  # ... and no leading zeros
        ("0xc0000205 myhost\n", "0xc0000205", 1, "not an IP address"),
        ("myhost 192.0.2.5\n", "myhost", 1, "not an IP address"),  # fields swapped
        ("fe80::1%qfe0 myhost\n", "fe80::1%qfe0", 1, "not an IP address"),  # inet_pton takes no scope
        ("2001:db8::1::2 myhost\n", "2001:db8::1::2", 1, "not an IP address"),
    ],
)
def test_a_bad_hosts_line_is_skipped_with_a_warning(line: str, word: str, col: int, why: str) -> None:
    data = "192.0.2.1 router\n" + line + "192.0.2.9 myhost\n"
    entries, warnings = scan_hosts(data, "etc/hosts")
    # The other lines still count, before and after the bad one.
    assert entries == (("router", IPv4Address("192.0.2.1")), ("myhost", IPv4Address("192.0.2.9")))
    assert warnings == (FileWarning(Position("etc/hosts", 2, col), f"hosts: {word}: {why}; line ignored"),)
    assert str(warnings[0]) == f"etc/hosts:2:{col}: warning: hosts: {word}: {why}; line ignored"


def test_hosts_fields_are_split_on_every_c_blank() -> None:
    # isspace in the C locale: space, tab, CR, VT, FF (a DOS line end is a blank).
    entries, warnings = scan_hosts("192.0.2.5\tmyhost\va1\fa2\r\n\t 192.0.2.6  \t b1 \r\n", "hosts")
    assert warnings == ()
    assert [n for n, _ in entries] == ["myhost", "a1", "a2", "b1"]


def test_hosts_comments_start_anywhere() -> None:
    data = "#192.0.2.1 gone\n   # indented comment\n192.0.2.5 myhost#not-an-alias alias2\n"
    assert scan_hosts(data, "hosts") == ((("myhost", IPv4Address("192.0.2.5")),), ())


def test_hosts_a_nul_byte_ends_the_line_for_c() -> None:
    entries, warnings = scan_hosts("192.0.2.5 myhost\0 ghost\n192.0.2.6\0 name\n", "hosts")
    assert entries == (("myhost", IPv4Address("192.0.2.5")),)
    assert [w.message for w in warnings] == ["hosts: 192.0.2.6: no host name; line ignored"]


def test_hosts_first_match_wins_per_family() -> None:
    env = hosts_env("2001:db8::5 myhost\n192.0.2.5 other myhost\n192.0.2.6 myhost\n2001:db8::6 myhost\n")
    assert env.resolve("myhost", Family.INET) == IPv4Address("192.0.2.5")
    assert env.resolve("myhost", Family.INET6) == IPv6Address("2001:db8::5")
    assert env.resolve("other", Family.INET6) is None


def test_hosts_names_and_aliases_ignore_ascii_case_only() -> None:
    env = hosts_env("192.0.2.5 MyHost myhost-QFE0\n192.0.2.6 h\u00c9te\n")
    for name in ("myhost", "MYHOST", "MyHost", "MYHOST-qfe0"):
        assert env.resolve(name, Family.INET) is not None, name
    assert env.resolve("myhost-qfe0", Family.INET) == IPv4Address("192.0.2.5")
    # strcasecmp in the C locale folds ASCII letters, not others.
    assert env.resolve("h\u00c9te", Family.INET) == IPv4Address("192.0.2.6")
    assert env.resolve("HÉTE".replace("É", "\u00c9"), Family.INET) == IPv4Address("192.0.2.6")
    assert env.resolve("h\u00e9te", Family.INET) is None


def test_hosts_ipv4_lookup_reads_mapped_and_loopback_ipv6_lines() -> None:
    # files-hosts.c: for AF_INET, a v4-mapped address gives the IPv4 inside,
    # ::1 gives 127.0.0.1; any other IPv6 line is not an IPv4 answer.
    env = hosts_env("::ffff:192.0.2.7 mapped\n::1 lo6\n2001:db8::8 six\n")
    assert env.resolve("mapped", Family.INET) == IPv4Address("192.0.2.7")
    assert env.resolve("mapped", Family.INET6) == IPv6Address("::ffff:192.0.2.7")
    assert env.resolve("lo6", Family.INET) == IPv4Address("127.0.0.1")
    assert env.resolve("six", Family.INET) is None
    # ... and an IPv6 lookup never takes an IPv4 line.
    assert hosts_env("192.0.2.9 four\n").resolve("four", Family.INET6) is None


def test_parse_netmasks() -> None:
    data = "# network mask\n192.0.2.0\t255.255.255.0\n10.0.0.0 0xff000000 # class A\n172.16.0.0 0XFFFF0000\n"
    assert parse_netmasks(data, "netmasks") == (
        (IPv4Address("192.0.2.0"), IPv4Address("255.255.255.0")),
        (IPv4Address("10.0.0.0"), IPv4Address("255.0.0.0")),
        (IPv4Address("172.16.0.0"), IPv4Address("255.255.0.0")),
    )


@pytest.mark.parametrize(
    ("data", "message", "where"),
    [
        ("192.0.2 255.255.255.0\n", "netmasks: 192.0.2: not an IPv4 network number; line ignored", (1, 1)),
        ("192.0.2.0 0xZZ\n", "netmasks: 0xZZ: not a netmask; line ignored", (1, 11)),
        ("\n192.0.2.0\n", "netmasks: expected 'network-number netmask', got 1 word(s); line ignored", (2, 1)),
        (
            "192.0.2.0 255.255.255.0 extra\n",
            "netmasks: expected 'network-number netmask', got 3 word(s); line ignored",
            (1, 25),
        ),
    ],
)
def test_a_bad_netmasks_line_is_skipped_with_a_warning(
    data: str, message: str, where: tuple[int, int]
) -> None:
    # Solaris' files backend never matches such a line; the others still count.
    entries, warnings = scan_netmasks(data + "198.51.100.0 255.255.255.128\n", "netmasks")
    assert entries == ((IPv4Address("198.51.100.0"), IPv4Address("255.255.255.128")),)
    assert warnings == (FileWarning(Position("netmasks", *where), message),)


def test_a_non_contiguous_netmask_is_kept_and_fails_only_its_users(tmp_path: Path) -> None:
    entries, warnings = scan_netmasks("192.0.2.0 255.0.255.0\n", "netmasks")
    assert entries == ((IPv4Address("192.0.2.0"), IPv4Address("255.0.255.0")),)
    assert [str(w) for w in warnings] == [
        "netmasks:1:11: warning: netmasks: 255.0.255.0: netmask is not contiguous; "
        "an interface that uses it fails to configure"]
    env = Environment(netmasks=entries)
    (tmp_path / "hostname.hme0").write_text("192.0.2.5\n")
    (tmp_path / "hostname.qfe0").write_text("198.51.100.5\n")
    with pytest.raises(ConfigError, match="non-contiguous netmask"):
        boot_config(Config((Interface("hme0", index=2),)), "hme0",
                    [(Family.INET, tmp_path / "hostname.hme0")], env)
    other = boot_config(Config((Interface("qfe0", index=3),)), "qfe0",
                        [(Family.INET, tmp_path / "hostname.qfe0")], env).get("qfe0")
    assert other is not None and str(other.logicals[0].address) == "198.51.100.5/24"


def test_parse_defaultrouter() -> None:
    hosts = (("gw", IPv4Address("192.0.2.1")), ("gw6", IPv6Address("2001:db8::1")))
    data = "192.0.2.254\n# backup\n\n  gw rubbish ignored\ngw6\n2001:db8::fe # note\n"
    assert parse_defaultrouter(data, "defaultrouter", hosts) == (
        ip_address("192.0.2.254"),
        ip_address("192.0.2.1"),
        ip_address("2001:db8::1"),
        ip_address("2001:db8::fe"),
    )


def test_defaultrouter_unknown_name() -> None:
    with pytest.raises(ParseError) as info:
        parse_defaultrouter("192.0.2.1\n   nosuchgw\n", "defaultrouter")
    assert info.value.position == Position("defaultrouter", 2, 4)
    assert "nosuchgw" in info.value.message


def test_read_environment(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "inet").mkdir(parents=True)
    (etc / "inet" / "hosts").write_text("192.0.2.5 myhost\n192.0.2.1 gw\n")
    (etc / "hosts").write_text("198.51.100.5 myhost\n")  # not read: inet/hosts wins
    (etc / "netmasks").write_text("192.0.2.0 255.255.255.128\n")
    (etc / "defaultrouter").write_text("gw\n")
    env = read_environment(tmp_path)
    assert env.resolve("myhost", Family.INET) == IPv4Address("192.0.2.5")
    assert env.netmasks == ((IPv4Address("192.0.2.0"), IPv4Address("255.255.255.128")),)
    assert env.netmask_for(IPv4Address("192.0.2.5")) == IPv4Address("255.255.255.128")
    assert env.defaultrouters == (IPv4Address("192.0.2.1"),)


def test_read_environment_falls_back_to_etc_files(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("198.51.100.5 myhost\n")
    assert read_environment(tmp_path).resolve("myhost", Family.INET) == IPv4Address("198.51.100.5")


def test_read_environment_with_no_files(tmp_path: Path) -> None:
    assert read_environment(tmp_path) == Environment()


def test_environment_warnings_name_file_line_and_column(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "inet"
    etc.mkdir(parents=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n192.0.2.77\n192.0.2.5 myhost\n  not-an-address gw\n")
    (etc / "netmasks").write_text("# masks\n192.0.2.0 nonsense\n")
    (tmp_path / "etc" / "defaultrouter").write_text("myhost\n")
    assert [str(w) for w in environment_warnings(tmp_path)] == [
        f"{etc / 'hosts'}:2:1: warning: hosts: 192.0.2.77: no host name; line ignored",
        f"{etc / 'hosts'}:4:3: warning: hosts: not-an-address: not an IP address; line ignored",
        f"{etc / 'netmasks'}:2:11: warning: netmasks: nonsense: not a netmask; line ignored",
    ]
    # The good lines are all there: the names resolve, the router too.
    env = read_environment(tmp_path)
    assert env.resolve("myhost", Family.INET) == IPv4Address("192.0.2.5")
    assert env.netmasks == ()
    assert env.defaultrouters == (IPv4Address("192.0.2.5"),)


def test_a_stray_hosts_line_leaves_every_interface_configurable(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("192.0.2.99\n192.0.2.100 myhost\n192.0.2.101 MyHost-2\n")
    (etc / "hostname.qfe0").write_text("myhost netmask + broadcast + group prod up\n")
    (etc / "hostname.qfe1").write_text("myhost-2 netmask + broadcast + group prod up\n")
    env = read_environment(tmp_path)
    config = Config((Interface("qfe0", index=2), Interface("qfe1", index=3)))
    for itf in ("qfe0", "qfe1"):
        config = boot_config(config, itf, [(Family.INET, etc / f"hostname.{itf}")], env)
    assert [str(i.logicals[0].address) for i in config.interfaces] == ["192.0.2.100/24", "192.0.2.101/24"]


def test_defaultrouter_is_still_an_error(tmp_path: Path) -> None:
    """Only hosts and netmasks are read by a C library that skips bad lines."""
    etc = tmp_path / "etc" / "inet"
    etc.mkdir(parents=True)
    (tmp_path / "etc" / "defaultrouter").write_text("# routers\nnosuchgw\n")
    with pytest.raises(ParseError) as info:
        read_environment(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'etc' / 'defaultrouter'}:2:1: ")


# --------------------------------------------------------------------------
# The root
# --------------------------------------------------------------------------


def test_root_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert root_path("/srv/lab", {"IPMP_ROOT": "/elsewhere"}) == Path("/srv/lab")
    assert root_path(None, {"IPMP_ROOT": "/elsewhere"}) == Path("/elsewhere")
    assert root_path("", {"IPMP_ROOT": "/elsewhere"}) == Path("/elsewhere")
    assert root_path(None, {}) == Path("/")
    assert root_path(None, {"IPMP_ROOT": ""}) == Path("/")
    monkeypatch.setenv("IPMP_ROOT", "/from/env")
    assert root_path(None) == Path("/from/env")
    monkeypatch.delenv("IPMP_ROOT")
    assert root_path(None) == Path("/")


# --------------------------------------------------------------------------
# Property: arbitrary text only ever raises ParseError
# --------------------------------------------------------------------------

_PIECES = ["\\", "\n", " ", "\t", "#", '""', "\\\n"]
_PIECES += ["up", "group", "netmask", "+", "ether", "router", "192.0.2.1"]
_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)), max_size=16).map("".join)


@settings(max_examples=200, deadline=None)
@given(_text, st.sampled_from([Family.INET, Family.INET6]))
def test_hostname_text_never_raises_anything_but_parse_error(data: str, family: Family) -> None:
    try:
        commands = parse_hostname_text(data, "hme0", family, SRC)
    except ParseError as err:
        assert err.position is not None and err.position.source == SRC
        return
    for command in commands:
        for action in command.actions:
            assert action.position.line >= 1 and action.position.col >= 1


@settings(max_examples=200, deadline=None)
@given(_text)
def test_environment_parsers_never_raise_anything_but_parse_error(data: str) -> None:
    for parser in (parse_hosts, parse_netmasks, parse_defaultrouter):
        try:
            parser(data, "f")
        except ParseError as err:
            assert err.position is not None and err.position.source == "f"
