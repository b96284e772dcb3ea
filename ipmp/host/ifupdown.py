"""ifupdown (Debian's default network configuration): which NICs it configures, and letting go.

ifupdown reads ``/etc/network/interfaces`` (interfaces(5)) at every
``ifup``/``ifdown``, and at boot (``networking.service``: ``ifup -a`` for the
``auto`` interfaces, udev for the ``allow-hotplug`` ones).  A NIC with an
``iface`` stanza there gets ifupdown's addresses and routes next to ours
(the installer's ``iface ens8 inet static`` adds a ``default via ... dev
ens8 onlink``), and ``ifdown`` takes the NIC down under in.mpathd.

What counts as managed (Linux names):

* any ``iface NIC FAMILY METHOD`` stanza whose method is not ``manual``,
  whether or not ``auto``/``allow-*`` names it: an ``ifup NIC`` by hand, or a
  hotplug event, would still apply it;
* ``iface NIC FAMILY manual`` with option lines (``up``, ``post-up``,
  ``address`` ...): those commands can add addresses and routes, so it
  counts too.  A bare ``manual`` stanza only sets the link up or down on
  ``ifup``/``ifdown`` and is left alone;
* the loopback (``iface lo inet loopback``) is ifupdown's, and never a NIC
  of a hostname file.

The files are read as ifupdown reads them: a line ending in ``\\`` continues
on the next one; a line whose first non-blank character is ``#`` is a
comment (a ``#`` elsewhere is not); ``source PATTERN`` includes the files
the shell pattern matches, and ``source-directory DIR`` the files of DIR
whose names are made only of letters, digits, ``_`` and ``-``, in name
order; a relative path is relative to the directory of the file that names
it.  Under an alternate root, absolute paths are taken below the root.
Nesting stops at ``MAX_DEPTH`` (a file that sources itself).

``take_over`` makes ifupdown let go, reversibly: in each file that names a
managed NIC, the NIC's ``iface`` stanzas are commented out, each line
prefixed with ``MARK``, and the NIC is taken out of ``auto``/``allow-*``
lines (the original line kept above it as a ``MARK`` comment).  Before the
first change a copy of the file is kept in ``etc/ipmp/takeover/`` under the
file's own path (``/etc/ipmp/takeover/etc/network/interfaces``), mode 0600
in a 0700 directory: the file may hold secrets (``wpa-psk``).  Not next to
the file, because Debian's ``source /etc/network/interfaces.d/*`` would read
a copy kept in that directory and configure the NIC again.  An existing
copy is never overwritten: it is the file as it was before the first
take-over.  To undo: copy it back.

The parsers (``parse_interfaces``, ``without_nics``) are pure; ``read``
and ``take_over`` read and write files.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BACKUP_DIR",
    "INTERFACES",
    "MARK",
    "Stanza",
    "backup_path",
    "managed_stanzas",
    "parse_interfaces",
    "read",
    "take_over",
    "without_nics",
]

INTERFACES = Path("etc/network/interfaces")
#: Where take-over keeps the original files, below the root.
BACKUP_DIR = Path("etc/ipmp/takeover")
#: The prefix of every line take-over comments out (to find them again).
MARK = "#ipmp-take-over# "
#: How deep ``source`` may nest.
MAX_DEPTH = 8
#: interfaces(5): ``source-directory`` reads only these names (no dots: no backups).
_SOURCE_DIR_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Words that start a stanza, ending the option lines of the one before.
_STANZA_WORDS = ("iface", "mapping", "auto", "source", "source-directory", "rename",
                 "no-auto-down", "no-scripts", "template")


@dataclass(frozen=True)
class Stanza:
    """An ``iface`` stanza: where it is, and what it asks for."""

    nic: str
    family: str  # inet, inet6, can, ...
    method: str  # static, dhcp, manual, loopback, ...
    path: Path
    line: int  # 1-based line of the ``iface`` word
    options: int  # how many option lines follow it
    auto: bool  # named by an ``auto`` or ``allow-*`` line of the same file

    @property
    def manages(self) -> bool:
        """Whether ifupdown puts its own configuration on the NIC (see the module doc)."""
        return self.method != "manual" or self.options > 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: iface {self.nic} {self.family} {self.method}"


@dataclass(frozen=True)
class _Line:
    """A logical line: its words and the physical lines it spans (0-based)."""

    words: tuple[str, ...]
    first: int
    last: int


def _logical_lines(text: str) -> Iterator[_Line]:
    physical = text.split("\n")
    index = 0
    while index < len(physical):
        first = index
        line = physical[index]
        while line.endswith("\\") and index + 1 < len(physical):
            index += 1
            line = line[:-1] + physical[index]
        index += 1
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield _Line(tuple(stripped.split()), first, index - 1)


def _is_stanza(word: str) -> bool:
    return word in _STANZA_WORDS or word.startswith("allow-")


def parse_interfaces(text: str, path: Path) -> tuple[list[Stanza], list[tuple[str, str]]]:
    """The ``iface`` stanzas of one file, and its includes as ``(keyword, argument)``."""
    lines = list(_logical_lines(text))
    autos = {nic for ln in lines if ln.words[0] == "auto" or ln.words[0].startswith("allow-")
             for nic in ln.words[1:]}
    stanzas: list[Stanza] = []
    includes: list[tuple[str, str]] = []
    for at, ln in enumerate(lines):
        word = ln.words[0]
        if word in ("source", "source-directory") and len(ln.words) > 1:
            includes.append((word, " ".join(ln.words[1:])))
        if word != "iface" or len(ln.words) < 2:
            continue
        options = 0
        for following in lines[at + 1:]:
            if _is_stanza(following.words[0]):
                break
            options += 1
        nic = ln.words[1]
        family = ln.words[2] if len(ln.words) > 2 else ""
        method = ln.words[3] if len(ln.words) > 3 else ""
        stanzas.append(Stanza(nic, family, method, path, ln.first + 1, options, nic in autos))
    return stanzas, includes


def _under(root: Path, base: Path, name: str) -> str:
    """An include's path, relative to ``base`` (the including file's directory), below ``root``."""
    if name.startswith("/"):
        return str(root / name.lstrip("/"))
    return str(base / name)


def _included(root: Path, base: Path, keyword: str, argument: str) -> list[Path]:
    if keyword == "source":
        # ifupdown expands the pattern with wordexp(3); a glob is what it is used for.
        return [Path(p) for p in sorted(glob.glob(_under(root, base, argument))) if Path(p).is_file()]
    directory = Path(_under(root, base, argument))
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError:
        return []
    return [directory / n for n in names if _SOURCE_DIR_NAME.fullmatch(n) and (directory / n).is_file()]


def read(root: Path) -> list[Stanza]:
    """Every ``iface`` stanza of the ifupdown configuration under ``root`` (none if it is absent).

    An unreadable included file is skipped: a boot must not fail on it, and
    ifupdown itself would fail on it before configuring anything.
    """
    found: list[Stanza] = []
    seen: set[Path] = set()

    def visit(path: Path, depth: int) -> None:
        if depth > MAX_DEPTH or path in seen:
            return
        seen.add(path)
        try:
            text = path.read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            return
        stanzas, includes = parse_interfaces(text, path)
        found.extend(stanzas)
        for keyword, argument in includes:
            for included in _included(root, path.parent, keyword, argument):
                visit(included, depth + 1)

    visit(root / INTERFACES, 0)
    return found


def managed_stanzas(stanzas: Iterable[Stanza], nics: Iterable[str]) -> list[Stanza]:
    """The stanzas by which ifupdown manages one of ``nics``."""
    wanted = set(nics)
    return [s for s in stanzas if s.nic in wanted and s.manages]


def without_nics(text: str, nics: Sequence[str]) -> str:
    """``text`` with the ``iface`` stanzas of ``nics`` commented out and ``nics`` out of ``auto`` lines.

    Every changed line keeps its original text after ``MARK``, so the file
    says what take-over did; applying this again changes nothing.
    """
    wanted = set(nics)
    physical = text.split("\n")
    out: dict[int, list[str]] = {}
    lines = list(_logical_lines(text))
    in_stanza = False
    for ln in lines:
        word = ln.words[0]
        if _is_stanza(word):
            in_stanza = word == "iface" and len(ln.words) > 1 and ln.words[1] in wanted
        span = range(ln.first, ln.last + 1)
        if in_stanza:
            for i in span:
                out[i] = [MARK + physical[i]]
        elif (word == "auto" or word.startswith("allow-")) and wanted.intersection(ln.words[1:]):
            kept = [w for w in ln.words[1:] if w not in wanted]
            original = [MARK + physical[i] for i in span]
            indent = physical[ln.first][: len(physical[ln.first]) - len(physical[ln.first].lstrip())]
            out[ln.first] = original + ([f"{indent}{word} {' '.join(kept)}"] if kept else [])
            for i in span[1:]:
                out[i] = []
    result: list[str] = []
    for i, line in enumerate(physical):
        result.extend(out.get(i, [line]))
    return "\n".join(result)


def backup_path(root: Path, path: Path) -> Path:
    """Where take-over keeps the original of ``path`` (below ``root``)."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(str(path).lstrip("/"))
    return root / BACKUP_DIR / relative


def _replace_keeping_mode(path: Path, text: str) -> None:
    """Write ``path`` atomically with its own mode and owner (it may be 0600: secrets)."""
    st = path.stat()
    tmp = path.with_name(f".{path.name}.ipmp-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, st.st_mode & 0o7777)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(text)
        os.chmod(tmp, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _keep_backup(root: Path, path: Path) -> Path:
    backup = backup_path(root, path)
    if backup.exists():
        return backup  # the file as it was before the first take-over
    for parent in reversed(backup.relative_to(root / BACKUP_DIR).parents):
        directory = root / BACKUP_DIR / parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    tmp = backup.with_name(f".{backup.name}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "wb") as out:
        with path.open("rb") as src:
            shutil.copyfileobj(src, out)
    os.chmod(tmp, 0o600)
    os.replace(tmp, backup)
    return backup


def take_over(root: Path, stanzas: Sequence[Stanza], *, write: bool) -> list[tuple[Path, Path | None]]:
    """Comment out ``stanzas`` (and their NICs' ``auto`` words) in their files.

    Returns ``(file, backup)`` for each file that is (or, without ``write``,
    would be) changed; ``backup`` is None when nothing needed changing.

    Raises:
        OSError: a file cannot be read or written; a file that is a symbolic
            link is refused (``ELOOP``), since the link may lead out of the root.
    """
    by_file: dict[Path, list[str]] = {}
    for stanza in stanzas:
        by_file.setdefault(stanza.path, []).append(stanza.nic)
    done: list[tuple[Path, Path | None]] = []
    for path, nics in by_file.items():
        if path.is_symlink():
            raise OSError(40, "a symbolic link; edit it by hand", str(path))
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        new = without_nics(text, nics)
        if new == text:
            done.append((path, None))
            continue
        backup = backup_path(root, path)
        if write:
            backup = _keep_backup(root, path)
            _replace_keeping_mode(path, new)
        done.append((path, backup))
    return done
