"""Solaris 11.4's per-group ``allow-xprobe``: ipadm set/reset/show, store and file, in.mpathd's choice.

Oracle ipadm(8) (https://docs.oracle.com/cd/E88353_01/html/E72487/ipadm-8.html)
and in.mpathd(8): ``allow-xprobe`` is a property of the IPMP interface
(``on``, ``off``, ``inherit``; default ``inherit``, which follows
``svc:/network/ipmp config/transitive-probing``).  A group probes
transitively when its IPMP interface says ``on`` whatever the SMF switch
says, never when it says ``off``; and any test address in the group still
turns transitive probing off for it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ipmp.admin.ipadm_show import show
from ipmp.config.ipadm_db import IpadmDb, ResetProperty, SetProperty, apply_edits, parse_db, render_db
from ipmp.config.ipadm_eval import db_steps, evaluate
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError, parse_argv
from ipmp.host import state
from ipmp.model import Config, Family, Interface
from ipmp.mpathd import transitive
from ipmp.mpathd.phyint import State
from ipmp.mpathd.probe import ProbeKind
from tests.unit.mpathd_sim import GROUP, ROUTERS, Sim, data_ip, make_group
from tests.unit.test_ipadm_eval import nics, refused, run

V4 = frozenset({Family.INET})


# -- ipadm: set-ifprop / reset-ifprop ---------------------------------------------------------


def group_of_two() -> Config:
    c = run(run(nics("net0", "net1"), "create-ip", "net0"), "create-ip", "net1")
    return run(c, "create-ipmp", "ipmp0", interfaces=("net0,net1",))


def xprobe_of(config: Config, name: str = "ipmp0") -> str:
    itf = config.get(name)
    assert itf is not None
    return itf.allow_xprobe


def test_a_new_ipmp_interface_inherits() -> None:
    assert xprobe_of(group_of_two()) == "inherit"


@pytest.mark.parametrize("value", ["on", "off", "inherit"])
def test_set_ifprop_sets_and_persists(value: str) -> None:
    out = evaluate(group_of_two(), IpadmCommand("set-ifprop", "ipmp0", properties=(("allow-xprobe", value),),
                                                protocol="ip"))
    assert xprobe_of(out.config) == value
    assert out.edits == (SetProperty("ipmp0", "ip", "allow-xprobe", value),)


def test_reset_ifprop_is_inherit_again_and_temporary_writes_nothing() -> None:
    on = run(group_of_two(), "set-ifprop", "ipmp0", properties=(("allow-xprobe", "on"),), protocol="ip")
    out = evaluate(on, IpadmCommand("reset-ifprop", "ipmp0", properties=(("allow-xprobe", None),),
                                    protocol="ip"))
    assert xprobe_of(out.config) == "inherit"
    assert out.edits == (ResetProperty("ipmp0", "ip", "allow-xprobe"),)
    temp = evaluate(group_of_two(), IpadmCommand("set-ifprop", "ipmp0", temporary=True,
                                                 properties=(("allow-xprobe", "off"),), protocol="ip"))
    assert xprobe_of(temp.config) == "off" and temp.edits == ()


def test_refusals_have_solaris_shape() -> None:
    c = group_of_two()
    assert refused(c, "set-ifprop", "ipmp0", properties=(("allow-xprobe", "yes"),), protocol="ip") == \
        "ipadm: set-ifprop: allow-xprobe: Invalid argument provided"
    # A property of the IPMP interface class only: a member or a plain IP interface has none.
    assert refused(c, "set-ifprop", "net0", properties=(("allow-xprobe", "on"),), protocol="ip") == \
        "ipadm: set-ifprop: allow-xprobe: Operation not supported"
    assert refused(c, "reset-ifprop", "net1", properties=(("allow-xprobe", None),), protocol="ip") == \
        "ipadm: reset-ifprop: allow-xprobe: Operation not supported"
    assert refused(c, "set-ifprop", "ipmp7", properties=(("allow-xprobe", "on"),), protocol="ip") == \
        "ipadm: set-ifprop: allow-xprobe: No such interface"


def test_persistent_change_of_a_temporary_ipmp_interface_is_refused() -> None:
    c = group_of_two()
    with pytest.raises(IpadmError) as info:
        evaluate(c, IpadmCommand("set-ifprop", "ipmp0", properties=(("allow-xprobe", "on"),), protocol="ip"),
                 db=IpadmDb((), ""))
    assert info.value.message == "ipadm: set-ifprop: allow-xprobe: Persistent operation on temporary object"


# -- show-ifprop --------------------------------------------------------------------------------


FILE = parse_db(
    "_ifname=net0;_family=2;_ifclass=0;\n"
    "_ifname=net1;_family=2;_ifclass=0;\n"
    "_ifname=ipmp0;_family=2;_ifclass=1;\n"
    "_ifname=ipmp0;_underif=net0;\n"
    "_ifname=ipmp0;_underif=net1;\n"
    "_ifname=ipmp0;_protocol=ip;allow-xprobe=on;\n"
)


def shown(config: Config, argv: list[str],
          db: IpadmDb = FILE) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    out = show(config, db, parse_argv(argv))
    return out.stdout, out.stderr, out.status


def test_show_ifprop_of_the_ipmp_interface() -> None:
    c = run(group_of_two(), "set-ifprop", "ipmp0", properties=(("allow-xprobe", "off"),), protocol="ip")
    assert shown(c, ["show-ifprop", "-p", "allow-xprobe", "ipmp0"]) == ((
        "IFNAME      PROPERTY        PROTO PERM CURRENT    PERSISTENT DEFAULT    POSSIBLE",
        "ipmp0       allow-xprobe    ip    rw   off        on         inherit    on,off,inherit",
    ), (), 0)
    # Parsable, over every interface: only the IPMP interface has the property.
    assert shown(group_of_two(), ["show-ifprop", "-c", "-o", "ifname,current,persistent,default",
                                  "-p", "allow-xprobe"]) == (("ipmp0:inherit:on:inherit",), (), 0)


def test_show_ifprop_lists_it_with_the_ipmp_interfaces_properties_only() -> None:
    rows, _, status = shown(group_of_two(), ["show-ifprop", "-c", "-o", "ifname,property"])
    assert status == 0
    assert "ipmp0:allow-xprobe" in rows
    assert not any(r.endswith(":allow-xprobe") for r in rows if not r.startswith("ipmp0:"))


def test_show_ifprop_of_a_member_warns() -> None:
    rows, err, status = shown(group_of_two(), ["show-ifprop", "-p", "allow-xprobe", "net0"])
    assert err == ("ipadm: warning: cannot get property 'allow-xprobe' for 'net0': Operation not supported",)
    assert status == 1 and len(rows) <= 1  # at most the header


# -- the persistent file and the store ---------------------------------------------------------------


def test_file_round_trip_and_boot_step() -> None:
    db = apply_edits(parse_db("_ifname=ipmp0;_family=2;_ifclass=1;\n"),
                     (SetProperty("ipmp0", "ip", "allow-xprobe", "off"),))
    text = render_db(db)
    assert "_ifname=ipmp0;_protocol=ip;allow-xprobe=off;" in text.splitlines()
    again = parse_db(text)
    rec = again.interface("ipmp0")
    assert rec is not None and rec.property("allow-xprobe") == "off"
    assert again.unknown == ()  # the boot applies the line, it is not only kept
    steps = [s for s in db_steps(again) if s.command.subcommand == "set-ifprop"]
    assert [(s.command.operand, s.command.properties) for s in steps] == [
        ("ipmp0", (("allow-xprobe", "off"),))]
    # Setting again replaces the line; a reset removes it.
    on = apply_edits(again, (SetProperty("ipmp0", "ip", "allow-xprobe", "on"),))
    assert render_db(on).count("allow-xprobe") == 1
    assert "allow-xprobe" not in render_db(apply_edits(on, (ResetProperty("ipmp0", "ip", "allow-xprobe"),)))


def test_a_copied_oracle_line_with_type_tags_is_read() -> None:
    db = parse_db("_ifname=ipmp0;_family=string,2;_ifclass=string,1;\n"
                  "_ifname=string,ipmp0;_protocol=string,ip;allow-xprobe=string,on;\n")
    rec = db.interface("ipmp0")
    assert rec is not None and rec.property("allow-xprobe") == "on"


def test_store_round_trip(tmp_path: Path) -> None:
    ipmp0 = Interface("ipmp0", index=9, plumbed=V4, group="ipmp0", ipmp=True, allow_xprobe="off")
    back = state.loads(state.dumps(state.Stored(interfaces=(ipmp0,))))
    assert back.interfaces[0].allow_xprobe == "off"
    default = state.loads(state.dumps(state.Stored(interfaces=(replace(ipmp0, allow_xprobe="inherit"),))))
    assert default.interfaces[0].allow_xprobe == "inherit"


def test_a_value_ipadm_never_writes_follows_the_switch() -> None:
    # A hand-edited store: neither on nor off, so the SMF switch decides, as for inherit.
    config = with_ipmpif(link_only(), "yes")
    assert not transitive.group_allows(config, GROUP, False)
    assert transitive.group_allows(config, GROUP, True)


# -- in.mpathd's decision ---------------------------------------------------------------------------


def link_only(group: str = GROUP) -> Config:
    """Two members without test addresses, data on the first, each with a MAC (transitive frames need it)."""
    config = make_group(2, link_only=True, data=(1, 0), group=group)
    for n, itf in enumerate(config.interfaces):
        config = config.with_interface(replace(itf, mac=f"02:00:5e:00:53:0{n}"))
    return config


def with_ipmpif(config: Config, value: str | None) -> Config:
    """``config``'s group under an IPMP interface saying ``value`` (None: no IPMP interface).

    qfe0's data address becomes the IPMP interface's (``ipmp_unit`` 0), as ipadm binds it.
    """
    if value is None:
        return config
    qfe0 = config.interfaces[0]
    lgs = tuple(replace(lg, ipmp_unit=0, addrobj="ipmpp/v4") if lg.address is not None and not lg.nofailover
                else lg for lg in qfe0.logicals)
    config = config.with_interface(replace(qfe0, logicals=lgs))
    return Config((*config.interfaces, Interface("ipmpp", index=40, plumbed=V4, link_up=True, running=True,
                                                 group=GROUP, ipmp=True, allow_xprobe=value)))


@pytest.mark.parametrize(("value", "smf", "expected"), [
    (None, True, True), (None, False, False),
    ("inherit", True, True), ("inherit", False, False),
    ("on", False, True), ("on", True, True),
    ("off", True, False), ("off", False, False),
])
def test_group_decision(value: str | None, smf: bool, expected: bool) -> None:
    config = with_ipmpif(link_only(), value)
    assert transitive.group_allows(config, GROUP, smf) is expected
    assert transitive.transitive_group(config, GROUP, smf) is expected
    assert bool(transitive.members(config, smf)) is expected


def test_a_test_address_still_wins_over_on() -> None:
    config = with_ipmpif(make_group(2, link_only=False, data=(1, 0)), "on")
    assert transitive.group_allows(config, GROUP, False)
    assert not transitive.transitive_group(config, GROUP, False)


def sim_of(config: Config, smf: bool) -> Sim:
    sim = Sim(config, fdt_ms=700)
    sim.machine.settings = replace(sim.machine.settings, transitive_probing=smf)
    sim.start()
    return sim


def test_daemon_on_overrides_the_switch_off() -> None:
    sim = sim_of(with_ipmpif(link_only(), "on"), smf=False)
    sim.advance(5.0)
    icmp = [s.probe for s in sim.probes("qfe0") if s.probe.kind is ProbeKind.UNICAST]
    assert icmp and all(p.source == data_ip(0) and p.target in ROUTERS for p in icmp)
    link = [s.probe for s in sim.probes("qfe1") if s.probe.kind is ProbeKind.UNICAST]
    assert link and all(p.target == transitive.link_address(2) for p in link)
    assert sim.machine.snapshot().interfaces["qfe1"].probes["inet"].mode == "transitive"
    # A silent alternate is a NIC failure, its carrier up.
    sim.silent("qfe1")
    sim.run_until_log(f"IP interface failure detected on qfe1 of group {GROUP}", 5.0)  # Solaris 11's wording
    assert sim.itf("qfe1").link_up and sim.state("qfe1") is State.FAILED


def test_daemon_off_overrides_the_switch_on() -> None:
    sim = sim_of(with_ipmpif(link_only(), "off"), smf=True)
    sim.advance(5.0)
    assert sim.sent == []
    assert sim.machine.snapshot().interfaces["qfe1"].probe == "disabled"


def test_daemon_inherit_and_other_groups_follow_the_switch() -> None:
    # Group prod says on, group web (no IPMP interface) inherits the switch, off.
    prod = with_ipmpif(link_only(), "on")
    web = link_only("web")
    web_nics = tuple(replace(itf, name=f"bge{n}", index=20 + n, mac=f"02:00:5e:00:53:2{n}")
                     for n, itf in enumerate(web.interfaces))
    sim = sim_of(Config((*prod.interfaces, *web_nics)), smf=False)
    sim.advance(5.0)
    assert sim.probes("qfe1") and not sim.probes("bge0") and not sim.probes("bge1")
