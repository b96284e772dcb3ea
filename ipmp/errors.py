"""One hierarchy of errors for the whole toolkit.

Only the command-line shells turn these into messages and exit codes.  A
``ParseError`` knows where it happened: ``file:line:col`` for boot files, the
argv position for the command line.
"""

from __future__ import annotations

from dataclasses import dataclass


class IpmpError(Exception):
    """Base class of every error the toolkit raises on purpose."""


@dataclass(frozen=True)
class Position:
    """Where a word came from: a file position, or an argv index."""

    source: str  # file path, or "" for the command line
    line: int = 0  # 1-based; 0 for argv
    col: int = 0  # 1-based column in the line, or argv index (1-based)

    def __str__(self) -> str:
        if self.source:
            return f"{self.source}:{self.line}:{self.col}"
        return f"argument {self.col}"


class Located(IpmpError):
    """An error about a word of a file or of the command line.

    Printed as ``FILE:LINE:COL: message`` for files; on the command line the
    Solaris text alone (scripts and log watchers match it), the argv
    position staying available in ``position``.
    """

    def __init__(self, message: str, position: Position | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        if self.position is not None and self.position.source:
            return f"{self.position}: {self.message}"
        return self.message


class ParseError(Located, ValueError):
    """A word or line that does not parse; carries its position."""


class UnsupportedError(ParseError):
    """A Solaris word that is recognised but has no meaning on Linux."""


class ConfigError(Located, ValueError):
    """Valid syntax asking for something impossible (Solaris would refuse it too).

    ``message`` is the Solaris-style text without the ``ifconfig:`` prefix.
    """


class NoSuchInterface(ConfigError):
    """The named interface does not exist in the kernel."""


class ApplyError(IpmpError, OSError):
    """An operation failed on the kernel; the before-state was restored."""

    def __init__(self, message: str, op: object = None, errno_: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.op = op
        self.errno_ = errno_

    def __str__(self) -> str:
        return self.message


class StateError(IpmpError, OSError):
    """The state store under <root>/run/ipmp cannot be read or written."""
