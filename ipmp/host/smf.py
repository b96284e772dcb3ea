"""A minimal stand-in for SMF: the one property of ``svc:/network/ipmp`` that in.mpathd reads.

Solaris 11 switches transitive probing on with an SMF property, not with
/etc/default/mpathd (https://docs.oracle.com/cd/E37838_01/html/E60991/gldcc.html)::

    svccfg -s svc:/network/ipmp setprop config/transitive-probing=true
    svcadm refresh svc:/network/ipmp:default
    svcprop -p config/transitive-probing ipmp

SMF keeps what ``svccfg`` sets apart from what the service runs with until
``svcadm refresh`` takes it over; so does this, with two files under the
root (``-R``)::

    etc/ipmp/smf/network-ipmp           what svccfg set (the "editing" values)
    etc/ipmp/smf/network-ipmp.running   what refresh took over: svcprop and in.mpathd read it

one line per property in ``svcprop``'s own layout (``config/transitive-probing
boolean true``).  Files are written whole (a temporary file renamed over)
with mode 0644 in a directory of mode 0755: root writes them, anyone may
read them, as SMF's repository is readable.  Only this service and this
property are known; anything else is refused (``SmfError``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

__all__ = [
    "PROPERTY",
    "SmfError",
    "is_ipmp_fmri",
    "parse_setprop",
    "read_property",
    "refresh",
    "running_path",
    "set_property",
    "transitive_probing",
]

PROPERTY = "config/transitive-probing"
_TYPE = "boolean"
_DIR = "etc/ipmp/smf"
_FILE = "network-ipmp"
#: The abbreviations SMF accepts for the service and its one instance.
_FMRIS = frozenset({
    "svc:/network/ipmp", "/network/ipmp", "network/ipmp", "ipmp",
    "svc:/network/ipmp:default", "/network/ipmp:default", "network/ipmp:default", "ipmp:default",
})
_SETPROP = re.compile(r"^\s*(?P<name>[^\s=]+)\s*=\s*(?:(?P<type>[a-z_]+):\s*)?(?P<value>\S+)\s*$")


class SmfError(Exception):
    """A request this toolkit's SMF stand-in does not support, or a value it refuses."""


def is_ipmp_fmri(fmri: str) -> bool:
    return fmri in _FMRIS


def editing_path(root: Path) -> Path:
    return root / _DIR / _FILE


def running_path(root: Path) -> Path:
    return root / _DIR / (_FILE + ".running")


def parse_setprop(words: list[str]) -> bool:
    """The value of ``setprop config/transitive-probing = [boolean:] true|false`` (words after setprop).

    Oracle documents both ``name=value`` and ``name = type: value``; the shell
    may have split them anywhere, so the words are joined again.
    """
    m = _SETPROP.match(" ".join(words))
    if m is None:
        raise SmfError("Syntax error: setprop pg/name = [type:] value")
    if m["name"] != PROPERTY:
        raise SmfError(f"property {m['name']} is not supported by this toolkit (only {PROPERTY})")
    if m["type"] is not None and m["type"] != _TYPE:
        raise SmfError(f"{PROPERTY} is of type {_TYPE}, not {m['type']}")
    return _boolean(m["value"])


def _boolean(value: str) -> bool:
    # SMF booleans are exactly "true" and "false".
    if value == "true":
        return True
    if value == "false":
        return False
    raise SmfError(f"Invalid boolean value \"{value}\"")


def _read(path: Path) -> bool | None:
    """The property in ``path``; None when the file or the line is missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == PROPERTY and words[1] == _TYPE:
            return _boolean(words[2])
    return None


def _write(path: Path, value: bool) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, f"{PROPERTY} {_TYPE} {'true' if value else 'false'}\n".encode())
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        os.unlink(tmp)
        raise


def set_property(root: Path, value: bool) -> None:
    """``svccfg setprop``: the editing value; the service sees it after ``refresh``."""
    _write(editing_path(root), value)


def refresh(root: Path) -> None:
    """``svcadm refresh``: the editing value becomes the running one (nothing set: the default)."""
    value = _read(editing_path(root))
    _write(running_path(root), bool(value))


def read_property(root: Path) -> bool:
    """``svcprop``'s value: the running one; false (Oracle's default) when never refreshed."""
    return bool(_read(running_path(root)))


def transitive_probing(root: Path) -> tuple[bool, str | None]:
    """What in.mpathd runs with, and a warning when the file cannot be read or is malformed."""
    try:
        return read_property(root), None
    except (OSError, UnicodeDecodeError, SmfError) as err:
        return False, f"cannot read {running_path(root)}: {err}; transitive probing disabled"
