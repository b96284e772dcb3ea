"""netplan: which NICs its YAML names, and which service it renders them for.

netplan is no network service: at boot its generator turns
``{/lib,/etc,/run}/netplan/*.yaml`` into systemd-networkd files (the
default renderer) or NetworkManager connections (``renderer:
NetworkManager``), in ``/run``.  So a NIC netplan names is managed by one of
those two, and the take-over is theirs: ``ipmp-boot --take-over`` writes the
same drop-in as for the service itself, which wins over netplan's output
(``/etc/systemd/network/10-ipmp-NIC.network`` sorts before netplan's
``10-netplan-NIC.network``; NetworkManager's ``unmanaged-devices`` applies
to every connection).  The YAML is left as it is: ``netplan apply`` and the
next boot keep rendering it, and the drop-in keeps winning; the message
says to take the NIC out of the YAML too, for the next reader.

No YAML library: the project depends on none, and full YAML is not needed
to answer "is this NIC named here".  The scan is a conservative line scan
that errs on "named":

* comments (``#`` at the start of a line or after a blank) are dropped;
* a NIC is named when it appears as a whole word anywhere (an
  ``ethernets:`` key, ``set-name:``, a bond's ``interfaces: [..]``), quoted
  or not, or when a ``name:`` value with shell wildcards (``en*``) matches it;
* ``renderer:`` values are collected; ``NetworkManager`` anywhere makes the
  NetworkManager drop-in needed as well as networkd's.

Not resolved: a ``match: macaddress:`` without ``set-name``.  The kernel
name is then not in the file; ``networkctl``/``nmcli`` (asked as well) see
the device once the renderer runs.

Files of the same name override each other: ``/run`` over ``/etc`` over
``/lib``, as netplan does.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DIRS", "Named", "read", "scan"]

#: netplan's directories, lowest precedence first.
DIRS = (Path("lib/netplan"), Path("etc/netplan"), Path("run/netplan"))

NETWORKD = "networkd"
NETWORKMANAGER = "NetworkManager"

_COMMENT = re.compile(r"(^|\s)#.*$")
_WORD = re.compile(r"[A-Za-z0-9_.:@-]+")
_NAME_VALUE = re.compile(r"\bname:\s*[\"']?([^\"'\s]+)")
_RENDERER = re.compile(r"\brenderer:\s*[\"']?([A-Za-z]+)")


@dataclass(frozen=True)
class Named:
    """A netplan file that names some of the NICs, and the renderers it asks for."""

    path: Path
    nics: tuple[str, ...]
    renderers: frozenset[str]


def scan(text: str, nics: Iterable[str]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The NICs of ``nics`` that ``text`` names, and its renderers (networkd if none)."""
    wanted = list(nics)
    named: list[str] = []
    renderers: set[str] = set()
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw)
        if not line.strip():
            continue
        words = {w.strip(":").strip(".") for w in _WORD.findall(line)}
        patterns = [m.group(1) for m in _NAME_VALUE.finditer(line) if any(c in m.group(1) for c in "*?[")]
        for nic in wanted:
            if nic not in named and (nic in words or any(fnmatch.fnmatchcase(nic, p) for p in patterns)):
                named.append(nic)
        renderers.update(m.group(1) for m in _RENDERER.finditer(line))
    if not renderers or any(r != NETWORKMANAGER for r in renderers):
        renderers.add(NETWORKD)
    return tuple(named), frozenset(r for r in renderers if r in (NETWORKD, NETWORKMANAGER))


def read(root: Path, nics: Iterable[str]) -> list[Named]:
    """The netplan files under ``root`` that name one of ``nics``; unreadable files are skipped."""
    wanted = list(nics)
    files: dict[str, Path] = {}
    for directory in DIRS:
        try:
            for path in (root / directory).glob("*.yaml"):
                files[path.name] = path
        except OSError:
            continue
    found: list[Named] = []
    for name in sorted(files):
        try:
            text = files[name].read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        named, renderers = scan(text, wanted)
        if named:
            found.append(Named(files[name], named, renderers))
    return found
