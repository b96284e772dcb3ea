"""POSIX ``getopt`` with the Solaris libc diagnostics, for the getopt-style tools.

``if_mpadm`` and ``ipmpstat`` parse their options as their C originals did
(letters may be grouped, an option argument may be attached or the next
word), so error texts and exit codes match what scripts expect.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: ipmpstat's start-up loads no typing (ipmp.cli.ipmpstat)
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


def getopt(
    args: Sequence[str],
    optstring: str,
    prog: str,
    *,
    long_flags: frozenset[str] = frozenset(),
    operands: bool = False,
) -> Iterator[tuple[str, str]]:
    """(letter, argument) pairs in order.

    A bad option yields ("?", diagnostic) and ends the scan.  Words in
    ``long_flags`` (our ``--json``) are yielded as themselves.  The first
    operand ends the scan; with ``operands`` it is yielded as ("", operand)
    so that the caller can refuse it, otherwise it is ignored.
    """
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            if operands and i + 1 < len(args):
                yield "", args[i + 1]
            return
        if arg in long_flags:
            yield arg, ""
            i += 1
            continue
        if not arg.startswith("-") or arg == "-":
            if operands:
                yield "", arg
            return
        pos = 1
        while pos < len(arg):
            letter = arg[pos]
            spec = optstring.find(letter)
            if letter == ":" or spec < 0:
                yield "?", f"{prog}: illegal option -- {letter}"
                return
            if optstring[spec + 1 : spec + 2] != ":":
                yield letter, ""
                pos += 1
                continue
            if pos + 1 < len(arg):
                yield letter, arg[pos + 1 :]
            elif i + 1 < len(args):
                i += 1
                yield letter, args[i]
            else:
                yield "?", f"{prog}: option requires an argument -- {letter}"
                return
            break
        i += 1
