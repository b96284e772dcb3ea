"""Where labs live: the private labs directory, and each lab's lock and state file.

Each ``ipmp-lab`` invocation is a separate process, so a lab lives on disk:
``<labs dir>/<name>/`` holds ``lab.json`` (namespace names, addresses,
daemon pids, injected faults), ``root/`` (the lab root) and ``mpathd.log``.
The labs dir is ``$IPMP_LAB_DIR``, else ``<tmp>/ipmp-lab``; it is private to
its owner (mode 0700) and may not be under the real /etc or /run.  The state
file is replaced atomically, so a reader never needs the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ipmp.lab.errors import LabError
from ipmp.lab.plan import NetworkPlan
from ipmp.lab.procs import Proc

__all__ = [
    "DEFAULT_NAME",
    "LAB_DIR_ENV",
    "STATE_FILE",
    "LabState",
    "labs_dir",
    "load_state",
    "lock",
    "private_dir",
    "save_state",
    "validate_name",
]

#: Where labs live, when set; else ``<tmp>/ipmp-lab``.
LAB_DIR_ENV = "IPMP_LAB_DIR"
DEFAULT_NAME = "default"
STATE_FILE = "lab.json"
STATE_VERSION = 1
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


def validate_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise LabError(f"invalid lab name {name!r}: use letters, digits, '.', '_' or '-' (40 at most)")
    return name


def labs_dir() -> Path:
    value = os.environ.get(LAB_DIR_ENV, "")
    return Path(value) if value else Path(tempfile.gettempdir()) / "ipmp-lab"


def private_dir(path: Path) -> Path:
    """``path`` as a directory only we can use; refuses anything planted there.

    The default lives in the world-writable temporary directory, where
    another user could have created it first, or made it a symlink.
    """
    resolved = path.resolve()
    for system in (Path("/etc"), Path("/run")):
        if resolved.is_relative_to(system):
            raise LabError(f"{path}: labs never live under the real {system}; set {LAB_DIR_ENV} elsewhere")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not path.is_dir() or path.is_symlink():
        raise LabError(f"{path}: not a directory")
    if st.st_uid != os.geteuid():
        raise LabError(f"{path}: owned by uid {st.st_uid}, not by us; set {LAB_DIR_ENV} elsewhere")
    if st.st_mode & 0o022:
        raise LabError(f"{path}: writable by others; set {LAB_DIR_ENV} elsewhere")
    return path


@dataclass
class LabState:
    name: str
    prefix: str
    source: str
    root: str
    log: str
    namespaces: dict[str, str]  # role -> namespace name
    nics: list[str]
    ports: dict[str, str] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    status: str = "building"  # building -> up
    created: str = ""
    wrapper: Proc | None = None
    daemon: Proc | None = None
    link_failed: list[str] = field(default_factory=list)
    silent_failed: list[str] = field(default_factory=list)
    router_down: bool = False
    version: int = STATE_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LabState:
        if doc.get("version") != STATE_VERSION:
            raise LabError(f"lab state version {doc.get('version')!r} is not {STATE_VERSION}")
        values = dict(doc)
        for key in ("wrapper", "daemon"):
            proc = values.get(key)
            values[key] = Proc(int(proc["pid"]), proc.get("start")) if proc else None
        return cls(**values)

    @property
    def network(self) -> NetworkPlan:
        return NetworkPlan.from_json(self.plan)


def save_state(directory: Path, state: LabState) -> None:
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(tmp, directory / STATE_FILE)


def load_state(directory: Path) -> LabState:
    try:
        doc = json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {directory.name!r} (looked in {directory.parent})") from None
    except (OSError, ValueError) as err:
        raise LabError(f"{directory / STATE_FILE}: {err}") from None
    try:
        return LabState.from_json(doc)
    except (TypeError, KeyError, ValueError) as err:
        raise LabError(f"{directory / STATE_FILE}: not a lab state file ({err})") from None


def lock(directory: Path, *, shared: bool) -> int:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LabError(
            f"lab {directory.name!r} is busy: another ipmp-lab (up, drill, down, ...) is working on it"
        ) from None
    return fd
