#!/usr/bin/python3 -I
"""ipmp-solaris-paths enable|disable|status: ipmp's ifconfig on the Solaris paths, reversibly.

Solaris scripts call ``/usr/sbin/ifconfig`` and ``/sbin/ifconfig``.  On
Debian those are net-tools' when it is installed, and tools of the
distribution (and admins' fingers) expect net-tools' output there, so the
package installs its ifconfig as ``/usr/lib/ipmp/bin/ifconfig`` and leaves
both paths alone until the administrator asks:

``enable``
    For each path (once when ``/sbin`` is a link to ``/usr/sbin``, merged
    /usr): a file a package owns (net-tools) is moved aside with
    ``dpkg-divert --local --rename --add`` (to ``PATH.distrib``, where
    upgrades of that package then put it too), and a symbolic link to
    ipmp's ifconfig takes its place; an absent path just gets the link.
    A file no package owns, or one diverted by someone else, is the
    administrator's: nothing is changed and the command fails.  What was
    done is recorded in ``/var/lib/ipmp/solaris-paths``.
``disable``
    Undoes exactly what the record says, last step first: the link goes
    (only if it still points at ipmp's ifconfig) and the diversion is
    removed, which renames net-tools' file back.
``status``
    Prints each path's state; exit status 0 when enabled, 3 when not.

The package's prerm runs ``disable`` on removal: its ifconfig goes with it,
and a link left behind would break ``ifconfig`` for everyone.

``plan_enable`` and ``plan_disable`` are pure: they turn what was observed
into steps; ``System`` observes and carries the steps out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

TARGET = "/usr/lib/ipmp/bin/ifconfig"
SOLARIS_PATHS = ("/usr/sbin/ifconfig", "/sbin/ifconfig")
RECORD = "/var/lib/ipmp/solaris-paths"
DPKG_DIVERT = "/usr/bin/dpkg-divert"
DPKG_QUERY = "/usr/bin/dpkg-query"
EXIT_NOT_ENABLED = 3


@dataclass(frozen=True)
class Observed:
    """One file system location and every Solaris path that names it (two on merged /usr)."""

    paths: tuple[str, ...]
    #: The link target when the location is a symbolic link, else None.
    link: str | None
    exists: bool
    #: (package, the path dpkg registered it under) of the file there, if a package owns it.
    owner: tuple[str, str] | None
    #: The path dpkg diverts this file to, if it is diverted, and by whom ("LOCAL" or a package).
    diverted: tuple[str, str] | None


@dataclass(frozen=True)
class Step:
    """``divert PATH`` (dpkg-divert --local --rename), or ``link PATH`` (symlink to TARGET)."""

    kind: str
    path: str

    def line(self) -> str:
        return f"{self.kind} {self.path}"


class Refused(Exception):
    """A path holds something that is not ipmp's to replace."""


def plan_enable(observed: Sequence[Observed], recorded: Sequence[Step]) -> list[Step]:
    """The steps that put TARGET on every Solaris path; [] when already there.

    Raises:
        Refused: a path holds a file no package owns (the administrator's),
            or a diversion that ipmp did not make.
    """
    steps: list[Step] = []
    ours = {s.path for s in recorded if s.kind == "divert"}
    for place in observed:
        path = place.paths[0]
        if place.link == TARGET:
            continue
        if place.diverted is not None:
            registered = place.owner[1] if place.owner else path
            if registered not in ours:
                to, by = place.diverted
                raise Refused(f"{path} is diverted to {to} by {by}, not by ipmp")
        if place.owner is not None:
            registered = place.owner[1]
            if registered not in ours:
                steps.append(Step("divert", registered))
            steps.append(Step("link", registered))
        elif place.exists or place.link is not None:
            raise Refused(f"{path} is not ipmp's and no package owns it: move it away first")
        else:
            steps.append(Step("link", path))
    return steps


def plan_disable(recorded: Sequence[Step], observed: Sequence[Observed]) -> list[Step]:
    """The recorded steps to undo, last first; a link is undone only while it still points at TARGET.

    A package upgrade (or the administrator) may have replaced the link: then
    the file there is no longer ipmp's to remove.
    """
    links = {p: place.link for place in observed for p in place.paths}
    undo: list[Step] = []
    for step in reversed(recorded):
        if step.kind == "link" and links.get(step.path) != TARGET:
            continue
        undo.append(step)
    return undo


class System(Protocol):
    def observe(self) -> list[Observed]: ...
    def divert(self, path: str) -> None: ...
    def undivert(self, path: str) -> None: ...
    def link(self, path: str) -> None: ...
    def unlink(self, path: str) -> None: ...
    def read_record(self) -> list[Step]: ...
    def write_record(self, steps: Sequence[Step]) -> None: ...


def parse_record(text: str) -> list[Step]:
    steps = []
    for line in text.splitlines():
        kind, _, path = line.strip().partition(" ")
        # Only the two Solaris paths: a record edited to name another file
        # must not make disable remove it.
        if kind in ("divert", "link") and path in SOLARIS_PATHS:
            steps.append(Step(kind, path))
    return steps


class Host:
    """The real system, through dpkg's own tools."""

    def _run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        return subprocess.run(argv, capture_output=True, text=True, check=False, env=env)

    def _owner(self, path: str) -> tuple[str, str] | None:
        proc = self._run([DPKG_QUERY, "-S", path])
        for line in proc.stdout.splitlines():
            package, sep, where = line.partition(": ")
            # "diversion by ..." lines are not ownership.
            if sep and where == path and not line.startswith(("diversion by", "local diversion")):
                return package.split(",")[0].strip(), path
        return None

    def _diverted(self, path: str) -> tuple[str, str] | None:
        proc = self._run([DPKG_DIVERT, "--list", path])
        for line in proc.stdout.splitlines():
            # "local diversion of /usr/sbin/ifconfig to /usr/sbin/ifconfig.distrib"
            # "diversion of X to Y by PACKAGE"
            words = line.split()
            if "of" in words and "to" in words and words[words.index("of") + 1] == path:
                to = words[words.index("to") + 1]
                by = words[words.index("by") + 1] if "by" in words else "LOCAL"
                return to, by
        return None

    def observe(self) -> list[Observed]:
        places: dict[str, list[str]] = {}
        for path in SOLARIS_PATHS:
            # Merged /usr: /sbin is a link to usr/sbin, both paths name one file.
            key = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
            places.setdefault(key, []).append(path)
        observed = []
        for key, paths in places.items():
            link = os.readlink(key) if os.path.islink(key) else None
            owner = next((o for o in (self._owner(p) for p in paths) if o), None)
            diverted = next((d for d in (self._diverted(p) for p in paths) if d), None)
            observed.append(Observed(tuple(paths), link, os.path.lexists(key), owner, diverted))
        return observed

    def divert(self, path: str) -> None:
        self._check([DPKG_DIVERT, "--local", "--rename", "--add", path])

    def undivert(self, path: str) -> None:
        self._check([DPKG_DIVERT, "--local", "--rename", "--remove", path])

    def link(self, path: str) -> None:
        os.symlink(TARGET, path)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def read_record(self) -> list[Step]:
        try:
            return parse_record(Path(RECORD).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []

    def write_record(self, steps: Sequence[Step]) -> None:
        record = Path(RECORD)
        if not steps:
            record.unlink(missing_ok=True)
            return
        record.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = record.with_name(record.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(s.line() + "\n" for s in steps))
        os.replace(tmp, record)

    def _check(self, argv: Sequence[str]) -> None:
        proc = self._run(argv)
        if proc.returncode != 0:
            raise OSError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")


def enable(system: System) -> list[Step]:
    recorded = system.read_record()
    steps = plan_enable(system.observe(), recorded)
    done = list(recorded)
    try:
        for step in steps:
            (system.divert if step.kind == "divert" else system.link)(step.path)
            # A path linked again (a package had replaced the link) keeps one
            # entry, after its diversion: disable undoes in reverse order.
            if step in done:
                done.remove(step)
            done.append(step)
    finally:
        # Whatever was done is recorded, also when a later step failed, so that disable undoes it.
        system.write_record(done)
    return steps


def disable(system: System) -> list[Step]:
    recorded = system.read_record()
    undo = plan_disable(recorded, system.observe())
    for step in undo:
        (system.undivert if step.kind == "divert" else system.unlink)(step.path)
    system.write_record([])
    return undo


def describe(place: Observed) -> str:
    names = " = ".join(place.paths)
    if place.link == TARGET:
        state = "ipmp's ifconfig"
    elif place.owner:
        state = f"{place.owner[0]}'s"
    elif place.exists:
        state = "a file no package owns"
    else:
        state = "absent"
    if place.diverted:
        state += f"; the packaged file is diverted to {place.diverted[0]}"
    return f"{names}: {state}"


def main(argv: Sequence[str] | None = None, system: System | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in (["enable"], ["disable"], ["status"]):
        print("usage: ipmp-solaris-paths enable|disable|status", file=sys.stderr)
        return 2
    host = system or Host()
    try:
        if args[0] == "enable":
            for step in enable(host):
                print(f"ipmp-solaris-paths: {step.line()}")
        elif args[0] == "disable":
            for step in disable(host):
                print(f"ipmp-solaris-paths: undo {step.line()}")
    except (Refused, OSError) as err:
        print(f"ipmp-solaris-paths: {err}", file=sys.stderr)
        return 1
    observed = host.observe()
    for place in observed:
        print(describe(place))
    enabled = all(place.link == TARGET for place in observed)
    return EXIT_NOT_ENABLED if args[0] == "status" and not enabled else 0


if __name__ == "__main__":
    sys.exit(main())
