"""What the commands scripts call in loops import (issue 15, point 7).

Porting scripts run ``ifconfig IF`` per interface, and ``ifconfig -a`` or
``ipmpstat -i``, every few seconds; what such a run costs is mostly what it
imports.  These tests run each command to completion in a fresh interpreter
and look at ``sys.modules`` afterwards: a read must not load what only
changes need (the session with its boot steps and hostname-file parser, the
planner, pyroute2, asyncio, PLY), nor, for ``ipmpstat``, the data model,
the ifconfig parser, or the daemon's side of the control protocol (its
asyncio server: asyncio alone pulls in ssl, logging, subprocess and
concurrent.futures, a third of what ``ipmpstat -i`` used to import).
Behaviour, not timing: the figures are the ``ifconfig`` benchmark's
(bench/ifconfig.py, BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipmp.cli.if_mpadm import MSG_NO_DAEMON
from ipmp.mpathd import control, ipc
from ipmp.mpathd.control import Reply
from tests.unit.test_if_mpadm import write_state
from tests.unit.test_ipmpstat import DEGRADED, GOLDEN, FakeDaemon

REPO = Path(__file__).resolve().parents[2]

#: Never on any read path: what only commands that change something need.
WRITE_ONLY = ("pyroute2", "asyncio", "ply", "click", "ipmp.apply", "ipmp.linux.plan", "ipmp.linux.ops",
              "ipmp.linux.desired", "ipmp.admin.session", "ipmp.admin.command", "ipmp.admin.bootfiles",
              "ipmp.config.bootsteps", "ipmp.host.hostfiles", "ipmp.host.lookups", "ipmp.config.grammar",
              "ipmp.config.grammar_tables", "ipmp.config.handlers", "ipmp.config.folder")
#: ``ipmpstat`` prints what in.mpathd answers: it needs no kernel view at all.
IPMPSTAT_NEVER = ("ipmp.model", "ipmp.config.parse", "ipmp.config.commands", "ipmp.config.keywords",
                  "ipmp.config.evaluate", "ipmp.kernel", "ipmp.host.state", "ipmp.linux.view",
                  "ipmp.host.hostfiles", "ply", "pyroute2")
#: The daemon's half of the control protocol: a client speaks it with
#: ``ipmp.mpathd.control`` (blocking, one socket) and loads none of this.
SERVER_ONLY = ("asyncio", "ipmp.mpathd.ipc", "ipmp.mpathd.runtime", "ssl", "logging", "concurrent",
               "subprocess")
#: Not on the read path of ``ifconfig`` either: the store, the interface map
#: and the evaluator name their files with ``altroot.root_file`` (``pathlib``
#: with ``urllib.parse`` was a quarter of a ``python -c pass``).
STATUS_NEVER = ("pathlib", "urllib", "fnmatch")
#: What ``ipmpstat`` and the control client no longer load, each a real share
#: of their start-up (BENCHMARKS.md): ``dataclasses`` with ``inspect``, ``ast``
#: and ``dis`` (their records are written out, ``Position`` too); ``pathlib``
#: with ``urllib.parse`` and ``ipaddress`` (the root is a string);
#: ``typing`` with ``contextlib`` and ``warnings`` (annotations only, the
#: records' NamedTuple syntax on ``collections.namedtuple``); the ``socket``
#: wrapper with its enum conversions and ``selectors`` (``_socket`` is
#: enough for one Unix stream socket).
CLIENT_NEVER = ("dataclasses", "inspect", "ast", "dis", "pathlib", "urllib", "ipaddress", "typing",
                "contextlib", "socket", "selectors")

# Runs ``main`` of a command module as its console script does, then records
# what is loaded at that moment (before importing json to write it down).
_DRIVER = """
import sys
from {module} import main
status = main(sys.argv[2:])
sys.stdout.flush()
loaded = sorted(sys.modules)
import json
with open(sys.argv[1], "w") as fh:
    json.dump({{"status": status, "modules": loaded}}, fh)
"""


def _run(module: str, args: list[str], root: Path, tmp_path: Path, *,
         no_site: bool = False) -> tuple[int, str, str, list[str]]:
    """(exit status, stdout, stderr, modules loaded when ``main`` returned) of one run.

    ``no_site``: without the ``site`` module (``-S``), so that what an
    editable install's import hook loads at start-up (``pathlib``,
    ``typing``, ...) does not hide what the command itself loads; a wheel
    install has no such hook.
    """
    record = tmp_path / "modules.json"
    env = dict(os.environ, IPMP_ROOT=str(root), PYTHONPATH=str(REPO), SUNW_NO_MPATHD="1")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    flags = ["-S"] if no_site else []
    done = subprocess.run([sys.executable, *flags, "-c", _DRIVER.format(module=module), str(record), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    doc = json.loads(record.read_text())
    return int(doc["status"]), done.stdout, done.stderr, [str(m) for m in doc["modules"]]


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages count with their submodules) are among ``modules``."""
    return sorted({n for n in names for m in modules if m == n or m.startswith(n + ".")})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def test_ifconfig_a_reads_without_what_changes_need(root: Path, tmp_path: Path) -> None:
    status, out, err, modules = _run("ipmp.cli.ifconfig", ["-a"], root, tmp_path, no_site=True)
    assert (status, err) == (0, "")
    # The loopback is always there: the read really went to the kernel.
    assert out.startswith("lo")
    assert "ipmp.admin.status" in modules
    assert _loaded(modules, WRITE_ONLY + STATUS_NEVER) == []


def test_ifconfig_of_one_interface_reads_without_what_changes_need(root: Path, tmp_path: Path) -> None:
    listing = _run("ipmp.cli.ifconfig", ["-a"], root, tmp_path)[1]
    first = listing.split(":", 1)[0]  # the loopback, by the name ifconfig shows it under
    status, out, err, modules = _run("ipmp.cli.ifconfig", [first], root, tmp_path, no_site=True)
    assert (status, err) == (0, "")
    assert out.startswith(f"{first}: flags=")
    assert _loaded(modules, WRITE_ONLY + STATUS_NEVER) == []


def test_ifconfig_status_errors_take_the_same_path(root: Path, tmp_path: Path) -> None:
    # An unknown interface is the evaluator's error, found on the read path.
    status, out, err, modules = _run("ipmp.cli.ifconfig", ["ipmpnosuch0"], root, tmp_path)
    assert (status, out, err) == (1, "", "ifconfig: status: SIOCGLIFFLAGS: ipmpnosuch0: no such interface\n")
    assert _loaded(modules, WRITE_ONLY) == []


def test_a_status_read_reads_no_name_service_file(root: Path, tmp_path: Path) -> None:
    # Solaris ifconfig looks nothing up to show status: a defaultrouter line
    # naming no host, or a hosts file it may not read, is ipmp-boot's error,
    # not one of ``ifconfig -a`` (which used to fail here).
    etc = root / "etc"
    etc.mkdir()
    (etc / "defaultrouter").write_text("no-such-router\n")
    status, out, err, _ = _run("ipmp.cli.ifconfig", ["-a"], root, tmp_path)
    assert (status, err) == (0, "")
    assert out.startswith("lo")


@pytest.fixture
def daemon(root: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(root, Reply(data=DEGRADED))
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.mark.parametrize("mode", ["i", "g", "a", "t"])
def test_ipmpstat_asks_the_daemon_and_loads_no_kernel_view(daemon: FakeDaemon, root: Path, tmp_path: Path,
                                                          mode: str) -> None:
    status, out, err, modules = _run("ipmp.cli.ipmpstat", [f"-{mode}"], root, tmp_path, no_site=True)
    assert (status, out, err) == (0, GOLDEN["DEGRADED", mode], "")
    assert _loaded(modules, IPMPSTAT_NEVER) == []
    assert "ipmp.mpathd.control" in modules  # it did ask the daemon
    assert _loaded(modules, SERVER_ONLY) == []
    assert _loaded(modules, CLIENT_NEVER) == []
    # Plain output when not on a terminal: rich is for colour only.
    assert _loaded(modules, ("rich",)) == []


def test_ipmpstat_without_a_daemon_loads_no_server_either(root: Path, tmp_path: Path) -> None:
    # The error path (nothing listens) takes the same client: a script's loop
    # while in.mpathd is down costs no more than while it is up.
    status, out, err, modules = _run("ipmp.cli.ipmpstat", ["-i"], root, tmp_path, no_site=True)
    assert (status, out) == (1, "")
    assert err == "ipmpstat: cannot contact in.mpathd(1M) -- is IPMP in use?\n"
    assert _loaded(modules, SERVER_ONLY + CLIENT_NEVER) == []


def test_if_mpadm_asks_the_daemon_without_the_parser_or_the_server(root: Path, tmp_path: Path) -> None:
    # if_mpadm reads the store (is the NIC offline already?) and asks the
    # daemon: the ifconfig parser and the hostname files are none of its
    # business (it took them in with ``root_path`` from ``ipmp.host.hostfiles``).
    write_state(root)
    status, out, err, modules = _run("ipmp.cli.if_mpadm", ["-d", "hme0"], root, tmp_path)
    assert (status, out) == (1, "")
    assert MSG_NO_DAEMON in err  # it got as far as asking
    assert "ipmp.mpathd.control" in modules
    never = ("ipmp.config.parse", "ipmp.config.keywords", "ipmp.config.commands", "ipmp.host.hostfiles",
             "ipmp.config.evaluate")
    assert _loaded(modules, WRITE_ONLY + never + SERVER_ONLY) == []


def test_the_client_module_alone_loads_no_server(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # Recorded before json is imported to write it down (the codec loads json anyway).
    code = ("import sys, ipmp.mpathd.control; loaded = sorted(sys.modules); import json; "
            "print(json.dumps(loaded))")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    assert _loaded(json.loads(done.stdout), SERVER_ONLY + CLIENT_NEVER) == []


def test_the_client_records_behave_as_frozen_records() -> None:
    # Request and Reply were frozen dataclasses: written out by hand they must
    # still compare by value and type, hash, copy and refuse assignment.
    import copy
    import pickle

    from ipmp.errors import Position

    assert Reply(data={"v": 1}) == Reply(0, 0, {"v": 1}) != Reply(1)
    assert Reply().data == {} and Reply().data is not Reply().data
    assert control.Request("ping") == control.Request("ping", "", 1, "")
    assert control.Request("ping") != ("ping", "", 1, "")
    assert len({control.Request("offline", "hme0"), control.Request("offline", "hme0", 1)}) == 1
    assert repr(control.Request("query")) == "Request(op='query', ifname='', min_redundancy=1, topic='')"
    for record in (control.Request("subscribe", topic="probes"), Reply(4, 2, {"x": [1]}),
                   Position("hostname.hme0", 2, 3)):
        assert copy.deepcopy(record) == record
        assert pickle.loads(pickle.dumps(record)) == record
        with pytest.raises(AttributeError, match="cannot assign to field"):
            record.__setattr__(record.__match_args__[0], None)
    assert Position("f", 1, 2) == Position("f", 1, 2) != Position("f", 1, 3)
    assert hash(Position("f", 1, 2)) == hash(Position("f", 1, 2))
    assert repr(Position("", 0, 4)) == "Position(source='', line=0, col=4)"
    assert str(Position("", 0, 4)) == "argument 4" and str(Position("f", 1, 2)) == "f:1:2"


def test_each_protocol_name_has_one_home_the_server_re_exports_neither_client_nor_codec() -> None:
    # The codec's names are ``protocol``'s, the client's ``control``'s: a caller of the server
    # package that wanted one of them would reach it through the server, which loads asyncio.
    assert not set(ipc.__all__) & set(control.__all__)
    assert {"call", "socket_path", "Reply", "ProtocolError"} <= set(control.__all__)
    for name in ipc.__all__:
        assert hasattr(ipc, name), name


_ROOTS = ("/", "", ".", "/srv/lab", "/srv/lab/", "//srv", "///srv", "/a//b/./c", "rel", "rel/../x", "./a",
          "/..", "a/.", "//", "///", "/./", "./")
_RELATIVES = ("run/ipmp/state.json", "etc/ipmp/ifmap", "", ".", "a/../b", "/abs/x", "//abs", "x/")


@pytest.mark.parametrize("root", [*_ROOTS, Path("/srv/lab"), Path("rel")])
def test_files_under_a_root_are_named_as_pathlib_names_them(root: str | Path) -> None:
    # The store and the map are read without pathlib, but their messages
    # (``<root>/run/ipmp/state.json: Permission denied``) name the same text.
    from pathlib import PurePath, PurePosixPath

    from ipmp.config.addresses import file_name
    from ipmp.host.altroot import root_file

    for relative in _RELATIVES:
        assert root_file(root, relative) == str(PurePosixPath(root, relative)), (root, relative)
    assert file_name(str(root)) == PurePath(root).name
    assert file_name(f"{root}/hostname.hme0") == "hostname.hme0"


def test_the_store_takes_its_root_as_a_string_as_well(root: Path) -> None:
    # ``ifconfig -a`` hands the store the root as a string (no pathlib on its
    # read path); the daemon and ipmp-boot hand it a Path.  Same files, same lock.
    from ipmp.host.state import Store

    write_state(root)
    by_text, by_path = Store(str(root)), Store(root)
    assert (by_text.dir, by_text.path, by_text.lock_path) == (by_path.dir, by_path.path, by_path.lock_path)
    assert by_text.path == root / "run" / "ipmp" / "state.json"
    with by_text.locked(exclusive=False):
        assert by_text.load() == by_path.load() != Store(str(root / "elsewhere")).load()
    assert (by_path.lock_path.stat().st_mode & 0o7777, by_path.dir.stat().st_mode & 0o7777) == (0o600, 0o755)
