"""The ``ipadm`` shell: argv in, text and exit status out.

The show subcommands run in-process on the real kernel's view and a real
(temporary) root; a change goes to ``ipmp.admin.ipadm.change``, replaced
here by a stand-in that records what it was asked.  As ``nobody`` (uid
65534, via ``setpriv``), a change is refused with Solaris' message before
anything is read or written, and the show subcommands still work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipmp import __version__
from ipmp.admin import ipadm as admin_ipadm
from ipmp.admin.ipadm import IpadmResult
from ipmp.cli.ipadm import main
from ipmp.config.ipadm_syntax import IpadmCommand
from tests.public_tmp import public_tempdir

NOBODY = 65534
SOURCE = Path(__file__).resolve().parents[2]
DB = "_ifname=net9;_family=2;_ifclass=0;\n_ifname=net9;_aobjname=net9/v4;_ipv4addr=192.0.2.9,;\n"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "etc" / "ipadm").mkdir(parents=True)
    (tmp_path / "etc" / "ipadm" / "ipadm.conf").write_text(DB, encoding="utf-8")
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path))
    return tmp_path


def test_show_if_reads_the_host_and_the_persistent_file(root: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-if", "-p", "-o", "ifname,class,state", "net9"]) == 0
    assert capsys.readouterr() == ("net9:ip:disabled\n", "")
    assert main(["show-if"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "IFNAME     CLASS    STATE    ACTIVE OVER"
    assert any(line.split()[1:3] == ["loopback", "ok"] for line in out)  # the host's own loopback


def test_show_addr_and_the_bare_listing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-addr", "-p", "-o", "addrobj,state,addr", "net9/v4"]) == 0
    assert capsys.readouterr().out == "net9/v4:disabled:192.0.2.9/32\n"
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "NAME              CLASS/TYPE STATE        UNDER      ADDR"
    assert out[-2:] == ["net9              ip         disabled     --         --",
                        "   net9/v4        static     disabled     --         192.0.2.9/32"]


def test_show_errors_and_warnings(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-if", "ipmpnosuch0"]) == 1
    assert capsys.readouterr() == ("", "ipadm: cannot get information for interface(s): No such interface\n")
    assert main(["show-ifprop", "-p", "mtu", "net9"]) == 1
    assert capsys.readouterr() == (
        "", "ipadm: warning: cannot get property 'mtu' for 'net9': Unknown property\n")


def test_a_broken_persistent_file_is_reported(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc" / "ipadm" / "ipadm.conf").write_text("_ifname net0;\n", encoding="utf-8")
    assert main(["show-if"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ipadm: ") and "ipadm.conf:1:" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr() == (f"ipadm (ipmp) {__version__}\n", "")


def test_usage_errors(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-if", "-p"]) == 1
    assert capsys.readouterr() == ("", "ipadm: -p requires -o\n")
    assert main(["frobnicate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ipadm: unknown subcommand 'frobnicate'\nusage:  ipadm <subcommand> <args> ...\n")


class StandIn:
    """``ipmp.admin.ipadm.change`` replaced: records the calls, answers as told."""

    def __init__(self, result: IpadmResult) -> None:
        self.result = result
        self.calls: list[tuple[str, IpadmCommand]] = []

    def __call__(self, root: str, command: IpadmCommand) -> IpadmResult:
        self.calls.append((root, command))
        return self.result


def test_a_change_goes_to_the_write_path(root: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("a change needs root")
    stand_in = StandIn(IpadmResult(("ipmp0/v4",), (), 0))
    monkeypatch.setattr(admin_ipadm, "change", stand_in)
    assert main(["create-addr", "-a", "192.0.2.10/24", "ipmp0"]) == 0
    assert stand_in.calls == [(str(root), IpadmCommand("create-addr", "ipmp0", address="192.0.2.10/24"))]
    assert capsys.readouterr() == ("ipmp0/v4\n", "")


def test_a_refused_change_prints_its_reason(root: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("a change needs root")
    message = "ipadm: cannot add net0 to ipmp0: Already in an IPMP group"
    monkeypatch.setattr(admin_ipadm, "change", StandIn(IpadmResult((), (message,), 1)))
    assert main(["add-ipmp", "-i", "net0", "ipmp0"]) == 1
    assert capsys.readouterr() == ("", message + "\n")


def _as_nobody(args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from ipmp.cli.ipadm import main; rc = main(sys.argv[1:]); "
            "import json; print(json.dumps(sorted(sys.modules)), file=sys.stderr); sys.exit(rc)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IPMP_ROOT": str(root),
           "PYTHONPATH": str(SOURCE), "SUNW_NO_MPATHD": "1"}
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           sys.executable, "-c", code, *args], env=env, text=True, capture_output=True,
                          timeout=120, check=False)


@pytest.fixture
def public_root() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the user is uid 65534")
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to act as nobody")
    top = public_tempdir("ipmp-ipadm-cli.")
    try:
        yield top
    finally:
        shutil.rmtree(top)


def _split(done: subprocess.CompletedProcess[str]) -> tuple[str, list[str]]:
    *lines, modules = done.stderr.splitlines()
    return "\n".join(lines), json.loads(modules)


@pytest.mark.parametrize(("argv", "message"), [
    (["create-ip", "net0"], "ipadm: cannot create interface net0: Insufficient privileges"),
    (["create-ipmp", "-i", "net0", "ipmp0"], "ipadm: cannot create interface ipmp0: Insufficient privileges"),
    (["add-ipmp", "-i", "net0", "ipmp0"], "ipadm: cannot add net0 to ipmp0: Insufficient privileges"),
    (["set-ifprop", "-p", "standby=on", "-m", "ip", "net0"],
     "ipadm: set-ifprop: standby: Insufficient privileges"),
    (["delete-addr", "ipmp0/v4"], "ipadm: cannot delete address: Insufficient privileges"),
])
def test_nobody_cannot_change_anything(public_root: Path, argv: list[str], message: str) -> None:
    """Attack: an unprivileged user runs ipadm to change the configuration."""
    done = _as_nobody(argv, public_root)
    err, modules = _split(done)
    assert (done.returncode, done.stdout, err) == (1, "", message)
    assert list(public_root.iterdir()) == []  # no store, no persistent file, no lock made
    assert "ipmp.admin.ipadm" not in modules


def test_nobody_can_show_and_the_read_path_stays_cheap(public_root: Path) -> None:
    done = _as_nobody(["show-if"], public_root)
    err, modules = _split(done)
    assert (done.returncode, err) == (0, "")
    assert done.stdout.splitlines()[0] == "IFNAME     CLASS    STATE    ACTIVE OVER"
    heavy = ("pyroute2", "asyncio", "ply", "click", "rich", "ipmp.admin.ipadm", "ipmp.apply",
             "ipmp.admin.session", "ipmp.linux.plan", "ipmp.config.parse")
    assert [m for m in modules if m.split(".")[0] in heavy or m in heavy] == []
