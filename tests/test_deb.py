"""The Debian package (debian/, ``make deb``).

Three parts:

* the logic of ``ipmp-solaris-paths`` (debian/ipmp_solaris_paths.py), on a
  fake system: which steps ``enable`` takes, that ``disable`` undoes exactly
  those and never removes a file that is not ipmp's;
* the layout script and the ``ipmp/_vendor.py`` hook, from the source tree;
* a built package, when ``IPMP_DEB`` names one (``make deb`` builds it; this
  file builds nothing): its files, control fields, units and maintainer
  scripts.  With ``IPMP_DEB_CHROOT="trixie bookworm"`` too (root, Debian's
  mirror reachable), ``tools/deb-chroot-check`` installs, opts in, removes
  and purges it in fresh chroots of those suites.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TOP = Path(__file__).resolve().parents[1]
DEBIAN = TOP / "debian"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


paths_mod: Any = _load("ipmp_solaris_paths", DEBIAN / "ipmp_solaris_paths.py")
layout_mod: Any = _load("ipmp_deb_layout", DEBIAN / "layout.py")
Observed = paths_mod.Observed
Step = paths_mod.Step
TARGET = paths_mod.TARGET


# -- ipmp-solaris-paths on a fake system ------------------------------------


class FakeSystem:
    """Files at the Solaris paths, dpkg's ownership and diversions, and the record, in memory.

    ``files`` maps a physical path to what is there: ``"link:TARGET"``,
    ``"net-tools"`` (the packaged binary) or ``"admin"`` (a file no package owns).
    ``merged``: /sbin is a link to usr/sbin, both paths name /usr/sbin/ifconfig.
    """

    def __init__(self, *, merged: bool, files: dict[str, str] | None = None,
                 registered: str | None = None, foreign_diversion: bool = False) -> None:
        self.merged = merged
        self.files = dict(files or {})
        self.registered = registered  # the path dpkg registered net-tools' ifconfig under
        self.diversions: dict[str, str] = {}
        self.foreign = foreign_diversion
        self.record: list[Any] = []
        self.fail_link = False

    def _physical(self, path: str) -> str:
        return "/usr/sbin/ifconfig" if self.merged else path

    def observe(self) -> list[Any]:
        groups = [("/usr/sbin/ifconfig", "/sbin/ifconfig")] if self.merged else [
            ("/usr/sbin/ifconfig",), ("/sbin/ifconfig",)]
        out = []
        for paths in groups:
            there = self.files.get(self._physical(paths[0]))
            link = there[5:] if there and there.startswith("link:") else None
            owner = None
            if self.registered in paths and (there == "net-tools" or self.registered in self.diversions):
                owner = ("net-tools", self.registered)
            diverted = None
            if self.foreign and self.registered in paths:
                diverted = (f"{self.registered}.other", "LOCAL")
            for p in paths:
                if p in self.diversions:
                    diverted = (self.diversions[p], "LOCAL")
            out.append(Observed(paths, link, there is not None, owner, diverted))
        return out

    def divert(self, path: str) -> None:
        phys = self._physical(path)
        assert self.files.get(phys) == "net-tools", f"divert of {path}: {self.files.get(phys)}"
        self.files[phys + ".distrib"] = self.files.pop(phys)
        self.diversions[path] = path + ".distrib"

    def undivert(self, path: str) -> None:
        phys = self._physical(path)
        assert phys not in self.files, f"undivert of {path} over {self.files.get(phys)}"
        self.files[phys] = self.files.pop(phys + ".distrib")
        del self.diversions[path]

    def link(self, path: str) -> None:
        if self.fail_link:
            raise OSError(f"symlink {path}: Read-only file system")
        phys = self._physical(path)
        assert phys not in self.files, f"link over {self.files[phys]}"
        self.files[phys] = "link:" + TARGET

    def unlink(self, path: str) -> None:
        del self.files[self._physical(path)]

    def read_record(self) -> list[Any]:
        return list(self.record)

    def write_record(self, steps: Sequence[Any]) -> None:
        self.record = list(steps)


def test_enable_links_absent_paths_once_on_merged_usr() -> None:
    system = FakeSystem(merged=True)
    assert paths_mod.enable(system) == [Step("link", "/usr/sbin/ifconfig")]
    assert system.files == {"/usr/sbin/ifconfig": "link:" + TARGET}
    assert paths_mod.enable(system) == []  # already there: nothing twice
    assert system.record == [Step("link", "/usr/sbin/ifconfig")]
    assert paths_mod.disable(system) == [Step("link", "/usr/sbin/ifconfig")]
    assert system.files == {} and system.record == []


def test_enable_diverts_net_tools_under_the_path_dpkg_registered() -> None:
    # Debian 12: net-tools registers /sbin/ifconfig; merged /usr puts it in /usr/sbin.
    system = FakeSystem(merged=True, files={"/usr/sbin/ifconfig": "net-tools"}, registered="/sbin/ifconfig")
    steps = paths_mod.enable(system)
    assert steps == [Step("divert", "/sbin/ifconfig"), Step("link", "/sbin/ifconfig")]
    assert system.files == {"/usr/sbin/ifconfig": "link:" + TARGET, "/usr/sbin/ifconfig.distrib": "net-tools"}
    paths_mod.disable(system)
    assert system.files == {"/usr/sbin/ifconfig": "net-tools"}
    assert system.diversions == {} and system.record == []


def test_enable_on_split_usr_takes_both_paths() -> None:
    system = FakeSystem(merged=False, files={"/sbin/ifconfig": "net-tools"}, registered="/sbin/ifconfig")
    assert paths_mod.enable(system) == [
        Step("link", "/usr/sbin/ifconfig"), Step("divert", "/sbin/ifconfig"), Step("link", "/sbin/ifconfig")]
    assert all(place.link == TARGET for place in system.observe())
    paths_mod.disable(system)
    assert system.files == {"/sbin/ifconfig": "net-tools"}


@pytest.mark.parametrize("kind", ["admin file", "foreign diversion"])
def test_enable_refuses_what_is_not_ipmps_and_changes_nothing(kind: str) -> None:
    if kind == "admin file":
        system = FakeSystem(merged=False, files={"/sbin/ifconfig": "admin"})
    else:
        system = FakeSystem(merged=True, files={"/usr/sbin/ifconfig": "net-tools"},
                            registered="/usr/sbin/ifconfig", foreign_diversion=True)
    before = dict(system.files)
    with pytest.raises(paths_mod.Refused):
        paths_mod.enable(system)
    assert system.files == before and system.record == [] and system.diversions == {}
    assert paths_mod.main(["enable"], system) == 1


def test_disable_never_removes_a_file_that_replaced_the_link() -> None:
    # Enabled without net-tools; installing net-tools then puts its file over the link.
    system = FakeSystem(merged=True)
    paths_mod.enable(system)
    system.files["/usr/sbin/ifconfig"] = "net-tools"
    system.registered = "/usr/sbin/ifconfig"
    assert paths_mod.disable(system) == []
    assert system.files == {"/usr/sbin/ifconfig": "net-tools"}


def test_enable_again_after_net_tools_replaced_the_link() -> None:
    system = FakeSystem(merged=True)
    paths_mod.enable(system)
    system.files["/usr/sbin/ifconfig"] = "net-tools"
    system.registered = "/usr/sbin/ifconfig"
    steps = [Step("divert", "/usr/sbin/ifconfig"), Step("link", "/usr/sbin/ifconfig")]
    assert paths_mod.enable(system) == steps
    assert system.record == steps
    assert len(system.record) == len(set(system.record)) == 2
    paths_mod.disable(system)
    assert system.files == {"/usr/sbin/ifconfig": "net-tools"} and system.diversions == {}


def test_a_failed_step_is_recorded_up_to_where_it_got() -> None:
    system = FakeSystem(merged=True, files={"/usr/sbin/ifconfig": "net-tools"},
                        registered="/usr/sbin/ifconfig")
    system.fail_link = True
    assert paths_mod.main(["enable"], system) == 1
    assert system.record == [Step("divert", "/usr/sbin/ifconfig")]
    system.fail_link = False
    paths_mod.disable(system)
    assert system.files == {"/usr/sbin/ifconfig": "net-tools"} and system.diversions == {}


def test_the_record_names_only_the_solaris_paths() -> None:
    # disable acts on the record: a line naming another file must not make it remove that file.
    text = "link /usr/sbin/ifconfig\nlink /etc/passwd\ndivert /usr/bin/python3\ndivert /sbin/ifconfig\n"
    expected = [Step("link", "/usr/sbin/ifconfig"), Step("divert", "/sbin/ifconfig")]
    assert paths_mod.parse_record(text) == expected


def test_status_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    system = FakeSystem(merged=False, files={"/sbin/ifconfig": "net-tools"}, registered="/sbin/ifconfig")
    assert paths_mod.main(["status"], system) == paths_mod.EXIT_NOT_ENABLED
    assert "/sbin/ifconfig: net-tools's" in capsys.readouterr().out
    assert paths_mod.main(["enable"], system) == 0
    assert paths_mod.main(["status"], system) == 0
    assert paths_mod.main(["frobnicate"], system) == 2


# -- the layout script and the hook ------------------------------------------


def test_every_console_script_has_a_place_in_the_package() -> None:
    scripts = tomllib.loads((TOP / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    placed = {command: module for _, command, module in layout_mod.COMMANDS}
    placed[layout_mod.GENERATOR[0]] = layout_mod.GENERATOR[1]
    assert {name: target.partition(":")[0] for name, target in scripts.items()} == placed


def _import_ipmp_isolated(root: Path) -> list[str]:
    code = (f"import sys; sys.path.insert(0, {str(root)!r}); import ipmp; "
            "print(ipmp.__file__); print(sys.path[0])")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True,
                         cwd="/", timeout=60).stdout.splitlines()
    assert out[0] == str(root / "ipmp" / "__init__.py")
    return out


def test_the_vendor_module_puts_the_private_directory_first(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "_vendor.py")
    shutil.copytree(TOP / "ipmp", tmp_path / "ipmp", ignore=ignore)
    # A wheel or a checkout: no _vendor.py, sys.path is left alone.
    assert _import_ipmp_isolated(tmp_path)[1] == str(tmp_path)
    (tmp_path / "ipmp" / "_vendor.py").write_text(layout_mod.VENDOR_MODULE, encoding="utf-8")
    assert _import_ipmp_isolated(tmp_path)[1] == "/usr/lib/ipmp/vendor"


# -- a built package ------------------------------------------------------------

DEB = os.environ.get("IPMP_DEB", "")
needs_deb = pytest.mark.skipif(not DEB, reason="IPMP_DEB does not name a built package (make deb)")


@pytest.fixture(scope="module")
def deb_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    deb = Path(DEB)
    assert deb.is_file(), f"IPMP_DEB={DEB}: no such file"
    root = tmp_path_factory.mktemp("deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "data")], check=True, timeout=120)
    subprocess.run(["dpkg-deb", "-e", str(deb), str(root / "control")], check=True, timeout=120)
    yield root


def _control(tree: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in (tree / "control" / "control").read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _version() -> str:
    text = (TOP / "ipmp" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    assert match
    return match.group(1)


@needs_deb
def test_control_fields(deb_tree: Path) -> None:
    fields = _control(deb_tree)
    assert fields["Package"] == "ipmp" and fields["Architecture"] == "all"
    assert fields["Version"] == os.environ.get("IPMP_DEB_VERSION", _version())
    depends = {d.split()[0] for d in fields["Depends"].split(", ")}
    assert {"python3-click", "python3-rich", "python3-ply"} <= depends
    # Debian's pyroute2 is 0.7; the package carries 0.9 (debian/README.Debian).
    assert not any("pyroute2" in d for d in depends)


@needs_deb
def test_commands_where_debian_puts_them_and_no_ifconfig_on_path(deb_tree: Path) -> None:
    data = deb_tree / "data"
    for path in ("usr/sbin/in.mpathd", "usr/sbin/if_mpadm", "usr/sbin/ipmp-boot",
                 "usr/sbin/ipmp-solaris-paths", "usr/bin/ipmpstat", "usr/bin/ipmp-lab",
                 "usr/lib/ipmp/bin/ifconfig"):
        wrapper = data / path
        assert wrapper.is_file() and os.access(wrapper, os.X_OK), path
        assert wrapper.read_text(encoding="utf-8").startswith("#!/usr/bin/python3 -I\n"), path
    for path in ("usr/sbin/ifconfig", "sbin/ifconfig", "usr/bin/ifconfig", "bin/ifconfig", "usr/local"):
        assert not (data / path).exists(), path
    if (TOP / "ipmp" / "cli" / "generator.py").is_file():
        assert (data / "usr/lib/systemd/system-generators/ipmp-boot-generator").is_file()
        assert not (data / "usr/bin/ipmp-boot-generator").exists()


@needs_deb
def test_every_manual_page_is_installed(deb_tree: Path) -> None:
    man = deb_tree / "data" / "usr/share/man"
    installed = {p.name for p in man.glob("man[58]/*.gz")}
    expected = {layout_mod.MAN_NAMES.get(p.name, p.name) + ".gz" for p in (TOP / "man").glob("*.[58]")}
    assert expected | {"ipmp-solaris-paths.8.gz"} == installed
    assert not (man / "man8" / "ifconfig.8.gz").exists()  # net-tools' page


@needs_deb
def test_units_run_the_packaged_commands(deb_tree: Path) -> None:
    data = deb_tree / "data"
    found = [*data.glob("usr/lib/systemd/system/*.service"), *data.glob("lib/systemd/system/*.service")]
    units = {p.name: p for p in found}
    assert set(units) == {"in.mpathd.service", "ipmp-boot.service"}
    for name, path in units.items():
        shipped = (TOP / "ipmp" / "data" / "systemd" / name).read_text(encoding="utf-8")
        assert path.read_text(encoding="utf-8") == shipped.replace("=/usr/local/bin/", "=/usr/sbin/")
    assert "ExecStart=/usr/sbin/in.mpathd -f" in units["in.mpathd.service"].read_text(encoding="utf-8")


@needs_deb
def test_maintainer_scripts_start_the_daemon_but_never_run_the_boot(deb_tree: Path) -> None:
    control = deb_tree / "control"
    postinst = (control / "postinst").read_text(encoding="utf-8")
    prerm = (control / "prerm").read_text(encoding="utf-8")
    assert "deb-systemd-helper enable 'in.mpathd.service'" in postinst
    assert "deb-systemd-helper enable 'ipmp-boot.service'" in postinst
    assert "deb-systemd-invoke $_dh_action 'in.mpathd.service'" in postinst  # start, restart on upgrade
    assert not re.search(r"deb-systemd-invoke \S+ 'ipmp-boot.service'", postinst + prerm)
    assert "ipmp-solaris-paths disable" in prerm
    postrm = (control / "postrm").read_text(encoding="utf-8")
    assert "rm -rf /var/lib/ipmp /run/ipmp" in postrm and "/etc/sysctl.d/90-ipmp.conf" in postrm


@needs_deb
def test_default_file_is_a_conffile(deb_tree: Path) -> None:
    source = TOP / "ipmp" / "data" / "default" / "mpathd"
    if not source.is_file():
        pytest.skip("the tree has no ipmp/data/default/mpathd")
    assert (deb_tree / "data" / "etc/default/mpathd").read_bytes() == source.read_bytes()
    assert "/etc/default/mpathd" in (deb_tree / "control" / "conffiles").read_text(encoding="utf-8").split()


@needs_deb
def test_private_pyroute2_is_the_pinned_one_and_found_first(deb_tree: Path) -> None:
    data = deb_tree / "data"
    wheel = (DEBIAN / "pyroute2.sha256").read_text(encoding="ascii").split()[1]
    pinned = wheel.split("-")[1]
    assert pinned.startswith("0.9.")
    assert (data / f"usr/lib/ipmp/vendor/pyroute2-{pinned}.dist-info").is_dir()
    assert (data / "usr/lib/ipmp/vendor/pyroute2/__init__.py").is_file()
    dist = next(data.glob("usr/lib/python3*/dist-packages"))
    assert _import_ipmp_isolated(dist)[1] == "/usr/lib/ipmp/vendor"


@needs_deb
def test_lintian_report_is_clean() -> None:
    report = Path(DEB).with_suffix(".lintian")
    if not report.is_file():
        pytest.skip(f"no lintian report beside {DEB}")
    bad = [line for line in report.read_text(encoding="utf-8").splitlines() if line.startswith(("E:", "W:"))]
    assert bad == []


@pytest.mark.parametrize("suite", os.environ.get("IPMP_DEB_CHROOT", "").split() or [
    pytest.param("none", marks=pytest.mark.skip(reason="IPMP_DEB_CHROOT names no Debian suite"))])
@needs_deb
def test_install_opt_in_remove_purge_in_a_chroot(suite: str) -> None:
    proc = subprocess.run([str(TOP / "tools" / "deb-chroot-check"), suite, DEB], capture_output=True,
                          text=True, timeout=1800, check=False)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-4000:]
