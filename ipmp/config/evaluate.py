"""Solaris ifconfig semantics: fold a parsed command over a ``Config``.

The words of one command are taken left to right as Solaris ``ifconfig``
does (§4.2), with its special cases:

* the IPv4 netmask "hack": the last ``netmask`` of the line is applied with
  any address set on the line, whatever the order (§4.3);
* the first bare word sets the address, the second the destination (§4.1);
* ``addif`` creates the lowest free logical unit and every later word applies
  to it (§4.2); on a FAILED, OFFLINE or INACTIVE member of a group it lands
  on another usable member and remembers its home (§1 item 7);
* ``group`` and ``addif`` only on the physical interface (§4.5, §4.4).

One deliberate difference: Solaris applies each word at once and stops at the
first error, leaving the earlier words applied.  Here an error raises, and the
caller applies nothing: a command is all or nothing.

Pure module: no I/O; messages are returned, not printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    ip_address,
    ip_network,
)

from ipmp.config.commands import Action, Command
from ipmp.config.keywords import BY_WORD, Scope
from ipmp.errors import ConfigError, NoSuchInterface, Position
from ipmp.host.altroot import root_file
from ipmp.model import (
    IFNAMSIZ,
    LIFGRNAMSIZ,
    LIFNAMSIZ,
    LOCALHOST,
    Config,
    Environment,
    Family,
    Interface,
    IPAddress,
    IPInterface,
    Logical,
    default_broadcast,
)

#: The smallest MTU each family allows on a logical interface
#: (illumos ``IP_MIN_MTU``, ``IPV6_MIN_MTU``; ``ip_sioctl_mtu``).
IP_MIN_MTU = 68
IPV6_MIN_MTU = 1280
#: The largest MTU a link may be given: an IP datagram's 16-bit length.
IP_MAXPACKET = 65535
#: The bits of an IPv6 interface token Linux keeps (``inet6_set_iftoken``).
IPV6_TOKEN_BITS = 64


@dataclass(frozen=True)
class Outcome:
    """The result of one command: the new configuration and what to say."""

    config: Config
    #: Lines Solaris prints on stdout (``Created new logical interface ...``).
    stdout: tuple[str, ...] = ()
    #: Warnings Solaris prints on stderr without failing (``already exists``).
    stderr: tuple[str, ...] = ()
    #: Logical names whose status to print (no words, or ``ether`` alone).
    status: tuple[str, ...] = ()
    #: (interface, family) pairs the command changed or may change.
    touched: frozenset[tuple[str, Family]] = frozenset()
    #: A ``group`` was set: Solaris ifconfig then starts in.mpathd.
    start_mpathd: bool = False


def split_name(name: str) -> tuple[str, int]:
    """``qfe0:2`` -> (``qfe0``, 2); ``qfe0`` -> (``qfe0``, 0)."""
    base, sep, unit = name.partition(":")
    if not sep:
        return base, 0
    if not unit.isdigit():
        raise NoSuchInterface(f"{name}: no such interface")
    return base, int(unit)


def classful_prefix(address: IPv4Address) -> int:
    """The mask the Solaris kernel gives an address set without one."""
    first = int(address) >> 24
    if first < 128:
        return 8
    if first < 192:
        return 16
    return 24


def mask_to_prefix(mask: IPv4Address, word: str) -> int:
    value = int(mask)
    prefix = bin(value).count("1")
    if value != ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF):
        raise ConfigError(f"{word}: non-contiguous netmask is not supported on Linux")
    return prefix


def parse_mask(word: str, env: Environment) -> IPv4Address:
    """``netmask`` argument: ``0xffffff00``, ``255.255.255.0`` (``+`` is handled by the caller)."""
    try:
        if word.lower().startswith("0x"):
            return IPv4Address(int(word, 16))
        return IPv4Address(word)
    except ValueError:
        resolved = env.resolve(word, Family.INET)
        if isinstance(resolved, IPv4Address):
            return resolved
        raise ConfigError(f"{word}: bad address") from None


def resolve_address(word: str, family: Family, env: Environment) -> tuple[IPAddress, int | None]:
    """An address word: literal, ``addr/len``, or a host name from the hosts file."""
    text, slash, plen = word.partition("/")
    prefix: int | None = None
    if slash:
        if not plen.isdigit():
            raise ConfigError(f"Bad prefix length in {word}")
        prefix = int(plen)
    try:
        addr = ip_address(text)
    except ValueError:
        found = env.resolve(text, family)
        if found is None:
            raise ConfigError(f"{word}: bad address") from None
        addr = found
    if addr.version != family:
        raise ConfigError(f"{word}: bad address")
    if prefix is not None and prefix > addr.max_prefixlen:
        raise ConfigError(f"Bad prefix length in {word}")
    return addr, prefix


#: IPv4 ranges no NIC can hold as its own address (see ``impossible_reason``).
_LOOPBACK_NET = IPv4Network("127.0.0.0/8")
_THIS_NET = IPv4Network("0.0.0.0/8")
_CLASS_E = IPv4Network("240.0.0.0/4")
_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_LOOPBACK6 = IPv6Address("::1")
#: What plumbing lo0 gives its unit 0: illumos ``ill_lookup_on_name`` sets up
#: the loopback ipif with INADDR_LOOPBACK and the class A mask, or ``::1``/128.
LOOPBACK_ADDRESS: dict[Family, IPInterface] = {
    Family.INET: IPv4Interface("127.0.0.1/8"),
    Family.INET6: IPv6Interface("::1/128"),
}


def impossible_reason(addr: IPAddress, *, loopback_interface: bool = False) -> str | None:
    """Why an interface cannot hold ``addr`` as its own address; None if it can.

    The Solaris kernel checks every local address it is given
    (``ip_local_addr_ok`` and ``ip_local_addr_ok_v6`` in ip_if.c) and
    ifconfig fails with the error; Linux checks almost nothing and takes
    even ``127.0.1.1/8`` on a NIC.  So the checks are made here, before any
    kernel change:

    * multicast (IPv4 class D, IPv6 ``ff00::/8``), the limited broadcast
      ``255.255.255.255``, class E ``240.0.0.0/4``, IPv4-mapped IPv6
      (``::ffff:0:0/96``) and IPv4-compatible IPv6 of a multicast address:
      refused by Solaris itself.
    * loopback (``127.0.0.0/8``, ``::1``) on any interface but the loopback
      one: Solaris took it (its check has no loopback case), but no packet
      with such an address may leave a host (RFC 1122 3.2.1.3(g), RFC 4291
      2.5.3), and Linux drops them as martians: the NIC would be unreachable
      at that address, and the routes of the recipe would send the host's
      own 127/8 traffic to the wire.  In practice this is a host name that
      the hosts file maps to ``127.0.1.1`` (Debian's installer line).
    * ``0.0.0.0/8`` other than ``0.0.0.0``: "this host on this network",
      only ever a source while a host learns its address (RFC 1122
      3.2.1.3(a)/(b)); Solaris refuses these as a zero network part.

    Allowed: the unspecified address (``0.0.0.0``, ``::``), which Solaris
    takes as "no address" (a standby NIC's unit 0 often has none), and
    link-local addresses (``169.254.0.0/16``, ``fe80::/10``): they are valid
    on their link, Solaris accepts them, and every IPv6 NIC has one.
    Host parts of all zeros or all ones, which Solaris also refuses for
    classful masks, are left to the kernel: Linux takes ``/31`` and ``/32``
    addresses that the classful rule would refuse (RFC 3021).
    """
    if addr.is_unspecified:
        return None
    if isinstance(addr, IPv4Address):
        if addr in _LOOPBACK_NET:
            return None if loopback_interface else "a loopback address"
        if addr in _THIS_NET:
            return "an address of 0.0.0.0/8 (\"this network\")"
        if addr.is_multicast:
            return "a multicast address"
        if addr == _LIMITED_BROADCAST:
            return "the limited broadcast address"
        if addr in _CLASS_E:
            return "a class E (reserved) address"
        return None
    if addr == _LOOPBACK6:
        return None if loopback_interface else "a loopback address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.ipv4_mapped is not None:
        return "an IPv4-mapped address"
    if int(addr) >> 32 == 0 and IPv4Address(int(addr) & 0xFFFFFFFF).is_multicast:
        return "an IPv4-compatible multicast address"
    return None


def _refuse_impossible(
    word: str, addr: IPAddress, family: Family, env: Environment, lname: str, *,
    loopback_interface: bool, where: str,
) -> None:
    """Raise if ``addr`` (the value of ``word``) cannot be ``lname``'s own address.

    When ``word`` is a host name the message names the hosts line that gave
    the address and how to fix it: the usual cause is Debian's
    ``127.0.1.1 HOST`` line, which comes before any line the admin appends,
    and the first matching line wins (glibc, as Solaris' files backend).
    ``where`` is the hostname file the word is in ("" on the command line).
    """
    reason = impossible_reason(addr, loopback_interface=loopback_interface)
    if reason is None:
        return
    name = word.partition("/")[0]
    fix = f"write the address itself in {where}" if where else "give the address itself"
    try:
        ip_address(name)
    except ValueError:
        origin = env.origin(name, family)
        line = f" ({origin[0]}:{origin[1]})" if origin else ""
        before = f"line {origin[1]} of {origin[0]}" if origin else "that line"
        raise ConfigError(
            f"{name}: the hosts file gives {addr}{line}, {reason}, which {lname} cannot hold; "
            f"put a line with the host's own address before {before} (the first match wins), "
            f"or {fix}") from None
    raise ConfigError(f"{word}: {reason}, which {lname} cannot hold")


def _interface_address(addr: IPAddress, prefix: int) -> IPInterface:
    if isinstance(addr, IPv4Address):
        return IPv4Interface((addr, prefix))
    return IPv6Interface((addr, prefix))


@dataclass
class _Cursor:
    """Where the words of a command currently apply."""

    ifname: str  # the physical interface the logical lives on now
    family: Family
    unit: int
    named: str  # the name the command line gave (for the -failover check)
    addresses_set: int = 0
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    touched: set[tuple[str, Family]] = field(default_factory=set)
    start_mpathd: bool = False


class _Folder:
    """Applies the words of one command to a configuration."""

    def __init__(self, config: Config, env: Environment, cursor: _Cursor, netmask: IPv4Address | None):
        self.config = config
        self.env = env
        self.cur = cursor
        self.line_netmask = netmask

    # -- access -----------------------------------------------------------

    def interface(self, name: str | None = None) -> Interface:
        itf = self.config.get(name or self.cur.ifname)
        if itf is None:
            raise NoSuchInterface(f"{name or self.cur.ifname}: no such interface")
        return itf

    def logical(self) -> Logical:
        lg = self.interface().logical(self.cur.family, self.cur.unit)
        if lg is None:
            name = self.lname()
            raise NoSuchInterface(f"{name}: no such interface")
        return lg

    def lname(self) -> str:
        return self.cur.ifname if self.cur.unit == 0 else f"{self.cur.ifname}:{self.cur.unit}"

    def put_interface(self, itf: Interface) -> None:
        self.config = self.config.with_interface(itf)
        self.cur.touched.add((itf.name, self.cur.family))

    def put_logical(self, lg: Logical) -> None:
        self.put_interface(self.interface().with_logical(lg))

    # -- words ------------------------------------------------------------

    def run(self, action: Action) -> None:
        kw = BY_WORD.get(action.keyword)
        if action.keyword == "addif":
            # Solaris addif starts again from the name on the command line, so
            # one line can add several logicals ("addif A up addif B up").
            self.cur.ifname, self.cur.unit = split_name(self.cur.named)
        if kw is not None and kw.family is not None and kw.family != self.cur.family:
            raise ConfigError(f"Operation {action.keyword} not supported for {self.cur.family.word}")
        if kw is not None and kw.scope is Scope.PHYSICAL and self.cur.unit != 0:
            self._physical_only(action.keyword)
        # ``-failover`` is handled by do_failover_off, ``address`` by do_address.
        suffix = "_off" if action.keyword.startswith("-") else ""
        handler: Callable[[Action], None] = getattr(self, "do_" + action.keyword.lstrip("-") + suffix)
        handler(action)

    def _physical_only(self, word: str) -> None:
        name = self.lname()
        if word == "addif":
            raise ConfigError(f"addif: bad physical interface name {name}")
        if word == "removeif":
            raise ConfigError(f"removeif: bad physical interface name {name}")
        if word == "group":
            raise ConfigError(f"setifgroupname: SIOCSLIFGROUPNAME: {name}: Invalid argument")
        raise ConfigError(f"{word}: {name}: Invalid argument")

    def do_plumb(self, action: Action) -> None:
        itf = self.interface()
        fam = self.cur.family
        if self.cur.unit == 0:
            if fam in itf.plumbed:
                if itf.loopback:
                    # Solaris ``inetplumb`` returns at once, saying nothing
                    # (but under -d), when lo0 already has an address.
                    return
                # Solaris prints this and still exits 0 (a legacy of ifconfig.c).
                self.cur.stderr.append(f"SIOCSLIFNAME for ip: {itf.name}: already exists")
                return
            itf = replace(itf, plumbed=itf.plumbed | {fam}, link_up=True)
            unit0 = itf.logical(fam, 0)
            if itf.loopback and (unit0 is None or unit0.address is None):
                itf = itf.with_logical(self._loopback_unit0(fam))
            elif unit0 is None:
                itf = itf.with_logical(Logical(fam, 0))
            self.put_interface(itf)
            return
        if fam not in itf.plumbed:
            raise NoSuchInterface(f"plumb: {self.lname()}: no such interface")
        if itf.logical(fam, self.cur.unit) is not None:
            self.cur.stderr.append(f"SIOCSLIFNAME for ip: {self.lname()}: already exists")
            return
        self._check_label(itf.name, self.cur.unit)
        self.put_logical(Logical(fam, self.cur.unit))

    @staticmethod
    def _loopback_unit0(family: Family) -> Logical:
        """Unit 0 of a newly plumbed lo0: the loopback address, UP.

        Solaris gives it the address (``ill_lookup_on_name``: 127.0.0.1/8 or
        ``::1``/128) and leaves it down until ``up``; every boot then runs
        ``ifconfig lo0 [inet6] plumb <address> up`` (net-loopback).  Here it
        is UP at once, a deliberate difference: Linux gives ``lo`` these
        addresses itself whenever it is up (``inetdev_event`` and addrconf's
        ``init_loopback``), so a host that shows no IPv6 on lo0 still has
        ``::1``, and a plumbed-but-down one would be that address taken
        away, from every local service using it.  Plumbing lo0 takes the
        address as Linux holds it; it never deletes it.
        """
        return Logical(family, 0, LOOPBACK_ADDRESS[family], up=True)

    def do_unplumb(self, action: Action) -> None:
        """``unplumb``; refused on unit 0 of the loopback.

        Solaris allows ``ifconfig lo0 unplumb``: ``inetunplumb`` sends
        SIOCLIFREMOVEIF for lo0 as for a logical interface, and
        ``ip_sioctl_removeif`` has "special handling to allow a removeif of
        lo0" that frees the loopback (illumos ``ip_if.c``; libipadm calls
        keeping it "for backward compatibility" and wants it gone).  Linux
        has no such thing: ``lo`` cannot be deleted, taking it down stops
        the local delivery of every address of the host, and its 127.0.0.1
        and ``::1`` are what every local service talks to.  So unplumbing
        lo0 is refused, in both families, and says what can be done; its
        logical interfaces (lo0:N) unplumb as anywhere else.
        """
        itf = self.interface()
        fam = self.cur.family
        if self.cur.unit == 0 and ":" in self.cur.named:
            raise ConfigError(f"unplumb: Cannot unplumb {self.cur.named}: Invalid interface")
        if itf.loopback and not self.cur.unit:
            raise ConfigError(f"unplumb: {itf.name}: the loopback cannot be unplumbed on Linux (it carries "
                              f"the host's {LOOPBACK_ADDRESS[fam].ip} and all local traffic); unplumb "
                              f"its logical interfaces ({itf.name}:N) instead")
        if self.cur.unit:
            self.logical()
            self.put_interface(itf.without_logical(fam, self.cur.unit))
            return
        if fam not in itf.plumbed:
            raise NoSuchInterface(f"unplumb: {itf.name}: no such interface")
        keep = tuple(lg for lg in itf.logicals if lg.family != fam)
        plumbed = itf.plumbed - {fam}
        # The group belongs to the phyint: it goes when no family is left.
        itf = replace(itf, logicals=keep, plumbed=plumbed)
        if not plumbed:
            itf = replace(itf, link_up=False, group="", standby=False, failed=False, offline=False)
        self.put_interface(itf)

    def _check_label(self, ifname: str, unit: int) -> None:
        label = f"{ifname}:{unit}"
        if self.cur.family is Family.INET and len(label) >= IFNAMSIZ:
            # Linux stores logical names as IPv4 labels of at most 15 characters.
            raise ConfigError(f"{label}: logical interface name too long for Linux (at most {IFNAMSIZ - 1})")

    def _addif_target(self) -> Interface:
        """§1 item 7: addif on a FAILED/OFFLINE/INACTIVE group member lands elsewhere."""
        itf = self.interface()
        if not itf.group or not (itf.failed or itf.offline or itf.inactive):
            return itf
        for other in self.config.group_members(itf.group):
            if other.name == itf.name or self.cur.family not in other.plumbed:
                continue
            if not (other.failed or other.offline or other.inactive):
                return other
        return itf

    def do_addif(self, action: Action) -> None:
        assert action.argument is not None
        home = self.interface()
        target = self._addif_target()
        unit = target.free_unit(self.cur.family)
        self._check_label(target.name, unit)
        self.cur.ifname = target.name
        self.cur.unit = unit
        self.cur.addresses_set = 0
        self.put_logical(
            Logical(
                self.cur.family,
                unit,
                home=home.name if target.name != home.name else "",
            )
        )
        self._set_address(action.argument, action.argument_position or action.position)
        self.cur.stdout.append(f"Created new logical interface {self.lname()}")

    def do_removeif(self, action: Action) -> None:
        assert action.argument is not None
        addr, _ = resolve_address(action.argument, self.cur.family, self.env)
        itf = self.interface()
        for lg in itf.logicals_of(self.cur.family):
            if lg.address is not None and lg.address.ip == addr:
                if lg.unit == 0:
                    raise ConfigError(f"removeif: can't remove interface: {itf.name}")
                self.put_interface(itf.without_logical(self.cur.family, lg.unit))
                return
        raise ConfigError(f"removeif: {action.argument}: no such interface")

    def _set_address(self, word: str, where: Position | None = None) -> None:
        lg = self.logical()
        addr, prefix = resolve_address(word, self.cur.family, self.env)
        hostname_file = _file_name(where.source) if where is not None and where.source else ""
        _refuse_impossible(word, addr, self.cur.family, self.env, self.lname(),
                           loopback_interface=self.interface().loopback, where=hostname_file)
        if prefix is None and isinstance(addr, IPv4Address) and self.line_netmask is not None:
            prefix = mask_to_prefix(self.line_netmask, str(self.line_netmask))
        if prefix is None and lg.address is not None and not isinstance(addr, IPv4Address):
            # IPv4 keeps no mask here: Solaris setifaddr clears the mask of an
            # address set without one, and the kernel gives it the classful
            # default (§4.3).
            prefix = lg.address.network.prefixlen
        if prefix is None:
            if isinstance(addr, IPv4Address):
                prefix = classful_prefix(addr)
            else:
                prefix = 10 if addr.is_link_local else 64
        address = _interface_address(addr, prefix)
        # Solaris sets a broadcast address only on a BROADCAST ipif, which
        # lo0 never is (``ipif_set_default``); Linux would otherwise add a
        # broadcast route for it, and the kernel's own 127.0.0.1 has none.
        loopback = self.interface().loopback
        broadcast = (default_broadcast(address)
                     if isinstance(address, IPv4Interface) and not loopback else None)
        # Setting an address makes the Solaris kernel recompute the broadcast.
        self.put_logical(replace(lg, address=address, broadcast=broadcast, kernel_owned=False))

    def do_address(self, action: Action) -> None:
        assert action.argument is not None
        self.cur.addresses_set += 1
        if self.cur.addresses_set == 1:
            self._set_address(action.argument, action.argument_position or action.position)
        else:
            self._set_destination(action.argument)

    def do_set(self, action: Action) -> None:
        assert action.argument is not None
        self.cur.addresses_set = max(self.cur.addresses_set, 1)
        self._set_address(action.argument, action.argument_position or action.position)

    def _set_destination(self, word: str) -> None:
        addr, _ = resolve_address(word, self.cur.family, self.env)
        self.put_logical(replace(self.logical(), destination=addr))

    def do_destination(self, action: Action) -> None:
        assert action.argument is not None
        self._set_destination(action.argument)

    def do_up(self, action: Action) -> None:
        lg = self.logical()
        itf = self.interface()
        self.put_interface(replace(itf, link_up=True).with_logical(replace(lg, up=True)))

    def do_down(self, action: Action) -> None:
        self.put_logical(replace(self.logical(), up=False))

    def do_netmask(self, action: Action) -> None:
        assert action.argument is not None
        lg = self.logical()
        if action.argument == "+":
            if lg.address is None or not isinstance(lg.address, IPv4Interface):
                return
            mask = self.env.netmask_for(lg.address.ip)
            if mask is None:
                return  # Solaris: nothing printed, the mask stays
            self.cur.stdout.append(f"Setting netmask of {self.lname()} to {mask}")
        else:
            mask = parse_mask(action.argument, self.env)
        prefix = mask_to_prefix(mask, action.argument)
        if lg.address is None:
            return  # no address to carry a mask on Linux; the hack applies it with the address
        assert isinstance(lg.address, IPv4Interface)
        # SIOCSLIFNETMASK does not recompute the broadcast; ``broadcast +`` does.
        self.put_logical(replace(lg, address=IPv4Interface((lg.address.ip, prefix))))

    def do_broadcast(self, action: Action) -> None:
        assert action.argument is not None
        lg = self.logical()
        if action.argument == "+":
            # Solaris ``setifbroadaddr`` sets the address again, which resets
            # the broadcast: none on lo0, which is not BROADCAST (``_set_address``).
            if isinstance(lg.address, IPv4Interface) and not self.interface().loopback:
                self.put_logical(replace(lg, broadcast=default_broadcast(lg.address)))
            return
        try:
            bcast = IPv4Address(action.argument)
        except ValueError:
            found = self.env.resolve(action.argument, Family.INET)
            if not isinstance(found, IPv4Address):
                raise ConfigError(f"{action.argument}: bad address") from None
            bcast = found
        self.put_logical(replace(lg, broadcast=bcast))

    def do_group(self, action: Action) -> None:
        assert action.argument is not None
        name = action.argument
        itf = self.interface()
        if itf.loopback:
            raise ConfigError(f"setifgroupname: SIOCSLIFGROUPNAME: {itf.name}: Invalid argument")
        # Solaris counts bytes; surrogatepass keeps undecodable bytes (from a
        # file or argv) countable instead of raising UnicodeEncodeError.
        if len(name.encode("utf-8", "surrogatepass")) >= LIFGRNAMSIZ:
            raise ConfigError(f"setifgroupname: {name}: name too long (at most {LIFGRNAMSIZ - 1} bytes)")
        # The group belongs to the phyint: both families see it (§1).
        self.put_interface(replace(itf, group=name))
        for fam in itf.plumbed:
            self.cur.touched.add((itf.name, fam))
        if name:
            self.cur.start_mpathd = True

    def do_deprecated(self, action: Action) -> None:
        self.put_logical(replace(self.logical(), deprecated=True))

    def do_deprecated_off(self, action: Action) -> None:
        self.put_logical(replace(self.logical(), deprecated=False))

    def do_failover(self, action: Action) -> None:
        self.put_logical(replace(self.logical(), nofailover=False))

    def do_failover_off(self, action: Action) -> None:
        if self.lname() != self.cur.named and self.cur.unit != 0:
            named_base = self.cur.named.partition(":")[0]
            if named_base != self.cur.ifname:
                # §4.2 safety check: an earlier addif landed on another NIC.
                raise ConfigError(f"can't set -failover on failed/standby/offlined interface {self.lname()}")
        self.put_logical(replace(self.logical(), nofailover=True))

    def _put_phyint(self, itf: Interface) -> None:
        """Phyint flags show on every logical of both families (§1)."""
        self.put_interface(itf)
        for fam in itf.plumbed:
            self.cur.touched.add((itf.name, fam))

    def do_standby(self, action: Action) -> None:
        self._put_phyint(replace(self.interface(), standby=True))

    def do_standby_off(self, action: Action) -> None:
        self._put_phyint(replace(self.interface(), standby=False))

    def do_failed(self, action: Action) -> None:
        self._put_phyint(replace(self.interface(), failed=True))

    def do_failed_off(self, action: Action) -> None:
        self._put_phyint(replace(self.interface(), failed=False))

    def _number(self, action: Action) -> int:
        assert action.argument is not None
        try:
            return int(action.argument)
        except ValueError:
            raise ConfigError(f"{action.argument}: bad value for {action.keyword}") from None

    def _einval(self, call: str) -> ConfigError:
        """Solaris ``Perror0_exit(call)`` on EINVAL: ``<call>: <name>: Invalid argument``."""
        return ConfigError(f"{call}: {self.lname()}: Invalid argument")

    def do_mtu(self, action: Action) -> None:
        """``mtu N``: Solaris ``setifmtu`` (SIOCSLIFMTU), checked as ``ip_sioctl_mtu`` does.

        The kernel keeps an MTU per logical interface (``ipif_mtu``) and
        refuses one below the family's minimum (IP_MIN_MTU 68, IPV6_MIN_MTU
        1280) or above the link's (``ill_max_frag``) with EINVAL.

        * On a logical interface it is that unit's own MTU (IFF_FIXEDMTU),
          at most the link's; on Linux it is the ``mtu`` of the routes the
          unit gives rise to (``Interface.route_mtu``, ``view.routes_and_rules``).
        * On the physical interface it is the link's MTU (``ip link set
          mtu``), which every unit without its own follows: Linux has no
          driver maximum apart from it that the administrator would raise
          elsewhere, as Solaris does in the driver's configuration.  A link
          that carries IPv6 is never taken below IPv6's minimum: Linux would
          drop every IPv6 address of it (addrconf's NETDEV_CHANGEMTU).
        """
        mtu = self._number(action)
        itf = self.interface()
        family = self.cur.family
        minimum = IPV6_MIN_MTU if family is Family.INET6 else IP_MIN_MTU
        if self.cur.unit == 0:
            if not minimum <= mtu <= IP_MAXPACKET:
                raise self._einval("setifmtu: SIOCSLIFMTU")
            if Family.INET6 in itf.plumbed and mtu < IPV6_MIN_MTU:
                raise ConfigError(f"setifmtu: {self.lname()}: {mtu} is below {IPV6_MIN_MTU}, the IPv6 "
                                  f"minimum, and Linux would take every IPv6 address off the link")
            self.put_interface(replace(itf, mtu=mtu))
            for fam in itf.plumbed:
                self.cur.touched.add((itf.name, fam))
            return
        lg = self.logical()
        if not minimum <= mtu <= itf.mtu:
            raise self._einval("setifmtu: SIOCSLIFMTU")
        self.put_logical(replace(lg, mtu=mtu))

    def _set_router(self, on: bool) -> None:
        """``router``/``-router``: Solaris ILLF_ROUTER, the NIC's forwarding sysctl on Linux.

        The flag belongs to the ill (one per family), and ``ip_sioctl_flags``
        hands a change of it to ``ill_forward_set`` for the interface "and,
        if the interface is part of an IPMP group, all other interfaces that
        are part of the same IPMP group": a group forwards as one.
        ``ill_forward_set`` refuses ROUTER on the loopback (EINVAL), which
        never has it, so ``-router`` there changes nothing.
        """
        family = self.cur.family
        itf = self.interface()
        if itf.loopback:
            if on:
                raise self._einval("setifflags: SIOCSLIFFLAGS")
            return
        members = [itf] + [m for m in self.config.group_members(itf.group)
                           if m.name != itf.name and family in m.plumbed]
        for member in members:
            router = member.router | {family} if on else member.router - {family}
            self.config = self.config.with_interface(replace(member, router=router))
            self.cur.touched.add((member.name, family))

    def do_router(self, action: Action) -> None:
        self._set_router(True)

    def do_router_off(self, action: Action) -> None:
        self._set_router(False)

    def do_nud(self, action: Action) -> None:
        """``nud``: clear NONUD.  Linux does NUD on every link that resolves
        addresses, so there is nothing to do, except on a NOARP link, which
        has no neighbour discovery at all (shown as NONUD)."""
        if self.interface().noarp:
            raise ConfigError(f"nud: {self.lname()}: Linux does no neighbour discovery on a NOARP link")

    def do_token(self, action: Action) -> None:
        """``token T/n``: Solaris ``setiftoken`` (SIOCSLIFTOKEN), ``ip token`` on Linux.

        ``setiftoken`` wants a prefix length ("Missing prefix length in
        subnet", its text); ``ip_sioctl_token`` takes it on unit 0 of an IPv6
        interface only and keeps the low ``n`` bits as the ill's token.
        Linux keeps exactly the low 64 bits (``inet6_set_iftoken``), which is
        what Solaris' in.ndpd uses on Ethernet, where a prefix is 64 bits and
        an address is prefix + token; another length has no Linux meaning.
        """
        assert action.argument is not None
        word = action.argument
        addr, plen = resolve_address(word, Family.INET6, self.env)
        if plen is None:
            raise ConfigError(f"Missing prefix length in subnet {word}")
        if self.cur.unit != 0:
            raise self._einval("setiftoken: SIOCSLIFTOKEN")
        if plen != IPV6_TOKEN_BITS:
            raise ConfigError(f"token {word}: Linux takes {IPV6_TOKEN_BITS}-bit interface tokens only "
                              f"(write {addr}/{IPV6_TOKEN_BITS})")
        low = int(addr) & ((1 << IPV6_TOKEN_BITS) - 1)
        self.put_interface(replace(self.interface(), token=IPv6Address(low) if low else None))

    def do_subnet(self, action: Action) -> None:
        """``subnet A/n``: Solaris ``setifsubnet`` (SIOCSLIFSUBNET).

        ``ip_sioctl_subnet`` sets the unit's mask and subnet, not its address
        nor its broadcast, and refuses a subnet with bits set past its mask
        (EINVAL).  A Linux address carries its prefix length and its subnet
        is always the address masked, so the subnet of an address is its
        prefix length; a subnet that does not hold the address (which
        Solaris keeps for in.ndpd's NOLOCAL prefixes) has no Linux meaning.
        A unit without an address only keeps a mask until its address is set,
        which resets it (``setifaddr``): nothing to do.
        """
        assert action.argument is not None
        word = action.argument
        addr, plen = resolve_address(word, self.cur.family, self.env)
        if plen is None:
            raise ConfigError(f"Missing prefix length in subnet {word}")
        subnet = ip_network(f"{addr}/{plen}", strict=False)
        if subnet.network_address != addr:
            raise self._einval("SIOCSLIFSUBNET")
        lg = self.logical()
        if lg.address is None:
            return
        if lg.address.ip not in subnet:
            raise ConfigError(f"subnet {word}: {self.lname()} has address {lg.address.ip}, outside it; "
                              f"Linux takes an address's subnet from the address")
        self.put_logical(replace(lg, address=_interface_address(lg.address.ip, plen)))

    def do_metric(self, action: Action) -> None:
        self.put_interface(replace(self.interface(), metric=self._number(action)))

    def do_ether(self, action: Action) -> None:
        if action.argument is None:
            self.cur.status.append(self.lname())
            return
        parts = action.argument.split(":")
        try:
            octets = [int(p, 16) for p in parts]
        except ValueError:
            octets = []
        if len(octets) != 6 or not all(0 <= o <= 255 for o in octets):
            raise ConfigError(f"{action.argument}: bad address")
        if octets[0] & 1:
            raise ConfigError(f"ether: {self.lname()}: Invalid argument")  # multicast MAC
        self.put_interface(replace(self.interface(), mac=":".join(f"{o:02x}" for o in octets)))

    def do_arp(self, action: Action) -> None:
        self.put_interface(replace(self.interface(), noarp=False))

    def do_arp_off(self, action: Action) -> None:
        self.put_interface(replace(self.interface(), noarp=True))

    def do_trailers(self, action: Action) -> None:
        """Solaris accepts and ignores trailers (IFF_NOTRAILERS has no effect)."""

    def do_trailers_off(self, action: Action) -> None:
        """Solaris accepts and ignores -trailers."""


def _line_netmask(actions: tuple[Action, ...]) -> Action | None:
    """§4.3: the last ``netmask`` of the line is applied with the address."""
    found = None
    for action in actions:
        if action.keyword == "netmask":
            found = action
    return found


def _resolve_line_netmask(
    action: Action | None, actions: tuple[Action, ...], family: Family, env: Environment
) -> IPv4Address | None:
    if action is None or family is not Family.INET or action.argument is None:
        return None
    if action.argument != "+":
        mask = parse_mask(action.argument, env)
        mask_to_prefix(mask, action.argument)  # refuse it here, at the netmask word
        return mask
    # ``netmask +`` with the address the line sets: look it up now.
    for a in actions:
        if a.keyword in ("address", "set", "addif") and a.argument is not None:
            try:
                addr, prefix = resolve_address(a.argument, family, env)
            except ConfigError:
                return None
            if prefix is None and isinstance(addr, IPv4Address):
                return env.netmask_for(addr)
            return None
    return None


def _file_name(path: str) -> str:
    """``PurePath(path).name``, without loading ``pathlib`` on the read path of ``ifconfig``."""
    name = root_file(path, "").rpartition("/")[2]
    return "" if name == "." else name


def _at(position: Position | None, error: ConfigError) -> ConfigError:
    if error.position is None and position is not None:
        error.position = position
    return error


def _localhost_held(config: Config) -> frozenset[tuple[str, IPAddress]]:
    """The loopback's UP 127.0.0.1 and ``::1``, as (interface, address).

    No command may take these away (``evaluate``).  Solaris let root do it
    (``ifconfig lo0 down``, or a new address on lo0); on Linux every local
    service, and much of the system, talks to localhost, and nothing would
    tell the administrator why they all broke.
    """
    return frozenset(
        (itf.name, lg.address.ip)
        for itf in config.interfaces if itf.loopback
        for lg in itf.logicals
        if lg.up and lg.address is not None and lg.address.ip in LOCALHOST
    )


def evaluate(config: Config, command: Command, env: Environment) -> Outcome:
    """Fold ``command`` over ``config``; raise ``ConfigError`` (with a position) on error."""
    family = command.family or Family.INET
    if command.ifname is None:
        return _evaluate_all(config, command, env)
    if len(command.ifname) >= LIFNAMSIZ:
        raise ConfigError(f"{command.ifname}: interface name too long", command.position)
    try:
        base, unit = split_name(command.ifname)
    except ConfigError as err:
        raise _at(command.position, err) from None
    itf = config.get(base)
    if itf is None:
        word = "plumb" if any(a.keyword == "plumb" for a in command.actions) else "status: SIOCGLIFFLAGS"
        raise NoSuchInterface(f"{word}: {command.ifname}: no such interface", command.position)
    cursor = _Cursor(ifname=base, family=family, unit=unit, named=command.ifname)
    plumbing = any(a.keyword == "plumb" for a in command.actions)
    if not command.actions:
        if family not in itf.plumbed and command.family is not None:
            raise NoSuchInterface(f"status: SIOCGLIFFLAGS: {command.ifname}: no such interface",
                                  command.position)
        if unit and itf.logical(family, unit) is None and not (command.family is None
                                                                and itf.logical(Family.INET6, unit)):
            raise NoSuchInterface(f"status: SIOCGLIFFLAGS: {command.ifname}: no such interface",
                                  command.position)
        return Outcome(config=config, status=(command.ifname,))
    if not plumbing and family not in itf.plumbed:
        raise NoSuchInterface(f"{command.ifname}: no such interface", command.position)
    netmask_action = _line_netmask(command.actions)
    try:
        netmask = _resolve_line_netmask(netmask_action, command.actions, family, env)
    except ConfigError as err:
        raise _at(netmask_action.position if netmask_action else command.position, err) from None
    folder = _Folder(config, env, cursor, netmask)
    localhost = _localhost_held(config) if itf.loopback else frozenset()
    lost_at: dict[tuple[str, IPAddress], Action] = {}
    for action in command.actions:
        try:
            folder.run(action)
        except ConfigError as err:
            raise _at(action.argument_position or action.position, err) from None
        if localhost:
            held = _localhost_held(folder.config)
            lost_at = {k: lost_at.get(k, action) for k in localhost - held}
    for (name, addr), action in lost_at.items():
        # A word may take it away if a later one puts it back (``lo0 down up``).
        said = action.argument if action.keyword in ("address", "set") else None
        raise ConfigError(f"{said or action.keyword}: {name}: refused: it would take {addr} (localhost) "
                          f"off the loopback, and Linux cannot do without it",
                          action.argument_position or action.position)
    return Outcome(
        config=folder.config,
        stdout=tuple(cursor.stdout),
        stderr=tuple(cursor.stderr),
        status=tuple(cursor.status),
        touched=frozenset(cursor.touched),
        start_mpathd=cursor.start_mpathd,
    )


def selected_logicals(config: Config, letters: str, family: Family | None) -> list[tuple[str, Family]]:
    """The logical names ``-a<letters>`` selects, in ``ifconfig -a`` order."""
    out: list[tuple[str, Family]] = []
    families = [family] if family is not None else [Family.INET, Family.INET6]
    if "4" in letters and "6" not in letters:
        families = [f for f in families if f is Family.INET]
    if "6" in letters and "4" not in letters:
        families = [f for f in families if f is Family.INET6]
    for fam in families:
        for itf in config.interfaces:
            if fam not in itf.plumbed:
                continue
            for lg in itf.logicals_of(fam):
                if "u" in letters and not lg.up:
                    continue
                if "d" in letters and lg.up:
                    continue
                out.append((lg.name(itf.name), fam))
    return out


def _evaluate_all(config: Config, command: Command, env: Environment) -> Outcome:
    """``ifconfig -a... words``: the words apply to every selected logical interface."""
    letters = command.all_letters or "a"
    stdout: list[str] = []
    stderr: list[str] = []
    touched: set[tuple[str, Family]] = set()
    start = False
    if any(a.keyword == "plumb" for a in command.actions):
        # Solaris plumbs every device, for inet when no family is given.
        family = command.family or Family.INET
        targets = [(itf.name, family) for itf in config.interfaces if not itf.loopback]
    else:
        targets = selected_logicals(config, letters, command.family)
    for name, fam in targets:
        actions = command.actions
        if command.family is None:
            # Solaris calls a family-bound word only on logicals of its own
            # family (ifconfig()): ``-a netmask +`` passes IPv6 ones over.
            actions = tuple(
                a for a in actions if (kw := BY_WORD.get(a.keyword)) is None or kw.family in (None, fam)
            )
            if not actions:
                continue
        sub = Command(ifname=name, family=fam, actions=actions, position=command.position)
        out = evaluate(config, sub, env)
        config = out.config
        stdout += out.stdout
        stderr += out.stderr
        touched |= out.touched
        start = start or out.start_mpathd
    return Outcome(config=config, stdout=tuple(stdout), stderr=tuple(stderr), touched=frozenset(touched),
                   start_mpathd=start)


def reset_interface(itf: Interface) -> Interface:
    """The interface as boot finds it: kernel facts only, nothing configured (for ipmp-boot).

    Addresses whose home is another NIC (failed over to this one by
    in.mpathd, or rescued here at boot, §6.5) stay: they are not this NIC's
    to configure, and dropping them would take them off the network.
    """
    return replace(
        itf,
        plumbed=frozenset(),
        link_up=False,
        metric=0,
        group="",
        standby=False,
        failed=False,
        offline=False,
        held_inactive=False,
        logicals=tuple(lg for lg in itf.logicals if lg.home not in ("", itf.name)),
    )

