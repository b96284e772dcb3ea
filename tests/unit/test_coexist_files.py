"""ifupdown and netplan: which NICs their files configure, and the reversible take-over (issue 14).

Files are written under a temporary root in the forms Debian's installer and
netplan write them; nothing outside the root is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ipmp.host import coexist, dropins, ifupdown, netplan
from ipmp.host.coexist import Managed, detect, detect_files

#: What Debian 12's installer writes for a static address.
DEBIAN_INTERFACES = """\
# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
allow-hotplug ens8
iface ens8 inet static
\taddress 192.0.2.10/24
\tgateway 192.0.2.1
\t# dns-* options are implemented by the resolvconf package, if installed
\tdns-nameservers 192.0.2.53
"""


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_parse_stanzas_options_and_auto(tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    stanzas, includes = ifupdown.parse_interfaces(DEBIAN_INTERFACES, path)
    assert [(s.nic, s.family, s.method, s.line, s.options, s.auto) for s in stanzas] == [
        ("lo", "inet", "loopback", 8, 0, True),
        ("ens8", "inet", "static", 12, 3, True),  # the comment line is no option
    ]
    assert includes == [("source", "/etc/network/interfaces.d/*")]
    assert str(stanzas[1]) == f"{path}:12: iface ens8 inet static"


@pytest.mark.parametrize(("text", "managed"), [
    ("iface eth1 inet dhcp\n", True),
    ("iface eth1 inet6 auto\n", True),
    ("iface eth1 inet manual\n", False),  # only sets the link up/down
    ("iface eth1 inet manual\n  up ip addr add 192.0.2.9/24 dev eth1\n", True),  # commands may add
    ("auto eth1\niface eth1 inet manual\n\nauto eth2\n", False),
    ("iface eth1 inet \\\n  static\n  address 192.0.2.9/24\n", True),  # continuation line
    ("# iface eth1 inet static\n", False),
    ("iface eth2 inet static\n  address 192.0.2.9/24\n", False),  # another NIC
])
def test_what_counts_as_managed(tmp_path: Path, text: str, managed: bool) -> None:
    stanzas, _ = ifupdown.parse_interfaces(text, tmp_path / "interfaces")
    assert bool(ifupdown.managed_stanzas(stanzas, ["eth1"])) is managed


def test_read_follows_source_and_source_directory_under_the_root(tmp_path: Path) -> None:
    _write(tmp_path, "etc/network/interfaces",
           "source /etc/network/interfaces.d/*\nsource-directory more\nsource interfaces\n")
    _write(tmp_path, "etc/network/interfaces.d/ens8", "iface ens8 inet dhcp\n")
    _write(tmp_path, "etc/network/more/ens9", "iface ens9 inet static\n address 192.0.2.9/24\n")
    # source-directory reads only [A-Za-z0-9_-]+ names: not a backup with a dot.
    _write(tmp_path, "etc/network/more/ens10.bak", "iface ens10 inet dhcp\n")
    # An absolute path is below the root, never the host's own file.
    _write(tmp_path, "elsewhere", "iface ens11 inet dhcp\n")
    _write(tmp_path, "etc/network/interfaces.d/abs", f"source {tmp_path}/elsewhere\n")
    found = ifupdown.read(tmp_path)
    assert sorted(s.nic for s in found) == ["ens8", "ens9"]
    assert ifupdown.read(tmp_path / "nothing-here") == []


def test_detect_files_names_the_stanza(tmp_path: Path) -> None:
    _write(tmp_path, "etc/network/interfaces", DEBIAN_INTERFACES)
    found = detect_files(tmp_path, ["ens8", "ens9"])
    path = tmp_path / "etc/network/interfaces"
    assert found == [Managed("ifupdown", ("ens8",), (f"{path}:12: iface ens8 inet static",), (path,))]
    # The services are asked as well; a root adds the files.
    assert detect({"ens8": 2}, run=lambda argv: None, root=tmp_path) == found
    assert detect({"ens8": 2}, run=lambda argv: None) == []


def test_refusal_says_what_to_do_and_where_the_original_goes(tmp_path: Path) -> None:
    _write(tmp_path, "etc/network/interfaces", DEBIAN_INTERFACES)
    (managed,) = detect_files(tmp_path, ["ens8"])
    lines = dropins.refusal_lines(tmp_path, managed, "ens8 (hme0)")
    path = tmp_path / "etc/network/interfaces"
    assert lines == [
        f"ipmp-boot: ifupdown manages ens8 (hme0), which the hostname files configure ({path}:12: iface "
        "ens8 inet static): it would put its own addresses and routes beside in.mpathd's and undo its "
        "moves.  Nothing was changed.",
        "ipmp-boot: to hand them over: from a console, 'ifdown ens8' (ifupdown takes its addresses and "
        f"routes away), then 'ipmp-boot --take-over': it comments the stanzas out of {path} and keeps "
        f"the original in {tmp_path}/etc/ipmp/takeover/etc/network/interfaces (copy it back to undo).",
    ]


def test_take_over_comments_out_keeps_a_private_backup_and_is_undoable(tmp_path: Path) -> None:
    path = _write(tmp_path, "etc/network/interfaces", DEBIAN_INTERFACES, mode=0o600)
    (managed,) = detect_files(tmp_path, ["ens8"])

    dry = dropins.take_over_files(tmp_path, managed, write=False)
    backup = tmp_path / "etc/ipmp/takeover/etc/network/interfaces"
    assert dry == [f"# --take-over: would comment out ens8 in {path} (original kept in {backup})"]
    assert path.read_text() == DEBIAN_INTERFACES and not backup.exists()

    done = dropins.take_over_files(tmp_path, managed, write=True)
    assert len(done) == 1 and done[0].startswith(f"ipmp-boot: commented out the ifupdown stanzas of ens8 "
                                                 f"in {path}; the original is {backup}")
    assert "ip route flush dev ens8 proto boot" in done[0]
    text = path.read_text()
    assert text.splitlines()[10:16] == [
        ifupdown.MARK + "allow-hotplug ens8",
        ifupdown.MARK + "iface ens8 inet static",
        ifupdown.MARK + "\taddress 192.0.2.10/24",
        ifupdown.MARK + "\tgateway 192.0.2.1",
        "\t# dns-* options are implemented by the resolvconf package, if installed",
        ifupdown.MARK + "\tdns-nameservers 192.0.2.53",
    ]
    # ifupdown no longer configures it; the loopback stays its own.
    assert detect_files(tmp_path, ["ens8", "lo"]) == [
        Managed("ifupdown", ("lo",), (f"{path}:8: iface lo inet loopback",), (path,))]
    # The file keeps its mode (it may hold secrets); the backup is private and exact.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert backup.read_text() == DEBIAN_INTERFACES
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "etc/ipmp/takeover").stat().st_mode) == 0o700

    # Again: nothing to do, and the first original is never overwritten.
    assert dropins.take_over_files(tmp_path, managed, write=True) == []
    assert backup.read_text() == DEBIAN_INTERFACES
    # Undo, as the message says.
    path.write_text(backup.read_text())
    assert detect_files(tmp_path, ["ens8"]) == [managed]


def test_auto_line_keeps_the_other_nics(tmp_path: Path) -> None:
    text = "auto lo ens8 ens9\niface ens8 inet dhcp\niface ens9 inet dhcp\n"
    new = ifupdown.without_nics(text, ["ens8"])
    assert new.splitlines() == [ifupdown.MARK + "auto lo ens8 ens9", "auto lo ens9",
                                ifupdown.MARK + "iface ens8 inet dhcp", "iface ens9 inet dhcp"]
    assert ifupdown.without_nics(new, ["ens8"]) == new


def test_take_over_in_interfaces_d_keeps_the_backup_out_of_the_glob(tmp_path: Path) -> None:
    """Debian's ``source /etc/network/interfaces.d/*`` would read a copy kept next to the file."""
    _write(tmp_path, "etc/network/interfaces", "source /etc/network/interfaces.d/*\n")
    _write(tmp_path, "etc/network/interfaces.d/ens8", "auto ens8\niface ens8 inet dhcp\n")
    (managed,) = detect_files(tmp_path, ["ens8"])
    dropins.take_over_files(tmp_path, managed, write=True)
    assert sorted(p.name for p in (tmp_path / "etc/network/interfaces.d").iterdir()) == ["ens8"]
    assert detect_files(tmp_path, ["ens8"]) == []
    assert (tmp_path / "etc/ipmp/takeover/etc/network/interfaces.d/ens8").is_file()


def test_take_over_refuses_a_symlink(tmp_path: Path) -> None:
    target = _write(tmp_path, "outside", "iface ens8 inet dhcp\n")
    _write(tmp_path, "etc/network/interfaces", "source interfaces.d/*\n")
    link = tmp_path / "etc/network/interfaces.d/ens8"
    link.parent.mkdir(parents=True)
    os.symlink(target, link)
    (managed,) = detect_files(tmp_path, ["ens8"])
    with pytest.raises(OSError, match="symbolic link"):
        dropins.take_over_files(tmp_path, managed, write=True)
    assert target.read_text() == "iface ens8 inet dhcp\n"


# --------------------------------------------------------------------------
# netplan
# --------------------------------------------------------------------------

NETPLAN_NETWORKD = """\
# This is the network config written by 'subiquity'
network:
  version: 2
  ethernets:
    ens8:
      addresses: [192.0.2.10/24]
      routes:
        - to: default
          via: 192.0.2.1
    "ens9": {dhcp4: true}
"""


@pytest.mark.parametrize(("text", "named", "renderers"), [
    (NETPLAN_NETWORKD, ("ens8", "ens9"), {"networkd"}),
    ("network:\n  renderer: NetworkManager\n  ethernets:\n    ens8: {}\n", ("ens8",), {"NetworkManager"}),
    ("network:\n  ethernets:\n    all:\n      match:\n        name: \"en*\"\n      dhcp4: true\n",
     ("ens8", "ens9"), {"networkd"}),
    ("network:\n  bonds:\n    bond0:\n      interfaces: [ens8]\n", ("ens8",), {"networkd"}),
    ("network:\n  ethernets:\n    ens80: {}\n    # ens8: {}\n", (), {"networkd"}),
    ("network:\n  ethernets:\n    id0:\n      match: {macaddress: '52:54:00:12:34:56'}\n"
     "      set-name: ens9\n", ("ens9",), {"networkd"}),
])
def test_netplan_scan(text: str, named: tuple[str, ...], renderers: set[str]) -> None:
    assert netplan.scan(text, ["ens8", "ens9"]) == (named, frozenset(renderers))


def test_netplan_run_overrides_etc_and_take_over_writes_the_renderers_dropin(tmp_path: Path) -> None:
    _write(tmp_path, "etc/netplan/50-cloud-init.yaml", NETPLAN_NETWORKD)
    _write(tmp_path, "lib/netplan/50-cloud-init.yaml", "network: {ethernets: {ens7: {}}}\n")
    _write(tmp_path, "etc/netplan/90-nm.yaml", "network:\n  renderer: NetworkManager\n"
                                               "  ethernets: {ens9: {}}\n")
    found = detect_files(tmp_path, ["ens7", "ens8"])
    yaml = tmp_path / "etc/netplan/50-cloud-init.yaml"
    assert found == [Managed("netplan", ("ens8",), (str(yaml),), (yaml,), ("systemd-networkd",))]
    (managed,) = found
    dropin = tmp_path / "etc/systemd/network/10-ipmp-ens8.network"
    conf = tmp_path / "etc/systemd/networkd.conf.d/90-ipmp.conf"
    assert managed.dropins(tmp_path) == (dropin, conf)
    assert dropins.refusal_lines(tmp_path, managed, "ens8")[1] == (
        f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over' (it writes {dropin}, {conf}, which wins "
        f"over what netplan renders, and runs 'networkctl reload'); and take them out of {yaml}.")
    assert dropins.take_over_files(tmp_path, managed, write=False)[0].startswith(
        f"# --take-over: would write {dropin}")
    assert not dropin.exists()
    done = dropins.take_over_files(tmp_path, managed, write=True)
    assert done[0].startswith(f"ipmp-boot: wrote {dropin}: systemd-networkd lets go of ens8")
    assert dropin.read_text() == dropins.networkd_dropin("ens8")
    assert done[1] == (f"ipmp-boot: wrote {conf}: systemd-networkd leaves in.mpathd's routing policy rules "
                       "alone from its next start")
    assert conf.read_text() == dropins.networkd_conf_dropin()
    assert yaml.read_text() == NETPLAN_NETWORKD  # netplan's own file is left alone

    _write(tmp_path, "run/netplan/50-cloud-init.yaml", "network: {ethernets: {ens7: {}}}\n")
    assert [m.nics for m in detect_files(tmp_path, ["ens7", "ens8"])] == [("ens7",)]


def test_netplan_for_networkmanager_appends_to_its_dropin(tmp_path: Path) -> None:
    _write(tmp_path, "etc/netplan/01-nm.yaml", "network:\n  renderer: NetworkManager\n"
                                               "  ethernets:\n    ens8: {}\n")
    (managed,) = detect_files(tmp_path, ["ens8"])
    assert managed.renderers == ("NetworkManager",)
    dropins.take_over_files(tmp_path, managed, write=True)
    text = (tmp_path / coexist.NM_DROPIN).read_text()
    assert text.splitlines()[-1] == "unmanaged-devices+=interface-name:ens8;"
