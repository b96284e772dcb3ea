"""The state store: serialisation, version check, atomic save, lock."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import fields, replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface, ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmp.errors import StateError
from ipmp.host.state import STATE_VERSION, Store, Stored, dumps, loads
from ipmp.model import Family, Interface, IPAddress, Logical, default_broadcast

INET = Family.INET
INET6 = Family.INET6

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=15)


@st.composite
def logicals(draw: st.DrawFn) -> Logical:
    family = draw(st.sampled_from([INET, INET6]))
    address: IPv4Interface | IPv6Interface | None = None
    broadcast: IPv4Address | None = None
    destination: IPAddress | None = None
    if draw(st.booleans()):
        if family is INET:
            v4 = IPv4Interface((int(IPv4Address("192.0.2.0")) + draw(st.integers(0, 255)),
                                draw(st.integers(8, 32))))
            address = v4
            broadcast = draw(st.sampled_from([default_broadcast(v4), None, IPv4Address("192.0.2.255")]))
        else:
            address = IPv6Interface((int(ip_address("2001:db8::")) + draw(st.integers(0, 2**64 - 1)),
                                     draw(st.integers(10, 128))))
        if draw(st.booleans()):
            destination = ip_address("192.0.2.1" if family is INET else "2001:db8::1")
    return Logical(
        family=family,
        unit=draw(st.integers(0, 50)),
        address=address,
        up=draw(st.booleans()),
        broadcast=broadcast,
        destination=destination,
        deprecated=draw(st.booleans()),
        nofailover=draw(st.booleans()),
        home=draw(st.one_of(st.just(""), NAMES)),
        home_unit=draw(st.one_of(st.none(), st.integers(0, 50))),
    )


@st.composite
def interfaces(draw: st.DrawFn) -> Interface:
    return Interface(
        name=draw(NAMES),
        plumbed=frozenset(draw(st.sets(st.sampled_from([INET, INET6])))),
        metric=draw(st.integers(0, 100)),
        group=draw(st.text(max_size=31)),
        standby=draw(st.booleans()),
        failed=draw(st.booleans()),
        offline=draw(st.booleans()),
        held_inactive=draw(st.booleans()),
        logicals=tuple(draw(st.lists(logicals(), max_size=4))),
    )


STORED = st.builds(
    Stored,
    interfaces=st.lists(interfaces(), max_size=4).map(tuple),
    defaultrouters=st.lists(
        st.sampled_from([ip_address("192.0.2.1"), ip_address("198.51.100.1"), ip_address("2001:db8::1")]),
        max_size=3,
    ).map(tuple),
    extra=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


@settings(max_examples=100, deadline=None)
@given(STORED)
def test_dumps_loads_round_trip(stored: Stored) -> None:
    text = dumps(stored)
    assert json.loads(text)["version"] == STATE_VERSION
    assert loads(text) == stored


#: Interface fields that are kernel facts, copied from the kernel on every read.
KERNEL_FACTS = {"index", "link_up", "running", "mtu", "mac", "noarp", "loopback", "pointopoint", "multicast",
                "router", "token"}


def _non_default(value: object) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 3
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, frozenset):
        return frozenset({INET, INET6})
    if value is None:
        return 7
    raise AssertionError(f"no non-default value for {value!r}")


def test_every_ipmp_fact_of_an_interface_is_stored() -> None:
    """A new Interface field that is not a kernel fact must reach the store."""
    base = Interface("qfe0", logicals=(Logical(INET, 1, IPv4Interface("192.0.2.10/24")),))
    changes = {
        f.name: _non_default(getattr(base, f.name))
        for f in fields(Interface)
        if f.name not in KERNEL_FACTS | {"name", "logicals"}
    }
    assert {"group", "standby", "failed", "offline", "plumbed", "metric"} <= changes.keys()
    itf = replace(base, **changes)
    assert loads(dumps(Stored((itf,)))).interfaces == (itf,)
    lg_changes = {
        f.name: _non_default(getattr(base.logicals[0], f.name))
        for f in fields(Logical)
        if f.name in ("up", "deprecated", "nofailover", "home", "home_unit", "mtu")
    }
    lg = replace(base.logicals[0], **lg_changes)
    assert loads(dumps(Stored((replace(base, logicals=(lg,)),)))).interfaces[0].logicals == (lg,)


def test_kernel_facts_are_not_stored() -> None:
    itf = Interface("qfe0", index=7, mtu=9000, mac="02:00:00:00:00:07", link_up=True)
    doc = json.loads(dumps(Stored((itf,))))
    assert set(doc["interfaces"][0]) & KERNEL_FACTS == set()
    assert loads(dumps(Stored((itf,)))).interfaces == (Interface("qfe0"),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        "null",
        '{"interfaces": []}',
        json.dumps({"version": STATE_VERSION - 1, "interfaces": []}),
        json.dumps({"version": STATE_VERSION + 1}),
        json.dumps({"version": STATE_VERSION, "interfaces": [{"plumbed": [4]}]}),
        json.dumps({"version": STATE_VERSION, "interfaces": [{"name": "qfe0", "plumbed": [5]}]}),
        json.dumps({"version": STATE_VERSION, "defaultrouters": ["nonsense"]}),
        json.dumps({"version": STATE_VERSION, "interfaces": [
            {"name": "qfe0", "logicals": [{"family": 4, "unit": 0, "address": "192.0.2.300/24"}]}]}),
    ],
    ids=["empty", "garbage", "list", "null", "no-version", "old-version", "new-version", "no-name",
         "bad-family", "bad-router", "bad-address"],
)
def test_unreadable_or_old_store_is_a_state_error(text: str) -> None:
    with pytest.raises(StateError):
        loads(text)


def test_old_version_error_names_the_version() -> None:
    with pytest.raises(StateError) as info:
        loads(json.dumps({"version": 0}))
    assert "0" in str(info.value) and str(STATE_VERSION) in str(info.value)


def test_store_load_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert Store(tmp_path).load() == Stored()


def test_store_load_of_garbage_is_a_state_error(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.dir.mkdir(parents=True)
    store.path.write_text("{ not json")
    with pytest.raises(StateError):
        store.load()
    store.path.unlink()
    store.path.mkdir()  # unreadable: a directory where the file should be
    with pytest.raises(StateError):
        store.load()


def sample() -> Stored:
    qfe0 = Interface(
        "qfe0",
        plumbed=frozenset({INET}),
        group="prod",
        logicals=(Logical(INET, 0, IPv4Interface("192.0.2.100/24"), up=True),),
    )
    qfe1 = Interface("qfe1", plumbed=frozenset({INET, INET6}), group="prod", standby=True)
    return Stored((qfe0, qfe1), (ip_address("192.0.2.1"),), {"note": "x"})


def test_with_interfaces_replaces_records_and_drops_unplumbed_ones() -> None:
    stored = sample()
    qfe1_gone = Interface("qfe1")  # unplumbed in every family
    qfe2 = Interface("qfe2", plumbed=frozenset({INET6}))
    new = stored.with_interfaces((qfe1_gone, qfe2))
    assert [i.name for i in new.interfaces] == ["qfe0", "qfe2"]
    assert new.get("qfe0") == stored.get("qfe0")
    assert new.get("qfe2") == qfe2
    assert (new.defaultrouters, new.extra) == (stored.defaultrouters, stored.extra)
    changed = replace(stored.interfaces[0], group="")
    assert stored.with_interfaces((changed,)).get("qfe0") == changed


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save(sample())
    assert store.path == tmp_path / "run" / "ipmp" / "state.json"
    assert sorted(p.name for p in store.dir.iterdir()) == ["state.json"]
    assert store.load() == sample()
    store.save(Stored())
    assert store.load() == Stored()
    assert sorted(p.name for p in store.dir.iterdir()) == ["state.json"]


def test_failed_save_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.dir.mkdir(parents=True)
    store.path.mkdir()  # rename onto a directory fails
    with pytest.raises(StateError):
        store.save(sample())
    assert sorted(p.name for p in store.dir.iterdir()) == ["state.json"]
    assert store.path.is_dir()


def test_locked_creates_the_lock_file_and_excludes_others(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.locked():
        assert (tmp_path / "run" / "ipmp" / "lock").is_file()
        fd = os.open(store.lock_path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(store.lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)


def test_shared_lock_admits_other_readers(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.locked(exclusive=False):
        fd = os.open(store.lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_lock_without_a_writable_root(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a directory")
    store = Store(root)
    with pytest.raises(StateError):
        with store.locked():
            pass
    with store.locked(exclusive=False):  # a reader goes on without the lock
        pass


def test_a_save_cut_short_leaves_nothing_behind_after_the_next(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.dir.mkdir(parents=True)
    (store.dir / ".state.tmp").write_text('{"version": ')  # a writer killed mid-save
    with store.locked():
        store.save(Stored())
    assert sorted(p.name for p in store.dir.iterdir()) == ["lock", "state.json"]
    assert store.load() == Stored()


def test_the_store_makes_its_files_with_explicit_modes_whatever_the_umask(tmp_path: Path) -> None:
    store = Store(tmp_path)
    old = os.umask(0o000)
    try:
        with store.locked():
            store.save(sample())
    finally:
        os.umask(old)
    assert store.dir.stat().st_mode & 0o777 == 0o755
    assert store.lock_path.stat().st_mode & 0o777 == 0o600  # only root can flock it
    assert store.path.stat().st_mode & 0o777 == 0o644  # ifconfig -a reads it as anyone


def test_a_lock_file_of_an_older_version_is_narrowed_when_next_opened(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.dir.mkdir(parents=True)
    store.lock_path.write_text("")
    store.lock_path.chmod(0o644)
    lock = store.try_lock()
    assert lock is not None
    lock.release()
    assert store.lock_path.stat().st_mode & 0o777 == 0o600


def test_the_lock_is_never_followed_through_a_symlink(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.dir.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    store.lock_path.symlink_to(elsewhere)
    with pytest.raises(StateError):
        store.try_lock()


def test_try_lock_never_waits(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.locked():
        fd = os.open(store.lock_path, os.O_RDWR)  # another process's view: a second open file
        os.close(fd)
        other = Store(tmp_path)
        assert other.try_lock() is None
        assert other.try_lock(exclusive=False) is None
    with other.try_lock(exclusive=False) as shared:
        assert shared is not None
        with Store(tmp_path).try_lock(exclusive=False) as second:
            assert second is not None  # readers share it
        assert Store(tmp_path).try_lock() is None


def test_try_lock_says_when_the_lock_cannot_be_opened(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a directory")
    with pytest.raises(StateError):
        Store(root).try_lock()
