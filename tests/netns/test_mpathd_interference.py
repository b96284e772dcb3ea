"""Another actor undoes in.mpathd's work behind its back; the daemon notices, restores and says so.

``test_mpathd_failover.py`` deletes a data address on its home NIC.  Here the
other kinds of interference linux-mapping.md Q6 warns about, each on a
daemon that has failed qfe0 over (so the layout to restore is the daemon's
own, not the boot files'), and one on the boot layout:

* a *moved* data address deleted from the NIC it was moved to;
* a test address deleted;
* ``ip rule flush`` followed by the re-adding of the ``main`` and ``default``
  rules (prefs 32766/32767) that the flush also removed;
* the data address's main-table route deleted;
* a NIC set admin-down (which also deletes its routes in every table): to
  the daemon a link-down, so it fails the NIC over, its apply sets the link
  up again, and the probes repair it and fail back.

The netlink watcher hears each at once; the rescan (5 s here) is the
backstop.  Restored means: every data address on exactly one usable NIC,
every ``from`` rule into its holder's table, and the plan the daemon's own
rescan would make empty.  The time to that state and to the daemon's
``restoring ...`` line are printed as FIGURES.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from invariants import layout_problems, plan_left, rule_problems, usable_nics
from mpathd_harness import MpathdLab, figures, wait_for

from ipmp.lab.topology import Topology

MakeTopology = Callable[..., Topology]

D0, D1 = "192.0.2.100", "192.0.2.101"
T0, T1 = "192.0.2.10", "192.0.2.11"
RESTORING = r"^restoring \d+ kernel change\(s\) undone outside in\.mpathd on "
#: The harness's rescan interval, and what "at the latest" may add to it.
SCAN = 5.0
SLACK = 1.5


@pytest.fixture
def lab(make_topology: MakeTopology, tmp_path: Path) -> Iterator[MpathdLab]:
    topo = make_topology(nics=("qfe0", "qfe1"))
    lab = MpathdLab(topo, tmp_path, "active-active")
    try:
        lab.boot()
        yield lab
    finally:
        lab.close()


def problems(lab: MpathdLab) -> list[str]:
    topo = lab.topo
    found = layout_problems(topo, (D0, D1), usable=usable_nics(topo))
    found += layout_problems(topo, (T0, T1))
    return found + rule_problems(topo, (D0, D1), (T0, T1))


def failed_over(lab: MpathdLab) -> None:
    """qfe0's carrier goes; wait until in.mpathd has moved D0 to qfe1 and saved it."""
    t0 = time.monotonic()
    lab.topo.fail_link("qfe0")
    lab.daemon.wait_line("^Successfully failed over from NIC qfe0 to NIC qfe1$", since=t0, timeout=5)
    wait_for(lambda: not problems(lab) and not plan_left(lab.topo, lab.root, lab.topo.nics), 5.0,
             "the failed-over layout to settle")


def rules_flushed(topo: Topology) -> None:
    topo.ip("host", "-4", "rule", "flush")
    for pref, table in (("32766", "main"), ("32767", "default")):
        topo.ip("host", "-4", "rule", "add", "pref", pref, "lookup", table)


INTERFERENCE: dict[str, Callable[[Topology], None]] = {
    "moved-data-address-deleted": lambda t: t.ip("host", "addr", "del", f"{D0}/24", "dev", "qfe1"),
    "test-address-deleted": lambda t: t.ip("host", "addr", "del", f"{T1}/24", "dev", "qfe1"),
    "rules-flushed": rules_flushed,
    "data-route-deleted": lambda t: t.ip("host", "route", "del", "192.0.2.0/24", "dev", "qfe1", "src", D1,
                                         "metric", str(100 + int(t.ip_json("host", "link", "show", "dev",
                                                                            "qfe1")[0]["ifindex"]))),
    "nic-admin-down": lambda t: t.ip("host", "link", "set", "dev", "qfe1", "down"),
}


@pytest.mark.parametrize("kind", list(INTERFERENCE))
def test_interference_is_noticed_restored_and_logged(lab: MpathdLab, kind: str) -> None:
    d = lab.start()
    if kind != "nic-admin-down":
        failed_over(lab)  # restore the daemon's layout, not the boot one
    topo = lab.topo
    assert not problems(lab), problems(lab)
    with topo.start_ping("peer", [D0, D1], interval=0.01, timeout=0.5) as job:
        started = time.monotonic()
        wait_for(lambda: time.monotonic() >= started + 0.3, 5.0, "pings before the interference")
        t0 = time.monotonic()
        INTERFERENCE[kind](topo)
        t_done = time.monotonic()
        # Admin-down is a link-down to the daemon: it fails the NIC over, and
        # its apply brings the link back up (then probes repair it).
        said = RESTORING if kind != "nic-admin-down" else "^The link has gone down on qfe1$"
        line = d.wait_line(said, since=t0, timeout=SCAN + SLACK)

        def restored() -> bool:
            return not problems(lab)

        wait_for(restored, SCAN + SLACK, "every address and rule back", context=lambda: "\n".join(
            [*problems(lab), d.text()]))
        took = time.monotonic() - t0
        left = plan_left(topo, lab.root, topo.nics)
        assert left == [], left
        wait_for(lambda: time.monotonic() >= t0 + took + 0.5, 5.0, "pings after the restore")
        report = job.stop()
    figures(f"interference_{kind}", logged_s=line.t - t0, restored_s=took, act_s=t_done - t0,
            lost_d0=report[D0].lost, lost_d1=report[D1].lost)
    assert line.t - t0 < 1.0, "netlink must tell the daemon at once, not the rescan"
    assert not d.matching("Traceback|failed to apply"), d.text()
    # What was broken may cost a few echoes while it is broken; nothing after.
    assert report[D0].lost + report[D1].lost <= 60, (report[D0].lost_ranges, report[D1].lost_ranges)
    if kind == "nic-admin-down":
        assert topo.link("host", "qfe1").admin_up, "the daemon brings its NIC back up"
        d.wait_line("^Successfully failed back to NIC qfe1$", since=t0, timeout=10)
        assert layout_problems(topo, (D1,), usable={"qfe1"}) == []
