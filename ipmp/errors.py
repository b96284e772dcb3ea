"""One hierarchy of errors for the whole toolkit.

Only the command-line shells turn these into messages and exit codes.  A
``ParseError`` knows where it happened: ``file:line:col`` for boot files, the
argv position for the command line.
"""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: importing ``typing`` is what this avoids
# (type checkers treat any name ``TYPE_CHECKING`` as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from ipmp.linux.ops import Op


class IpmpError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class Record:
    """Immutable, compared, hashed and copied by its fields, as a frozen slotted dataclass.

    Written out by hand for the records of the commands scripts call in
    loops: ``dataclasses`` (with ``inspect``, ``ast`` and ``dis``) costs
    ``ipmpstat`` about a tenth of its start-up (issue 15, point 7).

    Subclasses name their fields in order in ``_fields`` (and in
    ``__slots__``), and set them in ``__init__`` with ``object.__setattr__``.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record) and other.__class__ is self.__class__:
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[type[Record], tuple[object, ...]]:
        return (type(self), self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({fields})"


class Position(Record):
    """Where a word came from: a file position, or an argv index."""

    __match_args__ = _fields = ("source", "line", "col")
    source: str  # file path, or "" for the command line
    line: int  # 1-based; 0 for argv
    col: int  # 1-based column in the line, or argv index (1-based)

    def __init__(self, source: str, line: int = 0, col: int = 0) -> None:
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "col", col)

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

    def __init__(self, message: str, op: Op | None = None, errno_: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.op = op
        self.errno_ = errno_

    def __str__(self) -> str:
        return self.message


class StateError(IpmpError, OSError):
    """The state store under <root>/run/ipmp cannot be read or written."""
