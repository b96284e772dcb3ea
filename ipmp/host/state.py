"""The state store: what Linux has no flag for, under ``<root>/run/ipmp/``.

Group membership, NOFAILOVER, STANDBY, DEPRECATED on IPv4, FAILED/OFFLINE,
IPv6 logical unit numbers, down logical interfaces, each address's home
interface, the plumbed families, and the default routers applied at boot.
``ifconfig``, ``ipmp-boot`` and ``in.mpathd`` share this one truth; the kernel
stays the truth for links and addresses (``view.merge`` reconciles the two).

Writes are atomic (write a temporary file, fsync, rename), so a reader
never needs the lock; every read-modify-write happens under an exclusive
``flock`` on ``run/ipmp/lock``, held by ``Store.locked()`` for the whole of a
command's apply.

Who may take that lock: only its owner (root).  ``flock`` needs nothing but
an open file descriptor, and a file anyone can open read-only is a lock
anyone can hold forever; a local user who held it froze in.mpathd's
failover and every ifconfig (issue 20).  So the directory is 0755, the lock
0600 (an older, wider lock file is narrowed when it is next opened) and
``state.json`` 0644 (``ifconfig -a`` and ``ipmpstat`` read it as anyone).
The daemon never waits on the lock: ``try_lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, ip_address, ip_interface
from typing import TYPE_CHECKING, Any

from ipmp.errors import StateError
from ipmp.host.altroot import root_file
from ipmp.model import Family, Interface, IPAddress, Logical

if TYPE_CHECKING:
    from pathlib import Path

STATE_VERSION = 1
STATE_DIR = "run/ipmp"
#: Modes of what the store creates (see the module docstring for why).
DIR_MODE = 0o755
LOCK_MODE = 0o600
FILE_MODE = 0o644


@dataclass(frozen=True)
class Stored:
    """The contents of the state store."""

    interfaces: tuple[Interface, ...] = ()
    defaultrouters: tuple[IPAddress, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Interface | None:
        for itf in self.interfaces:
            if itf.name == name:
                return itf
        return None

    def with_interfaces(self, interfaces: tuple[Interface, ...]) -> Stored:
        names = {i.name for i in interfaces}
        keep = tuple(i for i in self.interfaces if i.name not in names)
        merged = tuple(sorted(keep + tuple(i for i in interfaces if i.plumbed), key=lambda i: i.name))
        return Stored(merged, self.defaultrouters, self.extra)


# -- (de)serialisation --------------------------------------------------------


def _logical_to_json(lg: Logical) -> dict[str, Any]:
    # A kernel-owned address (the IPv6 link-local on inet6 unit 0) is the
    # kernel's: only its flags (NOFAILOVER, UP) are ours to keep.  Storing the
    # address would make it look like one the toolkit added and must restore.
    address = lg.address if not lg.kernel_owned else None
    return {
        "family": int(lg.family),
        "unit": lg.unit,
        "address": str(address) if address is not None else None,
        "up": lg.up,
        "broadcast": str(lg.broadcast) if lg.broadcast is not None else None,
        "destination": str(lg.destination) if lg.destination is not None else None,
        "deprecated": lg.deprecated,
        "nofailover": lg.nofailover,
        "home": lg.home,
        "home_unit": lg.home_unit,
        "mtu": lg.mtu,
        "ipmp_unit": lg.ipmp_unit,
        "addrobj": lg.addrobj,
    }


def _logical_from_json(d: dict[str, Any]) -> Logical:
    bcast = d.get("broadcast")
    dest = d.get("destination")
    addr = d.get("address")
    return Logical(
        family=Family(int(d["family"])),
        unit=int(d["unit"]),
        address=ip_interface(addr) if addr else None,
        up=bool(d.get("up", False)),
        broadcast=IPv4Address(bcast) if bcast else None,
        destination=ip_address(dest) if dest else None,
        deprecated=bool(d.get("deprecated", False)),
        nofailover=bool(d.get("nofailover", False)),
        home=str(d.get("home", "")),
        home_unit=d.get("home_unit"),
        mtu=int(d["mtu"]) if d.get("mtu") is not None else None,
        ipmp_unit=int(d["ipmp_unit"]) if d.get("ipmp_unit") is not None else None,
        addrobj=str(d.get("addrobj", "")),
    )


def _interface_to_json(itf: Interface) -> dict[str, Any]:
    # An IPMP interface has no Linux link: its kind and the index the toolkit
    # gave it live only here; a NIC's index is the kernel's, never stored.
    return {
        "name": itf.name,
        "plumbed": sorted(int(f) for f in itf.plumbed),
        "metric": itf.metric,
        "group": itf.group,
        "standby": itf.standby,
        "failed": itf.failed,
        "offline": itf.offline,
        "held_inactive": itf.held_inactive,
        # kernel-owned addresses (IPv6 link-local) are the kernel's; only
        # their flags matter, kept on the unit-0 record.
        "logicals": [_logical_to_json(lg) for lg in itf.logicals],
    } | ({"ipmp": True, "index": itf.index} if itf.ipmp else {}) | (
        # ``allow-xprobe`` (ipadm, Solaris 11.4): a fact of the IPMP interface only.
        {"allow_xprobe": itf.allow_xprobe} if itf.ipmp or itf.allow_xprobe != "inherit" else {})


def _interface_from_json(d: dict[str, Any]) -> Interface:
    return Interface(
        name=str(d["name"]),
        plumbed=frozenset(Family(int(f)) for f in d.get("plumbed", [])),
        metric=int(d.get("metric", 0)),
        group=str(d.get("group", "")),
        standby=bool(d.get("standby", False)),
        failed=bool(d.get("failed", False)),
        offline=bool(d.get("offline", False)),
        held_inactive=bool(d.get("held_inactive", False)),
        ipmp=bool(d.get("ipmp", False)),
        index=int(d.get("index", 0)),
        allow_xprobe=str(d.get("allow_xprobe", "inherit")),
        logicals=tuple(_logical_from_json(x) for x in d.get("logicals", [])),
    )


def dumps(stored: Stored) -> str:
    doc = {
        "version": STATE_VERSION,
        "interfaces": [_interface_to_json(i) for i in stored.interfaces],
        "defaultrouters": [str(r) for r in stored.defaultrouters],
        "extra": stored.extra,
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def loads(text: str) -> Stored:
    try:
        doc = json.loads(text)
        if doc.get("version") != STATE_VERSION:
            raise StateError(f"state store version {doc.get('version')!r} is not {STATE_VERSION}")
        return Stored(
            interfaces=tuple(_interface_from_json(x) for x in doc.get("interfaces", [])),
            defaultrouters=tuple(ip_address(r) for r in doc.get("defaultrouters", [])),
            extra=dict(doc.get("extra", {})),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise StateError(f"state store is unreadable: {err}") from None


# -- the store on disk ----------------------------------------------------------


def make_dir(path: str | os.PathLike[str]) -> None:
    """``run/ipmp`` (or another directory of ours) with DIR_MODE, not the umask's idea of it."""
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        os.chmod(path, DIR_MODE)


def open_lock(path: str | os.PathLike[str]) -> int:
    """A lock file's descriptor, made or narrowed to LOCK_MODE, so that only its owner can flock it.

    Raises OSError when it cannot be opened.  A lock file of an older
    version (0644: anyone could open it and hold the lock) is narrowed here.
    """
    make_dir(os.path.dirname(path) or ".")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, LOCK_MODE)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o7777 != LOCK_MODE and st.st_uid == os.geteuid():
            os.fchmod(fd, LOCK_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


class Store:
    """``<root>/run/ipmp/state.json`` with its lock.

    ``root`` may be a string: ``ifconfig -a``, which scripts run in loops,
    reads the store without loading ``pathlib`` (``dir``, ``path`` and
    ``lock_path`` are made when first asked for, as the same ``Path`` as ever).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = root
        self._dir = root_file(root, STATE_DIR)
        self._path = root_file(self._dir, "state.json")
        self._lock_path = root_file(self._dir, "lock")

    @cached_property
    def dir(self) -> Path:
        from pathlib import Path  # not at the top: status reads never load pathlib (test_startup)

        return Path(self._dir)

    @cached_property
    def path(self) -> Path:
        from pathlib import Path  # not at the top: status reads never load pathlib (test_startup)

        return Path(self._path)

    @cached_property
    def lock_path(self) -> Path:
        from pathlib import Path  # not at the top: status reads never load pathlib (test_startup)

        return Path(self._lock_path)

    def load(self) -> Stored:
        try:
            with open(self._path) as fh:
                text = fh.read()
        except FileNotFoundError:
            return Stored()
        except OSError as err:
            raise StateError(f"{self.path}: {err.strerror}") from None
        return loads(text)

    def _make_dir(self) -> None:
        make_dir(self._dir)

    def save(self, stored: Stored) -> None:
        # One name, not one per process: writers hold the exclusive lock, so
        # two never write at once, and what a writer killed mid-save left
        # behind is overwritten by the next save instead of piling up.
        tmp = self.path.with_name(".state.tmp")
        try:
            self._make_dir()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
            with open(fd, "w") as fh:
                os.fchmod(fd, FILE_MODE)
                fh.write(dumps(stored))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StateError(f"{self.path}: {err.strerror}") from None

    def _open_lock(self) -> int:
        return open_lock(self._lock_path)

    @contextlib.contextmanager
    def locked(self, *, exclusive: bool = True) -> Iterator[None]:
        """Hold the store lock, waiting for it; a reader that cannot open the lock reads unlocked.

        For the commands (ifconfig, ipmp-boot), which may wait for each
        other; the daemon uses ``try_lock``.
        """
        try:
            fd = self._open_lock()
        except OSError as err:
            if not exclusive:
                yield
                return
            raise StateError(f"{self.lock_path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def try_lock(self, *, exclusive: bool = True) -> StoreLock | None:
        """Take the lock without waiting: the held lock, or None while another holds it.

        Raises ``StateError`` when the lock cannot be opened at all (``run``
        read-only or full): the caller decides whether to go on without it.
        """
        try:
            fd = self._open_lock()
        except OSError as err:
            raise StateError(f"{self.lock_path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as err:
            os.close(fd)
            raise StateError(f"{self.lock_path}: {err.strerror}") from None
        return StoreLock(fd)


class StoreLock:
    """A held store lock (``Store.try_lock``); ``release`` (or leaving a ``with``) lets it go."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
