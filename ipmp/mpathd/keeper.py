"""in.mpathd's side of the state store: read, polled, written, never waited on for long.

The daemon never blocks on the store and never stops for it (issue 20): the
lock is taken without waiting (a bounded, polled wait for an apply), a read
that fails falls back on the last good one, and a write that fails is kept
in memory (``unsaved``) and tried again, while failure detection and
failover go on from the machine's own state.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from ipmp.errors import StateError
from ipmp.host.state import Store, Stored, StoreLock
from ipmp.model import Interface, IPAddress

#: How often the state store's mtime is looked at (s): ifconfig and
#: ipmp-boot changes (a group, a flag) reach the daemon within this.
STORE_POLL_INTERVAL = 0.5
#: How long an apply waits at most for the state store's lock, held by a
#: command of root's (ifconfig, ipmp-boot) that is changing the kernel, and
#: how often it looks (s).  The wait is an asyncio sleep: probes and the
#: control socket go on.  Only root can hold that lock (``ipmp.host.state``); a
#: command holds it for milliseconds (its IPv6 DAD wait is outside it).
#: Past the wait the apply goes ahead without the lock and the store write
#: waits instead: a data address is never left on a dead NIC for a lock.
STORE_LOCK_WAIT = 0.5
STORE_LOCK_POLL = 0.01
#: At most one "cannot record" line in this long (s) while the state store
#: cannot be written; the write is tried again at every store poll.
STORE_COMPLAINT_INTERVAL = 60.0

#: A store file as a stat tells it: inode, mtime (ns), size.
Version = tuple[int, int, int]


def _now() -> float:
    return time.monotonic()


class StoreKeeper:
    """The daemon's copy of the state store and what it could not write yet."""

    def __init__(self, root: Path, log: Callable[[str, str], None]) -> None:
        self.store = Store(root)
        self.log = log
        # The store file as the polls last saw it (``poll``): a new one wants a rescan.
        self.seen: Version | None = None
        # What the state store does not have yet, because it could not be
        # written (read-only or full run, or a command held the lock): by
        # NIC, written at the next store poll that can; rescans see it.
        self.unsaved: dict[str, Interface] = {}
        self.failures = 0
        self._complained_at: float | None = None
        # The last store read that worked (a store that cannot be read is
        # complained of and this is used instead), and the file it was read from.
        self.stored = Stored()
        self.stored_version: Version | None = (-1, -1, -1)

    async def lock(self) -> StoreLock | None:
        """The store lock for an apply, waited for at most STORE_LOCK_WAIT; None to go on without it."""
        deadline = _now() + STORE_LOCK_WAIT
        while True:
            try:
                lock = self.store.try_lock()
            except StateError:
                return None  # cannot even be opened: the write will say so
            if lock is not None:
                return lock
            if _now() >= deadline:
                self.log("debug", f"the state store lock is still held after {STORE_LOCK_WAIT:g} s: "
                                  "applying without it, recording later")
                return None
            await asyncio.sleep(STORE_LOCK_POLL)

    def routers(self) -> tuple[IPAddress, ...]:
        """The default routers for an apply: from the last store read, unless the file is another since.

        A stat, not a read and a parse of the whole store, before the data
        path of a move.  Every save replaces the file (a new inode), so the
        inode, size and mtime tell a new version even within one tick of a
        coarse clock; only the routers are taken from the copy (a move's
        layout comes from the machine, never from a kept store).
        """
        if self.version() != self.stored_version:
            return self.load().defaultrouters
        return self.stored.defaultrouters

    def version(self) -> Version | None:
        try:
            st = os.stat(self.store.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def load(self) -> Stored:
        """The store as written, with what the daemon could not write yet; the last good read on error."""
        version = self.version()  # before the read: a newer file reads again next time
        try:
            self.stored = self.store.load()
            self.stored_version = version
        except StateError as err:
            self._trouble(f"cannot read the state store: {err}")
        if self.unsaved:
            return self.stored.with_interfaces(tuple(self.unsaved.values()))
        return self.stored

    def flush(self, held: StoreLock | None = None) -> None:
        """Write what the store does not have yet (under ``held``, or a lock taken without waiting)."""
        if not self.unsaved:
            return
        try:
            lock = held if held is not None else self.store.try_lock()
            if lock is None:
                return  # a command of root's holds it: the next store poll
            try:
                stored = self.store.load().with_interfaces(tuple(self.unsaved.values()))
                self.store.save(stored)
            finally:
                if held is None:
                    lock.release()
        except StateError as err:
            self._trouble(f"cannot record the state of {', '.join(sorted(self.unsaved))}: {err}")
            return
        self.stored = stored
        self.stored_version = self.seen = self.version()
        self.unsaved.clear()
        if self.failures:
            self.log("err", f"recorded the state in {self.store.path} again after "
                            f"{self.failures} failed attempt(s)")
            self.failures = 0
            self._complained_at = None

    def poll(self) -> bool:
        """Whether ifconfig or ipmp-boot changed the store (a group, a flag, an address) since last seen."""
        version = self.version()
        if version == self.seen:
            return False
        self.seen = version
        return True

    def _trouble(self, message: str) -> None:
        """Log a store failure, once per STORE_COMPLAINT_INTERVAL (a full disk must not flood the journal)."""
        self.failures += 1
        now = _now()
        if self._complained_at is None or now - self._complained_at >= STORE_COMPLAINT_INTERVAL:
            self._complained_at = now
            self.log("err", f"{message}; failure detection and failover go on from memory, "
                            f"the store is tried again every {STORE_POLL_INTERVAL:g} s")
