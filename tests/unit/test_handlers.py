"""The keyword table and the handler table name the same words.

``ipmp.config.keywords`` says what a word is, ``ipmp.config.handlers`` what it
does: a supported word without a handler would fail only when someone
first typed it, and a handler without a word could never run.
"""

from __future__ import annotations

import inspect

from ipmp.config import link_words, unit_words
from ipmp.config.handlers import ADDRESS, HANDLERS
from ipmp.config.keywords import KEYWORDS


def test_every_supported_word_has_exactly_one_handler_and_every_handler_a_word() -> None:
    words = [k.word for k in KEYWORDS]
    assert len(words) == len(set(words))  # one row per word
    supported = {k.word for k in KEYWORDS if k.supported}
    # ``address`` is the bare word that is not a keyword (``Action("address", word)``).
    assert set(HANDLERS) == supported | {ADDRESS}
    assert ADDRESS not in words
    # No word the table refuses is handled: Linux has nothing it could mean.
    assert not {k.word for k in KEYWORDS if not k.supported} & set(HANDLERS)


def test_each_handler_serves_one_word_and_every_handler_is_in_the_table() -> None:
    values = list(HANDLERS.values())
    assert len(values) == len(set(values))
    defined = {fn for module in (unit_words, link_words)
               for name, fn in inspect.getmembers(module, inspect.isfunction)
               if name.startswith("do_") and fn.__module__ == module.__name__}
    assert defined == set(values)
