"""The ifconfig grammar: every keyword accepted and rejected, argv forms, positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipmp
from ipmp.config import grammar, syntax
from ipmp.config.commands import Action, Command
from ipmp.config.keywords import ALL_LETTERS, KEYWORDS, Arg, Keyword
from ipmp.config.parse import USAGE, parse_argv, parse_words
from ipmp.errors import ParseError, Position, UnsupportedError
from ipmp.model import Family

#: A syntactically valid argument for each kind.
VALID_ARG: dict[Arg, str] = {
    Arg.ADDRESS: "192.0.2.10",
    Arg.MASK: "255.255.255.0",
    Arg.BROADCAST: "192.0.2.255",
    Arg.NAME: "prod",
    Arg.NUMBER: "1500",
    Arg.MAC: "0:14:4f:67:cb:d3",
}

SUPPORTED = [k for k in KEYWORDS if k.supported]
UNSUPPORTED = [k for k in KEYWORDS if not k.supported]
NEXTARG = [k for k in KEYWORDS if k.arg not in (Arg.NONE, Arg.MAC)]
FAMILY_BOUND = [k for k in KEYWORDS if k.family is not None]


def ids(kw: Keyword) -> str:
    return kw.word


def family_of(kw: Keyword) -> Family:
    return Family.INET6 if kw.family == 6 else Family.INET


def other_family(kw: Keyword) -> Family:
    return Family.INET if kw.family == 6 else Family.INET6


def arg_of(kw: Keyword) -> str | None:
    return None if kw.arg is Arg.NONE else VALID_ARG[kw.arg]


def A(n: int) -> Position:
    """The position of argv element n (1-based, after the program name)."""
    return Position("", 0, n)


def raises(argv: list[str]) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_argv(argv)
    return info.value


def raises_words(text: str, family: Family = Family.INET) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_words(text, ifname="hme0", family=family, source="hostname.hme0")
    return info.value


# --------------------------------------------------------------------------
# Every keyword accepted
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kw", SUPPORTED, ids=ids)
def test_supported_keyword_accepted_on_argv(kw: Keyword) -> None:
    arg = arg_of(kw)
    argv = ["hme0", family_of(kw).word, kw.word] + ([arg] if arg is not None else [])
    command = parse_argv(argv)
    assert command == Command(
        ifname="hme0",
        family=family_of(kw),
        actions=(Action(kw.word, arg, A(3), A(4) if arg is not None else None),),
        position=A(1),
    )


@pytest.mark.parametrize("kw", SUPPORTED, ids=ids)
def test_supported_keyword_accepted_in_file_line(kw: Keyword) -> None:
    arg = arg_of(kw)
    text = f"  {kw.word} {arg}" if arg is not None else f"  {kw.word}"
    command = parse_words(text, ifname="hme0", family=family_of(kw), source="f")
    argpos = Position("f", 1, 4 + len(kw.word)) if arg is not None else None
    assert command.actions == (Action(kw.word, arg, Position("f", 1, 3), argpos),)
    assert command.family is family_of(kw)
    assert command.ifname == "hme0"


@pytest.mark.parametrize("kw", KEYWORDS, ids=ids)
def test_every_keyword_can_be_an_argument(kw: Keyword) -> None:
    # Solaris takes the next word whatever it is: "group up" names a group "up",
    # and an unsupported word as an argument is just text.
    command = parse_argv(["hme0", "group", kw.word])
    assert command.actions == (Action("group", kw.word, A(2), A(3)),)


# --------------------------------------------------------------------------
# Every keyword rejected
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kw", UNSUPPORTED, ids=ids)
def test_unsupported_keyword_names_the_word(kw: Keyword) -> None:
    arg = arg_of(kw)
    argv = ["hme0", family_of(kw).word, kw.word] + ([arg] if arg is not None else [])
    with pytest.raises(UnsupportedError) as info:
        parse_argv(argv)
    assert info.value.message == f"ifconfig: {kw.word}: not supported on Linux ({kw.why})"
    assert info.value.position == A(3)


@pytest.mark.parametrize("kw", UNSUPPORTED, ids=ids)
def test_unsupported_keyword_in_file_has_file_position(kw: Keyword) -> None:
    arg = arg_of(kw)
    text = f"192.0.2.1 {kw.word}" + (f" {arg}" if arg is not None else "")
    with pytest.raises(UnsupportedError) as info:
        parse_words(text, ifname="hme0", family=family_of(kw), source="hostname.hme0")
    assert info.value.position == Position("hostname.hme0", 1, 11)
    assert str(info.value).startswith(f"hostname.hme0:1:11: ifconfig: {kw.word}: not supported on Linux")


@pytest.mark.parametrize("kw", NEXTARG, ids=ids)
def test_missing_argument(kw: Keyword) -> None:
    err = raises(["hme0", family_of(kw).word, "up", kw.word])
    assert type(err) is ParseError
    assert err.message == f"ifconfig: no argument for {kw.word}"
    assert err.position == A(4)


@pytest.mark.parametrize("kw", NEXTARG, ids=ids)
def test_missing_argument_in_file(kw: Keyword) -> None:
    err = raises_words(f"up {kw.word}", family_of(kw))
    assert err.message == f"ifconfig: no argument for {kw.word}"
    assert err.position == Position("hostname.hme0", 1, 4)


@pytest.mark.parametrize("kw", [k for k in SUPPORTED if k.arg in (Arg.NONE, Arg.MAC)], ids=ids)
def test_keyword_without_argument_leaves_the_next_word_alone(kw: Keyword) -> None:
    command = parse_argv(["hme0", family_of(kw).word, kw.word, "192.0.2.9"])
    assert command.actions == (
        Action(kw.word, None, A(3)),
        Action("address", "192.0.2.9", A(4), A(4)),
    )


@pytest.mark.parametrize("kw", FAMILY_BOUND, ids=ids)
def test_keyword_of_the_other_family(kw: Keyword) -> None:
    wrong = other_family(kw)
    arg = arg_of(kw)
    err = raises(["hme0", wrong.word, kw.word] + ([arg] if arg is not None else []))
    # The family check comes before "unsupported", as Solaris checks it first.
    assert type(err) is ParseError
    assert err.message == f"ifconfig: Operation {kw.word} not supported for {wrong.word}"
    assert err.position == A(3)


@pytest.mark.parametrize("kw", [k for k in FAMILY_BOUND if k.family == 6], ids=ids)
def test_default_family_is_inet(kw: Keyword) -> None:
    arg = arg_of(kw)
    err = raises(["hme0", kw.word] + ([arg] if arg is not None else []))
    assert err.message == f"ifconfig: Operation {kw.word} not supported for inet"


def test_inet_only_word_in_hostname6_file() -> None:
    err = raises_words("-failover netmask +", Family.INET6)
    assert err.message == "ifconfig: Operation netmask not supported for inet6"
    assert err.position == Position("hostname.hme0", 1, 11)


def test_family_check_in_all_form_defaults_to_inet() -> None:
    assert parse_argv(["-au4", "netmask", "+", "broadcast", "+"]).family is None
    err = raises(["-a", "inet6", "broadcast", "+"])
    assert err.message == "ifconfig: Operation broadcast not supported for inet6"


# --------------------------------------------------------------------------
# Argument syntax
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mask", ["+", "0xffffff00", "0XFFFFFF00", "0xff", "255.255.255.0", "0.0.0.0",
                                  "my-mask", "mask.example.com", "net_1"])
def test_good_masks(mask: str) -> None:
    assert parse_argv(["hme0", "netmask", mask]).actions[0].argument == mask


@pytest.mark.parametrize("mask", ["0xZZ", "0x1ffffffff", "0x", "256.0.0.0", "1.2.3", "24", "255.255.255.00",
                                  "-mask", "", "ma$k", "1.2.3.4.5"])
def test_bad_masks(mask: str) -> None:
    err = raises(["hme0", "netmask", mask, "up"])
    assert err.message == f"ifconfig: {mask}: bad address"
    assert err.position == A(3)


@pytest.mark.parametrize("word", ["netmask", "broadcast", "destination", "removeif"])
def test_slash_where_solaris_allows_no_prefix(word: str) -> None:
    err = raises(["hme0", word, "192.0.2.0/24"])
    assert err.message == "ifconfig: 192.0.2.0/24: unexpected '/'"
    assert err.position == A(3)


@pytest.mark.parametrize("word", ["addif", "set"])
def test_prefix_allowed_for_addif_and_set(word: str) -> None:
    command = parse_argv(["hme0", word, "192.0.2.5/24", "up"])
    assert command.actions[0] == Action(word, "192.0.2.5/24", A(2), A(3))


def test_second_bare_address_is_a_destination_without_prefix() -> None:
    command = parse_argv(["ip.tun0", "10.0.0.1/30", "10.0.0.2", "up"])
    assert [a.argument for a in command.actions] == ["10.0.0.1/30", "10.0.0.2", None]
    err = raises(["ip.tun0", "10.0.0.1", "10.0.0.2/30"])
    assert err.message == "ifconfig: 10.0.0.2/30: unexpected '/'"
    assert err.position == A(3)


@pytest.mark.parametrize(
    "argv",
    [
        ["hme0", "set", "192.0.2.1", "192.0.2.2/24"],
        ["hme0", "addif", "192.0.2.1/24", "192.0.2.2/24"],
        ["hme0", "192.0.2.1", "addif", "192.0.2.3", "192.0.2.2/24"],
    ],
)
def test_set_and_addif_count_as_the_source_address(argv: list[str]) -> None:
    err = raises(argv)
    assert err.message == "ifconfig: 192.0.2.2/24: unexpected '/'"
    assert err.position == A(len(argv))


def test_bare_prefix_alone_does_not_set_the_address() -> None:
    # Solaris: "/24" as the first address word only sets the prefix length.
    command = parse_argv(["hme0", "/24", "192.0.2.1/24"])
    assert [a.argument for a in command.actions] == ["/24", "192.0.2.1/24"]


@pytest.mark.parametrize("word", ["mtu", "metric"])
@pytest.mark.parametrize("value", ["abc", "15OO", "-1", "1.5", "", "\u0661\u0665\u0660\u0660"])
def test_bad_numbers(word: str, value: str) -> None:
    err = raises(["hme0", word, value])
    assert err.message == f"ifconfig: {word}: {value}: not a decimal number"
    assert err.position == A(3)


def test_number_zero_is_a_number() -> None:
    assert parse_argv(["hme0", "metric", "0"]).actions == (Action("metric", "0", A(2), A(3)),)


def test_group_takes_any_word() -> None:
    command = parse_argv(["hme0", "group", "my grp", "group", "", "group", '""', "up"])
    assert [(a.keyword, a.argument) for a in command.actions] == [
        ("group", "my grp"),
        ("group", ""),
        ("group", '""'),
        ("up", None),
    ]
    assert command.actions[-1].position == A(8)


# --------------------------------------------------------------------------
# ether and its optional MAC
# --------------------------------------------------------------------------


def test_ether_alone() -> None:
    assert parse_argv(["hme0", "ether"]).actions == (Action("ether", None, A(2)),)


def test_ether_with_mac() -> None:
    command = parse_argv(["hme0", "ether", "8:0:20:A1:b2:c3", "up"])
    assert command.actions == (Action("ether", "8:0:20:A1:b2:c3", A(2), A(3)), Action("up", None, A(4)))


@pytest.mark.parametrize(
    "word", ["up", "192.0.2.1", "fe80::1", "0:1:2:3:4:5:6", "0:1:2:3:4", "000:1:2:3:4:5"]
)
def test_ether_does_not_take_what_is_not_a_mac(word: str) -> None:
    command = parse_argv(["hme0", "ether", word])
    assert command.actions[0] == Action("ether", None, A(2))
    assert command.actions[1].argument == word or command.actions[1].keyword == word


def test_mac_after_ether_as_argument_is_an_address() -> None:
    command = parse_argv(["hme0", "group", "ether", "0:1:2:3:4:5"])
    assert command.actions == (
        Action("group", "ether", A(2), A(3)),
        Action("address", "0:1:2:3:4:5", A(4), A(4)),
    )


# --------------------------------------------------------------------------
# The argv forms (spec §4.1)
# --------------------------------------------------------------------------


def test_no_arguments_is_the_usage() -> None:
    err = raises([])
    assert err.message == USAGE
    assert err.position is None
    assert USAGE.startswith("usage: ifconfig ")
    for kw in SUPPORTED:
        assert f"[{kw.word}" in USAGE
    for kw in UNSUPPORTED:
        assert f"[{kw.word}]" not in USAGE and f"[{kw.word} " not in USAGE


def test_interface_only_is_a_status_command() -> None:
    assert parse_argv(["qfe0:1"]) == Command("qfe0:1", None, (), A(1))
    assert parse_argv(["qfe0", "inet6"]) == Command("qfe0", Family.INET6, (), A(1))


def test_family_word_only_right_after_the_interface() -> None:
    command = parse_argv(["hme0", "up", "inet6"])
    assert command.family is None
    assert command.actions[1] == Action("address", "inet6", A(3), A(3))


def test_first_word_is_always_the_interface() -> None:
    assert parse_argv(["up", "down"]) == Command("up", None, (Action("down", None, A(2)),), A(1))


@pytest.mark.parametrize(
    ("head", "letters"),
    [("-a", "a"), ("-au4", "au4"), ("-adD6", "adD6"), ("-" + "".join(sorted(ALL_LETTERS)), None)],
)
def test_all_forms(head: str, letters: str | None) -> None:
    command = parse_argv([head, "inet", "netmask", "+"])
    assert command.ifname is None
    assert command.all_letters == (letters or head[1:])
    assert command.family is Family.INET
    assert command.actions == (Action("netmask", "+", A(3), A(4)),)


@pytest.mark.parametrize("head", ["-u", "-4", "-", "--", "-uD"])
def test_options_without_a(head: str) -> None:
    err = raises([head, "up"])
    assert err.message == f"ifconfig: {head}: no such interface"
    assert err.position == A(1)


@pytest.mark.parametrize("head", ["-x", "-aq", "-a-", "-failover", "-a:"])
def test_unknown_option_letter_is_usage(head: str) -> None:
    err = raises([head])
    assert err.message == USAGE
    assert err.position == A(1)


def test_interface_name_length() -> None:
    name31 = "e" * 30 + "0"
    assert parse_argv([name31]).ifname == name31
    err = raises([name31 + "1", "up"])
    assert err.message == f"ifconfig: {name31}1: interface name too long"
    assert err.position == A(1)
    # bytes, as Solaris counts them
    err = raises(["é" * 16])
    assert err.message.endswith("interface name too long")
    with pytest.raises(ParseError, match="interface name too long"):
        parse_words("up", ifname=name31 + "1", family=Family.INET, source="f")


def test_each_argv_element_is_one_word() -> None:
    command = parse_argv(["hme0", "up down", "", "up"])
    assert command.actions == (
        Action("address", "up down", A(2), A(2)),
        Action("address", "", A(3), A(3)),
        Action("up", None, A(4)),
    )


def test_nul_in_argv_is_rejected_with_its_position() -> None:
    err = raises(["hme0", "up", "a\x00b"])
    assert err.position == A(3)
    assert "NUL" in err.message


def test_error_positions_are_argv_indexes() -> None:
    assert raises(["hme0", "inet", "up", "mtu", "x", "up"]).position == A(5)
    assert raises(["hme0", "up", "down", "xmit"]).position == A(4)
    assert str(raises(["hme0", "up", "down", "xmit"]).position) == "argument 4"


def test_canonical_ipmp_line() -> None:
    # spec §6.4, active/active with an IPv4 test address on a logical
    command = parse_argv(
        "hme0 myhost netmask + broadcast + group prod up addif myhost-hme0 deprecated -failover "
        "netmask + broadcast + up".split()
    )
    assert [(a.keyword, a.argument) for a in command.actions] == [
        ("address", "myhost"),
        ("netmask", "+"),
        ("broadcast", "+"),
        ("group", "prod"),
        ("up", None),
        ("addif", "myhost-hme0"),
        ("deprecated", None),
        ("-failover", None),
        ("netmask", "+"),
        ("broadcast", "+"),
        ("up", None),
    ]


# --------------------------------------------------------------------------
# File lines
# --------------------------------------------------------------------------


def test_file_line_positions_follow_line_map() -> None:
    text = "a up"
    command = parse_words(text, ifname="hme0", family=Family.INET, source="f",
                          line_map=[(3, 5), (3, 6), (4, 1), (4, 2)])
    assert command.actions == (
        Action("address", "a", Position("f", 3, 5), Position("f", 3, 5)),
        Action("up", None, Position("f", 4, 1)),
    )
    assert command.position == Position("f", 3, 5)


def test_file_words_split_on_blanks_only() -> None:
    command = parse_words('192.0.2.1\tgroup ""  up', ifname="hme0", family=Family.INET)
    assert [(a.keyword, a.argument) for a in command.actions] == [
        ("address", "192.0.2.1"),
        ("group", '""'),
        ("up", None),
    ]


def test_file_line_has_no_family_word() -> None:
    # The script already put "inet" after the interface; a second one is an address.
    command = parse_words("inet6 up", ifname="hme0", family=Family.INET)
    assert command.actions[0] == Action("address", "inet6", Position("", 1, 1), Position("", 1, 1))


def test_implicit_from_marks_appended_words() -> None:
    text = "myhost netmask + broadcast + up"
    command = parse_words(text, ifname="hme0", family=Family.INET, implicit_from=7)
    assert [a.implicit for a in command.actions] == [False, True, True, True]


def test_line_map_must_match_text() -> None:
    with pytest.raises(ValueError, match="line_map"):
        parse_words("up", ifname="hme0", family=Family.INET, line_map=[(1, 1)])


def test_empty_line_is_a_status_command() -> None:
    assert parse_words("", ifname="hme0", family=Family.INET6, source="f") == Command(
        "hme0", Family.INET6, (), Position("f", 1, 1)
    )


# --------------------------------------------------------------------------
# PLY hygiene
# --------------------------------------------------------------------------


class RecordingLog:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, msg: str, *args: Any) -> None:
        pass

    info = debug

    def warning(self, msg: str, *args: Any) -> None:
        self.messages.append("WARNING " + (msg % args))

    def error(self, msg: str, *args: Any) -> None:
        self.messages.append("ERROR " + (msg % args))

    critical = error


def test_grammar_builds_without_warnings_or_conflicts() -> None:
    log = RecordingLog()
    grammar.Grammar(errorlog=log)
    assert log.messages == []


def test_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    built = grammar.Grammar()
    ctx = syntax.Context(argv=True)
    assert built.run("hme0\x00up\x00", ctx, "argv").actions[0].keyword == "up"
    package = Path(ipmp.__file__).parent
    for where in (tmp_path, package):
        for name in ("parsetab.py", "parser.out", "lextab.py"):
            assert not (where / name).exists()


def test_grammar_is_built_once() -> None:
    assert grammar.Grammar.shared() is grammar.Grammar.shared()


# --------------------------------------------------------------------------
# Property: nothing but ParseError escapes
# --------------------------------------------------------------------------

_WORDS = [k.word for k in KEYWORDS]
_WORDS += ["inet", "inet6", "-a", "-au4", "+", "0:1:2:3:4:5", "1.2.3.4/24", "", '""']
_word = st.one_of(st.sampled_from(_WORDS), st.text(max_size=12))


@settings(max_examples=200, deadline=None)
@given(st.lists(_word, max_size=8))
def test_argv_never_raises_anything_but_parse_error(argv: list[str]) -> None:
    try:
        command = parse_argv(argv)
    except ParseError:
        return
    assert isinstance(command, Command)
    assert all(a.position.col >= 2 for a in command.actions)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_word, st.sampled_from([" ", "\t", "\n"])), max_size=12).map(" ".join))
def test_words_never_raise_anything_but_parse_error(text: str) -> None:
    try:
        command = parse_words(text, ifname="hme0", family=Family.INET, source="f")
    except ParseError as err:
        assert err.position is None or err.position.source == "f"
        return
    assert command.ifname == "hme0"
