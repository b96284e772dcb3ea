"""The ipmp-lab shell: it needs root for everything but help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ipmp.cli.lab import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hostname.files"


def test_without_root_every_command_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for args in (["status"], ["up", str(EXAMPLES / "active-active")], ["down"], ["exec", "--", "true"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, args
        assert result.output == "ipmp-lab: must be run as root: it creates network namespaces (try sudo)\n"


def test_help_needs_no_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["drill", "--help"])
    assert result.exit_code == 0
    assert "--fdt" in result.output and "--svg" in result.output
