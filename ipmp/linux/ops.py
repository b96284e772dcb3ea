"""Plan operations: one value per kernel change, each printable as an ``ip`` command.

A plan is a tuple of these.  ``plan.diff`` makes them, ``Kernel.execute``
(``ipmp.kernel.execute``) carries them out (one kernel request each), and ``--dry-run`` prints
``op.command()`` so a Solaris admin sees the Linux meaning of a line.

Pure module: no I/O.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from ipaddress import IPv6Address

from ipmp.model import RTPROT_IPMP, Family, KAddress, KRoute, KRule


def _family_flag(family: Family) -> str:
    return "-4" if family is Family.INET else "-6"


def sysctl_display(key: str) -> str:
    """``net/ipv4/conf/nic0/rp_filter`` -> ``net.ipv4.conf.nic0.rp_filter``.

    Keys are kept with ``/`` separators because interface names may contain
    dots (``eth0.100``); sysctl(8) accepts the slash form for those.
    """
    parts = key.split("/")
    if any("." in p for p in parts):
        return key
    return ".".join(parts)


@dataclass(frozen=True)
class SetSysctl:
    key: str  # path below /proc/sys, "/"-separated
    value: str

    def argv(self) -> list[str]:
        return ["sysctl", "-w", f"{sysctl_display(self.key)}={self.value}"]


@dataclass(frozen=True)
class SetLink:
    """Change link attributes; None leaves an attribute alone.

    ``token`` (``::`` clears it) is the IPv6 token, ``ip token set``; a plan
    sets it in a SetLink of its own, so that each op is one command.
    """

    name: str
    up: bool | None = None
    mtu: int | None = None
    noarp: bool | None = None
    mac: str | None = None
    token: IPv6Address | None = None

    def argv(self) -> list[str]:
        if self.token is not None:
            return ["ip", "token", "set", f"{self.token}/64", "dev", self.name]
        words = ["ip", "link", "set", "dev", self.name]
        if self.mac is not None:
            words += ["address", self.mac]
        if self.mtu is not None:
            words += ["mtu", str(self.mtu)]
        if self.noarp is not None:
            words += ["arp", "off" if self.noarp else "on"]
        if self.up is not None:
            words.append("up" if self.up else "down")
        return words


@dataclass(frozen=True)
class AddAddress:
    address: KAddress

    def argv(self) -> list[str]:
        a = self.address
        words = ["ip", _family_flag(a.family), "addr", "add"]
        if a.peer is not None:
            words += [str(a.address.ip), "peer", f"{a.peer}/{a.address.network.prefixlen}"]
        else:
            words.append(str(a.address))
        if a.broadcast is not None:
            words += ["broadcast", str(a.broadcast)]
        words += ["dev", a.ifname]
        if a.family is Family.INET and a.label:
            words += ["label", a.label]
        if a.deprecated:
            words += ["preferred_lft", "0"]
        if a.noprefixroute:
            words.append("noprefixroute")
        if a.family is Family.INET6:
            # The address is already proven on this link; DAD would leave it
            # tentative for 1-2 s (linux-mapping.md, Q6 "IPv6 DAD").
            words.append("nodad")
        return words


@dataclass(frozen=True)
class DelAddress:
    address: KAddress

    def argv(self) -> list[str]:
        a = self.address
        local = str(a.address) if a.peer is None else f"{a.address.ip}"
        words = ["ip", _family_flag(a.family), "addr", "del", local]
        if a.peer is not None:
            words += ["peer", f"{a.peer}/{a.address.network.prefixlen}"]
        return [*words, "dev", a.ifname]


def _route_words(route: KRoute) -> list[str]:
    words = [str(route.dst) if route.dst.prefixlen else "default"]
    if route.gateway is not None:
        words += ["via", str(route.gateway)]
    words += ["dev", route.dev]
    if route.src is not None:
        words += ["src", str(route.src)]
    if route.table != 254:
        words += ["table", str(route.table)]
    words += ["proto", str(RTPROT_IPMP)]
    if route.metric:
        words += ["metric", str(route.metric)]
    if route.mtu:
        words += ["mtu", str(route.mtu)]
    return words


@dataclass(frozen=True)
class AddRoute:
    route: KRoute

    def argv(self) -> list[str]:
        return ["ip", _family_flag(self.route.family), "route", "add", *_route_words(self.route)]


@dataclass(frozen=True)
class DelRoute:
    route: KRoute

    def argv(self) -> list[str]:
        return ["ip", _family_flag(self.route.family), "route", "del", *_route_words(self.route)]


def _rule_words(rule: KRule) -> list[str]:
    return [
        "pref", str(rule.priority),
        "from", str(rule.src),
        "lookup", str(rule.table),
        "proto", str(RTPROT_IPMP),
    ]


@dataclass(frozen=True)
class AddRule:
    rule: KRule

    def argv(self) -> list[str]:
        return ["ip", _family_flag(self.rule.family), "rule", "add", *_rule_words(self.rule)]


@dataclass(frozen=True)
class DelRule:
    rule: KRule

    def argv(self) -> list[str]:
        return ["ip", _family_flag(self.rule.family), "rule", "del", *_rule_words(self.rule)]


Op = SetSysctl | SetLink | AddAddress | DelAddress | AddRoute | DelRoute | AddRule | DelRule
Plan = tuple[Op, ...]


def command(op: Op) -> str:
    """The shell line equivalent to ``op``."""
    return shlex.join(op.argv())
