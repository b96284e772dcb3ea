"""examples/ipadm: every ``ipadm`` line of the scripts is one the command line takes.

The scripts follow Oracle's guide; a change of ``ipadm``'s syntax that would
break them fails here (the commands themselves run on the real kernel in
tests/netns/test_ipadm.py).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ipmp.config.ipadm_syntax import parse_argv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ipadm"
SCRIPTS = sorted(EXAMPLES.glob("*.sh"))
KNOWN = {"ipadm", "ipmpstat", "svccfg", "svcadm", "svcprop"}


def test_there_are_scripts() -> None:
    assert {p.name for p in SCRIPTS} >= {"active-active.sh", "active-standby.sh", "transitive.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_line_is_a_command_the_toolkit_has(script: Path) -> None:
    for number, line in enumerate(script.read_text(encoding="ascii").splitlines(), 1):
        words = shlex.split(line)
        assert words and words[0] in KNOWN, f"{script.name}:{number}: {line}"
        if words[0] == "ipadm":
            command = parse_argv(words[1:])
            assert command.subcommand == words[1], f"{script.name}:{number}: {line}"
