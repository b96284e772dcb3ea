"""``ipmp-boot`` hands over the NICs ``etc/ipadm/ipadm.conf`` configures too (issue 17).

A NIC that only Solaris 11's persistent configuration names is still one
in.mpathd moves addresses on: ifupdown or NetworkManager managing it would
undo the moves as they would for a hostname-file NIC.  So ipmp-boot refuses
it too, naming the file that configures it, and ``--take-over`` hands it over.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from labhost import Host, MakeTopology

from ipmp.host import coexist, dropins
from ipmp.host.ifupdown import MARK

NICS = ("qfe0", "qfe1")
DB = "etc/ipadm/ipadm.conf"
#: ipadm.conf as ``ipadm create-ip qfe0; create-ip qfe1; create-ipmp -i qfe0,qfe1 ipmp0;
#: create-addr -a 192.0.2.10/24 ipmp0`` writes it (libipadm's line format, ipmp.config.ipadm_db).
GROUPED_DB = (
    "_ifname=qfe0;_family=2;_ifclass=0;\n"
    "_ifname=qfe1;_family=2;_ifclass=0;\n"
    "_ifname=ipmp0;_family=2;_ifclass=1;\n"
    "_ifname=ipmp0;_underif=qfe0;\n"
    "_ifname=ipmp0;_underif=qfe1;\n"
    "_ifname=ipmp0;_aobjname=ipmp0/v4;_ipv4addr=192.0.2.10,;\n"
    "_ifname=ipmp0;_aobjname=ipmp0/v4;prefixlen=24;\n"
)
STANZA = "allow-hotplug qfe0\niface qfe0 inet static\n\taddress 198.51.100.5/24\n"


def _root(tmp_path: Path, db: str, *, nmcli: str | None = None) -> Path:
    """A root with ``db`` as its ipadm.conf and the services' tools in usr/bin (``coexist.find_tool``).

    Without ``nmcli`` (its output), both tools fail as when their service is not running.
    """
    root = tmp_path / "root"
    (root / "etc/ipadm").mkdir(parents=True)
    (root / DB).write_text(db)
    bindir = root / "usr/bin"
    bindir.mkdir(parents=True)
    failing = "#!/bin/sh\necho 'not running' >&2\nexit 1\n"
    scripts = {"nmcli": failing if nmcli is None else f"#!/bin/sh\nprintf '{nmcli}'\n",
               "networkctl": failing}
    for name, text in scripts.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    return root


def _ifupdown(root: Path) -> Path:
    network = root / "etc/network"
    (network / "interfaces.d").mkdir(parents=True)
    (network / "interfaces").write_text("source /etc/network/interfaces.d/*\n")
    stanza = network / "interfaces.d/qfe0"
    stanza.write_text(STANZA)
    stanza.chmod(0o640)
    return stanza


def _holders(host: Host, address: str) -> list[tuple[str, str | None]]:
    return [(nic, a["label"]) for nic in NICS for a in host.addresses4(nic) if a["local"] == address]


def test_an_ipadm_nic_under_ifupdown_is_refused_then_taken_over(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    root = _root(tmp_path, GROUPED_DB)
    stanza = _ifupdown(root)
    host = Host(make_topology(nics=NICS), root)
    before = host.snapshot()
    backup = root / "etc/ipmp/takeover/etc/network/interfaces.d/qfe0"

    refused = host.boot()

    assert (refused.returncode, refused.stdout) == (1, ""), refused.stderr
    assert refused.stderr.splitlines() == [
        f"ipmp-boot: ifupdown manages qfe0, which {root / DB} configures ({stanza}:2: iface qfe0 "
        "inet static): it would put its own addresses and routes beside in.mpathd's and undo its moves.  "
        "Nothing was changed.",
        "ipmp-boot: to hand them over: from a console, 'ifdown qfe0' (ifupdown takes its addresses and "
        f"routes away), then 'ipmp-boot --take-over': it comments the stanzas out of {stanza} and keeps "
        f"the original in {backup} (copy it back to undo).",
    ]
    assert host.snapshot() == before and stanza.read_text() == STANZA and not backup.exists()
    assert not (root / "run/ipmp/state.json").exists()

    taken = host.boot("--take-over")

    assert (taken.returncode, taken.stderr) == (0, ""), taken.stderr
    assert taken.stdout.splitlines()[0].startswith(
        f"ipmp-boot: commented out the ifupdown stanzas of qfe0 in {stanza}; the original is {backup}")
    assert stanza.read_text() == "".join(MARK + line + "\n" for line in STANZA.splitlines())
    assert backup.read_text() == STANZA and stat.S_IMODE(backup.stat().st_mode) == 0o600
    # The data address of ipmp0 is an ordinary address of one member, on a logical unit of its own.
    ((holder, label),) = _holders(host, "192.0.2.10")
    assert holder in NICS and label is not None and label.startswith(f"{holder}:")
    assert (root / DB).read_text() == GROUPED_DB

    # Nothing left to hand over: a plain boot is quiet and changes nothing.
    settled = host.snapshot()
    again = host.boot()
    assert (again.returncode, again.stderr) == (0, ""), again.stderr
    assert host.snapshot() == settled


def test_a_service_managing_nics_of_both_files_names_each_file(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    # NetworkManager manages both NICs; the hostname file configures qfe1, ipadm.conf qfe0.
    root = _root(tmp_path, "_ifname=qfe0;_family=2;_ifclass=0;\n"
                 "_ifname=qfe0;_aobjname=qfe0/v4;_ipv4addr=192.0.2.20,;\n"
                 "_ifname=qfe0;_aobjname=qfe0/v4;prefixlen=24;\n",
                 nmcli="qfe0:connected\\nqfe1:disconnected\\nlo:unmanaged\\n")
    (root / "etc/hostname.qfe1").write_text("198.51.100.21/24 up\n")
    host = Host(make_topology(nics=NICS), root)
    before = host.snapshot()

    refused = host.boot()

    assert (refused.returncode, refused.stdout) == (1, ""), refused.stderr
    dropin = root / "etc/NetworkManager/conf.d/90-ipmp.conf"
    assert refused.stderr.splitlines() == [
        f"ipmp-boot: NetworkManager manages qfe1, which the hostname files configure, and qfe0, which "
        f"{root / DB} configures: it would undo in.mpathd's address moves.  Nothing was changed.",
        f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over': it writes {dropin}, runs "
        "'nmcli general reload conf' and waits until NetworkManager lets go, then configures them.",
        "ipmp-boot: or, until NetworkManager restarts: nmcli device set qfe1 managed no; "
        "nmcli device set qfe0 managed no",
    ]
    assert host.snapshot() == before and not dropin.exists()

    dry = host.boot("--dry-run", "--take-over")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == (
        f"# --take-over: would write {dropin} (NetworkManager lets go of qfe1 qfe0)")
    assert host.snapshot() == before and not dropin.exists()


def test_a_malformed_ipadm_conf_names_no_nic_and_is_reported_by_the_boot(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    # ifupdown's qfe0 is named by no file ipmp-boot reads: no refusal; the bad line is the boot's error.
    root = _root(tmp_path, "_ifname=qfe0;_family=2;_ifclass=0;\nnot a pair list\n")
    _ifupdown(root)
    (root / "etc/hostname.qfe1").write_text("198.51.100.21/24 up\n")
    host = Host(make_topology(nics=NICS), root)

    proc = host.boot()

    assert proc.returncode == 1
    assert "ifupdown" not in proc.stderr
    assert f"{root / DB}:2:" in proc.stderr, proc.stderr
    assert "configuring IPv4 interfaces: qfe1.\n" in proc.stdout
    assert _holders(host, "198.51.100.21") == [("qfe1", "qfe1")]
    assert host.addresses4("qfe0") == []


@pytest.mark.parametrize(("named", "db_named", "says"), [
    ("qfe0", "", "the hostname files configure them too"),
    ("", "qfe0", "{db} configures them too"),
    ("qfe1", "qfe0", "the hostname files and {db} (qfe0) configure them too"),
])
def test_netplan_refusal_names_the_file_of_each_nic(tmp_path: Path, named: str, db_named: str,
                                                    says: str) -> None:
    yaml = tmp_path / "etc/netplan/50-cloud-init.yaml"
    yaml.parent.mkdir(parents=True)
    yaml.write_text("network:\n  ethernets:\n    qfe0: {dhcp4: true}\n    qfe1: {dhcp4: true}\n")
    (managed,) = coexist.detect_files(tmp_path, ["qfe1", "qfe0"])
    db = tmp_path / DB
    line = dropins.refusal_lines(tmp_path, managed, named, db_named, db)[0]
    nics = ", ".join(n for n in (named, db_named) if n)
    assert line == (f"ipmp-boot: netplan configures {nics} for systemd-networkd ({yaml}), and "
                    f"{says.format(db=db)}: it would undo in.mpathd's address moves.  Nothing was changed.")
