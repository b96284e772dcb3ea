"""The ifconfig grammar: Solaris ``ifconfig`` words to ``commands.Command`` values.

Two inputs share one PLY lexer and one LALR grammar:

* the command line (``parse_argv``): ``IF[:N] [inet|inet6] words...`` or
  ``-<letters> [inet|inet6] words...`` (Solaris ifconfig(1M), spec §4.1);
* one line of a hostname file (``parse_words``), which the boot script runs
  as ``ifconfig <if> inet|inet6 <line>`` (spec §6.3), so it has no head.

The keyword table (``keywords.py``) drives both: every keyword is a reserved
word whose token type is its argument kind (``KW_NONE``, ``KW_ADDRESS``, ...),
so a new keyword needs no grammar change.  Words that are not keywords are
addresses (``Action("address", word)``), as in Solaris where the two
nameless entries at the end of the command table catch them.

Semantics are deferred to the evaluator: host names stay text, and only the
syntax Solaris itself checks before any ioctl is checked here (missing
argument, family of a keyword, ``/`` where no prefix is allowed), plus the
syntax of masks and numbers.  Every error carries the position of the word:
the 1-based argv index for the command line, ``file:line:col`` for files.

Pure module: no I/O, no clock, no logging.  PLY tables are built once per
process in memory (``write_tables=False``, ``debug=False``, silent error
log), so nothing is ever written next to the package.  Grammar rules and
token patterns are attached with decorators instead of docstrings, so the
module also works under ``python -OO``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, ClassVar, TypeVar

from ply import lex, yacc

from ipmp.commands import Action, Command
from ipmp.errors import ParseError, Position, UnsupportedError
from ipmp.keywords import ALL_LETTERS, BY_WORD, KEYWORDS, Arg, Keyword
from ipmp.model import LIFNAMSIZ, Family

__all__ = ["USAGE", "parse_argv", "parse_words"]

# --------------------------------------------------------------------------
# Usage text
# --------------------------------------------------------------------------

_PLACEHOLDER: dict[Arg, str] = {
    Arg.NONE: "",
    Arg.ADDRESS: " <address>",
    Arg.MASK: " <mask>",
    Arg.BROADCAST: " <address>",
    Arg.NAME: " <name>",
    Arg.NUMBER: " <n>",
    Arg.MAC: " [<mac>]",
}


def _usage() -> str:
    # Solaris prints its usage on a bare "ifconfig" (spec §4.1).  Ours is
    # generated from the keyword table so it can never list a word the
    # parser does not know.
    words = " ".join(f"[{kw.word}{_PLACEHOLDER[kw.arg]}]" for kw in KEYWORDS if kw.supported)
    body = textwrap.fill(
        "[<address>[/<prefix>]] [<destination>] " + words,
        width=78,
        initial_indent="\t",
        subsequent_indent="\t",
        break_on_hyphens=False,
    )
    # The option letters in the order Solaris documents them.
    letters = "".join(c for c in "udD46ZvX" if c in ALL_LETTERS)
    letters += "".join(sorted(ALL_LETTERS - set(letters) - {"a"}))
    return f"usage: ifconfig <interface>[:<unit>] | -a[{letters}] [inet | inet6]\n{body}"


#: The text of the usage error (no arguments, or a bad option letter).
USAGE = _usage()

# --------------------------------------------------------------------------
# Word syntax
# --------------------------------------------------------------------------

#: Solaris LIFNAMSIZ includes the terminating NUL: at most 31 bytes of name.
_MAX_IFNAME = LIFNAMSIZ - 1

#: The family words; only recognised right after the interface (spec §4.1).
_FAMILY_WORDS: dict[str, Family] = {"inet": Family.INET, "inet6": Family.INET6}

#: Keywords whose address argument may carry ``/<prefix>``.  Solaris passes a
#: prefix pointer to the address parser only for ``addif`` and ``set`` (and
#: the first bare address, handled separately); ``destination``,
#: ``removeif``, ``broadcast`` and ``netmask`` get none, and a ``/`` there
#: is "unexpected" (ifconfig.c ``in_getaddr``).
_PREFIX_ALLOWED = frozenset({"addif", "set"})

#: An Ethernet address as Solaris prints and parses it: six groups of one or
#: two hex digits (``8:0:20:a1:b2:c3``).
_MAC_RE = re.compile(r"[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5}")
_HEX_MASK_RE = re.compile(r"0[xX][0-9A-Fa-f]{1,8}")
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_NUMBER_RE = re.compile(r"[0-9]+")


def _is_mask(text: str) -> bool:
    """``netmask`` takes 0x-hex, a dotted quad, ``+``, or a hosts/networks name."""
    if text == "+" or _HEX_MASK_RE.fullmatch(text):
        return True
    if text[:2] in ("0x", "0X"):
        return False  # looks like hex but is not
    if all(c.isascii() and (c.isdigit() or c == ".") for c in text):
        # Digits and dots only: it must be a real dotted quad.  We do not
        # accept inet_addr()'s short forms ("24" = 0.0.0.24), which are a
        # classic way to get a wrong mask silently.
        try:
            IPv4Address(text)
        except ValueError:
            return False
        return True
    return _NAME_RE.fullmatch(text) is not None


def _ifname_too_long(name: str) -> bool:
    # Solaris counts bytes; surrogatepass keeps odd argv strings countable.
    return len(name.encode("utf-8", "surrogatepass")) > _MAX_IFNAME


# --------------------------------------------------------------------------
# Tokens and per-parse context
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Word:
    """A lexed word: its text, where it came from, and its offset in the input."""

    text: str
    position: Position
    offset: int


def _kw_token(arg: Arg) -> str:
    return f"KW_{arg.name}"


#: Reserved words: the PLY idiom ``t.type = reserved.get(word, "WORD")``.
_RESERVED: dict[str, str] = {word: _kw_token(kw.arg) for word, kw in BY_WORD.items()}

_KW_TOKENS: tuple[str, ...] = tuple(_kw_token(arg) for arg in Arg)
#: Keyword kinds that always consume the next word (Solaris NEXTARG).
_NEXTARG_TOKENS: tuple[str, ...] = tuple(_kw_token(a) for a in Arg if a not in (Arg.NONE, Arg.MAC))


class _Context:
    """Mutable state of one parse; hangs off the cloned lexer as ``ctx``."""

    def __init__(
        self,
        *,
        argv: bool,
        source: str = "",
        line_map: Sequence[tuple[int, int]] = (),
        family: Family | None = None,
        ifname: str | None = None,
        position: Position | None = None,
        implicit_from: int | None = None,
    ) -> None:
        self.argv = argv
        self.source = source
        self.line_map = line_map
        self.family = family
        self.ifname = ifname
        self.position = position if position is not None else Position(source, 0, 0)
        self.implicit_from = implicit_from
        self.letters: str | None = None
        self.count = 0
        self.last: _Word | None = None
        #: Solaris ``setaddr``: once a source address is set (bare word,
        #: ``set`` or ``addif``), the next bare word is the destination.
        self.setaddr = False

    def position_at(self, offset: int) -> Position:
        if self.argv:
            # Every argv element is exactly one token, in order.
            return Position("", 0, self.count + 1)
        line, col = self.line_map[offset]
        return Position(self.source, line, col)

    def implicit(self, word: _Word) -> bool:
        return self.implicit_from is not None and word.offset >= self.implicit_from

    @property
    def checked_family(self) -> Family:
        # Solaris: with no family word the command family is inet, also in
        # the -a form (ifconfig.c main: afp defaults to the first entry).
        return self.family if self.family is not None else Family.INET


class _EndOfInput(Exception):
    """Raised by ``p_error`` at end of input; the caller knows the context."""


_F = TypeVar("_F", bound=Callable[..., object])


def _rule(text: str) -> Callable[[_F], _F]:
    """Attach a PLY grammar rule or token pattern (PLY reads ``__doc__``)."""

    def mark(func: _F) -> _F:
        func.__doc__ = text
        return func

    return mark


# --------------------------------------------------------------------------
# The grammar
# --------------------------------------------------------------------------


class _Grammar:
    """PLY lexer and LALR parser, built once per process on first use.

    The grammar::

        command  : target family items | items
        target   : HEAD                      (argv only: IF[:N] or -letters)
        family   : FAMILY | empty            (argv only: inet|inet6 after HEAD)
        items    : items item | empty
        item     : WORD | MACADDR            (a bare address)
                 | KW_NONE                   (plumb, up, -failover, ...)
                 | KW_MAC MACADDR | KW_MAC   (ether [mac])
                 | KW_<kind> argument        (netmask +, group prod, ...)
        argument : any one word

    The only syntax error this grammar can meet is the end of input right
    after a keyword that needs an argument, which is Solaris' "no argument
    for <cmd>".  The optional ``ether`` argument is the one shift/reduce
    choice; a precedence declaration resolves it (take the MAC).
    """

    _shared: ClassVar[_Grammar | None] = None

    # ---- lexer --------------------------------------------------------

    tokens = ("HEAD", "FAMILY", "WORD", "MACADDR", *_KW_TOKENS)

    # Two lexer states.  INITIAL splits one hostname-file line on blanks,
    # as the Bourne shell does with an unquoted $ifcmds (IFS = space, tab,
    # newline).  "argv" sees the command line as NUL-terminated elements,
    # so an element is one word whatever it contains ("my grp"), and an
    # empty element (group "") is still a word.
    states = (("argv", "exclusive"),)

    t_ignore = " \t\n"
    t_argv_ignore = ""

    @_rule(r"[^ \t\n]+")
    def t_WORD(self, t: Any) -> Any:
        return self._classify(t, t.value)

    @_rule(r"[^\x00]*\x00")
    def t_argv_WORD(self, t: Any) -> Any:
        return self._classify(t, t.value[:-1])

    def t_error(self, t: Any) -> None:  # pragma: no cover - every character is covered
        raise ParseError(f"ifconfig: unexpected character {t.value[0]!r}")

    def t_argv_error(self, t: Any) -> None:  # pragma: no cover - every character is covered
        raise ParseError(f"ifconfig: unexpected character {t.value[0]!r}")

    @staticmethod
    def _classify(t: Any, text: str) -> Any:
        ctx: _Context = t.lexer.ctx
        word = _Word(text, ctx.position_at(t.lexpos), t.lexpos)
        index = ctx.count
        ctx.count += 1
        ctx.last = word
        t.value = word
        if ctx.argv and index == 0:
            # argv[1] is always the interface or the option word, whatever
            # it says (ifconfig.c main).
            t.type = "HEAD"
        elif ctx.argv and index == 1 and text in _FAMILY_WORDS:
            # The family word only counts right after the interface; later
            # it is just another (bad) address, as in Solaris.
            t.type = "FAMILY"
        elif text in _RESERVED:
            t.type = _RESERVED[text]
        elif _MAC_RE.fullmatch(text):
            t.type = "MACADDR"
        else:
            t.type = "WORD"
        return t

    # ---- parser -------------------------------------------------------

    precedence = (
        ("nonassoc", "ETHER_ALONE"),
        ("nonassoc", "MACADDR"),
    )

    @_rule("command : target family items")
    def p_command_head(self, p: Any) -> None:
        ctx: _Context = p.lexer.ctx
        p[0] = Command(
            ifname=ctx.ifname,
            family=p[2],
            actions=tuple(p[3]),
            position=p[1],
            all_letters=ctx.letters,
        )

    @_rule("command : items")
    def p_command_line(self, p: Any) -> None:
        ctx: _Context = p.lexer.ctx
        p[0] = Command(ifname=ctx.ifname, family=ctx.family, actions=tuple(p[1]), position=ctx.position)

    @_rule("target : HEAD")
    def p_target(self, p: Any) -> None:
        ctx: _Context = p.lexer.ctx
        word: _Word = p[1]
        name = word.text
        # Solaris checks the length before anything else, options included.
        if _ifname_too_long(name):
            raise ParseError(f"ifconfig: {name}: interface name too long", word.position)
        if name.startswith("-"):
            ctx.letters = _option_letters(word)
        else:
            ctx.ifname = name
        p[0] = word.position

    @_rule("family : FAMILY")
    def p_family(self, p: Any) -> None:
        ctx: _Context = p.lexer.ctx
        ctx.family = _FAMILY_WORDS[p[1].text]
        p[0] = ctx.family

    @_rule("family : empty")
    def p_family_default(self, p: Any) -> None:
        p[0] = None

    @_rule("items : items item")
    def p_items(self, p: Any) -> None:
        p[1].append(p[2])
        p[0] = p[1]

    @_rule("items : empty")
    def p_items_empty(self, p: Any) -> None:
        p[0] = []

    @_rule("empty :")
    def p_empty(self, p: Any) -> None:
        p[0] = None

    @_rule("item : WORD\n | MACADDR")
    def p_item_address(self, p: Any) -> None:
        p[0] = _address_action(p.lexer.ctx, p[1])

    @_rule("item : KW_NONE")
    def p_item_flag(self, p: Any) -> None:
        p[0] = _keyword_action(p.lexer.ctx, p[1], None)

    @_rule("item : KW_MAC MACADDR")
    def p_item_ether_mac(self, p: Any) -> None:
        p[0] = _keyword_action(p.lexer.ctx, p[1], p[2])

    # Solaris' ether takes the next word whatever it is (OPTARG); we take it
    # only when it looks like a MAC address, so "ether up" still brings the
    # interface up.  The precedence makes "shift the MAC" win silently.
    @_rule("item : KW_MAC %prec ETHER_ALONE")
    def p_item_ether(self, p: Any) -> None:
        p[0] = _keyword_action(p.lexer.ctx, p[1], None)

    @_rule("item : " + "\n | ".join(f"{tok} argument" for tok in _NEXTARG_TOKENS))
    def p_item_keyword(self, p: Any) -> None:
        p[0] = _keyword_action(p.lexer.ctx, p[1], p[2])

    # Solaris takes the next argv word as the argument whatever it is, so
    # "group up" names a group "up" (ifconfig.c: NEXTARG).
    @_rule("argument : " + "\n | ".join(("WORD", "MACADDR", *_KW_TOKENS)))
    def p_argument(self, p: Any) -> None:
        p[0] = p[1]

    def p_error(self, t: Any) -> None:
        if t is None:
            raise _EndOfInput()
        # Unreachable with this grammar; kept so a future rule cannot fail
        # with anything but a ParseError.
        word: _Word = t.value
        raise ParseError(f"ifconfig: {word.text}: unexpected word", word.position)  # pragma: no cover

    # ---- construction -------------------------------------------------

    def __init__(self, errorlog: Any = None) -> None:
        log = errorlog if errorlog is not None else yacc.NullLogger()
        self._lexer: Any = lex.lex(module=self, optimize=False, debug=False, reflags=0, errorlog=log)
        self._parser: Any = yacc.yacc(
            module=self,
            start="command",
            debug=False,
            write_tables=False,
            optimize=False,
            errorlog=log,
        )

    @classmethod
    def shared(cls) -> _Grammar:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def run(self, text: str, ctx: _Context, state: str) -> Command:
        lexer = self._lexer.clone()
        lexer.ctx = ctx
        lexer.begin(state)
        try:
            command: Command = self._parser.parse(text, lexer=lexer)
        except _EndOfInput:
            raise _missing_argument(ctx) from None
        return command


# --------------------------------------------------------------------------
# Semantic actions (plain functions, so PLY does not take them for rules)
# --------------------------------------------------------------------------


def _option_letters(word: _Word) -> str:
    """Check ``-<letters>`` as Solaris' getopt loop does (spec §4.1)."""
    letters = word.text[1:]
    if word.text == "--":
        letters = ""  # getopt's end-of-options marker: no option at all
    for letter in letters:
        if letter not in ALL_LETTERS:
            raise ParseError(USAGE, word.position)
    if "a" not in letters:
        raise ParseError(f"ifconfig: {word.text}: no such interface", word.position)
    return letters


def _unexpected_slash(word: _Word) -> ParseError:
    return ParseError(f"ifconfig: {word.text}: unexpected '/'", word.position)


def _address_action(ctx: _Context, word: _Word) -> Action:
    # A bare word sets the source address until one is set (Solaris
    # setifaddr); after that it is the destination (setifdstaddr), which
    # takes no prefix.  "/<n>" alone as a source only sets the prefix
    # length and does not count as an address (setifprefixlen).
    if ctx.setaddr:
        if "/" in word.text:
            raise _unexpected_slash(word)
    elif not word.text.startswith("/"):
        ctx.setaddr = True
    return Action("address", word.text, word.position, word.position, implicit=ctx.implicit(word))


def _keyword_action(ctx: _Context, kwword: _Word, argword: _Word | None) -> Action:
    kw = BY_WORD[kwword.text]
    family = ctx.checked_family
    # The family check comes first: Solaris rejects the word before it
    # looks at its argument (ifconfig.c: "Operation %s not supported for %s").
    if kw.family is not None and kw.family != int(family):
        raise ParseError(f"ifconfig: Operation {kw.word} not supported for {family.word}", kwword.position)
    if not kw.supported:
        raise UnsupportedError(f"ifconfig: {kw.word}: not supported on Linux ({kw.why})", kwword.position)
    if argword is not None:
        _check_argument(ctx, kw, argword)
    return Action(
        kw.word,
        argword.text if argword is not None else None,
        kwword.position,
        argword.position if argword is not None else None,
        implicit=ctx.implicit(kwword),
    )


def _check_argument(ctx: _Context, kw: Keyword, word: _Word) -> None:
    text = word.text
    if kw.arg is Arg.ADDRESS:
        if "/" in text and kw.word not in _PREFIX_ALLOWED:
            raise _unexpected_slash(word)
        if kw.word == "addif" or (kw.word == "set" and not text.startswith("/")):
            ctx.setaddr = True  # Solaris addif/setifaddr: next bare word is the destination
    elif kw.arg is Arg.MASK:
        if "/" in text:
            raise _unexpected_slash(word)
        if not _is_mask(text):
            # Solaris resolves a mask like an address and says so.
            raise ParseError(f"ifconfig: {text}: bad address", word.position)
    elif kw.arg is Arg.BROADCAST:
        if "/" in text:
            raise _unexpected_slash(word)
    elif kw.arg is Arg.NUMBER:
        # Solaris uses atoi() and would take "abc" as 0; we refuse instead.
        if not _NUMBER_RE.fullmatch(text):
            raise ParseError(f"ifconfig: {kw.word}: {text}: not a decimal number", word.position)


def _missing_argument(ctx: _Context) -> ParseError:
    last = ctx.last
    if last is not None and _RESERVED.get(last.text) in _NEXTARG_TOKENS:
        return ParseError(f"ifconfig: no argument for {last.text}", last.position)
    return ParseError("ifconfig: unexpected end of command", ctx.position)  # pragma: no cover


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def parse_argv(argv: Sequence[str]) -> Command:
    """Parse ifconfig's arguments (after the program name).

    Args:
        argv: ``["qfe0", "inet", "192.0.2.1", "up"]`` or ``["-a"]`` style.
            Each element is one word, even if it contains blanks or is empty.

    Returns:
        The command; ``ifname`` is None and ``all_letters`` set for ``-a...``.

    Raises:
        ParseError: with ``Position("", 0, i)`` where ``i`` is the 1-based
            index of the offending element.
        UnsupportedError: a Solaris keyword that has no meaning on Linux.
    """
    if not argv:
        raise ParseError(USAGE)
    for index, element in enumerate(argv, start=1):
        # A real argv cannot hold a NUL; one here would split the element.
        if "\x00" in element:
            raise ParseError(
                f"ifconfig: {element!r}: argument contains a NUL character", Position("", 0, index)
            )
    text = "".join(element + "\x00" for element in argv)
    return _Grammar.shared().run(text, _Context(argv=True), "argv")


def parse_words(
    text: str,
    *,
    ifname: str,
    family: Family,
    source: str = "",
    line_map: Sequence[tuple[int, int]] | None = None,
    implicit_from: int | None = None,
) -> Command:
    """Parse one hostname-file line, run as ``ifconfig <ifname> <family> <text>``.

    Args:
        text: the logical line after the shell's ``read`` (no quote
            processing; words are split on blanks).
        ifname: the interface the file is for (``qfe0`` or ``qfe0:1``).
        family: INET for ``hostname.<if>``, INET6 for ``hostname6.<if>``.
        source: the file name used in positions.
        line_map: the physical ``(line, column)`` (1-based) of every
            character of ``text``, so that words of a line joined with
            trailing backslashes point at their own physical line.  None
            means ``text`` is line 1 of ``source``.
        implicit_from: offset in ``text`` from which words were added by the
            boot rules (the single-line ``netmask + broadcast + up``); their
            actions get ``implicit=True``.

    Returns:
        The command, with ``family`` set and ``position`` at the first
        character of the line.

    Raises:
        ParseError, UnsupportedError: as for ``parse_argv``, with file positions.
    """
    if line_map is None:
        line_map = [(1, col) for col in range(1, len(text) + 1)]
    elif len(line_map) != len(text):
        raise ValueError("line_map must give one position per character of text")
    first = line_map[0] if line_map else (1, 1)
    position = Position(source, first[0], first[1])
    if _ifname_too_long(ifname):
        raise ParseError(f"ifconfig: {ifname}: interface name too long", position)
    ctx = _Context(
        argv=False,
        source=source,
        line_map=line_map,
        family=family,
        ifname=ifname,
        position=position,
        implicit_from=implicit_from,
    )
    return _Grammar.shared().run(text, ctx, "INITIAL")
