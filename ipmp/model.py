"""The data model: what Solaris shows (``Config``) and what Linux holds (``KernelState``).

Two views of one host:

* ``Config`` is the Solaris view: physical interfaces with logical interfaces
  (``qfe0``, ``qfe0:1``), groups, NOFAILOVER, STANDBY, DEPRECATED, FAILED,
  OFFLINE.  ``ifconfig -a`` prints it; the evaluator folds commands over it.
* ``KernelState`` is the Linux view: links, addresses (with labels), routes and
  rules owned by the toolkit, and the sysctls it relies on.  The planner diffs
  two of these; ``ipmp.kernel`` reads and writes them.

``ipmp.linux.view`` (kernel to ``Config``) and ``ipmp.linux.desired`` (``Config``
to kernel) map one onto the other; ``ipmp.host.state`` keeps the part of ``Config``
that Linux has no place for.

Pure module: no I/O, no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface
IPNetwork = IPv4Network | IPv6Network


def default_broadcast(address: IPv4Interface) -> IPv4Address | None:
    """Solaris' default broadcast: host part all ones (none for /31 and /32)."""
    if address.network.prefixlen >= 31:
        return None
    return address.network.broadcast_address

#: Solaris limits the group name to LIFGRNAMSIZ - 1 = 31 bytes (net/if.h).
LIFGRNAMSIZ = 32
#: Solaris interface names are at most LIFNAMSIZ - 1 = 31 characters.
LIFNAMSIZ = 32
#: Linux limits an interface name, and an IPv4 address label, to IFNAMSIZ - 1.
IFNAMSIZ = 16

#: Routes and rules the toolkit owns carry this rtnetlink protocol number, so
#: that reading them back never confuses them with anyone else's.  73 is not
#: assigned in the kernel's ``rtnetlink.h`` nor in iproute2's ``rt_protos``.
RTPROT_IPMP = 73

#: The host's own loopback addresses, localhost (illumos INADDR_LOOPBACK and
#: ``ipv6_loopback``).  Linux gives them to ``lo`` itself and every local
#: service talks to them: ``evaluate`` refuses a command that takes them off
#: the loopback, and no plan deletes them (``plan``).
LOCALHOST: frozenset[IPAddress] = frozenset({IPv4Address("127.0.0.1"), IPv6Address("::1")})


class Family(enum.IntEnum):
    """Address family of a logical interface; the value is the IP version."""

    INET = 4
    INET6 = 6

    @property
    def word(self) -> str:
        return "inet" if self is Family.INET else "inet6"


class IFF(enum.IntFlag):
    """Solaris interface flag bits, values from illumos ``net/if.h`` (2006)."""

    UP = 0x1
    BROADCAST = 0x2
    DEBUG = 0x4
    LOOPBACK = 0x8
    POINTOPOINT = 0x10
    NOTRAILERS = 0x20
    RUNNING = 0x40
    NOARP = 0x80
    PROMISC = 0x100
    ALLMULTI = 0x200
    INTELLIGENT = 0x400
    MULTICAST = 0x800
    MULTI_BCAST = 0x1000
    UNNUMBERED = 0x2000
    DHCPRUNNING = 0x4000
    PRIVATE = 0x8000
    NOXMIT = 0x10000
    NOLOCAL = 0x20000
    DEPRECATED = 0x40000
    ADDRCONF = 0x80000
    ROUTER = 0x100000
    NONUD = 0x200000
    ANYCAST = 0x400000
    NORTEXCH = 0x800000
    IPV4 = 0x1000000
    IPV6 = 0x2000000
    MIPRUNNING = 0x4000000
    NOFAILOVER = 0x8000000
    FAILED = 0x10000000
    STANDBY = 0x20000000
    INACTIVE = 0x40000000
    OFFLINE = 0x80000000
    XRESOLV = 0x100000000
    COS_ENABLED = 0x200000000
    PREFERRED = 0x400000000
    TEMPORARY = 0x800000000
    FIXEDMTU = 0x1000000000
    VIRTUAL = 0x2000000000
    DUPLICATE = 0x4000000000
    #: Solaris 11 (Clearview) bits, illumos ``net/if.h``: the IPMP interface
    #: itself; an IPv6 instance made without a link-local address.
    IPMP = 0x8000000000
    NOLINKLOCAL = 0x20000000000  # illumos net/if.h (0x40000000000 is IFF_L3PROTECT)
    #: Oracle Solaris 11 only (not in illumos): the link is up, as
    #: in.mpathd reads it (in.mpathd(8), 11.4: "IFF_PHYSRUNNING").
    PHYSRUNNING = 0x100000000000


#: The names ``ifconfig`` prints for each bit, in ascending bit order
#: (illumos ``if_flags_tbl``); note ``IPv4``, ``MIP`` and ``CoS`` spelling.
FLAG_NAMES: tuple[tuple[IFF, str], ...] = (
    (IFF.UP, "UP"),
    (IFF.BROADCAST, "BROADCAST"),
    (IFF.DEBUG, "DEBUG"),
    (IFF.LOOPBACK, "LOOPBACK"),
    (IFF.POINTOPOINT, "POINTOPOINT"),
    (IFF.NOTRAILERS, "NOTRAILERS"),
    (IFF.RUNNING, "RUNNING"),
    (IFF.NOARP, "NOARP"),
    (IFF.PROMISC, "PROMISC"),
    (IFF.ALLMULTI, "ALLMULTI"),
    (IFF.INTELLIGENT, "INTELLIGENT"),
    (IFF.MULTICAST, "MULTICAST"),
    (IFF.MULTI_BCAST, "MULTI_BCAST"),
    (IFF.UNNUMBERED, "UNNUMBERED"),
    (IFF.DHCPRUNNING, "DHCP"),
    (IFF.PRIVATE, "PRIVATE"),
    (IFF.NOXMIT, "NOXMIT"),
    (IFF.NOLOCAL, "NOLOCAL"),
    (IFF.DEPRECATED, "DEPRECATED"),
    (IFF.ADDRCONF, "ADDRCONF"),
    (IFF.ROUTER, "ROUTER"),
    (IFF.NONUD, "NONUD"),
    (IFF.ANYCAST, "ANYCAST"),
    (IFF.NORTEXCH, "NORTEXCH"),
    (IFF.IPV4, "IPv4"),
    (IFF.IPV6, "IPv6"),
    (IFF.MIPRUNNING, "MIP"),
    (IFF.NOFAILOVER, "NOFAILOVER"),
    (IFF.FAILED, "FAILED"),
    (IFF.STANDBY, "STANDBY"),
    (IFF.INACTIVE, "INACTIVE"),
    (IFF.OFFLINE, "OFFLINE"),
    (IFF.XRESOLV, "XRESOLV"),
    (IFF.COS_ENABLED, "CoS"),
    (IFF.PREFERRED, "PREFERRED"),
    (IFF.TEMPORARY, "TEMPORARY"),
    (IFF.FIXEDMTU, "FIXEDMTU"),
    (IFF.VIRTUAL, "VIRTUAL"),
    (IFF.DUPLICATE, "DUPLICATE"),
    (IFF.IPMP, "IPMP"),
    (IFF.PHYSRUNNING, "PHYSRUNNING"),
)


# --------------------------------------------------------------------------
# The Solaris view
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Logical:
    """One logical interface: ``qfe0`` (unit 0) or ``qfe0:N``.

    ``address`` is None for a unit 0 that has no address yet (Solaris prints
    ``inet 0.0.0.0 netmask 0``).  A logical that is not ``up`` has no address
    in the Linux kernel: Linux has no per-address UP flag, so a down logical
    lives only in the state store (Solaris: a down logical is not used).
    """

    family: Family
    unit: int
    address: IPInterface | None = None
    up: bool = False
    broadcast: IPv4Address | None = None
    destination: IPAddress | None = None
    deprecated: bool = False
    nofailover: bool = False
    #: The physical interface this address belongs to (failback target) and
    #: its unit there; "" / None mean "this interface, this unit".
    home: str = ""
    home_unit: int | None = None
    #: Addresses the kernel made by itself (IPv6 link-local) are never
    #: deleted or moved by a plan.
    kernel_owned: bool = False
    #: The kernel's DAD has not succeeded on this (kernel-owned) address yet,
    #: or found a duplicate: it cannot be bound, so it is no test address.
    #: A kernel fact read on every merge, never stored; ``up`` stays the
    #: administrator's flag.
    tentative: bool = False
    #: The MTU ``ifconfig IF:N mtu N`` gave this logical interface (Solaris
    #: ``ip_sioctl_mtu`` sets ``ipif_mtu`` and IFF_FIXEDMTU); None: it follows
    #: the link's.  Kept as given: where the link is smaller (after a
    #: failover to a NIC with a smaller MTU, or a lowered link) the smaller
    #: one applies, and the given one again once the link allows it, as
    #: ``ipif_move`` saves and restores ``ipif_saved_mtu`` (§1 item 5).
    mtu: int | None = None
    #: The Solaris 11 model: this is a data address of the IPMP interface
    #: of this NIC's group, shown there as unit ``ipmp_unit`` (``ipmp0`` is
    #: 0, ``ipmp0:1`` is 1).  Linux has no IPMP interface, so the address is
    #: held by the member it is bound to (``ipmpstat -a`` INBOUND) and moves
    #: among the members as Solaris 11 re-binds it (illumos ``ipmp.c``
    #: ``ipmp_ill_bind_ipif``); None: an address of this NIC itself.
    ipmp_unit: int | None = None
    #: The ``ipadm`` address object naming this address (``ipmp0/v4``,
    #: ``net0/v4a``); "" for an address made by ``ifconfig``.
    addrobj: str = ""

    def name(self, ifname: str) -> str:
        return ifname if self.unit == 0 else f"{ifname}:{self.unit}"

    @property
    def is_test(self) -> bool:
        """A test address: NOFAILOVER with an address (Solaris §1)."""
        return self.nofailover and self.address is not None

    @property
    def is_data(self) -> bool:
        """A data address: may move on failover (not NOFAILOVER, has an address)."""
        return not self.nofailover and self.address is not None


@dataclass(frozen=True)
class Interface:
    """A physical interface (Solaris phyint) with its logical interfaces.

    Kernel facts (index, running, mtu, mac, loopback) are copied from the
    kernel on every read; the IPMP facts (group, standby, failed, offline,
    plumbed families) come from the state store.
    """

    name: str
    index: int = 0
    plumbed: frozenset[Family] = frozenset()
    link_up: bool = False
    running: bool = False
    mtu: int = 1500
    mac: str | None = None
    noarp: bool = False
    loopback: bool = False
    pointopoint: bool = False
    multicast: bool = True
    metric: int = 0
    group: str = ""
    standby: bool = False
    failed: bool = False
    offline: bool = False
    #: FAILBACK=no: a repaired NIC that got no address back is INACTIVE,
    #: a de-facto standby, until a failover lands on it (Solaris §2.8).
    held_inactive: bool = False
    logicals: tuple[Logical, ...] = ()
    #: The families the NIC forwards for (Solaris ILLF_ROUTER, one per ill):
    #: the kernel's ``net.ipv{4,6}.conf.IF.forwarding``, read on every merge.
    router: frozenset[Family] = frozenset()
    #: The IPv6 interface token (Solaris ``ill_token``, ``ifconfig IF inet6
    #: token T/64``): the kernel's ``ip token`` of the link, None when unset.
    token: IPv6Address | None = None
    #: A Solaris 11 IPMP interface (``ipadm create-ipmp ipmp0``, IFF_IPMP):
    #: no Linux link stands for it; ``group`` is its group's name, its
    #: ``index`` one the toolkit assigned, and ``logicals`` only the data
    #: addresses no member can hold yet (no member, or none UP).  Its bound
    #: data addresses sit on the members (``Logical.ipmp_unit``).
    ipmp: bool = False
    #: Solaris 11.4's per-group transitive probing switch, a property of the
    #: IPMP interface only (``ipadm set-ifprop -p allow-xprobe=on|off|inherit
    #: -m ip ipmp0``, ipadm(8)): ``on``/``off`` decide for its group,
    #: ``inherit`` follows ``svc:/network/ipmp config/transitive-probing``.
    allow_xprobe: str = "inherit"

    def logicals_of(self, family: Family) -> tuple[Logical, ...]:
        return tuple(sorted((lg for lg in self.logicals if lg.family == family), key=lambda lg: lg.unit))

    def logical(self, family: Family, unit: int) -> Logical | None:
        for lg in self.logicals:
            if lg.family == family and lg.unit == unit:
                return lg
        return None

    def free_unit(self, family: Family) -> int:
        """The lowest free logical unit above 0 (Solaris picks the lowest)."""
        used = {lg.unit for lg in self.logicals if lg.family == family}
        unit = 1
        while unit in used:
            unit += 1
        return unit

    def logical_mtu(self, logical: Logical) -> int:
        """The MTU of ``logical`` (Solaris ``ipif_mtu``): its own, never above the link's.

        ``ip_sioctl_mtu`` refuses a logical MTU above the link's maximum, and
        ``ipif_move`` lowers a moved address's MTU to the destination's
        (saving the old one for the way back): both are this minimum.
        """
        return self.mtu if logical.mtu is None else min(logical.mtu, self.mtu)

    def route_mtu(self, logical: Logical) -> int:
        """The ``mtu`` metric of the routes ``logical`` gives rise to; 0: the link's.

        Solaris makes each logical's subnet route (IRE_INTERFACE) with
        ``ire_max_frag`` pointing at its ``ipif_mtu`` (``ipif_up_done``), and
        traffic through that route leaves with it.  On Linux the same is the
        ``mtu`` of the routes; only an MTU below the link's needs one.
        """
        mtu = self.logical_mtu(logical)
        return mtu if mtu < self.mtu else 0

    def with_logical(self, logical: Logical) -> Interface:
        """Replace (or add) the logical with the same family and unit."""
        rest = tuple(
            lg for lg in self.logicals if not (lg.family == logical.family and lg.unit == logical.unit)
        )
        logicals = tuple(sorted((*rest, logical), key=lambda lg: (lg.family, lg.unit)))
        return replace(self, logicals=logicals)

    def without_logical(self, family: Family, unit: int) -> Interface:
        return replace(
            self,
            logicals=tuple(lg for lg in self.logicals if not (lg.family == family and lg.unit == unit)),
        )

    @property
    def hosts_data(self) -> bool:
        """Whether any UP data address sits on this NIC (its own or moved here)."""
        return any(lg.is_data and lg.up for lg in self.logicals if not lg.kernel_owned)

    @property
    def inactive(self) -> bool:
        """Solaris 10 kernel INACTIVE: FAILED and INACTIVE are exclusive; a STANDBY
        NIC (or one held inactive by FAILBACK=no) is INACTIVE while it hosts no
        data address (§1, "Kernel INACTIVE rules")."""
        if self.failed or self.offline or not (self.standby or self.held_inactive):
            return False
        return not self.hosts_data


@dataclass(frozen=True)
class Config:
    """The Solaris view of the host: physical interfaces in kernel index order."""

    interfaces: tuple[Interface, ...] = ()

    def get(self, name: str) -> Interface | None:
        for itf in self.interfaces:
            if itf.name == name:
                return itf
        return None

    def with_interface(self, interface: Interface) -> Config:
        items = [i for i in self.interfaces if i.name != interface.name]
        items.append(interface)
        items.sort(key=lambda i: (i.index == 0, i.index, i.name))
        return Config(tuple(items))

    def group_members(self, group: str) -> tuple[Interface, ...]:
        """The physical interfaces of ``group`` (its IPMP interface is not a member)."""
        return tuple(i for i in self.interfaces if group and i.group == group and not i.ipmp)

    @property
    def nics(self) -> tuple[Interface, ...]:
        """The interfaces that stand for a Linux link (all but the IPMP interfaces)."""
        return tuple(i for i in self.interfaces if not i.ipmp)

    def ipmp_interface(self, group: str) -> Interface | None:
        """The Solaris 11 IPMP interface of ``group``, if it has one."""
        for itf in self.interfaces:
            if itf.ipmp and group and itf.group == group:
                return itf
        return None


# --------------------------------------------------------------------------
# The Linux view
# --------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class KLink:
    """A Linux link as the toolkit reads and sets it."""

    name: str
    index: int = 0
    up: bool = False
    running: bool = False
    mtu: int = 1500
    mac: str | None = None
    noarp: bool = False
    loopback: bool = False
    pointopoint: bool = False
    multicast: bool = True
    kind: str = ""
    #: Every other name the kernel resolves to this link: its Linux
    #: alternative names (``ip link property add ... altname``) and, when
    #: ``name`` is a Solaris name from the ifmap, the Linux name first.
    altnames: tuple[str, ...] = ()
    #: The families whose ``forwarding`` sysctl is on for this link.
    forwarding: frozenset[Family] = frozenset()
    #: The IPv6 token (``ip token``), None when unset (all zeros).
    token: IPv6Address | None = None


@dataclass(frozen=True, order=True)
class KAddress:
    """A Linux address.  ``deprecated`` is ``preferred_lft 0``.

    Every address the toolkit adds carries ``noprefixroute``: the toolkit owns
    the routes (linux-mapping.md, "Working recipe").
    """

    ifname: str
    address: IPInterface
    label: str = ""
    broadcast: IPv4Address | None = None
    peer: IPAddress | None = None
    deprecated: bool = False
    noprefixroute: bool = True
    #: IPv6 link-local and other addresses the kernel made; never in a plan.
    kernel_owned: bool = False
    #: IPv6 duplicate address detection is running (or failed) on it: the
    #: address cannot be bound yet.  A fact the kernel reports, not one a plan
    #: sets (the toolkit adds its addresses with ``nodad``), so it takes no
    #: part in comparisons.
    tentative: bool = field(default=False, compare=False)
    #: An IPv4 address the kernel holds with a lifetime (no IFA_F_PERMANENT):
    #: a DHCP client's lease.  ``ipadm add-ipmp`` refuses its NIC, as
    #: libipadm refuses addresses dhcpagent manages.  A kernel fact, not compared.
    dynamic: bool = field(default=False, compare=False)

    @property
    def family(self) -> Family:
        return Family(self.address.version)

    @property
    def key(self) -> tuple[str, IPInterface, IPAddress | None]:
        """What identifies an address in the kernel (ifindex, local/prefix, peer)."""
        return (self.ifname, self.address, self.peer)


@dataclass(frozen=True, order=True)
class KRoute:
    """A route the toolkit owns (marked with protocol RTPROT_IPMP)."""

    family: Family
    table: int
    dst: IPNetwork
    dev: str
    gateway: IPAddress | None = None
    src: IPAddress | None = None
    metric: int = 0
    #: The route's ``mtu`` metric (RTAX_MTU); 0: none, the link's applies.
    mtu: int = 0


@dataclass(frozen=True, order=True)
class KRule:
    """A policy rule ``from SRC lookup TABLE`` the toolkit owns."""

    family: Family
    priority: int
    src: IPAddress
    table: int


@dataclass(frozen=True)
class KernelState:
    """What the toolkit reads from and writes to the kernel.

    ``routes`` and ``rules`` hold only those the toolkit owns.  ``sysctls``
    holds the keys the toolkit manages, as ``(key, value)`` pairs where key
    is the path below ``/proc/sys`` with ``/`` separators
    (``net/ipv4/conf/all/rp_filter``), since interface names may hold dots.
    """

    links: tuple[KLink, ...] = ()
    addresses: tuple[KAddress, ...] = ()
    routes: frozenset[KRoute] = frozenset()
    rules: frozenset[KRule] = frozenset()
    sysctls: tuple[tuple[str, str], ...] = ()

    def link(self, name: str) -> KLink | None:
        for link in self.links:
            if link.name == name:
                return link
        return None

    def addresses_of(self, ifname: str) -> tuple[KAddress, ...]:
        return tuple(a for a in self.addresses if a.ifname == ifname)

    def sysctl(self, key: str) -> str | None:
        for k, v in self.sysctls:
            if k == key:
                return v
        return None


#: Folds ASCII letters only (``str.lower`` would fold every script).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Environment:
    """Facts from files under the root that evaluation needs (hosts, netmasks, routers)."""

    hosts: tuple[tuple[str, IPAddress], ...] = ()
    #: ``netmasks`` entries: (network number, mask), as in ``/etc/inet/netmasks``.
    netmasks: tuple[tuple[IPv4Address, IPv4Address], ...] = ()
    defaultrouters: tuple[IPAddress, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    #: Where each ``hosts`` entry was read, as ``(file, line)`` in the same
    #: order, so that an error about a looked-up address can name the line.
    #: Empty when the entries did not come from a file.
    hosts_origin: tuple[tuple[str, int], ...] = ()

    def _lookup(self, name: str, family: Family) -> int | None:
        key = name.translate(_ASCII_LOWER)
        for index, (host, addr) in enumerate(self.hosts):
            if host.translate(_ASCII_LOWER) == key and addr.version == family:
                return index
        return None

    def resolve(self, name: str, family: Family) -> IPAddress | None:
        """Look a host name up in the hosts file (first match of the family).

        Names compare as glibc's nss_files compares them (strcasecmp in the
        C locale): ASCII letters without regard to case, anything else as is.
        """
        index = self._lookup(name, family)
        return None if index is None else self.hosts[index][1]

    def origin(self, name: str, family: Family) -> tuple[str, int] | None:
        """The ``(file, line)`` of the hosts line ``resolve`` takes, when known."""
        index = self._lookup(name, family)
        if index is None or index >= len(self.hosts_origin):
            return None
        return self.hosts_origin[index]

    def netmask_for(self, address: IPv4Address) -> IPv4Address | None:
        """Solaris ``getnetmaskbyaddr``: mask the address progressively, longest match first.

        ``netmask +`` on ``192.0.2.10`` tries the network numbers 192.0.2.10,
        192.0.2.10/31 masked, ... down to 0.0.0.0 and returns the mask of the
        first one listed (ifconfig(1M), "netmask +").
        """
        table = dict(self.netmasks)
        value = int(address)
        for prefix in range(32, -1, -1):
            mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
            found = table.get(IPv4Address(value & mask))
            if found is not None:
                return found
        return None
