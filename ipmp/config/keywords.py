"""THE ifconfig keyword table.

One table feeds the lexer (reserved words), the grammar (which words take an
argument), the evaluator (family and scope checks), ``--help`` and the man-page
check.  Solaris kept two hand-synced tables (``ifconfig.c`` and ``ifparse.c``);
we keep one.

Pure module: no I/O.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Arg(enum.Enum):
    """What follows a keyword."""

    NONE = "none"
    ADDRESS = "address"  # a.b.c.d[/len], IPv6 literal[/len], or a host name
    MASK = "mask"  # 0xffffff00, 255.255.255.0, or +
    BROADCAST = "broadcast"  # an address or +
    NAME = "name"  # any single word (group name; "" allowed)
    NUMBER = "number"  # a decimal number
    MAC = "mac"  # optional: a MAC address, or nothing


class Scope(enum.Enum):
    ANY = "any"  # any logical interface
    PHYSICAL = "physical"  # only the physical interface (logical unit 0)


class Keyword(NamedTuple):
    """One row of the table.

    A NamedTuple rather than a frozen dataclass: this module is imported by
    every command, and a dataclass is made at import time by compiling its
    generated methods, several times the cost of defining this class.
    """

    word: str
    arg: Arg
    help: str
    #: None: both families; otherwise the only family the word is valid for
    #: (Solaris: ``Operation <cmd> not supported for <af>``).
    family: int | None = None
    scope: Scope = Scope.ANY
    #: False: Solaris knows the word but Linux has nothing it could mean.
    supported: bool = True
    #: Why an unsupported word cannot be honoured, for the error message.
    why: str = ""


def _k(word: str, arg: Arg, help_: str, **kw: object) -> Keyword:
    return Keyword(word, arg, help_, **kw)  # type: ignore[arg-type]


def _unsupported(word: str, why: str, arg: Arg = Arg.NONE, family: int | None = None) -> Keyword:
    return Keyword(word, arg, f"not supported on Linux: {why}", family=family, supported=False, why=why)


KEYWORDS: tuple[Keyword, ...] = (
    _k("plumb", Arg.NONE, "mark the interface (or logical name IF:N) configured for this family"),
    _k("unplumb", Arg.NONE, "remove every address of this family from the interface, or remove a logical"),
    _k("addif", Arg.ADDRESS,
       "create the lowest free logical interface with this address; later words apply to it",
       scope=Scope.PHYSICAL),
    _k("removeif", Arg.ADDRESS, "delete the logical interface that holds this address", scope=Scope.PHYSICAL),
    _k("set", Arg.ADDRESS, "set the address of this logical interface"),
    _k("destination", Arg.ADDRESS, "set the point-to-point destination address"),
    _k("up", Arg.NONE, "mark the logical interface UP (its address is put in the kernel)"),
    _k("down", Arg.NONE, "mark the logical interface down (its address is taken out of the kernel)"),
    _k("netmask", Arg.MASK, "set the netmask: 0xffffff00, 255.255.255.0, or + to look it up in netmasks",
       family=4),
    _k("broadcast", Arg.BROADCAST, "set the broadcast address, or + for the default", family=4),
    _k("group", Arg.NAME, 'join the IPMP group NAME; group "" leaves the group', scope=Scope.PHYSICAL),
    _k("deprecated", Arg.NONE, "set DEPRECATED: not used as a source address (preferred_lft 0)"),
    _k("-deprecated", Arg.NONE, "clear DEPRECATED"),
    _k("failover", Arg.NONE, "clear NOFAILOVER: a data address, moved on failure"),
    _k("-failover", Arg.NONE, "set NOFAILOVER: a test address, never moved"),
    _k("standby", Arg.NONE, "set STANDBY: the interface carries data only when another fails"),
    _k("-standby", Arg.NONE, "clear STANDBY"),
    _k("failed", Arg.NONE, "set FAILED by hand (undocumented in Solaris; in.mpathd owns it)"),
    _k("-failed", Arg.NONE, "clear FAILED by hand"),
    _k("mtu", Arg.NUMBER,
       "on the physical interface: the MTU of the link; on a logical one: its own MTU, at most the link's "
       "(the mtu of its routes)"),
    _k("metric", Arg.NUMBER, "set the routing metric (kept for display; Linux routes carry their own)"),
    _k("ether", Arg.MAC, "show the MAC address, or set it", scope=Scope.PHYSICAL),
    _k("arp", Arg.NONE, "use ARP on the link (clears NOARP)", family=4, scope=Scope.PHYSICAL),
    _k("-arp", Arg.NONE, "do not use ARP on the link (sets NOARP)", family=4, scope=Scope.PHYSICAL),
    _k("trailers", Arg.NONE, "accepted and ignored, as Solaris does (trailer encapsulation is obsolete)"),
    _k("-trailers", Arg.NONE, "accepted and ignored, as Solaris does"),
    _unsupported("index", "Linux assigns interface indexes itself", Arg.NUMBER),
    _unsupported("private", "Linux has no per-address flag that keeps an address out of routing daemons"),
    _unsupported("-private", "Linux has no per-address flag that keeps an address out of routing daemons"),
    _k("router", Arg.NONE, "set ROUTER: forward packets on the interface (its forwarding sysctl)"),
    _k("-router", Arg.NONE, "clear ROUTER: stop forwarding on the interface"),
    _unsupported("xmit", "Linux has no receive-only address flag"),
    _unsupported("-xmit", "Linux has no receive-only address flag"),
    _unsupported("local", "Linux has no NOLOCAL address flag"),
    _unsupported("-local", "Linux has no NOLOCAL address flag"),
    _unsupported("anycast", "Linux adds anycast addresses with 'ip -6 addr add ... anycast'", family=6),
    _unsupported("-anycast", "Linux adds anycast addresses with 'ip -6 addr add ... anycast'", family=6),
    _unsupported("preferred", "Linux chooses IPv6 sources by RFC 6724 policy (ip addrlabel)", family=6),
    _unsupported("-preferred", "Linux chooses IPv6 sources by RFC 6724 policy (ip addrlabel)", family=6),
    _k("nud", Arg.NONE, "clear NONUD: Linux always does neighbour unreachability detection", family=6),
    # Solaris ``-nud`` sets ILLF_NONUD: no neighbour unreachability detection
    # (nor DAD, ifconfig.c ``ifdad``) on the whole ill.  Linux has no such
    # switch: NUD runs for every neighbour entry of a link that resolves
    # addresses, and only a hand-made entry (``nud permanent``/``noarp``) or
    # a NOARP link escapes it.  Emulating it by per-entry states or probe
    # counts would change neighbour handling for everyone on the link, so
    # the word stays refused.
    _unsupported("-nud", "Linux does neighbour unreachability detection on every link that resolves "
                 "addresses; it has no per-interface switch", family=6),
    _k("token", Arg.ADDRESS, "set the IPv6 interface token: token ::1:2:3:4/64 (ip token)", family=6),
    _k("subnet", Arg.ADDRESS, "set the subnet (prefix length) of the address: subnet 192.0.2.0/25"),
    _unsupported("tsrc", "IP tunnels are configured with 'ip tunnel'", Arg.ADDRESS),
    _unsupported("tdst", "IP tunnels are configured with 'ip tunnel'", Arg.ADDRESS),
    _unsupported("encaplimit", "IP tunnels are configured with 'ip tunnel'", Arg.NUMBER),
    _unsupported("-encaplimit", "IP tunnels are configured with 'ip tunnel'"),
    _unsupported("thoplimit", "IP tunnels are configured with 'ip tunnel'", Arg.NUMBER),
    _unsupported("auth_algs", "IPsec tunnel policy is configured with 'ip xfrm'", Arg.NAME),
    _unsupported("encr_algs", "IPsec tunnel policy is configured with 'ip xfrm'", Arg.NAME),
    _unsupported("encr_auth_algs", "IPsec tunnel policy is configured with 'ip xfrm'", Arg.NAME),
    _unsupported("modlist", "Linux has no STREAMS modules"),
    _unsupported("modinsert", "Linux has no STREAMS modules", Arg.NAME),
    _unsupported("modremove", "Linux has no STREAMS modules", Arg.NAME),
    _unsupported("zone", "Linux network namespaces replace zones", Arg.NAME),
    _unsupported("-zone", "Linux network namespaces replace zones"),
    _unsupported("all-zones", "Linux network namespaces replace zones"),
    _unsupported("usesrc", "Linux chooses source addresses by route (ip route ... src)", Arg.NAME),
    _unsupported("auto-revarp", "RARP is not supported"),
    _unsupported("dhcp", "use the distribution's DHCP client"),
    _unsupported("auto-dhcp", "use the distribution's DHCP client"),
    _unsupported("configinfo", "no such output on Linux"),
)

#: word -> Keyword, the lookup the lexer uses for reserved words.
BY_WORD: dict[str, Keyword] = {k.word: k for k in KEYWORDS}

#: Letters allowed in the ``-a`` option word (``-au4``): Solaris ``ifconfig``.
ALL_LETTERS = frozenset("audD46ZvX")


def lookup(word: str) -> Keyword | None:
    return BY_WORD.get(word)
