"""ipmpstat (§7.2): golden output for every mode, -o, -P, --json, and the CLI against a fake daemon."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipmp.admin import ipmpstat
from ipmp.admin.ipmpstat import FieldError, Line, select_fields
from ipmp.cli import ipmpstat as cli
from ipmp.mpathd import protocol
from ipmp.mpathd.protocol import Reply, Request
from ipmp.mpathd.snapshot import from_wire, to_wire
from tests.unit.ipc_server import ServerThread

# The renderer takes the typed snapshot; the tests write what travels on the
# wire, so every one of them goes through the client's decoding too.


def render(doc: dict[str, Any], mode: str, **options: Any) -> list[str]:
    return ipmpstat.render(from_wire(doc), mode, **options)


def render_lines(doc: dict[str, Any], mode: str, **options: Any) -> list[Line]:
    return ipmpstat.render_lines(from_wire(doc), mode, **options)


def render_json(doc: dict[str, Any], mode: str) -> str:
    return ipmpstat.render_json(from_wire(doc), mode)

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------
# Hand-built snapshots, in the wire layout of Machine.snapshot() (snapshot.to_wire)
# --------------------------------------------------------------------------


def probe(test: str, *targets: str, mode: str = "routes") -> dict[str, Any]:
    return {"test_address": test, "targets": list(targets), "mode": mode,
            "crtt_ms": dict.fromkeys(targets, 3)}


def itf(group: str = "prod", *, state: str = "ok", link: str = "up", probe: str = "ok",
        active: bool = True, standby: bool = False, inactive: bool = False, failed: bool = False,
        offline: bool = False, inet: dict[str, Any] | None = None,
        inet6: dict[str, Any] | None = None) -> dict[str, Any]:
    probes = {family: info for family, info in (("inet", inet), ("inet6", inet6)) if info is not None}
    return {"group": group, "state": state, "type": "standby" if standby else "normal", "link": link,
            "probe": probe, "active": active, "standby": standby, "inactive": inactive,
            "failed": failed, "offline": offline, "probes": probes}


def addr(address: str, interface: str, *, home: str = "", group: str = "prod",
         up: bool = True) -> dict[str, Any]:
    return {"address": address, "family": "inet6" if ":" in address else "inet", "interface": interface,
            "home": home or interface.partition(":")[0], "group": group, "up": up}


def snap(groups: dict[str, tuple[str, int]], interfaces: dict[str, dict[str, Any]],
         addresses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"v": 1, "fdt_ms": 10000, "failback": True,
            "groups": {name: {"state": state, "fdt_ms": fdt,
                              "members": sorted(n for n, i in interfaces.items() if i["group"] == name)}
                       for name, (state, fdt) in groups.items()},
            "interfaces": interfaces, "addresses": addresses}


R1, R2 = "192.0.2.1", "192.0.2.2"

#: hme0 carries the data addresses; qfe0 is a STANDBY held INACTIVE.
OK = snap({"prod": ("ok", 10000)}, {
    "hme0": itf(inet=probe("192.0.2.10", R1, R2)),
    "qfe0": itf(active=False, standby=True, inactive=True, inet=probe("192.0.2.11", R1, R2)),
}, [addr("192.0.2.100/24", "hme0"), addr("192.0.2.101/24", "hme0:1")])

#: hme0 failed (link down) and its address moved to the standby qfe0;
#: qfe1 was taken offline (if_mpadm -d) and its address went to qfe0 too.
DEGRADED = snap({"prod": ("degraded", 10000)}, {
    "hme0": itf(state="failed", link="down", probe="failed", active=False, failed=True,
                inet=probe("192.0.2.10", R1, R2)),
    "qfe0": itf(standby=True, inet=probe("192.0.2.11", R1, R2)),
    "qfe1": itf(state="offline", probe="disabled", active=False, offline=True),
}, [addr("192.0.2.100/24", "qfe0:1", home="hme0"), addr("192.0.2.102/24", "qfe0:2", home="qfe1"),
    addr("192.0.2.101/24", "qfe0", home="qfe0")])

#: Group failure: every member lost its probes, nothing moved (§2.7).
FAILED = snap({"db": ("failed", 20000)}, {
    "ce0": itf("db", state="failed", probe="failed", failed=True,
               inet=probe("198.51.100.10", "198.51.100.1")),
    "ce1": itf("db", state="failed", probe="failed", failed=True, active=False,
               inet=probe("198.51.100.11", "198.51.100.1")),
}, [addr("198.51.100.50/24", "ce0", group="db"),
    addr("198.51.100.51/24", "ce0:1", group="db", up=False)])

#: IPv6 probing (multicast targets), a NOTARGETS member, a link-only group
#: with a long name, and an interface of the anonymous group.
V6 = snap({"v6net": ("ok", 10000), "production-network": ("ok", 10000)}, {
    "net0": itf("v6net", inet6=probe("fe80::214:4fff:fe8b:1", "fe80::1", "fe80::2", mode="multicast")),
    "net1": itf("v6net", probe="unknown", state="unknown", active=False,
                inet=probe("192.0.2.21"), inet6=probe("fe80::214:4fff:fe8b:2", mode="multicast")),
    "e1000g0": itf("production-network", probe="disabled"),
    "bge0": itf("", probe="disabled", active=False),
}, [addr("2001:db8::10/64", "net0", group="v6net"), addr("192.0.2.30/24", "net0:1", group="v6net"),
    addr("2001:db8:ffff:ffff:ffff:ffff:ffff:fffe/64", "e1000g0", group="production-network")])

EMPTY_SNAPSHOT = snap({}, {}, [])


def text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------
# Golden output, default fields
# --------------------------------------------------------------------------

GOLDEN: dict[tuple[str, str], str] = {
    ("OK", "g"): """\
GROUP       GROUPNAME   STATE     FDT       INTERFACES
prod        prod        ok        10.00s    hme0 (qfe0)
""",
    ("OK", "i"): """\
INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE
hme0        yes     prod        --mb---   up        ok        ok
qfe0        no      prod        is-----   up        ok        ok
""",
    ("OK", "t"): """\
INTERFACE   MODE      TESTADDR            TARGETS
hme0        routes    192.0.2.10          192.0.2.1 192.0.2.2
qfe0        routes    192.0.2.11          192.0.2.1 192.0.2.2
""",
    ("OK", "a"): """\
ADDRESS                   STATE  GROUP       INBOUND     OUTBOUND
192.0.2.100               up     prod        hme0        hme0
192.0.2.101               up     prod        hme0        hme0
""",
    ("DEGRADED", "g"): """\
GROUP       GROUPNAME   STATE     FDT       INTERFACES
prod        prod        degraded  10.00s    qfe0 [hme0 qfe1]
""",
    ("DEGRADED", "i"): """\
INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE
hme0        no      prod        -------   down      failed    failed
qfe0        yes     prod        -smb---   up        ok        ok
qfe1        no      prod        -------   up        disabled  offline
""",
    ("DEGRADED", "t"): """\
INTERFACE   MODE      TESTADDR            TARGETS
hme0        routes    192.0.2.10          192.0.2.1 192.0.2.2
qfe0        routes    192.0.2.11          192.0.2.1 192.0.2.2
qfe1        disabled  --                  --
""",
    # Ordered by home interface: hme0's address first although it now sits on qfe0:1.
    ("DEGRADED", "a"): """\
ADDRESS                   STATE  GROUP       INBOUND     OUTBOUND
192.0.2.100               up     prod        qfe0        qfe0
192.0.2.101               up     prod        qfe0        qfe0
192.0.2.102               up     prod        qfe0        qfe0
""",
    ("FAILED", "g"): """\
GROUP       GROUPNAME   STATE     FDT       INTERFACES
db          db          failed    20.00s    [ce0 ce1]
""",
    ("FAILED", "i"): """\
INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE
ce0         no      db          -------   up        failed    failed
ce1         no      db          -------   up        failed    failed
""",
    ("FAILED", "t"): """\
INTERFACE   MODE      TESTADDR            TARGETS
ce0         routes    198.51.100.10       198.51.100.1
ce1         routes    198.51.100.11       198.51.100.1
""",
    # The addresses stayed on ce0, but nothing carries them: down, no NIC.
    ("FAILED", "a"): """\
ADDRESS                   STATE  GROUP       INBOUND     OUTBOUND
198.51.100.50             down   db          --          --
198.51.100.51             down   db          --          --
""",
    # Overflow: a value too wide is followed by one space and the excess is
    # taken back from the next fields' padding (ofmt).
    ("V6", "g"): """\
GROUP       GROUPNAME   STATE     FDT       INTERFACES
production-network production-network ok -- e1000g0
v6net       v6net       ok        10.00s    net0 (net1)
""",
    ("V6", "i"): """\
INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE
e1000g0     yes     production-network ----M-- up   disabled  ok
net0        yes     v6net       --mbM--   up        ok        ok
net1        no      v6net       -------   up        unknown   unknown
bge0        no      --          -------   up        disabled  ok
""",
    # IPv4 row when IPv4 probes or neither does; IPv6 row when IPv6 probes.
    ("V6", "t"): """\
INTERFACE   MODE      TESTADDR            TARGETS
e1000g0     disabled  --                  --
net0        multicast fe80::214:4fff:fe8b:1 fe80::1 fe80::2
net1        routes    192.0.2.21          --
net1        multicast fe80::214:4fff:fe8b:2 --
bge0        disabled  --                  --
""",
    ("V6", "a"): """\
ADDRESS                   STATE  GROUP       INBOUND     OUTBOUND
2001:db8:ffff:ffff:ffff:ffff:ffff:fffe up production-network e1000g0 e1000g0
2001:db8::10              up     v6net       net0        net0
192.0.2.30                up     v6net       net0        net0
""",
}
SNAPSHOTS = {"OK": OK, "DEGRADED": DEGRADED, "FAILED": FAILED, "V6": V6}


@pytest.mark.parametrize(("name", "mode"), sorted(GOLDEN))
def test_golden(name: str, mode: str) -> None:
    assert text(render(SNAPSHOTS[name], mode)) == GOLDEN[name, mode]


@pytest.mark.parametrize("mode", ["a", "g", "i", "t"])
def test_mode_spellings_and_numeric_are_equivalent(mode: str) -> None:
    expected = render(V6, mode)
    word = {"a": "address", "g": "group", "i": "interface", "t": "target"}[mode]
    assert render(V6, "-" + mode) == render(V6, word) == render(V6, mode, numeric=True) == expected


@pytest.mark.parametrize("mode", ["a", "g", "i", "t"])
def test_nothing_to_show_prints_no_header(mode: str) -> None:
    assert render(EMPTY_SNAPSHOT, mode) == []
    assert render({}, mode) == []


def test_overflow_realigns_later_columns() -> None:
    line = render(V6, "i")[1]
    header = render(V6, "i")[0]
    # FLAGS overran by the group name's excess; LINK gave the rest back, so
    # PROBE starts under its header again.
    assert line.index("disabled") == header.index("PROBE")


def test_lines_have_no_trailing_blanks() -> None:
    for snapshot in SNAPSHOTS.values():
        for mode in "agit":
            assert all(line == line.rstrip() for line in render(snapshot, mode))


def test_header_repeats_every_page() -> None:
    interfaces = {f"qfe{n}": itf(inet=probe(f"192.0.2.{10 + n}", R1)) for n in range(7)}
    lines = render(snap({"prod": ("ok", 10000)}, interfaces, []), "i", page_rows=4)
    headers = [i for i, line in enumerate(lines) if line.startswith("INTERFACE")]
    # ofmt counts header lines too: a 4-line page is a header and 3 rows.
    assert headers == [0, 4, 8]
    assert len(lines) == 10
    assert render(snap({"prod": ("ok", 10000)}, interfaces, []), "i", page_rows=0)[0].startswith("INTERFACE")


def test_header_repeats_after_23_rows_by_default() -> None:
    interfaces = {f"e{n:02}": itf(inet=probe("192.0.2.10", R1)) for n in range(30)}
    lines = render(snap({"prod": ("ok", 10000)}, interfaces, []), "t")
    assert [i for i, line in enumerate(lines) if line.startswith("INTERFACE")] == [0, 24]


# --------------------------------------------------------------------------
# Model mapping details
# --------------------------------------------------------------------------


def test_fdt_is_empty_when_no_member_probes() -> None:
    link_only = snap({"prod": ("ok", 10000)}, {"hme0": itf(probe="disabled"), "qfe0": itf(probe="disabled")},
                     [])
    assert render(link_only, "g", fields=["fdt"]) == ["FDT", "--"]
    assert render(link_only, "g", fields=["groupname", "fdt"], parsable=True) == ["prod:"]


def test_fdt_format() -> None:
    odd = snap({"prod": ("ok", 1500)}, {"hme0": itf(inet=probe("192.0.2.10"))}, [])
    assert render(odd, "g", fields=["fdt"], parsable=True) == ["1.50s"]


def test_standby_that_took_over_is_active_and_not_inactive() -> None:
    lines = render(DEGRADED, "i", fields=["interface", "active", "flags"], parsable=True)
    assert lines[1] == "qfe0:yes:-smb---"


def test_failed_nic_still_holding_data_is_not_active() -> None:
    # ce0 still has its addresses (group failure: no failover), yet carries nothing.
    assert render(FAILED, "i", fields=["interface", "active"], parsable=True) == ["ce0:no", "ce1:no"]


def test_nominee_skips_unusable_and_prefers_non_inactive_members() -> None:
    s = snap({"prod": ("degraded", 10000)}, {
        "a0": itf(state="failed", failed=True, active=False, inet=probe("192.0.2.10")),
        "b0": itf(active=False, standby=True, inactive=True, inet=probe("192.0.2.11")),
        "c0": itf(active=False, inet=probe("192.0.2.12")),
    }, [])
    assert render(s, "i", fields=["interface", "flags"], parsable=True) == [
        "a0:-------", "b0:is-----", "c0:--mb---"]
    # Only inactive ones left usable: the first of them.
    s["interfaces"]["c0"].update(state="offline", offline=True)
    assert render(s, "i", fields=["interface", "flags"], parsable=True) == [
        "a0:-------", "b0:ismb---", "c0:-------"]
    # Nobody usable: no nominee.
    s["interfaces"]["b0"].update(link="down")
    assert all("m" not in line for line in render(s, "i", fields=["flags"], parsable=True))


def test_address_down_when_not_up_or_on_an_unusable_nic() -> None:
    s = snap({"prod": ("degraded", 10000)}, {
        "hme0": itf(state="failed", link="down", failed=True, inet=probe("192.0.2.10")),
        "qfe0": itf(inet=probe("192.0.2.11")),
    }, [addr("192.0.2.100/24", "hme0"), addr("192.0.2.101/24", "qfe0:1", up=False),
        addr("192.0.2.102/24", "qfe0:2")])
    assert render(s, "a", fields=["address", "state", "inbound", "outbound"], parsable=True) == [
        "192.0.2.100:down::", "192.0.2.101:down::", "192.0.2.102:up:qfe0:qfe0"]


def test_anonymous_group_has_no_group_row() -> None:
    assert [line.split()[0] for line in render(V6, "g")[1:]] == ["production-network", "v6net"]


def test_probing_enabled() -> None:
    assert ipmpstat.probing_enabled(from_wire(OK))
    link_only = snap({"p": ("ok", 1)}, {"hme0": itf(probe="disabled")}, [])
    assert not ipmpstat.probing_enabled(from_wire(link_only))
    assert not ipmpstat.probing_enabled(from_wire(EMPTY_SNAPSHOT))


def test_malformed_snapshot_values_render_as_empty() -> None:
    weird: dict[str, Any] = {"v": 1, "groups": {"prod": {"state": 3, "fdt_ms": "x"}},
                             "interfaces": {"hme0": {"group": "prod", "probes": {"inet": 7}}},
                             "addresses": [{"address": None}, "junk"]}
    assert render(weird, "g") == [GOLDEN["OK", "g"].splitlines()[0],
                                  "prod        prod        --        --        [hme0]"]
    assert len(render(weird, "i")) == 2
    assert len(render(weird, "t")) == 2
    assert len(render(weird, "a")) == 2


# --------------------------------------------------------------------------
# -o and -P
# --------------------------------------------------------------------------


def test_default_field_sets_fit_80_columns() -> None:
    for mode in "agit":
        assert select_fields(mode, None).fields == ipmpstat.FIELDS[mode]
    # -p is the one mode whose table is wider: RTTDEV is left out.
    assert [f.name for f in select_fields("p", None).fields] == [
        "TIME", "INTERFACE", "PROBE", "NETRTT", "RTT", "RTTAVG", "TARGET"]
    assert select_fields("p", "ALL").fields[-1].name == "RTTDEV"


def test_selection_is_case_insensitive_ordered_and_may_repeat() -> None:
    assert text(render(OK, "i", fields=["State", "INTERFACE", "state"])) == """\
STATE     INTERFACE   STATE
ok        hme0        ok
ok        qfe0        ok
"""


def test_all_selects_every_field() -> None:
    assert render(OK, "g", fields=["ALL"]) == render(OK, "g")


def test_folding_is_ascii_only() -> None:
    # strcasecmp: the Kelvin sign is no "k".
    with pytest.raises(FieldError):
        select_fields("i", "LIN\u212a")


def test_selected_last_field_is_unpadded_and_single_field_header() -> None:
    assert render(DEGRADED, "i", fields=["link"]) == ["LINK", "down", "up", "up"]


def test_unknown_fields_warn_in_human_mode() -> None:
    selection = select_fields("g", "group,bogus,,state,")
    assert [f.name for f in selection.fields] == ["GROUP", "STATE"]
    assert selection.warning == "ignoring unknown output field: `bogus'"
    assert select_fields("g", "x,group,y").warning == "ignoring unknown output fields: `x' `y'"
    assert select_fields("g", "all,group").warning == "ignoring unknown output field: `all'"
    assert select_fields("g", "group").warning is None


@pytest.mark.parametrize(("mode", "spec", "parsable", "message"), [
    ("g", None, True, "output fields must be specified in parsable mode"),
    ("g", "", True, "output fields must be specified in parsable mode"),
    ("g", "all", True, "output field `all' invalid in parsable mode"),
    ("g", "All", True, "output field `all' invalid in parsable mode"),
    ("g", "bogus", False, "no valid output fields"),
    ("g", "bogus", True, "no valid output fields"),
    ("g", "", False, "no valid output fields"),
    ("g", ",,", False, "no valid output fields"),
    ("g", "group,bogus", True, "unknown output field: `bogus'"),
    ("a", "x,address,y", True, "unknown output fields: `x' `y'"),
])
def test_field_errors(mode: str, spec: str | None, parsable: bool, message: str) -> None:
    with pytest.raises(FieldError) as info:
        select_fields(mode, spec, parsable=parsable)
    assert str(info.value) == message


def test_render_refuses_unknown_names_and_probe_mode() -> None:
    with pytest.raises(FieldError, match="unknown output field: `nope'"):
        render(OK, "g", fields=["group", "nope"])
    with pytest.raises(FieldError, match="must be specified"):
        render(OK, "g", parsable=True)
    with pytest.raises(ValueError, match="live event stream"):
        render(OK, "p")
    with pytest.raises(ValueError, match="unknown ipmpstat mode"):
        render(OK, "x")


def test_parsable_escapes_colons_of_ipv6_addresses() -> None:
    assert text(render(V6, "a", fields=["address", "state", "group", "inbound"], parsable=True)) == """\
2001\\:db8\\:ffff\\:ffff\\:ffff\\:ffff\\:ffff\\:fffe:up:production-network:e1000g0
2001\\:db8\\:\\:10:up:v6net:net0
192.0.2.30:up:v6net:net0
"""
    assert text(render(V6, "t", fields=["interface", "mode", "testaddr", "targets"], parsable=True)) == """\
e1000g0:disabled::
net0:multicast:fe80\\:\\:214\\:4fff\\:fe8b\\:1:fe80\\:\\:1 fe80\\:\\:2
net1:routes:192.0.2.21:
net1:multicast:fe80\\:\\:214\\:4fff\\:fe8b\\:2:
bge0:disabled::
"""


def test_parsable_single_field_is_not_escaped() -> None:
    assert render(V6, "a", fields=["ADDRESS"], parsable=True) == [
        "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe", "2001:db8::10", "192.0.2.30"]


def test_parsable_escapes_backslashes_and_prints_empty_as_nothing() -> None:
    s = snap({"a\\b:c": ("ok", 10000)}, {"hme0": itf("a\\b:c", probe="disabled")}, [])
    assert render(s, "g", fields=["group", "fdt", "interfaces"], parsable=True) == ["a\\\\b\\:c::hme0"]
    assert render(s, "i", fields=["group"], parsable=True) == ["a\\b:c"]


def test_parsable_never_has_a_header() -> None:
    interfaces = {f"qfe{n}": itf(inet=probe("192.0.2.10")) for n in range(30)}
    lines = render(snap({"p": ("ok", 10000)}, interfaces, []), "i", fields=["interface"], parsable=True,
                   page_rows=2)
    assert lines == sorted(f"qfe{n}" for n in range(30))


def test_cells_locate_every_value() -> None:
    for parsable in (False, True):
        for line in render_lines(DEGRADED, "i", fields=["interface", "group", "state", "link"],
                                 parsable=parsable):
            for cell in line.cells:
                assert line.text[cell.start:cell.end] == cell.value
    header = render_lines(DEGRADED, "i")[0]
    assert header.header and header.cells == ()


# --------------------------------------------------------------------------
# --json
# --------------------------------------------------------------------------


def test_json_groups() -> None:
    assert json.loads(render_json(DEGRADED, "g")) == {"mode": "group", "rows": [{
        "group": "prod", "groupname": "prod", "state": "degraded", "fdt": 10.0,
        "interfaces": {"active": ["qfe0"], "inactive": [], "unusable": ["hme0", "qfe1"]}}]}


def test_json_interfaces_addresses_targets() -> None:
    rows = json.loads(render_json(V6, "-i"))["rows"]
    assert rows[-1] == {"interface": "bge0", "active": False, "group": None, "flags": "-------",
                        "link": "up", "probe": "disabled", "state": "ok"}
    doc = json.loads(render_json(FAILED, "a"))
    assert doc["mode"] == "address"
    assert doc["rows"][0] == {"address": "198.51.100.50", "family": "inet", "state": "down", "group": "db",
                              "inbound": None, "outbound": []}
    targets = json.loads(render_json(V6, "target"))["rows"]
    assert targets[1] == {"interface": "net0", "family": "inet6", "mode": "multicast",
                          "testaddr": "fe80::214:4fff:fe8b:1", "targets": ["fe80::1", "fe80::2"]}
    assert targets[0]["testaddr"] is None


def test_json_keys_follow_column_order_and_it_is_one_object() -> None:
    out = render_json(OK, "i")
    assert list(json.loads(out)["rows"][0]) == [f.name.lower() for f in ipmpstat.FIELDS["i"]]
    assert json.loads(render_json(EMPTY_SNAPSHOT, "g")) == {"mode": "group", "rows": []}
    with pytest.raises(ValueError):
        render_json(OK, "p")


# --------------------------------------------------------------------------
# A real machine's snapshot renders (catches layout drift)
# --------------------------------------------------------------------------


def test_machine_snapshot_renders() -> None:
    from tests.unit.mpathd_sim import Sim, make_group

    sim = Sim(make_group(2, standby=[1]))
    sim.start()
    sim.advance(3.0)
    snapshot = json.loads(json.dumps(to_wire(sim.machine.snapshot())))  # what travels over the socket
    assert render(snapshot, "g", fields=["groupname", "state", "interfaces"], parsable=True) == [
        "prod:ok:qfe0 (qfe1)"]
    assert render(snapshot, "i", fields=["interface", "active", "flags", "state"], parsable=True) == [
        "qfe0:yes:--mb---:ok", "qfe1:no:is-----:ok"]
    assert render(snapshot, "a", fields=["address", "state", "inbound"], parsable=True) == [
        "192.0.2.100:up:qfe0"]
    assert render(snapshot, "t", fields=["interface", "testaddr"], parsable=True) == [
        "qfe0:192.0.2.10", "qfe1:192.0.2.11"]


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


class FakeDaemon(ServerThread):
    """ipc.serve answering every request with ``reply``, on its own loop in a thread."""

    def __init__(self, root: Path, reply: Reply) -> None:
        super().__init__(root)
        self.reply = reply

    def answer(self, request: Request) -> Reply:
        return self.reply


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def daemon(root: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(root, Reply(data=DEGRADED))
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


NO_DAEMON = "ipmpstat: cannot contact in.mpathd(1M) -- is IPMP in use?\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["--version"], capsys)
    assert status == 0 and out.startswith("ipmpstat (ipmp) ")


@pytest.mark.parametrize(("argv", "first"), [
    ([], ""),
    (["-n"], ""),
    (["-x"], "ipmpstat: illegal option -- x\n"),
    (["-g", "-x"], "ipmpstat: illegal option -- x\n"),
    (["-o"], "ipmpstat: option requires an argument -- o\n"),
    (["-g", "extra"], ""),
    (["-g", "--", "extra"], ""),
    (["--help"], "ipmpstat: illegal option -- -\n"),
    (["--version", "-g"], "ipmpstat: illegal option -- -\n"),
])
def test_usage(root: Path, argv: list[str], first: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv, capsys) == (1, "", first + cli.USAGE)


def test_usage_text_is_solaris() -> None:
    assert cli.USAGE.splitlines()[0] == "usage: ipmpstat [-n] [-o <field> [-P]] -a|-g|-i|-p|-t"
    assert "\t\t -t  display IPMP target information\n" in cli.USAGE


@pytest.mark.parametrize(("argv", "message"), [
    (["-g", "-i"], "only one output format may be specified"),
    (["-gg"], "only one output format may be specified"),
    (["-a", "-a"], "only one output format may be specified"),
    # The second mode is fatal before a later bad option is even seen.
    (["-g", "-p", "-x"], "only one output format may be specified"),
    (["-P", "-g"], "output fields must be specified in parsable mode"),
    (["-P", "-o", "all", "-g"], "output field `all' invalid in parsable mode"),
    (["-o", "bogus", "-i"], "no valid output fields"),
    (["-P", "-o", "interface,bogus,x", "-i"], "unknown output fields: `bogus' `x'"),
    (["-o", "time", "-P", "-p", "-o", "nope,time"], "unknown output field: `nope'"),
    (["--json", "-o", "state", "-g"], "--json cannot be combined with -o or -P"),
    (["-P", "-g", "--json"], "--json cannot be combined with -o or -P"),
])
def test_option_errors_come_before_the_daemon(root: Path, argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv, capsys) == (1, "", f"ipmpstat: {message}\n")


@pytest.mark.parametrize("argv", [["-g"], ["-a", "-n"], ["-P", "-o", "interface", "-i"], ["-t", "--json"],
                                  ["-p"]])
def test_daemon_not_running(root: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv, capsys) == (1, "", NO_DAEMON)


def test_unknown_field_warning_still_prints(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-o", "group,bogus", "-g"], capsys) == (
        1, "", "ipmpstat: warning: ignoring unknown output field: `bogus'\n" + NO_DAEMON)


@pytest.mark.parametrize(("argv", "expected"), [
    (["-g"], GOLDEN["DEGRADED", "g"]),
    (["-i"], GOLDEN["DEGRADED", "i"]),
    (["-t"], GOLDEN["DEGRADED", "t"]),
    (["-a"], GOLDEN["DEGRADED", "a"]),
    (["-n", "-a"], GOLDEN["DEGRADED", "a"]),
    (["-an"], GOLDEN["DEGRADED", "a"]),
    (["-o", "all", "-i"], GOLDEN["DEGRADED", "i"]),
    (["-ointerface,STATE", "-i"],
     "INTERFACE   STATE\nhme0        failed\nqfe0        ok\nqfe1        offline\n"),
    (["-P", "-o", "interface,flags,state", "-i"],
     "hme0:-------:failed\nqfe0:-smb---:ok\nqfe1:-------:offline\n"),
    (["-Po", "groupname,interfaces", "-g"], "prod:qfe0 [hme0 qfe1]\n"),
])
def test_against_the_daemon(daemon: FakeDaemon, argv: list[str], expected: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv, capsys) == (0, expected, "")
    assert daemon.requests == [Request("query")]


def test_warning_and_output(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-o", "groupname,bogus,state", "-g"], capsys) == (
        0, "GROUPNAME   STATE\nprod        degraded\n",
        "ipmpstat: warning: ignoring unknown output field: `bogus'\n")


def test_json(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["--json", "-g"], capsys)
    assert (status, err) == (0, "")
    assert out == render_json(DEGRADED, "g") + "\n"


def test_probe_mode_needs_a_daemon_that_streams(daemon: FakeDaemon,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # This fake serves without a broker: subscribe is answered IPMP_EPROTO.
    assert run(["-p"], capsys) == (
        1, "", "ipmpstat: cannot subscribe to probe events: unable to communicate with in.mpathd\n")
    daemon.reply = Reply(data=snap({"p": ("ok", 1)}, {"hme0": itf("p", probe="disabled")}, []))
    assert run(["-p"], capsys) == (1, "", "ipmpstat: probe-based failure detection is disabled\n")


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(protocol.MPATHD_SYS_ERROR, errno.EIO), "Input/output error"),
    (Reply(protocol.IPMP_EPROTO), "unable to communicate with in.mpathd"),
    (Reply(data={"v": 2}), "unable to communicate with in.mpathd"),
    (Reply(data={}), "unable to communicate with in.mpathd"),
])
def test_daemon_errors(daemon: FakeDaemon, reply: Reply, message: str,
                       capsys: pytest.CaptureFixture[str]) -> None:
    daemon.reply = reply
    assert run(["-g"], capsys) == (1, "", f"ipmpstat: cannot snapshot IPMP state: {message}\n")


def test_alternate_root_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path / "elsewhere"))
    fake = FakeDaemon(tmp_path, Reply(data=OK))
    fake.start()
    try:
        assert run(["-R", str(tmp_path), "-g"], capsys) == (0, GOLDEN["OK", "g"], "")
        assert run(["-g"], capsys) == (1, "", NO_DAEMON)
    finally:
        fake.stop()


def test_colour_on_a_terminal_keeps_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLORTERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    lines = render_lines(DEGRADED, "i")
    out = Tty()
    cli.emit(lines, out, colour=True)
    coloured = out.getvalue()
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == GOLDEN["DEGRADED", "i"]
    plain = io.StringIO()
    cli.emit(lines, plain, colour=False)
    assert plain.getvalue() == GOLDEN["DEGRADED", "i"]


def test_checkout_shim_output_is_plain_when_piped(daemon: FakeDaemon) -> None:
    env = {**os.environ, "IPMP_ROOT": str(daemon.root), "FORCE_COLOR": "1"}
    done = subprocess.run([sys.executable, str(REPO / "bin" / "ipmpstat"), "-i"], capture_output=True,
                          text=True, env=env, timeout=30, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, GOLDEN["DEGRADED", "i"], "")
