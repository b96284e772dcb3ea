"""``ipmp-lab`` from a Solaris 11 ipadm script, on the real kernel: up, the IPMP interface, drill, down.

The lab directory holds only ``examples/ipadm/active-active.sh`` as
``ipadm.sh``: two members net0 and net1, the IPMP interface ipmp0 with the
data addresses 192.0.2.10 and 192.0.2.11 (documentation range, only inside
the lab's namespaces).  The lab runs the script with the real ``ipadm`` in
its host, so ``ipadm show-addr`` there lists the address objects, the
persistent file is written under the lab root, and in.mpathd binds one
address to each member (illumos ``ipmp.c``).  Each test keeps its labs in
its own ``IPMP_LAB_DIR`` and checks that nothing is left: no namespace, no
lab directory, no process carrying the lab's mark.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from test_lab import DRILL_BUDGET, REPO, Run, assert_gone, env, lab, labs_dir, status

# The fixtures of test_lab.py, used here by name.
__all__ = ["env", "lab", "labs_dir"]

SCRIPT = REPO / "examples" / "ipadm" / "active-active.sh"
DATA = ("192.0.2.10", "192.0.2.11")
MEMBERS = {"net0", "net1"}


def lab_source(tmp_path: Path) -> Path:
    source = tmp_path / "solaris11"
    source.mkdir()
    shutil.copyfile(SCRIPT, source / "ipadm.sh")
    return source


def holders(run: Run, name: str) -> dict[str, list[str]]:
    """Data address -> the lab host's NICs holding it, from the kernel (``ip -j addr``)."""
    done = run("exec", "--name", name, "--", "ip", "-j", "addr", "show")
    assert done.returncode == 0, done.stderr
    out: dict[str, list[str]] = {a: [] for a in DATA}
    for link in json.loads(done.stdout):
        for addr in link.get("addr_info", ()):
            if addr.get("local") in out:
                out[addr["local"]].append(link["ifname"])
    return out


def test_up_runs_the_script_with_ipadm_and_binds_one_address_to_each_member(
        lab: Run, tmp_path: Path, labs_dir: Path) -> None:
    up = lab("up", str(lab_source(tmp_path)), "--name", "s11", "--fdt", "700", "--quiet-period", "1")
    assert up.returncode == 0, up.stdout + up.stderr
    info: dict[str, Any] = status(lab, "s11")
    prefix = info["prefix"]
    try:
        assert [n["name"] for n in info["nics"]] == ["net0", "net1"]
        assert info["ipmp_interfaces"] == [{"name": "ipmp0", "group": "ipmp0",
                                            "data_addresses": ["192.0.2.10/24", "192.0.2.11/24"]}]
        assert info["daemon"]["running"]
        # up shows the script's read-only commands, run once in.mpathd is up.
        assert "$ ipadm show-addr" in up.stdout and "$ ipmpstat -an" in up.stdout

        shown = lab("exec", "--name", "s11", "--", "ipadm", "show-addr")
        assert shown.returncode == 0, shown.stderr
        objs = {line.split()[0]: line.split()[-1] for line in shown.stdout.splitlines()[1:] if line.split()}
        assert objs.get("ipmp0/v4") == "192.0.2.10/24", shown.stdout
        assert objs.get("ipmp0/v4a") == "192.0.2.11/24", shown.stdout

        # Each data address on one member, the two on different members (ipmp_illgrp_min_ill).
        where = holders(lab, "s11")
        assert all(len(nics) == 1 and set(nics) <= MEMBERS for nics in where.values()), where
        assert where[DATA[0]] != where[DATA[1]], where

        # The script's changes are persistent, in the lab root's own ipadm.conf.
        conf = (Path(info["root"]) / "etc" / "ipadm" / "ipadm.conf").read_text()
        assert "_aobjname=ipmp0/v4a;_ipv4addr=192.0.2.11," in conf and "_underif=net1" in conf

        # fail works unchanged: the cut member's address is re-bound to the other.
        assert lab("fail", "--name", "s11", "net0", "--link").returncode == 0
        deadline = time.monotonic() + 20.0
        while holders(lab, "s11") != {DATA[0]: ["net1"], DATA[1]: ["net1"]}:
            assert time.monotonic() < deadline, holders(lab, "s11")
            time.sleep(0.1)
        assert lab("repair", "--name", "s11", "net0").returncode == 0
    finally:
        down = lab("down", "--name", "s11")
    assert down.returncode == 0, down.stderr
    assert_gone(prefix, labs_dir, "s11")


def test_drill_from_the_script_shows_solaris11_rebinding(lab: Run, tmp_path: Path, labs_dir: Path) -> None:
    report_path = tmp_path / "drill.json"
    start = time.monotonic()
    done = lab("drill", str(lab_source(tmp_path)), "--fdt", "700", "--json", str(report_path), timeout=180.0)
    took = time.monotonic() - start
    assert report_path.is_file(), done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert_gone(report["lab"]["prefix"], labs_dir, "drill")
    assert took < DRILL_BUDGET, f"the drill took {took:.1f} s"
    assert report["lab"]["ipmp_interfaces"][0]["name"] == "ipmp0"

    steps = {(s["kind"], s["interface"]): s for s in report["steps"]}
    for nic in MEMBERS:
        for kind in ("link-fail", "link-repair"):
            assert (kind, nic) in steps
    for step in report["steps"]:
        # Every data address answered the peer once the step was done.
        assert not [p for p in step["problems"] if "lost" in p or "no interface" in p], step
        per = step["pings"]["per_address"]
        assert set(per) == set(DATA) and all(v["sent"] > 0 for v in per.values())
        texts = [m["text"] for m in step["messages"]]
        # Clearview in.mpathd: no failover, no failback messages in a group with an IPMP interface.
        assert not [t for t in texts if t.startswith("Successfully failed")], texts
    fail = steps[("link-fail", "net0")]
    assert "IP interface failure detected on net0 of group ipmp0" in [m["text"] for m in fail["messages"]]
    assert fail["addresses_after"] == {DATA[0]: ["net1"], DATA[1]: ["net1"]}
    assert fail["rebound"] and any("fewest" in n for n in fail["notes"])
    repair = steps[("link-repair", "net0")]
    # No home: net0 takes one address back (own + 1 >= max), whichever it is.
    assert sorted(len(v) for v in repair["addresses_after"].values()) == [1, 1]
    assert {v[0] for v in repair["addresses_after"].values()} == MEMBERS
    assert any("own + 1 >= max" in n for n in repair["notes"])
    assert steps[("refuse-offline", "net0")]["command"]["exit"] == 1
    assert report["final_problems"] == []

    problems = [f"{s['title']}: {p}" for s in report["steps"] for p in s["problems"]]
    assert done.returncode == 0 and report["ok"], "\n".join(problems) or done.stderr
