"""The persistent ipadm configuration's text (ipmp.config.ipadm_db) and its file (ipmp.host.ipadm_db)."""

from __future__ import annotations

import os
import stat
from ipaddress import ip_interface
from pathlib import Path

import pytest

from ipmp.config.ipadm_db import (
    AddAddress,
    AddInterface,
    AddMember,
    DeleteAddress,
    DeleteInterface,
    IpadmDb,
    RemoveMember,
    ResetProperty,
    SetProperty,
    apply_edits,
    parse_db,
    render_db,
)
from ipmp.errors import ParseError
from ipmp.host import ipadm_db
from ipmp.model import Family

#: A file as a Solaris 11 host might hold it: typed values, a DHCP address, an addrconf
#: address and a property this toolkit has no use for, and a comment.
SOLARIS = """\
# Do not edit
_ifname=net3;_family=string,2;_ifclass=string,0;
_ifname=net3;_aobjname=string,net3/dhcp;_dhcp=string,-1,no;
_ifname=net3;_aobjname=string,net3/v6;_intfid=string,::/0,yes,yes;
_ifname=net3;_protocol=string,ip;mtu=string,9000;
_ifname=net0;_family=string,2;_ifclass=string,0;
_ifname=net0;_family=string,26;_ifclass=string,0;
"""


def built() -> IpadmDb:
    return apply_edits(IpadmDb(), (
        AddInterface("net0"), AddInterface("net1"), AddInterface("ipmp0", ipmp=True),
        AddMember("ipmp0", "net1"), AddMember("ipmp0", "net0"),
        AddAddress("ipmp0/v4", "ipmp0", ip_interface("192.0.2.10/24")),
        AddAddress("net0/v6", "net0", ip_interface("2001:db8::5/64")),
        SetProperty("net1", "ip", "standby", "on"),
    ))


def test_lines_are_the_illumos_form() -> None:
    text = render_db(built())
    assert "_ifname=net0;_family=2;_ifclass=0;\n" in text
    assert "_ifname=net0;_family=26;_ifclass=0;\n" in text
    assert "_ifname=ipmp0;_family=2;_ifclass=1;\n" in text
    assert "_ifname=ipmp0;_underif=net1;\n_ifname=ipmp0;_underif=net0;\n" in text
    assert "_ifname=ipmp0;_aobjname=ipmp0/v4;_ipv4addr=192.0.2.10,;\n" in text
    assert "_ifname=ipmp0;_aobjname=ipmp0/v4;prefixlen=24;\n" in text
    assert "_ifname=net1;_protocol=ip;standby=on;\n" in text


def test_round_trip_gives_the_records() -> None:
    db = parse_db(render_db(built()), "ipadm.conf")
    assert render_db(db) == render_db(built())
    ipmp0 = db.interface("ipmp0")
    assert ipmp0 is not None and ipmp0.ipmp and ipmp0.members == ("net1", "net0")
    assert ipmp0.families == {Family.INET, Family.INET6}
    net1 = db.interface("net1")
    assert net1 is not None and not net1.ipmp and net1.property("standby") == "on"
    assert [(a.addrobj, a.ifname, str(a.address)) for a in db.addresses] == [
        ("ipmp0/v4", "ipmp0", "192.0.2.10/24"), ("net0/v6", "net0", "2001:db8::5/64")]


def test_lines_we_do_not_know_survive_every_edit() -> None:
    db = parse_db(SOLARIS, "ipadm.conf")
    net0 = db.interface("net0")
    assert net0 is not None and net0.families == {Family.INET, Family.INET6}
    assert [ln.line for ln in db.unknown] == [3, 4, 5]
    edited = apply_edits(db, (AddInterface("ipmp0", ipmp=True), AddMember("ipmp0", "net0"),
                              SetProperty("net0", "ip", "standby", "on")))
    text = render_db(edited)
    assert text.startswith(SOLARIS)  # every line as it was, typed values and all
    back = apply_edits(edited, (DeleteInterface("ipmp0"), ResetProperty("net0", "ip", "standby")))
    assert render_db(back) == SOLARIS


def test_delete_interface_takes_its_lines_and_memberships() -> None:
    db = apply_edits(built(), (DeleteInterface("net0"), DeleteAddress("net0/v6")))
    assert db.interface("net0") is None
    ipmp0 = db.interface("ipmp0")
    assert ipmp0 is not None and ipmp0.members == ("net1",)
    assert apply_edits(db, (RemoveMember("ipmp0", "net1"),)).interface("ipmp0").members == ()  # type: ignore[union-attr]


def test_comma_separated_members_are_read_and_edited() -> None:
    db = parse_db("_ifname=ipmp0;_family=2;_ifclass=1;\n_ifname=ipmp0;_underif=net0,net1;\n")
    assert db.interface("ipmp0").members == ("net0", "net1")  # type: ignore[union-attr]
    db = apply_edits(db, (RemoveMember("ipmp0", "net0"),))
    assert render_db(db).endswith("_ifname=ipmp0;_underif=net1;\n")


@pytest.mark.parametrize(("text", "where"), [
    ("_ifname=net0;_family=2;\n_ifname=net0;garbage;\n", "f:2:14"),
    ("  =x;\n", "f:1:3"),
])
def test_malformed_lines_are_errors_with_position(text: str, where: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_db(text, "f")
    assert str(info.value).startswith(where + ": ")


def test_file_is_written_atomically_with_modes(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        ipadm_db.save(tmp_path, built())
    finally:
        os.umask(old)
    path = tmp_path / "etc/ipadm/ipadm.conf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    assert render_db(ipadm_db.load(tmp_path)) == render_db(built())
    assert not list(path.parent.glob(".*tmp"))


def test_save_never_follows_a_link_at_the_temporary_name(tmp_path: Path) -> None:
    (tmp_path / "etc/ipadm").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "etc/ipadm/.ipadm.conf.tmp").symlink_to(victim)
    with pytest.raises(OSError):
        ipadm_db.save(tmp_path, built())
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "etc/ipadm/ipadm.conf").exists()


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert ipadm_db.load(tmp_path).interfaces == ()
