"""``ipmp-lab`` driven as a user drives it: one process per command, real namespaces.

Every test keeps its labs in its own ``IPMP_LAB_DIR`` and checks at the end
that nothing of them is left: no namespace, no lab directory, no process
carrying the lab's mark.  Only the examples' documentation addresses
(192.0.2.0/24) are used, only inside the labs' namespaces.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "hostname.files"
#: The checkout's shim, run by the interpreter of the tests' venv.
IPMP_LAB = [sys.executable, str(REPO / "bin" / "ipmp-lab")]
#: The drill must stay quick enough to be a test.
DRILL_BUDGET = 60.0

Run = Callable[..., subprocess.CompletedProcess[str]]


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def with_prefix(prefix: str) -> set[str]:
    return {n for n in netns_names() if n.startswith(prefix + "-")}


def marked_pids(prefix: str) -> list[int]:
    """Processes anywhere that carry the lab's mark (IPMP_LAB=<prefix>)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"IPMP_LAB={prefix}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@pytest.fixture
def labs_dir(tmp_path: Path) -> Path:
    return tmp_path / "labs"


@pytest.fixture
def env(labs_dir: Path) -> dict[str, str]:
    env = dict(os.environ, IPMP_LAB_DIR=str(labs_dir))
    env.pop("IPMP_LAB_NAME", None)
    return env


@pytest.fixture
def lab(env: dict[str, str], labs_dir: Path) -> Iterator[Run]:
    """``lab(*args)`` runs ipmp-lab; afterwards any lab still there is removed, and must leave nothing."""

    def run(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*IPMP_LAB, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )

    yield run
    leftovers = []
    if labs_dir.is_dir():
        for state in labs_dir.glob("*/lab.json"):
            prefix = json.loads(state.read_text())["prefix"]
            run("--name", state.parent.name, "down")
            leftovers.append(prefix)
    for prefix in leftovers:
        assert not with_prefix(prefix), f"namespaces of {prefix} left behind"


def status(run: Run, name: str) -> dict[str, Any]:
    done = run("status", "--json", "--name", name)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert isinstance(doc, list) and len(doc) == 1
    result: dict[str, Any] = doc[0]
    return result


def holder(ifconfig_a: str, address: str) -> str | None:
    """The logical interface ``ifconfig -a`` shows ``address`` on."""
    current = None
    for line in ifconfig_a.splitlines():
        m = re.match(r"(\S+): flags=", line)
        if m:
            current = m[1]
        elif re.match(rf"\s+inet {re.escape(address)} ", line):
            return current
    return None


def assert_gone(prefix: str, labs_dir: Path, name: str) -> None:
    assert not with_prefix(prefix), sorted(with_prefix(prefix))
    assert not (labs_dir / name).exists()
    assert not marked_pids(prefix)


# --------------------------------------------------------------------------


def test_up_fail_exec_repair_status_down(lab: Run, labs_dir: Path) -> None:
    up = lab("up", str(EXAMPLES / "active-active"), "--name", "t1", "--fdt", "700", "--quiet-period", "1")
    assert up.returncode == 0, up.stderr
    assert "lab 't1': up" in up.stdout
    assert "groupname prod" in up.stdout  # the host's ifconfig -a, printed by up
    info = status(lab, "t1")
    prefix = info["prefix"]
    assert all(ns["exists"] for ns in info["namespaces"].values())
    assert {ns["name"] for ns in info["namespaces"].values()} == with_prefix(prefix)
    assert [n["name"] for n in info["nics"]] == ["qfe0", "qfe1"]
    assert info["router"]["addresses"] == ["192.0.2.1/24"]  # the files' defaultrouter
    assert info["daemon"]["running"]
    root = info["root"]
    assert Path(root).is_relative_to(labs_dir)

    # The host's NICs carry exactly the files' names and the files' addresses.
    before = lab("exec", "--name", "t1", "--", "ifconfig", "-a")
    assert before.returncode == 0, before.stderr
    assert holder(before.stdout, "192.0.2.100") == "qfe0"

    assert lab("fail", "qfe0", "--link", "--name", "t1").returncode == 0
    moved: list[str] = []

    def failed_over() -> bool:
        out = lab("exec", "--name", "t1", "--", "ifconfig", "-a").stdout
        moved[:] = [out]
        return (holder(out, "192.0.2.100") or "").startswith("qfe1:")

    assert wait_for(failed_over, 10.0), moved
    assert re.search(r"^qfe0: flags=\S*FAILED", moved[0], re.M), moved[0]

    # exec: the lab's root, this package's commands first, the command's exit status.
    env_out = lab("exec", "--name", "t1", "--", "sh", "-c", 'echo "$IPMP_ROOT"; command -v ifconfig; exit 7')
    assert env_out.returncode == 7
    lines = env_out.stdout.splitlines()
    assert lines[0] == root
    assert Path(lines[1]).parent in (Path(sys.executable).parent, REPO / "bin")

    assert lab("repair", "qfe0", "--name", "t1").returncode == 0

    def failed_back() -> bool:
        return holder(lab("exec", "--name", "t1", "--", "ifconfig", "-a").stdout, "192.0.2.100") == "qfe0"

    assert wait_for(failed_back, 15.0)
    shown = lab("status", "--name", "t1")
    assert shown.returncode == 0
    assert "NIC repair detected on qfe0 of group prod" in shown.stdout
    assert lab("router", "down", "--name", "t1").returncode == 0
    assert status(lab, "t1")["router"]["down"] is True
    assert lab("router", "up", "--name", "t1").returncode == 0

    # A second lab at the same time: its own namespaces, its own daemon.
    up2 = lab("--name", "t2", "up", str(EXAMPLES / "link-only"))
    assert up2.returncode == 0, up2.stderr
    prefix2 = status(lab, "t2")["prefix"]
    assert prefix2 != prefix and with_prefix(prefix2)
    listing = lab("status")
    assert "lab 't1'" in listing.stdout and "lab 't2'" in listing.stdout
    assert "bge0" in lab("exec", "--name", "t2", "--", "ifconfig", "-a").stdout

    assert lab("down", "--name", "t1").returncode == 0
    assert_gone(prefix, labs_dir, "t1")  # the daemon too: it carries the mark
    assert lab("exec", "--name", "t1", "--", "true").returncode == 1  # no such lab any more
    assert with_prefix(prefix2)  # the other lab is untouched
    assert lab("--name", "t2", "down").returncode == 0
    assert_gone(prefix2, labs_dir, "t2")


def test_an_invalid_file_fails_up_half_way_and_cleans_up(lab: Run, labs_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "broken"
    shutil.copytree(EXAMPLES / "active-active", source)
    # qfe0 is fine, qfe1's file is not: the namespaces are built and qfe0
    # is configured before ipmp-boot reports qfe1.
    (source / "etc" / "hostname.qfe1").write_text("myhost-2 netmask + broadcast + group prod up frobnicate\n")
    up = lab("up", str(source), "--name", "bad")
    assert up.returncode == 1
    m = re.search(r"creating namespaces (\S+)-\{", up.stdout)
    assert m, up.stdout
    assert "ipmp-boot failed" in up.stderr
    # The message names the user's file, not the lab's copy of it.
    assert f"{source}/etc/hostname.qfe1:1:" in up.stderr
    assert_gone(m[1], labs_dir, "bad")


def test_a_nic_named_by_two_files_is_one_nic(lab: Run, tmp_path: Path, labs_dir: Path) -> None:
    source = tmp_path / "twice"
    shutil.copytree(EXAMPLES / "active-active", source)
    # hostname.qfe1:2 configures a logical interface: it names qfe1 again.
    (source / "etc" / "hostname.qfe1:2").write_text("192.0.2.102 netmask + broadcast + up\n")
    up = lab("up", str(source), "--name", "twice")
    assert up.returncode == 0, up.stderr
    info = status(lab, "twice")
    assert [n["name"] for n in info["nics"]] == ["qfe0", "qfe1"]
    assert holder(lab("exec", "--name", "twice", "--", "ifconfig", "-a").stdout, "192.0.2.102") == "qfe1:2"
    assert lab("down", "--name", "twice").returncode == 0
    assert_gone(info["prefix"], labs_dir, "twice")


# ``lab``: should the signal come too late (or be ignored), its teardown takes the lab down.
@pytest.mark.usefixtures("lab")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_up_leaves_nothing(env: dict[str, str], labs_dir: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [*IPMP_LAB, "up", str(EXAMPLES / "active-active"), "--name", "intr"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = re.search(r"creating namespaces (\S+)-\{", first)
        assert m, first
        # Booting and starting the daemon take far longer than this line.
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err
    assert_gone(m[1], labs_dir, "intr")


def test_drill_active_active(lab: Run, tmp_path: Path, labs_dir: Path) -> None:
    report_path = tmp_path / "drill.json"
    picture = tmp_path / "drill.svg"
    start = time.monotonic()
    done = lab(
        "drill", str(EXAMPLES / "active-active"), "--fdt", "700",
        "--json", str(report_path), "--svg", str(picture),
        timeout=180.0,
    )
    took = time.monotonic() - start
    assert report_path.is_file(), done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    prefix = report["lab"]["prefix"]
    assert_gone(prefix, labs_dir, "drill")
    assert took < DRILL_BUDGET, f"the drill took {took:.1f} s"

    # Every step of the script is there, for both NICs.
    kinds = [(s["kind"], s["interface"]) for s in report["steps"]]
    for nic in ("qfe0", "qfe1"):
        for kind in ("link-fail", "link-repair", "silent-fail", "silent-repair", "offline", "undo-offline"):
            assert (kind, nic) in kinds, (kind, nic)
    assert ("refuse-offline", "qfe0") in kinds
    assert ("router-down", None) in kinds and ("router-up", None) in kinds
    for step in report["steps"]:
        assert {"title", "ok", "problems", "detection_ms", "move_ms", "pings", "messages"} <= set(step)
        assert step["pings"]["sent"] > 0
        assert not [p for p in step["problems"] if p.startswith("address lost")], step
    by_kind = {(s["kind"], s["interface"]): s for s in report["steps"]}
    # Link failures are seen at once; the addresses move within the FDT.
    link = by_kind[("link-fail", "qfe0")]
    assert link["detection_ms"] is not None and link["detection_ms"] < 700
    assert link["move_ms"] is not None
    refused = by_kind[("refuse-offline", "qfe0")]
    assert refused["command"]["exit"] == 1
    # A router outage is a group failure: nothing moves, the peer's traffic goes on.
    outage = by_kind[("router-down", None)]
    assert any(m["text"] == "All Interfaces in group prod have failed" for m in outage["messages"])
    assert outage["move_ms"] is None
    assert report["final_problems"] == []
    ET.parse(picture)  # well-formed

    problems = [f"{s['title']}: {p}" for s in report["steps"] for p in s["problems"]]
    assert done.returncode == 0 and report["ok"], "\n".join(problems) or done.stderr
