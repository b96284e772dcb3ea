"""Where the words of one command apply, and the changes they share.

A ``Folder`` holds the configuration being changed and a ``Cursor``: the
logical interface the next word applies to (``addif`` moves it, §4.2).  The
word handlers (``ipmp.config.unit_words``, ``ipmp.config.link_words``) reach
the configuration only through it, so every change marks what it touched.

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface

from ipmp.config.addresses import (
    classful_prefix,
    file_name,
    interface_address,
    mask_to_prefix,
    refuse_impossible,
    resolve_address,
)
from ipmp.config.commands import Action
from ipmp.errors import ConfigError, NoSuchInterface, Position
from ipmp.model import IFNAMSIZ, Config, Environment, Family, Interface, Logical, default_broadcast


@dataclass
class Cursor:
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




class Folder:
    """Applies the words of one command to a configuration."""

    def __init__(self, config: Config, env: Environment, cursor: Cursor, netmask: IPv4Address | None):
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

    def check_label(self, ifname: str, unit: int) -> None:
        label = f"{ifname}:{unit}"
        if self.cur.family is Family.INET and len(label) >= IFNAMSIZ:
            # Linux stores logical names as IPv4 labels of at most 15 characters.
            raise ConfigError(f"{label}: logical interface name too long for Linux (at most {IFNAMSIZ - 1})")

    def addif_target(self) -> Interface:
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

    def set_address(self, word: str, where: Position | None = None) -> None:
        lg = self.logical()
        addr, prefix = resolve_address(word, self.cur.family, self.env)
        hostname_file = file_name(where.source) if where is not None and where.source else ""
        refuse_impossible(word, addr, self.cur.family, self.env, self.lname(),
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
        address = interface_address(addr, prefix)
        # Solaris sets a broadcast address only on a BROADCAST ipif, which
        # lo0 never is (``ipif_set_default``); Linux would otherwise add a
        # broadcast route for it, and the kernel's own 127.0.0.1 has none.
        loopback = self.interface().loopback
        broadcast = (default_broadcast(address)
                     if isinstance(address, IPv4Interface) and not loopback else None)
        # Setting an address makes the Solaris kernel recompute the broadcast.
        self.put_logical(replace(lg, address=address, broadcast=broadcast, kernel_owned=False))

    def set_destination(self, word: str) -> None:
        addr, _ = resolve_address(word, self.cur.family, self.env)
        self.put_logical(replace(self.logical(), destination=addr))

    def put_phyint(self, itf: Interface) -> None:
        """Phyint flags show on every logical of both families (§1)."""
        self.put_interface(itf)
        for fam in itf.plumbed:
            self.cur.touched.add((itf.name, fam))

    def number(self, action: Action) -> int:
        assert action.argument is not None
        try:
            return int(action.argument)
        except ValueError:
            raise ConfigError(f"{action.argument}: bad value for {action.keyword}") from None

    def einval(self, call: str) -> ConfigError:
        """Solaris ``Perror0_exit(call)`` on EINVAL: ``<call>: <name>: Invalid argument``."""
        return ConfigError(f"{call}: {self.lname()}: Invalid argument")
