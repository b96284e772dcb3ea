"""What the parser does to start fast, and why it stays correct.

* A status read (``-a...`` or ``IF``, with at most a family word) is answered
  without the grammar: it must give exactly what the grammar gives.
* The LALR tables come from ``ipmp/config/grammar_tables.py``: that file must be
  what ``python -m ipmp.config.tablegen`` makes of the grammar now, PLY must accept
  it, and a stale one must never be used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ply import yacc

from ipmp.config import grammar, grammar_tables, parse, syntax, tablegen
from ipmp.config.commands import Command
from ipmp.errors import ParseError

REPO = Path(__file__).resolve().parents[2]


def _by_grammar(argv: list[str]) -> Command | str:
    """``parse_argv`` without its shortcut: the grammar's Command, or its error."""
    text = "".join(a + "\x00" for a in argv)
    try:
        return grammar.Grammar.shared().run(text, syntax.Context(argv=True), "argv")
    except ParseError as err:
        return f"{err} @ {err.position}"


def _by_shortcut(argv: list[str]) -> Command | str | None:
    try:
        return parse._status_read(argv)
    except ParseError as err:
        return f"{err} @ {err.position}"


# --------------------------------------------------------------------------
# Status reads
# --------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["-a"], ["-au"], ["-ad4"], ["-aD", "inet6"], ["-a", "inet"], ["-Za6"],
    ["qfe0"], ["qfe0:1", "inet"], ["hme0", "inet6"], ["up"], ["inet"], ["0:1:2:3:4:5"], [""],
    # Errors of the head: bad letter, no "a", "--", too long.
    ["-ab"], ["-u"], ["--"], ["-"], ["x" * 32], ["-a" + "u" * 30], ["y" * 31, "inet"],
])
def test_status_read_is_what_the_grammar_gives(argv: list[str]) -> None:
    assert _by_shortcut(argv) == _by_grammar(argv)


@pytest.mark.parametrize("argv", [["-a", "up"], ["-a", "inet", "up"], ["qfe0", "inet4"], ["qfe0", "up"],
                                  ["qfe0", "inet6", "plumb"]])
def test_words_after_the_head_go_to_the_grammar(argv: list[str]) -> None:
    assert parse._status_read(argv) is None


_HEADS = ["-a", "-au4", "-aD", "-ax", "-", "--", "qfe0", "qfe0:3", "up", "", "é" * 16]
_word = st.one_of(st.sampled_from([*_HEADS, "inet", "inet6", "up"]), st.text(max_size=4))


@settings(max_examples=200, deadline=None)
@given(st.lists(_word, min_size=1, max_size=2))
def test_every_short_argv_parses_as_the_grammar_does(argv: list[str]) -> None:
    if any("\x00" in a for a in argv):
        return  # refused by parse_argv before either path
    shortcut = _by_shortcut(argv)
    if shortcut is not None:
        assert shortcut == _by_grammar(argv)


def test_a_status_read_loads_neither_ply_nor_the_planner() -> None:
    code = ("import sys; from ipmp.config.parse import parse_argv; from ipmp.admin import status; "
            "from ipmp.cli import ifconfig; parse_argv(['-au4', 'inet']); parse_argv(['qfe0']); "
            "print(sorted(m for m in sys.modules\n"
            "             if m == 'ply' or m.startswith(('ply.', 'ipmp.apply'))))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------
# Generated tables
# --------------------------------------------------------------------------


def test_tables_file_is_what_the_grammar_gives() -> None:
    assert tablegen.TABLES.read_text() == tablegen.render(), (
        "ipmp/config/grammar_tables.py is stale: run python -m ipmp.config.tablegen"
    )


def test_ply_accepts_the_tables() -> None:
    # Productions read from a table file are MiniProductions; built ones are not.
    productions = grammar.Grammar()._parser.productions
    assert all(type(p) is yacc.MiniProduction for p in productions)


def _copy_of_tables(**changes: Any) -> ModuleType:
    module = ModuleType("stale_tables")
    for name in ("__file__", "_tabversion", "_lr_method", "_lr_signature", "_lr_action", "_lr_goto",
                 "_lr_productions"):
        setattr(module, name, getattr(grammar_tables, name))
    for name, value in changes.items():
        setattr(module, name, value)
    return module


def test_stale_tables_are_never_used() -> None:
    # Tables for another grammar (here: a changed signature and no actions
    # at all) are ignored: PLY builds its own and the parse is right.
    stale = _copy_of_tables(_lr_signature=grammar_tables._lr_signature + "x", _lr_action={}, _lr_goto={})
    built = grammar.Grammar(tables=stale)
    assert not any(type(p) is yacc.MiniProduction for p in built._parser.productions)
    command = built.run("qfe0\x00group\x00prod\x00up\x00", syntax.Context(argv=True), "argv")
    assert [(a.keyword, a.argument) for a in command.actions] == [("group", "prod"), ("up", None)]


@pytest.mark.parametrize("seed", ["0", "1"])
def test_tables_do_not_depend_on_string_hashing(seed: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "ipmp.config.tablegen", "--check"], env=env, cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")
