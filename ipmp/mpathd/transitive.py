"""Transitive probing: probe-based failure detection without test addresses (Solaris 11.1+).

Oracle's description (https://docs.oracle.com/cd/E37838_01/html/E60991/gldcc.html ,
https://docs.oracle.com/cd/E88353_01/html/E72487/in.mpathd-8.html , reference
solaris-ipmp.md section 7.4): switched on by the SMF property
``svc:/network/ipmp config/transitive-probing`` and used only by a group that
has no test address (any test address in a group disables it for that group).
The members that receive inbound traffic (here: the *active* members, those
holding an UP data address) probe the targets with ordinary ICMP echoes whose
source is one of their data addresses; every other member (an *alternate*)
sends link-layer "transitive" probes to an active member, which answers them:
an answered probe proves the alternate's transmit and the active member's
receive path, and back.

Who is to blame when probes go unanswered (our rule; Oracle gives none):

* an alternate whose transitive probes go unanswered has failed (a NIC
  failure, the usual message and NUM_PROBE_FAILS / FDT rules of ``probe``)
  when an active member it probes got an ICMP answer after the alternate's
  first lost probe: that member's receive path works, so the alternate's
  does not (the test of in.mpathd's ``failure_state``, another member's
  reply after the first loss);
* otherwise the alternate is not judged: the active member is the suspect,
  and its own ICMP verdict decides;
* an active member whose ICMP probes go unanswered has failed if another
  member is usable (its data addresses move there, and that member probes
  the targets from them next); with none usable, the group has failed.
  The alternates' transitive answers say nothing of the path to the
  targets, so they do not make it a group failure.

The ledger of an alternate is an ordinary ``probe.Instance``: its "test
address" and its targets are *link addresses*, 0.0.0.0/8 addresses that
carry an interface index (``link_address``).  0.0.0.0/8 is "this network"
(RFC 1122 3.2.1.3): no ICMP target or test address can be one, so the two
kinds of probes are never confused, and the ledger, its failure and repair
rules and the wake-ups stay the ones ICMP probes use.

Our frame (Oracle does not document theirs; man/in.mpathd.8 does ours): an
Ethernet frame with the IEEE 802 local experimental EtherType 0x88B5 and
this payload, in network byte order, padded with zeros to the 46-byte
Ethernet minimum::

    magic    4  b"IPXP"
    version  1  1
    kind     1  1 request, 2 reply
    seq      2  the ledger's sequence number
    sender   4  ifindex of the NIC that sent this frame
    target   4  ifindex of the NIC it is for
    stamp    4  the requester's clock in ms (echoed): the round trip
    token    8  the requester's random token (echoed): a reply that does
                not carry it is a forgery

Pure module: no I/O, no clock.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from ipmp.model import Config, Family, Interface, IPAddress, Logical
from ipmp.mpathd.hwaddr import parse_mac
from ipmp.mpathd.phyint import Phyint, State, select_test_address
from ipmp.mpathd.probe import Instance
from ipmp.mpathd.snapshot import ProbeState

__all__ = [
    "ETHERTYPE",
    "Frame",
    "FrameKind",
    "Verdict",
    "anywhere",
    "decode_frame",
    "encode_frame",
    "group_allows",
    "is_link_address",
    "link_address",
    "link_ifindex",
    "members",
    "probe_source",
    "probe_state",
    "transitive_group",
    "verdict",
]

#: IEEE 802 "Local Experimental EtherType 1": for protocols that are not
#: standardised, so no one else's frame is taken for ours by its type alone.
ETHERTYPE = 0x88B5
MAGIC = b"IPXP"
VERSION = 1
#: magic, version, kind, seq, sender, target, stamp, token.
_PAYLOAD = struct.Struct("!4sBBHIII8s")
_HEADER = struct.Struct("!6s6sH")
#: The smallest Ethernet payload (frames shorter are padded by the sender).
_MIN_PAYLOAD = 46
TOKEN_LEN = 8
#: Interface indexes fit in the 24 bits a 0.0.0.0/8 address leaves.
_INDEX_MAX = (1 << 24) - 1


class FrameKind(enum.IntEnum):
    REQUEST = 1
    REPLY = 2


@dataclass(frozen=True)
class Frame:
    """One decoded transitive probe frame (MACs as 6 bytes)."""

    dst: bytes
    src: bytes
    kind: FrameKind
    seq: int
    sender: int
    target: int
    stamp: int
    token: bytes


def encode_frame(frame: Frame) -> bytes:
    """The bytes on the wire for ``frame`` (Ethernet header included, padded)."""
    payload = _PAYLOAD.pack(MAGIC, VERSION, int(frame.kind), frame.seq & 0xFFFF, frame.sender,
                            frame.target, frame.stamp & 0xFFFFFFFF, frame.token)
    payload += bytes(max(0, _MIN_PAYLOAD - len(payload)))
    return _HEADER.pack(frame.dst, frame.src, ETHERTYPE) + payload


def decode_frame(data: bytes) -> Frame | None:
    """The frame in ``data``, or None when it is not one of ours (type, magic, version, kind, size)."""
    if len(data) < _HEADER.size + _PAYLOAD.size:
        return None
    dst, src, ethertype = _HEADER.unpack_from(data)
    if ethertype != ETHERTYPE:
        return None
    magic, version, kind, seq, sender, target, stamp, token = _PAYLOAD.unpack_from(data, _HEADER.size)
    if magic != MAGIC or version != VERSION or kind not in (1, 2):
        return None
    return Frame(dst, src, FrameKind(kind), seq, sender, target, stamp, token)


def mac_bytes(mac: str | None) -> bytes | None:
    """``"02:00:5e:00:53:01"`` as 6 bytes; None for no MAC or not an Ethernet one."""
    if not mac:
        return None
    try:
        return parse_mac(mac)
    except ValueError:
        return None


# -- link addresses -------------------------------------------------------------------


def link_address(ifindex: int) -> IPv4Address:
    """The ledger's name for a NIC reached by link-layer probes (module doc)."""
    if not 0 < ifindex <= _INDEX_MAX:
        raise ValueError(f"interface index {ifindex} does not fit a link address")
    return IPv4Address(ifindex)


def is_link_address(address: IPAddress | None) -> bool:
    return isinstance(address, IPv4Address) and 0 < int(address) <= _INDEX_MAX


def link_ifindex(address: IPAddress) -> int:
    return int(address)


# -- who probes whom ----------------------------------------------------------------


def _has_test_address(itf: Interface) -> bool:
    return any(select_test_address(itf, family) is not None for family in (Family.INET, Family.INET6))


def group_allows(config: Config, group: str, enabled: bool) -> bool:
    """Whether ``group``'s switch is on: its IPMP interface's ``allow-xprobe``, else the SMF one.

    Solaris 11.4 (ipadm(8) ``allow-xprobe``, in.mpathd(8)): ``on`` and ``off``
    decide for the group whatever ``config/transitive-probing`` says;
    ``inherit`` (the default), and a group with no IPMP interface (a
    Solaris 10 style group), follow the SMF property ``enabled``.
    """
    if not group:
        return False
    ipmpif = config.ipmp_interface(group)
    choice = ipmpif.allow_xprobe if ipmpif is not None else "inherit"
    if choice in ("on", "off"):
        return choice == "on"
    # ``inherit``, or a value ipadm never writes (a hand-edited store): the SMF switch.
    return enabled


def transitive_group(config: Config, group: str, enabled: bool) -> bool:
    """Whether ``group`` probes transitively: its switch on (``group_allows``), no test address in it.

    Any test address in the group disables it for the group (in.mpathd(8)),
    also when the group's ``allow-xprobe`` is ``on``.
    """
    if not group_allows(config, group, enabled):
        return False
    return not any(_has_test_address(itf) for itf in config.group_members(group))


def anywhere(config: Config, enabled: bool) -> bool:
    """Whether some group may probe transitively: the SMF switch, or an ``allow-xprobe=on`` group."""
    return enabled or any(itf.ipmp and itf.allow_xprobe == "on" for itf in config.interfaces)


def members(config: Config, enabled: bool) -> dict[str, tuple[int, bytes, dict[bytes, int]]]:
    """NICs of groups that probe transitively: name -> (ifindex, MAC, the other members' MAC -> ifindex).

    What the link-layer socket of each needs: its own addresses, and the
    only MACs whose frames it may answer or take replies from (a frame from
    outside the group is never answered: no reflector for strangers).
    """
    result: dict[str, tuple[int, bytes, dict[bytes, int]]] = {}
    groups = {itf.group for itf in config.nics if itf.group}
    for group in sorted(groups):
        if not transitive_group(config, group, enabled):
            continue
        nics = [(itf.name, itf.index, mac) for itf in config.group_members(group)
                if itf.index > 0 and (mac := mac_bytes(itf.mac)) is not None]
        for name, index, mac in nics:
            peers = {m: i for n, i, m in nics if n != name and m != mac}
            result[name] = (index, mac, peers)
    return result


def _is_active(itf: Interface) -> bool:
    """An active member: one that holds an UP data address (it receives inbound traffic)."""
    return itf.hosts_data


def _data_source(itf: Interface, family: Family) -> Logical | None:
    """The UP data address an active member probes from (IPv4 only: module doc of the man page)."""
    if family is not Family.INET:
        return None
    for lg in itf.logicals_of(family):
        if lg.is_data and lg.up and not lg.kernel_owned and lg.address is not None and int(lg.address.ip):
            return lg
    return None


def probe_source(config: Config, itf: Interface, family: Family, enabled: bool) -> Logical | None:
    """The address ``itf`` probes ``family`` from: its test address, or the transitive choice.

    In a group that probes transitively an active member probes (IPv4) from
    a data address, an alternate from its link address (the IPv4 instance
    holds its transitive ledger; IPv6 has none of its own).
    """
    if not transitive_group(config, itf.group, enabled):
        return select_test_address(itf, family)
    if _is_active(itf):
        return _data_source(itf, family)
    if family is not Family.INET or not 0 < itf.index <= _INDEX_MAX:
        return None
    return Logical(Family.INET, 0, IPv4Interface((link_address(itf.index), 8)), up=True, nofailover=True)


def link_targets(config: Config, itf: Interface, usable: Callable[[str], bool]) -> list[IPAddress]:
    """The active members an alternate probes: usable ones holding data, by index."""
    actives = sorted((m for m in config.group_members(itf.group)
                      if m.name != itf.name and _is_active(m) and 0 < m.index <= _INDEX_MAX
                      and mac_bytes(m.mac) is not None and usable(m.name)),
                     key=lambda m: m.index)
    return [link_address(m.index) for m in actives]


# -- who failed ----------------------------------------------------------------------


class Verdict(enum.Enum):
    WAIT = "wait"  # not judged now: the active member it probes is the suspect
    NIC = "nic"
    GROUP = "group"


def _answered_since(pi: Phyint, since: float) -> bool:
    """Whether ``pi`` (running) had an ICMP answer after ``since``."""
    return pi.state is State.RUNNING and any(
        (t := i.last_ack_time()) is not None and t > since
        for i in pi.instances.values() if not is_link_address(i.test_address))


def alternate(pi: Phyint) -> bool:
    """Whether ``pi`` probes transitively (its ledger's test address is a link address)."""
    return any(is_link_address(i.test_address) for i in pi.instances.values())


def verdict(config: Config, enabled: bool, pi: Phyint, group: Iterable[Phyint],
            usable: Callable[[str], bool], first_loss: float) -> Verdict | None:
    """Who failed when ``pi``'s probes are lost (the first at ``first_loss``) in a transitive group.

    The rules are the module doc's; None: ``pi``'s group does not probe transitively.
    """
    if not transitive_group(config, pi.group, enabled):
        return None
    others = [m for m in group if m is not pi]
    if alternate(pi):
        probed = {link_ifindex(t.address) for i in pi.instances.values() for t in i.targets}
        actives = [m for m in others if (itf := config.get(m.name)) is not None and itf.index in probed]
        return Verdict.NIC if any(_answered_since(m, first_loss) for m in actives) else Verdict.WAIT
    return Verdict.NIC if any(usable(m.name) for m in others) else Verdict.GROUP


# -- what queries show ---------------------------------------------------------------


def probe_state(config: Config, inst: Instance, default: ProbeState) -> ProbeState:
    """``ipmpstat -t``'s row of a transitive ledger: mode ``transitive``, the active members as targets.

    An alternate has no test address (TESTADDR empty); its targets are the
    active members it probes, by name.  Other ledgers keep ``default``.
    """
    if not is_link_address(inst.test_address):
        return default
    names = {itf.index: itf.name for itf in config.nics}
    targets = tuple(names.get(link_ifindex(t.address), str(t.address)) for t in inst.active_targets())
    return ProbeState(test_address="", targets=targets, mode="transitive",
                      crtt_ms={names.get(link_ifindex(t.address), str(t.address)): t.crtt_ms
                               for t in inst.active_targets()})

