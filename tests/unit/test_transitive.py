"""Transitive probing (Solaris 11): roles, the frame codec, the switch, the failure rules, the SMF shim.

The machine tests run the pure ``Machine`` in ``mpathd_sim``'s simulator,
with a link-only group (no test address) and the switch on: the simulated
network answers a transitive probe as it answers an ICMP one (the reply
comes "from" the target the ledger names), so a silent NIC or a target in
``dead_targets`` is a member that does not answer.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from ipmp.cli import svcadm, svccfg, svcprop
from ipmp.host import smf
from ipmp.model import Config, Family
from ipmp.mpathd import linkprobe, transitive
from ipmp.mpathd.linkprobe import READ_BATCH, REPLY_BURST, LinkProber, _Link
from ipmp.mpathd.phyint import State
from ipmp.mpathd.probe import ProbeKind
from ipmp.mpathd.steps import ProbeReplied, SendProbe
from ipmp.mpathd.transitive import Frame, FrameKind, decode_frame, encode_frame
from tests.unit.mpathd_sim import GROUP, ROUTERS, Sim, data_ip, make_group, test_ip

MAC0 = "02:00:5e:00:53:00"
MAC1 = "02:00:5e:00:53:01"
MACS = (MAC0, MAC1, "02:00:5e:00:53:02")


def group(count: int = 2, *, link_only: bool = True, data: tuple[int, ...] | None = None) -> Config:
    """qfe0.. (indexes 2..), data addresses on qfe0 only, each NIC with its own MAC."""
    counts = data if data is not None else (1,) + (0,) * (count - 1)
    config = make_group(count, link_only=link_only, data=counts)
    for n, itf in enumerate(config.interfaces):
        config = config.with_interface(replace(itf, mac=MACS[n]))
    return config


def sim_of(config: Config, *, enabled: bool = True, fdt_ms: int = 700) -> Sim:
    sim = Sim(config, fdt_ms=fdt_ms)
    sim.machine.settings = replace(sim.machine.settings, transitive_probing=enabled)
    sim.start()
    return sim


# -- the frame ------------------------------------------------------------------------


def frame(**changes: object) -> Frame:
    base = Frame(bytes.fromhex("02005e005301"), bytes.fromhex("02005e005300"), FrameKind.REQUEST, 513, 3, 2,
                 0xDEADBEEF, b"12345678")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_frame_round_trip_and_layout() -> None:
    for kind in FrameKind:
        f = frame(kind=kind)
        data = encode_frame(f)
        assert decode_frame(data) == f
        assert len(data) == 60  # padded to the Ethernet minimum (14 + 46)
    data = encode_frame(frame())
    assert data[12:14] == b"\x88\xb5"  # the local experimental EtherType
    assert data[14:18] == b"IPXP" and data[18] == 1 and data[19] == 1  # magic, version, request
    assert data[20:22] == (513).to_bytes(2, "big")
    assert data[22:26] == (3).to_bytes(4, "big") and data[26:30] == (2).to_bytes(4, "big")
    assert data[30:34] == bytes.fromhex("deadbeef") and data[34:42] == b"12345678"


@pytest.mark.parametrize("mangle", [
    lambda d: d[:12] + b"\x08\x00" + d[14:],  # IPv4, not our EtherType
    lambda d: d[:12] + b"\x88\xb6" + d[14:],  # the other experimental EtherType
    lambda d: d[:14] + b"IPXQ" + d[18:],  # magic
    lambda d: d[:18] + b"\x02" + d[19:],  # a version we do not speak
    lambda d: d[:19] + b"\x03" + d[20:],  # kind
    lambda d: d[:19] + b"\x00" + d[20:],
    lambda d: d[:41],  # truncated
    lambda d: b"",
])
def test_foreign_frames_are_not_ours(mangle: object) -> None:
    data = encode_frame(frame())
    assert callable(mangle)
    assert decode_frame(mangle(data)) is None


def test_link_addresses_are_never_real_addresses() -> None:
    assert transitive.link_address(5) == IPv4Address("0.0.0.5")
    assert transitive.is_link_address(transitive.link_address(1 << 20))
    assert transitive.link_ifindex(transitive.link_address(77)) == 77
    for real in (IPv4Address("192.0.2.1"), IPv4Address("0.0.0.0"), IPv4Address("1.0.0.0"), IPv6Address("::5"),
                 None):
        assert not transitive.is_link_address(real)
    with pytest.raises(ValueError):
        transitive.link_address(1 << 24)


# -- the switch, the test-address rule, the roles ---------------------------------------


def test_switch_and_test_address_rule() -> None:
    link_only = group()
    assert transitive.transitive_group(link_only, GROUP, True)
    assert not transitive.transitive_group(link_only, GROUP, False)  # off by default: link-only
    assert not transitive.transitive_group(link_only, "", True)  # the anonymous group never
    # One test address anywhere in the group turns it off for the whole group.
    with_tests = group(link_only=False)
    assert not transitive.transitive_group(with_tests, GROUP, True)
    mixed = link_only.with_interface(with_tests.interfaces[1])
    assert not transitive.transitive_group(mixed, GROUP, True)


def test_roles_active_probes_from_a_data_address_alternate_from_its_link_address() -> None:
    config = group()
    qfe0, qfe1 = config.interfaces
    src0 = transitive.probe_source(config, qfe0, Family.INET, True)
    assert src0 is not None and src0.address is not None and src0.address.ip == data_ip(0)
    src1 = transitive.probe_source(config, qfe1, Family.INET, True)
    assert src1 is not None and src1.address is not None
    assert src1.address.ip == transitive.link_address(qfe1.index)
    assert transitive.probe_source(config, qfe1, Family.INET6, True) is None
    assert transitive.link_targets(config, qfe1, lambda name: True) == [transitive.link_address(qfe0.index)]
    assert transitive.link_targets(config, qfe1, lambda name: False) == []
    # Switched off: no test address, no probing.
    assert transitive.probe_source(config, qfe0, Family.INET, False) is None
    assert transitive.probe_source(config, qfe1, Family.INET, False) is None


def test_members_are_the_only_peers() -> None:
    config = group(3)
    members = transitive.members(config, True)
    assert set(members) == {"qfe0", "qfe1", "qfe2"}
    index, mac, peers = members["qfe1"]
    assert index == 3 and mac == bytes.fromhex("02005e005301")
    assert peers == {bytes.fromhex("02005e005300"): 2, bytes.fromhex("02005e005302"): 4}
    assert transitive.members(config, False) == {}
    assert transitive.members(group(3, link_only=False), True) == {}


# -- the machine ---------------------------------------------------------------------------


def test_probes_flow_icmp_from_the_data_address_and_transitive_to_the_active() -> None:
    sim = sim_of(group())
    sim.advance(5.0)
    icmp = [s.probe for s in sim.probes("qfe0") if s.probe.kind is ProbeKind.UNICAST]
    assert icmp and all(p.source == data_ip(0) and p.target in ROUTERS for p in icmp)
    link = [s.probe for s in sim.probes("qfe1") if s.probe.kind is ProbeKind.UNICAST]
    assert link and all(p.target == transitive.link_address(2) for p in link)
    snap = sim.machine.snapshot()
    assert snap.interfaces["qfe1"].probes["inet"].mode == "transitive"
    assert snap.interfaces["qfe1"].probes["inet"].targets == ("qfe0",)
    assert snap.interfaces["qfe1"].probes["inet"].test_address == ""
    assert snap.interfaces["qfe0"].probes["inet"].test_address == str(data_ip(0))
    assert snap.interfaces["qfe0"].probe == snap.interfaces["qfe1"].probe == "ok"


def test_switch_off_means_link_only() -> None:
    sim = sim_of(group(), enabled=False)
    sim.advance(5.0)
    assert sim.sent == []
    assert sim.machine.snapshot().interfaces["qfe1"].probe == "disabled"


def test_a_test_address_keeps_the_solaris_10_probes() -> None:
    sim = sim_of(group(link_only=False))
    sim.advance(5.0)
    sources = {s.probe.source for s in sim.sent if s.probe.kind is ProbeKind.UNICAST}
    assert sources == {test_ip(0), test_ip(1)}


def test_unanswered_alternate_is_failed_and_repairs() -> None:
    sim = sim_of(group())
    sim.advance(3.0)
    sim.silent("qfe1")
    start = sim.now
    line = sim.run_until_log("NIC failure detected on qfe1 of group prod", 5.0)
    assert line.time - start <= 0.7 + 0.2  # within the FDT (plus the last probe's wait)
    assert sim.state("qfe1") is State.FAILED and sim.state("qfe0") is State.RUNNING
    assert sim.machine.snapshot().interfaces["qfe1"].probe == "failed"
    assert sim.home_of(data_ip(0)) == "qfe0"
    sim.silent("qfe1", False)
    sim.run_until_log("NIC repair detected on qfe1 of group prod", 10.0)


def test_failed_active_hands_its_addresses_to_the_alternate() -> None:
    sim = sim_of(group())
    sim.advance(3.0)
    # qfe0 hears neither the routers nor the alternate's frames.
    sim.silent("qfe0")
    sim.net.dead_targets.add(transitive.link_address(2))
    sim.run_until_log("NIC failure detected on qfe0 of group prod", 5.0)
    sim.advance(0.5)
    assert sim.lines("Successfully failed over from NIC qfe0 to NIC qfe1")
    assert sim.home_of(data_ip(0)) == "qfe1"
    assert not sim.lines("NIC failure detected on qfe1")  # the alternate waited: qfe0 was the suspect
    sim.advance(3.0)
    assert sim.state("qfe1") is State.RUNNING
    # The roles moved with the address: qfe1 probes the routers from it, qfe0 probes qfe1.
    since = sim.now
    sim.advance(2.0)
    icmp1 = [s.probe for s in sim.probes("qfe1", since) if s.probe.kind is ProbeKind.UNICAST]
    assert icmp1 and all(p.source == data_ip(0) for p in icmp1)
    link0 = [s.probe for s in sim.probes("qfe0", since) if s.probe.kind is ProbeKind.UNICAST]
    assert link0 and all(p.target == transitive.link_address(3) for p in link0)


def test_all_gone_is_a_group_failure() -> None:
    sim = sim_of(group())
    sim.advance(3.0)
    sim.silent("qfe0")
    sim.silent("qfe1")
    sim.run_until_log("All Interfaces in group prod have failed", 20.0)


# -- the SMF stand-in -----------------------------------------------------------------------


@pytest.mark.parametrize(("words", "value"), [
    (["config/transitive-probing=true"], True),
    (["config/transitive-probing", "=", "boolean:", "true"], True),
    (["config/transitive-probing=boolean:", "false"], False),
    (["config/transitive-probing", "=", "false"], False),
])
def test_setprop_forms(words: list[str], value: bool) -> None:
    assert smf.parse_setprop(words) is value


@pytest.mark.parametrize("words", [
    ["config/transitive-probing=yes"], ["config/transitive-probing", "=", "astring:", "true"],
    ["config/other=true"], ["config/transitive-probing"],
])
def test_setprop_refusals(words: list[str]) -> None:
    with pytest.raises(smf.SmfError):
        smf.parse_setprop(words)


def test_commands_set_refresh_and_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path))
    assert svcprop.main(["-p", "config/transitive-probing", "ipmp"]) == 0
    assert capsys.readouterr().out == "false\n"
    assert svccfg.main(["-s", "svc:/network/ipmp", "setprop", "config/transitive-probing=true"]) == 0
    # Not running yet: SMF shows the running snapshot until a refresh.
    assert svcprop.main(["-p", "config/transitive-probing", "svc:/network/ipmp:default"]) == 0
    assert capsys.readouterr().out == "false\n"
    assert smf.transitive_probing(tmp_path) == (False, None)
    assert svcadm.main(["refresh", "svc:/network/ipmp:default"]) == 0  # no daemon: nothing to tell
    assert svcprop.main(["-p", "config/transitive-probing", "ipmp"]) == 0
    assert capsys.readouterr().out == "true\n"
    assert smf.transitive_probing(tmp_path) == (True, None)
    running = smf.running_path(tmp_path)
    assert running.stat().st_mode & 0o777 == 0o644
    assert running.read_text() == "config/transitive-probing boolean true\n"


@pytest.mark.parametrize(("main", "argv"), [
    (svccfg.main, ["-s", "svc:/network/ssh", "setprop", "config/transitive-probing=true"]),
    (svccfg.main, ["-s", "svc:/network/ipmp", "delprop", "config/transitive-probing"]),
    (svccfg.main, ["-s", "svc:/network/ipmp", "setprop", "config/other=true"]),
    (svccfg.main, []),
    (svcadm.main, ["restart", "svc:/network/ipmp:default"]),
    (svcadm.main, ["refresh", "svc:/network/ssh:default"]),
    (svcprop.main, ["-p", "config/other", "ipmp"]),
    (svcprop.main, ["ipmp"]),
])
def test_anything_else_is_refused(main: object, argv: list[str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path))
    assert callable(main)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "not supported by this toolkit" in err or "Invalid" in err
    assert not smf.running_path(tmp_path).exists()


# -- the link-layer socket's rules (a stand-in socket: no AF_PACKET needed) -------------------


class _FakeSock:
    """Frames to read (as AF_PACKET gives them) and the frames sent."""

    def __init__(self, frames: list[bytes], pkttype: int = 0) -> None:
        self.frames = list(frames)
        self.pkttype = pkttype
        self.sent: list[bytes] = []

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int, int, int, bytes]]:
        if not self.frames:
            raise BlockingIOError
        return self.frames.pop(0), ("qfe0", ETHER, self.pkttype, 1, b"")

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)


ETHER = transitive.ETHERTYPE
OWN, PEER, STRANGER = (bytes.fromhex(h) for h in ("02005e005300", "02005e005301", "02005e0053ff"))


def _prober(frames: list[bytes], pkttype: int = 0) -> tuple[LinkProber, _FakeSock, list[object]]:
    posted: list[object] = []
    prober = LinkProber(posted.append, lambda level, message: None, lambda name: name)
    sock = _FakeSock(frames, pkttype)
    prober.links["qfe0"] = _Link(sock, 2, OWN, {PEER: 3}, token=b"tokentok")  # type: ignore[arg-type]
    return prober, sock, posted


def _frame(kind: FrameKind, src: bytes = PEER, sender: int = 3, token: bytes = b"tokentok", dst: bytes = OWN,
           target: int = 2) -> bytes:
    return encode_frame(Frame(dst, src, kind, 7, sender, target, 0, token))


def test_requests_from_members_are_answered_and_nothing_else() -> None:
    prober, sock, _ = _prober([
        _frame(FrameKind.REQUEST, token=b"theirtok"),
        _frame(FrameKind.REQUEST, src=STRANGER),  # not a member's MAC
        _frame(FrameKind.REQUEST, sender=9),  # a member's MAC naming another sender
        _frame(FrameKind.REQUEST, dst=PEER),  # for another NIC
        _frame(FrameKind.REQUEST, target=5),
        _frame(FrameKind.REQUEST)[:12] + b"\x08\x00" + _frame(FrameKind.REQUEST)[14:],
    ])
    prober._on_readable("qfe0", prober.links["qfe0"])
    assert len(sock.sent) == 1
    reply = decode_frame(sock.sent[0])
    assert reply is not None and reply.kind is FrameKind.REPLY
    assert (reply.dst, reply.src, reply.seq, reply.sender, reply.target, reply.token) == (
        PEER, OWN, 7, 2, 3, b"theirtok")


def test_only_replies_with_our_token_from_the_probed_member_count() -> None:
    prober, sock, posted = _prober([
        _frame(FrameKind.REPLY, token=b"forgedxx"),
        _frame(FrameKind.REPLY, src=STRANGER),
        _frame(FrameKind.REPLY),
    ])
    prober._on_readable("qfe0", prober.links["qfe0"])
    assert sock.sent == []
    assert len(posted) == 1
    event = posted[0]
    assert isinstance(event, ProbeReplied)
    assert (event.ifname, event.family, event.seq, event.source, event.kind) == (
        "qfe0", Family.INET, 7, transitive.link_address(3), ProbeKind.UNICAST)


def test_frames_not_addressed_to_the_nic_are_ignored() -> None:
    prober, sock, posted = _prober([_frame(FrameKind.REQUEST), _frame(FrameKind.REPLY)], pkttype=3)
    prober._on_readable("qfe0", prober.links["qfe0"])
    assert sock.sent == [] and posted == []


class _FrozenClock:
    """``time`` for linkprobe: one instant, so the rate limit's one-second window never turns."""

    @staticmethod
    def monotonic() -> float:
        return 1000.0


def test_answers_are_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linkprobe, "time", _FrozenClock())  # all within one second
    prober, sock, _ = _prober([_frame(FrameKind.REQUEST)] * (REPLY_BURST + 50))
    for _ in range((REPLY_BURST + 50) // READ_BATCH + 1):
        prober._on_readable("qfe0", prober.links["qfe0"])
    assert len(sock.sent) == REPLY_BURST


def test_send_goes_to_the_probed_members_mac() -> None:
    prober, sock, _ = _prober([])
    prober.send(SendProbe("qfe0", Family.INET, transitive.link_address(2), transitive.link_address(3), 9,
                          ProbeKind.UNICAST))
    prober.send(SendProbe("qfe0", Family.INET, transitive.link_address(2), transitive.link_address(4), 9,
                          ProbeKind.UNICAST))  # not a member: nothing sent
    assert len(sock.sent) == 1
    request = decode_frame(sock.sent[0])
    assert request is not None and request.kind is FrameKind.REQUEST
    assert (request.dst, request.src, request.seq, request.sender, request.target, request.token) == (
        PEER, OWN, 9, 2, 3, b"tokentok")
