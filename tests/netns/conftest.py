"""Fixtures for tests that run on the real kernel inside network namespaces.

Everything under tests/netns gets the ``netns`` marker, so ``-m "not netns"``
selects the unprivileged suite.  Without root or working namespaces these
tests are skipped -- except under CI (the ``CI`` environment variable set to
anything but ``0``/``false``/``no``), where a missing capability must not hide
a whole suite behind green skips, so they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import unprivileged
from mpathd_harness import MakeLab, MpathdLab

from ipmp.lab.addressing import unique_prefix
from ipmp.lab.topology import Topology
from ipmp.lab.wiring import build
from tests.ci import missing

HERE = Path(__file__).resolve().parent

MakeTopology = Callable[..., Topology]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the items of the whole session, not just this directory.
    for item in items:
        if Path(item.path).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.netns)


def _netns_problem() -> str | None:
    """Why namespace tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, raw sockets)"
    if shutil.which("ip") is None:
        return "iproute2 'ip' command not found"
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        return f"'ip netns list' failed: {listing.stderr.strip()}"
    # Listing works even where creating does not (e.g. a container without
    # CAP_SYS_ADMIN), so really create and delete one -- under a unique name.
    probe = unique_prefix("chk")
    try:
        add = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
        if add.returncode != 0:
            return f"cannot create a network namespace: {add.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    return None


@pytest.fixture(scope="session", autouse=True)
def netns_support() -> None:
    """Skip (or under CI, fail) every test here when namespaces are unavailable."""
    problem = _netns_problem()
    if problem is None:
        return
    missing(f"netns tests cannot run: {problem}")


@pytest.fixture
def make_topology(netns_support: None) -> Iterator[MakeTopology]:
    """Factory: ``make_topology(nics=(...), **build_kwargs)``; all are destroyed afterwards."""
    made: list[Topology] = []

    def make(nics: Sequence[str] = ("nic0", "nic1"), **kwargs: Any) -> Topology:
        topo = build(unique_prefix(), nics, **kwargs)
        made.append(topo)
        return topo

    try:
        yield make
    finally:
        errors: list[Exception] = []
        for topo in reversed(made):
            try:
                topo.destroy()
            except Exception as exc:  # destroy the others before reporting
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session", autouse=True)
def nobody_installation() -> Iterator[None]:
    """Removes, at the end of the session, what ``unprivileged.nobody_python()`` installed."""
    try:
        yield
    finally:
        unprivileged.remove()


@pytest.fixture
def public_lab(make_topology: MakeTopology) -> Iterator[MpathdLab]:
    """The active-active example booted in a world-traversable root, in.mpathd not started.

    pytest's ``tmp_path`` is private to root; here ``nobody`` reaches
    ``run/ipmp`` and the control socket, as any local user does on a real host.
    Its programs come from ``unprivileged.nobody_python()``: the checkout may be
    where ``nobody`` cannot read.
    """
    top = unprivileged.public_tempdir("ipmp-public-")
    try:
        lab = MpathdLab(make_topology(nics=("qfe0", "qfe1")), top, "active-active")
        lab.root.chmod(0o755)
        try:
            lab.boot()
            yield lab
        finally:
            lab.close()
    finally:
        shutil.rmtree(top)


@pytest.fixture
def topology(make_topology: MakeTopology) -> Topology:
    """A fresh topology with host NICs nic0 and nic1."""
    return make_topology()


@pytest.fixture
def lab_nics() -> Mapping[str, Sequence[str]]:
    """Example root -> the host NICs its hostname files name, for ``make_lab``.

    A test module that boots other examples overrides this with its own table.
    """
    return {"active-active": ("qfe0", "qfe1")}


@pytest.fixture
def make_lab(make_topology: MakeTopology, lab_nics: Mapping[str, Sequence[str]],
             tmp_path: Path) -> Iterator[MakeLab]:
    """``make_lab(example, **MpathdLab kwargs)``: a fresh topology with the example booted.

    The topology's host NICs are ``lab_nics[example]``; in.mpathd is not started.
    """
    labs: list[MpathdLab] = []

    def make(example: str = "active-active", **kwargs: Any) -> MpathdLab:
        topo = make_topology(nics=lab_nics[example])
        lab = MpathdLab(topo, tmp_path, example, **kwargs)
        labs.append(lab)
        lab.boot()
        return lab

    try:
        yield make
    finally:
        # Before the topology goes: SIGTERM to our daemons, then it kills by PID.
        for lab in labs:
            lab.close()
