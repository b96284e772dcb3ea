"""The words of an ifconfig command: their syntax, the parse's context, the actions they become.

What Solaris ``ifconfig`` checks of a word before any ioctl (``ifconfig.c``:
the interface name's length, the ``-a`` letters, a keyword's family, ``/``
where no prefix is allowed, masks and numbers) and the usage text, generated
from the keyword table.  Shared by the grammar (``ipmp.config.grammar``) and
by the status-read shortcut of ``ipmp.config.parse``, which never needs the
grammar.

Pure module: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from ipaddress import IPv4Address
from typing import NamedTuple, TypeVar

from ipmp.config.commands import Action
from ipmp.config.keywords import ALL_LETTERS, BY_WORD, KEYWORDS, Arg, Keyword
from ipmp.errors import ParseError, Position, UnsupportedError
from ipmp.model import LIFNAMSIZ, Family

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


@cache
def usage() -> str:
    # Solaris prints its usage on a bare "ifconfig" (spec §4.1).  Ours is
    # generated from the keyword table so it can never list a word the
    # parser does not know.  Built on demand: only an error needs it.
    import textwrap

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


# --------------------------------------------------------------------------
# Word syntax
# --------------------------------------------------------------------------

#: Solaris LIFNAMSIZ includes the terminating NUL: at most 31 bytes of name.
_MAX_IFNAME = LIFNAMSIZ - 1

#: The family words; only recognised right after the interface (spec §4.1).
FAMILY_WORDS: dict[str, Family] = {"inet": Family.INET, "inet6": Family.INET6}

#: Keywords whose address argument may carry ``/<prefix>``.  Solaris passes a
#: prefix pointer to the address parser only for ``addif``, ``set``,
#: ``subnet`` and ``token`` (``setifsubnet``, ``setiftoken``: the last two
#: require one) and the first bare address, handled separately; ``destination``,
#: ``removeif``, ``broadcast`` and ``netmask`` get none, and a ``/`` there
#: is "unexpected" (ifconfig.c ``in_getaddr``).
_PREFIX_ALLOWED = frozenset({"addif", "set", "subnet", "token"})

#: An Ethernet address as Solaris prints and parses it: six groups of one or
#: two hex digits (``8:0:20:a1:b2:c3``).
MAC_RE = re.compile(r"[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5}")
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


def ifname_too_long(name: str) -> bool:
    # Solaris counts bytes; surrogatepass keeps odd argv strings countable.
    return len(name.encode("utf-8", "surrogatepass")) > _MAX_IFNAME


# --------------------------------------------------------------------------
# Tokens and per-parse context
# --------------------------------------------------------------------------


class Word(NamedTuple):
    """A lexed word: its text, where it came from, and its offset in the input.

    A NamedTuple, as cheap to define as a record can be: this module is
    imported by every command, most of which never lex a word.
    """

    text: str
    position: Position
    offset: int


def _kw_token(arg: Arg) -> str:
    return f"KW_{arg.name}"


#: Reserved words: the PLY idiom ``t.type = reserved.get(word, "WORD")``.
RESERVED: dict[str, str] = {word: _kw_token(kw.arg) for word, kw in BY_WORD.items()}

KW_TOKENS: tuple[str, ...] = tuple(_kw_token(arg) for arg in Arg)
#: Keyword kinds that always consume the next word (Solaris NEXTARG).
NEXTARG_TOKENS: tuple[str, ...] = tuple(_kw_token(a) for a in Arg if a not in (Arg.NONE, Arg.MAC))


class Context:
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
        self.last: Word | None = None
        #: Solaris ``setaddr``: once a source address is set (bare word,
        #: ``set`` or ``addif``), the next bare word is the destination.
        self.setaddr = False

    def position_at(self, offset: int) -> Position:
        if self.argv:
            # Every argv element is exactly one token, in order.
            return Position("", 0, self.count + 1)
        line, col = self.line_map[offset]
        return Position(self.source, line, col)

    def implicit(self, word: Word) -> bool:
        return self.implicit_from is not None and word.offset >= self.implicit_from

    @property
    def checked_family(self) -> Family:
        # Solaris: with no family word the command family is inet, also in
        # the -a form (ifconfig.c main: afp defaults to the first entry).
        return self.family if self.family is not None else Family.INET


class EndOfInput(Exception):
    """Raised by ``p_error`` at end of input; the caller knows the context."""


_F = TypeVar("_F", bound=Callable[..., object])


def rule(text: str) -> Callable[[_F], _F]:
    """Attach a PLY grammar rule or token pattern (PLY reads ``__doc__``)."""

    def mark(func: _F) -> _F:
        func.__doc__ = text
        return func

    return mark


# --------------------------------------------------------------------------
# Semantic actions (plain functions, so PLY does not take them for rules)
# --------------------------------------------------------------------------


def head(ctx: Context, word: Word) -> None:
    """argv[1]: the interface (sets ``ctx.ifname``) or ``-<letters>`` (sets ``ctx.letters``)."""
    name = word.text
    # Solaris checks the length before anything else, options included.
    if ifname_too_long(name):
        raise ParseError(f"ifconfig: {name}: interface name too long", word.position)
    if name.startswith("-"):
        ctx.letters = _option_letters(word)
    else:
        ctx.ifname = name


def _option_letters(word: Word) -> str:
    """Check ``-<letters>`` as Solaris' getopt loop does (spec §4.1)."""
    letters = word.text[1:]
    if word.text == "--":
        letters = ""  # getopt's end-of-options marker: no option at all
    for letter in letters:
        if letter not in ALL_LETTERS:
            raise ParseError(usage(), word.position)
    if "a" not in letters:
        raise ParseError(f"ifconfig: {word.text}: no such interface", word.position)
    return letters


def _unexpected_slash(word: Word) -> ParseError:
    return ParseError(f"ifconfig: {word.text}: unexpected '/'", word.position)


def address_action(ctx: Context, word: Word) -> Action:
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


def keyword_action(ctx: Context, kwword: Word, argword: Word | None) -> Action:
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


def _check_argument(ctx: Context, kw: Keyword, word: Word) -> None:
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


def missing_argument(ctx: Context) -> ParseError:
    last = ctx.last
    if last is not None and RESERVED.get(last.text) in NEXTARG_TOKENS:
        return ParseError(f"ifconfig: no argument for {last.text}", last.position)
    return ParseError("ifconfig: unexpected end of command", ctx.position)  # pragma: no cover
